//! `oxivpn-helper`: the privileged side of OxiVPN.

// One tunnel engine (`tunnel`) and one IPC service (`service`) for every OS; the Unix
// socket and the Windows named pipe (`winservice`) are the service's front doors, the
// foreground `connect` is one more session of the same engine.
#[cfg(any(unix, windows))]
mod connect;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod libm_pow;
mod service;
mod stop;
mod tunnel;
mod winservice;
mod wipe_alloc;

/// Freed memory is wiped: copies of passwords, tokens and keys made by code we do not
/// own do not outlive their buffers (see [`wipe_alloc`]).
#[global_allocator]
static ALLOC: wipe_alloc::WipingAlloc = wipe_alloc::WipingAlloc;

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    #[cfg(unix)]
    Service(service::unix::ServiceArgs),
    /// Connect with a profile in the foreground, like `openvpn --config` (root).
    #[cfg(any(unix, windows))]
    Connect(connect::ConnectArgs),
    /// Serve the app and oxivpnctl on a named pipe as the Windows service (the SCM runs
    /// this; from a console it runs in the foreground until Ctrl+C).
    #[cfg(windows)]
    Service(winservice::ServiceArgs),
    /// Register (or update) the Windows service; the installer runs this.
    #[cfg(windows)]
    InstallService(winservice::InstallArgs),
    /// Stop and remove the Windows service; the uninstaller runs this.
    #[cfg(windows)]
    UninstallService,
    /// The service (not supported on this OS yet).
    #[cfg(not(any(unix, windows)))]
    Service,
    /// Remove the lockdown's block-all and its setting (the package's removal runs this:
    /// lockdown outlives the helper's stop on purpose, not the package).
    #[cfg(unix)]
    RemoveLockdown {
        /// The helper's state directory.
        #[arg(long, default_value = "/var/lib/oxivpn")]
        state_dir: std::path::PathBuf,
    },
}

#[cfg(windows)]
fn log_file(args: &Args) -> Option<std::fs::File> {
    match &args.command {
        Command::Service(a) => winservice::open_log(a),
        _ => None,
    }
}

#[cfg(not(windows))]
fn log_file(_: &Args) -> Option<std::fs::File> {
    None
}

/// The log filter from RUST_LOG (`info` when unset or unreadable, with the reason).
fn log_filter(var: Option<&str>) -> (Targets, Option<String>) {
    let info = || Targets::new().with_default(LevelFilter::INFO);
    match var.map(str::trim).filter(|v| !v.is_empty()) {
        None => (info(), None),
        Some(v) => match v.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (info(), Some(format!("{v:?}: {e}"))),
        },
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `Targets` reads RUST_LOG's `level` and `target=level,...` forms; `EnvFilter`'s span
    // and field filters would link a regex engine (~200 KB of code pages, resident in
    // every run: issue 18) into a root service for filters nobody sets.
    let (filter, bad_filter) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let logs = tracing_subscriber::fmt().with_max_level(LevelFilter::TRACE);
    // Under the Windows service manager stderr goes nowhere: the service logs to a file.
    match log_file(&args) {
        Some(f) => logs
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .finish()
            .with(filter)
            .init(),
        None => logs
            .with_writer(std::io::stderr)
            .finish()
            .with(filter)
            .init(),
    }
    if let Some(e) = bad_filter {
        tracing::warn!("RUST_LOG ignored ({e}); logging at info");
    }
    // Before the runtime starts any thread.
    wipe_alloc::one_arena();
    match args.command {
        #[cfg(unix)]
        Command::Service(a) => service::unix::run(a),
        #[cfg(any(unix, windows))]
        Command::Connect(a) => connect::run(a),
        #[cfg(windows)]
        Command::Service(a) => winservice::run(a),
        #[cfg(windows)]
        Command::InstallService(a) => winservice::install(a),
        #[cfg(windows)]
        Command::UninstallService => winservice::uninstall(),
        #[cfg(unix)]
        Command::RemoveLockdown { state_dir } => service::lockdown::remove_everything(&state_dir),
        #[cfg(not(any(unix, windows)))]
        Command::Service => {
            anyhow::bail!("oxivpn-helper: the service is not supported on this OS yet")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_levels_and_targets_are_read_and_a_bad_value_falls_back_to_info() {
        let (f, bad) = log_filter(None);
        assert!(bad.is_none());
        assert!(f.would_enable("netcfg", &Level::INFO));
        assert!(!f.would_enable("netcfg", &Level::DEBUG));

        let (f, bad) = log_filter(Some("netcfg::dns=debug,warn"));
        assert!(bad.is_none());
        assert!(f.would_enable("netcfg::dns", &Level::DEBUG));
        assert!(!f.would_enable("oxivpn_helper", &Level::INFO));
        assert!(f.would_enable("oxivpn_helper", &Level::WARN));

        let (f, bad) = log_filter(Some("netcfg=loud"));
        let bad = bad.unwrap_or_default();
        assert!(bad.contains("netcfg=loud"), "{bad}");
        assert!(f.would_enable("netcfg", &Level::INFO));
        assert!(!f.would_enable("netcfg", &Level::DEBUG));
    }
}
