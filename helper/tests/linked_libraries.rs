//! The shared libraries the helper asks the loader for: libc, the unwinder (libgcc_s,
//! for panics that must still run the undo path) and the loader itself, nothing more.
//! Each extra library is mapped into every helper process (libm.so.6 cost ~330 KiB of
//! resident memory for one `pow`; see src/libm_pow.rs).
#![cfg(all(target_os = "linux", target_env = "gnu"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn helper_needs_only_libc_the_unwinder_and_the_loader() {
    let exe = env!("CARGO_BIN_EXE_oxivpn-helper");
    let out = Command::new("readelf")
        .args(["--dynamic", "--wide", exe])
        .output()
        .expect("readelf (binutils, installed with the C toolchain cargo links with)");
    assert!(out.status.success(), "readelf failed on {exe}");
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(
        needed.iter().any(|n| n.starts_with("libc.so")),
        "{needed:?}"
    );
    let allowed = [
        "libc.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ];
    let extra: Vec<&&str> = needed.iter().filter(|n| !allowed.contains(n)).collect();
    assert!(
        extra.is_empty(),
        "the helper loads {extra:?} besides {allowed:?}"
    );
}
