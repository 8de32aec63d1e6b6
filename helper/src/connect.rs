//! `oxivpn-helper connect --config PROFILE`: one tunnel in the foreground, like
//! `openvpn --config`. Logs to stderr, prints `Initialization Sequence Completed` once
//! the tunnel is up, and on SIGINT/SIGTERM (Ctrl+C on Windows) disconnects and removes
//! everything it added. It never daemonizes. It is one session of the same supervisor
//! and launcher as the service's, with a terminal printer instead of IPC clients.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use ipc::{ConnectOptions, DisconnectReason, KillSwitchMode, LogLevel, SessionId, Stage};
use ovpn_core::config::{Credentials, Secret};
use ovpn_profile::inline::ReadFailure;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::stop::StopSignal;
use crate::tunnel::launcher::{Journals, Launcher};
use crate::tunnel::supervisor::{self, Control, Policy};
use crate::tunnel::{killswitch, NetOptions, SessionEvent, SessionSpec};

/// Where `connect` journals its network changes unless told otherwise (separate from
/// the service's journals, so both can run).
fn default_journal() -> PathBuf {
    #[cfg(windows)]
    let dir = std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("OxiVPN");
    #[cfg(not(windows))]
    let dir = PathBuf::from("/var/lib/oxivpn");
    dir.join("connect-journal.json")
}
/// The one session of this run.
const SESSION: SessionId = SessionId(1);

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The .ovpn profile; files it names are read next to it.
    #[arg(long)]
    pub config: PathBuf,
    /// A file with the user name on the first line and the password on the second.
    #[arg(long)]
    pub auth_file: Option<PathBuf>,
    /// A file whose first line is the passphrase of the profile's private key (PEM or
    /// PKCS#12); without it an encrypted key's passphrase is asked on the terminal.
    #[arg(long)]
    pub key_passphrase_file: Option<PathBuf>,
    /// A file with the proxy's (http-proxy / socks-proxy) user name on the first line and
    /// its password on the second; without it they are asked on the terminal when the
    /// profile's proxy needs them.
    #[arg(long)]
    pub proxy_auth_file: Option<PathBuf>,
    /// Journal of network changes (a crashed run's changes are undone at the next start).
    #[arg(long, default_value_os_t = default_journal())]
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
    // Windows: creating the wintun adapter fails with a clear error when not elevated.
    #[cfg(unix)]
    if !nix::unistd::Uid::effective().is_root() {
        bail!("`connect` must run as root: it creates a TUN device and changes routes and DNS");
    }
    let resolved = ovpn_profile::inline::resolve_path(&args.config, &mut read_file)
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
    let key_passphrase = key_passphrase(&args, &profile, resolved.key_passphrase.as_ref())?;
    let proxy_credentials =
        proxy_credentials(&args, &profile, resolved.proxy_credentials.as_ref())?;

    let mut net = NetOptions::default();
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
    let launcher = Launcher::real(net, Journals::Fixed(args.journal.clone()));
    if let Some(leftover) = leftover_kill_switch(&args, profile.redirect_gateway.is_some())? {
        launcher.adopt_kill_switch(SESSION, leftover);
    }
    let spec = Arc::new(SessionSpec {
        id: SESSION,
        profile: Arc::new(profile),
        credentials,
        proxy_credentials,
        static_response: None,
        key_passphrase,
        options: ConnectOptions {
            kill_switch: if args.no_kill_switch {
                KillSwitchMode::Off
            } else {
                KillSwitchMode::Default
            },
            allow_lan: false,
        },
    });

    // One thread: the tunnel is one driver task that batches its I/O, so worker
    // threads would only add wake-ups, context switches and memory.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        #[cfg(unix)]
        let mut signals = crate::stop::Signals::new().context("installing signal handlers")?;
        #[cfg(windows)]
        let mut signals = crate::stop::CtrlC::new();
        let (stop_tx, stop_rx) = watch::channel(None);
        tokio::spawn(async move {
            signals.stopped().await;
            let _ = stop_tx.send(Some(0));
            // Keep the sender: a dropped one would read as a stop too, which it is.
            std::future::pending::<()>().await;
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            let mut up = false;
            let mut drops = ipc::DropCounts::default();
            while let Some(ev) = rx.recv().await {
                if let SessionEvent::Stats(st) = &ev {
                    log_drops(&mut drops, &st.drops);
                }
                print_event(ev, &mut up);
            }
        });
        let control = Control {
            stop: stop_rx,
            answers: None,
            reconnect: None,
        };
        let policy = Policy {
            give_up_unless_connected: true,
        };
        // The supervisor lifts the kill switch when the session ends on purpose or gives up
        // (a crash keeps it blocked).
        let reason = supervisor::run(spec, Arc::new(launcher), tx, control, policy).await;
        let _ = printer.await;
        match reason {
            DisconnectReason::Requested { .. } | DisconnectReason::HelperShutdown => {
                info!("disconnected; network configuration restored");
                Ok(())
            }
            DisconnectReason::AuthFailed { message } => {
                bail!("AUTH_FAILED: the server refused the credentials ({message})")
            }
            other => bail!("{other}"),
        }
    })
}

/// The files the profile names, read for `ovpn_profile::inline` (at most `limit` bytes of
/// a regular file; FIFOs and devices are refused before opening, so a name in the
/// profile cannot make us block).
fn read_file(path: &Path, limit: usize) -> Result<Vec<u8>, ReadFailure> {
    let meta = std::fs::metadata(path).map_err(ReadFailure::Io)?;
    if !meta.is_file() {
        return Err(ReadFailure::NotAFile);
    }
    let f = std::fs::File::open(path).map_err(ReadFailure::Io)?;
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    f.take(cap).read_to_end(&mut buf).map_err(ReadFailure::Io)?;
    if buf.len() > limit {
        let size = usize::try_from(meta.len())
            .unwrap_or(usize::MAX)
            .max(buf.len());
        return Err(ReadFailure::TooBig { size, head: buf });
    }
    Ok(buf)
}

/// A kill switch a crashed run left: it stays on (and is replaced by the first apply)
/// only when this run protects the same way; otherwise it goes now.
fn leftover_kill_switch(
    args: &ConnectArgs,
    profile_redirects: bool,
) -> anyhow::Result<Option<netcfg::Firewall>> {
    let opts = netcfg::FirewallOptions {
        journal_path: killswitch::journal_for(&args.journal),
        ..netcfg::FirewallOptions::default()
    };
    let leftover = netcfg::Firewall::recover(&opts).with_context(|| {
        format!(
            "recovering the kill switch from {}",
            opts.journal_path.display()
        )
    })?;
    match leftover {
        Some(mut fw) if args.no_kill_switch || !profile_redirects => {
            fw.remove()
                .context("removing the kill switch a previous run left")?;
            warn!("removed the kill switch left by a previous run");
            Ok(None)
        }
        Some(fw) => {
            warn!("kept the kill switch left by a previous run on while connecting");
            Ok(Some(fw))
        }
        None => Ok(None),
    }
}

/// Logs the drop counters of the current attempt whenever they change (at most once a
/// stats tick), so a `connect` run's log says what was dropped, by reason.
fn log_drops(last: &mut ipc::DropCounts, now: &ipc::DropCounts) {
    if now == last {
        return;
    }
    info!(
        malformed = now.malformed,
        replayed = now.replayed,
        auth_failed = now.auth_failed,
        compression = now.compression,
        unknown_key = now.unknown_key,
        epoch = now.epoch,
        not_connected = now.not_connected,
        other = now.other,
        "data channel drops"
    );
    *last = *now;
}

/// The terminal printer: what the service publishes to clients, as log lines. `up`:
/// the tunnel got up since the last reconnect (a drop then reads "connection lost").
fn print_event(ev: SessionEvent, up: &mut bool) {
    match ev {
        SessionEvent::Stage(s) => match s {
            Stage::Connecting { remote } => info!("connecting to {remote}"),
            Stage::Tls => info!("TLS handshake"),
            Stage::Authenticating => info!("authenticating"),
            Stage::Configuring => info!("getting the configuration"),
            Stage::Connected {
                tunnel_ipv4,
                tunnel_ipv6,
                interface,
            } => {
                let show =
                    |a: Option<std::net::IpAddr>| a.map_or_else(|| "-".into(), |a| a.to_string());
                let iface = interface.as_ref().map_or("?", |i| i.as_str());
                info!(
                    "tunnel up on {iface} (IPv4 {}, IPv6 {})",
                    show(tunnel_ipv4),
                    show(tunnel_ipv6)
                );
                info!("Initialization Sequence Completed");
                *up = true;
            }
            Stage::Reconnecting {
                reason, delay_ms, ..
            } => {
                let what = if std::mem::take(up) {
                    "connection lost"
                } else {
                    "reconnect failed"
                };
                warn!("{what}: {reason}; reconnecting in {} s", delay_ms / 1000)
            }
            Stage::Disconnected { reason } => info!("session ended: {reason}"),
            Stage::Starting | Stage::Resolving => {}
        },
        SessionEvent::Log(level, msg) => match level {
            LogLevel::Error => error!("{msg}"),
            LogLevel::Warn => warn!("{msg}"),
            LogLevel::Info => info!("{msg}"),
            LogLevel::Debug => tracing::debug!("{msg}"),
        },
        SessionEvent::Stats(s) => {
            tracing::trace!(bytes_in = s.bytes_in, bytes_out = s.bytes_out, "statistics")
        }
        SessionEvent::Challenge(c) => {
            warn!("the server asks: {} (`connect` cannot answer it)", c.prompt)
        }
        SessionEvent::SignIn(r) => {
            warn!("sign in with your browser to continue: {}", r.url.as_str());
            if let Some(s) = r.timeout_secs {
                info!("the server waits {s} s for the sign-in");
            }
        }
        SessionEvent::CrText(p) => warn!(
            "the server asks: {:?}; `connect` cannot answer it (use the service: oxivpnctl connect)",
            p.text
        ),
        SessionEvent::Connection(c) => info!(
            "data channel {} over {} {}:{}, control channel {}",
            c.cipher.as_ref().map_or("?", |x| x.as_str()),
            match c.transport {
                ipc::Transport::Tcp => "tcp",
                ipc::Transport::Udp => "udp",
            },
            c.server_addr,
            c.server_port,
            c.tls.as_ref().map_or("?", |x| x.as_str())
        ),
        SessionEvent::Routes(..) => {}
    }
}

/// User name and password: `--auth-file`, else the profile's inline block, else the terminal.
fn credentials(
    args: &ConnectArgs,
    from_profile: Option<&ovpn_profile::inline::Credentials>,
) -> anyhow::Result<Credentials> {
    if let Some(f) = &args.auth_file {
        // The file's text holds the password: wiped once it is parsed.
        let text = Secret::from(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the auth file {}", f.display()))?,
        );
        let (username, password) = ovpn_profile::parse_credentials(text.expose())
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        let Some(password) = password else {
            bail!("{}: the second line (the password) is missing", f.display());
        };
        return Ok(Credentials {
            username,
            password: password.into(),
        });
    }
    if let Some(c) = from_profile {
        if let Some(p) = &c.password {
            return Ok(Credentials {
                username: c.username.clone(),
                password: p.as_str().into(),
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
    let password = rpassword::prompt_password("Enter Auth Password: ")?.into();
    Ok(Credentials { username, password })
}

/// The first line of `path` (a passphrase, or `what` for the error).
fn first_line(path: &Path, what: &str) -> anyhow::Result<Secret> {
    // The file's text holds the secret: wiped once the line is taken.
    let text = Secret::from(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let line = text.expose().lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("{}: the first line ({what}) is empty", path.display());
    }
    Ok(Secret::from(line.to_owned()))
}

/// Asked on the terminal without echo; `None` when stdin is not a terminal.
fn ask_hidden(prompt: &str) -> anyhow::Result<Option<Secret>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let answer = rpassword::prompt_password(prompt).context("reading from the terminal")?;
    Ok(Some(Secret::from(answer)))
}

/// The private key's passphrase, checked against the key before anything starts:
/// `--key-passphrase-file`, else `askpass FILE` from the profile, else (when the key
/// needs one) the terminal, three tries. `None` when the key is not encrypted.
fn key_passphrase(
    args: &ConnectArgs,
    profile: &ovpn_profile::Profile,
    askpass: Option<&ovpn_profile::inline::KeyPassphrase>,
) -> anyhow::Result<Option<Secret>> {
    use ovpn_tokio::config::{check_identity, IdentityCheck};
    let given = match &args.key_passphrase_file {
        Some(f) => Some((first_line(f, "the passphrase")?, "--key-passphrase-file")),
        None => askpass.map(|k| (Secret::from(k.0.clone()), "askpass")),
    };
    if let Some((pass, from)) = given {
        return match check_identity(profile, Some(&pass)) {
            Ok(()) => Ok(Some(pass)),
            Err(e @ IdentityCheck::WrongPassphrase) => bail!("{e} (from {from})"),
            Err(e) => Err(e).context("opening the private key"),
        };
    }
    match check_identity(profile, None) {
        Ok(()) => return Ok(None),
        Err(IdentityCheck::PassphraseNeeded) => {}
        Err(e) => return Err(e).context("opening the private key"),
    }
    for _ in 0..3 {
        let Some(pass) = ask_hidden("Enter Private Key Password: ")? else {
            bail!("the private key is encrypted: pass --key-passphrase-file FILE (no terminal to ask on)");
        };
        match check_identity(profile, Some(&pass)) {
            Ok(()) => return Ok(Some(pass)),
            Err(e @ IdentityCheck::WrongPassphrase) => eprintln!("{e}; try again"),
            Err(e) => return Err(e).context("opening the private key"),
        }
    }
    bail!("the private key's passphrase is wrong (3 tries)")
}

/// The proxy's user name and password: `--proxy-auth-file`, else the profile's own
/// (auth file or inline `<http-proxy-user-pass>`), else the terminal when the proxy
/// asks for them (`stdin`). An `auto` proxy gets them only from those files: it may
/// not ask at all.
fn proxy_credentials(
    args: &ConnectArgs,
    profile: &ovpn_profile::Profile,
    from_profile: Option<&ovpn_profile::inline::Credentials>,
) -> anyhow::Result<Option<ovpn_tokio::proxy::ProxyCredentials>> {
    use ovpn_tokio::proxy::ProxyCredentials;
    if let Some(f) = &args.proxy_auth_file {
        let text = Secret::from(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the proxy auth file {}", f.display()))?,
        );
        let (username, password) = ovpn_profile::parse_credentials(text.expose())
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        let Some(password) = password else {
            bail!(
                "{}: the second line (the proxy password) is missing",
                f.display()
            );
        };
        return Ok(Some(ProxyCredentials {
            username,
            password: password.into(),
        }));
    }
    if let Some(c) = from_profile {
        if let Some(p) = &c.password {
            return Ok(Some(ProxyCredentials {
                username: c.username.clone(),
                password: p.as_str().into(),
            }));
        }
    }
    if !proxy_asks(profile) {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        bail!("the profile's proxy needs a user name and password: pass --proxy-auth-file FILE (no terminal to ask on)");
    }
    let username = match from_profile {
        Some(c) => c.username.clone(),
        None => {
            eprint!("Enter HTTP/SOCKS Proxy Username: ");
            let _ = std::io::stderr().flush();
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u)?;
            u.trim().to_owned()
        }
    };
    let Some(password) = ask_hidden("Enter HTTP/SOCKS Proxy Password: ")? else {
        bail!("the profile's proxy needs a password: pass --proxy-auth-file FILE");
    };
    Ok(Some(ProxyCredentials { username, password }))
}

/// Whether a proxy of the profile wants credentials from the user (`stdin`, or an auth
/// file whose contents were not found).
fn proxy_asks(profile: &ovpn_profile::Profile) -> bool {
    use ovpn_profile::ProxyAuth;
    profile.endpoints().iter().any(|e| {
        let auths = [
            e.options.http_proxy.as_ref().and_then(|h| h.auth.as_ref()),
            e.options.socks_proxy.as_ref().and_then(|s| s.auth.as_ref()),
        ];
        auths
            .into_iter()
            .flatten()
            .any(|a| matches!(a, ProxyAuth::Prompt | ProxyAuth::Credentials(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(key_file: Option<PathBuf>, proxy_file: Option<PathBuf>) -> ConnectArgs {
        ConnectArgs {
            config: PathBuf::from("x.ovpn"),
            auth_file: None,
            key_passphrase_file: key_file,
            proxy_auth_file: proxy_file,
            journal: PathBuf::from("j.json"),
            dev: None,
            no_dns: false,
            dhcp_lease_dir: Vec::new(),
            no_kill_switch: false,
        }
    }

    fn profile(text: &str) -> ovpn_profile::Profile {
        ovpn_profile::parse(text.as_bytes()).unwrap().profile
    }

    #[test]
    fn the_proxy_auth_file_gives_user_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("proxy-auth");
        std::fs::write(&f, "squid\npx-secret\n").unwrap();
        let p = profile("client\nremote vpn.example.com 1194 tcp-client\nhttp-proxy 192.0.2.1 3128 stdin basic\n");
        assert!(proxy_asks(&p));
        let c = proxy_credentials(&args(None, Some(f.clone())), &p, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose()),
            ("squid", "px-secret")
        );
        std::fs::write(&f, "squid\n").unwrap();
        let e = proxy_credentials(&args(None, Some(f)), &p, None).unwrap_err();
        assert!(e.to_string().contains("proxy password) is missing"), "{e}");
        // An `auto` proxy, or none: nothing is asked.
        let auto = profile(
            "client\nremote vpn.example.com 1194 tcp-client\nhttp-proxy 192.0.2.1 3128 auto\n",
        );
        assert!(!proxy_asks(&auto));
        assert!(proxy_credentials(&args(None, None), &auto, None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_key_passphrase_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        std::fs::write(&f, "open sesame\nignored\n").unwrap();
        assert_eq!(
            first_line(&f, "the passphrase").unwrap().expose(),
            "open sesame"
        );
        std::fs::write(&f, "\n").unwrap();
        let e = first_line(&f, "the passphrase").unwrap_err();
        assert!(e.to_string().contains("(the passphrase) is empty"), "{e}");
    }
}
