//! A fake OxiVPN helper speaking the real IPC protocol (crates/ipc frames) on a Unix
//! socket: the controller tests use it, and so does `examples/fake_helper.rs` (for
//! screenshots and trying the app without root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc::{
    ClientFrame, ConnectRequest, DisconnectReason, Event, EventBody, IpcError, Request, Response,
    RouteExplanation, ServerFrame, ServerHello, SessionId, SessionInfo, ShortText, Stage, Stats,
};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// How the fake helper behaves.
#[derive(Clone, Copy, PartialEq)]
pub enum Script {
    /// Every connect goes through all stages to connected.
    Normal,
    /// Refuse the hello: the user is not in the group.
    NotAuthorized,
    /// Ask a CRV1-style challenge after authenticating.
    Challenge,
    /// Like Normal, then traffic figures and log lines every 500 ms until disconnected.
    Demo,
    /// Like Normal, and a session of profile "Work" is already up (app restarted).
    AlreadyUp,
    /// The server never answers: the attempt fails after "connecting".
    ServerDown,
    /// Like Normal, then the helper goes away (its connection closes) once connected.
    DiesWhenConnected,
    /// Like Normal, and the listing and the route plan tell what the session got.
    Detailed,
    /// Like Normal, but an older helper: no session listing.
    NoListing,
    /// After authenticating, the server waits for a browser sign-in (60 s; the request
    /// comes twice, as a server repeating AUTH_PENDING sends it) and never decides
    /// (until the session is disconnected).
    SignIn,
    /// A browser sign-in, then the server refuses (the sign-in was denied).
    SignInDenied,
}

/// The sign-in link the SignIn scripts relay.
pub const SIGN_IN_URL: &str = "https://sso.example.com:8443/auth?state=abc123";

/// What the fake helper was sent.
#[derive(Default)]
pub struct Seen {
    pub connects: Vec<ConnectRequest>,
    pub answers: Vec<String>,
    pub disconnects: u32,
    /// Lockdown changes asked for, in order; the state is the last one's.
    pub lockdown_changes: Vec<ipc::LockdownChange>,
}

/// The fake's lockdown after `changes` (it blocks whenever on: the fake has no sessions'
/// kill switches to hand over to).
fn lockdown_state(changes: &[ipc::LockdownChange]) -> ipc::LockdownState {
    let last = changes.last().copied().unwrap_or(ipc::LockdownChange {
        enabled: false,
        allow_lan: false,
    });
    ipc::LockdownState {
        enabled: last.enabled,
        allow_lan: last.enabled && last.allow_lan,
        blocking: last.enabled,
        set_by_admin: false,
        may_change: true,
        problem: None,
    }
}

pub struct FakeHelper {
    pub socket: PathBuf,
    pub seen: Arc<Mutex<Seen>>,
    script: Script,
    /// The accept loop and every connection's task: [`FakeHelper::stop`] ends them as a
    /// crashed helper's end.
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

/// The fake proxy's password.
pub const PROXY_PASSWORD: &str = "px-secret";

/// What the helper's proxy link says (ovpn-tokio's texts) when a profile with an
/// `http-proxy` reaches a fake proxy that wants user "squid" / [`PROXY_PASSWORD`].
fn proxy_refusal(req: &ConnectRequest) -> Option<String> {
    let text = req.profile_text.as_str();
    if !text.contains("http-proxy ") {
        return None;
    }
    let c = &req.credentials;
    let right = c
        .proxy_username
        .as_ref()
        .is_some_and(|u| u.as_str() == "squid")
        && c.proxy_password
            .as_ref()
            .is_some_and(|p| p.expose() == PROXY_PASSWORD);
    match (&c.proxy_password, right) {
        (_, true) => None,
        (None, _) => Some("proxy 127.0.0.1:3128: the HTTP proxy asks for a user name and password (407), and none was given".into()),
        (Some(_), false) => Some("proxy 127.0.0.1:3128: the HTTP proxy refused the proxy user name or password (407 Proxy Authentication Required)".into()),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ev(session: SessionId, body: EventBody) -> ServerFrame {
    ServerFrame::Event(Event {
        session,
        unix_ms: now_ms(),
        body,
    })
}

fn connected_events(session: SessionId) -> Vec<ServerFrame> {
    vec![
        ev(
            session,
            EventBody::Log(ipc::LogLine {
                level: ipc::LogLevel::Info,
                message: ipc::LogText::sanitized("Data channel: cipher AES-256-GCM, peer-id 0"),
            }),
        ),
        ev(session, EventBody::Stage(Stage::Configuring)),
        ev(
            session,
            EventBody::Stage(Stage::Connected {
                tunnel_ipv4: Some("10.8.0.2".parse().unwrap()),
                tunnel_ipv6: None,
                interface: Some(ShortText::sanitized("tun0")),
            }),
        ),
        ev(
            session,
            EventBody::Stats(Stats {
                bytes_in: 4096,
                bytes_out: 1024,
                packets_in: 4,
                packets_out: 2,
                since_unix_ms: 1_700_000_000_000,
                drops: ipc::DropCounts {
                    replayed: 2,
                    compression: 1,
                    ..Default::default()
                },
                mss_clamped: 2,
            }),
        ),
    ]
}

impl FakeHelper {
    /// Listens on `dir/helper.sock`.
    pub fn start(dir: &Path, script: Script) -> Self {
        Self::start_at(dir.join("helper.sock"), script)
    }

    pub fn start_at(socket: PathBuf, script: Script) -> Self {
        let helper = Self {
            socket,
            seen: Arc::new(Mutex::new(Seen::default())),
            script,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        helper.listen();
        helper
    }

    fn listen(&self) {
        let listener = UnixListener::bind(&self.socket).unwrap();
        let (script, seen, tasks) = (self.script, self.seen.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let t = tokio::spawn(serve(stream, script, seen.clone()));
                tasks.lock().unwrap().push(t.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// The helper dies: every connection closes, nothing listens, the socket is gone.
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// The helper runs again on the same socket (as systemd restarts it), with no
    /// sessions; what it was sent before is kept in `seen`.
    pub fn restart(&self) {
        self.stop();
        self.listen();
    }
}

async fn serve(stream: tokio::net::UnixStream, script: Script, seen: Arc<Mutex<Seen>>) {
    use ipc::frame::{read_message, write_message};
    let (mut rd, mut wr) = stream.into_split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<ServerFrame>();
    let Ok(Some(ClientFrame::Hello(_))) = read_message::<_, ClientFrame>(&mut rd).await else {
        return;
    };
    if script == Script::NotAuthorized {
        let refused = ServerFrame::Refused(IpcError::NotAuthorized {
            uid: 1000,
            group: ShortText::sanitized("oxivpn"),
        });
        let _ = write_message(&mut wr, &refused).await;
        return;
    }
    let hello = ServerFrame::Hello(ServerHello {
        protocol: ipc::PROTOCOL_VERSION,
        helper_version: ShortText::sanitized("fake 0"),
        peer_uid: 1000,
    });
    if write_message(&mut wr, &hello).await.is_err() {
        return;
    }
    tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            if write_message(&mut wr, &f).await.is_err() {
                return;
            }
        }
    });
    let mut ticker: Option<tokio::task::JoinHandle<()>> = None;
    let mut next_session = 7;
    let mut current = SessionId(0);
    // Sessions started on this connection: what the listing reports, as the real
    // helper does once a session has negotiated (server, cipher, TLS, kill switch).
    let mut sessions: Vec<(SessionId, ipc::ProfileName, bool)> = Vec::new();
    while let Ok(Some(ClientFrame::Request { id, body })) =
        read_message::<_, ClientFrame>(&mut rd).await
    {
        let mut after: Vec<ServerFrame> = Vec::new();
        let result = match body {
            Request::Subscribe(_) => Ok(Response::Subscribed),
            // The helper's rule for encrypted keys: it opens the key before starting
            // anything (the fake's key opens with "open sesame").
            Request::Connect(req)
                if req.profile_text.as_str().contains("ENCRYPTED PRIVATE KEY")
                    && req
                        .credentials
                        .key_passphrase
                        .as_ref()
                        .is_none_or(|p| p.expose() != "open sesame") =>
            {
                let wrong = req.credentials.key_passphrase.is_some();
                seen.lock().unwrap().connects.push(req);
                Err(IpcError::KeyPassphrase { wrong })
            }
            // The helper's guard: a proxy whose credentials the profile asks for
            // (`stdin`, what import leaves in place of an auth file) gets them with the
            // connect, or nothing starts.
            Request::Connect(req)
                if req.profile_text.as_str().contains(" stdin")
                    && req.profile_text.as_str().contains("-proxy ")
                    && req.credentials.proxy_password.is_none() =>
            {
                seen.lock().unwrap().connects.push(req);
                Err(IpcError::invalid(
                    "connect.credentials",
                    "the profile's proxy (http-proxy / socks-proxy) needs a proxy user name and password",
                ))
            }
            Request::Connect(req) => {
                current = SessionId(next_session);
                next_session += 1;
                let proxy_refusal = proxy_refusal(&req);
                let wrong = req
                    .credentials
                    .password
                    .as_ref()
                    .is_some_and(|p| p.expose() == "wrong");
                let info = SessionInfo {
                    id: current,
                    owner_uid: 1000,
                    profile_name: Some(req.profile_name.clone()),
                    stage: Stage::Starting,
                    started_unix_ms: 1_700_000_000_000,
                    stats: Stats::default(),
                    connection: None,
                };
                // The helper's rule: automatic guards a tunnel that takes all traffic.
                let guarded = match req.options.kill_switch {
                    ipc::KillSwitchMode::On => true,
                    ipc::KillSwitchMode::Off => false,
                    ipc::KillSwitchMode::Default => {
                        req.profile_text.as_str().contains("redirect-gateway")
                    }
                };
                // The helper's rule for several sessions (its engine): while one session's
                // kill switch is on, no other session can start.
                let blocker = sessions.iter().find(|s| s.2).map(|s| s.0);
                sessions.push((current, req.profile_name.clone(), guarded));
                seen.lock().unwrap().connects.push(req);
                after.push(ev(current, EventBody::Stage(Stage::Resolving)));
                after.push(ev(
                    current,
                    EventBody::Stage(Stage::Connecting {
                        remote: ShortText::sanitized("udp 127.0.0.1:1194"),
                    }),
                ));
                after.push(ev(current, EventBody::Stage(Stage::Tls)));
                after.push(ev(current, EventBody::Stage(Stage::Authenticating)));
                if let Some(owner) = blocker {
                    sessions.pop();
                    after.truncate(1);
                    after.push(ev(
                        current,
                        EventBody::Stage(Stage::Disconnected {
                            reason: DisconnectReason::Failed {
                                error: IpcError::Tunnel {
                                    message: ShortText::sanitized(&format!(
                                        "the kill switch of session {owner} is on and blocks every other server: disconnect {owner} first"
                                    )),
                                },
                            },
                        }),
                    ));
                } else if let Some(message) = proxy_refusal {
                    // The proxy answers before any server: the session ends at "connecting".
                    sessions.pop();
                    after.truncate(2);
                    after.push(ev(
                        current,
                        EventBody::Stage(Stage::Disconnected {
                            reason: DisconnectReason::Failed {
                                error: IpcError::tunnel(message),
                            },
                        }),
                    ));
                } else if wrong {
                    sessions.pop();
                    after.push(ev(
                        current,
                        EventBody::Stage(Stage::Disconnected {
                            reason: DisconnectReason::AuthFailed {
                                message: ShortText::sanitized("bad user or password"),
                            },
                        }),
                    ));
                } else if script == Script::ServerDown {
                    sessions.pop();
                    after.truncate(2);
                    after.push(ev(
                        current,
                        EventBody::Stage(Stage::Disconnected {
                            reason: DisconnectReason::Failed {
                                error: IpcError::Tunnel {
                                    message: ShortText::sanitized(
                                        "no reply from the server udp 127.0.0.1:1194 within 10 s (timed out)",
                                    ),
                                },
                            },
                        }),
                    ));
                } else if matches!(script, Script::SignIn | Script::SignInDenied) {
                    after.push(ev(
                        current,
                        EventBody::SignIn(ipc::SignInRequest {
                            url: ipc::SignInUrl::try_from(SIGN_IN_URL).unwrap(),
                            host: ShortText::sanitized("sso.example.com"),
                            timeout_secs: Some(60),
                            external: true,
                            kill_switch_exception: true,
                        }),
                    ));
                    // The server repeats AUTH_PENDING (OpenVPN may): the same link again.
                    let again = after.last().cloned();
                    after.extend(again);
                    if script == Script::SignInDenied {
                        sessions.pop();
                        after.push(ev(
                            current,
                            EventBody::Stage(Stage::Disconnected {
                                reason: DisconnectReason::AuthFailed {
                                    message: ShortText::sanitized("sign-in denied"),
                                },
                            }),
                        ));
                    }
                } else if script == Script::Challenge {
                    after.push(ev(
                        current,
                        EventBody::Challenge(ipc::ChallengeRequest {
                            prompt: ShortText::sanitized("Enter the code from your app"),
                            echo: true,
                        }),
                    ));
                } else {
                    after.extend(connected_events(current));
                }
                Ok(Response::Started(info))
            }
            Request::AnswerChallenge { session, response } => {
                seen.lock()
                    .unwrap()
                    .answers
                    .push(response.expose().to_string());
                after.extend(connected_events(session));
                Ok(Response::ChallengeAnswered)
            }
            Request::Disconnect { session } => {
                seen.lock().unwrap().disconnects += 1;
                sessions.retain(|s| s.0 != session);
                after.push(ev(
                    session,
                    EventBody::Stage(Stage::Disconnected {
                        reason: DisconnectReason::Requested { by_uid: 1000 },
                    }),
                ));
                Ok(Response::Stopping { session })
            }
            Request::RouteCheck { addr } => {
                let tunnel = addr.to_string().starts_with("10.");
                Ok(Response::Route(RouteExplanation {
                    addr,
                    session: tunnel.then_some(current),
                    via_tunnel: tunnel,
                    interface: Some(ShortText::sanitized(if tunnel { "tun0" } else { "eth0" })),
                    gateway: None,
                    route: Some(ShortText::sanitized(if tunnel {
                        "10.0.0.0/8 dev tun0"
                    } else {
                        "default via 192.168.1.1 dev eth0"
                    })),
                    explanation: ShortText::sanitized(if tunnel {
                        "pushed by the server: goes into the tunnel"
                    } else {
                        "not covered by the VPN: your normal network"
                    }),
                }))
            }
            Request::ListSessions if script == Script::AlreadyUp => {
                current = SessionId(3);
                Ok(Response::Sessions(vec![SessionInfo {
                    id: current,
                    owner_uid: 1000,
                    profile_name: Some(ipc::ProfileName::try_from("Work").unwrap()),
                    stage: Stage::Connected {
                        tunnel_ipv4: Some("10.8.0.6".parse().unwrap()),
                        tunnel_ipv6: None,
                        interface: Some(ShortText::sanitized("tun0")),
                    },
                    started_unix_ms: 1_700_000_000_000,
                    stats: Stats {
                        bytes_in: 10,
                        bytes_out: 20,
                        packets_in: 1,
                        packets_out: 1,
                        since_unix_ms: 1_700_000_000_000,
                        drops: Default::default(),
                        mss_clamped: 0,
                    },
                    connection: None,
                }]))
            }
            Request::ListSessions if script == Script::Detailed => {
                Ok(Response::Sessions(vec![SessionInfo {
                    id: current,
                    owner_uid: 1000,
                    profile_name: None,
                    stage: Stage::Starting,
                    started_unix_ms: 1_700_000_000_000,
                    stats: Stats::default(),
                    connection: Some(Box::new(ipc::ConnectionInfo {
                        server_addr: "127.0.0.1".parse().unwrap(),
                        server_port: 1194,
                        transport: ipc::Transport::Udp,
                        remote: ShortText::sanitized("vpn.example.com"),
                        cipher: Some(ShortText::sanitized("CHACHA20-POLY1305")),
                        tls: Some(ShortText::sanitized("TLSv1.3 TLS13_AES_256_GCM_SHA384")),
                        key_derivation: Some(ShortText::sanitized("tls-ekm")),
                        kill_switch: true,
                        data_format: None,
                        interface: Some(ShortText::sanitized("oxi0")),
                    })),
                }]))
            }
            Request::SessionRoutes { session } if script == Script::Detailed => {
                let route =
                    |dest: &str, gw: Option<&str>, dev: &str, kind, why: &str| ipc::RouteEntry {
                        destination: ShortText::sanitized(dest),
                        gateway: gw.map(|g| g.parse().unwrap()),
                        device: Some(ShortText::sanitized(dev)),
                        kind,
                        reason: ShortText::sanitized(why),
                    };
                Ok(Response::Routes(ipc::SessionRoutes {
                    session,
                    routes: vec![
                        route(
                            "0.0.0.0/1",
                            Some("10.8.0.1"),
                            "oxi0",
                            ipc::RouteKind::IntoTunnel,
                            "redirect-gateway def1",
                        ),
                        route(
                            "198.18.0.1/32",
                            Some("192.168.1.1"),
                            "eth0",
                            ipc::RouteKind::ServerBypass,
                            "the tunnel's own packets",
                        ),
                        route(
                            "192.168.1.0/24",
                            None,
                            "eth0",
                            ipc::RouteKind::Lan,
                            "directly attached",
                        ),
                    ],
                    notes: vec![ShortText::sanitized(
                        "bypass-dhcp: the DHCP server is on-link",
                    )],
                }))
            }
            Request::ListSessions if script != Script::NoListing => Ok(Response::Sessions(
                sessions
                    .iter()
                    .map(|(id, name, guarded)| SessionInfo {
                        id: *id,
                        owner_uid: 1000,
                        profile_name: Some(name.clone()),
                        stage: Stage::Connected {
                            tunnel_ipv4: Some("10.8.0.2".parse().unwrap()),
                            tunnel_ipv6: None,
                            interface: Some(ShortText::sanitized("tun0")),
                        },
                        started_unix_ms: 1_700_000_000_000,
                        stats: Stats::default(),
                        connection: Some(Box::new(ipc::ConnectionInfo {
                            server_addr: "127.0.0.1".parse().unwrap(),
                            server_port: 1194,
                            transport: ipc::Transport::Udp,
                            remote: ShortText::sanitized("127.0.0.1"),
                            cipher: Some(ShortText::sanitized("AES-256-GCM")),
                            tls: Some(ShortText::sanitized("TLSv1.3 TLS13_AES_256_GCM_SHA384")),
                            key_derivation: Some(ShortText::sanitized("tls-ekm")),
                            kill_switch: *guarded,
                            data_format: None,
                            interface: Some(ShortText::sanitized("tun0")),
                        })),
                    })
                    .collect(),
            )),
            // An older helper (NoListing) has no lockdown either.
            Request::LockdownStatus if script != Script::NoListing => Ok(Response::Lockdown(
                lockdown_state(&seen.lock().unwrap().lockdown_changes),
            )),
            Request::SetLockdown(change) if script != Script::NoListing => {
                let mut s = seen.lock().unwrap();
                s.lockdown_changes.push(change);
                Ok(Response::Lockdown(lockdown_state(&s.lockdown_changes)))
            }
            Request::ListSessions
            | Request::Status
            | Request::SessionRoutes { .. }
            | Request::LockdownStatus
            | Request::SetLockdown(_)
            | Request::LeakCheck { .. } => Err(IpcError::Unsupported {
                what: ShortText::sanitized("not in the fake"),
            }),
        };
        let started = matches!(
            result,
            Ok(Response::Started(_)) | Ok(Response::ChallengeAnswered)
        );
        let stopping = matches!(result, Ok(Response::Stopping { .. }));
        if out.send(ServerFrame::Response { id, result }).is_err() {
            return;
        }
        for f in after {
            let _ = out.send(f);
        }
        if stopping {
            if let Some(t) = ticker.take() {
                t.abort();
            }
        }
        if started && script == Script::DiesWhenConnected {
            // Let the events reach the app, then vanish as a stopped helper does.
            tokio::time::sleep(Duration::from_millis(200)).await;
            break;
        }
        if started && script == Script::Demo {
            ticker = Some(tokio::spawn(demo_traffic(current, out.clone())));
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
}

/// Traffic that looks like browsing: a burst every few seconds over a steady trickle.
async fn demo_traffic(session: SessionId, out: mpsc::UnboundedSender<ServerFrame>) {
    let (mut rx, mut tx) = (4096u64, 1024u64);
    let since = now_ms();
    for i in 0u64..100_000 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let burst = if i % 9 < 3 {
            900_000 + (i % 5) * 150_000
        } else {
            60_000 + (i % 7) * 20_000
        };
        rx += burst;
        tx += burst / 12 + 4_000;
        let stats = Stats {
            bytes_in: rx,
            bytes_out: tx,
            packets_in: rx / 1200,
            packets_out: tx / 400,
            since_unix_ms: since,
            drops: Default::default(),
            mss_clamped: 0,
        };
        if out.send(ev(session, EventBody::Stats(stats))).is_err() {
            return;
        }
        if i % 20 == 5 {
            let line = ipc::LogLine {
                level: ipc::LogLevel::Debug,
                message: ipc::LogText::sanitized("keepalive: ping sent, reply in 0.4 ms"),
            };
            let _ = out.send(ev(session, EventBody::Log(line)));
        }
    }
}
