/* bcryptprimitives.dll for Wine < 8.13, which lacks it. Rust >= 1.78's std for
 * windows-gnu fills HashMap keys and other randomness from ProcessPrng; this DLL
 * forwards it to RtlGenRandom (advapi32!SystemFunction036), which Wine has.
 * Built by `cargo xtask test` (xtask/src/wine.rs) into a Wine prefix under target/;
 * never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
