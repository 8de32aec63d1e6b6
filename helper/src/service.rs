//! The IPC server that the app and `oxivpnctl` talk to, the same on every OS: it
//! accepts clients from a platform [`Listener`] (Unix socket, Windows named pipe), learns
//! who they are through the platform's [`Gate`] (peer credentials and groups, the pipe
//! client's token), and runs their sessions with the tunnel engine
//! ([`crate::tunnel`]). The Unix entry point is [`unix`]; the Windows one is
//! `crate::winservice`.

mod connection;
pub mod leak_check;
mod leak_probe;
pub mod lockdown;
pub mod peer;
pub mod profile_guard;
pub mod route_check;
mod sessions;
#[cfg(unix)]
pub mod unix;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc::IpcError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::stop::StopSignal;
use crate::tunnel::launcher::Attempts;
pub use peer::Peer;
pub use sessions::Sessions;

/// Connections served at once (all users); more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one uid may hold open (root: unlimited within the total).
pub const MAX_CONNECTIONS_PER_UID: u32 = 32;
/// Over-limit clients being told so at once; more are closed without a word.
const MAX_REFUSING: usize = 64;
/// How long a stopping helper waits for its sessions to undo their changes.
pub const STOP_SESSIONS_WITHIN: Duration = Duration::from_secs(10);

/// A platform's listening endpoint.
pub trait Listener: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next client, and its uid when the platform knows it before the client says
    /// anything (Unix peer credentials), so limits apply before it costs anything.
    fn accept(
        &mut self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Option<u32>)>> + Send;
}

/// Who a connected client is and whether it may use the helper; asked once its hello
/// arrived (Windows can impersonate a pipe client only after reading from it).
pub trait Gate: Send + Sync + 'static {
    type Stream: Send + Sync;
    fn admit(&self, stream: &Self::Stream) -> impl Future<Output = Result<Peer, IpcError>> + Send;
}

/// What every connection shares.
pub struct Ctx {
    pub sessions: Arc<Sessions>,
    pub conn_limits: ConnLimits,
}

impl Ctx {
    pub fn new(launcher: Arc<dyn Attempts>) -> Arc<Self> {
        Arc::new(Self {
            sessions: Sessions::new(launcher),
            conn_limits: ConnLimits::default(),
        })
    }
}

/// Per-uid connection counting; the guard gives the slot back on drop.
#[derive(Default)]
pub struct ConnLimits {
    per_uid: Arc<Mutex<HashMap<u32, u32>>>,
}

pub struct ConnGuard {
    per_uid: Arc<Mutex<HashMap<u32, u32>>>,
    uid: u32,
}

impl ConnLimits {
    /// A slot for `uid`, or the limit it is over (`privileged`: no per-uid limit).
    pub fn enter(&self, uid: u32, privileged: bool) -> Result<ConnGuard, u32> {
        let mut map = self.per_uid.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(uid).or_insert(0);
        if !privileged && *n >= MAX_CONNECTIONS_PER_UID {
            return Err(MAX_CONNECTIONS_PER_UID);
        }
        *n += 1;
        Ok(ConnGuard {
            per_uid: self.per_uid.clone(),
            uid,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut map = self.per_uid.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

/// Serves clients from `listener` until `stop`, then stops every session (each undoes
/// its network changes and lifts its kill switch: a deliberate stop is a deliberate
/// disconnect) and returns.
pub async fn serve<L, G>(
    mut listener: L,
    gate: Arc<G>,
    ctx: Arc<Ctx>,
    stop: &mut impl StopSignal,
) -> anyhow::Result<()>
where
    L: Listener,
    G: Gate<Stream = L::Stream>,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    loop {
        // Accepting never waits for a slot: a full backlog would refuse everyone alike
        // (EAGAIN), the members who hold nothing included.
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.stopped() => break,
        };
        let (stream, early_uid) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Fair admission: the per-uid limit first, so a uid over it is refused at once
        // and never holds (or waits for) one of the global slots.
        let early = match early_uid {
            Some(uid) => match ctx.conn_limits.enter(uid, uid == 0) {
                Ok(g) => Some(g),
                Err(limit) => {
                    tracing::warn!(uid, limit, "too many connections from this uid");
                    // Telling why costs a task and a descriptor for a moment; a flood
                    // beyond that is closed without a word.
                    if let Ok(p) = refusing.clone().try_acquire_owned() {
                        tokio::spawn(async move {
                            connection::refuse_over_limit(stream, limit).await;
                            drop(p);
                        });
                    }
                    continue;
                }
            },
            None => None,
        };
        let ctx = ctx.clone();
        let gate = gate.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            let Ok(permit) = slots.acquire_owned().await else {
                return;
            };
            connection::serve(stream, early, gate.as_ref(), ctx).await;
            drop(permit);
        });
    }
    tracing::info!("shutting down: stopping sessions");
    ctx.sessions.stop_all(STOP_SESSIONS_WITHIN).await;
    Ok(())
}
