//! Windows under Wine, for `cargo xtask test` (and `cargo xtask wine` alone).
//!
//! 1. Debian's wine64 and mingw-w64 (installed when missing), a Wine prefix under
//!    `<target>/wine/prefix`, created once.
//! 2. `bcryptprimitives.dll`, our own shim (`wine/bcryptprimitives.c`): Rust >= 1.78's std
//!    for windows-gnu imports `ProcessPrng` from it and Wine 8.0 has no such DLL, so no
//!    Rust .exe starts without it. It forwards to RtlGenRandom, which Wine has.
//! 3. The windows-gnu unit tests of the portable crates and of the helper, run by Wine
//!    (cargo's target runner), with counts per crate.
//! 4. An end-to-end: `oxivpn-helper.exe service` serving its named pipe with its real
//!    security descriptor, and `oxivpnctl.exe` import / list / status / logs / connect over
//!    it, bad input included. Wine has no wintun, WFP or SetInterfaceDnsSettings, so a
//!    tunnel is only driven when the helper offers a stub tunnel (see `e2e`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::{deps, sys};

pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// Debian's wine64 puts its loader here (no `wine` on PATH without the wine package).
const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";
const PACKAGES: &[&str] = &["gcc-mingw-w64-x86-64", "wine64"];

const SHIM_C: &str = include_str!("wine/bcryptprimitives.c");
const SHIM_DEF: &str = include_str!("wine/bcryptprimitives.def");

/// Crates whose windows-gnu unit tests run under Wine, and the cargo selection for each.
const SUITES: &[(&str, &[&str])] = &[
    ("ipc", &["--lib", "--tests"]),
    ("netcfg", &["--lib", "--tests"]),
    ("ovpn-profile", &["--lib", "--tests"]),
    ("ovpn-core", &["--lib"]),
    ("profile-store", &["--lib", "--tests"]),
    // The helper's own logic (the Windows service's pure parts and glue); its tests/
    // directory is the Linux namespace lab.
    ("oxivpn-helper", &["--bins"]),
];

/// Tests that cannot work under Wine because Wine lacks the Windows API they exercise:
/// (crate, test name filter, the missing API). Each is skipped with the reason printed.
const SKIPS: &[(&str, &str, &str)] = &[];

/// Long pure-computation tests that exercise no Windows API and run natively on Linux in
/// the same `cargo xtask test`: under Wine they only cost minutes. (crate, filter, why).
const NATIVE_ONLY: &[(&str, &str, &str)] = &[(
    "ovpn-profile",
    "mutated_corpus",
    "parser robustness over thousands of mutated profiles (pure code, run natively)",
)];

#[derive(clap::Args, Debug, Default)]
pub struct WineArgs {
    /// Only the unit tests (no end-to-end).
    #[arg(long)]
    pub no_e2e: bool,
}

/// Test counts of one crate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u32,
    failed: u32,
    ignored: u32,
}

pub fn run(args: &WineArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    deps::ensure(PACKAGES)?;
    sys::run(Command::new("rustup").args(["target", "add", TARGET]))?;
    let wine = Wine::prepare(&crate::dist::target_dir().join("wine"))?;
    let _server = wine.persistent_server()?;
    let prepared = started.elapsed();

    let mut results = Vec::new();
    for (krate, selection) in SUITES {
        results.push((*krate, wine.unit_tests(krate, selection)?));
    }
    let units = started.elapsed();
    for (krate, c) in &results {
        eprintln!(
            "xtask wine: {krate}: {} passed, {} failed, {} ignored",
            c.passed, c.failed, c.ignored
        );
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, c)| c.failed > 0)
        .map(|(k, _)| *k)
        .collect();
    if !failed.is_empty() {
        bail!(
            "windows-gnu tests failed under Wine in {}",
            failed.join(", ")
        );
    }
    if !args.no_e2e {
        e2e::run(&wine)?;
    }
    eprintln!(
        "xtask wine: done in {:.0} s (prefix {:.0} s, unit tests {:.0} s, end-to-end {:.0} s)",
        started.elapsed().as_secs_f64(),
        prepared.as_secs_f64(),
        (units - prepared).as_secs_f64(),
        (started.elapsed() - units).as_secs_f64()
    );
    Ok(())
}

/// A Wine prefix of our own (never the user's ~/.wine) with the shim in system32.
pub struct Wine {
    dir: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    fn prepare(dir: &Path) -> anyhow::Result<Self> {
        let wine = Wine {
            dir: dir.to_owned(),
            prefix: dir.join("prefix"),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let system32 = wine.prefix.join("drive_c/windows/system32");
        if !system32.join("kernel32.dll").is_file() {
            let t = Instant::now();
            // No Mono or Gecko: nothing here needs .NET or an HTML engine, and their
            // installers would ask for a download.
            sys::run(
                wine.command(WINE)
                    .args(["wineboot", "--init"])
                    .env("WINEDLLOVERRIDES", "mscoree,mshtml="),
            )
            .context("creating the Wine prefix (Debian package wine64)")?;
            sys::run(wine.command(WINESERVER).arg("--wait"))?;
            eprintln!(
                "xtask wine: prefix {} created ({:.0} s)",
                wine.prefix.display(),
                t.elapsed().as_secs_f64()
            );
        }
        let dll = wine.build_shim()?;
        let installed = system32.join("bcryptprimitives.dll");
        if std::fs::read(&installed).ok() != std::fs::read(&dll).ok() {
            std::fs::copy(&dll, &installed)
                .with_context(|| format!("copying the shim to {}", installed.display()))?;
        }
        Ok(wine)
    }

    /// Compiles the shim when its source changed (a stamp holds the source it came from).
    fn build_shim(&self) -> anyhow::Result<PathBuf> {
        let dll = self.dir.join("bcryptprimitives.dll");
        let stamp = self.dir.join("bcryptprimitives.src");
        let source = format!("{SHIM_C}\n/* def */\n{SHIM_DEF}");
        if dll.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&source) {
            return Ok(dll);
        }
        let c = self.dir.join("bcryptprimitives.c");
        let def = self.dir.join("bcryptprimitives.def");
        std::fs::write(&c, SHIM_C).with_context(|| format!("writing {}", c.display()))?;
        std::fs::write(&def, SHIM_DEF).with_context(|| format!("writing {}", def.display()))?;
        sys::run(
            Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-s", "-o"])
                .arg(&dll)
                .arg(&c)
                .arg(&def)
                .arg("-ladvapi32"),
        )
        .context("building the ProcessPrng shim (Debian package gcc-mingw-w64-x86-64)")?;
        std::fs::write(&stamp, source).with_context(|| format!("writing {}", stamp.display()))?;
        Ok(dll)
    }

    /// A command with this prefix and Wine's own debug output off.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEARCH", "win64");
        c
    }

    /// One wineserver for the whole run (each .exe would otherwise start its own and
    /// wait for it), killed when the guard drops.
    fn persistent_server(&self) -> anyhow::Result<ServerGuard> {
        // A server left by an interrupted run of ours (same prefix) would refuse to start.
        let _ = self.command(WINESERVER).arg("--kill").status();
        sys::run(self.command(WINESERVER).arg("--persistent"))?;
        Ok(ServerGuard {
            kill: self.command(WINESERVER),
        })
    }

    /// cargo with the windows-gnu target run by Wine in this prefix.
    fn cargo(&self) -> Command {
        let mut c = sys::cargo();
        c.env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE);
        c
    }

    fn unit_tests(&self, krate: &str, selection: &[&str]) -> anyhow::Result<Counts> {
        let mut cmd = self.cargo();
        cmd.args([
            "test",
            "--locked",
            "--no-fail-fast",
            "--target",
            TARGET,
            "-p",
            krate,
        ])
        .args(selection)
        .arg("--");
        for (k, filter, api) in SKIPS {
            if *k == krate {
                eprintln!("xtask wine: SKIP {krate} {filter}: Wine has no {api}");
                cmd.args(["--skip", filter]);
            }
        }
        for (k, filter, why) in NATIVE_ONLY {
            if *k == krate {
                eprintln!("xtask wine: SKIP {krate} {filter}: {why}");
                cmd.args(["--skip", filter]);
            }
        }
        let (ok, stdout) = run_tee(&mut cmd)?;
        let counts = parse_counts(&stdout);
        if !ok && counts.failed == 0 {
            bail!("cargo test -p {krate} for {TARGET} under Wine failed before reporting results");
        }
        if counts.passed == 0 && counts.failed == 0 {
            bail!("cargo test -p {krate} under Wine ran no test");
        }
        Ok(counts)
    }
}

struct ServerGuard {
    kill: Command,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.kill.arg("--kill").status();
    }
}

/// Runs a command in the workspace root, echoing its stdout as it comes, and returns
/// (success, stdout).
fn run_tee(cmd: &mut Command) -> anyhow::Result<(bool, String)> {
    cmd.current_dir(sys::root()).stdout(Stdio::piped());
    eprintln!("xtask: $ {cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let mut all = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading test output")?;
            eprintln!("{line}");
            all.push_str(&line);
            all.push('\n');
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    Ok((status.success(), all))
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...` lines.
fn parse_counts(stdout: &str) -> Counts {
    let mut c = Counts::default();
    for line in stdout.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            match what {
                "passed" => c.passed += n,
                "failed" => c.failed += n,
                "ignored" => c.ignored += n,
                _ => {}
            }
        }
    }
    c
}

mod e2e;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_every_test_binary() {
        let out = "running 2 tests\ntest a ... ok\n\
            test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
            test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
            test passed ... ok\n";
        assert_eq!(
            parse_counts(out),
            Counts {
                passed: 7,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(parse_counts("no tests here\n"), Counts::default());
    }

    #[test]
    fn shim_exports_process_prng_and_forwards_to_rtl_gen_random() {
        assert!(SHIM_DEF.contains("ProcessPrng"));
        assert!(SHIM_C.contains("SystemFunction036"));
    }
}
