//! Key states (§2.1, §8): one per key id, from its reset through TLS and the
//! key-method exchange to data keys; the TLS pump between the reliable layer
//! and rustls; renegotiation.

use super::control::parse_early_tlvs;
use super::{Client, DisconnectReason, Event, Stage, Timer};
use crate::config::{ChallengeResponse, Secret};
use crate::control_msg::MessageSplitter;
use crate::data::DataKey;
use crate::keymethod::{self, ClientRandoms, ServerKeyReply};
use crate::keys::{KeyMaterial, EKM_LABEL_DATA, EKM_LEN};
use crate::packet::{KeyId, Opcode};
use crate::reliable::Reliable;
use crate::tls::{TlsError, TlsSession};
use rand_core::RngCore;
use std::time::Instant;

/// TLS records held while our own reset is not yet acknowledged.
const MAX_EARLY_TLS_RECORDS: usize = 16;

/// One key_state (§2.1, §8).
pub(super) struct KeyState {
    pub(super) key_id: KeyId,
    pub(super) reliable: Reliable,
    pub(super) peer_reset_seen: bool,
    pub(super) tls: Option<TlsSession>,
    /// TLS records that arrived before TLS was started.
    pub(super) early_tls: Vec<Vec<u8>>,
    /// Ciphertext from rustls not yet cut into messages.
    pub(super) tls_out: Vec<u8>,
    pub(super) randoms: ClientRandoms,
    pub(super) reply: Option<ServerKeyReply>,
    pub(super) plain_in: Vec<u8>,
    pub(super) splitter: MessageSplitter,
    pub(super) used_token: bool,
    pub(super) active: bool,
    pub(super) data: Option<DataKey>,
    pub(super) created: Instant,
    /// Encrypt with this key only from here on (2.6 deferred auth window).
    pub(super) send_from: Option<Instant>,
    /// Lame duck: drop after this.
    pub(super) expire_at: Option<Instant>,
    pub(super) bytes: u64,
    pub(super) packets: u64,
}

impl KeyState {
    pub(super) fn done(&self) -> bool {
        self.data.is_some()
    }

    /// Past the hand-window check: key 0 once active (the push phase has
    /// its own deadline), later keys once their data keys exist.
    pub(super) fn negotiated(&self) -> bool {
        if self.key_id == KeyId::ZERO {
            self.active
        } else {
            self.done()
        }
    }
}

impl Client {
    pub(super) fn new_key_state(
        &mut self,
        key_id: KeyId,
        now: Instant,
        reset_op: Opcode,
    ) -> KeyState {
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

    pub(super) fn step_key_state(&mut self, now: Instant, idx: usize) {
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
                    self.arm_renegotiation(now);
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
                let push_deadline = self.timers.get(Timer::PushDeadline);
                self.timers
                    .set(Timer::PushDeadline, push_deadline.map_or(d, |p| p.max(d)));
                self.timers.set(Timer::PushRequest, now);
            }
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
    pub(super) fn pump_tls_out(&mut self, now: Instant, idx: usize) {
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

    pub(super) fn process_inbox(&mut self, now: Instant, idx: usize) {
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

    pub(super) fn tls_failed(&mut self, now: Instant, idx: usize, e: TlsError) {
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

    pub(super) fn derive_data_key(&mut self, idx: usize) -> Result<(), String> {
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
        let mut dk = if self.epoch_format {
            DataKey::new_client_epoch(ks.key_id, cipher, &km)
        } else {
            DataKey::new_client(ks.key_id, cipher, self.digest, &km, seed)
        }
        .map_err(|e| e.to_string())?;
        dk.set_peer_id(self.peer_id);
        ks.data = Some(dk);
        Ok(())
    }

    pub(super) fn start_renegotiation(&mut self, now: Instant) {
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
        self.timers.stop(Timer::Renegotiate);
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
}
