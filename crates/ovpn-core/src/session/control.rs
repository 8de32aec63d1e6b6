//! Control packets on the wire: the tls-auth/tls-crypt wrap around them,
//! the checks every packet from the server passes, and what goes out
//! (reliable messages, retransmissions, ACKs).

use super::{Client, DisconnectReason, SetupError, Stage};
use crate::config::{ClientConfig, TlsWrap};
use crate::keys::Digest;
use crate::packet::{peek_header, ControlPacket, KeyId, Opcode};
use crate::reliable;
use crate::static_key::{KeyDirection, StaticKey, TlsCryptV2ClientKey};
use crate::wrap::{ControlWrap, WrapError, WrapKind};
use std::net::IpAddr;
use std::time::Instant;

/// Largest control packet accepted: 2048 bytes of TLS plus headers.
const MAX_CONTROL_PACKET: usize = 2048 + 256;

/// The control-channel wrap the profile asks for (none, tls-auth, tls-crypt,
/// tls-crypt-v2) and the static key that dynamic tls-crypt builds on.
pub(super) fn build_wrap(
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
pub(super) fn parse_early_tlvs(mut p: &[u8]) -> Result<bool, String> {
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
    fn wrap_overhead(&self) -> usize {
        match self.wrap.kind() {
            WrapKind::TlsCrypt | WrapKind::TlsCryptV2 => 56,
            _ => self.wrap.overhead(),
        }
    }

    pub(super) fn max_payload(&self, extra: usize) -> usize {
        let v6 = matches!(self.cfg.remote_addr, Some(IpAddr::V6(_)));
        reliable::max_control_payload(self.cfg.tls_mtu, self.wrap_overhead(), v6, extra)
    }

    /// Counts and logs one dropped data packet (first of each reason at WARN).
    pub(super) fn handle_control(&mut self, now: Instant, pkt: &[u8]) {
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
    pub(super) fn flush_packets(&mut self, now: Instant) {
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
}
