//! Commands that talk to the helper: connect, disconnect, status, logs, route-check.

use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use ipc::{Client, ConnectRequest, Event, EventBody, SessionId, SessionInfo, Stage, Subscription};
use serde_json::json;
use tokio::sync::mpsc;

use crate::output::{self, Out};
use crate::{credentials, profiles};

const CLIENT_NAME: &str = concat!("oxivpnctl ", env!("CARGO_PKG_VERSION"));

// What to do when the helper cannot be reached, in the words of each OS.
#[cfg(windows)]
const HINT_GROUP: &str = "\nhint: your account must be in the \"OxiVPN Users\" group (then sign in again), or run as administrator";
#[cfg(windows)]
const HINT_RUNNING: &str =
    "\nhint: is the helper running? (Get-Service OxiVPNHelper; start it in services.msc)";
#[cfg(target_os = "macos")]
const HINT_GROUP: &str = "\nhint: your user must be in the `oxivpn` group (then log in again)";
#[cfg(target_os = "macos")]
const HINT_RUNNING: &str =
    "\nhint: is the helper running? (sudo launchctl print system/com.oxivpn.helper)";
#[cfg(not(any(windows, target_os = "macos")))]
const HINT_GROUP: &str = "\nhint: your user must be in the `oxivpn` group (then log in again)";
#[cfg(not(any(windows, target_os = "macos")))]
const HINT_RUNNING: &str = "\nhint: is the helper running? (systemctl status oxivpn-helper)";

pub async fn link(socket: &Path) -> anyhow::Result<Client> {
    Client::connect(socket, CLIENT_NAME).await.map_err(|e| {
        let hint = match &e {
            ipc::ClientError::Connect { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                HINT_GROUP
            }
            ipc::ClientError::Connect { .. } => HINT_RUNNING,
            _ => "",
        };
        anyhow::Error::new(e).context(format!("talking to the helper{hint}"))
    })
}

/// Events already queued (the history a subscribe replays), without waiting.
fn drain(events: &mut mpsc::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

pub struct ConnectArgs {
    pub name: String,
    pub no_wait: bool,
    pub auth_file: Option<PathBuf>,
    /// The private key's passphrase, first line (instead of asking).
    pub key_passphrase_file: Option<PathBuf>,
    /// Proxy user name and password, one per line (instead of asking).
    pub proxy_auth_file: Option<PathBuf>,
    pub timeout: u64,
    pub options: ipc::ConnectOptions,
    /// Print the sign-in link only; do not start a browser.
    pub no_browser: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillSwitchArg {
    Default,
    On,
    Off,
}

impl From<KillSwitchArg> for ipc::KillSwitchMode {
    fn from(k: KillSwitchArg) -> Self {
        match k {
            KillSwitchArg::Default => Self::Default,
            KillSwitchArg::On => Self::On,
            KillSwitchArg::Off => Self::Off,
        }
    }
}

pub async fn connect(socket: &Path, out: Out, a: ConnectArgs) -> anyhow::Result<ExitCode> {
    let loaded = profiles::load(&a.name)?;
    let mut credentials = credentials::gather(&loaded.profile, a.auth_file.as_deref())?;
    if let Some(f) = &a.key_passphrase_file {
        credentials.key_passphrase = Some(credentials::key_passphrase_from_file(f)?);
    } else if credentials::key_is_encrypted(&loaded.profile) {
        credentials.key_passphrase = Some(credentials::key_passphrase_from_terminal(None)?);
    }
    credentials::gather_proxy(
        &loaded.profile,
        a.proxy_auth_file.as_deref(),
        &mut credentials,
    )?;
    let mut client = link(socket).await?;
    let mut events = client.take_events().context("event stream")?;
    client
        .subscribe(Subscription {
            events: true,
            stats: false,
            logs: true,
            session: None,
        })
        .await?;
    drain(&mut events);
    let mut req = ConnectRequest {
        profile_name: loaded.name,
        profile_text: loaded.text,
        credentials,
        options: a.options,
    };
    // The helper opens the key before it starts anything: a missing or wrong passphrase
    // is asked for again on a terminal (never when it came from a file).
    let mut asked = 0;
    let info = loop {
        match client.connect_profile(req.clone()).await {
            Ok(info) => break info,
            Err(ipc::ClientError::Helper(e @ ipc::IpcError::KeyPassphrase { .. }))
                if a.key_passphrase_file.is_none()
                    && asked < 3
                    && std::io::stdin().is_terminal() =>
            {
                asked += 1;
                req.credentials.key_passphrase = Some(credentials::key_passphrase_from_terminal(
                    Some(&e.to_string()),
                )?);
            }
            Err(e @ ipc::ClientError::Helper(ipc::IpcError::KeyPassphrase { wrong: false })) => {
                return Err(anyhow::anyhow!(
                    "{e} (give it with --key-passphrase-file FILE or on a terminal)"
                ))
                .context("starting the session");
            }
            Err(e) => return Err(e).context("starting the session"),
        }
    };
    let id = info.id;
    if a.no_wait {
        out.result(&info, || format!("{id} started ({})", info.stage.name()));
        return Ok(ExitCode::SUCCESS);
    }
    out.progress(&format!("{id}: starting {}", a.name));
    let deadline =
        (a.timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(a.timeout));
    let outcome = match follow_until_settled(&client, &mut events, id, out, deadline, a.no_browser)
        .await?
    {
        Some(o) => o,
        None => {
            // Do not leave a half-started tunnel behind a command that gave up.
            let _ = client.disconnect(id).await;
            bail!(
                "{id} did not connect within {} s (or the sign-in time the server gave); disconnected it",
                a.timeout
            );
        }
    };
    match outcome {
        Settled::Connected(stage) => {
            out.result(&json!({ "session": id, "stage": stage }), || {
                format!("{id}: {}", output::stage(&stage))
            });
            Ok(ExitCode::SUCCESS)
        }
        Settled::Ended(stage) => {
            out.result(&json!({ "session": id, "stage": stage }), || {
                format!("{id}: {}", output::stage(&stage))
            });
            Ok(ExitCode::FAILURE)
        }
    }
}

enum Settled {
    Connected(Stage),
    Ended(Stage),
}

/// `Ok(None)`: the deadline passed (a browser sign-in moves it to the server's own
/// timeout when that is later).
async fn follow_until_settled(
    client: &Client,
    events: &mut mpsc::Receiver<Event>,
    id: SessionId,
    out: Out,
    mut deadline: Option<tokio::time::Instant>,
    no_browser: bool,
) -> anyhow::Result<Option<Settled>> {
    loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, events.recv()).await.ok(),
                None => Some(events.recv().await),
            }
        };
        let Some(ev) = next.await else {
            return Ok(None);
        };
        let Some(ev) = ev else {
            bail!("the helper closed the connection while {id} was starting");
        };
        if ev.session != id {
            continue;
        }
        match ev.body {
            EventBody::Stage(s @ Stage::Connected { .. }) => {
                return Ok(Some(Settled::Connected(s)))
            }
            EventBody::Stage(s @ Stage::Disconnected { .. }) => return Ok(Some(Settled::Ended(s))),
            EventBody::SignIn(req) => {
                if let (Some(d), Some(t)) = (deadline.as_mut(), req.timeout_secs) {
                    // Give the user the server's whole sign-in window, plus the configuration.
                    let wanted = tokio::time::Instant::now() + Duration::from_secs(t + 30);
                    *d = (*d).max(wanted);
                }
                crate::sign_in::show(out, id, &req, no_browser);
            }
            EventBody::Stage(s) => out.progress(&format!("{id}: {}", output::stage(&s))),
            EventBody::Log(l) if l.level <= ipc::LogLevel::Warn => {
                out.progress(&format!("{id}: {}", l.message))
            }
            EventBody::Challenge(c) => {
                let answer = crate::sign_in::challenge_answer(c.prompt.as_str(), c.echo)?;
                client.answer_challenge(id, answer).await?;
            }
            EventBody::Error(e) => out.progress(&format!("{id}: error: {e}")),
            _ => {}
        }
    }
}

/// Sessions the caller started (root: all).
fn own(sessions: &[SessionInfo], uid: u32) -> impl Iterator<Item = &SessionInfo> {
    sessions
        .iter()
        .filter(move |s| s.owner_uid == uid || (uid == 0 && s.profile_name.is_some()))
}

pub async fn disconnect(
    socket: &Path,
    out: Out,
    name: Option<&str>,
    no_wait: bool,
) -> anyhow::Result<ExitCode> {
    let client = link(socket).await?;
    let uid = client.server_hello().peer_uid;
    let sessions = client.list_sessions().await?;
    let targets: Vec<SessionId> = own(&sessions, uid)
        .filter(|s| name.is_none_or(|n| s.profile_name.as_ref().is_some_and(|p| p.as_str() == n)))
        .map(|s| s.id)
        .collect();
    if targets.is_empty() {
        match name {
            Some(n) => bail!("no session of yours uses profile {n:?}"),
            None => {
                out.result(&json!({ "disconnected": [] }), || {
                    "nothing to disconnect".into()
                });
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    for id in &targets {
        client.disconnect(*id).await?;
    }
    if !no_wait {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = client.list_sessions().await?;
            if !left.iter().any(|s| targets.contains(&s.id)) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("sessions still stopping after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out.result(&json!({ "disconnected": targets }), || {
        targets
            .iter()
            .map(|id| format!("{id}: disconnected"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn status(socket: &Path, out: Out) -> anyhow::Result<ExitCode> {
    let client = link(socket).await?;
    let status = client.status().await?;
    let sessions = client.list_sessions().await?;
    out.result(&json!({ "helper": status, "sessions": sessions }), || {
        let mut s = format!(
            "helper {} (protocol {}), up {} s, tunnel engine {}\n",
            status.helper_version,
            status.protocol,
            status.uptime_ms / 1000,
            if status.tunnel_wired {
                "wired"
            } else {
                "NOT wired (stub)"
            }
        );
        if let Some(l) = &status.lockdown {
            s.push_str(&crate::lockdown_cmd::describe(l));
        }
        if sessions.is_empty() {
            s.push_str("no sessions\n");
        }
        for sess in &sessions {
            s.push_str(&output::session_line(sess, status.peer_uid));
            s.push('\n');
        }
        s
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(
    socket: &Path,
    out: Out,
    name: Option<&str>,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let mut client = link(socket).await?;
    let mut events = client.take_events().context("event stream")?;
    let session = match name {
        None => None,
        Some(n) => {
            let uid = client.server_hello().peer_uid;
            let sessions = client.list_sessions().await?;
            let found = own(&sessions, uid)
                .find(|s| s.profile_name.as_ref().is_some_and(|p| p.as_str() == n))
                .map(|s| s.id);
            Some(found.with_context(|| format!("no session of yours uses profile {n:?}"))?)
        }
    };
    client
        .subscribe(Subscription {
            events: true,
            stats: false,
            logs: true,
            session,
        })
        .await?;
    let print = |e: &Event| {
        if let Some(line) = output::event_line(e) {
            out.result(e, || line);
        }
    };
    for e in drain(&mut events) {
        print(&e);
    }
    if follow {
        loop {
            tokio::select! {
                e = events.recv() => match e {
                    Some(e) => print(&e),
                    None => bail!("the helper closed the connection"),
                },
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn route_check(socket: &Path, out: Out, addr: IpAddr) -> anyhow::Result<ExitCode> {
    let client = link(socket).await?;
    let r = client.route_check(addr).await?;
    out.result(&r, || {
        let mut s = format!("{addr}: {}", r.explanation);
        if let Some(route) = &r.route {
            s.push_str(&format!("\n  route: {route}"));
        }
        s
    });
    Ok(ExitCode::SUCCESS)
}

pub async fn routes(socket: &Path, out: Out, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let client = link(socket).await?;
    let uid = client.server_hello().peer_uid;
    let sessions = client.list_sessions().await?;
    let mine: Vec<&SessionInfo> = own(&sessions, uid)
        .filter(|s| name.is_none_or(|n| s.profile_name.as_ref().is_some_and(|p| p.as_str() == n)))
        .collect();
    let session = match (mine.as_slice(), name) {
        ([one], _) => one.id,
        ([], Some(n)) => bail!("no session of yours uses profile {n:?}"),
        ([], None) => bail!("you have no session"),
        (_, _) => bail!("you have several sessions: name the profile"),
    };
    let r = client.session_routes(session).await?;
    out.result(&r, || output::routes_table(&r));
    Ok(ExitCode::SUCCESS)
}
