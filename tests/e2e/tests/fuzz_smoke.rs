//! Stable-toolchain smoke run of every cargo-fuzz target body (fuzz/src/bodies.rs, shared
//! with the libFuzzer targets): each body runs over its committed seeds
//! (fuzz/seeds/<target>/), every regression input (fuzz/regressions/<target>/, crashes
//! found by `cargo xtask fuzz` land there), and a fixed number of deterministic mutations
//! of them (`OXIVPN_FUZZ_SMOKE_ITERS`, default 20,000 per target). A panicking input is
//! written to target/fuzz-smoke-failures/ and named in the failure. The real fuzzing
//! (coverage-guided, minutes per target) is `cargo xtask fuzz`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

#[path = "../../../fuzz/src/bodies.rs"]
mod bodies;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use oxivpn_e2e::Rng;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter().map(|(_, d)| d).collect()
}

/// One structural mutation step, libFuzzer-style but tiny.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => {
            let bit = rng.below(len * 8);
            input[bit / 8] ^= 1 << (bit % 8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = [0, 0xff, 0x7f, 0x80, 1, b',', b'\n', b' '][rng.below(8)];
        }
        2 => {
            let at = rng.below(len + 1);
            let mut ins = vec![0u8; 1 + rng.below(16)];
            rng.fill(&mut ins);
            input.splice(at..at, ins);
        }
        3 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(16)).min(len);
            input.drain(a..b);
        }
        4 => input.truncate(rng.below(len + 1)),
        5 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(32)).min(len);
            let piece = input[a..b].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, piece);
        }
        6 if !others.is_empty() => {
            let o = &others[rng.below(others.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(o.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&o[from..]);
        }
        _ => {
            // Interesting integers at a random place (lengths, counts, ids).
            if len >= 4 {
                let i = rng.below(len - 3);
                let v: u32 = [0, 1, 0xffff, 0x7fff_ffff, 0xffff_ffff, 1500, 65536][rng.below(7)];
                input[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
    }
}

fn run_target(name: &str, body: fn(&[u8]), iters: usize) -> usize {
    let dir = fuzz_dir();
    let seeds = files_in(&dir.join("seeds").join(name));
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{name}");
    let mut inputs = seeds.clone();
    inputs.extend(files_in(&dir.join("regressions").join(name)));
    let mut rng = Rng::new(0x0f22 ^ name.len() as u64);
    for i in 0..iters {
        let mut x = if i % 10 == 9 {
            let mut r = vec![0u8; rng.below(512)];
            rng.fill(&mut r);
            r
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut x, &seeds);
        }
        inputs.push(x);
    }
    for input in &inputs {
        if catch_unwind(AssertUnwindSafe(|| body(input))).is_err() {
            let out =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-smoke-failures");
            std::fs::create_dir_all(&out).unwrap();
            let file = out.join(format!("{name}-{:016x}.bin", fnv(input)));
            std::fs::write(&file, input).unwrap();
            panic!(
                "fuzz body {name} panicked on an input saved as {} ({} bytes; first bytes {:02x?})",
                file.display(),
                input.len(),
                &input[..input.len().min(64)]
            );
        }
    }
    inputs.len()
}

fn fnv(d: &[u8]) -> u64 {
    d.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_mutations() {
    let iters = std::env::var("OXIVPN_FUZZ_SMOKE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    for (name, body) in bodies::TARGETS {
        let t = std::time::Instant::now();
        let n = run_target(name, *body, iters);
        eprintln!(
            "fuzz smoke {name}: {n} inputs in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn every_cargo_fuzz_target_has_a_body_and_seeds() {
    let dir = fuzz_dir();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for (name, _) in bodies::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} missing from fuzz/Cargo.toml"
        );
        assert!(dir.join("fuzz_targets").join(format!("{name}.rs")).exists());
        assert!(dir.join("seeds").join(name).is_dir(), "no seeds for {name}");
    }
}
