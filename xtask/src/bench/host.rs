//! The bench's surroundings: building the helper, the data-channel microbench,
//! the machine's description, writing and printing the report.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::measure;
use super::report::Report;
use crate::sys;

pub(super) fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join(" / ")
}

pub(super) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sys::root().join("target"))
}

/// Builds oxivpn-helper (release for a real run, debug for the smoke run, which CI
/// has already built) and returns its path.
pub(super) fn build_helper(release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = sys::cargo();
    cmd.args(["build", "-p", "oxivpn-helper"]);
    if release {
        cmd.arg("--release");
    }
    sys::run(&mut cmd)?;
    let path = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("oxivpn-helper");
    if !path.exists() {
        bail!("{} does not exist after the build", path.display());
    }
    Ok(path)
}

/// Whether the helper already has the `connect` subcommand.
pub(super) fn helper_can_connect(helper: &Path) -> bool {
    Command::new(helper)
        .args(["connect", "--help"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// AES-256-GCM at 1400 B from the criterion bench's ratio table (short times).
pub(super) fn data_channel() -> anyhow::Result<measure::DataChannelRow> {
    say("data channel: cargo bench -p ovpn-core --bench data_channel (short times)");
    let out = sys::cargo()
        .current_dir(sys::root())
        .args([
            "bench",
            "-p",
            "ovpn-core",
            "--bench",
            "data_channel",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "2",
            "^AES-256-GCM/.*/1400$",
        ])
        .output()
        .context("running cargo bench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "cargo bench failed ({}): {}",
            out.status,
            first_lines(String::from_utf8_lossy(&out.stderr).trim(), 20)
        );
    }
    measure::parse_data_channel_ratio(&text, "AES-256-GCM", 1400)
        .context("the data_channel bench printed no AES-256-GCM 1400 row in its ratio table")
}

pub(super) fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown-date".into())
}

/// CPU model, count and kernel, for the report header.
pub(super) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} vCPU ({model}), Linux {}; shared with other builds, so figures are noisy",
        kernel.trim()
    )
}

pub(super) fn openvpn_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "openvpn".into())
}

/// Writes `bench-<date>.md`, `bench-<date>.json` and `latest.md` into target/bench.
pub(super) fn bench_dir() -> PathBuf {
    sys::root().join("target").join("bench")
}

pub(super) fn write_report(report: &Report) -> anyhow::Result<String> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = report.date.replace(':', "");
    let md = report.markdown();
    let md_path = dir.join(format!("bench-{stamp}.md"));
    let json_path = dir.join(format!("bench-{stamp}.json"));
    std::fs::write(&md_path, &md)?;
    std::fs::write(&json_path, report.json())?;
    std::fs::write(dir.join("latest.md"), &md)?;
    Ok(format!("{} and {}", md_path.display(), json_path.display()))
}

#[allow(clippy::print_stdout)]
pub(super) fn print_report(report: &Report) {
    println!("\n{}", report.markdown());
}

#[allow(clippy::print_stdout)]
pub(super) fn say(msg: &str) {
    println!("bench: {msg}");
}

#[allow(clippy::print_stdout)]
pub(super) fn note(msg: &str) {
    println!("bench: NOTICE: {msg}");
}
