//! One client connection: hello and authorization, then requests in, responses and
//! subscribed events out. Anything malformed ends this connection only.

use std::sync::Arc;
use std::time::Duration;

use ipc::frame;
use ipc::{
    ClientFrame, EventBody, IpcError, Request, Response, ServerFrame, ServerHello, SessionId,
    ShortText, Subscription,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::peer::Peer;
use super::sessions::Published;
use super::{ConnGuard, Ctx, Gate};

/// The whole hello must arrive within this.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Once a frame's first byte arrives, the rest must follow within this.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not take our bytes for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const OUT_QUEUE: usize = 256;
/// How long an over-limit client may take to send the hello we read before refusing.
const REFUSAL_HELLO_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one client on any byte stream. `early_guard`: its per-uid slot when the
/// platform knew the uid before the hello (Unix); otherwise the limit applies once the
/// gate said who it is.
pub async fn serve<S, G>(mut stream: S, early_guard: Option<ConnGuard>, gate: &G, ctx: Arc<Ctx>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    G: Gate<Stream = S>,
{
    let peer = match hello(&mut stream, gate).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "connection closed");
            return;
        }
    };
    let span = tracing::info_span!("client", uid = peer.uid, pid = peer.pid);
    // Without an early uid (Windows: known only from the token), the limit applies now.
    let _guard = match early_guard {
        Some(g) => g,
        None => match ctx.conn_limits.enter(peer.uid, peer.privileged) {
            Ok(g) => g,
            Err(limit) => {
                tracing::warn!(parent: &span, uid = peer.uid, limit, "too many connections from this uid");
                let refuse = ServerFrame::Refused(IpcError::limit("connections per user", limit));
                let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
                    let _ = frame::write_message(&mut stream, &refuse).await;
                    let _ = stream.shutdown().await;
                })
                .await;
                return;
            }
        },
    };
    let hello = ServerFrame::Hello(ServerHello {
        protocol: ipc::PROTOCOL_VERSION,
        helper_version: ShortText::sanitized(env!("CARGO_PKG_VERSION")),
        peer_uid: peer.uid,
    });
    match tokio::time::timeout(WRITE_TIMEOUT, frame::write_message(&mut stream, &hello)).await {
        Ok(Ok(())) => {}
        _ => return,
    }
    let (rd, wr) = tokio::io::split(stream);
    if let Err(e) = run(rd, wr, peer, &ctx).await {
        tracing::debug!(parent: &span, error = %e, "connection closed");
    }
}

/// Over its per-uid limit: say so and close.
pub async fn refuse_over_limit<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, limit: u32) {
    // Take the hello first: closing with unread input resets the connection, and the
    // client would never read why. A well-behaved client sends it at once.
    let _ = tokio::time::timeout(
        REFUSAL_HELLO_TIMEOUT,
        frame::read_message::<_, ClientFrame>(&mut stream),
    )
    .await;
    let refuse = ServerFrame::Refused(IpcError::limit("connections per user", limit));
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = frame::write_message(&mut stream, &refuse).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Frame(#[from] ipc::FrameError),
    #[error("client too slow ({0})")]
    Timeout(&'static str),
    #[error("refused: {0}")]
    Refused(IpcError),
    #[error("writer gone")]
    WriterGone,
}

/// The hello, the version check and the platform's gate; a refusal is sent here.
async fn hello<S, G>(stream: &mut S, gate: &G) -> Result<Peer, ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    G: Gate<Stream = S>,
{
    let hello = tokio::time::timeout(
        HELLO_TIMEOUT,
        frame::read_message::<_, ClientFrame>(&mut *stream),
    )
    .await
    .map_err(|_| ConnError::Timeout("hello"));
    let verdict = match hello {
        Ok(Ok(Some(ClientFrame::Hello(h)))) if h.protocol != ipc::PROTOCOL_VERSION => {
            Err(IpcError::VersionMismatch {
                helper: ipc::PROTOCOL_VERSION,
                client: h.protocol,
            })
        }
        Ok(Ok(Some(ClientFrame::Hello(h)))) => {
            tracing::debug!(client = %h.client, "hello");
            gate.admit(stream).await
        }
        Ok(Ok(Some(ClientFrame::Request { .. }))) => {
            Err(IpcError::invalid(".", "the first frame must be a hello"))
        }
        Ok(Ok(None)) => return Err(ConnError::Frame(ipc::FrameError::Truncated)),
        Ok(Err(e)) => Err(e.to_ipc()),
        Err(e) => return Err(e),
    };
    match verdict {
        Ok(peer) => Ok(peer),
        Err(err) => {
            tracing::warn!(error = %err, "client refused");
            let _ = tokio::time::timeout(
                WRITE_TIMEOUT,
                frame::write_message(stream, &ServerFrame::Refused(err.clone())),
            )
            .await;
            Err(ConnError::Refused(err))
        }
    }
}

async fn run<S: AsyncRead + AsyncWrite + Send + 'static>(
    mut rd: ReadHalf<S>,
    wr: WriteHalf<S>,
    peer: Peer,
    ctx: &Arc<Ctx>,
) -> Result<(), ConnError> {
    let (out_tx, out_rx) = mpsc::channel::<ServerFrame>(OUT_QUEUE);
    let writer = tokio::spawn(write_loop(wr, out_rx));
    let mut forwarder: Option<JoinHandle<()>> = None;
    let result = request_loop(&mut rd, &out_tx, peer, ctx, &mut forwarder).await;
    if let Some(f) = forwarder {
        f.abort();
    }
    drop(out_tx);
    // Let queued responses (e.g. the error that ends this connection) go out.
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer).await;
    result
}

async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<ServerFrame>) {
    while let Some(f) = rx.recv().await {
        match tokio::time::timeout(WRITE_TIMEOUT, frame::write_message(&mut wr, &f)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                break;
            }
            Err(_) => {
                tracing::warn!("client stopped reading; dropping it");
                break;
            }
        }
    }
}

/// The next request: idle waits are unbounded (subscribers sit quietly), but a
/// started frame must complete in time.
async fn read_request<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Option<ClientFrame>, ConnError> {
    let first = match rd.read_u8().await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ipc::FrameError::Io(e).into()),
    };
    let payload = tokio::time::timeout(FRAME_TIMEOUT, async {
        let mut header = [first, 0, 0, 0];
        rd.read_exact(&mut header[1..]).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ipc::FrameError::Truncated
            } else {
                ipc::FrameError::Io(e)
            }
        })?;
        frame::read_body(rd, header).await
    })
    .await
    .map_err(|_| ConnError::Timeout("frame"))??;
    // The frame may carry a password, a challenge answer or a profile with a private
    // key: its buffer is wiped once decoded (the decoded fields wipe themselves).
    let payload = zeroize::Zeroizing::new(payload);
    Ok(Some(frame::decode(&payload)?))
}

async fn request_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    out: &mpsc::Sender<ServerFrame>,
    peer: Peer,
    ctx: &Arc<Ctx>,
    forwarder: &mut Option<JoinHandle<()>>,
) -> Result<(), ConnError> {
    loop {
        let frame = match read_request(rd).await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(ConnError::Frame(e)) => {
                tracing::warn!(uid = peer.uid, error = %e, "bad frame; closing this client");
                let _ = out.try_send(ServerFrame::Refused(e.to_ipc()));
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        let (id, body) = match frame {
            ClientFrame::Request { id, body } => (id, body),
            ClientFrame::Hello(_) => {
                let e = IpcError::invalid(".", "a second hello");
                let _ = out.try_send(ServerFrame::Refused(e.clone()));
                return Err(ConnError::Refused(e));
            }
        };
        let result = handle(body, peer, ctx, out, forwarder).await;
        out.send(ServerFrame::Response { id, result })
            .await
            .map_err(|_| ConnError::WriterGone)?;
    }
}

async fn handle(
    body: Request,
    peer: Peer,
    ctx: &Arc<Ctx>,
    out: &mpsc::Sender<ServerFrame>,
    forwarder: &mut Option<JoinHandle<()>>,
) -> Result<Response, IpcError> {
    let sessions = &ctx.sessions;
    match body {
        Request::ListSessions => sessions.list(&peer).map(Response::Sessions),
        Request::Status => sessions.status(&peer).map(Response::Status),
        Request::Connect(req) => sessions.connect(&peer, req).map(Response::Started),
        Request::Disconnect { session } => sessions
            .disconnect(&peer, session)
            .map(|()| Response::Stopping { session }),
        Request::AnswerChallenge { session, response } => sessions
            .answer_challenge(&peer, session, response)
            .map(|()| Response::ChallengeAnswered),
        Request::SessionRoutes { session } => sessions.routes(&peer, session).map(Response::Routes),
        Request::RouteCheck { addr } => {
            sessions.route_check(&peer, addr).await.map(Response::Route)
        }
        Request::LeakCheck { session } => sessions
            .leak_check(&peer, session)
            .await
            .map(Response::LeakCheck),
        Request::LockdownStatus => super::lockdown::active()
            .map(|l| Response::Lockdown(l.state(peer.privileged)))
            .ok_or_else(super::lockdown::not_offered),
        Request::SetLockdown(change) => {
            let l = super::lockdown::active().ok_or_else(super::lockdown::not_offered)?;
            // The firewall and an fsync: off the runtime.
            tokio::task::spawn_blocking(move || l.set(peer.privileged, change))
                .await
                .map_err(IpcError::internal)?
                .map(Response::Lockdown)
        }
        Request::Subscribe(sub) => {
            if let Some(old) = forwarder.take() {
                old.abort();
            }
            // History first (it ends before the live stream starts), then live.
            let (rx, history) = sessions.subscribe_with_history();
            let mut last_seq = 0;
            for p in history.iter().filter(|p| wanted(&sub, &peer, p)) {
                last_seq = p.seq;
                if out.send(ServerFrame::Event(p.event.clone())).await.is_err() {
                    return Err(IpcError::internal("connection closing"));
                }
            }
            *forwarder = Some(tokio::spawn(forward_events(
                rx,
                out.clone(),
                peer,
                sub,
                last_seq,
            )));
            Ok(Response::Subscribed)
        }
    }
}

fn wanted(sub: &Subscription, peer: &Peer, p: &Published) -> bool {
    if !peer.may_see(p.owner_uid) {
        return false;
    }
    if sub.session.is_some_and(|s| s != p.event.session) {
        return false;
    }
    match p.event.body {
        EventBody::Stage(_) | EventBody::Challenge(_) | EventBody::Error(_) => sub.events,
        // The sign-in link is the owner's alone (root sees the session, not the link).
        EventBody::SignIn(_) => sub.events && peer.uid == p.owner_uid,
        EventBody::Stats(_) => sub.stats,
        EventBody::Log(_) => sub.logs,
        EventBody::Lagged { .. } => true,
    }
}

async fn forward_events(
    mut rx: broadcast::Receiver<Arc<Published>>,
    out: mpsc::Sender<ServerFrame>,
    peer: Peer,
    sub: Subscription,
    replayed_up_to: u64,
) {
    let mut dropped: u64 = 0;
    loop {
        let p = match rx.recv().await {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                dropped = dropped.saturating_add(n);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if p.seq <= replayed_up_to || !wanted(&sub, &peer, &p) {
            continue;
        }
        if dropped > 0 {
            let lag = ServerFrame::Event(ipc::Event {
                session: SessionId(0),
                unix_ms: super::sessions::now_ms(),
                body: EventBody::Lagged { dropped },
            });
            if out.try_send(lag).is_ok() {
                dropped = 0;
            }
        }
        match out.try_send(ServerFrame::Event(p.event.clone())) {
            Ok(()) => {}
            // A client that reads slowly loses events, never blocks the helper.
            Err(mpsc::error::TrySendError::Full(_)) => dropped = dropped.saturating_add(1),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn published(owner_uid: u32, session: u64, body: EventBody) -> Published {
        Published {
            seq: 1,
            owner_uid,
            event: ipc::Event {
                session: SessionId(session),
                unix_ms: 0,
                body,
            },
        }
    }

    #[test]
    fn subscribers_see_only_what_they_may() {
        let alice = Peer {
            uid: 1000,
            privileged: false,
            pid: None,
        };
        let root = Peer {
            uid: 0,
            privileged: true,
            pid: None,
        };
        let log = EventBody::Log(ipc::LogLine {
            level: ipc::LogLevel::Info,
            message: ipc::LogText::sanitized("x"),
        });
        let bobs_log = published(1001, 2, log.clone());
        let alices_log = published(1000, 1, log);
        let all = Subscription::all();
        assert!(!wanted(&all, &alice, &bobs_log));
        assert!(wanted(&all, &alice, &alices_log));
        assert!(wanted(&all, &root, &bobs_log));
        let no_logs = Subscription { logs: false, ..all };
        assert!(!wanted(&no_logs, &alice, &alices_log));
        let other_session = Subscription {
            session: Some(SessionId(9)),
            ..all
        };
        assert!(!wanted(&other_session, &alice, &alices_log));
        let stats = published(1000, 1, EventBody::Stats(ipc::Stats::default()));
        let no_stats = Subscription {
            stats: false,
            ..all
        };
        assert!(!wanted(&no_stats, &alice, &stats));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sign_in_tests {
    use super::*;

    #[test]
    fn only_the_owner_gets_the_sign_in_link() {
        let peer = |uid| Peer {
            uid,
            privileged: uid == 0,
            pid: None,
        };
        let req = ipc::SignInRequest {
            url: ipc::SignInUrl::try_from("https://sso.example/s?state=1").unwrap(),
            host: ipc::ShortText::sanitized("sso.example"),
            timeout_secs: Some(60),
            external: false,
            kill_switch_exception: false,
        };
        let p = Published {
            seq: 1,
            owner_uid: 1000,
            event: ipc::Event {
                session: SessionId(1),
                unix_ms: 0,
                body: EventBody::SignIn(req),
            },
        };
        let all = Subscription::all();
        assert!(wanted(&all, &peer(1000), &p));
        assert!(!wanted(&all, &peer(1001), &p));
        // Root may watch and stop the session, not follow the owner's sign-in link.
        assert!(!wanted(&all, &peer(0), &p));
        let no_events = Subscription {
            events: false,
            ..all
        };
        assert!(!wanted(&no_events, &peer(1000), &p));
    }
}
