//! The seam between the service (sessions, reconnects, clients) and the tunnel that
//! moves packets. One [`TunnelLauncher::run`] call is one connection attempt: it
//! reports what happens through `updates` and returns how it ended; the session
//! supervisor decides whether and where to try again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ipc::{
    ChallengeRequest, ConnectOptions, ConnectionInfo, Credentials, LogLevel, RouteEntry, Secret,
    SessionId, ShortText, Stage, Stats,
};
use tokio::sync::{mpsc, watch, Mutex};

/// Everything one attempt needs. The profile text already passed the guard.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    pub session: SessionId,
    pub owner_uid: u32,
    pub profile_text: Arc<str>,
    pub credentials: Arc<Credentials>,
    /// 0-based index into the profile's `remote` lines (failover order).
    pub remote_index: usize,
    /// From a previous attempt's PUSH_REPLY; used instead of the password.
    pub auth_token: Option<Secret>,
    pub attempt: u32,
    /// The user's per-connect choices (kill switch).
    pub options: ConnectOptions,
}

#[derive(Debug)]
pub enum TunnelUpdate {
    Stage(Stage),
    Stats(Stats),
    Log(LogLevel, String),
    Challenge(ChallengeRequest),
    /// The server pushed `auth-token`: reuse it on reconnects.
    AuthToken(Secret),
    /// Server and security actually in use; sent before `Stage::Connected`.
    Connection(ConnectionInfo),
    /// The applied route plan (entries, planner notes); sent before `Stage::Connected`.
    Routes(Vec<RouteEntry>, Vec<ShortText>),
    /// Sign in with a browser (AUTH_PENDING); for the session's owner only.
    SignIn(ipc::SignInRequest),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The stop signal was seen and everything was undone.
    Stopped,
    /// Try again (ping-restart, server RESTART, network error); `next_remote` moves
    /// the supervisor to the next `remote` line.
    Retry {
        reason: String,
        next_remote: bool,
    },
    AuthFailed(String),
    /// The network under the tunnel changed (or the machine slept): reconnect at once,
    /// to the same remote, without backoff.
    RetryNow(String),
    /// Not worth retrying (bad profile for this engine, TUN unavailable, ...).
    Fatal(String),
}

/// `Some(uid)` once somebody asked the session to stop.
pub type StopSignal = watch::Receiver<Option<u32>>;
/// Answers to challenge requests, in order.
pub type ChallengeAnswers = Arc<Mutex<mpsc::Receiver<Secret>>>;

pub type AttemptFuture = Pin<Box<dyn Future<Output = AttemptEnd> + Send>>;

pub trait TunnelLauncher: Send + Sync + 'static {
    /// Whether this launcher brings real tunnels up (`status` reports it).
    fn wired(&self) -> bool;

    fn run(
        &self,
        spec: AttemptSpec,
        updates: mpsc::Sender<TunnelUpdate>,
        stop: StopSignal,
        challenges: ChallengeAnswers,
    ) -> AttemptFuture;

    /// The session ended for good (disconnect, auth failure, giving up, shutdown):
    /// release what outlives its attempts (the kill switch).
    fn session_ended(&self, _session: SessionId) -> AttemptFuture {
        Box::pin(async { AttemptEnd::Stopped })
    }
}

/// Stands in until the tunnel engine is wired: goes to `connecting` and waits
/// there, without sending a packet, until stopped.
pub struct StubLauncher;

impl TunnelLauncher for StubLauncher {
    fn wired(&self) -> bool {
        false
    }

    fn run(
        &self,
        spec: AttemptSpec,
        updates: mpsc::Sender<TunnelUpdate>,
        mut stop: StopSignal,
        _challenges: ChallengeAnswers,
    ) -> AttemptFuture {
        Box::pin(async move {
            let _ = updates.send(TunnelUpdate::Stage(Stage::Resolving)).await;
            let remote = first_remote(&spec.profile_text, spec.remote_index);
            let _ = updates
                .send(TunnelUpdate::Stage(Stage::Connecting {
                    remote: ipc::ShortText::sanitized(&remote),
                }))
                .await;
            let _ = updates
                .send(TunnelUpdate::Log(
                    LogLevel::Warn,
                    "the tunnel engine is not wired into this helper build; staying in `connecting`"
                        .into(),
                ))
                .await;
            while stop.borrow_and_update().is_none() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            AttemptEnd::Stopped
        })
    }
}

fn first_remote(text: &str, index: usize) -> String {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("remote "))
        .nth(index)
        .map(|r| r.trim().to_owned())
        .unwrap_or_else(|| "(no remote)".into())
}
