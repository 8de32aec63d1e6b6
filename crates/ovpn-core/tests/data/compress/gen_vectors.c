/* Produces the decompression test vectors in this directory with the real
 * libraries OpenVPN links: liblzo2's lzo1x_1_15_compress (OpenVPN's
 * LZO_COMPRESS) and liblz4's LZ4_compress_default (what comp-lz4.c calls).
 * Each vector NAME gets NAME.raw (input), NAME.lzo (raw LZO1X block) and
 * NAME.lz4 (raw LZ4 block). Regenerate (Debian: liblzo2-dev liblz4-dev):
 *   cc -O2 -o /tmp/gen gen_vectors.c -llzo2 -llz4 && /tmp/gen
 * Output is deterministic. */
#include <lz4.h>
#include <lzo/lzo1x.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(const char *name, const char *ext, const unsigned char *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s.%s", name, ext);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

static void vector(const char *name, const unsigned char *in, size_t n)
{
    static unsigned char wrk[LZO1X_1_15_MEM_COMPRESS];
    unsigned char out[8192];
    lzo_uint zlen = 0;
    if (lzo1x_1_15_compress(in, n, out, &zlen, wrk) != LZO_E_OK) { fprintf(stderr, "lzo\n"); exit(1); }
    put(name, "raw", in, n);
    put(name, "lzo", out, zlen);
    int l = LZ4_compress_default((const char *)in, (char *)out, (int)n, (int)sizeof out);
    if (l <= 0) { fprintf(stderr, "lz4\n"); exit(1); }
    put(name, "lz4", out, (size_t)l);
    printf("%s: %zu -> lzo %lu, lz4 %d\n", name, n, (unsigned long)zlen, l);
}

int main(void)
{
    if (lzo_init() != LZO_E_OK) return 1;
    /* IPv4 ICMP echo request as `ping -s 1200 -p 00` sends it: 20 + 8 + 1200 */
    unsigned char ping[1228];
    memset(ping, 0, sizeof ping);
    static const unsigned char hdr[28] = {
        0x45, 0x00, 0x04, 0xcc, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00,
        10, 8, 0, 2, 10, 8, 0, 1, 0x08, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01 };
    memcpy(ping, hdr, sizeof hdr);
    vector("ping1200_zero", ping, sizeof ping);
    /* Text-like TCP payload (repetitive, as an HTTP body or a log file is) */
    unsigned char text[1400];
    const char *line = "GET /index.html HTTP/1.1\r\nHost: 10.0.0.3\r\nAccept: */*\r\n";
    for (size_t i = 0; i < sizeof text; i++) text[i] = (unsigned char)line[i % strlen(line)];
    vector("text1400", text, sizeof text);
    /* A payload starting with 0x50 (the v2 indicator byte) */
    unsigned char p50[300];
    for (size_t i = 0; i < sizeof p50; i++) p50[i] = (unsigned char)(i % 7 == 0 ? 0x50 : 'a');
    vector("starts50", p50, sizeof p50);
    return 0;
}
