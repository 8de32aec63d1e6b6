//! The tunnel engine, the same for every OS and for both ways the helper runs (the IPC
//! service and the foreground `connect`):
//!
//! - [`supervisor`]: one session's life: attempts, reconnects with backoff and remote
//!   failover, `auth-token` reuse, challenges, the network watch;
//! - [`launcher`]: the one thing that starts attempts (the real tunnel or, for tests
//!   of the service itself, a stand-in), and owns what outlives an attempt (the kill
//!   switch, the undo journals);
//! - [`attempt`]: one connection attempt: resolve, connect, TLS, configure the network
//!   through netcfg, move packets, undo.
//!
//! Nothing here knows about clients, sockets or pipes: `service` uses this module, never
//! the other way round. What a session reports is one [`SessionEvent`] stream in the
//! IPC's own terms, so no layer translates look-alike types.

pub mod attempt;
mod challenge;
pub mod killswitch;
pub mod launcher;
pub mod netconf;
pub mod netwatch;
mod overlap;
pub mod retry;
pub mod route_plan;
pub mod sso;
pub mod stub;
pub mod supervisor;

use std::sync::Arc;

use ipc::{
    ChallengeRequest, ConnectOptions, ConnectionInfo, LogLevel, RouteEntry, SessionId, ShortText,
    Stage, Stats,
};
use netcfg::{DiscoverOptions, SessionOptions};
use ovpn_core::config::{ChallengeResponse, Credentials, Secret};
use ovpn_core::session::Challenge;
use ovpn_profile::Profile;
use tokio::sync::mpsc;

/// Where and how the network is configured for one attempt.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Journal path and DNS back end.
    pub session: SessionOptions,
    /// Where the machine's DHCP lease and resolv.conf are found.
    pub discover: DiscoverOptions,
    /// TUN name or pattern (`None`: netcfg's default `oxi%d`).
    pub tun_name: Option<String>,
    /// Leak protection while the tunnel redirects all traffic (`None`: off). Applied by
    /// the attempt; removed only when the session ends (see [`launcher`]).
    pub kill_switch: Option<killswitch::KillSwitch>,
    /// Apply the kill switch to split tunnels too (the user asked for it).
    pub kill_switch_always: bool,
}

/// What a session is, fixed for its whole life. The profile was parsed and checked once
/// by whoever created the session; attempts share it.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub id: SessionId,
    pub profile: Arc<Profile>,
    pub credentials: Option<Credentials>,
    /// User name and password for the profile's `http-proxy` / `socks-proxy`.
    pub proxy_credentials: Option<ovpn_tokio::proxy::ProxyCredentials>,
    /// A static-challenge answer typed together with the password (app, oxivpnctl).
    pub static_response: Option<Secret>,
    /// The passphrase of the profile's encrypted private key or PKCS#12 archive.
    pub key_passphrase: Option<Secret>,
    /// The user's per-connect choices (kill switch, LAN access).
    pub options: ConnectOptions,
}

/// One attempt of a session.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    pub session: Arc<SessionSpec>,
    /// 0-based index into the profile's endpoints (failover order).
    pub remote_index: usize,
    /// From a previous attempt's PUSH_REPLY; used instead of the password.
    pub auth_token: Option<Secret>,
    /// 0 for the first attempt of the session.
    pub attempt: u32,
    /// The user's answer to a challenge the previous attempt ended with.
    pub challenge_response: Option<ChallengeResponse>,
}

/// What a session reports while it runs: the service publishes it to clients, `connect`
/// prints it.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    Stage(Stage),
    Log(LogLevel, String),
    /// Every second while connected, and once at the end of an attempt.
    Stats(Stats),
    /// Server and security actually in use; sent right before `Stage::Connected`.
    Connection(ConnectionInfo),
    /// The applied route plan (entries, planner notes); sent right before `Stage::Connected`.
    Routes(Vec<RouteEntry>, Vec<ShortText>),
    /// The user must answer before the session goes on.
    Challenge(ChallengeRequest),
    /// AUTH_PENDING: sign in with a browser (see [`sso`]); published to the session's
    /// owner only.
    SignIn(ipc::SignInRequest),
    /// AUTH_PENDING: a CR_TEXT question on the live session. The supervisor asks it
    /// (as a [`SessionEvent::Challenge`]) and sends the answer back through the
    /// prompt's channel; it never reaches the service or `connect`.
    CrText(sso::CrTextPrompt),
}

pub type Events = mpsc::UnboundedSender<SessionEvent>;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEnd {
    /// Stopped on request; everything was undone.
    Stopped,
    /// The server refused the credentials (`AUTH_FAILED`): do not retry blindly.
    AuthFailed(String),
    /// Worth another attempt (ping-restart, server restart, no answer, link lost).
    /// `next_remote`: the server never answered, so try the next remote.
    Retry { reason: String, next_remote: bool },
    /// The network under the tunnel changed (or the machine slept): reconnect at once,
    /// to the same remote, without backoff.
    RetryNow(String),
    /// This server refused us (TLS: its certificate or ours not accepted; its pushed
    /// configuration refused): retrying it will not help, another server may do.
    Refused(String),
    /// A problem a retry will not fix (profile, TUN, network setup).
    Fatal(String),
}

/// The end of an attempt and what the next one should know.
#[derive(Debug, Clone)]
pub struct TunnelOutcome {
    pub end: TunnelEnd,
    /// The last `auth-token` the server pushed.
    pub auth_token: Option<Secret>,
    /// Whether the tunnel got to `Connected`.
    pub was_connected: bool,
    /// The server asked a question the next attempt must carry the answer to.
    pub challenge: Option<Challenge>,
    /// The server's name did not resolve (for `resolv-retry`).
    pub resolve_failed: bool,
}

impl TunnelOutcome {
    pub fn new(end: TunnelEnd, auth_token: Option<Secret>) -> Self {
        Self {
            end,
            auth_token,
            was_connected: false,
            challenge: None,
            resolve_failed: false,
        }
    }
}

/// A human sentence for an end.
pub fn end_text(end: &TunnelEnd) -> String {
    match end {
        TunnelEnd::Stopped => "stopped".into(),
        TunnelEnd::AuthFailed(m) => format!("AUTH_FAILED: {m}"),
        TunnelEnd::Retry { reason, .. } | TunnelEnd::RetryNow(reason) => reason.clone(),
        TunnelEnd::Refused(m) | TunnelEnd::Fatal(m) => m.clone(),
    }
}

/// `IV_GUI_VER` of every attempt.
pub fn gui_version() -> String {
    format!("OxiVPN_{}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
