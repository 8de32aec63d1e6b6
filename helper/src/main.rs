//! `oxivpn-helper`: the privileged side of OxiVPN.

mod connect;
mod service;
mod tunnel;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "oxivpn-helper", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the app and oxivpnctl on a Unix socket, in the foreground (the systemd
    /// unit runs this).
    Service(service::ServiceArgs),
    /// Connect with a profile in the foreground, like `openvpn --config` (root).
    Connect(connect::ConnectArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.command {
        Command::Service(a) => service::run(a),
        Command::Connect(a) => connect::run(a),
    }
}
