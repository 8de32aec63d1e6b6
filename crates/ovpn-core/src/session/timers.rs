//! The one timer table of the session.
//!
//! Every deadline the session keeps is a [`Timer`]. [`Client::deadline`]
//! is the single place that says when each one is due, so
//! [`Client::poll_timeout`] (the earliest of them, and why) and
//! [`Client::handle_timeout`] (serve those that are due) cannot drift apart.
//! Deadlines that are set at one point and cleared at another live in the
//! [`TimerTable`]; deadlines that follow from other state (a key state's
//! creation time or reliable layer, the time of the last packet) are computed
//! from that state, so they never need to be kept in step by hand.

use super::{Client, Closing, DisconnectReason, Stage};
use crate::control_msg;
use crate::packet::KeyId;
use crate::ping;
use std::fmt;
use std::time::{Duration, Instant};

/// Why the session wants to be woken: one variant per deadline.
///
/// [`ALL`](Self::ALL) is the order in which [`Client::handle_timeout`] serves
/// them when several are due at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Drop the previous key after the `transition-window` (lame duck, §8).
    LameDuckExpiry,
    /// The new key's deferred window passed: encrypt with it from now on.
    KeySwitch,
    /// A key state not negotiated within `hand-window`.
    HandWindow,
    /// No PUSH_REPLY within `hand-window` (or the AUTH_PENDING timeout).
    PushDeadline,
    /// Send PUSH_REQUEST (again).
    PushRequest,
    /// Nothing heard from the server for `ping-restart` seconds.
    PingRestart,
    /// Start a key renegotiation (`reneg-sec`).
    Renegotiate,
    /// Stop waiting for the exit notification to be delivered.
    CloseDeadline,
    /// Send the OCC exit packet again (once a second while closing).
    OccExitResend,
    /// Retransmit an unacknowledged control packet.
    Retransmit,
    /// Send a keepalive ping (`ping`).
    Keepalive,
}

impl Timer {
    /// Number of timers.
    pub const COUNT: usize = 11;

    /// Every timer, in the order they are served.
    pub const ALL: [Timer; Timer::COUNT] = [
        Timer::LameDuckExpiry,
        Timer::KeySwitch,
        Timer::HandWindow,
        Timer::PushDeadline,
        Timer::PushRequest,
        Timer::PingRestart,
        Timer::Renegotiate,
        Timer::CloseDeadline,
        Timer::OccExitResend,
        Timer::Retransmit,
        Timer::Keepalive,
    ];

    /// Timers served before the TLS pump and the flush of control packets;
    /// `Retransmit` is served by that flush, `Keepalive` after it.
    const BEFORE_FLUSH: [Timer; 9] = [
        Timer::LameDuckExpiry,
        Timer::KeySwitch,
        Timer::HandWindow,
        Timer::PushDeadline,
        Timer::PushRequest,
        Timer::PingRestart,
        Timer::Renegotiate,
        Timer::CloseDeadline,
        Timer::OccExitResend,
    ];

    /// Short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Timer::LameDuckExpiry => "lame-duck-expiry",
            Timer::KeySwitch => "key-switch",
            Timer::HandWindow => "hand-window",
            Timer::PushDeadline => "push-deadline",
            Timer::PushRequest => "push-request",
            Timer::PingRestart => "ping-restart",
            Timer::Renegotiate => "renegotiate",
            Timer::CloseDeadline => "close-deadline",
            Timer::OccExitResend => "occ-exit-resend",
            Timer::Retransmit => "retransmit",
            Timer::Keepalive => "keepalive",
        }
    }

    /// Whether the deadline is stored in the [`TimerTable`] (set and cleared
    /// explicitly) rather than computed from other state.
    fn is_stored(self) -> bool {
        matches!(
            self,
            Timer::PushDeadline
                | Timer::PushRequest
                | Timer::Renegotiate
                | Timer::CloseDeadline
                | Timer::OccExitResend
        )
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stored deadlines, one slot per [`Timer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TimerTable {
    at: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        debug_assert!(timer.is_stored(), "{timer} is computed, not stored");
        self.at[timer as usize] = Some(at);
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }
}

impl Client {
    /// When `timer` is due, if it is armed. The one definition of every
    /// deadline: used both to sleep and to fire.
    pub(super) fn deadline(&self, timer: Timer) -> Option<Instant> {
        if self.dead {
            return None;
        }
        // Keepalive, ping-restart and renegotiation run on a connected,
        // not-closing session only.
        let running = self.stage == Stage::Connected && self.closing.is_none();
        let keys = self.keys.iter();
        match timer {
            Timer::LameDuckExpiry => keys.filter_map(|k| k.expire_at).min(),
            Timer::KeySwitch => keys.filter_map(|k| k.send_from).min(),
            Timer::HandWindow => {
                let hw = self.cfg.timers.hand_window;
                keys.filter(|k| !k.negotiated())
                    .map(|k| k.created + hw)
                    .min()
            }
            Timer::Retransmit => keys.filter_map(|k| k.reliable.timeout()).min(),
            Timer::PushDeadline | Timer::PushRequest => {
                self.timers.get(timer).filter(|_| self.pushed.is_none())
            }
            Timer::PingRestart => self
                .ping_restart
                .filter(|_| running)
                .map(|p| self.last_received + p),
            Timer::Keepalive => self
                .ping_interval
                .filter(|_| running)
                .map(|p| self.last_sent + p),
            Timer::Renegotiate => {
                // Not while the newest key is still being negotiated.
                let busy = self.keys.first().is_some_and(|k| !k.done());
                self.timers.get(timer).filter(|_| running && !busy)
            }
            Timer::CloseDeadline | Timer::OccExitResend => {
                self.timers.get(timer).filter(|_| self.closing.is_some())
            }
        }
    }

    /// The earliest armed timer (the first in [`Timer::ALL`] on a tie).
    pub(super) fn earliest_timer(&self) -> Option<(Instant, Timer)> {
        let mut best: Option<(Instant, Timer)> = None;
        for timer in Timer::ALL {
            if let Some(at) = self.deadline(timer) {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, timer));
                }
            }
        }
        best
    }

    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.deadline(timer).is_some_and(|at| now >= at)
    }

    /// Arm (or, without `reneg-sec`, disarm) the next time-based renegotiation.
    pub(super) fn arm_renegotiation(&mut self, now: Instant) {
        match self.cfg.timers.reneg_sec.filter(|d| !d.is_zero()) {
            Some(d) => self.timers.set(Timer::Renegotiate, now + d),
            None => self.timers.stop(Timer::Renegotiate),
        }
    }

    /// Advance every state machine to `now` and queue what must be sent.
    pub(super) fn drive(&mut self, now: Instant) {
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
        for timer in Timer::BEFORE_FLUSH {
            if self.is_due(timer, now) {
                self.on_timer(now, timer);
            }
            if self.dead {
                self.flush_packets(now);
                return;
            }
        }
        self.finish_close_when_delivered();
        if self.dead {
            self.flush_packets(now);
            return;
        }
        for idx in 0..self.keys.len() {
            self.pump_tls_out(now, idx);
        }
        // Serves Timer::Retransmit, and the ACKs owed.
        self.flush_packets(now);
        if self.is_due(Timer::Keepalive, now) {
            self.on_timer(now, Timer::Keepalive);
        }
    }

    /// What happens when `timer` expires.
    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::LameDuckExpiry => {
                if self.keys.len() > 1 && self.keys[1].expire_at.is_some_and(|t| now >= t) {
                    tracing::debug!(key_id = self.keys[1].key_id.get(), "lame duck key expired");
                    self.keys.truncate(1);
                }
            }
            Timer::KeySwitch => {
                // The old key is only for decryption from now on.
                if let Some(k) = self.keys.first_mut() {
                    if k.send_from.is_some_and(|t| now >= t) {
                        k.send_from = None;
                    }
                }
            }
            Timer::HandWindow => self.hand_window_expired(now),
            Timer::PushDeadline => {
                let reason = match self.pending_auth {
                    Some(w) => DisconnectReason::SignInTimeout {
                        secs: w.total().as_secs(),
                    },
                    None => DisconnectReason::PushTimeout {
                        secs: self.cfg.timers.hand_window.as_secs(),
                    },
                };
                self.disconnect(reason);
            }
            Timer::PushRequest => {
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
                self.timers.set(
                    Timer::PushRequest,
                    now + self.cfg.timers.push_request_interval,
                );
            }
            Timer::PingRestart => {
                let secs = self.ping_restart.map_or(0, |p| p.as_secs());
                self.disconnect(DisconnectReason::PingRestart { secs });
            }
            Timer::Renegotiate => {
                self.start_renegotiation(now);
                // Its reset is queued; the next steps happen on the next drive.
                if let Some(ks) = self.keys.first() {
                    tracing::debug!(key_id = ks.key_id.get(), "soft reset queued");
                }
            }
            Timer::CloseDeadline => self.disconnect(DisconnectReason::ClosedByUser),
            Timer::OccExitResend => {
                self.send_data_payload(now, &ping::occ_exit_payload());
                self.timers
                    .set(Timer::OccExitResend, now + Duration::from_secs(1));
            }
            Timer::Retransmit => self.flush_packets(now),
            Timer::Keepalive => {
                self.send_data_payload(now, &ping::PING_MAGIC);
                self.last_sent = now;
            }
        }
    }

    /// The first key state past its hand-window ends the session, with a
    /// reason that says how far it got.
    fn hand_window_expired(&mut self, now: Instant) {
        let hw = self.cfg.timers.hand_window;
        let Some(ks) = self
            .keys
            .iter()
            .find(|k| !k.negotiated() && now >= k.created + hw)
        else {
            return;
        };
        let secs = hw.as_secs();
        let reason = if ks.key_id != KeyId::ZERO || self.pushed.is_some() {
            DisconnectReason::RenegotiationFailed { secs }
        } else if !self.heard_from_server {
            DisconnectReason::NoServerReply { secs }
        } else {
            DisconnectReason::HandshakeTimeout { secs }
        };
        self.disconnect(reason);
    }

    /// `EXIT` sent with cc-exit: done as soon as the server ACKed it (not a
    /// timer; [`Timer::CloseDeadline`] bounds the wait).
    fn finish_close_when_delivered(&mut self) {
        if self.closing != Some(Closing::CcExit) {
            return;
        }
        let delivered = self
            .keys
            .first()
            .is_some_and(|k| k.reliable.all_acked() && k.tls_out.is_empty());
        if delivered {
            self.disconnect(DisconnectReason::ClosedByUser);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_timer_once_in_its_slot() {
        for (i, t) in Timer::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t} is not in its slot");
        }
        let names: std::collections::HashSet<_> = Timer::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Timer::COUNT);
        // The drive loop serves all but Retransmit and Keepalive before the flush.
        assert_eq!(
            Timer::BEFORE_FLUSH.as_slice(),
            &Timer::ALL[..Timer::COUNT - 2]
        );
    }

    /// A client whose server never answers: the table says what it waits
    /// for, and the same deadlines fire.
    #[test]
    fn poll_timeout_says_when_and_why() {
        use crate::config::ClientConfig;
        use crate::session::{Client, DisconnectReason, Event};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let mut cfg = ClientConfig {
            ca_pem: Some(ca.pem()),
            ..ClientConfig::default()
        };
        cfg.timers.tls_timeout = Duration::from_secs(2);
        cfg.timers.hand_window = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut c = Client::new(cfg, [7; 32], t0, 1_700_000_000).unwrap();
        assert!(c.poll_transmit(t0).is_some(), "the hard reset is queued");
        // The reset waits for its ACK: retransmit first, hand-window later.
        assert_eq!(
            c.next_timer(),
            Some((t0 + Duration::from_secs(2), Timer::Retransmit))
        );
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(
            c.deadline(Timer::HandWindow),
            Some(t0 + Duration::from_secs(5))
        );
        for t in [Timer::Keepalive, Timer::PingRestart, Timer::Renegotiate] {
            assert_eq!(c.deadline(t), None, "{t} armed before connecting");
        }
        // Early wake-ups change nothing.
        c.handle_timeout(t0 + Duration::from_secs(1));
        assert!(c.poll_transmit(t0).is_none());
        // The retransmission fires when the table said.
        let t = t0 + Duration::from_secs(2);
        c.handle_timeout(t);
        assert!(c.poll_transmit(t).is_some(), "reset retransmitted");
        // Then the hand-window ends the attempt, and nothing is armed any more.
        let (at, why) = c.next_timer().unwrap();
        assert!(at <= t0 + Duration::from_secs(5), "{why} at {at:?}");
        let end = t0 + Duration::from_secs(5);
        let mut now = t;
        while let Some((at, _)) = c.next_timer() {
            assert!(
                at > now || at == end,
                "a past deadline would spin the driver"
            );
            now = at.min(end);
            c.handle_timeout(now);
            while c.poll_transmit(now).is_some() {}
        }
        assert_eq!(now, end);
        let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(
            events.contains(&Event::Disconnected(DisconnectReason::NoServerReply {
                secs: 5
            })),
            "{events:?}"
        );
    }

    #[test]
    fn table_sets_gets_and_stops() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.get(Timer::PushRequest), None);
        t.set(Timer::PushRequest, now);
        t.set(Timer::Renegotiate, now + Duration::from_secs(5));
        assert_eq!(t.get(Timer::PushRequest), Some(now));
        assert_eq!(
            t.get(Timer::Renegotiate),
            Some(now + Duration::from_secs(5))
        );
        t.stop(Timer::PushRequest);
        assert_eq!(t.get(Timer::PushRequest), None);
        assert_eq!(
            t.get(Timer::Renegotiate),
            Some(now + Duration::from_secs(5))
        );
    }
}
