//! `cargo xtask test`: every test, in the order that fails fastest.

use crate::{deps, sys};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    pub no_lint: bool,
}

pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    deps::ensure(deps::ALL)?;
    // Before any cargo step: Tauri's generate_context! embeds ui/dist at compile time.
    ui()?;
    if !args.no_lint {
        sys::run(sys::cargo().args(["fmt", "--all", "--", "--check"]))?;
        sys::run(sys::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // OpenVPN 2.5/2.7 test servers for the interop table: cached, built, or noted as skipped.
    crate::openvpn_build::ensure_cached()?;
    let mut tests = sys::cargo();
    tests.args(["test", "--workspace", "--no-fail-fast"]);
    if sys::is_root() {
        // The app's webview e2e (src-tauri/tests/webview_e2e.rs) must run here, not skip.
        tests
            .env("TAURI_DRIVER", tauri_driver()?)
            .env("OXIVPN_APP_E2E", "1");
    }
    sys::run(&mut tests)?;
    // The README's demo command in check mode: connect, ping the target, tear down (~10 s).
    if sys::is_root() {
        crate::demo::run(&crate::demo::DemoArgs {
            reference: false,
            check: true,
        })?;
    } else {
        eprintln!("xtask: NOTICE: not root; skipping the demo smoke");
    }
    // The bench in smoke mode (tiny, < 1 min), so it cannot rot.
    crate::bench::run(&crate::bench::BenchArgs::smoke())?;
    // Installers in smoke mode: .deb and .rpm from the debug binaries, and the Windows
    // installer from cross-built debug binaries (which also compiles netcfg, ipc,
    // ovpn-profile and ovpn-core for Windows), all checked.
    crate::dist::run(&crate::dist::DistArgs::smoke())?;
    // Fault scenarios through the fault-injecting proxy, one short pass each (root, ~45 s).
    crate::soak::run(&crate::soak::SoakArgs::smoke())?;
    // The Windows builds under Wine: unit tests and the service over its named pipe.
    crate::wine::run(&crate::wine::WineArgs::default())?;
    cross_check()?;
    Ok(())
}

/// `cargo check` of the portable crates for Windows and macOS, so per-OS code cannot rot
/// unseen (nothing runs there; the planner's logic tests run on Linux above). Targets
/// rustup cannot add are skipped with a notice. ovpn-core needs ring, whose build script
/// needs a C cross compiler: checked for Windows only when mingw-w64 is installed; for
/// macOS zig (from PyPI, see `dist::macos`) compiles it, so the helper and oxivpnctl are
/// checked there too.
fn cross_check() -> anyhow::Result<()> {
    let mingw = std::process::Command::new("x86_64-w64-mingw32-gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    // Windows is built (not only checked) by `dist --smoke` above; only the rest here.
    let windows: &[&str] = if mingw {
        &[]
    } else {
        &["netcfg", "ipc", "ovpn-profile"]
    };
    let targets: [(&str, &[&str]); 1] = [("x86_64-pc-windows-gnu", windows)];
    // macOS: the helper and oxivpnctl too, with zig as the C compiler (ring).
    crate::dist::macos_check()?;
    if !mingw {
        eprintln!("xtask: NOTICE: no x86_64-w64-mingw32-gcc; ovpn-core (ring) not cross-checked");
    }
    for (target, crates) in targets {
        if crates.is_empty() {
            continue;
        }
        let added = std::process::Command::new("rustup")
            .args(["target", "add", target])
            .status()
            .is_ok_and(|s| s.success());
        if !added {
            eprintln!("xtask: NOTICE: rustup cannot add {target}; skipping its cross-check");
            continue;
        }
        let started = std::time::Instant::now();
        let mut cmd = sys::cargo();
        cmd.args(["check", "--target", target]);
        for c in crates {
            cmd.args(["-p", c]);
        }
        sys::run(&mut cmd)?;
        eprintln!(
            "xtask: cross-check {target}: {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// tauri-driver, the WebDriver server for Tauri apps, from crates.io into
/// `<target>/tools/bin` (once; ~1.5 min cold). Pinned: 2.x drives Tauri 2 apps through
/// Debian's WebKitWebDriver.
fn tauri_driver() -> anyhow::Result<std::path::PathBuf> {
    let root = crate::demo::target_dir().join("tools");
    let bin = root.join("bin").join("tauri-driver");
    if !bin.exists() {
        sys::run(
            sys::cargo()
                .args(["install", "--locked", "--version", "2.0.6", "--root"])
                .arg(&root)
                .arg("tauri-driver"),
        )?;
    }
    Ok(bin)
}

/// The app's web front end: install (only when the lock file changed), build, vitest.
fn ui() -> anyhow::Result<()> {
    let ui = sys::root().join("ui");
    let lock = std::fs::metadata(ui.join("package-lock.json")).and_then(|m| m.modified());
    let installed =
        std::fs::metadata(ui.join("node_modules/.package-lock.json")).and_then(|m| m.modified());
    let fresh = matches!((lock, installed), (Ok(l), Ok(i)) if i >= l);
    let npm = || {
        let mut c = std::process::Command::new("npm");
        c.args([
            "--prefix",
            "ui",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]);
        c
    };
    if !fresh {
        sys::run(npm().arg("ci"))?;
    }
    sys::run(npm().args(["run", "build", "--silent"]))?;
    sys::run(npm().args(["run", "test", "--silent"]))
}
