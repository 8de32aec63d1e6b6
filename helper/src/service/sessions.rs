//! Session registry: who owns what, the current stage and counters, and the
//! supervisor task per session that runs tunnel attempts and reconnects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipc::{
    ConnectRequest, ConnectionInfo, DisconnectReason, Event, EventBody, HelperStatus, IpcError,
    LogLine, LogText, ProfileName, RouteEntry, RouteExplanation, Secret, SessionId, SessionInfo,
    SessionRoutes, ShortText, Stage, Stats,
};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::Instrument;

use super::peer::Peer;
use super::profile_guard;
use super::route_check::{self, TunnelIface};
use super::tunnel_port::{AttemptEnd, AttemptSpec, TunnelLauncher, TunnelUpdate};

pub const MAX_SESSIONS_PER_UID: usize = 4;
pub const MAX_SESSIONS: usize = 32;
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

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
    launcher: Arc<dyn TunnelLauncher>,
    next_id: AtomicU64,
    started: std::time::Instant,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Sessions {
    pub fn new(launcher: Arc<dyn TunnelLauncher>) -> Arc<Self> {
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

    pub fn list(&self, viewer: &Peer) -> Result<Vec<SessionInfo>, IpcError> {
        Ok(self
            .lock()?
            .iter()
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
        })
    }

    pub fn connect(
        self: &Arc<Self>,
        peer: &Peer,
        req: ConnectRequest,
    ) -> Result<SessionInfo, IpcError> {
        let (guarded, _profile) = profile_guard::check_all(req.profile_text.as_str())?;
        if guarded.needs_user_pass
            && (req.credentials.username.is_none() || req.credentials.password.is_none())
        {
            return Err(IpcError::invalid(
                "connect.credentials",
                "the profile uses auth-user-pass: a username and password are required",
            ));
        }
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (stop_tx, stop_rx) = watch::channel(None);
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
        let spec = AttemptSpec {
            session: id,
            owner_uid: peer.uid,
            profile_text: Arc::from(String::from(req.profile_text)),
            credentials: Arc::new(req.credentials),
            remote_index: 0,
            auth_token: None,
            attempt: 0,
            options: req.options,
        };
        let me = self.clone();
        let remotes = guarded.remotes.len().max(1);
        let span = tracing::info_span!("session", id = %id, uid = peer.uid);
        tokio::spawn(
            async move {
                let reason = me
                    .supervise(
                        spec,
                        remotes,
                        stop_rx,
                        Arc::new(tokio::sync::Mutex::new(challenge_rx)),
                    )
                    .await;
                me.launcher.session_ended(id).await;
                me.finish(id, reason);
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

    fn apply(&self, id: SessionId, update: TunnelUpdate) {
        let owner = {
            let Ok(mut map) = self.lock() else { return };
            let Some(e) = map.get_mut(&id) else { return };
            match &update {
                TunnelUpdate::Stage(s) => e.stage = s.clone(),
                TunnelUpdate::Stats(s) => e.stats = *s,
                TunnelUpdate::Challenge(_) => e.challenge_pending = true,
                TunnelUpdate::Connection(c) => e.connection = Some(c.clone()),
                TunnelUpdate::Routes(r, n) => {
                    e.routes = r.clone();
                    e.route_notes = n.clone();
                }
                TunnelUpdate::Log(..) | TunnelUpdate::AuthToken(_) | TunnelUpdate::SignIn(_) => {}
            }
            e.owner_uid
        };
        let body = match update {
            TunnelUpdate::Stage(s) => {
                tracing::info!(stage = s.name(), "stage");
                EventBody::Stage(s)
            }
            TunnelUpdate::Stats(s) => EventBody::Stats(s),
            TunnelUpdate::Log(level, msg) => EventBody::Log(LogLine {
                level,
                message: LogText::sanitized(&msg),
            }),
            TunnelUpdate::Challenge(c) => EventBody::Challenge(c),
            TunnelUpdate::SignIn(r) => EventBody::SignIn(r),
            TunnelUpdate::Connection(c) => {
                tracing::info!(
                    server = %c.server_addr,
                    cipher = c.cipher.as_ref().map(|c| c.as_str()),
                    tls = c.tls.as_ref().map(|t| t.as_str()),
                    kill_switch = c.kill_switch,
                    "connection details"
                );
                return;
            }
            TunnelUpdate::AuthToken(_) | TunnelUpdate::Routes(..) => return,
        };
        self.publish(owner, id, body);
    }

    fn set_stage(&self, id: SessionId, stage: Stage) {
        self.apply(id, TunnelUpdate::Stage(stage));
    }

    fn finish(&self, id: SessionId, reason: DisconnectReason) {
        tracing::info!(reason = %reason, "session ended");
        self.set_stage(id, Stage::Disconnected { reason });
        if let Ok(mut map) = self.lock() {
            map.remove(&id);
        }
    }

    /// Runs attempts until one ends for good: the reconnect policy lives here.
    async fn supervise(
        self: &Arc<Self>,
        mut spec: AttemptSpec,
        remotes: usize,
        mut stop: watch::Receiver<Option<u32>>,
        challenges: super::tunnel_port::ChallengeAnswers,
    ) -> DisconnectReason {
        let mut backoff = BACKOFF_START;
        loop {
            let (tx, mut rx) = mpsc::channel(256);
            let attempt = self
                .launcher
                .run(spec.clone(), tx, stop.clone(), challenges.clone());
            let pump = async {
                let mut token = None;
                let mut connected = false;
                while let Some(u) = rx.recv().await {
                    match &u {
                        TunnelUpdate::AuthToken(t) => token = Some(t.clone()),
                        TunnelUpdate::Stage(Stage::Connected { .. }) => connected = true,
                        _ => {}
                    }
                    self.apply(spec.session, u);
                }
                (token, connected)
            };
            let (end, (token, connected)) = tokio::join!(attempt, pump);
            if token.is_some() {
                spec.auth_token = token;
            }
            if connected {
                backoff = BACKOFF_START;
            }
            if let Some(uid) = *stop.borrow() {
                return DisconnectReason::Requested { by_uid: uid };
            }
            let mut now = false;
            let reason = match end {
                AttemptEnd::Stopped => {
                    return DisconnectReason::Requested {
                        by_uid: stop.borrow().unwrap_or(0),
                    }
                }
                AttemptEnd::AuthFailed(m) => {
                    if spec.auth_token.take().is_some() {
                        // An expired token: retry once with the real password.
                        "auth-token refused, retrying with the password".to_owned()
                    } else {
                        return DisconnectReason::AuthFailed {
                            message: ShortText::sanitized(&m),
                        };
                    }
                }
                AttemptEnd::Fatal(m) => {
                    return DisconnectReason::Failed {
                        error: IpcError::tunnel(m),
                    }
                }
                AttemptEnd::Retry {
                    reason,
                    next_remote,
                } => {
                    if next_remote {
                        spec.remote_index = (spec.remote_index + 1) % remotes;
                    }
                    reason
                }
                AttemptEnd::RetryNow(reason) => {
                    now = true;
                    reason
                }
            };
            spec.attempt = spec.attempt.saturating_add(1);
            let delay = if now { Duration::ZERO } else { backoff };
            if !now {
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            self.set_stage(
                spec.session,
                Stage::Reconnecting {
                    reason: ShortText::sanitized(&reason),
                    attempt: spec.attempt,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                },
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                by = stop.wait_for(|s| s.is_some()) => {
                    let by_uid = by.ok().and_then(|b| *b).unwrap_or(0);
                    return DisconnectReason::Requested { by_uid };
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::service::tunnel_port::{
        AttemptFuture, ChallengeAnswers, StopSignal, TunnelLauncher,
    };
    use std::collections::VecDeque;

    const FP: &str = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";

    /// Ends attempts as scripted; with the script used up, waits to be stopped.
    #[derive(Default)]
    struct Script {
        ends: Mutex<VecDeque<AttemptEnd>>,
        seen: Mutex<Vec<(usize, Option<String>, u32)>>,
    }

    impl TunnelLauncher for Arc<Script> {
        fn wired(&self) -> bool {
            true
        }
        fn run(
            &self,
            spec: AttemptSpec,
            updates: mpsc::Sender<TunnelUpdate>,
            mut stop: StopSignal,
            _c: ChallengeAnswers,
        ) -> AttemptFuture {
            let me = self.clone();
            Box::pin(async move {
                me.seen.lock().unwrap().push((
                    spec.remote_index,
                    spec.auth_token.as_ref().map(|t| t.expose().to_owned()),
                    spec.attempt,
                ));
                if spec.attempt == 0 {
                    let tok = Secret::try_from("tok").unwrap();
                    updates.send(TunnelUpdate::AuthToken(tok)).await.unwrap();
                }
                let next = me.ends.lock().unwrap().pop_front();
                match next {
                    Some(end) => end,
                    None => {
                        let _ = stop.wait_for(|s| s.is_some()).await;
                        AttemptEnd::Stopped
                    }
                }
            })
        }
    }

    fn peer(uid: u32) -> Peer {
        Peer {
            uid,
            gid: uid,
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
            AttemptEnd::Retry {
                reason: "ping-restart".into(),
                next_remote: true,
            },
            AttemptEnd::Retry {
                reason: "server RESTART".into(),
                next_remote: false,
            },
            AttemptEnd::AuthFailed("token expired".into()),
        ]);
        let sessions = Sessions::new(Arc::new(script.clone()));
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
        assert_eq!(delays, vec![1000, 2000, 4000]);
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
            .extend([AttemptEnd::RetryNow("the network changed".into())]);
        let sessions = Sessions::new(Arc::new(script.clone()));
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
            .extend([AttemptEnd::Fatal("no TUN".into())]);
        let sessions = Sessions::new(Arc::new(script.clone()));
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
        let sessions = Sessions::new(Arc::new(script));
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
