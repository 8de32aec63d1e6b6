//! After TLS: the control messages of the push phase and later (PUSH_REPLY,
//! AUTH_FAILED, AUTH_PENDING, INFO/INFO_PRE, RESTART/HALT, EXIT), and
//! applying the pushed configuration to the data channel.

use super::{Challenge, Client, DisconnectReason, Event, Stage, Timer};
use crate::config::Transport;
use crate::control_msg::{self, AuthFailure, ControlMessage};
use crate::keys::{EKM_LABEL_DYN_TLS_CRYPT, EKM_LEN};
use crate::mss;
use crate::push::{self, PushedOptions};
use crate::sso::{self, PendingAuthInfo, PendingWait, SignInEvent};
use crate::wrap::ControlWrap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

impl Client {
    pub(super) fn handle_control_message(&mut self, now: Instant, idx: usize, msg: &str) {
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
                    self.timers.set(Timer::PushDeadline, w.deadline());
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

    /// `mssfix` for the negotiated data channel (OpenVPN 2.6's sizes).
    fn size_mss_clamp(&mut self, cipher: crate::data::Cipher) {
        let framing = mss::Framing {
            cipher,
            digest: self.digest,
            peer_id: self.peer_id.is_some(),
            compression: self.comp.mode(),
            tcp: self.cfg.transport == Transport::Tcp,
            ipv6_link: matches!(self.cfg.remote_addr, Some(IpAddr::V6(_))),
            epoch: self.epoch_format,
        };
        self.max_mss = mss::max_mss(self.cfg.mssfix, self.cfg.tun_mtu, &framing);
        match self.max_mss {
            Some(m) => tracing::info!(
                max_mss = m,
                "clamping the MSS of tunnelled TCP connections (mssfix)"
            ),
            None => tracing::info!("MSS clamping off (mssfix 0)"),
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
        self.epoch_format = o.protocol_flags.aead_epoch;
        if let Err(e) = crate::epoch::check_pushed(self.epoch_format, cipher, self.peer_id) {
            self.disconnect(DisconnectReason::PushRejected(e.to_string()));
            return;
        }
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
        self.size_mss_clamp(cipher);
        if let Err(reason) = self.derive_data_key(0) {
            self.disconnect(DisconnectReason::Protocol(reason));
            return;
        }
        self.timers.stop(Timer::PushRequest);
        self.timers.stop(Timer::PushDeadline);
        self.arm_renegotiation(now);
        self.last_received = now;
        tracing::info!(cipher = cipher.name(), ekm = self.use_ekm, peer_id = ?self.peer_id, epoch_format = self.epoch_format, "data channel ready");
        self.pushed = Some(o.clone());
        self.events.push_back(Event::ConfigReceived(Box::new(o)));
        self.set_stage(Stage::Connected);
    }
}
