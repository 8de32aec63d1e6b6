//! Packet-id replay protection (§7.4), the sliding-window algorithm of
//! OpenVPN's `packet_id.c` (`packet_id_test()`, `packet_id_add()`,
//! `packet_id_reap()`).
//!
//! * Long form (control-channel wrapping): `(id, timestamp)`. A newer
//!   timestamp starts a new sequence, so the 2.6 stateless server reset
//!   (server-global counter, old timestamp) followed by session packets
//!   (id 2.., newer timestamp) is accepted. An older timestamp is rejected.
//! * Short form (data channel): pass `timestamp = 0`.
//!
//! Window: 64 packets, and an out-of-order packet is refused if a newer one
//! arrived more than 15 s ago (expiry sweep every 5 s). Id 0 is never valid.
//! `now` is the caller's monotonic time; the core never reads a clock.

use crate::codec::Blame;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Default `replay-window` size.
pub const DEFAULT_WINDOW: u32 = 64;
/// Default `replay-window` time.
pub const DEFAULT_TIME_BACKTRACK: Duration = Duration::from_secs(15);
/// Interval between expiry sweeps (`SEQ_REAP_INTERVAL`).
pub const REAP_INTERVAL: Duration = Duration::from_secs(5);

/// Why a packet id was refused. All are counted drops, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReplayError {
    /// Packet id 0 is never sent.
    #[error("packet id 0")]
    ZeroId,
    /// The id was already seen.
    #[error("replayed packet id {0}")]
    Replay(u64),
    /// Older than the window allows (by count).
    #[error("packet id {0} is outside the replay window")]
    OutsideWindow(u64),
    /// Older than the window allows (by time: newer packets arrived > 15 s ago).
    #[error("packet id {0} expired (time backtrack)")]
    Expired(u64),
    /// Timestamp older than the current sequence's.
    #[error("packet timestamp {got} older than {current}")]
    TimeBacktrack {
        /// Timestamp of the packet.
        got: u32,
        /// Timestamp of the current sequence.
        current: u32,
    },
}

impl ReplayError {
    /// Replays are the peer's (or an attacker's) fault.
    pub fn blame(&self) -> Blame {
        Blame::PeerMisbehaved
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Unseen,
    Seen(Instant),
    Expired,
}

/// Receive-side replay window for one key / one control session.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    window: u32,
    time_backtrack: Duration,
    /// Timestamp of the current sequence (`p->time`).
    time: u32,
    /// Highest id of the current sequence (`p->id`); 64 bits wide for the
    /// 48-bit per-epoch counters of the epoch data format.
    id: u64,
    /// `slots[0]` is `id`, `slots[i]` is `id - i`.
    slots: VecDeque<Slot>,
    last_reap: Option<Instant>,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW, DEFAULT_TIME_BACKTRACK)
    }
}

impl ReplayWindow {
    /// A window of `window` packets (clamped to 1..=65536) and `time_backtrack`.
    pub fn new(window: u32, time_backtrack: Duration) -> Self {
        let window = window.clamp(1, 65536);
        Self {
            window,
            time_backtrack,
            time: 0,
            id: 0,
            slots: VecDeque::with_capacity(window as usize),
            last_reap: None,
        }
    }

    /// Tests `(id, timestamp)` without recording it (`packet_id_test()`).
    pub fn test(&self, id: u32, timestamp: u32) -> Result<(), ReplayError> {
        self.test_wide(u64::from(id), timestamp)
    }

    /// [`test`](Self::test) for 64-bit ids (epoch data format: 48 bits).
    pub fn test_wide(&self, id: u64, timestamp: u32) -> Result<(), ReplayError> {
        if id == 0 {
            return Err(ReplayError::ZeroId);
        }
        if timestamp < self.time {
            return Err(ReplayError::TimeBacktrack {
                got: timestamp,
                current: self.time,
            });
        }
        if timestamp > self.time || id > self.id {
            return Ok(());
        }
        let diff = usize::try_from(self.id - id).unwrap_or(usize::MAX);
        match self.slots.get(diff) {
            None => Err(ReplayError::OutsideWindow(id)),
            Some(Slot::Unseen) => Ok(()),
            Some(Slot::Seen(_)) => Err(ReplayError::Replay(id)),
            Some(Slot::Expired) => Err(ReplayError::Expired(id)),
        }
    }

    /// Records an accepted `(id, timestamp)` (`packet_id_add()`).
    pub fn add(&mut self, id: u32, timestamp: u32, now: Instant) {
        self.add_wide(u64::from(id), timestamp, now);
    }

    /// [`add`](Self::add) for 64-bit ids (epoch data format: 48 bits).
    pub fn add_wide(&mut self, id: u64, timestamp: u32, now: Instant) {
        let w = u64::from(self.window);
        if self.slots.is_empty() || timestamp > self.time || (id >= w && id - w > self.id) {
            self.time = timestamp;
            self.id = id.saturating_sub(w);
            self.slots.clear();
        }
        while self.id < id {
            if self.slots.len() == w as usize {
                self.slots.pop_back();
            }
            self.slots.push_front(Slot::Unseen);
            self.id += 1;
        }
        let diff = usize::try_from(self.id - id).unwrap_or(usize::MAX);
        if let Some(s) = self.slots.get_mut(diff) {
            *s = Slot::Seen(now);
        }
    }

    /// Marks ids that arrived-after neighbours older than `time_backtrack` as
    /// expired (`packet_id_reap()`); runs at most every [`REAP_INTERVAL`].
    pub fn reap(&mut self, now: Instant) {
        if let Some(last) = self.last_reap {
            if now.saturating_duration_since(last) < REAP_INTERVAL {
                return;
            }
        }
        let mut expire = false;
        for s in self.slots.iter_mut() {
            match *s {
                Slot::Expired => break,
                Slot::Seen(t) if !expire && t + self.time_backtrack < now => expire = true,
                _ => {}
            }
            if expire {
                *s = Slot::Expired;
            }
        }
        self.last_reap = Some(now);
    }

    /// Reap, test and, if acceptable, record. Call only after the packet
    /// was authenticated.
    pub fn check_and_add(
        &mut self,
        id: u32,
        timestamp: u32,
        now: Instant,
    ) -> Result<(), ReplayError> {
        self.check_and_add_wide(u64::from(id), timestamp, now)
    }

    /// [`check_and_add`](Self::check_and_add) for 64-bit ids.
    pub fn check_and_add_wide(
        &mut self,
        id: u64,
        timestamp: u32,
        now: Instant,
    ) -> Result<(), ReplayError> {
        self.reap(now);
        self.test_wide(id, timestamp)?;
        self.add_wide(id, timestamp, now);
        Ok(())
    }

    /// Highest id recorded so far (0 before the first packet).
    pub fn highest_id(&self) -> u64 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn in_order_and_reordered_within_window() {
        let now = t0();
        let mut w = ReplayWindow::default();
        for id in [1, 2, 3, 5, 4, 10, 7, 6] {
            w.check_and_add(id, 0, now).unwrap();
        }
        assert_eq!(w.check_and_add(8, 0, now), Ok(()));
        assert_eq!(w.check_and_add(9, 0, now), Ok(()));
    }

    #[test]
    fn duplicate_is_replay() {
        let now = t0();
        let mut w = ReplayWindow::default();
        w.check_and_add(1, 0, now).unwrap();
        w.check_and_add(3, 0, now).unwrap();
        assert_eq!(w.check_and_add(3, 0, now), Err(ReplayError::Replay(3)));
        assert_eq!(w.check_and_add(1, 0, now), Err(ReplayError::Replay(1)));
        assert_eq!(w.check_and_add(2, 0, now), Ok(()));
        assert_eq!(w.check_and_add(2, 0, now), Err(ReplayError::Replay(2)));
    }

    #[test]
    fn zero_never_accepted() {
        let w = ReplayWindow::default();
        assert_eq!(w.test(0, 0), Err(ReplayError::ZeroId));
        assert_eq!(w.test(0, 100), Err(ReplayError::ZeroId));
    }

    #[test]
    fn too_old_by_count() {
        let now = t0();
        let mut w = ReplayWindow::default();
        w.check_and_add(1, 0, now).unwrap();
        w.check_and_add(100, 0, now).unwrap();
        // 100 - 64 = 36 is the oldest slot still in the window
        assert_eq!(
            w.check_and_add(36, 0, now),
            Err(ReplayError::OutsideWindow(36))
        );
        assert_eq!(w.check_and_add(37, 0, now), Ok(()));
        // ids 2..36 were never seen but are now outside the window
        assert_eq!(w.test(2, 0), Err(ReplayError::OutsideWindow(2)));
    }

    #[test]
    fn too_old_by_time() {
        let start = t0();
        let mut w = ReplayWindow::default();
        w.check_and_add(1, 0, start).unwrap();
        w.check_and_add(3, 0, start).unwrap();
        // 16 s later a newer packet arrives; the gap at 2 is then expired
        let later = start + Duration::from_secs(16);
        w.check_and_add(4, 0, later).unwrap();
        assert_eq!(w.check_and_add(2, 0, later), Err(ReplayError::Expired(2)));
        // but a gap created after the expiry is fine
        w.check_and_add(6, 0, later).unwrap();
        assert_eq!(w.check_and_add(5, 0, later), Ok(()));
    }

    #[test]
    fn within_time_is_fine() {
        let start = t0();
        let mut w = ReplayWindow::default();
        w.check_and_add(1, 0, start).unwrap();
        w.check_and_add(3, 0, start).unwrap();
        let later = start + Duration::from_secs(10);
        assert_eq!(w.check_and_add(2, 0, later), Ok(()));
    }

    #[test]
    fn newer_timestamp_restarts_sequence() {
        // 2.6 stateless server: reset wrapped with a server-global counter and
        // an old timestamp, then the session restarts at id 2, newer timestamp.
        let now = t0();
        let mut w = ReplayWindow::default();
        w.check_and_add(123_456, 1_000, now).unwrap();
        assert_eq!(w.check_and_add(2, 1_005, now), Ok(()));
        assert_eq!(w.check_and_add(3, 1_005, now), Ok(()));
        // the old sequence is now in the past
        assert_eq!(
            w.check_and_add(123_457, 1_000, now),
            Err(ReplayError::TimeBacktrack {
                got: 1_000,
                current: 1_005
            })
        );
        assert_eq!(w.check_and_add(2, 1_005, now), Err(ReplayError::Replay(2)));
    }

    #[test]
    fn big_jump_keeps_window_consistent() {
        let now = t0();
        let mut w = ReplayWindow::default();
        w.check_and_add(5, 7, now).unwrap();
        w.check_and_add(u32::MAX, 7, now).unwrap();
        assert_eq!(
            w.check_and_add(u32::MAX, 7, now),
            Err(ReplayError::Replay(u64::from(u32::MAX)))
        );
        assert_eq!(w.check_and_add(u32::MAX - 1, 7, now), Ok(()));
        assert_eq!(
            w.check_and_add(5, 7, now),
            Err(ReplayError::OutsideWindow(5))
        );
    }
}
