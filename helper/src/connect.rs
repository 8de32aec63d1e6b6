//! `oxivpn-helper connect --config PROFILE`: one tunnel in the foreground, like
//! `openvpn --config`. Logs to stderr, prints `Initialization Sequence Completed` once
//! the tunnel is up, and on SIGINT/SIGTERM disconnects and removes everything it added.
//! It never daemonizes.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use ovpn_core::config::Credentials;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Level};

use crate::tunnel::killswitch::{self, KillSwitch};
use crate::tunnel::{self, remote_text, NetOptions, TunnelEnd, TunnelEvent, TunnelStage};

/// Where `connect` journals its network changes unless told otherwise (separate from
/// the service's journal, so both can run).
const DEFAULT_JOURNAL: &str = "/var/lib/oxivpn/connect-journal.json";
/// Longest wait between reconnects after a connected session dropped.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The .ovpn profile; files it names are read next to it.
    #[arg(long)]
    pub config: PathBuf,
    /// A file with the user name on the first line and the password on the second.
    #[arg(long)]
    pub auth_file: Option<PathBuf>,
    /// Journal of network changes (a crashed run's changes are undone at the next start).
    #[arg(long, default_value = DEFAULT_JOURNAL)]
    pub journal: PathBuf,
    /// TUN device name or pattern (default `oxi%d`).
    #[arg(long)]
    pub dev: Option<String>,
    /// Leave DNS alone.
    #[arg(long)]
    pub no_dns: bool,
    /// Extra directory holding dhclient lease files (for finding the DHCP server).
    #[arg(long)]
    pub dhcp_lease_dir: Vec<PathBuf>,
    /// Leak protection is on while the tunnel redirects all traffic (redirect-gateway in
    /// the profile or pushed); this turns it off.
    #[arg(long)]
    pub no_kill_switch: bool,
}

pub fn run(args: ConnectArgs) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("`connect` must run as root: it creates a TUN device and changes routes and DNS");
    }
    let resolved = profile_store::resolve(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    for f in &resolved.report.findings {
        let line = f.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        match f.severity {
            ovpn_profile::Severity::Error | ovpn_profile::Severity::Refused => {
                error!("{}: {line}{}", args.config.display(), f.message)
            }
            ovpn_profile::Severity::Unsupported | ovpn_profile::Severity::NeedsFile => {
                warn!("{}: {line}{}", args.config.display(), f.message)
            }
            _ => {}
        }
    }
    let Some(profile) = resolved.profile.clone() else {
        bail!(
            "{} cannot be used: {}",
            args.config.display(),
            resolved.report.reason.clone().unwrap_or_default()
        );
    };
    if !resolved.report.usable {
        bail!(
            "{} cannot be used: {}",
            args.config.display(),
            resolved.report.reason.clone().unwrap_or_default()
        );
    }
    let credentials = if profile.auth_user_pass.is_some() {
        Some(credentials(&args, resolved.credentials.as_ref())?)
    } else {
        None
    };

    let mut net = NetOptions::default();
    net.session.journal_path = args.journal.clone();
    if args.no_dns {
        net.session.dns.backend = netcfg::DnsBackendChoice::Disabled;
    }
    net.discover
        .leases
        .dhclient_dirs
        .extend(args.dhcp_lease_dir.iter().cloned());
    net.tun_name = args.dev.clone();

    match netcfg::recover(&args.journal) {
        Ok(r) if r.undone + r.swept > 0 => warn!(
            undone = r.undone,
            swept = r.swept,
            "undid network changes left by a previous run"
        ),
        Ok(_) => {}
        Err(e) => warn!("network recovery from {}: {e}", args.journal.display()),
    }
    net.kill_switch = kill_switch(&args, profile.redirect_gateway.is_some())?;

    // One thread: the tunnel is one driver task that batches its I/O; worker threads
    // only added wake-ups, context switches and memory (see README, Performance).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let ks = net.kill_switch.clone();
        let res = connect_loop(profile, credentials, net).await;
        // Deliberate disconnect or giving up: traffic flows again (a crash keeps it blocked).
        if let Some(ks) = ks {
            match ks.remove().await {
                Ok(()) => info!("kill switch removed"),
                Err(e) => error!("{e}"),
            }
        }
        res
    })
}

/// The kill switch for this run, after deciding about one a crashed run left: it stays on
/// (and is replaced by the first apply) only when this run protects the same way.
fn kill_switch(args: &ConnectArgs, profile_redirects: bool) -> anyhow::Result<Option<KillSwitch>> {
    let opts = netcfg::FirewallOptions {
        journal_path: killswitch::journal_for(&args.journal),
        ..netcfg::FirewallOptions::default()
    };
    let mut leftover = netcfg::Firewall::recover(&opts).with_context(|| {
        format!(
            "recovering the kill switch from {}",
            opts.journal_path.display()
        )
    })?;
    if let Some(fw) = leftover.as_mut() {
        if args.no_kill_switch || !profile_redirects {
            fw.remove()
                .context("removing the kill switch a previous run left")?;
            warn!("removed the kill switch left by a previous run");
            leftover = None;
        } else {
            warn!("kept the kill switch left by a previous run on while connecting");
        }
    }
    if args.no_kill_switch {
        return Ok(None);
    }
    Ok(Some(KillSwitch::new(&args.journal, false, leftover)))
}

async fn connect_loop(
    profile: ovpn_profile::Profile,
    credentials: Option<Credentials>,
    net: NetOptions,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => info!("SIGINT received, disconnecting"),
                _ = term.recv() => info!("SIGTERM received, disconnecting"),
            }
            stop.cancel();
        });
    }
    let mut auth_token = None;
    let mut backoff = Duration::from_secs(1);
    let mut ever_connected = false;
    loop {
        let used_token = auth_token.is_some();
        let spec = tunnel::TunnelSpec {
            profile: profile.clone(),
            credentials: credentials.clone(),
            auth_token: auth_token.clone(),
            remote_index: None,
            net: net.clone(),
            gui_version: Some(format!("OxiVPN_{}", env!("CARGO_PKG_VERSION"))),
            challenge_response: None,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                print_event(ev);
            }
        });
        let out = tunnel::run(spec, tx, stop.clone()).await;
        let _ = printer.await;
        auth_token = out.auth_token.clone();
        ever_connected |= out.was_connected;
        match out.end {
            TunnelEnd::Stopped => {
                info!("disconnected; network configuration restored");
                return Ok(());
            }
            TunnelEnd::AuthFailed(m) if used_token => {
                warn!("{m}; authenticating again with the password");
            }
            TunnelEnd::AuthFailed(m) => {
                bail!("AUTH_FAILED: the server refused the credentials ({m})")
            }
            TunnelEnd::Fatal(m) => bail!("{m}"),
            // Never connected: a wrong profile or an unreachable server; say so and stop.
            TunnelEnd::Retry { reason, .. } if !ever_connected => {
                bail!("could not connect: {reason}")
            }
            // Once connected, keep trying (like openvpn): giving up would remove the kill
            // switch, so anyone who blocks the server for a minute would get plain traffic.
            TunnelEnd::Retry { reason, .. } => {
                if out.was_connected {
                    backoff = Duration::from_secs(1);
                }
                let what = if out.was_connected {
                    "connection lost"
                } else {
                    "reconnect failed"
                };
                warn!("{what}: {reason}; reconnecting in {} s", backoff.as_secs());
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return Ok(()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn print_event(ev: TunnelEvent) {
    match ev {
        TunnelEvent::Stage(s) => match s {
            TunnelStage::Resolving { host } => info!("resolving {host}"),
            TunnelStage::Connecting { remote, tcp } => {
                info!("connecting to {}", remote_text(&remote, tcp))
            }
            TunnelStage::Tls => info!("TLS handshake"),
            TunnelStage::Authenticating => info!("authenticating"),
            TunnelStage::Configuring => info!("getting the configuration"),
            TunnelStage::Connected {
                tunnel_ipv4,
                tunnel_ipv6,
                interface,
            } => {
                let v4 = tunnel_ipv4
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into());
                let v6 = tunnel_ipv6
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into());
                info!("tunnel up on {interface} (IPv4 {v4}, IPv6 {v6})");
                info!("Initialization Sequence Completed");
            }
        },
        TunnelEvent::Log(level, msg) => match level {
            Level::ERROR => error!("{msg}"),
            Level::WARN => warn!("{msg}"),
            Level::INFO => info!("{msg}"),
            _ => tracing::debug!("{msg}"),
        },
        TunnelEvent::Stats(s) => {
            tracing::trace!(bytes_in = s.bytes_in, bytes_out = s.bytes_out, "statistics")
        }
        TunnelEvent::AuthToken(_) => tracing::debug!("the server issued a session token"),
        TunnelEvent::Challenge(c) => {
            warn!("the server asks for a challenge response ({c:?}); `connect` cannot answer it")
        }
        TunnelEvent::Negotiated(d) => info!(
            "data channel {} over {}, control channel {}",
            d.cipher.as_deref().unwrap_or("?"),
            remote_text(&d.remote, d.tcp),
            d.tls.as_deref().unwrap_or("?")
        ),
        TunnelEvent::Plan(_) => {}
        TunnelEvent::SignIn(n) => {
            warn!("sign in with your browser to continue: {}", n.url);
            if let Some(s) = n.seconds_left {
                info!("the server waits {s} s for the sign-in");
            }
        }
        TunnelEvent::CrText(p) => warn!(
            "the server asks: {:?}; `connect` cannot answer it (use the service: oxivpnctl connect)",
            p.text
        ),
    }
}

/// User name and password: `--auth-file`, else the profile's inline block, else the terminal.
fn credentials(
    args: &ConnectArgs,
    from_profile: Option<&profile_store::Credentials>,
) -> anyhow::Result<Credentials> {
    if let Some(f) = &args.auth_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the auth file {}", f.display()))?;
        let (username, password) = ovpn_profile::parse_credentials(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        let Some(password) = password else {
            bail!("{}: the second line (the password) is missing", f.display());
        };
        return Ok(Credentials { username, password });
    }
    if let Some(c) = from_profile {
        if let Some(p) = &c.password {
            return Ok(Credentials {
                username: c.username.clone(),
                password: p.clone(),
            });
        }
    }
    if !std::io::stdin().is_terminal() {
        bail!("the profile needs a user name and password: pass --auth-file FILE (no terminal to ask on)");
    }
    let username = match from_profile {
        Some(c) => c.username.clone(),
        None => {
            eprint!("Enter Auth Username: ");
            let _ = std::io::stderr().flush();
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u)?;
            u.trim().to_owned()
        }
    };
    let password = rpassword::prompt_password("Enter Auth Password: ")?;
    Ok(Credentials { username, password })
}
