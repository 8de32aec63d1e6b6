//! `oxivpnctl`: OxiVPN from a terminal.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "oxivpnctl", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    Ok(())
}
