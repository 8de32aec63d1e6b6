//! Timers: server answer timeouts, keepalive, renegotiation, inactivity.

use crate::build::*;
use crate::profile::*;
use crate::reader::RawDirective;

use super::*;

impl Builder {
    pub(super) fn on_connect_timeout(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        if self.arity(d, 1, 1) {
            if let Some(n) = self.num(d, 0) {
                // OpenVPN treats the two names as one option.
                if d.name == "connect-timeout" {
                    o.connect_timeout = Some(n);
                } else {
                    o.server_poll_timeout = Some(n);
                }
                self.honour(
                    d,
                    format!("waits at most {n} s for a server to answer before trying the next"),
                );
            }
        }
    }

    pub(super) fn on_reneg_sec(&mut self, d: &RawDirective) {
        if self.arity(d, 1, 2) {
            if let Some(n) = self.num(d, 0) {
                let slot = match d.name.as_str() {
                    "reneg-sec" => &mut self.p.reneg_sec,
                    "hand-window" => &mut self.p.hand_window,
                    "tls-timeout" => &mut self.p.tls_timeout,
                    "ping" => &mut self.p.ping,
                    "ping-restart" => &mut self.p.ping_restart,
                    _ => &mut self.p.ping_exit,
                };
                *slot = Some(n);
                if d.name == "ping-exit" {
                    self.not_applied(d, format!("is not applied yet (ending the session after {n} s of silence): the session is not ended on silence (ping-restart, when set, reconnects)"));
                } else if n == 0 {
                    self.honour(d, "0: turned off");
                } else {
                    self.honour(d, format!("{n} seconds"));
                }
            }
        }
    }

    pub(super) fn on_reneg_bytes(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            match a[0].parse::<u64>() {
                Ok(n) => {
                    if d.name == "reneg-bytes" {
                        self.p.reneg_bytes = Some(n);
                    } else {
                        self.p.reneg_pkts = Some(n);
                    }
                    self.honour(d, format!("renegotiates keys after {n}"));
                }
                Err(_) => self.error(d, format!("needs a whole number, not {:?}", a[0])),
            }
        }
    }

    pub(super) fn on_keepalive(&mut self, d: &RawDirective) {
        if self.arity(d, 2, 2) {
            if let (Some(i), Some(t)) = (self.num(d, 0), self.num(d, 1)) {
                self.p.keepalive = Some((i, t));
                self.honour(
                    d,
                    format!("pings every {i} s, restarts after {t} s of silence"),
                );
            }
        }
    }

    pub(super) fn on_inactive(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 2) {
            let b = match a.get(1) {
                Some(s) => match s.parse::<u64>() {
                    Ok(b) => Some(b),
                    Err(_) => {
                        self.error(d, format!("needs a whole number, not {s:?}"));
                        return;
                    }
                },
                None => None,
            };
            if let Some(n) = self.num(d, 0) {
                self.p.inactive = Some((n, b));
                self.not_applied(d, format!("is not applied yet (disconnecting after {n} s without traffic): the session stays up"));
            }
        }
    }
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::conn(&["connect-timeout", "server-poll-timeout"], HONOURED, "how long a server has to answer before the next is tried", Builder::on_connect_timeout),
    Directive::top(&["reneg-sec", "hand-window", "tls-timeout", "ping", "ping-restart"], HONOURED, "a timer of the control channel or keepalive, in seconds", Builder::on_reneg_sec),
    Directive::top(&["ping-exit"], UNSUPPORTED, "is not applied yet: the session is not ended on silence (ping-restart, when set, reconnects)", Builder::on_reneg_sec),
    Directive::top(&["reneg-bytes", "reneg-pkts"], HONOURED, "renegotiates keys after this many bytes or packets", Builder::on_reneg_bytes),
    Directive::top(&["keepalive"], HONOURED, "pings every N s, restarts after M s of silence", Builder::on_keepalive),
    Directive::top(&["inactive"], UNSUPPORTED, "is not applied yet: the session stays up without traffic", Builder::on_inactive),
];
