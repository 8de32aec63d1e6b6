//! The OpenVPN client state machine (sans-IO).
//!
//! One [`Client`] is one connection attempt to one resolved remote:
//! hard reset → TLS → key method 2 → PUSH_REQUEST/PUSH_REPLY → data keys
//! (EKM or legacy PRF) → data channel, with renegotiation, keepalive and
//! exit notification. A reconnect is a new `Client`.
//!
//! Inputs (`handle_*`) take the caller's monotonic `now`; outputs are
//! drained with [`Client::poll_transmit`], [`Client::poll_event`] and
//! [`Client::poll_timeout`]. Received data packets are decrypted in place
//! and returned as a range of the caller's buffer (no allocation per packet);
//! packets from the TUN device are encrypted in place the same way.
//!
//! Packets are raw OpenVPN packets: over TCP the caller adds/removes the
//! u16 length prefix (see [`crate::transport`]).

use crate::codec::Blame;
use crate::compress::{Compressor, Payload};
use crate::config::{ChallengeResponse, ClientConfig, Secret, TlsWrap, Transport};
use crate::control_msg::{self, AuthFailure, ControlMessage, MessageSplitter};
use crate::data::{self, Cipher, DataError, DataKey};
use crate::drops::{DropLog, DropReason};
use crate::keymethod::{self, ClientRandoms, ServerKeyReply};
use crate::keys::{Digest, KeyMaterial, EKM_LABEL_DATA, EKM_LABEL_DYN_TLS_CRYPT, EKM_LEN};
use crate::packet::{peek_header, ControlPacket, KeyId, Opcode, SessionId};
use crate::ping::{self, PayloadKind};
use crate::push::{self, PushAccumulator, PushedOptions};
use crate::reliable::{self, Reliable};
use crate::sso::{self, PendingAuthInfo, PendingWait, SignInEvent};
use crate::static_key::{KeyDirection, StaticKey, TlsCryptV2ClientKey};
use crate::tls::{TlsContext, TlsError, TlsSession, TlsSetupError};
use crate::wrap::{ControlWrap, WrapError, WrapKind};
use base64::Engine;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Bytes the caller must leave free before an IP packet given to
/// [`Client::handle_tun_packet`].
pub const DATA_HEADROOM: usize = data::HEADROOM + crate::compress::MAX_PREFIX;
/// Spare capacity to keep after the IP packet (CBC padding, swap framing).
pub const DATA_TAILROOM: usize = data::TAILROOM + crate::compress::MAX_SUFFIX;

/// Largest control packet accepted: 2048 bytes of TLS plus headers.
const MAX_CONTROL_PACKET: usize = 2048 + 256;
/// TLS records held while our own reset is not yet acknowledged.
const MAX_EARLY_TLS_RECORDS: usize = 16;

/// Where the connection is, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Hard reset sent, waiting for the server.
    Connecting,
    /// Server answered; TLS handshake running.
    Tls,
    /// TLS done; key exchange / credentials being checked.
    Authenticating,
    /// Asking for the configuration (PUSH_REQUEST).
    GettingConfig,
    /// Data channel up.
    Connected,
    /// Finished (see the `Disconnected` event for why).
    Disconnected,
}

/// A challenge the user must answer: `Static`/`Dynamic` by reconnecting with
/// [`ClientConfig::challenge_response`] set, `CrText` on the live session with
/// [`Client::send_cr_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Challenge {
    /// `INFO_PRE,CR_TEXT:<flags>:<text>` during AUTH_PENDING.
    CrText {
        text: String,
        echo: bool,
        response_required: bool,
    },
    /// `static-challenge` configured but no response given.
    Static { text: String, echo: bool },
    /// `AUTH_FAILED,CRV1`: answer with `ChallengeResponse::Dynamic`.
    Dynamic {
        state_id: String,
        username: String,
        text: String,
        echo: bool,
        response_required: bool,
    },
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DisconnectReason {
    #[error("no reply from the server within {secs} s: check the tls-crypt/tls-auth key and that the server is reachable")]
    NoServerReply { secs: u64 },
    #[error("the server answered but the TLS handshake/key exchange did not complete within {secs} s (hand-window): the server may refuse our TLS version or cipher suites (rustls: TLS 1.2/1.3 with ECDHE and AES-GCM/ChaCha20 only), our certificate or credentials; see the server log")]
    HandshakeTimeout { secs: u64 },
    #[error("{0}")]
    Tls(TlsError),
    #[error("authentication failed: {reason}")]
    AuthFailed { reason: String },
    #[error("authentication temporarily failed: {message}")]
    AuthFailedTemp {
        backoff_secs: Option<u32>,
        advance: Option<String>,
        message: String,
    },
    /// The server refused our auth-token: reconnect with the real credentials.
    #[error("the server rejected the session token; reconnect with the real credentials")]
    AuthTokenRejected,
    #[error("the server asks for a challenge response")]
    ChallengeRequired,
    #[error("no configuration (PUSH_REPLY) from the server within {secs} s")]
    PushTimeout { secs: u64 },
    /// AUTH_PENDING: the server did not decide (sign-in, CR_TEXT) within its timeout.
    #[error("the server did not confirm the sign-in within {secs} s (its AUTH_PENDING timeout): sign in again")]
    SignInTimeout { secs: u64 },
    #[error("server configuration refused: {0}")]
    PushRejected(String),
    #[error("no packet from the server for {secs} s (ping-restart)")]
    PingRestart { secs: u64 },
    #[error("the server asked us to reconnect{}", fmt_msg(.message))]
    ServerRestart { message: Option<String> },
    #[error("the server asked us to stop{}", fmt_msg(.message))]
    ServerHalt { message: Option<String> },
    #[error("the server is shutting down")]
    ServerExit,
    #[error("key renegotiation did not complete within {secs} s")]
    RenegotiationFailed { secs: u64 },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("disconnected by the user")]
    ClosedByUser,
}

fn fmt_msg(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

/// What the server asked for in `RESTART`/`HALT` (`[flags]` prefix) or
/// `AUTH_FAILED,TEMP[advance ...]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerHints {
    /// Try the next remote (`N` flag, `advance remote|addr`).
    pub next_remote: bool,
    /// Keep the user's password for the next attempt (`P` flag).
    pub keep_password: bool,
    /// Wait at least this long before reconnecting (`backoff N`).
    pub backoff_secs: Option<u32>,
}

impl DisconnectReason {
    /// Hints from the server for the next connection attempt.
    pub fn server_hints(&self) -> ServerHints {
        let flags = |m: &Option<String>| {
            m.as_deref()
                .and_then(|m| m.strip_prefix('['))
                .and_then(|m| m.split_once(']'))
                .map(|(f, _)| f.to_string())
                .unwrap_or_default()
        };
        match self {
            DisconnectReason::ServerRestart { message }
            | DisconnectReason::ServerHalt { message } => {
                let f = flags(message);
                ServerHints {
                    next_remote: f.contains('N'),
                    keep_password: f.contains('P'),
                    backoff_secs: None,
                }
            }
            DisconnectReason::AuthFailedTemp {
                backoff_secs,
                advance,
                ..
            } => ServerHints {
                next_remote: matches!(advance.as_deref(), Some("remote") | Some("addr")),
                keep_password: true,
                backoff_secs: *backoff_secs,
            },
            _ => ServerHints::default(),
        }
    }

    /// Worth reconnecting automatically (as opposed to a configuration or
    /// credential problem that needs the user).
    pub fn should_reconnect(&self) -> bool {
        use DisconnectReason::*;
        matches!(
            self,
            NoServerReply { .. }
                | HandshakeTimeout { .. }
                | PushTimeout { .. }
                | PingRestart { .. }
                | ServerRestart { .. }
                | ServerExit
                | RenegotiationFailed { .. }
                | AuthFailedTemp { .. }
                | AuthTokenRejected
                | Protocol(_)
        )
    }
}

/// Something the caller should know.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    Stage(Stage),
    /// The pushed configuration; apply it (TUN address, routes, DNS).
    ConfigReceived(Box<PushedOptions>),
    ChallengeNeeded(Challenge),
    /// `AUTH_PENDING`: keep waiting (e.g. for web authentication).
    AuthPending {
        timeout_secs: Option<u32>,
    },
    /// `INFO_PRE,...` (WEB_AUTH/OPEN_URL/CR_TEXT).
    InfoPre(String),
    /// `INFO,...`.
    Info(String),
    /// `WEB_AUTH`/`OPEN_URL` during AUTH_PENDING: send the user to a browser (or a
    /// refused request to show). CR_TEXT comes as `ChallengeNeeded(CrText)`.
    SignIn(SignInEvent),
    /// The server issued a session token; keep it (in memory only) for
    /// reconnects via [`ClientConfig::auth_token`].
    AuthToken {
        token: Secret,
        username: Option<String>,
    },
    /// New data-channel keys are in use.
    KeysRenewed {
        key_id: u8,
    },
    Disconnected(DisconnectReason),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Stage(s) => f.debug_tuple("Stage").field(s).finish(),
            Event::ConfigReceived(o) => f.debug_tuple("ConfigReceived").field(o).finish(),
            Event::ChallengeNeeded(c) => f.debug_tuple("ChallengeNeeded").field(c).finish(),
            Event::AuthPending { timeout_secs } => f
                .debug_struct("AuthPending")
                .field("timeout_secs", timeout_secs)
                .finish(),
            Event::InfoPre(s) => f.debug_tuple("InfoPre").field(s).finish(),
            Event::Info(s) => f.debug_tuple("Info").field(s).finish(),
            Event::SignIn(s) => f.debug_tuple("SignIn").field(s).finish(),
            Event::AuthToken { .. } => f.write_str("AuthToken{..}"),
            Event::KeysRenewed { key_id } => f
                .debug_struct("KeysRenewed")
                .field("key_id", key_id)
                .finish(),
            Event::Disconnected(r) => f.debug_tuple("Disconnected").field(r).finish(),
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// IP payload bytes received from / sent to the tunnel.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Link bytes (all packets).
    pub link_bytes_in: u64,
    pub link_bytes_out: u64,
    pub control_packets_in: u64,
    pub control_packets_out: u64,
    pub retransmits: u64,
    pub dropped_malformed: u64,
    pub dropped_replayed: u64,
    pub dropped_auth_failed: u64,
    pub dropped_compressed: u64,
    pub dropped_unknown_key: u64,
    pub dropped_not_connected: u64,
    pub dropped_other: u64,
    /// Pending-auth messages refused (bad URL, malformed WEB_AUTH/CR_TEXT).
    pub pending_auth_refused: u64,
}

/// Negotiated parameters of a connected session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Data-channel cipher (`AES-256-GCM` ...).
    pub cipher: &'static str,
    /// TLS version and suite of the newest key.
    pub tls: String,
    /// `tls-ekm` or `legacy PRF`.
    pub key_derivation: &'static str,
    pub peer_id: Option<u32>,
    pub dynamic_tls_crypt: bool,
    /// key_id of the newest key state.
    pub key_id: u8,
    /// The cipher was not negotiated: the server's own, named by the profile.
    pub legacy_cipher: bool,
}

/// Configuration problems found when creating the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SetupError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("control channel key: {0}")]
    WrapKey(String),
    #[error("auth {0:?} is not supported (SHA1, SHA256, SHA512)")]
    Digest(String),
    #[error("data-ciphers: {0}")]
    Ciphers(String),
}

/// One key_state (§2.1, §8).
struct KeyState {
    key_id: KeyId,
    reliable: Reliable,
    peer_reset_seen: bool,
    tls: Option<TlsSession>,
    /// TLS records that arrived before TLS was started.
    early_tls: Vec<Vec<u8>>,
    /// Ciphertext from rustls not yet cut into messages.
    tls_out: Vec<u8>,
    randoms: ClientRandoms,
    reply: Option<ServerKeyReply>,
    plain_in: Vec<u8>,
    splitter: MessageSplitter,
    used_token: bool,
    active: bool,
    data: Option<DataKey>,
    created: Instant,
    /// Encrypt with this key only from here on (2.6 deferred auth window).
    send_from: Option<Instant>,
    /// Lame duck: drop after this.
    expire_at: Option<Instant>,
    bytes: u64,
    packets: u64,
}

impl KeyState {
    fn done(&self) -> bool {
        self.data.is_some()
    }

    /// Past the hand-window check: key 0 once active (the push phase has
    /// its own deadline), later keys once their data keys exist.
    fn negotiated(&self) -> bool {
        if self.key_id == KeyId::ZERO {
            self.active
        } else {
            self.done()
        }
    }
}

enum Closing {
    CcExit { until: Instant },
    Occ { until: Instant, next: Instant },
}

/// The client.
pub struct Client {
    cfg: ClientConfig,
    tls_ctx: TlsContext,
    rng: ChaCha20Rng,
    wrap: ControlWrap,
    wrap_base: Option<[u8; 256]>,
    dyn_wrap: Option<ControlWrap>,
    local_sid: SessionId,
    remote_sid: Option<SessionId>,
    /// keys\[0\] = newest (primary), keys\[1\] = previous (lame duck).
    keys: Vec<KeyState>,
    stage: Stage,
    events: VecDeque<Event>,
    transmits: VecDeque<Vec<u8>>,
    base_instant: Instant,
    base_unix: u64,
    stats: Stats,
    digest: Digest,
    push_acc: PushAccumulator,
    pushed: Option<PushedOptions>,
    next_push_request: Option<Instant>,
    push_deadline: Option<Instant>,
    /// The wait AUTH_PENDING started (bounded, see [`PendingWait`]).
    pending_auth: Option<PendingWait>,
    cipher: Option<Cipher>,
    comp: Compressor,
    drop_log: DropLog,
    legacy_cipher: bool,
    peer_id: Option<u32>,
    use_ekm: bool,
    ping_interval: Option<Duration>,
    ping_restart: Option<Duration>,
    last_sent: Instant,
    last_received: Instant,
    heard_from_server: bool,
    auth_token: Option<Secret>,
    auth_token_user: Option<String>,
    resend_wkc: bool,
    cc_exit: bool,
    exit_notify: Option<u32>,
    next_reneg: Option<Instant>,
    closing: Option<Closing>,
    dead: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("stage", &self.stage)
            .field(
                "keys",
                &self.keys.iter().map(|k| k.key_id.get()).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn build_wrap(
    cfg: &ClientConfig,
    digest: Digest,
) -> Result<(ControlWrap, Option<[u8; 256]>), SetupError> {
    let e = |e: crate::static_key::KeyFileError| SetupError::WrapKey(e.to_string());
    Ok(match &cfg.tls_wrap {
        TlsWrap::None => (ControlWrap::none(), None),
        TlsWrap::Auth { key, key_direction } => {
            let k = StaticKey::from_slice(key).map_err(e)?;
            let dir = match key_direction {
                None => KeyDirection::Bidirectional,
                Some(0) => KeyDirection::Normal,
                Some(1) => KeyDirection::Inverse,
                Some(d) => {
                    return Err(SetupError::WrapKey(format!(
                        "key-direction {d} is not 0 or 1"
                    )))
                }
            };
            let w = ControlWrap::tls_auth(&k, dir, digest).map_err(e)?;
            (w, Some(*k.as_bytes()))
        }
        TlsWrap::Crypt { key } => {
            let k = StaticKey::from_slice(key).map_err(e)?;
            if !k.is_full() {
                return Err(SetupError::WrapKey("tls-crypt needs a 256-byte key".into()));
            }
            (ControlWrap::tls_crypt(&k), Some(*k.as_bytes()))
        }
        TlsWrap::CryptV2 { client_key } => {
            let k = TlsCryptV2ClientKey::from_blob(client_key).map_err(e)?;
            let base = *k.key.as_bytes();
            (ControlWrap::tls_crypt_v2(&k), Some(base))
        }
    })
}

/// Early-negotiation TLVs of the server's hard reset (§2.4): RESEND_WKC flag.
fn parse_early_tlvs(mut p: &[u8]) -> Result<bool, String> {
    let mut resend_wkc = false;
    while !p.is_empty() {
        if p.len() < 4 {
            return Err("truncated early-negotiation TLV".into());
        }
        let ty = u16::from_be_bytes([p[0], p[1]]);
        let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let Some(value) = p.get(4..4 + len) else {
            return Err("early-negotiation TLV longer than the packet".into());
        };
        if ty == 1 && len == 2 && u16::from_be_bytes([value[0], value[1]]) & 1 != 0 {
            resend_wkc = true;
        }
        p = &p[4 + len..];
    }
    Ok(resend_wkc)
}

impl Client {
    /// Create a client and queue its hard reset.
    ///
    /// `seed` seeds all randomness (session id, key-method randoms, CBC IVs);
    /// take it from the OS RNG. `unix_secs` is the wall clock at `now`
    /// (replay timestamps, certificate validity); the core derives later wall
    /// times from `now`.
    pub fn new(
        cfg: ClientConfig,
        seed: [u8; 32],
        now: Instant,
        unix_secs: u64,
    ) -> Result<Self, SetupError> {
        let digest = Digest::from_name(&cfg.auth_digest)
            .ok_or_else(|| SetupError::Digest(cfg.auth_digest.clone()))?;
        if cfg.data_ciphers.is_empty() {
            return Err(SetupError::Ciphers("empty list".into()));
        }
        if let Some(bad) = cfg
            .data_ciphers
            .iter()
            .find(|c| Cipher::from_name(c).is_none())
        {
            return Err(SetupError::Ciphers(format!("{bad} is not supported")));
        }
        let tls_ctx = TlsContext::new(&cfg)?;
        tls_ctx.clock.set(unix_secs);
        let (wrap, wrap_base) = build_wrap(&cfg, digest)?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut sid = [0u8; 8];
        while sid == [0u8; 8] {
            rng.fill_bytes(&mut sid);
        }
        let mut c = Client {
            // Bound for decompressed payloads: our MTU or the most a server may
            // push (IV_MTU=1600), plus headroom.
            comp: Compressor::new(
                cfg.compression,
                cfg.allow_compression,
                usize::from(cfg.tun_mtu).max(1600),
            ),
            drop_log: DropLog::default(),
            legacy_cipher: false,
            ping_interval: cfg.timers.ping,
            ping_restart: cfg.timers.ping_restart,
            auth_token: cfg.auth_token.clone(),
            auth_token_user: cfg.auth_token_user.clone(),
            exit_notify: cfg.timers.explicit_exit_notify,
            cfg,
            tls_ctx,
            rng,
            wrap,
            wrap_base,
            dyn_wrap: None,
            local_sid: SessionId(sid),
            remote_sid: None,
            keys: Vec::new(),
            stage: Stage::Connecting,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            base_instant: now,
            base_unix: unix_secs,
            stats: Stats::default(),
            digest,
            push_acc: PushAccumulator::new(),
            pushed: None,
            next_push_request: None,
            push_deadline: None,
            pending_auth: None,
            cipher: None,
            peer_id: None,
            use_ekm: false,
            last_sent: now,
            last_received: now,
            heard_from_server: false,
            resend_wkc: false,
            cc_exit: false,
            next_reneg: None,
            closing: None,
            dead: false,
        };
        if c.cfg.static_challenge.is_some()
            && !matches!(
                c.cfg.challenge_response,
                Some(ChallengeResponse::Static { .. })
            )
            && c.auth_token.is_none()
        {
            if let Some(sc) = c.cfg.static_challenge.clone() {
                c.events
                    .push_back(Event::ChallengeNeeded(Challenge::Static {
                        text: sc.text,
                        echo: sc.echo,
                    }));
            }
            c.disconnect(DisconnectReason::ChallengeRequired);
            return Ok(c);
        }
        let reset_op = if c.wrap.kind() == WrapKind::TlsCryptV2 {
            Opcode::HardResetClientV3
        } else {
            Opcode::HardResetClientV2
        };
        let ks = c.new_key_state(KeyId::ZERO, now, reset_op);
        c.keys.push(ks);
        c.events.push_back(Event::Stage(Stage::Connecting));
        c.drive(now);
        Ok(c)
    }

    fn new_key_state(&mut self, key_id: KeyId, now: Instant, reset_op: Opcode) -> KeyState {
        let mut randoms = ClientRandoms {
            pre_master: [0; 48],
            random1: [0; 32],
            random2: [0; 32],
        };
        self.rng.fill_bytes(&mut randoms.pre_master);
        self.rng.fill_bytes(&mut randoms.random1);
        self.rng.fill_bytes(&mut randoms.random2);
        let mut reliable = Reliable::new(self.cfg.timers.tls_timeout);
        // msg-id 0: the (soft/hard) reset, empty payload.
        let _ = reliable.queue(reset_op as u8, Vec::new(), now);
        KeyState {
            key_id,
            reliable,
            peer_reset_seen: false,
            tls: None,
            early_tls: Vec::new(),
            tls_out: Vec::new(),
            randoms,
            reply: None,
            plain_in: Vec::new(),
            splitter: MessageSplitter::new(),
            used_token: false,
            active: false,
            data: None,
            created: now,
            send_from: None,
            expire_at: None,
            bytes: 0,
            packets: 0,
        }
    }

    // ----- public API -------------------------------------------------------

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.retransmits += self
            .keys
            .iter()
            .map(|k| k.reliable.stats().retransmits)
            .sum::<u64>();
        s
    }

    /// True once `Event::Disconnected` was emitted.
    pub fn is_closed(&self) -> bool {
        self.dead
    }

    /// The configuration received from the server, once connected.
    pub fn pushed_options(&self) -> Option<&PushedOptions> {
        self.pushed.as_ref()
    }

    /// Negotiated parameters, once connected (for logs and the UI).
    pub fn session_info(&self) -> Option<SessionInfo> {
        let cipher = self.cipher?;
        let tls = self
            .keys
            .iter()
            .find_map(|k| k.tls.as_ref())
            .map(TlsSession::describe_session)
            .unwrap_or_default();
        Some(SessionInfo {
            cipher: cipher.name(),
            tls,
            key_derivation: if self.use_ekm {
                "tls-ekm"
            } else {
                "legacy PRF"
            },
            peer_id: self.peer_id,
            dynamic_tls_crypt: self.dyn_wrap.is_some(),
            key_id: self.keys.first().map(|k| k.key_id.get()).unwrap_or(0),
            legacy_cipher: self.legacy_cipher,
        })
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Next packet to send on the link (control packets, ACKs, pings).
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Vec<u8>> {
        let p = self.transmits.pop_front()?;
        self.stats.link_bytes_out += p.len() as u64;
        Some(p)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead {
            return None;
        }
        // Called after every packet: fold into a running minimum, no allocation.
        let mut t = EarliestDeadline(None);
        for ks in &self.keys {
            t.extend(ks.reliable.timeout());
            if !ks.negotiated() {
                t.push(ks.created + self.cfg.timers.hand_window);
            }
            t.extend(ks.expire_at);
            t.extend(ks.send_from);
        }
        t.extend(self.next_push_request);
        t.extend(self.push_deadline);
        if self.stage == Stage::Connected && self.closing.is_none() {
            if let Some(p) = self.ping_interval {
                t.push(self.last_sent + p);
            }
            if let Some(p) = self.ping_restart {
                t.push(self.last_received + p);
            }
            t.extend(self.next_reneg);
        }
        match &self.closing {
            Some(Closing::CcExit { until }) => t.push(*until),
            Some(Closing::Occ { until, next }) => {
                t.push(*until);
                t.push(*next);
            }
            None => {}
        }
        t.0
    }

    /// A timer expired (or any time: it is idempotent).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// One packet from the link (a UDP datagram, or one TCP frame without
    /// its length prefix). Data packets are decrypted in place: `Some(range)`
    /// means `pkt[range]` is an IP packet for the TUN device. A payload the
    /// server compressed is copied back into `pkt` when it fits; otherwise it
    /// is dropped and counted: callers that can receive compressed traffic
    /// use [`handle_packet_payload`](Self::handle_packet_payload).
    pub fn handle_packet(&mut self, now: Instant, pkt: &mut [u8]) -> Option<Range<usize>> {
        match self.receive(now, pkt)? {
            Payload::InPlace(r) => Some(r),
            Payload::Decompressed(n) => {
                let out = self.comp.decompressed(n);
                if let Some(dst) = pkt.get_mut(..n) {
                    dst.copy_from_slice(out);
                    Some(0..n)
                } else {
                    self.drop_data(
                        DropReason::Other,
                        &"decompressed packet larger than the caller's buffer",
                    );
                    None
                }
            }
        }
    }

    fn receive(&mut self, now: Instant, pkt: &mut [u8]) -> Option<Payload> {
        if self.dead {
            return None;
        }
        self.stats.link_bytes_in += pkt.len() as u64;
        let (op, kid) = match peek_header(pkt) {
            Ok(h) => h,
            Err(e) => {
                self.drop_data(DropReason::Malformed, &e);
                return None;
            }
        };
        if op.is_data() {
            return self.handle_data(now, kid, pkt);
        }
        self.handle_control(now, pkt);
        self.drive(now);
        None
    }

    /// Like [`handle_packet`](Self::handle_packet), for callers that take
    /// payloads the server compressed: the IP packet is either in `pkt` or,
    /// decompressed, in the session's own buffer.
    pub fn handle_packet_payload<'a>(
        &'a mut self,
        now: Instant,
        pkt: &'a mut [u8],
    ) -> Option<&'a [u8]> {
        match self.receive(now, pkt)? {
            Payload::InPlace(r) => pkt.get(r),
            Payload::Decompressed(n) => Some(self.comp.decompressed(n)),
        }
    }

    /// Compression byte counts (pre/post decompress and compress).
    pub fn compress_stats(&self) -> crate::compress::CompressStats {
        self.comp.stats()
    }

    /// Encrypt the IP packet at `buf[start..]` in place (`start >=
    /// DATA_HEADROOM`). Returns the offset of the wire packet (`buf[off..]`),
    /// or `None` if it was dropped (not connected, counted in stats).
    pub fn handle_tun_packet(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Option<usize> {
        if self.dead || self.stage != Stage::Connected || start > buf.len() {
            self.stats.dropped_not_connected += 1;
            return None;
        }
        let len = (buf.len() - start) as u64;
        let off = self.encrypt_payload(now, buf, start)?;
        self.stats.packets_out += 1;
        self.stats.bytes_out += len;
        self.stats.link_bytes_out += (buf.len() - off) as u64;
        if self.reneg_due_by_volume() {
            self.start_renegotiation(now);
            self.drive(now);
        }
        Some(off)
    }

    /// Send a control message (e.g. `CR_RESPONSE,...`) on the current key.
    pub fn send_control_message(&mut self, now: Instant, text: &str) {
        if let Some(ks) = self.keys.iter_mut().find(|k| k.active) {
            if let Some(tls) = ks.tls.as_mut() {
                if let Err(e) = tls.write_plaintext(&control_msg::encode(text)) {
                    tracing::warn!(error = %e, "control message not sent");
                }
            }
        }
        self.drive(now);
    }

    /// Answer a `Challenge::CrText` (sends `CR_RESPONSE,<base64 response>`).
    pub fn send_cr_response(&mut self, now: Instant, response: &str) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(response.as_bytes());
        self.send_control_message(now, &format!("CR_RESPONSE,{b64}"));
    }

    /// Disconnect on the user's request: explicit-exit-notify (UDP) first
    /// when configured, then `Event::Disconnected(ClosedByUser)`.
    pub fn close(&mut self, now: Instant) {
        if self.dead || self.closing.is_some() {
            return;
        }
        let notify = match (self.cfg.transport, self.exit_notify, self.stage) {
            (Transport::Udp, Some(n), Stage::Connected) if n > 0 => n,
            _ => {
                self.disconnect(DisconnectReason::ClosedByUser);
                return;
            }
        };
        let until = now + Duration::from_secs(u64::from(notify));
        if self.cc_exit {
            self.send_control_message(now, "EXIT");
            self.closing = Some(Closing::CcExit { until });
        } else {
            self.closing = Some(Closing::Occ { until, next: now });
        }
        self.drive(now);
    }

    // ----- internals ----------------------------------------------------------

    fn unix_now(&self, now: Instant) -> u64 {
        self.base_unix + now.saturating_duration_since(self.base_instant).as_secs()
    }

    fn disconnect(&mut self, reason: DisconnectReason) {
        if self.dead {
            return;
        }
        tracing::info!(reason = %reason, "session ended");
        let cs = self.comp.stats();
        if cs.pre_decompress > 0 || cs.pre_compress > 0 {
            tracing::info!(
                decompressed_from = cs.pre_decompress,
                decompressed_to = cs.post_decompress,
                compressed_from = cs.pre_compress,
                compressed_to = cs.post_compress,
                "compression totals"
            );
        }
        self.dead = true;
        self.stage = Stage::Disconnected;
        self.events.push_back(Event::Stage(Stage::Disconnected));
        self.events.push_back(Event::Disconnected(reason));
    }

    fn set_stage(&mut self, s: Stage) {
        if self.stage != s && !self.dead {
            tracing::debug!(stage = ?s, "stage");
            self.stage = s;
            self.events.push_back(Event::Stage(s));
        }
    }

    fn wrap_overhead(&self) -> usize {
        match self.wrap.kind() {
            WrapKind::TlsCrypt | WrapKind::TlsCryptV2 => 56,
            _ => self.wrap.overhead(),
        }
    }

    fn max_payload(&self, extra: usize) -> usize {
        let v6 = matches!(self.cfg.remote_addr, Some(IpAddr::V6(_)));
        reliable::max_control_payload(self.cfg.tls_mtu, self.wrap_overhead(), v6, extra)
    }

    /// Counts and logs one dropped data packet (first of each reason at WARN).
    fn drop_data(&mut self, reason: DropReason, detail: &dyn fmt::Display) {
        self.stats.count_drop(reason);
        self.drop_log.note(reason, detail);
    }

    fn handle_data(&mut self, now: Instant, kid: KeyId, pkt: &mut [u8]) -> Option<Payload> {
        let Some(ks) = self
            .keys
            .iter_mut()
            .find(|k| k.key_id == kid && k.data.is_some())
        else {
            self.drop_data(
                DropReason::UnknownKey,
                &format_args!("key id {}", kid.get()),
            );
            return None;
        };
        let dk = ks.data.as_mut()?;
        let range = match dk.decrypt(pkt, now) {
            Ok(r) => r,
            Err(e) => {
                let reason = match e {
                    DataError::Replay(_) => DropReason::Replayed,
                    DataError::AuthFailed => DropReason::AuthFailed,
                    ref other if other.blame() == Blame::Malformed => DropReason::Malformed,
                    DataError::BadPadding => DropReason::Malformed,
                    _ => DropReason::Other,
                };
                self.drop_data(reason, &e);
                return None;
            }
        };
        ks.bytes += range.len() as u64;
        ks.packets += 1;
        self.last_received = now;
        let payload = match self.comp.deframe(pkt, range) {
            Ok(p) => p,
            Err(e) => {
                self.drop_data(DropReason::Compression, &e);
                return None;
            }
        };
        let bytes: &[u8] = match &payload {
            Payload::InPlace(r) => pkt.get(r.clone()).unwrap_or(&[]),
            Payload::Decompressed(n) => self.comp.decompressed(*n),
        };
        let (kind, len) = (ping::classify(bytes), bytes.len());
        match kind {
            PayloadKind::Ping => None,
            PayloadKind::OccExit => {
                self.disconnect(DisconnectReason::ServerExit);
                None
            }
            PayloadKind::OccOther(_) => None,
            PayloadKind::Ip => {
                if len == 0 {
                    return None;
                }
                self.stats.packets_in += 1;
                self.stats.bytes_in += len as u64;
                Some(payload)
            }
        }
    }

    /// Index of the key to encrypt with (§8: old key until the new one's
    /// deferred window passed).
    fn encrypt_key_index(&self, now: Instant) -> Option<usize> {
        let primary_ok = self
            .keys
            .first()
            .is_some_and(|k| k.data.is_some() && k.send_from.is_none_or(|t| now >= t));
        if primary_ok {
            return Some(0);
        }
        if self.keys.get(1).is_some_and(|k| k.data.is_some()) {
            return Some(1);
        }
        self.keys.first().and_then(|k| k.data.as_ref()).map(|_| 0)
    }

    fn encrypt_payload(&mut self, now: Instant, buf: &mut Vec<u8>, start: usize) -> Option<usize> {
        let Some(idx) = self.encrypt_key_index(now) else {
            self.stats.dropped_not_connected += 1;
            return None;
        };
        let s = match self.comp.frame(buf, start) {
            Ok(s) => s,
            Err(e) => {
                self.drop_data(DropReason::Other, &e);
                return None;
            }
        };
        let ks = &mut self.keys[idx];
        let dk = ks.data.as_mut()?;
        match dk.encrypt(buf, s) {
            Ok(off) => {
                ks.bytes += (buf.len() - off) as u64;
                ks.packets += 1;
                self.last_sent = now;
                Some(off)
            }
            Err(e) => {
                tracing::debug!(error = %e, "encrypt failed");
                self.stats.dropped_other += 1;
                None
            }
        }
    }

    /// Queue a data packet carrying `payload` (ping, OCC) for poll_transmit.
    fn send_data_payload(&mut self, now: Instant, payload: &[u8]) {
        let mut buf = Vec::with_capacity(DATA_HEADROOM + payload.len() + DATA_TAILROOM);
        buf.resize(DATA_HEADROOM, 0);
        buf.extend_from_slice(payload);
        if let Some(off) = self.encrypt_payload(now, &mut buf, DATA_HEADROOM) {
            self.transmits.push_back(buf.split_off(off));
        }
    }

    fn reneg_due_by_volume(&self) -> bool {
        let Some(ks) = self.keys.first() else {
            return false;
        };
        let Some(dk) = ks.data.as_ref() else {
            return false;
        };
        if self.keys.first().is_some_and(|k| !k.done()) {
            return false;
        }
        dk.should_renegotiate()
            || self
                .cfg
                .timers
                .reneg_bytes
                .is_some_and(|b| b > 0 && ks.bytes >= b)
            || self
                .cfg
                .timers
                .reneg_pkts
                .is_some_and(|p| p > 0 && ks.packets >= p)
    }

    fn handle_control(&mut self, now: Instant, pkt: &[u8]) {
        let (_op, kid) = match peek_header(pkt) {
            Ok(h) => h,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        // 2048 TLS bytes + the largest header (ACKs, tls-auth SHA512, replay id).
        if pkt.len() > MAX_CONTROL_PACKET {
            tracing::debug!(len = pkt.len(), "oversized control packet dropped");
            self.stats.dropped_malformed += 1;
            return;
        }
        let use_dyn = kid.get() > 0 && self.dyn_wrap.is_some();
        let mut plain = Vec::with_capacity(pkt.len());
        let res = if use_dyn {
            match self.dyn_wrap.as_mut() {
                Some(w) => w.unwrap(pkt, now, &mut plain),
                None => return,
            }
        } else {
            self.wrap.unwrap(pkt, now, &mut plain)
        };
        if let Err(e) = res {
            tracing::debug!(error = %e, "control packet dropped");
            match e {
                WrapError::Replay(_) => self.stats.dropped_replayed += 1,
                WrapError::AuthFailed { .. } => self.stats.dropped_auth_failed += 1,
                _ => self.stats.dropped_malformed += 1,
            }
            return;
        }
        let cp = match ControlPacket::decode(&plain) {
            Ok(cp) => cp,
            Err(e) => {
                tracing::debug!(error = %e, "malformed control packet");
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        // Only what a server sends is acceptable.
        if !matches!(
            cp.opcode,
            Opcode::HardResetServerV2 | Opcode::ControlV1 | Opcode::AckV1 | Opcode::SoftResetV1
        ) {
            self.stats.dropped_other += 1;
            return;
        }
        if cp.remote_session_id.is_some_and(|r| r != self.local_sid) {
            tracing::debug!("control packet ACKs another session; dropped");
            self.stats.dropped_other += 1;
            return;
        }
        match self.remote_sid {
            None if cp.opcode == Opcode::HardResetServerV2 && kid == KeyId::ZERO => {
                self.remote_sid = Some(cp.session_id);
            }
            Some(r) if r == cp.session_id => {}
            _ => {
                tracing::debug!("control packet from an unknown server session; dropped");
                self.stats.dropped_other += 1;
                return;
            }
        }
        self.stats.control_packets_in += 1;
        self.last_received = now;
        if !self.heard_from_server {
            self.heard_from_server = true;
            self.set_stage(Stage::Tls);
        }
        let idx = match self.keys.iter().position(|k| k.key_id == kid) {
            Some(i) => i,
            None => {
                let can_soft = cp.opcode == Opcode::SoftResetV1
                    && self
                        .keys
                        .first()
                        .is_some_and(|k| k.done() && kid == k.key_id.next());
                if !can_soft {
                    self.stats.dropped_unknown_key += 1;
                    return;
                }
                tracing::info!(key_id = kid.get(), "server started renegotiation");
                self.start_renegotiation(now);
                0
            }
        };
        let ks = &mut self.keys[idx];
        ks.reliable.process_acks(&cp.acks);
        if let Some(id) = cp.message_id {
            let is_reset = matches!(cp.opcode, Opcode::HardResetServerV2 | Opcode::SoftResetV1);
            if is_reset && id != 0 {
                self.stats.dropped_other += 1;
                return;
            }
            let r = ks.reliable.receive(id, cp.opcode as u8, &cp.payload);
            if r == reliable::Received::Stored && is_reset {
                ks.reliable.schedule_now(now);
            }
        }
        self.process_inbox(now, idx);
    }

    fn process_inbox(&mut self, now: Instant, idx: usize) {
        while let Some((op, payload)) = self
            .keys
            .get_mut(idx)
            .and_then(|k| k.reliable.pop_in_order())
        {
            if op == Opcode::HardResetServerV2 as u8 || op == Opcode::SoftResetV1 as u8 {
                if op == Opcode::HardResetServerV2 as u8 && !payload.is_empty() {
                    match parse_early_tlvs(&payload) {
                        Ok(w) => self.resend_wkc = w,
                        Err(e) => {
                            self.disconnect(DisconnectReason::Protocol(e));
                            return;
                        }
                    }
                }
                self.keys[idx].peer_reset_seen = true;
                continue;
            }
            if op != Opcode::ControlV1 as u8 {
                continue;
            }
            let ks = &mut self.keys[idx];
            match ks.tls.as_mut() {
                None if ks.early_tls.len() < MAX_EARLY_TLS_RECORDS => ks.early_tls.push(payload),
                None => {
                    tracing::debug!("TLS data before our ClientHello was sent; dropped");
                    self.stats.dropped_other += 1;
                }
                Some(tls) => {
                    if let Err(e) = tls.feed(&payload) {
                        self.tls_failed(now, idx, e);
                        return;
                    }
                }
            }
            self.read_tls_plaintext(now, idx);
            if self.dead {
                return;
            }
        }
    }

    fn tls_failed(&mut self, now: Instant, idx: usize, e: TlsError) {
        // Flush the alert once, then stop.
        self.pump_tls_out(now, idx);
        self.flush_packets(now);
        self.disconnect(DisconnectReason::Tls(e));
    }

    fn read_tls_plaintext(&mut self, now: Instant, idx: usize) {
        let mut buf = Vec::new();
        if let Some(tls) = self.keys[idx].tls.as_mut() {
            tls.read_plaintext(&mut buf);
        }
        if buf.is_empty() {
            return;
        }
        let ks = &mut self.keys[idx];
        if ks.reply.is_none() {
            ks.plain_in.extend_from_slice(&buf);
            match keymethod::parse_server_reply(&ks.plain_in) {
                Ok(None) => return,
                Ok(Some((reply, used))) => {
                    tracing::debug!(key_id = ks.key_id.get(), server_options = ?reply, "server key-method reply");
                    let rest = ks.plain_in.split_off(used);
                    ks.plain_in.clear();
                    ks.reply = Some(reply);
                    ks.splitter.push(&rest);
                }
                Err(e) => {
                    self.disconnect(DisconnectReason::Protocol(e.to_string()));
                    return;
                }
            }
        } else {
            ks.splitter.push(&buf);
        }
        let mut msgs = Vec::new();
        while let Some(m) = self.keys[idx].splitter.next_message() {
            msgs.push(m);
        }
        for m in msgs {
            self.handle_control_message(now, idx, &m);
            if self.dead {
                return;
            }
        }
    }

    fn handle_control_message(&mut self, now: Instant, idx: usize, msg: &str) {
        tracing::debug!(msg = %msg.split(',').next().unwrap_or(""), "control message");
        match control_msg::parse(msg) {
            ControlMessage::AuthFailed(f) => {
                let used_token = self.keys.get(idx).is_some_and(|k| k.used_token);
                match f {
                    _ if used_token => {
                        self.auth_token = None;
                        self.disconnect(DisconnectReason::AuthTokenRejected);
                    }
                    AuthFailure::Plain { reason } => {
                        self.disconnect(DisconnectReason::AuthFailed { reason })
                    }
                    AuthFailure::Temp {
                        backoff_secs,
                        advance,
                        message,
                    } => self.disconnect(DisconnectReason::AuthFailedTemp {
                        backoff_secs,
                        advance,
                        message,
                    }),
                    AuthFailure::Crv1 {
                        echo,
                        response_required,
                        state_id,
                        username,
                        text,
                    } => {
                        self.events
                            .push_back(Event::ChallengeNeeded(Challenge::Dynamic {
                                state_id,
                                username,
                                text,
                                echo,
                                response_required,
                            }));
                        self.disconnect(DisconnectReason::ChallengeRequired);
                    }
                }
            }
            ControlMessage::PushReply(body) => self.handle_push_reply(now, &body),
            ControlMessage::PushOther(m) => tracing::debug!(msg = %m, "push message ignored"),
            ControlMessage::Restart(message) => {
                self.disconnect(DisconnectReason::ServerRestart { message })
            }
            ControlMessage::Halt(message) => {
                self.disconnect(DisconnectReason::ServerHalt { message })
            }
            ControlMessage::InfoPre(t) => self.handle_info(now, t, true),
            ControlMessage::Info(t) => self.handle_info(now, t, false),
            ControlMessage::AuthPending { timeout_secs } => {
                if self.pushed.is_none() {
                    let t = &self.cfg.timers;
                    let w = PendingWait::on_auth_pending(
                        self.pending_auth,
                        now,
                        timeout_secs,
                        t.hand_window,
                        t.reneg_sec,
                    );
                    self.pending_auth = Some(w);
                    self.push_deadline = Some(w.deadline());
                }
                self.events.push_back(Event::AuthPending { timeout_secs });
            }
            ControlMessage::Exit => self.disconnect(DisconnectReason::ServerExit),
            ControlMessage::Unknown(m) => {
                tracing::warn!(msg = %m.split(',').next().unwrap_or(""), "unknown control message ignored")
            }
        }
    }

    /// `INFO_PRE`/`INFO`: a sign-in URL, a CR_TEXT challenge, or text to show.
    fn handle_info(&mut self, now: Instant, text: String, pre: bool) {
        match sso::parse_info(&text) {
            Ok(Some(PendingAuthInfo::SignIn(sign_in))) => {
                tracing::info!(host = sign_in.url.host(), method = ?sign_in.method, "server asks for a browser sign-in");
                let seconds_left = self.pending_auth.map(|w| w.remaining_secs(now));
                self.events.push_back(Event::SignIn(SignInEvent::Open {
                    sign_in,
                    seconds_left,
                }));
            }
            Ok(Some(PendingAuthInfo::CrText {
                text,
                echo,
                response_required,
            })) => self
                .events
                .push_back(Event::ChallengeNeeded(Challenge::CrText {
                    text,
                    echo,
                    response_required,
                })),
            Ok(None) if pre => self.events.push_back(Event::InfoPre(text)),
            Ok(None) => self.events.push_back(Event::Info(text)),
            Err(e) => {
                tracing::warn!(error = %e, "pending-auth request refused");
                self.stats.pending_auth_refused += 1;
                self.events
                    .push_back(Event::SignIn(SignInEvent::Refused(e)));
            }
        }
    }

    fn handle_push_reply(&mut self, now: Instant, body: &str) {
        let lines = match self.push_acc.add(body) {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                self.disconnect(DisconnectReason::PushRejected(e.to_string()));
                return;
            }
        };
        if self.pushed.is_some() {
            // Later PUSH_REPLYs (after renegotiation) only update the token.
            if let Ok(o) = push::parse_pushed(&lines, &self.cfg) {
                self.update_token(&o);
            }
            return;
        }
        match push::parse_pushed(&lines, &self.cfg) {
            Ok(o) => self.apply_push(now, o),
            Err(e) => self.disconnect(DisconnectReason::PushRejected(e.to_string())),
        }
    }

    fn update_token(&mut self, o: &PushedOptions) {
        if let Some(t) = o.auth_token.as_ref() {
            self.auth_token = Some(t.clone());
            if o.auth_token_user.is_some() {
                self.auth_token_user = o.auth_token_user.clone();
            }
            self.events.push_back(Event::AuthToken {
                token: t.clone(),
                username: self.auth_token_user.clone(),
            });
        }
    }

    fn apply_push(&mut self, now: Instant, o: PushedOptions) {
        let server_cipher = self
            .keys
            .first()
            .and_then(|k| k.reply.as_ref())
            .and_then(|r| r.cipher());
        let choice = crate::cipher_choice::choose(
            o.cipher.as_deref(),
            server_cipher.as_deref(),
            &self.cfg.data_ciphers,
            &self.cfg.fallback_ciphers,
        );
        let cipher = match choice {
            Ok(c) => {
                if c.legacy {
                    tracing::warn!(
                        cipher = c.cipher.name(),
                        "legacy cipher: the server negotiates no data cipher and uses {}, which the profile names; the connection works, but ask the server's operator to enable data-ciphers (AES-256-GCM)",
                        c.cipher.name()
                    );
                }
                self.legacy_cipher = c.legacy;
                c.cipher
            }
            Err(e) => {
                self.disconnect(DisconnectReason::PushRejected(e.to_string()));
                return;
            }
        };
        self.cipher = Some(cipher);
        if let Some(c) = o.compression {
            if c.is_real() && self.comp.allow() == crate::compress::AllowCompression::No {
                tracing::warn!(compression = c.name(), "the server pushed compression but the profile says allow-compression no: compressed packets will be dropped");
            }
            self.comp.set_mode(c);
        }
        self.peer_id = o.peer_id;
        self.use_ekm = o.uses_tls_ekm();
        if let Some(p) = o.ping {
            self.ping_interval = (p > 0).then(|| Duration::from_secs(u64::from(p)));
        }
        if let Some(p) = o.ping_restart {
            self.ping_restart = (p > 0).then(|| Duration::from_secs(u64::from(p)));
        }
        self.cc_exit = o.protocol_flags.cc_exit;
        if o.explicit_exit_notify.is_some() {
            self.exit_notify = o.explicit_exit_notify;
        }
        self.update_token(&o);
        if self.cfg.dynamic_tls_crypt && o.protocol_flags.dyn_tls_crypt {
            let ekm = self
                .keys
                .first()
                .and_then(|k| k.tls.as_ref())
                .map(|t| t.export_keying_material(EKM_LABEL_DYN_TLS_CRYPT.as_bytes(), EKM_LEN));
            match ekm {
                Some(Ok(ekm)) => {
                    match ControlWrap::dynamic_tls_crypt(&ekm, self.wrap_base.as_ref()) {
                        Ok(w) => self.dyn_wrap = Some(w),
                        Err(e) => tracing::warn!(error = %e, "dynamic tls-crypt key not usable"),
                    }
                }
                _ => tracing::warn!("dynamic tls-crypt: keying material export failed"),
            }
        }
        if let Err(reason) = self.derive_data_key(0) {
            self.disconnect(DisconnectReason::Protocol(reason));
            return;
        }
        self.next_push_request = None;
        self.push_deadline = None;
        self.next_reneg = self
            .cfg
            .timers
            .reneg_sec
            .filter(|d| !d.is_zero())
            .map(|d| now + d);
        self.last_received = now;
        tracing::info!(cipher = cipher.name(), ekm = self.use_ekm, peer_id = ?self.peer_id, "data channel ready");
        self.pushed = Some(o.clone());
        self.events.push_back(Event::ConfigReceived(Box::new(o)));
        self.set_stage(Stage::Connected);
    }

    fn derive_data_key(&mut self, idx: usize) -> Result<(), String> {
        let cipher = self.cipher.ok_or("no cipher negotiated")?;
        let remote_sid = self.remote_sid.ok_or("no server session id")?;
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let ks = self.keys.get_mut(idx).ok_or("no key state")?;
        let reply = ks.reply.as_ref().ok_or("no server key reply")?;
        let km = if self.use_ekm {
            let tls = ks.tls.as_ref().ok_or("no TLS session")?;
            let ekm = tls
                .export_keying_material(EKM_LABEL_DATA.as_bytes(), EKM_LEN)
                .map_err(|e| e.to_string())?;
            KeyMaterial::from_ekm(&ekm).map_err(|e| e.to_string())?
        } else {
            KeyMaterial::from_legacy_prf(
                &ks.randoms.pre_master,
                &ks.randoms.random1,
                &reply.random1,
                &ks.randoms.random2,
                &reply.random2,
                &self.local_sid,
                &remote_sid,
            )
        };
        let mut dk = DataKey::new_client(ks.key_id, cipher, self.digest, &km, seed)
            .map_err(|e| e.to_string())?;
        dk.set_peer_id(self.peer_id);
        ks.data = Some(dk);
        Ok(())
    }

    fn start_renegotiation(&mut self, now: Instant) {
        let Some(cur) = self.keys.first() else {
            return;
        };
        let kid = cur.key_id.next();
        tracing::info!(key_id = kid.get(), "renegotiating data channel keys");
        self.keys.truncate(1);
        if let Some(old) = self.keys.first_mut() {
            old.expire_at = Some(now + self.cfg.timers.transition_window);
        }
        let ks = self.new_key_state(kid, now, Opcode::SoftResetV1);
        self.keys.insert(0, ks);
        self.next_reneg = None;
    }

    fn credentials(&self) -> (Option<String>, Option<Secret>, bool) {
        let creds = self.cfg.credentials.as_ref();
        if let Some(tok) = &self.auth_token {
            let user = self
                .auth_token_user
                .clone()
                .or_else(|| creds.map(|c| c.username.clone()));
            return (user, Some(tok.clone()), true);
        }
        match (&self.cfg.challenge_response, creds) {
            (
                Some(ChallengeResponse::Dynamic {
                    state_id,
                    username,
                    response,
                }),
                _,
            ) => (
                Some(username.clone()),
                Some(crate::config::crv1_password(state_id, response)),
                false,
            ),
            (Some(ChallengeResponse::Static { response }), Some(c))
                if self.cfg.static_challenge.is_some() =>
            {
                (
                    Some(c.username.clone()),
                    Some(crate::config::scrv1_password(&c.password, response)),
                    false,
                )
            }
            (_, Some(c)) => (Some(c.username.clone()), Some(c.password.clone()), false),
            (_, None) => (None, None, false),
        }
    }

    fn start_tls(&mut self, now: Instant, idx: usize) {
        let tls = match self.tls_ctx.start() {
            Ok(t) => t,
            Err(e) => {
                self.disconnect(DisconnectReason::Protocol(e.to_string()));
                return;
            }
        };
        let (user, pass, used_token) = self.credentials();
        let options = keymethod::options_string(&self.cfg);
        let peer_info = keymethod::peer_info(&self.cfg);
        let ks = &mut self.keys[idx];
        let msg = match keymethod::build_client_message(
            &ks.randoms,
            &options,
            user.as_deref(),
            pass.as_ref().map(Secret::expose),
            &peer_info,
        ) {
            Ok(m) => m,
            Err(e) => {
                self.disconnect(DisconnectReason::Protocol(e.to_string()));
                return;
            }
        };
        ks.tls = Some(tls);
        ks.used_token = used_token;
        let early = std::mem::take(&mut ks.early_tls);
        if let Some(t) = ks.tls.as_mut() {
            // One write: rustls keeps it until the handshake is done and
            // then sends it as one record.
            if let Err(e) = t.write_plaintext(&msg) {
                self.tls_failed(now, idx, e);
                return;
            }
        }
        for rec in early {
            let res = self.keys[idx].tls.as_mut().map(|t| t.feed(&rec));
            if let Some(Err(e)) = res {
                self.tls_failed(now, idx, e);
                return;
            }
        }
        self.read_tls_plaintext(now, idx);
    }

    /// Move rustls output into reliable messages while the window allows.
    fn pump_tls_out(&mut self, now: Instant, idx: usize) {
        let wkc_len = self.wrap.wkc().len();
        let normal = self.max_payload(0);
        let with_wkc = self.max_payload(wkc_len);
        let resend_wkc = self.resend_wkc;
        let Some(ks) = self.keys.get_mut(idx) else {
            return;
        };
        if let Some(tls) = ks.tls.as_mut() {
            while tls.wants_write() {
                let chunk = tls.take_ciphertext(64 * 1024);
                if chunk.is_empty() {
                    break;
                }
                ks.tls_out.extend_from_slice(&chunk);
            }
        }
        while !ks.tls_out.is_empty() && ks.reliable.can_queue() {
            let wkc_msg = resend_wkc && ks.key_id == KeyId::ZERO && ks.reliable.next_send_id() == 1;
            let (op, max) = if wkc_msg {
                (Opcode::ControlWkcV1, with_wkc)
            } else {
                (Opcode::ControlV1, normal)
            };
            let n = ks.tls_out.len().min(max);
            let rest = ks.tls_out.split_off(n);
            let chunk = std::mem::replace(&mut ks.tls_out, rest);
            let _ = ks.reliable.queue(op as u8, chunk, now);
        }
    }

    fn send_control_packet(
        &mut self,
        idx: usize,
        op: Opcode,
        msg_id: Option<u32>,
        payload: Vec<u8>,
        acks: Vec<u32>,
        unix: u32,
    ) {
        let Some(ks) = self.keys.get(idx) else {
            return;
        };
        let remote = if acks.is_empty() {
            None
        } else {
            self.remote_sid
        };
        let acks = if remote.is_some() { acks } else { Vec::new() };
        let cp = ControlPacket {
            opcode: op,
            key_id: ks.key_id,
            session_id: self.local_sid,
            acks,
            remote_session_id: remote,
            message_id: msg_id,
            payload,
        };
        let mut plain = Vec::with_capacity(cp.encoded_len());
        if let Err(e) = cp.encode(&mut plain) {
            tracing::warn!(error = %e, "control packet not encodable");
            return;
        }
        let use_dyn = ks.key_id.get() > 0 && self.dyn_wrap.is_some();
        let mut wire = Vec::with_capacity(plain.len() + 64 + self.wrap.wkc().len());
        let res = match (use_dyn, self.dyn_wrap.as_mut()) {
            (true, Some(w)) => w.wrap(&plain, unix, &mut wire),
            _ => self.wrap.wrap(&plain, unix, &mut wire),
        };
        match res {
            Ok(()) => {
                self.stats.control_packets_out += 1;
                self.transmits.push_back(wire);
            }
            Err(e) => {
                tracing::warn!(error = %e, "control packet not wrapped");
                if matches!(e, WrapError::CounterExhausted) {
                    self.disconnect(DisconnectReason::Protocol(e.to_string()));
                }
            }
        }
    }

    /// Emit due (re)transmissions and pending ACKs for every key_state.
    fn flush_packets(&mut self, now: Instant) {
        let unix = u32::try_from(self.unix_now(now)).unwrap_or(u32::MAX);
        let ack_max = if self.wrap.kind() == WrapKind::None {
            reliable::PIGGYBACK_ACKS_MAX
        } else {
            reliable::ACK_LIST_MAX
        };
        let mut sent_any = false;
        for idx in 0..self.keys.len() {
            while let Some(msg) = self.keys[idx].reliable.poll_send(now) {
                let acks = if self.remote_sid.is_some() {
                    self.keys[idx]
                        .reliable
                        .take_acks(reliable::PIGGYBACK_ACKS_MAX)
                } else {
                    Vec::new()
                };
                let op = Opcode::from_u8(msg.opcode).unwrap_or(Opcode::ControlV1);
                self.send_control_packet(idx, op, Some(msg.id), msg.payload, acks, unix);
                sent_any = true;
            }
            if self.remote_sid.is_some() && self.keys[idx].reliable.has_pending_acks() {
                let acks = self.keys[idx].reliable.take_acks(ack_max);
                self.send_control_packet(idx, Opcode::AckV1, None, Vec::new(), acks, unix);
                sent_any = true;
            }
        }
        if sent_any {
            self.last_sent = now;
        }
    }

    /// Advance every state machine to `now` and queue what must be sent.
    fn drive(&mut self, now: Instant) {
        if self.dead {
            return;
        }
        self.tls_ctx.clock.set(self.unix_now(now));
        // Key states: start TLS, pump, complete.
        let mut idx = 0;
        while idx < self.keys.len() {
            self.step_key_state(now, idx);
            if self.dead {
                self.flush_packets(now);
                return;
            }
            idx += 1;
        }
        // Lame duck expiry.
        if self.keys.len() > 1 && self.keys[1].expire_at.is_some_and(|t| now >= t) {
            tracing::debug!(key_id = self.keys[1].key_id.get(), "lame duck key expired");
            self.keys.truncate(1);
        }
        // Once the new key's deferred window passed, the old key is only for decryption.
        if let Some(k) = self.keys.first_mut() {
            if k.send_from.is_some_and(|t| now >= t) {
                k.send_from = None;
            }
        }
        self.check_timers(now);
        if self.dead {
            self.flush_packets(now);
            return;
        }
        for idx in 0..self.keys.len() {
            self.pump_tls_out(now, idx);
        }
        self.flush_packets(now);
        // Keepalive.
        if self.stage == Stage::Connected && self.closing.is_none() {
            if let Some(p) = self.ping_interval {
                if now >= self.last_sent + p {
                    self.send_data_payload(now, &ping::PING_MAGIC);
                    self.last_sent = now;
                }
            }
        }
    }

    fn step_key_state(&mut self, now: Instant, idx: usize) {
        let ks = &self.keys[idx];
        // S_PRE_START → S_START: our reset ACKed and the peer's reset seen.
        if ks.tls.is_none() && ks.peer_reset_seen && !ks.reliable.is_unacked(0) {
            self.start_tls(now, idx);
            if self.dead {
                return;
            }
        }
        let ks = &self.keys[idx];
        let Some(tls) = ks.tls.as_ref() else {
            return;
        };
        if !tls.is_handshaking() && ks.key_id == KeyId::ZERO && self.stage == Stage::Tls {
            tracing::info!(session = %tls.describe_session(), "TLS handshake complete");
            self.set_stage(Stage::Authenticating);
        }
        let ks = &self.keys[idx];
        let got_key = ks.reply.is_some() && ks.tls.as_ref().is_some_and(|t| !t.is_handshaking());
        // Renegotiated key: data keys as soon as the exchange is complete
        // (S_GOT_KEY), with the cipher chosen at connect time.
        if got_key && ks.key_id != KeyId::ZERO && ks.data.is_none() && self.cipher.is_some() {
            match self.derive_data_key(idx) {
                Ok(()) => {
                    let hw = self.cfg.timers.hand_window;
                    let half = self.cfg.timers.reneg_sec.map(|r| r / 2).unwrap_or(hw);
                    let ks = &mut self.keys[idx];
                    ks.send_from = Some(ks.created + hw.min(half));
                    let kid = ks.key_id.get();
                    self.next_reneg = self
                        .cfg
                        .timers
                        .reneg_sec
                        .filter(|d| !d.is_zero())
                        .map(|d| now + d);
                    tracing::info!(key_id = kid, "new data channel keys");
                    self.events.push_back(Event::KeysRenewed { key_id: kid });
                }
                Err(reason) => {
                    self.disconnect(DisconnectReason::Protocol(reason));
                    return;
                }
            }
        }
        let ks = &self.keys[idx];
        if got_key && !ks.active && ks.reliable.all_acked() && ks.tls_out.is_empty() {
            let ks = &mut self.keys[idx];
            ks.active = true;
            // With IV_PROTO REQUEST_PUSH the reply may already be here.
            if ks.key_id == KeyId::ZERO && self.pushed.is_none() {
                self.set_stage(Stage::GettingConfig);
                // AUTH_PENDING may already have pushed the deadline further.
                let d = now + self.cfg.timers.hand_window;
                self.push_deadline = Some(self.push_deadline.map_or(d, |p| p.max(d)));
                self.next_push_request = Some(now);
            }
        }
    }

    fn check_timers(&mut self, now: Instant) {
        let hw = self.cfg.timers.hand_window;
        // Hand-window of each unfinished key state.
        for i in 0..self.keys.len() {
            let ks = &self.keys[i];
            let finished = ks.negotiated();
            if !finished && now >= ks.created + hw {
                let secs = hw.as_secs();
                let reason = if ks.key_id != KeyId::ZERO || self.pushed.is_some() {
                    DisconnectReason::RenegotiationFailed { secs }
                } else if !self.heard_from_server {
                    DisconnectReason::NoServerReply { secs }
                } else {
                    DisconnectReason::HandshakeTimeout { secs }
                };
                self.disconnect(reason);
                return;
            }
        }
        // PUSH_REQUEST until the reply.
        if self.pushed.is_none() {
            if let Some(d) = self.push_deadline {
                if now >= d {
                    let reason = match self.pending_auth {
                        Some(w) => DisconnectReason::SignInTimeout {
                            secs: w.total().as_secs(),
                        },
                        None => DisconnectReason::PushTimeout { secs: hw.as_secs() },
                    };
                    self.disconnect(reason);
                    return;
                }
            }
            if let Some(t) = self.next_push_request {
                if now >= t {
                    if let Some(tls) = self
                        .keys
                        .iter_mut()
                        .find(|k| k.key_id == KeyId::ZERO)
                        .and_then(|k| k.tls.as_mut())
                    {
                        if let Err(e) = tls.write_plaintext(&control_msg::encode("PUSH_REQUEST")) {
                            tracing::warn!(error = %e, "PUSH_REQUEST not sent");
                        }
                    }
                    self.next_push_request = Some(now + self.cfg.timers.push_request_interval);
                }
            }
        }
        if self.stage == Stage::Connected {
            if let Some(p) = self.ping_restart {
                if now >= self.last_received + p {
                    self.disconnect(DisconnectReason::PingRestart { secs: p.as_secs() });
                    return;
                }
            }
            let busy = self.keys.first().is_some_and(|k| !k.done());
            if !busy && self.closing.is_none() && self.next_reneg.is_some_and(|t| now >= t) {
                self.start_renegotiation(now);
                // Its reset is queued; the next steps happen on the next drive.
                if let Some(ks) = self.keys.first() {
                    tracing::debug!(key_id = ks.key_id.get(), "soft reset queued");
                }
            }
        }
        match self.closing {
            Some(Closing::CcExit { until }) => {
                let acked = self
                    .keys
                    .first()
                    .is_some_and(|k| k.reliable.all_acked() && k.tls_out.is_empty());
                if now >= until || acked {
                    self.disconnect(DisconnectReason::ClosedByUser);
                }
            }
            Some(Closing::Occ { until, next }) => {
                if now >= until {
                    self.disconnect(DisconnectReason::ClosedByUser);
                } else if now >= next {
                    self.send_data_payload(now, &ping::occ_exit_payload());
                    self.closing = Some(Closing::Occ {
                        until,
                        next: now + Duration::from_secs(1),
                    });
                }
            }
            None => {}
        }
    }
}

/// The running minimum of `Client::poll_timeout`'s candidate deadlines.
struct EarliestDeadline(Option<Instant>);

impl EarliestDeadline {
    fn push(&mut self, at: Instant) {
        self.0 = Some(self.0.map_or(at, |cur| cur.min(at)));
    }
}

impl Extend<Instant> for EarliestDeadline {
    fn extend<I: IntoIterator<Item = Instant>>(&mut self, iter: I) {
        for at in iter {
            self.push(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_tlvs() {
        assert_eq!(parse_early_tlvs(&[0, 1, 0, 2, 0, 1]), Ok(true));
        assert_eq!(
            parse_early_tlvs(&[0, 9, 0, 1, 7, 0, 1, 0, 2, 0, 0]),
            Ok(false)
        );
        assert!(parse_early_tlvs(&[0, 1, 0, 5, 0]).is_err());
        assert!(parse_early_tlvs(&[0, 1]).is_err());
    }

    #[test]
    fn server_hints() {
        let r = DisconnectReason::ServerRestart {
            message: Some("[NP]maintenance".into()),
        };
        assert_eq!(
            r.server_hints(),
            ServerHints {
                next_remote: true,
                keep_password: true,
                backoff_secs: None
            }
        );
        let r = DisconnectReason::AuthFailedTemp {
            backoff_secs: Some(30),
            advance: Some("remote".into()),
            message: String::new(),
        };
        assert!(r.server_hints().next_remote);
        assert_eq!(r.server_hints().backoff_secs, Some(30));
        assert_eq!(
            DisconnectReason::ServerRestart { message: None }.server_hints(),
            ServerHints::default()
        );
    }

    #[test]
    fn disconnect_reasons_read_well() {
        let r = DisconnectReason::NoServerReply { secs: 60 };
        assert_eq!(
            r.to_string(),
            "no reply from the server within 60 s: check the tls-crypt/tls-auth key and that the server is reachable"
        );
        assert!(r.should_reconnect());
        assert!(!DisconnectReason::AuthFailed { reason: "x".into() }.should_reconnect());
        assert_eq!(
            DisconnectReason::ServerRestart {
                message: Some("[N]bye".into())
            }
            .to_string(),
            "the server asked us to reconnect: [N]bye"
        );
    }
}
