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
//!
//! Layout: this file holds the [`Client`] and its public API; the rest is
//! split by what it drives:
//! - `events`: what the caller gets back (stages, events, reasons, counters);
//! - `control`: control packets on the wire (tls-auth/tls-crypt wrap, reliable
//!   ACKs and retransmissions);
//! - `key_state`: one key state per key id (§2.1) and the TLS pump that feeds
//!   rustls and cuts its output into reliable messages, data key derivation,
//!   renegotiation;
//! - `push_phase`: control messages after TLS (PUSH_REPLY, AUTH_FAILED,
//!   AUTH_PENDING, INFO, RESTART);
//! - `data_path`: data packets in and out (decrypt, decompress, encrypt);
//! - `timers`: the one timer table: every deadline the session keeps, its
//!   reason ([`Timer`]) and what happens when it expires.

mod control;
mod data_path;
mod events;
mod key_state;
mod push_phase;
mod timers;

pub use events::{
    Challenge, DisconnectReason, Event, ServerHints, SessionInfo, SetupError, Stage, Stats,
};
pub use timers::Timer;

use crate::compress::Compressor;
use crate::config::{ChallengeResponse, ClientConfig, Secret, Transport};
use crate::control_msg;
use crate::data::{self, Cipher};
use crate::drops::DropLog;
use crate::keys::Digest;
use crate::packet::{KeyId, Opcode, SessionId};
use crate::push::{PushAccumulator, PushedOptions};
use crate::sso::PendingWait;
use crate::tls::{TlsContext, TlsSession};
use crate::wrap::{ControlWrap, WrapKind};
use control::build_wrap;
use key_state::KeyState;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};
use timers::TimerTable;

/// Bytes the caller must leave free before an IP packet given to
/// [`Client::handle_tun_packet`].
pub const DATA_HEADROOM: usize = data::HEADROOM + crate::compress::MAX_PREFIX;
/// Spare capacity to keep after the IP packet (CBC padding, swap framing).
pub const DATA_TAILROOM: usize = data::TAILROOM + crate::compress::MAX_SUFFIX;

/// How a user-requested close notifies the server (its deadlines are
/// [`Timer::CloseDeadline`] and [`Timer::OccExitResend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// `EXIT` control message (`protocol-flags cc-exit`), until it is ACKed.
    CcExit,
    /// OCC exit data packet, once a second.
    Occ,
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
    /// OpenVPN 2.7 epoch data format (pushed `protocol-flags aead-epoch`).
    epoch_format: bool,
    exit_notify: Option<u32>,
    closing: Option<Closing>,
    /// Largest MSS of tunnelled IPv4 TCP connections (`mssfix`), once the
    /// data channel is known.
    max_mss: Option<u16>,
    /// Deadlines set at one point and cleared at another (see [`Timer`]).
    timers: TimerTable,
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
            pending_auth: None,
            cipher: None,
            peer_id: None,
            use_ekm: false,
            last_sent: now,
            last_received: now,
            heard_from_server: false,
            resend_wkc: false,
            cc_exit: false,
            epoch_format: false,
            closing: None,
            max_mss: None,
            timers: TimerTable::default(),
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
            epoch_format: self.epoch_format,
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
        self.next_timer().map(|(at, _)| at)
    }

    /// The next deadline and why (which [`Timer`]), for the driver's logs.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        self.earliest_timer()
    }

    /// A timer expired (or any time: it is idempotent).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
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
        let msg = crate::sso::cr_response_message(response);
        self.send_control_message(now, msg.expose());
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
        self.timers.set(
            Timer::CloseDeadline,
            now + Duration::from_secs(u64::from(notify)),
        );
        if self.cc_exit {
            self.send_control_message(now, "EXIT");
            self.closing = Some(Closing::CcExit);
        } else {
            self.closing = Some(Closing::Occ);
            self.timers.set(Timer::OccExitResend, now);
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
                adaptive_switched_off = self.comp.adaptive().times_switched_off(),
                "compression totals"
            );
        }
        if self.stats.mss_clamped > 0 {
            tracing::info!(mss_clamped = self.stats.mss_clamped, "MSS clamping totals");
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
}
