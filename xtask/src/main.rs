//! `cargo xtask`: the project's own commands.
//!
//! `demo` runs the product, `test` runs every test (installing the system packages
//! it needs first). Long suites (`bench`, `dist`, `soak`, `fuzz`) run by hand; `test`
//! runs each of them in a short smoke mode so none can rot.

mod bench;
mod demo;
mod deps;
mod dist;
mod fuzz;
mod openvpn_build;
mod soak;
mod sys;
mod test;
mod wine;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about = "OxiVPN's project commands")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build everything, start a local OpenVPN server in a network namespace and run the product.
    Demo(demo::DemoArgs),
    /// Install the system packages the tests need, then run every test.
    Test(test::TestArgs),
    /// OxiVPN's client against the reference openvpn client (root): connect time, throughput, CPU, RSS.
    Bench(bench::BenchArgs),
    /// Install the system packages only.
    Deps,
    /// Build the installers (.deb, .rpm, Windows setup.exe) into target/dist.
    Dist(dist::DistArgs),
    /// cargo-fuzz targets with libFuzzer, N seconds each (default 600; `--smoke`: 2000 runs).
    Fuzz(fuzz::FuzzArgs),
    /// Fault scenarios through a fault-injecting proxy, with figures (root; `--smoke` for CI).
    Soak(soak::SoakArgs),
    /// Build OpenVPN 2.5.11/2.7.6 (interop test servers) into /var/cache/oxivpn from a source tree.
    OpenvpnBuild(openvpn_build::OpenvpnBuildArgs),
    /// The Windows builds under Wine: unit tests of the portable crates and the helper,
    /// and the service end to end over its named pipe (part of `test`).
    Wine(wine::WineArgs),
    /// The bench's connect-time probe (run by the bench inside the client's namespace).
    #[command(hide = true)]
    BenchProbe(bench::probe::ProbeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo(args) => demo::run(&args),
        Cmd::Test(args) => test::run(&args),
        Cmd::Bench(args) => bench::run(&args),
        Cmd::Deps => deps::ensure(deps::ALL),
        Cmd::Dist(args) => dist::run(&args),
        Cmd::Fuzz(args) => fuzz::run(&args),
        Cmd::Soak(args) => soak::run(&args),
        Cmd::OpenvpnBuild(args) => openvpn_build::run(&args),
        Cmd::Wine(args) => wine::run(&args),
        Cmd::BenchProbe(args) => bench::probe::run(&args),
    }
}
