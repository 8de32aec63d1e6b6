//! Session registry: who owns what, the current stage and counters, and the
//! supervisor task per session that runs tunnel attempts and reconnects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipc::{
    ConnectRequest, ConnectionInfo, DisconnectReason, Event, EventBody, HelperStatus, IpcError,
    LogLine, LogText, ProfileName, RouteEntry, RouteExplanation, Secret, SessionId, SessionInfo,
    SessionRoutes, ShortText, Stage, Stats,
};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::Instrument;

use super::leak_check;
use super::peer::Peer;
use super::profile_guard;
use super::route_check::{self, TunnelIface};
use crate::tunnel::launcher::Attempts;
use crate::tunnel::supervisor::{self, Control, Policy};
use crate::tunnel::{SessionEvent, SessionSpec};

pub const MAX_SESSIONS_PER_UID: usize = 4;
pub const MAX_SESSIONS: usize = 32;

/// An event on its way to subscribers, with the owner for the visibility check.
#[derive(Debug, Clone)]
pub struct Published {
    /// Increasing; lets a new subscriber skip live events its replay already had.
    pub seq: u64,
    pub owner_uid: u32,
    pub event: Event,
}

/// Stage changes and log lines kept for `oxivpnctl logs` and new subscribers,
/// including those of sessions that already ended (why did it fail?).
const HISTORY: usize = 500;

struct Entry {
    owner_uid: u32,
    profile_name: ProfileName,
    stage: Stage,
    started_unix_ms: u64,
    stats: Stats,
    stop: watch::Sender<Option<u32>>,
    /// Windows power events (Linux notices sleep through the network watch).
    #[cfg_attr(not(windows), allow(dead_code))]
    reconnect: watch::Sender<Option<String>>,
    challenge_tx: mpsc::Sender<Secret>,
    challenge_pending: bool,
    connection: Option<ConnectionInfo>,
    /// The applied route plan of the current (or last) connection.
    routes: Vec<RouteEntry>,
    route_notes: Vec<ShortText>,
}

impl Entry {
    fn info(&self, id: SessionId, viewer: &Peer) -> SessionInfo {
        let visible = viewer.may_see(self.owner_uid);
        SessionInfo {
            id,
            owner_uid: self.owner_uid,
            profile_name: visible.then(|| self.profile_name.clone()),
            stage: if visible {
                self.stage.clone()
            } else {
                redacted(&self.stage)
            },
            started_unix_ms: self.started_unix_ms,
            stats: if visible {
                self.stats
            } else {
                Stats::default()
            },
            connection: if visible {
                self.connection.clone().map(Box::new)
            } else {
                None
            },
        }
    }
}

/// Another user's stage: where it is, not where it connects to or why it failed.
fn redacted(stage: &Stage) -> Stage {
    let hidden = || ShortText::sanitized("(another user's session)");
    match stage {
        Stage::Connecting { .. } => Stage::Connecting { remote: hidden() },
        Stage::Connected { interface, .. } => Stage::Connected {
            tunnel_ipv4: None,
            tunnel_ipv6: None,
            // The interface is visible to every local user anyway (`ip link`).
            interface: interface.clone(),
        },
        Stage::Reconnecting {
            attempt, delay_ms, ..
        } => Stage::Reconnecting {
            reason: hidden(),
            attempt: *attempt,
            delay_ms: *delay_ms,
        },
        Stage::Disconnected { .. } => Stage::Disconnected {
            reason: DisconnectReason::ServerExit { message: hidden() },
        },
        other => other.clone(),
    }
}

pub struct Sessions {
    map: Mutex<BTreeMap<SessionId, Entry>>,
    events: broadcast::Sender<Arc<Published>>,
    history: Mutex<(u64, std::collections::VecDeque<Arc<Published>>)>,
    launcher: Arc<dyn Attempts>,
    next_id: AtomicU64,
    started: std::time::Instant,
}

pub fn now_ms() -> u64 {
    crate::tunnel::unix_ms()
}

impl Sessions {
    pub fn new(launcher: Arc<dyn Attempts>) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Self {
            map: Mutex::new(BTreeMap::new()),
            events,
            history: Mutex::new((0, std::collections::VecDeque::new())),
            launcher,
            next_id: AtomicU64::new(1),
            started: std::time::Instant::now(),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<SessionId, Entry>>, IpcError> {
        self.map
            .lock()
            .map_err(|_| IpcError::internal("session table poisoned"))
    }

    /// The sessions `viewer` may see: a member its own, root all (docs/security.md).
    pub fn list(&self, viewer: &Peer) -> Result<Vec<SessionInfo>, IpcError> {
        Ok(self
            .lock()?
            .iter()
            .filter(|(_, e)| viewer.may_see(e.owner_uid))
            .map(|(id, e)| e.info(*id, viewer))
            .collect())
    }

    pub fn status(&self, viewer: &Peer) -> Result<HelperStatus, IpcError> {
        let visible = self
            .lock()?
            .values()
            .filter(|e| viewer.may_see(e.owner_uid))
            .count();
        Ok(HelperStatus {
            helper_version: ShortText::sanitized(env!("CARGO_PKG_VERSION")),
            protocol: ipc::PROTOCOL_VERSION,
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            peer_uid: viewer.uid,
            sessions: u32::try_from(visible).unwrap_or(u32::MAX),
            tunnel_wired: self.launcher.wired(),
            lockdown: super::lockdown::active().map(|l| l.state(viewer.privileged)),
        })
    }

    pub fn connect(
        self: &Arc<Self>,
        peer: &Peer,
        req: ConnectRequest,
    ) -> Result<SessionInfo, IpcError> {
        let (guarded, profile) = profile_guard::check_all(req.profile_text.as_str())?;
        if guarded.needs_user_pass
            && (req.credentials.username.is_none() || req.credentials.password.is_none())
        {
            return Err(IpcError::invalid(
                "connect.credentials",
                "the profile uses auth-user-pass: a username and password are required",
            ));
        }
        // An encrypted key is opened now: a missing or wrong passphrase is the user's to
        // fix (the app and oxivpnctl ask again), not a tunnel failure after a handshake.
        let key_passphrase = req
            .credentials
            .key_passphrase
            .as_ref()
            .map(|s| ovpn_core::config::Secret(s.expose().to_owned()));
        if let Err(e) = ovpn_tokio::config::check_identity(&profile, key_passphrase.as_ref()) {
            use ovpn_tokio::config::IdentityCheck;
            tracing::info!(uid = peer.uid, error = %e, "connect refused: client key");
            return Err(match e {
                IdentityCheck::WrongPassphrase => IpcError::KeyPassphrase { wrong: true },
                IdentityCheck::PassphraseNeeded => IpcError::KeyPassphrase { wrong: false },
                other => IpcError::InvalidProfile {
                    message: ipc::ShortText::sanitized(&other.to_string()),
                },
            });
        }
        if guarded.needs_proxy_pass
            && (req.credentials.proxy_username.is_none()
                || req.credentials.proxy_password.is_none())
        {
            return Err(IpcError::invalid(
                "connect.credentials",
                "the profile's proxy (http-proxy / socks-proxy) needs a proxy user name and password",
            ));
        }
        // The kill switch blocks every server but its own session's: say so now, naming
        // that session, rather than fail the new one at its first attempt.
        if let Some(owner) = self.launcher.kill_switch_owner() {
            tracing::info!(uid = peer.uid, holder = %owner, "connect refused: kill switch held");
            return Err(IpcError::KillSwitchHeld { session: owner });
        }
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (stop_tx, stop_rx) = watch::channel(None);
        let (reconnect_tx, reconnect_rx) = watch::channel(None);
        let (challenge_tx, challenge_rx) = mpsc::channel(4);
        let info = {
            let mut map = self.lock()?;
            if map.len() >= MAX_SESSIONS {
                return Err(IpcError::limit(
                    "sessions on this helper",
                    MAX_SESSIONS as u32,
                ));
            }
            let mine = map.values().filter(|e| e.owner_uid == peer.uid).count();
            if mine >= MAX_SESSIONS_PER_UID {
                return Err(IpcError::limit(
                    "sessions per user",
                    MAX_SESSIONS_PER_UID as u32,
                ));
            }
            let entry = Entry {
                owner_uid: peer.uid,
                profile_name: req.profile_name.clone(),
                stage: Stage::Starting,
                started_unix_ms: now_ms(),
                stats: Stats::default(),
                stop: stop_tx,
                reconnect: reconnect_tx,
                challenge_tx,
                challenge_pending: false,
                connection: None,
                routes: Vec::new(),
                route_notes: Vec::new(),
            };
            let info = entry.info(id, peer);
            map.insert(id, entry);
            info
        };
        tracing::info!(session = %id, uid = peer.uid, profile = %req.profile_name, "session starting");
        // The secrets move from the decoded request into the session (their buffers
        // change hands, no copy is made); the request keeps nothing.
        let ipc::Credentials {
            username,
            password,
            challenge_response,
            proxy_username,
            proxy_password,
            ..
        } = req.credentials;
        let secret = |s: ipc::Secret| ovpn_core::config::Secret::from(String::from(s));
        let spec = Arc::new(SessionSpec {
            id,
            profile: Arc::new(profile),
            credentials: match (username, password) {
                (Some(u), Some(p)) => Some(ovpn_core::config::Credentials {
                    username: u.as_str().to_owned(),
                    password: secret(p),
                }),
                _ => None,
            },
            static_response: challenge_response.map(secret),
            key_passphrase,
            proxy_credentials: match (proxy_username, proxy_password) {
                (Some(u), Some(p)) => Some(ovpn_tokio::proxy::ProxyCredentials {
                    username: u.as_str().to_owned(),
                    password: secret(p),
                }),
                _ => None,
            },
            options: req.options,
        });
        let me = self.clone();
        let span = tracing::info_span!("session", id = %id, uid = peer.uid);
        tokio::spawn(
            async move {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let control = Control {
                    stop: stop_rx,
                    answers: Some(challenge_rx),
                    reconnect: Some(reconnect_rx),
                };
                let policy = Policy {
                    give_up_unless_connected: false,
                };
                let session = supervisor::run(spec, me.launcher.clone(), tx, control, policy);
                let pump = async {
                    while let Some(ev) = rx.recv().await {
                        me.apply(id, ev);
                    }
                };
                let (reason, ()) = tokio::join!(session, pump);
                me.finish(id, &reason);
            }
            .instrument(span),
        );
        Ok(info)
    }

    pub fn disconnect(&self, peer: &Peer, id: SessionId) -> Result<(), IpcError> {
        let map = self.lock()?;
        let entry = map
            .get(&id)
            .ok_or(IpcError::NoSuchSession { session: id })?;
        if !peer.may_control(entry.owner_uid) {
            tracing::warn!(session = %id, uid = peer.uid, owner = entry.owner_uid, "refused disconnect of another user's session");
            return Err(IpcError::NotYourSession { session: id });
        }
        entry.stop.send_replace(Some(peer.uid));
        tracing::info!(session = %id, by_uid = peer.uid, "disconnect requested");
        Ok(())
    }

    pub fn answer_challenge(
        &self,
        peer: &Peer,
        id: SessionId,
        answer: Secret,
    ) -> Result<(), IpcError> {
        let mut map = self.lock()?;
        let entry = map
            .get_mut(&id)
            .ok_or(IpcError::NoSuchSession { session: id })?;
        if !peer.may_control(entry.owner_uid) {
            return Err(IpcError::NotYourSession { session: id });
        }
        if !entry.challenge_pending {
            return Err(IpcError::NoChallengePending { session: id });
        }
        entry
            .challenge_tx
            .try_send(answer)
            .map_err(|_| IpcError::NoChallengePending { session: id })?;
        entry.challenge_pending = false;
        Ok(())
    }

    /// The route plan applied for a session (empty until it is connected).
    pub fn routes(&self, peer: &Peer, id: SessionId) -> Result<SessionRoutes, IpcError> {
        let map = self.lock()?;
        let entry = map
            .get(&id)
            .ok_or(IpcError::NoSuchSession { session: id })?;
        if !peer.may_control(entry.owner_uid) {
            return Err(IpcError::NotYourSession { session: id });
        }
        Ok(SessionRoutes {
            session: id,
            routes: entry.routes.clone(),
            notes: entry.route_notes.clone(),
        })
    }

    pub async fn route_check(
        &self,
        peer: &Peer,
        addr: IpAddr,
    ) -> Result<RouteExplanation, IpcError> {
        let tunnels: Vec<TunnelIface> = self
            .lock()?
            .iter()
            .filter_map(|(id, e)| match &e.stage {
                Stage::Connected {
                    interface: Some(i), ..
                } => Some(TunnelIface {
                    session: *id,
                    interface: i.to_string(),
                    visible: peer.may_see(e.owner_uid),
                }),
                _ => None,
            })
            .collect();
        tokio::task::spawn_blocking(move || route_check::explain(addr, &tunnels))
            .await
            .map_err(IpcError::internal)?
    }

    /// "Check for leaks" against `session`, or the caller's connected session (else
    /// their newest one, else none). Anyone may run it: it shows what `ip route` shows.
    pub async fn leak_check(
        &self,
        peer: &Peer,
        session: Option<SessionId>,
    ) -> Result<ipc::LeakReport, IpcError> {
        let mut target = leak_check::Target {
            kill_switch_owner: self.launcher.kill_switch_owner(),
            ..leak_check::Target::default()
        };
        {
            let map = self.lock()?;
            target.all_tunnels = map
                .values()
                .filter_map(|e| match &e.stage {
                    Stage::Connected {
                        interface: Some(i), ..
                    } => Some(i.to_string()),
                    _ => None,
                })
                .collect();
            let chosen = match session {
                Some(id) => {
                    let e = map
                        .get(&id)
                        .ok_or(IpcError::NoSuchSession { session: id })?;
                    if !peer.may_control(e.owner_uid) {
                        return Err(IpcError::NotYourSession { session: id });
                    }
                    Some((id, e))
                }
                None => {
                    let mine = || map.iter().filter(|(_, e)| peer.may_control(e.owner_uid));
                    mine()
                        .find(|(_, e)| matches!(e.stage, Stage::Connected { .. }))
                        .or_else(|| {
                            mine().rfind(|(_, e)| !matches!(e.stage, Stage::Disconnected { .. }))
                        })
                        .map(|(id, e)| (*id, e))
                }
            };
            if let Some((id, e)) = chosen {
                target.session = Some(id);
                target.profile_name = Some(e.profile_name.clone());
                if let Stage::Connected { interface, .. } = &e.stage {
                    target.connected = true;
                    target.tunnel_iface = interface.as_ref().map(|i| i.to_string());
                    target.read_plan(&e.routes);
                }
                if let Some(c) = &e.connection {
                    target.server = Some(c.server_addr);
                    target.guarded = c.kill_switch;
                }
            }
        }
        let discover = self.launcher.discover_options();
        tokio::task::spawn_blocking(move || {
            let seen = leak_check::observe(&target, &discover);
            leak_check::judge(&target, &seen)
        })
        .await
        .map_err(IpcError::internal)
    }

    /// Every session reconnects now (the machine woke up: its socket is dead and the
    /// network may differ from the one its routes were planned against).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub fn reconnect_all(&self, reason: &str) {
        if let Ok(map) = self.lock() {
            for e in map.values() {
                e.reconnect.send_replace(Some(reason.to_owned()));
            }
        }
    }

    /// Stops every session (helper shutdown) and waits, bounded, for them to end.
    pub async fn stop_all(&self, timeout: Duration) {
        if let Ok(map) = self.lock() {
            for e in map.values() {
                e.stop.send_replace(Some(0));
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.lock().map(|m| m.is_empty()).unwrap_or(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!("sessions still running at shutdown deadline");
    }

    fn publish(&self, owner_uid: u32, id: SessionId, body: EventBody) {
        let event = Event {
            session: id,
            unix_ms: now_ms(),
            body,
        };
        let keep = matches!(event.body, EventBody::Stage(_) | EventBody::Log(_));
        // Sequence and send under one lock so seq order is broadcast order.
        let Ok(mut h) = self.history.lock() else {
            return;
        };
        h.0 += 1;
        let p = Arc::new(Published {
            seq: h.0,
            owner_uid,
            event,
        });
        if keep {
            if h.1.len() >= HISTORY {
                h.1.pop_front();
            }
            h.1.push_back(p.clone());
        }
        // No subscribers is fine.
        let _ = self.events.send(p);
    }

    /// A live event receiver plus the kept history up to the moment it started.
    pub fn subscribe_with_history(
        &self,
    ) -> (broadcast::Receiver<Arc<Published>>, Vec<Arc<Published>>) {
        match self.history.lock() {
            Ok(h) => (self.events.subscribe(), h.1.iter().cloned().collect()),
            Err(_) => (self.events.subscribe(), Vec::new()),
        }
    }

    fn apply(&self, id: SessionId, update: SessionEvent) {
        let owner = {
            let Ok(mut map) = self.lock() else { return };
            let Some(e) = map.get_mut(&id) else { return };
            match &update {
                SessionEvent::Stage(s) => e.stage = s.clone(),
                SessionEvent::Stats(s) => e.stats = *s,
                SessionEvent::Challenge(_) => e.challenge_pending = true,
                SessionEvent::Connection(c) => e.connection = Some(c.clone()),
                SessionEvent::Routes(r, n) => {
                    e.routes = r.clone();
                    e.route_notes = n.clone();
                }
                SessionEvent::Log(..) | SessionEvent::SignIn(_) | SessionEvent::CrText(_) => {}
            }
            e.owner_uid
        };
        let body = match update {
            SessionEvent::Stage(s) => {
                tracing::info!(stage = s.name(), "stage");
                EventBody::Stage(s)
            }
            SessionEvent::Stats(s) => EventBody::Stats(s),
            SessionEvent::Log(level, msg) => EventBody::Log(LogLine {
                level,
                message: LogText::sanitized(&msg),
            }),
            SessionEvent::Challenge(c) => EventBody::Challenge(c),
            // For the owner only (see connection.rs `wanted`).
            SessionEvent::SignIn(r) => EventBody::SignIn(r),
            // The supervisor turns CR_TEXT into a `Challenge`; nothing to publish.
            SessionEvent::CrText(_) => return,
            SessionEvent::Connection(c) => {
                tracing::info!(
                    server = %c.server_addr,
                    cipher = c.cipher.as_ref().map(|c| c.as_str()),
                    tls = c.tls.as_ref().map(|t| t.as_str()),
                    kill_switch = c.kill_switch,
                    "connection details"
                );
                return;
            }
            SessionEvent::Routes(..) => return,
        };
        self.publish(owner, id, body);
    }

    /// The session's supervisor returned (its `Disconnected` stage is already out).
    fn finish(&self, id: SessionId, reason: &DisconnectReason) {
        tracing::info!(reason = %reason, "session ended");
        if let Ok(mut map) = self.lock() {
            map.remove(&id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tunnel::launcher::BoxFuture;
    use crate::tunnel::{AttemptSpec, Events, TunnelEnd, TunnelOutcome};
    use std::collections::VecDeque;
    use tokio_util::sync::CancellationToken;

    const FP: &str = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";

    /// Ends attempts as scripted; with the script used up, waits to be stopped. The
    /// first attempt gets an auth-token from the "server".
    #[derive(Default)]
    struct Script {
        ends: Mutex<VecDeque<TunnelEnd>>,
        seen: Mutex<Vec<(usize, Option<ovpn_core::config::Secret>, u32)>>,
    }

    struct Scripted(Arc<Script>);

    impl Attempts for Scripted {
        fn wired(&self) -> bool {
            false
        }
        fn attempt(
            &self,
            spec: AttemptSpec,
            _events: Events,
            stop: CancellationToken,
        ) -> BoxFuture<TunnelOutcome> {
            let me = self.0.clone();
            Box::pin(async move {
                me.seen.lock().unwrap().push((
                    spec.remote_index,
                    spec.auth_token.clone(),
                    spec.attempt,
                ));
                let token = if spec.attempt == 0 {
                    Some("tok".into())
                } else {
                    spec.auth_token.clone()
                };
                let next = me.ends.lock().unwrap().pop_front();
                match next {
                    Some(end) => TunnelOutcome::new(end, token),
                    None => {
                        stop.cancelled().await;
                        TunnelOutcome::new(TunnelEnd::Stopped, token)
                    }
                }
            })
        }
        fn session_ended(&self, _session: SessionId) -> BoxFuture<()> {
            Box::pin(async {})
        }
    }

    fn sessions(script: &Arc<Script>) -> Arc<Sessions> {
        Sessions::new(Arc::new(Scripted(script.clone())))
    }

    fn peer(uid: u32) -> Peer {
        Peer {
            uid,
            privileged: uid == 0,
            pid: None,
        }
    }

    fn request() -> ConnectRequest {
        ConnectRequest {
            profile_name: ProfileName::try_from("p").unwrap(),
            profile_text: ipc::ProfileText::try_from(format!(
                "client\nremote 127.0.0.1 1\nremote 127.0.0.2 2\npeer-fingerprint {FP}\n"
            ))
            .unwrap(),
            credentials: ipc::Credentials::default(),
            options: ipc::ConnectOptions::default(),
        }
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_with_backoff_failover_and_token_reuse() {
        let script = Arc::new(Script::default());
        script.ends.lock().unwrap().extend([
            TunnelEnd::Retry {
                reason: "ping-restart".into(),
                next_remote: true,
            },
            TunnelEnd::Retry {
                reason: "server RESTART".into(),
                next_remote: false,
            },
            TunnelEnd::AuthFailed("token expired".into()),
        ]);
        let sessions = sessions(&script);
        let (mut rx, _) = sessions.subscribe_with_history();
        let info = sessions.connect(&peer(1000), request()).unwrap();
        // Backoff 1 s, 2 s, 4 s (virtual time).
        tokio::time::sleep(Duration::from_secs(10)).await;
        settle().await;
        let seen = script.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (0, None, 0),
                (1, Some("tok".into()), 1),
                (1, Some("tok".into()), 2),
                // The refused token is dropped; the password is used again.
                (1, None, 3),
            ]
        );
        let mut delays = vec![];
        while let Ok(p) = rx.try_recv() {
            if let EventBody::Stage(Stage::Reconnecting { delay_ms, .. }) = p.event.body {
                delays.push(delay_ms);
            }
        }
        // connect-retry's default: 1 s between attempts (it doubles only after five
        // unsuccessful rounds over every server; see tunnel/retry.rs).
        assert_eq!(delays, vec![1000, 1000, 1000]);
        // Another member cannot stop it; the owner can.
        assert_eq!(
            sessions.disconnect(&peer(1001), info.id),
            Err(IpcError::NotYourSession { session: info.id })
        );
        sessions.disconnect(&peer(1000), info.id).unwrap();
        settle().await;
        assert!(sessions.list(&peer(0)).unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn network_change_reconnects_at_once_to_the_same_remote() {
        let script = Arc::new(Script::default());
        script
            .ends
            .lock()
            .unwrap()
            .extend([TunnelEnd::RetryNow("the network changed".into())]);
        let sessions = sessions(&script);
        let (mut rx, _) = sessions.subscribe_with_history();
        sessions.connect(&peer(1000), request()).unwrap();
        settle().await;
        // No time passes: the second attempt starts without a backoff.
        let seen = script.seen.lock().unwrap().clone();
        assert_eq!(seen, vec![(0, None, 0), (0, Some("tok".into()), 1)]);
        let mut delays = vec![];
        while let Ok(p) = rx.try_recv() {
            if let EventBody::Stage(Stage::Reconnecting {
                delay_ms, reason, ..
            }) = &p.event.body
            {
                assert_eq!(reason.as_str(), "the network changed");
                delays.push(*delay_ms);
            }
        }
        assert_eq!(delays, vec![0]);
        sessions.stop_all(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_and_auth_failures_end_the_session() {
        let script = Arc::new(Script::default());
        script
            .ends
            .lock()
            .unwrap()
            .extend([TunnelEnd::Fatal("no TUN".into())]);
        let sessions = sessions(&script);
        let (mut rx, _) = sessions.subscribe_with_history();
        let info = sessions.connect(&peer(1000), request()).unwrap();
        settle().await;
        let mut last = None;
        while let Ok(p) = rx.try_recv() {
            if let EventBody::Stage(s) = &p.event.body {
                last = Some(s.clone());
            }
        }
        match last {
            Some(Stage::Disconnected {
                reason: DisconnectReason::Failed { error },
            }) => assert!(error.to_string().contains("no TUN"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert!(sessions.list(&peer(1000)).unwrap().is_empty());
        assert_eq!(
            sessions.disconnect(&peer(1000), info.id),
            Err(IpcError::NoSuchSession { session: info.id })
        );
    }

    #[tokio::test]
    async fn per_user_session_limit() {
        let script = Arc::new(Script::default());
        let sessions = sessions(&script);
        for _ in 0..MAX_SESSIONS_PER_UID {
            sessions.connect(&peer(1000), request()).unwrap();
        }
        assert!(matches!(
            sessions.connect(&peer(1000), request()),
            Err(IpcError::LimitReached { .. })
        ));
        // Another user is not affected.
        sessions.connect(&peer(1001), request()).unwrap();
        sessions.stop_all(Duration::from_secs(5)).await;
        assert!(sessions.list(&peer(0)).unwrap().is_empty());
    }
}
