//! `oxivpn-helper`: the privileged side of OxiVPN.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "oxivpn-helper", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    Ok(())
}
