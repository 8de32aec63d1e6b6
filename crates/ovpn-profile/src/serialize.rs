//! Canonical `.ovpn` text of a [`Profile`]: only what OxiVPN honours, in a fixed
//! order, so that `parse(p.to_ovpn_text()) == p`. Refused and ignored directives are
//! not written, which is how an import drops them.

use std::fmt::Write as _;

use crate::lexer::quote;
use crate::profile::*;

struct Out(String);

impl Out {
    fn line(&mut self, words: &[&str]) {
        let mut first = true;
        for w in words {
            if !first {
                self.0.push(' ');
            }
            // The option name is never quoted; arguments are quoted when needed.
            if first {
                self.0.push_str(w);
            } else {
                self.0.push_str(&quote(w));
            }
            first = false;
        }
        self.0.push('\n');
    }

    fn block(&mut self, tag: &str, text: &str) {
        let _ = writeln!(self.0, "<{tag}>");
        self.0.push_str(text);
        if !text.is_empty() && !text.ends_with('\n') {
            self.0.push('\n');
        }
        let _ = writeln!(self.0, "</{tag}>");
    }

    fn material(&mut self, tag: &str, m: &Material) {
        match m {
            Material::Inline(t) => self.block(tag, t),
            Material::File(f) => self.line(&[tag, &f.path]),
        }
    }

    fn flag(&mut self, on: bool, name: &str) {
        if on {
            self.line(&[name]);
        }
    }

    fn num<T: ToString>(&mut self, v: &Option<T>, name: &str) {
        if let Some(v) = v {
            self.line(&[name, &v.to_string()]);
        }
    }

    fn conn(&mut self, o: &ConnOptions) {
        if let Some(p) = o.proto {
            self.line(&["proto", p.as_str()]);
        }
        self.num(&o.port, "port");
        if let Some((n, m)) = o.connect_retry {
            match m {
                Some(m) => self.line(&["connect-retry", &n.to_string(), &m.to_string()]),
                None => self.line(&["connect-retry", &n.to_string()]),
            }
        }
        self.num(&o.connect_retry_max, "connect-retry-max");
        self.num(&o.connect_timeout, "connect-timeout");
        self.num(&o.server_poll_timeout, "server-poll-timeout");
        self.num(&o.explicit_exit_notify, "explicit-exit-notify");
        self.num(&o.tun_mtu, "tun-mtu");
        match o.mssfix {
            Some(Mssfix { max: Some(n), unit }) => {
                let n = n.to_string();
                let mut words = vec!["mssfix", n.as_str()];
                words.extend(unit.keyword());
                self.line(&words);
            }
            Some(Mssfix { max: None, .. }) => self.line(&["mssfix"]),
            None => {}
        }
        self.flag(o.float, "float");
        self.flag(o.nobind, "nobind");
        if let Some(h) = &o.http_proxy {
            let port = h.port.to_string();
            let mut words: Vec<&str> = vec!["http-proxy", &h.host, &port];
            match &h.auth {
                None => {}
                Some(ProxyAuth::Auto { nct: false }) => words.push("auto"),
                Some(ProxyAuth::Auto { nct: true }) => words.push("auto-nct"),
                Some(ProxyAuth::Prompt) => words.push("stdin"),
                Some(ProxyAuth::Credentials(Credential::File(f))) => words.push(&f.path),
                Some(ProxyAuth::Credentials(Credential::Inline { username, password })) => {
                    let text = credential_text(username, password.as_deref());
                    self.block("http-proxy-user-pass", &text);
                }
            }
            if let Some(m) = &h.auth_method {
                if words.len() == 4 {
                    words.push(m);
                }
            }
            self.line(&words);
        }
        if let Some(s) = &o.socks_proxy {
            let port = s.port.to_string();
            match &s.auth {
                Some(ProxyAuth::Credentials(Credential::File(f))) => {
                    self.line(&["socks-proxy", &s.host, &port, &f.path])
                }
                Some(ProxyAuth::Prompt) => self.line(&["socks-proxy", &s.host, &port, "stdin"]),
                _ => self.line(&["socks-proxy", &s.host, &port]),
            }
        }
        let po = &o.http_proxy_options;
        if let Some(v) = &po.version {
            self.line(&["http-proxy-option", "VERSION", v]);
        }
        if let Some(a) = &po.agent {
            self.line(&["http-proxy-option", "AGENT", a]);
        }
        for (name, value) in &po.custom_headers {
            if value.is_empty() {
                self.line(&["http-proxy-option", "CUSTOM-HEADER", name]);
            } else {
                self.line(&["http-proxy-option", "CUSTOM-HEADER", name, value]);
            }
        }
    }

    fn remote(&mut self, r: &Remote) {
        let port = r.port.map(|p| p.to_string());
        let mut w: Vec<&str> = vec!["remote", &r.host];
        match (&port, r.proto) {
            (Some(p), Some(pr)) => {
                w.push(p);
                w.push(pr.as_str());
            }
            (Some(p), None) => w.push(p),
            // A protocol needs a port before it; write the default explicitly.
            (None, Some(pr)) => {
                w.push("1194");
                w.push(pr.as_str());
            }
            (None, None) => {}
        }
        self.line(&w);
    }
}

fn credential_text(user: &str, pass: Option<&str>) -> String {
    match pass {
        Some(p) => format!("{user}\n{p}\n"),
        None => format!("{user}\n"),
    }
}

impl Profile {
    /// Canonical OpenVPN text for this profile.
    pub fn to_ovpn_text(&self) -> String {
        let mut o = Out(String::new());
        let p = self;
        o.0.push_str("# Written by OxiVPN: only the directives OxiVPN honours are kept.\n");
        if p.client {
            o.line(&["client"]);
        } else {
            o.flag(p.pull, "pull");
            o.flag(p.tls_client, "tls-client");
        }
        match &p.dev {
            Some(d) => {
                o.line(&["dev", d]);
                if !d.starts_with("tun") {
                    o.line(&["dev-type", "tun"]);
                }
            }
            None => o.line(&["dev", "tun"]),
        }
        // Blocks first: they then carry exactly their own options.
        for c in &p.connections {
            o.0.push_str("<connection>\n");
            o.remote(&c.remote);
            o.conn(&c.options);
            o.0.push_str("</connection>\n");
        }
        o.conn(&p.conn);
        for r in &p.remotes {
            o.remote(r);
        }
        o.flag(p.remote_random, "remote-random");
        o.num(&p.resolv_retry, "resolv-retry");

        for (tag, m) in [
            ("ca", &p.ca),
            ("cert", &p.cert),
            ("key", &p.key),
            ("extra-certs", &p.extra_certs),
            ("pkcs12", &p.pkcs12),
        ] {
            if let Some(m) = m {
                o.material(tag, m);
            }
        }
        if let Some(k) = p.key_direction {
            o.line(&["key-direction", k.as_str()]);
        }
        if let Some(t) = &p.tls_auth {
            match (&t.key, t.direction) {
                (Material::File(f), Some(d)) => o.line(&["tls-auth", &f.path, d.as_str()]),
                (m, _) => o.material("tls-auth", m),
            }
        }
        if let Some(m) = &p.tls_crypt {
            o.material("tls-crypt", m);
        }
        if let Some(m) = &p.tls_crypt_v2 {
            o.material("tls-crypt-v2", m);
        }
        if let Some(m) = &p.crl_verify {
            o.material("crl-verify", m);
        }

        if let Some(a) = &p.auth {
            o.line(&["auth", a]);
        }
        if let Some(c) = &p.cipher {
            o.line(&["cipher", c]);
        }
        if !p.data_ciphers.is_empty() {
            o.line(&["data-ciphers", &p.data_ciphers.join(":")]);
        }
        if let Some(c) = &p.data_ciphers_fallback {
            o.line(&["data-ciphers-fallback", c]);
        }
        if let Some(v) = p.tls_version_min {
            if v.or_highest {
                o.line(&["tls-version-min", v.version.as_str(), "or-highest"]);
            } else {
                o.line(&["tls-version-min", v.version.as_str()]);
            }
        }
        if let Some(v) = p.tls_version_max {
            o.line(&["tls-version-max", v.as_str()]);
        }
        for (name, list) in [
            ("tls-cipher", &p.tls_cipher),
            ("tls-ciphersuites", &p.tls_ciphersuites),
        ] {
            if let Some(l) = list {
                let s: Vec<&str> = l.iter().map(|s| s.openssl_name()).collect();
                o.line(&[name, &s.join(":")]);
            }
        }
        if let Some(g) = &p.tls_groups {
            let s: Vec<&str> = g.iter().map(|g| g.openssl_name()).collect();
            o.line(&["tls-groups", &s.join(":")]);
        }
        if let Some(c) = &p.tls_cert_profile {
            o.line(&["tls-cert-profile", c]);
        }
        let role = |r: CertRole| {
            if r == CertRole::Server {
                "server"
            } else {
                "client"
            }
        };
        if let Some(r) = p.remote_cert_tls {
            o.line(&["remote-cert-tls", role(r)]);
        }
        if let Some(r) = p.ns_cert_type {
            o.line(&["ns-cert-type", role(r)]);
        }
        if !p.remote_cert_ku.is_empty() {
            let ku: Vec<String> = p.remote_cert_ku.iter().map(|k| format!("{k:x}")).collect();
            let mut w = vec!["remote-cert-ku"];
            w.extend(ku.iter().map(String::as_str));
            o.line(&w);
        }
        if let Some(e) = &p.remote_cert_eku {
            o.line(&["remote-cert-eku", e]);
        }
        if let Some(v) = &p.verify_x509_name {
            o.line(&["verify-x509-name", &v.name, v.kind.as_str()]);
        }
        for f in &p.peer_fingerprints {
            o.line(&["peer-fingerprint", f]);
        }
        if let Some(h) = &p.verify_hash {
            o.line(&["verify-hash", &h.hash, &h.algo]);
        }

        match &p.auth_user_pass {
            None => {}
            Some(AuthUserPass::Prompt) => o.line(&["auth-user-pass"]),
            Some(AuthUserPass::Credentials(Credential::File(f))) => {
                o.line(&["auth-user-pass", &f.path])
            }
            Some(AuthUserPass::Credentials(Credential::Inline { username, password })) => o.block(
                "auth-user-pass",
                &credential_text(username, password.as_deref()),
            ),
        }
        if let Some(s) = &p.static_challenge {
            let echo = if s.echo { "1" } else { "0" };
            if s.concat {
                o.line(&["static-challenge", &s.text, echo, "concat"]);
            } else {
                o.line(&["static-challenge", &s.text, echo]);
            }
        }
        o.flag(p.auth_nocache, "auth-nocache");
        if let Some(r) = p.auth_retry {
            let s = match r {
                AuthRetry::None => "none",
                AuthRetry::NoInteract => "nointeract",
                AuthRetry::Interact => "interact",
            };
            o.line(&["auth-retry", s]);
        }
        o.flag(p.push_peer_info, "push-peer-info");
        for (k, v) in &p.setenv {
            o.line(&["setenv", k, v]);
        }

        o.flag(p.route_nopull, "route-nopull");
        for f in &p.pull_filters {
            let a = match f.action {
                PullFilterAction::Accept => "accept",
                PullFilterAction::Ignore => "ignore",
                PullFilterAction::Reject => "reject",
            };
            o.line(&["pull-filter", a, &f.text]);
        }
        for r in &p.routes {
            let metric = r.metric.map(|m| m.to_string());
            let mut w: Vec<&str> = vec!["route", &r.network];
            let fields = [
                r.netmask.as_deref(),
                r.gateway.as_deref(),
                metric.as_deref(),
            ];
            let last = fields.iter().rposition(Option::is_some);
            if let Some(last) = last {
                for f in &fields[..=last] {
                    w.push(f.unwrap_or("default"));
                }
            }
            o.line(&w);
        }
        for r in &p.routes_ipv6 {
            let metric = r.metric.map(|m| m.to_string());
            let mut w: Vec<&str> = vec!["route-ipv6", &r.network];
            if let Some(g) = &r.gateway {
                w.push(g);
                if let Some(m) = &metric {
                    w.push(m);
                }
            }
            o.line(&w);
        }
        for (name, g) in [
            ("redirect-gateway", &p.redirect_gateway),
            ("redirect-private", &p.redirect_private),
        ] {
            if let Some(g) = g {
                let mut w = vec![name];
                w.extend(g.flags.iter().map(String::as_str));
                o.line(&w);
            }
        }
        for d in &p.dhcp_options {
            match &d.value {
                Some(v) => o.line(&["dhcp-option", &d.kind, v]),
                None => o.line(&["dhcp-option", &d.kind]),
            }
        }
        for d in &p.dns {
            let mut w = vec!["dns"];
            w.extend(d.iter().map(String::as_str));
            o.line(&w);
        }
        o.flag(p.block_outside_dns, "block-outside-dns");
        o.num(&p.route_metric, "route-metric");
        if let Some((n, w)) = p.route_delay {
            match w {
                Some(w) => o.line(&["route-delay", &n.to_string(), &w.to_string()]),
                None => o.line(&["route-delay", &n.to_string()]),
            }
        }
        o.num(&p.reneg_sec, "reneg-sec");
        o.num(&p.reneg_bytes, "reneg-bytes");
        o.num(&p.reneg_pkts, "reneg-pkts");
        o.num(&p.hand_window, "hand-window");
        o.num(&p.tls_timeout, "tls-timeout");
        o.num(&p.ping, "ping");
        o.num(&p.ping_restart, "ping-restart");
        o.num(&p.ping_exit, "ping-exit");
        if let Some((i, t)) = p.keepalive {
            o.line(&["keepalive", &i.to_string(), &t.to_string()]);
        }
        if let Some((n, b)) = p.inactive {
            match b {
                Some(b) => o.line(&["inactive", &n.to_string(), &b.to_string()]),
                None => o.line(&["inactive", &n.to_string()]),
            }
        }
        for (name, v) in [
            ("comp-lzo", &p.compression.comp_lzo),
            ("compress", &p.compression.compress),
        ] {
            match v {
                Some(Some(a)) => o.line(&[name, a]),
                Some(None) => o.line(&[name]),
                None => {}
            }
        }
        if let Some(a) = &p.compression.allow_compression {
            o.line(&["allow-compression", a]);
        }
        o.0
    }
}
