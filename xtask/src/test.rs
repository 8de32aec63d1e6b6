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
    sys::run(sys::cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    // The bench in smoke mode (tiny, < 1 min), so it cannot rot.
    crate::bench::run(&crate::bench::BenchArgs::smoke())?;
    // Installers in smoke mode (~30 s): .deb and .rpm from the debug binaries, checked.
    crate::dist::run(&crate::dist::DistArgs::smoke())?;
    Ok(())
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
