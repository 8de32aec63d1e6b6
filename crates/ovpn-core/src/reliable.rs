//! Reliability layer of the control channel (one per key_state), §2.1–2.3.
//!
//! Pure bookkeeping: message ids, send window (6), receive window (12),
//! ACK lists with the MRU re-ACK trick, retransmission timers with doubling
//! and fast retransmit. It knows nothing of packet encoding or wrapping: the
//! session asks it what to send and feeds it what arrived.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// `TLS_RELIABLE_N_SEND_BUFFERS`.
pub const SEND_WINDOW: u32 = 6;
/// `TLS_RELIABLE_N_REC_BUFFERS`.
pub const RECV_WINDOW: u32 = 12;
/// `RELIABLE_ACK_SIZE`: pending ACK list and MRU list size, max ACKs in `P_ACK_V1`.
pub const ACK_LIST_MAX: usize = 8;
/// `CONTROL_SEND_ACK_MAX`: ACKs piggybacked on a `P_CONTROL_V1`.
pub const PIGGYBACK_ACKS_MAX: usize = 4;
/// `N_ACK_RETRANSMIT`.
const FAST_RETRANSMIT_ACKS: u8 = 3;

/// Size of an ACK block with `n` ids (§2.3 `ACK_SIZE`).
pub fn ack_block_size(n: usize) -> usize {
    1 + if n > 0 { 8 } else { 0 } + 4 * n
}

/// Largest TLS payload of one control message (§2.3), computed with the
/// worst case of [`PIGGYBACK_ACKS_MAX`] ACKs so a retransmit always fits.
/// `wrap_overhead` is what tls-auth/tls-crypt add; `extra` is e.g. the WKc length.
pub fn max_control_payload(tls_mtu: u16, wrap_overhead: usize, ipv6: bool, extra: usize) -> usize {
    let budget = usize::from(tls_mtu).min(2048);
    let ip = if ipv6 { 48 } else { 28 };
    let overhead = 1 + 8 + ack_block_size(PIGGYBACK_ACKS_MAX) + 4 + wrap_overhead + ip + extra;
    // A silly tls-mtu must not stall the handshake: keep a usable floor.
    budget.saturating_sub(overhead).max(64)
}

#[derive(Debug, Clone)]
struct Outgoing {
    id: u32,
    opcode: u8,
    payload: Vec<u8>,
    sent: bool,
    /// When the next (re)transmission is due.
    due: Instant,
    /// Interval used after the next transmission.
    timeout: Duration,
    /// ACKs for higher ids seen since the last transmission.
    higher_acks: u8,
}

/// A message the session must put on the wire now (first send or retransmit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    pub id: u32,
    /// OpenVPN opcode the message was queued with (reset, control, WKC ...).
    pub opcode: u8,
    pub payload: Vec<u8>,
    pub retransmit: bool,
}

/// What happened to a received reliable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// New message stored (and ACK queued).
    Stored,
    /// Seen before (ACK queued again so the peer stops resending).
    Duplicate,
    /// Too far ahead of what we expect: neither stored nor ACKed.
    OutOfWindow,
}

/// Reliability state of one key_state.
#[derive(Debug)]
pub struct Reliable {
    initial_timeout: Duration,
    next_send_id: u32,
    out: VecDeque<Outgoing>,
    expected: u32,
    inbox: BTreeMap<u32, (u8, Vec<u8>)>,
    pending_acks: VecDeque<u32>,
    mru: VecDeque<u32>,
    stats: ReliableStats,
}

/// Counters for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReliableStats {
    pub sent: u64,
    pub retransmits: u64,
    pub duplicates: u64,
    pub out_of_window: u64,
}

impl Reliable {
    /// `tls_timeout` is the first retransmit interval (doubles afterwards).
    pub fn new(tls_timeout: Duration) -> Self {
        Reliable {
            initial_timeout: tls_timeout.max(Duration::from_millis(100)),
            next_send_id: 0,
            out: VecDeque::new(),
            expected: 0,
            inbox: BTreeMap::new(),
            pending_acks: VecDeque::new(),
            mru: VecDeque::new(),
            stats: ReliableStats::default(),
        }
    }

    pub fn stats(&self) -> ReliableStats {
        self.stats
    }

    /// May another message be queued (`next_id - oldest_unacked < 6`)?
    pub fn can_queue(&self) -> bool {
        match self.out.front() {
            None => true,
            Some(o) => self.next_send_id.wrapping_sub(o.id) < SEND_WINDOW,
        }
    }

    /// Number of messages that can still be queued.
    pub fn free_send_slots(&self) -> usize {
        match self.out.front() {
            None => SEND_WINDOW as usize,
            Some(o) => {
                let used = self.next_send_id.wrapping_sub(o.id);
                SEND_WINDOW.saturating_sub(used) as usize
            }
        }
    }

    /// Queue a message; returns its id, or `None` when the window is full.
    pub fn queue(&mut self, opcode: u8, payload: Vec<u8>, now: Instant) -> Option<u32> {
        if !self.can_queue() {
            return None;
        }
        let id = self.next_send_id;
        self.next_send_id = self.next_send_id.wrapping_add(1);
        self.out.push_back(Outgoing {
            id,
            opcode,
            payload,
            sent: false,
            due: now,
            timeout: self.initial_timeout,
            higher_acks: 0,
        });
        Some(id)
    }

    /// Id the next queued message will get.
    pub fn next_send_id(&self) -> u32 {
        self.next_send_id
    }

    /// Everything we sent has been acknowledged.
    pub fn all_acked(&self) -> bool {
        self.out.is_empty()
    }

    /// Is message `id` of ours still unacknowledged?
    pub fn is_unacked(&self, id: u32) -> bool {
        self.out.iter().any(|o| o.id == id)
    }

    /// Apply a received ACK list. Returns how many of our messages it newly acknowledged.
    pub fn process_acks(&mut self, acks: &[u32]) -> usize {
        let mut newly = 0;
        for &ack in acks {
            let before = self.out.len();
            self.out.retain(|o| o.id != ack);
            if self.out.len() != before {
                newly += 1;
            }
            for o in self.out.iter_mut() {
                if o.sent && o.id < ack {
                    o.higher_acks = o.higher_acks.saturating_add(1);
                }
            }
        }
        newly
    }

    /// Reschedule every unacknowledged message to now (peer's reset arrived, §2.2).
    pub fn schedule_now(&mut self, now: Instant) {
        for o in self.out.iter_mut() {
            o.due = now;
        }
    }

    /// Next message due at `now` (oldest first), marked as sent.
    pub fn poll_send(&mut self, now: Instant) -> Option<OutMessage> {
        let o = self
            .out
            .iter_mut()
            .find(|o| !o.sent || o.due <= now || o.higher_acks >= FAST_RETRANSMIT_ACKS)?;
        let retransmit = o.sent;
        if retransmit {
            self.stats.retransmits += 1;
        }
        self.stats.sent += 1;
        o.sent = true;
        o.higher_acks = 0;
        o.due = now + o.timeout;
        o.timeout = o.timeout.saturating_mul(2);
        Some(OutMessage {
            id: o.id,
            opcode: o.opcode,
            payload: o.payload.clone(),
            retransmit,
        })
    }

    /// Earliest retransmission deadline (unsent messages are due at once).
    pub fn timeout(&self) -> Option<Instant> {
        self.out.iter().map(|o| o.due).min()
    }

    /// A reliable message arrived with message id `id`.
    pub fn receive(&mut self, id: u32, opcode: u8, payload: &[u8]) -> Received {
        let ahead = id.wrapping_sub(self.expected);
        let outcome = if (ahead as i32) < 0 {
            Received::Duplicate
        } else if ahead >= RECV_WINDOW {
            Received::OutOfWindow
        } else {
            match self.inbox.entry(id) {
                std::collections::btree_map::Entry::Occupied(_) => Received::Duplicate,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert((opcode, payload.to_vec()));
                    Received::Stored
                }
            }
        };
        match outcome {
            Received::OutOfWindow => self.stats.out_of_window += 1,
            Received::Duplicate => {
                self.stats.duplicates += 1;
                self.queue_ack(id);
            }
            Received::Stored => self.queue_ack(id),
        }
        outcome
    }

    fn queue_ack(&mut self, id: u32) {
        if !self.pending_acks.contains(&id) && self.pending_acks.len() < ACK_LIST_MAX {
            self.pending_acks.push_back(id);
        }
    }

    /// Next message in order, if it has arrived.
    pub fn pop_in_order(&mut self) -> Option<(u8, Vec<u8>)> {
        let msg = self.inbox.remove(&self.expected)?;
        self.expected = self.expected.wrapping_add(1);
        Some(msg)
    }

    /// Id of the next message we expect from the peer.
    pub fn expected_id(&self) -> u32 {
        self.expected
    }

    /// ACKs are waiting to be sent (a `P_ACK_V1` is needed if nothing else goes out).
    pub fn has_pending_acks(&self) -> bool {
        !self.pending_acks.is_empty()
    }

    /// ACK list for the next packet: moves up to `max` pending ids into the
    /// MRU list and returns the first `max` MRU entries (most recent first),
    /// so recent ids are re-ACKed on every packet (`reliable_ack_write()`).
    pub fn take_acks(&mut self, max: usize) -> Vec<u32> {
        let n = self.pending_acks.len().min(max);
        for _ in 0..n {
            if let Some(id) = self.pending_acks.pop_front() {
                self.mru.retain(|&m| m != id);
                self.mru.push_front(id);
                self.mru.truncate(ACK_LIST_MAX);
            }
        }
        self.mru.iter().take(max).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTRL: u8 = 4;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn ids_start_at_zero_and_window_is_six() {
        let now = t0();
        let mut r = Reliable::new(Duration::from_secs(2));
        for i in 0..6 {
            assert_eq!(r.queue(CTRL, vec![i], now), Some(u32::from(i)));
        }
        assert!(!r.can_queue());
        assert_eq!(r.queue(CTRL, vec![9], now), None);
        // ACK of a middle message does not open the window (oldest still pending).
        assert_eq!(r.process_acks(&[3]), 1);
        assert!(!r.can_queue());
        assert_eq!(r.process_acks(&[0]), 1);
        assert_eq!(r.free_send_slots(), 1);
        assert_eq!(r.queue(CTRL, vec![6], now), Some(6));
        assert!(!r.can_queue());
    }

    #[test]
    fn retransmit_doubles_and_oldest_first() {
        let now = t0();
        let mut r = Reliable::new(Duration::from_secs(2));
        r.queue(CTRL, b"a".to_vec(), now);
        r.queue(CTRL, b"b".to_vec(), now);
        let m0 = r.poll_send(now).unwrap();
        assert_eq!((m0.id, m0.retransmit), (0, false));
        let m1 = r.poll_send(now).unwrap();
        assert_eq!(m1.id, 1);
        assert_eq!(r.poll_send(now), None);
        assert_eq!(r.timeout(), Some(now + Duration::from_secs(2)));
        let t = now + Duration::from_secs(2);
        let re = r.poll_send(t).unwrap();
        assert_eq!((re.id, re.retransmit), (0, true));
        let re1 = r.poll_send(t).unwrap();
        assert_eq!(re1.id, 1);
        // Next attempt after 4 s, then 8 s.
        assert_eq!(r.poll_send(t + Duration::from_millis(3999)), None);
        assert_eq!(r.poll_send(t + Duration::from_secs(4)).unwrap().id, 0);
        assert_eq!(r.timeout(), Some(t + Duration::from_secs(4)));
        r.process_acks(&[1]);
        assert_eq!(
            r.timeout(),
            Some(t + Duration::from_secs(4) + Duration::from_secs(8))
        );
        assert_eq!(r.stats().retransmits, 3);
    }

    #[test]
    fn fast_retransmit_after_three_higher_acks() {
        let now = t0();
        let mut r = Reliable::new(Duration::from_secs(2));
        for i in 0..4u8 {
            r.queue(CTRL, vec![i], now);
        }
        while r.poll_send(now).is_some() {}
        // Message 0 lost; 1, 2, 3 acknowledged separately.
        r.process_acks(&[1]);
        r.process_acks(&[2]);
        assert_eq!(r.poll_send(now), None);
        r.process_acks(&[3]);
        let m = r.poll_send(now).unwrap();
        assert_eq!((m.id, m.retransmit), (0, true));
        assert_eq!(r.poll_send(now), None);
    }

    #[test]
    fn receive_loss_dup_reorder_delivers_in_order() {
        let mut r = Reliable::new(Duration::from_secs(2));
        // 0 arrives, 2 arrives (1 lost), 2 duplicated, then 1.
        assert_eq!(r.receive(0, CTRL, b"m0"), Received::Stored);
        assert_eq!(r.pop_in_order().unwrap().1, b"m0");
        assert_eq!(r.receive(2, CTRL, b"m2"), Received::Stored);
        assert_eq!(r.pop_in_order(), None);
        assert_eq!(r.receive(2, CTRL, b"m2"), Received::Duplicate);
        assert_eq!(r.receive(1, CTRL, b"m1"), Received::Stored);
        assert_eq!(r.pop_in_order().unwrap().1, b"m1");
        assert_eq!(r.pop_in_order().unwrap().1, b"m2");
        assert_eq!(r.pop_in_order(), None);
        // Old duplicate is ACKed again.
        assert_eq!(r.receive(0, CTRL, b"m0"), Received::Duplicate);
        let acks = r.take_acks(ACK_LIST_MAX);
        assert_eq!(acks, vec![1, 2, 0]);
    }

    #[test]
    fn out_of_window_not_stored_nor_acked() {
        let mut r = Reliable::new(Duration::from_secs(2));
        assert_eq!(r.receive(12, CTRL, b"x"), Received::OutOfWindow);
        assert!(!r.has_pending_acks());
        assert_eq!(r.receive(11, CTRL, b"y"), Received::Stored);
        assert_eq!(r.take_acks(8), vec![11]);
    }

    #[test]
    fn ack_list_mru_reacks_and_caps() {
        let mut r = Reliable::new(Duration::from_secs(2));
        for id in 0..6 {
            r.receive(id, CTRL, b"");
        }
        // Piggyback: at most 4, most recent first.
        let first = r.take_acks(PIGGYBACK_ACKS_MAX);
        assert_eq!(first, vec![3, 2, 1, 0]);
        assert!(r.has_pending_acks());
        let second = r.take_acks(PIGGYBACK_ACKS_MAX);
        assert_eq!(second, vec![5, 4, 3, 2]);
        assert!(!r.has_pending_acks());
        // Nothing pending: a later packet still re-ACKs from the MRU list.
        assert_eq!(r.take_acks(ACK_LIST_MAX), vec![5, 4, 3, 2, 1, 0]);
        // A duplicate moves to the front again.
        r.receive(1, CTRL, b"");
        assert_eq!(r.take_acks(3), vec![1, 5, 4]);
    }

    #[test]
    fn pending_ack_list_bounded() {
        let mut r = Reliable::new(Duration::from_secs(2));
        for id in 0..12 {
            r.receive(id, CTRL, b"");
        }
        assert_eq!(r.take_acks(ACK_LIST_MAX).len(), 8);
        assert!(!r.has_pending_acks());
    }

    #[test]
    fn schedule_now_resends_at_once() {
        let now = t0();
        let mut r = Reliable::new(Duration::from_secs(2));
        r.queue(CTRL, b"a".to_vec(), now);
        r.poll_send(now).unwrap();
        assert_eq!(r.poll_send(now), None);
        r.schedule_now(now);
        assert!(r.poll_send(now).unwrap().retransmit);
    }

    #[test]
    fn control_payload_sizing_matches_spec() {
        // 1250 - (1 + 8 + ACK_SIZE(4)=25 + 4 + 56 + 28) = 1128 with tls-crypt, IPv4.
        assert_eq!(max_control_payload(1250, 56, false, 0), 1128);
        assert_eq!(
            max_control_payload(1250, 0, true, 0),
            1250 - (1 + 8 + 25 + 4 + 48)
        );
        assert_eq!(max_control_payload(5000, 0, false, 0), 2048 - 66);
        assert_eq!(ack_block_size(0), 1);
        assert_eq!(ack_block_size(3), 1 + 8 + 12);
    }
}
