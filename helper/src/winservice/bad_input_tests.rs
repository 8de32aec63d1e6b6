//! Bad input at the service's front door, decided by the Windows gate's own code
//! ([`super::pipe_acl::admit`]) and served by the shared service over in-memory streams,
//! so these run natively in Linux CI and as windows-gnu tests under Wine. The same cases
//! over a real named pipe are in `runtime.rs` (Windows only).
//!
//! The tokens are given, not read: Wine runs every process as one administrator, so a
//! client outside the group cannot be produced there, and the decision is what matters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ipc::{
    frame, Client, ClientError, ClientFrame, ClientHello, IpcError, Request, RequestId,
    ServerFrame, ShortText, PROTOCOL_VERSION,
};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, watch};

use super::config::USERS_GROUP;
use super::pipe_acl::{self, ClientIdentity};
use crate::service::{self, Ctx, Gate, Listener, Peer};
use crate::stop::Flag;
use crate::tunnel::launcher::{Journals, Launcher};
use crate::tunnel::stub::StubMode;

/// In-memory connections handed to the service one by one.
struct Streams(mpsc::UnboundedReceiver<DuplexStream>);

impl Listener for Streams {
    type Stream = DuplexStream;

    async fn accept(&mut self) -> std::io::Result<(DuplexStream, Option<u32>)> {
        match self.0.recv().await {
            Some(s) => Ok((s, None)),
            None => std::future::pending().await,
        }
    }
}

/// The tokens of the clients to come, in order, judged by the Windows gate's decision.
struct Tokens(Mutex<VecDeque<ClientIdentity>>);

impl Gate for Tokens {
    type Stream = DuplexStream;

    async fn admit(&self, _: &DuplexStream) -> Result<Peer, IpcError> {
        let id = self
            .0
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| IpcError::internal("the test gave no token for this client"))?;
        pipe_acl::admit(&id)
    }
}

fn token(in_group: bool) -> ClientIdentity {
    ClientIdentity {
        user_sid: "S-1-5-21-3623811015-3361044348-30300820-1001".into(),
        pid: 4242,
        is_system: false,
        is_admin: false,
        in_users_group: in_group,
    }
}

struct Service {
    connections: mpsc::UnboundedSender<DuplexStream>,
    stop: watch::Sender<Option<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _state: tempfile::TempDir,
}

impl Service {
    fn start(tokens: Vec<ClientIdentity>) -> Self {
        let state = tempfile::tempdir().unwrap();
        let launcher = Arc::new(Launcher::stub(
            StubMode::Hold,
            Journals::PerSession(state.path().to_owned()),
        ));
        let (connections, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(None);
        let gate = Arc::new(Tokens(Mutex::new(tokens.into())));
        let task = tokio::spawn(async move {
            let mut stop = Flag(stop_rx);
            service::serve(Streams(rx), gate, Ctx::new(launcher), &mut stop).await
        });
        Self {
            connections,
            stop,
            task,
            _state: state,
        }
    }

    fn connect(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.connections.send(server).unwrap();
        client
    }

    async fn stop(self) {
        self.stop.send(Some(())).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_client_without_the_group_is_refused_naming_it_and_the_service_stays_up() {
    let svc = Service::start(vec![token(false), token(true)]);
    match Client::handshake(svc.connect(), "stranger").await {
        Err(ClientError::Refused(e @ IpcError::NotAuthorized { .. })) => {
            let IpcError::NotAuthorized { uid, group } = &e else {
                unreachable!()
            };
            assert_eq!(*uid, 1001);
            assert_eq!(group.as_str(), USERS_GROUP);
            assert!(e.to_string().contains(USERS_GROUP), "{e}");
        }
        Err(e) => panic!("a stranger got {e}, not a refusal naming the group"),
        Ok(_) => panic!("a client outside the group was served"),
    }
    let member = Client::handshake(svc.connect(), "member").await.unwrap();
    assert_eq!(member.server_hello().peer_uid, 1001);
    let status = member.status().await.unwrap();
    assert_eq!((status.peer_uid, status.sessions), (1001, 0));
    svc.stop().await;
}

/// The protocol has no request for one OS only (every request is served on Linux, macOS
/// and Windows alike), so what a client built for another OS or a newer release could
/// send is a request this helper does not know: one that sounds Unix-only and one that
/// sounds Windows-only. Each is refused in words naming it, that client is closed, and
/// the service goes on serving.
#[tokio::test]
async fn a_request_this_helper_does_not_know_is_refused_and_the_service_stays_up() {
    let svc = Service::start(vec![token(true), token(true), token(true)]);
    for (variant, args) in [
        ("set_socket_mode", serde_json::json!({ "mode": 0o666 })),
        (
            "set_pipe_acl",
            serde_json::json!({ "sddl": "D:(A;;GA;;;WD)" }),
        ),
    ] {
        let mut raw = svc.connect();
        let hello = ClientFrame::Hello(ClientHello {
            protocol: PROTOCOL_VERSION,
            client: ShortText::sanitized("a client of another OS"),
        });
        frame::write_message(&mut raw, &hello).await.unwrap();
        let answer: Option<ServerFrame> = frame::read_message(&mut raw).await.unwrap();
        assert!(matches!(answer, Some(ServerFrame::Hello(_))), "{answer:?}");
        let mut request = serde_json::to_value(ClientFrame::Request {
            id: RequestId(7),
            body: Request::Status,
        })
        .unwrap();
        request["request"]["body"] = serde_json::json!({ variant: args });
        frame::write_message(&mut raw, &request).await.unwrap();
        let answer: Option<ServerFrame> = frame::read_message(&mut raw).await.unwrap();
        match answer {
            Some(ServerFrame::Refused(e @ IpcError::InvalidRequest { .. })) => {
                let text = e.to_string();
                assert!(
                    text.contains(variant) && text.contains("unknown variant"),
                    "{text}"
                );
            }
            other => panic!("{variant}: answered {other:?}, not a refusal"),
        }
        let after: Option<ServerFrame> = frame::read_message(&mut raw).await.unwrap_or(None);
        assert_eq!(after, None, "the connection stays open after {variant}");
    }
    let member = Client::handshake(svc.connect(), "member").await.unwrap();
    assert_eq!(member.status().await.unwrap().sessions, 0);
    svc.stop().await;
}
