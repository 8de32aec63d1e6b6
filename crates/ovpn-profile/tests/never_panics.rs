//! Random and mutated profiles never panic, never take long, and never allocate
//! more than a bound. Short on purpose so CI runs it in seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to System.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// Counts live bytes per thread, so parallel tests do not disturb each other.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = CURRENT.try_with(|c| {
            let now = c.get() + layout.size();
            c.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = CURRENT.try_with(|c| c.set(c.get().saturating_sub(layout.size())));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Parse and check the bounds: time and peak extra memory.
fn check(bytes: &[u8]) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let start = Instant::now();
    let (profile, report) = ovpn_profile::import(bytes);
    if let Some(p) = &profile {
        let _ = p.to_ovpn_text();
    }
    let _ = report.to_text();
    let elapsed = start.elapsed();
    let peak = PEAK.with(Cell::get).saturating_sub(base);
    // Loose enough for a loaded debug-build CI machine; a hang or a quadratic
    // blow-up at these sizes takes far longer.
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} for {} bytes",
        bytes.len()
    );
    // A few copies of the input, plus per-directive findings: at most
    // MAX_DIRECTIVES of them at well under 1.5 KiB each.
    let bound = 16 * bytes.len() + (32 << 20);
    assert!(
        peak <= bound,
        "peak {peak} bytes for {} bytes of input",
        bytes.len()
    );
    if !report.usable {
        assert!(report.reason.as_deref().is_some_and(|r| !r.is_empty()));
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ovpn");
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name() != "SOURCES.tsv")
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        files.push(b"client\ndev tun\nremote a.example 1194\n<ca>\nx\n</ca>\n".to_vec());
    }
    files
}

/// Lines built from profile vocabulary, so the generator reaches deep paths.
fn line() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "client",
        "remote",
        "<ca>",
        "</ca>",
        "<connection>",
        "</connection>",
        "<tls-auth>",
        "</tls-auth>",
        "--up",
        "UP",
        "setenv",
        "opt",
        "\"",
        "'",
        "\\",
        "#",
        ";",
        "1194",
        "udp",
        "tcp-client",
        "dev",
        "tun",
        "tap",
        "key-direction",
        "1",
        "pkcs12",
        "<pkcs12>",
        "</pkcs12>",
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "MIIB",
        "auth-user-pass",
        "route",
        "pull-filter",
        "ignore",
        "\r",
        "\u{feff}",
        "tls-cipher",
        "DHE-RSA-AES256-SHA",
        "http-proxy",
        "$CA$",
        "{{ca}}",
        "<ip>",
        "secret",
        "ignore-unknown-option",
    ]);
    prop::collection::vec(words, 0..8).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check(&bytes);
    }

    #[test]
    fn vocabulary_soup(lines in prop::collection::vec(line(), 0..64)) {
        check(lines.join("\n").as_bytes());
    }

    #[test]
    fn mutated_corpus(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..16),
    ) {
        let files = corpus();
        let mut f = pick.get(&files).clone();
        for (at, byte, op) in edits {
            if f.is_empty() {
                f.push(byte);
                continue;
            }
            let i = at.index(f.len());
            match op {
                0 => f[i] = byte,
                1 => { f.remove(i); }
                2 => f.insert(i, byte),
                // Duplicate a chunk (repeated blocks, repeated options).
                _ => {
                    let end = (i + 64).min(f.len());
                    let chunk = f[i..end].to_vec();
                    f.splice(i..i, chunk);
                }
            }
        }
        check(&f);
    }
}

#[test]
fn huge_and_pathological_inputs_are_bounded() {
    check(&vec![b'a'; 50 * 1024 * 1024]);
    check(&b"remote a\n".repeat(200_000));
    check(
        format!("<ca>\n{}", "A".repeat(100) + "\n")
            .repeat(1)
            .as_bytes(),
    );
    check(&b"\"".repeat(100_000));
    check(&b"\\".repeat(8000));
    check(format!("<ca>\n{}", "x\n".repeat(300_000)).as_bytes());
    // Many distinct values of accumulating / last-wins options stay linear.
    let many: String = (0..19_000).map(|i| format!("setenv K{i} v\n")).collect();
    check(many.as_bytes());
    let routes: String = (0..19_000)
        .map(|i| format!("route 10.{}.{}.0 255.255.255.0\n", i / 256, i % 256))
        .collect();
    check(routes.as_bytes());
    let fps: String = (0..19_000)
        .map(|_| format!("peer-fingerprint {}\n", ["AB"; 32].join(":")))
        .collect();
    check(fps.as_bytes());
}
