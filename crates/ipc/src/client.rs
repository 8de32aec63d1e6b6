//! Async client used by `oxivpnctl` and the app: hello, requests matched to
//! responses by id, and a stream of events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, IpcError};
use crate::frame;
use crate::messages::*;
use crate::types::{Secret, SessionId, ShortText};

/// Where the helper listens unless told otherwise.
pub fn default_socket_path() -> PathBuf {
    if cfg!(windows) {
        // The named pipe the Windows service serves (helper/src/winservice/config.rs).
        PathBuf::from(r"\\.\pipe\oxivpn-helper")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/var/run/oxivpn/helper.sock")
    } else {
        PathBuf::from("/run/oxivpn/helper.sock")
    }
}

/// Opens the helper's pipe asking for read + FILE_WRITE_DATA only. GENERIC_WRITE would
/// include FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE: the helper's
/// ACL withholds that right from its users (so none can serve a rogue instance of the
/// pipe), and would refuse such an open. Identification-level QoS: the helper may check
/// who we are but not act as us.
#[cfg(windows)]
#[allow(unsafe_code)]
fn open_pipe(path: &Path) -> std::io::Result<tokio::net::windows::named_pipe::NamedPipeClient> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Foundation::{GENERIC_READ, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_FLAG_OVERLAPPED, FILE_WRITE_DATA, OPEN_EXISTING, SECURITY_IDENTIFICATION,
        SECURITY_SQOS_PRESENT,
    };
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    // SAFETY: `wide` is NUL-terminated and outlives the call; no template handle.
    let h = unsafe {
        CreateFileW(
            wide.as_ptr(),
            GENERIC_READ | FILE_WRITE_DATA,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: an overlapped pipe handle we own; tokio takes ownership.
    unsafe { tokio::net::windows::named_pipe::NamedPipeClient::from_raw_handle(h) }
}

/// The environment variable that overrides [`default_socket_path`] for the CLI and app.
pub const SOCKET_ENV: &str = "OXIVPN_SOCKET";

/// `$OXIVPN_SOCKET` or the default.
pub fn socket_path_from_env() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(default_socket_path)
}

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const EVENT_QUEUE: usize = 1024;

/// `None` once the reader has stopped: no response can arrive any more.
type Pending = Arc<Mutex<Option<HashMap<RequestId, oneshot::Sender<Result<Response, IpcError>>>>>>;

pub struct Client {
    out: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    events: Option<mpsc::Receiver<Event>>,
    hello: ServerHello,
    request_timeout: Duration,
}

impl Client {
    /// Connects to the helper's Unix socket and does the hello.
    #[cfg(unix)]
    pub async fn connect(path: &Path, client_name: &str) -> Result<Self, ClientError> {
        // EAGAIN: the helper's backlog is full for a moment (a flood by another client);
        // a blocking connect would wait for room, so retry briefly.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let stream = loop {
            match tokio::net::UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(source) => {
                    return Err(ClientError::Connect {
                        path: path.display().to_string(),
                        source,
                    })
                }
            }
        };
        Self::handshake(stream, client_name).await
    }

    /// Connects to the helper's named pipe (`path` like `\\.\pipe\oxivpn-helper`) and does
    /// the hello. The Windows helper service itself is issue 9's.
    #[cfg(windows)]
    pub async fn connect(path: &Path, client_name: &str) -> Result<Self, ClientError> {
        // ERROR_PIPE_BUSY: every instance is taken for a moment (the service creates the
        // next one right after a client connects); retry briefly.
        const ERROR_PIPE_BUSY: i32 = 231;
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let stream = loop {
            match open_pipe(path) {
                Ok(s) => break s,
                Err(e)
                    if e.raw_os_error() == Some(ERROR_PIPE_BUSY)
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(source) => {
                    return Err(ClientError::Connect {
                        path: path.display().to_string(),
                        source,
                    })
                }
            }
        };
        Self::handshake(stream, client_name).await
    }

    /// The hello over any byte stream (tests use in-memory pipes).
    pub async fn handshake<S>(stream: S, client_name: &str) -> Result<Self, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let hello = ClientFrame::Hello(ClientHello {
            protocol: PROTOCOL_VERSION,
            client: ShortText::sanitized(client_name),
        });
        // A helper that refuses may close before reading our hello; its reason is
        // still worth reading, so a failed write is reported only if none arrives.
        let sent = frame::write_message(&mut wr, &hello).await;
        let reply = tokio::time::timeout(
            HELLO_TIMEOUT,
            frame::read_message::<_, ServerFrame>(&mut rd),
        )
        .await
        .map_err(|_| ClientError::Timeout(HELLO_TIMEOUT))?;
        let reply = match (reply, sent) {
            (Ok(r), _) => r,
            (Err(_), Err(write_err)) => return Err(write_err.into()),
            (Err(read_err), Ok(())) => return Err(read_err.into()),
        };
        let hello = match reply {
            Some(ServerFrame::Hello(h)) => h,
            Some(ServerFrame::Refused(IpcError::VersionMismatch { helper, client })) => {
                return Err(ClientError::VersionMismatch { helper, client })
            }
            Some(ServerFrame::Refused(e)) => return Err(ClientError::Refused(e)),
            Some(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            None => return Err(ClientError::Closed),
        };
        if hello.protocol != PROTOCOL_VERSION {
            return Err(ClientError::VersionMismatch {
                helper: hello.protocol,
                client: PROTOCOL_VERSION,
            });
        }

        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(bytes) = out_rx.recv().await {
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
            }
            // The Client is gone: tell the helper, whose close then ends our reader.
            let _ = wr.shutdown().await;
        });

        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let reader_pending = pending.clone();
        tokio::spawn(async move {
            loop {
                match frame::read_message::<_, ServerFrame>(&mut rd).await {
                    Ok(Some(ServerFrame::Response { id, result })) => {
                        let tx = reader_pending
                            .lock()
                            .ok()
                            .and_then(|mut p| p.as_mut().and_then(|p| p.remove(&id)));
                        if let Some(tx) = tx {
                            let _ = tx.send(result);
                        }
                    }
                    Ok(Some(ServerFrame::Event(ev))) => {
                        // A consumer that stopped reading must not block responses.
                        let _ = ev_tx.try_send(ev);
                    }
                    Ok(Some(other)) => {
                        tracing::warn!(frame = ?other, "unexpected frame from helper");
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "bad frame from helper");
                        break;
                    }
                }
            }
            // Dropping the senders wakes every waiter with `Closed`.
            if let Ok(mut p) = reader_pending.lock() {
                *p = None;
            }
        });

        Ok(Self {
            out: out_tx,
            pending,
            next_id: AtomicU64::new(1),
            events: Some(ev_rx),
            hello,
            request_timeout: Duration::from_secs(60),
        })
    }

    pub fn server_hello(&self) -> &ServerHello {
        &self.hello
    }

    pub fn set_request_timeout(&mut self, t: Duration) {
        self.request_timeout = t;
    }

    /// The event stream; only the first call gets it. Ends when the connection does.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<Event>> {
        self.events.take()
    }

    pub async fn request(&self, body: Request) -> Result<Response, ClientError> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let bytes = frame::encode(&ClientFrame::Request { id, body })?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| ClientError::Closed)?
            .as_mut()
            .ok_or(ClientError::Closed)?
            .insert(id, tx);
        self.out
            .send(bytes)
            .await
            .map_err(|_| ClientError::Closed)?;
        let res = tokio::time::timeout(self.request_timeout, rx).await;
        match res {
            Err(_) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.as_mut().map(|p| p.remove(&id));
                }
                Err(ClientError::Timeout(self.request_timeout))
            }
            Ok(Err(_)) => Err(ClientError::Closed),
            Ok(Ok(Ok(r))) => Ok(r),
            Ok(Ok(Err(e))) => Err(ClientError::Helper(e)),
        }
    }

    pub async fn list_sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        match self.request(Request::ListSessions).await? {
            Response::Sessions(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn connect_profile(&self, req: ConnectRequest) -> Result<SessionInfo, ClientError> {
        match self.request(Request::Connect(req)).await? {
            Response::Started(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn disconnect(&self, session: SessionId) -> Result<(), ClientError> {
        match self.request(Request::Disconnect { session }).await? {
            Response::Stopping { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn status(&self) -> Result<HelperStatus, ClientError> {
        match self.request(Request::Status).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn subscribe(&self, sub: Subscription) -> Result<(), ClientError> {
        match self.request(Request::Subscribe(sub)).await? {
            Response::Subscribed => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn answer_challenge(
        &self,
        session: SessionId,
        response: Secret,
    ) -> Result<(), ClientError> {
        match self
            .request(Request::AnswerChallenge { session, response })
            .await?
        {
            Response::ChallengeAnswered => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn route_check(&self, addr: IpAddr) -> Result<RouteExplanation, ClientError> {
        match self.request(Request::RouteCheck { addr }).await? {
            Response::Route(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    pub async fn session_routes(&self, session: SessionId) -> Result<SessionRoutes, ClientError> {
        match self.request(Request::SessionRoutes { session }).await? {
            Response::Routes(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// "Check for leaks" (see [`crate::leak_check`]).
    pub async fn leak_check(
        &self,
        session: Option<SessionId>,
    ) -> Result<crate::leak_check::LeakReport, ClientError> {
        match self.request(Request::LeakCheck { session }).await? {
            Response::LeakCheck(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }
}

impl Client {
    /// The helper's lockdown setting and whether it blocks now.
    pub async fn lockdown_status(&self) -> Result<crate::lockdown::LockdownState, ClientError> {
        match self.request(Request::LockdownStatus).await? {
            Response::Lockdown(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Turns lockdown on or off; answers the state after the change.
    pub async fn set_lockdown(
        &self,
        change: crate::lockdown::LockdownChange,
    ) -> Result<crate::lockdown::LockdownState, ClientError> {
        match self.request(Request::SetLockdown(change)).await? {
            Response::Lockdown(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(r: Response) -> ClientError {
    ClientError::Unexpected(format!("{r:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{read_message, write_message};

    /// A tiny fake helper over an in-memory pipe.
    async fn fake_helper(
        stream: tokio::io::DuplexStream,
        protocol: u32,
    ) -> Result<(), crate::FrameError> {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let Some(ClientFrame::Hello(h)) = read_message::<_, ClientFrame>(&mut rd).await? else {
            return Ok(());
        };
        if h.protocol != protocol {
            let refuse = ServerFrame::Refused(IpcError::VersionMismatch {
                helper: protocol,
                client: h.protocol,
            });
            return write_message(&mut wr, &refuse).await;
        }
        let hello = ServerFrame::Hello(ServerHello {
            protocol,
            helper_version: ShortText::sanitized("fake"),
            peer_uid: 1000,
        });
        write_message(&mut wr, &hello).await?;
        while let Some(f) = read_message::<_, ClientFrame>(&mut rd).await? {
            let ClientFrame::Request { id, body } = f else {
                continue;
            };
            // An event first: the client must route it apart from the response.
            let ev = ServerFrame::Event(Event {
                session: SessionId(1),
                unix_ms: 1,
                body: EventBody::Stats(Stats::default()),
            });
            write_message(&mut wr, &ev).await?;
            let result = match body {
                Request::Disconnect { session } => Err(IpcError::NoSuchSession { session }),
                _ => Ok(Response::Sessions(vec![])),
            };
            write_message(&mut wr, &ServerFrame::Response { id, result }).await?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn request_response_and_events() {
        let (a, b) = tokio::io::duplex(4096);
        tokio::spawn(fake_helper(b, PROTOCOL_VERSION));
        let mut c = Client::handshake(a, "test").await.unwrap();
        assert_eq!(c.server_hello().peer_uid, 1000);
        let mut events = c.take_events().unwrap();
        assert!(c.list_sessions().await.unwrap().is_empty());
        match c.disconnect(SessionId(9)).await {
            Err(ClientError::Helper(IpcError::NoSuchSession { session })) => {
                assert_eq!(session, SessionId(9))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events.recv().await.unwrap().session, SessionId(1));
    }

    #[tokio::test]
    async fn version_mismatch_from_helper() {
        let (a, b) = tokio::io::duplex(4096);
        tokio::spawn(fake_helper(b, PROTOCOL_VERSION + 1));
        match Client::handshake(a, "test").await {
            Err(ClientError::VersionMismatch { helper, client }) => {
                assert_eq!(helper, PROTOCOL_VERSION + 1);
                assert_eq!(client, PROTOCOL_VERSION);
            }
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("accepted a mismatched helper"),
        }
    }

    #[tokio::test]
    async fn version_mismatch_in_hello_checked_by_client() {
        let (a, b) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(b);
            let _ = read_message::<_, ClientFrame>(&mut rd).await;
            let hello = ServerFrame::Hello(ServerHello {
                protocol: 99,
                helper_version: ShortText::sanitized("future"),
                peer_uid: 0,
            });
            let _ = write_message(&mut wr, &hello).await;
        });
        assert!(matches!(
            Client::handshake(a, "test").await,
            Err(ClientError::VersionMismatch { helper: 99, .. })
        ));
    }

    #[tokio::test]
    async fn dropping_the_client_closes_the_connection() {
        let (a, b) = tokio::io::duplex(4096);
        let helper = tokio::spawn(fake_helper(b, PROTOCOL_VERSION));
        let c = Client::handshake(a, "test").await.unwrap();
        c.list_sessions().await.unwrap();
        drop(c);
        // The fake helper returns once it reads end-of-stream.
        tokio::time::timeout(Duration::from_secs(5), helper)
            .await
            .expect("helper never saw the client go")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn closed_helper_fails_pending_requests() {
        let (a, b) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(b);
            let _ = read_message::<_, ClientFrame>(&mut rd).await;
            let hello = ServerFrame::Hello(ServerHello {
                protocol: PROTOCOL_VERSION,
                helper_version: ShortText::sanitized("x"),
                peer_uid: 0,
            });
            let _ = write_message(&mut wr, &hello).await;
            let _ = read_message::<_, ClientFrame>(&mut rd).await;
            // drop without answering
        });
        let c = Client::handshake(a, "test").await.unwrap();
        assert!(matches!(c.status().await, Err(ClientError::Closed)));
    }
}
