//! `cargo xtask fuzz [--seconds N] [--smoke] [--target NAME]`: every cargo-fuzz target
//! in fuzz/ (its own workspace) with libFuzzer, seeded from fuzz/seeds/<target>/, new
//! inputs kept in fuzz/corpus/<target>/ (not committed). A crash is copied to
//! fuzz/regressions/<target>/ (which tests/e2e/tests/fuzz_smoke.rs replays in every
//! `cargo test`) and fails the command.
//!
//! Toolchain: `cargo +nightly fuzz` when a nightly toolchain is installed, else the stable
//! one with `RUSTC_BOOTSTRAP=1` (cargo-fuzz needs `-Z` flags). cargo-fuzz itself is
//! installed from crates.io when missing. CI does not run this (cold build of the
//! sanitizer-instrumented crates takes minutes); it runs the stable smoke test instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::sys;

#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// Seconds per target (default 600).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// A fixed, short number of runs per target (2000) instead of a time budget.
    #[arg(long)]
    pub smoke: bool,
    /// Only this target (default: all of them).
    #[arg(long)]
    pub target: Option<String>,
}

pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    let fuzz = sys::root().join("fuzz");
    let targets = targets(&fuzz)?;
    let chosen: Vec<&String> = targets
        .iter()
        .filter(|t| args.target.as_ref().is_none_or(|w| w == *t))
        .collect();
    if chosen.is_empty() {
        bail!(
            "no fuzz target named {:?}; have {}",
            args.target,
            targets.join(", ")
        );
    }
    ensure_cargo_fuzz()?;
    let nightly = has_nightly();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sys::root().join("target"))
        .join("fuzz");
    let limit = if args.smoke {
        "-runs=2000".to_owned()
    } else {
        format!("-max_total_time={}", args.seconds.unwrap_or(600))
    };
    let mut rows = Vec::new();
    let mut crashed = Vec::new();
    for t in chosen {
        let corpus = fuzz.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = fuzz_cmd(nightly);
        cmd.current_dir(&fuzz)
            .args(["fuzz", "run", "--target-dir"])
            .arg(&target_dir)
            .arg(t)
            .arg(&corpus)
            .arg(fuzz.join("seeds").join(t))
            .args(["--", &limit, "-max_len=65536", "-print_final_stats=1"]);
        eprintln!("xtask: fuzzing {t} ({limit})");
        let started = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("running cargo fuzz for {t}"))?;
        let took = started.elapsed().as_secs_f64();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let runs = final_stat(&log, "stat::number_of_executed_units:").unwrap_or_default();
        let cov = cov(&log).unwrap_or_default();
        let corpus_n = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
        let ok = out.status.success();
        if !ok {
            let saved = save_crashes(&fuzz, t)?;
            eprintln!("{}", tail(&log, 40));
            crashed.push(format!(
                "{t} ({} inputs saved to fuzz/regressions/{t})",
                saved
            ));
        }
        eprintln!("xtask: {t}: {runs} runs in {took:.0} s, cov {cov}, corpus {corpus_n}, ok {ok}");
        rows.push(format!(
            "| {t} | {runs} | {took:.0} s | {cov} | {corpus_n} | {} |",
            if ok { "no crash" } else { "CRASH" }
        ));
    }
    let table = format!(
        "| target | runs | time | coverage (cov) | corpus | result |\n|---|---|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    let out_dir = target_dir.join("report");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("fuzz.md"), &table)?;
    eprintln!("\n{table}written to {}", out_dir.join("fuzz.md").display());
    if !crashed.is_empty() {
        bail!("fuzzing found crashes: {}", crashed.join("; "));
    }
    Ok(())
}

/// Target names from fuzz/Cargo.toml's `[[bin]]` sections.
fn targets(fuzz: &Path) -> anyhow::Result<Vec<String>> {
    let manifest =
        std::fs::read_to_string(fuzz.join("Cargo.toml")).context("reading fuzz/Cargo.toml")?;
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin {
            if let Some(v) = line.strip_prefix("name = ") {
                out.push(v.trim_matches('"').to_owned());
            }
        }
    }
    Ok(out)
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let ok = sys::cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        sys::run(sys::cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    Ok(())
}

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn fuzz_cmd(nightly: bool) -> Command {
    if nightly {
        let mut c = Command::new("cargo");
        c.arg("+nightly").env_remove("RUSTUP_TOOLCHAIN");
        c
    } else {
        let mut c = sys::cargo();
        c.env("RUSTC_BOOTSTRAP", "1");
        c
    }
}

/// A `-print_final_stats` value.
fn final_stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// The last `cov: N` libFuzzer reported.
fn cov(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let rest = l.split("cov: ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Copies libFuzzer's crash/timeout/oom artifacts of `t` into fuzz/regressions/<t>/.
fn save_crashes(fuzz: &Path, t: &str) -> anyhow::Result<usize> {
    let arts = fuzz.join("artifacts").join(t);
    let dest = fuzz.join("regressions").join(t);
    std::fs::create_dir_all(&dest)?;
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(&arts) {
        for e in rd.flatten() {
            let name = e.file_name();
            if ["crash-", "timeout-", "oom-", "leak-"]
                .iter()
                .any(|p| name.to_string_lossy().starts_with(p))
            {
                std::fs::copy(e.path(), dest.join(&name))?;
                n += 1;
            }
        }
    }
    Ok(n)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_figures_are_read_from_its_log() {
        let log = "#2\tINITED cov: 10 ft: 11\n#1024\tpulse  cov: 345 ft: 900 corp: 20/1Kb\n\
                   Done 2000 runs in 3 second(s)\nstat::number_of_executed_units: 2000\n";
        assert_eq!(
            final_stat(log, "stat::number_of_executed_units:"),
            Some(2000)
        );
        assert_eq!(cov(log), Some(345));
    }

    #[test]
    fn every_target_in_the_fuzz_manifest_is_found() {
        let t = targets(&sys::root().join("fuzz")).unwrap();
        assert!(t.contains(&"profile_parse".to_owned()), "{t:?}");
        assert!(t.contains(&"ipc_frames".to_owned()), "{t:?}");
        assert!(!t.contains(&"oxivpn-fuzz".to_owned()), "{t:?}");
    }
}
