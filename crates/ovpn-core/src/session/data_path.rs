//! Data packets: from the link (decrypt, decompress, keepalive/OCC, drop
//! counters) and from the TUN device (compress framing, encrypt with the key
//! the renegotiation window allows).

use super::{Client, DisconnectReason, Stage, DATA_HEADROOM, DATA_TAILROOM};
use crate::compress::Payload;
use crate::drops::DropReason;
use crate::mss;
use crate::packet::{peek_header, KeyId};
use crate::ping::{self, PayloadKind};
use std::fmt;
use std::ops::Range;
use std::time::Instant;

impl Client {
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
        if let Some(pkt) = buf.get_mut(start..) {
            self.clamp_mss(pkt);
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

    pub(super) fn drop_data(&mut self, reason: DropReason, detail: &dyn fmt::Display) {
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
                let reason = DropReason::of(&e);
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
                let ip = match &payload {
                    Payload::InPlace(r) => pkt.get_mut(r.clone()),
                    Payload::Decompressed(n) => self.comp.decompressed_mut(*n),
                };
                if let (Some(max), Some(ip)) = (self.max_mss, ip) {
                    if let Some(c) = mss::clamp(ip, max) {
                        self.note_mss_clamped(c);
                    }
                }
                Some(payload)
            }
        }
    }

    /// Lowers the MSS of a TCP SYN/SYN-ACK from the TUN device (`mssfix`).
    fn clamp_mss(&mut self, ip: &mut [u8]) {
        if let Some(c) = self.max_mss.and_then(|max| mss::clamp(ip, max)) {
            self.note_mss_clamped(c);
        }
    }

    fn note_mss_clamped(&mut self, c: mss::Clamped) {
        if self.stats.mss_clamped == 0 {
            tracing::info!(
                from = c.from,
                to = c.to,
                "clamped the MSS of a tunnelled TCP connection so its packets fit the link (mssfix)"
            );
        }
        self.stats.mss_clamped += 1;
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

    pub(super) fn encrypt_payload(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Option<usize> {
        let Some(idx) = self.encrypt_key_index(now) else {
            self.stats.dropped_not_connected += 1;
            return None;
        };
        let s = match self.comp.frame_at(now, buf, start) {
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
    pub(super) fn send_data_payload(&mut self, now: Instant, payload: &[u8]) {
        let mut buf = Vec::with_capacity(DATA_HEADROOM + payload.len() + DATA_TAILROOM);
        buf.resize(DATA_HEADROOM, 0);
        buf.extend_from_slice(payload);
        if let Some(off) = self.encrypt_payload(now, &mut buf, DATA_HEADROOM) {
            self.transmits.push_back(buf.split_off(off));
        }
    }

    pub(super) fn reneg_due_by_volume(&self) -> bool {
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
}
