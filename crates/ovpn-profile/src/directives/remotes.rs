//! Servers and how to reach them: `remote`, `<connection>`, `proto`/`port`, the retry rules.

use crate::build::*;
use crate::material;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::Severity;

use super::*;

impl Builder {
    pub(super) fn on_remote(&mut self, d: &RawDirective) {
        self.saw_top_remote.get_or_insert(d.line);
        if let Some(r) = self.remote(d) {
            self.p.remotes.push(r);
        }
    }

    pub(super) fn on_remote_random(&mut self, d: &RawDirective) {
        self.p.remote_random = true;
        self.honour(
            d,
            "tries the servers in a random order, chosen once per connection",
        );
    }

    pub(super) fn on_resolv_retry(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            if a[0] == "infinite" {
                self.p.resolv_retry = None;
                self.honour(d, "keeps retrying when a server name does not resolve");
            } else if let Some(n) = self.num(d, 0) {
                self.p.resolv_retry = Some(n);
                self.honour(
                    d,
                    format!("gives up when server names do not resolve for {n} s"),
                );
            }
        }
    }

    pub(super) fn on_proto(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            if let Some(p) = self.proto(d, &a[0]) {
                o.proto = Some(p);
                self.honour(d, format!("default protocol {}", p.as_str()));
            }
        }
    }

    pub(super) fn on_port(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            if let Some(p) = self.port(d, &a[0]) {
                o.port = Some(p);
                self.honour(d, format!("default server port {p}"));
            }
        }
    }

    pub(super) fn on_connect_retry(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 2) {
            let n = self.num(d, 0);
            let m = if a.len() > 1 {
                self.num(d, 1).map(Some)
            } else {
                Some(None)
            };
            if let (Some(n), Some(m)) = (n, m) {
                o.connect_retry = Some((n, m));
                let cap = m.map_or(String::new(), |m| format!(", at most {m} s"));
                self.honour(d, format!("waits {n} s between connection attempts, longer after five rounds of failures{cap}"));
            }
        }
    }

    pub(super) fn on_connect_retry_max(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        if self.arity(d, 1, 1) {
            if let Some(n) = self.num(d, 0) {
                o.connect_retry_max = Some(n);
                self.honour(
                    d,
                    format!("gives up after trying each server {n} times without success"),
                );
            }
        }
    }

    pub(super) fn on_nobind(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        o.nobind = true;
        self.honour(d, "uses any local port");
    }

    pub(super) fn on_float(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        o.float = true;
        self.not_applied(
            d,
            "is not applied yet: OxiVPN only accepts packets from the address it connected to",
        );
    }

    pub(super) fn on_explicit_exit_notify(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 0, 1) {
            let n = if a.is_empty() {
                Some(1)
            } else {
                self.num(d, 0)
            };
            if let Some(n) = n {
                o.explicit_exit_notify = Some(n);
                self.honour(d, "tells the server when disconnecting");
            }
        }
    }

    pub(crate) fn port(&mut self, d: &RawDirective, s: &str) -> Option<u16> {
        match s.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                let what = if material::looks_like_placeholder(s)
                    || s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                {
                    format!("has the template placeholder {s:?} where a port number belongs")
                } else {
                    format!("has {s:?} where a port number (1-65535) belongs")
                };
                self.error(d, what);
                None
            }
        }
    }

    pub(crate) fn proto(&mut self, d: &RawDirective, s: &str) -> Option<Proto> {
        if let Some(p) = Proto::parse(s) {
            return Some(p);
        }
        if s.ends_with("-server") {
            self.strong_server
                .get_or_insert((d.line, format!("proto {s}")));
            return None;
        }
        self.error(
            d,
            format!("names the unknown protocol {s:?} (use udp or tcp)"),
        );
        None
    }

    pub(super) fn remote(&mut self, d: &RawDirective) -> Option<Remote> {
        if !self.arity(d, 1, 3) {
            return None;
        }
        let a = &d.args;
        let host = &a[0];
        if !valid_host(host) {
            if material::looks_like_placeholder(host) || host.contains('$') {
                self.error(
                    d,
                    format!(
                        "has the template placeholder {host:?} where the server address belongs"
                    ),
                );
            } else {
                self.error(
                    d,
                    format!("has {host:?}, which is not a host name or IP address"),
                );
            }
            return None;
        }
        let port = match a.get(1) {
            Some(p) => Some(self.port(d, p)?),
            None => None,
        };
        let proto = match a.get(2) {
            Some(p) => Some(self.proto(d, p)?),
            None => None,
        };
        let mut m = format!("server {host}");
        if let Some(p) = port {
            m.push_str(&format!(" port {p}"));
        }
        if let Some(p) = proto {
            m.push_str(&format!(" over {}", p.as_str()));
        }
        self.honour(d, m);
        Some(Remote {
            host: host.clone(),
            port,
            proto,
        })
    }

    pub(super) fn connection(&mut self, d: &RawDirective) {
        let Some(block) = &d.block else { return };
        let mut opts = self.p.conn.clone();
        let mut remote: Option<Remote> = None;
        let mut remotes_seen = 0;
        for c in &block.children {
            if let Some(r) = super::refusal(&c.name, &c.args) {
                self.refuse(c, r.reason);
                continue;
            }
            if c.name == "remote" {
                remotes_seen += 1;
                if let Some(r) = self.remote(c) {
                    remote = Some(r);
                }
                continue;
            }
            match super::lookup(&c.name) {
                Some(e) if e.in_connection => match e.handler {
                    super::Handler::Conn(f) => f(self, &mut opts, c),
                    _ => self.other(c),
                },
                _ => self.error(c, "is not allowed inside a <connection> block"),
            }
        }
        if remotes_seen > 1 {
            self.push(d.line, "connection", Severity::Info, "this <connection> block has several remote lines; as in OpenVPN, only the last is used");
        }
        match remote {
            Some(remote) => self.p.connections.push(Connection {
                remote,
                options: opts,
            }),
            None if remotes_seen == 0 => self.error(d, "block has no remote line"),
            None => {}
        }
    }
}

pub(crate) fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(&["remote"], HONOURED, "a server to connect to (tried in order, or shuffled with remote-random)", Builder::on_remote).in_connection(),
    Directive::top(&["remote-random"], HONOURED, "tries the servers in a random order, chosen once per connection", Builder::on_remote_random),
    Directive::top(&["resolv-retry"], HONOURED, "how long to keep retrying a server name that does not resolve", Builder::on_resolv_retry),
    Directive::top(&["connection"], HONOURED, "a server with its own options, tried in order, failing over on refusal, timeout or TLS failure", Builder::connection),
    Directive::conn(&["proto"], HONOURED, "default protocol (udp, tcp-client)", Builder::on_proto),
    Directive::conn(&["port", "rport"], HONOURED, "default server port", Builder::on_port),
    Directive::conn(&["connect-retry"], HONOURED, "wait between connection attempts, doubling after five failed rounds", Builder::on_connect_retry),
    Directive::conn(&["connect-retry-max"], HONOURED, "gives up after each server failed this many times", Builder::on_connect_retry_max),
    Directive::conn(&["explicit-exit-notify"], HONOURED, "tells the server when disconnecting", Builder::on_explicit_exit_notify),
    Directive::conn(&["nobind"], HONOURED, "uses any local port", Builder::on_nobind),
    Directive::conn(&["float"], UNSUPPORTED, "is not applied yet: OxiVPN only accepts packets from the address it connected to", Builder::on_float),
];
