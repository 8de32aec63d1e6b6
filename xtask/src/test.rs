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
    Ok(())
}
