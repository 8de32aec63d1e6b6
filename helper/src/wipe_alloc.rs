//! The helper's global allocator: the system allocator, but every block is wiped before
//! it is given back (and `realloc` never lets the allocator move a block unwiped).
//!
//! Why. Secrets travel through code we do not own: serde_json's scratch buffer while a
//! frame is decoded (every profile with a `<key>` has escaped newlines, so the PEM goes
//! through it), ovpn-profile's parsed `Profile`, rustls' plaintext queue (the
//! key-method-2 message with the password), `PrivateKeyDer` (rustls-pki-types 1.16
//! implements `Zeroize` for it but has no `Drop` that calls it), ring's RSA/EC key
//! limbs (never wiped by ring), and every `Vec`/`String` that grew and left its old
//! buffer behind. Our own types wipe what they hold ([`ipc::Secret`],
//! [`ovpn_core::config::Secret`]); this allocator is the backstop for the copies they
//! cannot reach, so that after a session ends nothing of it stays in freed heap memory.
//! `helper/tests/service_secret_scan.rs` reads the helper's memory and checks it.
//!
//! Cost: one `memset` per freed byte, which the helper's workload (a few packets per
//! millisecond, buffers reused) does not notice.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// One malloc arena for the whole process (glibc), set before any thread starts.
///
/// glibc gives each thread that allocates while another holds the main arena its own
/// arena, up to 8 per core: the helper's few threads (tokio's workers and blocking pool)
/// then each keep freed blocks in memory the others cannot reuse, ~100-150 KiB
/// resident apiece (issue 18). Nothing in the helper allocates per packet, and glibc's
/// per-thread cache serves small blocks without the arena's lock, so sharing one arena
/// costs no throughput.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes a malloc tunable; it is called from `main` before
        // any other thread exists.
        let ok = unsafe { nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1) };
        if ok != 1 {
            // Not an error for the user: memory use stays as glibc's default.
            tracing::debug!("mallopt(M_ARENA_MAX, 1) refused");
        }
    }
}

/// [`System`] that wipes each block before freeing it.
pub struct WipingAlloc;

/// Zeroes `len` bytes at `ptr` with one `memset`; `black_box` makes the pointer escape,
/// so the compiler cannot treat the writes as dead stores before `free`.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees `ptr..ptr+len` is writable.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    std::hint::black_box(ptr);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

// SAFETY: every method forwards to `System` with the same layout contract; the only
// additions are writes inside blocks the caller still owns.
unsafe impl GlobalAlloc for WipingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes (GlobalAlloc contract).
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let the system realloc move the block: it would free the old one unwiped.
        // SAFETY: `new_size` is non-zero and does not overflow when rounded up to the
        // alignment (GlobalAlloc::realloc contract), so the new layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarded contract.
        let new = unsafe { System.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least `min` bytes long; the
            // old one is then wiped and freed with its own layout.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes_and_realloc_moves_and_keeps_contents() {
        let mut buf = vec![0xA5u8; 100];
        // SAFETY: `buf` is a live 100-byte buffer.
        unsafe { wipe(buf.as_mut_ptr(), buf.len()) };
        assert!(buf.iter().all(|&b| b == 0));

        let a = WipingAlloc;
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: blocks from this allocator, used only inside their bounds while live.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 0xA5, 64);
            let q = a.realloc(p, layout, 4096);
            assert!(!q.is_null());
            assert_ne!(
                p, q,
                "realloc always moves (the old block is wiped, then freed)"
            );
            assert!((0..64).all(|i| *q.add(i) == 0xA5), "contents kept");
            a.dealloc(q, Layout::from_size_align(4096, 8).unwrap());
        }
    }
}
