//! HTTP and SOCKS proxies.

use crate::build::*;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::FileKind;

use super::*;

impl Builder {
    pub(super) fn on_socks_proxy(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 3) && valid_or_err(self, d, &a[0]) {
            let port = if a.len() > 1 {
                self.port(d, &a[1])
            } else {
                Some(1080)
            };
            if let Some(port) = port {
                let auth = match a.get(2).map(String::as_str) {
                    None => None,
                    Some("stdin") => Some(ProxyAuth::Prompt),
                    Some(_) => self
                        .credential(d, FileKind::HttpProxyUserPass, 2)
                        .map(ProxyAuth::Credentials),
                };
                let how = if auth.is_some() {
                    " with a user name and password (RFC 1929)"
                } else {
                    ""
                };
                o.socks_proxy = Some(SocksProxy {
                    host: a[0].clone(),
                    port,
                    auth,
                });
                self.honour(
                    d,
                    format!("connects through the SOCKS5 proxy {}:{port}{how} (TCP: CONNECT, UDP: UDP ASSOCIATE)", a[0]),
                );
            }
        }
    }

    pub(super) fn on_http_proxy_user_pass(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        if let Some(c) = self.credential(d, FileKind::HttpProxyUserPass, 0) {
            if let Some(HttpProxy { auth, .. }) = o.http_proxy.as_mut() {
                *auth = Some(ProxyAuth::Credentials(c.clone()));
            }
            self.http_proxy_user_pass = Some(c);
        }
    }

    pub(super) fn http_proxy(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if !self.arity(d, 2, 4) || !valid_or_err(self, d, &a[0]) {
            return;
        }
        let Some(port) = self.port(d, &a[1]) else {
            return;
        };
        let auth = match a.get(2).map(String::as_str) {
            None => self
                .http_proxy_user_pass
                .clone()
                .map(ProxyAuth::Credentials),
            Some("auto") => Some(ProxyAuth::Auto { nct: false }),
            Some("auto-nct") => Some(ProxyAuth::Auto { nct: true }),
            Some("stdin") => Some(ProxyAuth::Prompt),
            Some(_) => self
                .credential(d, FileKind::HttpProxyUserPass, 2)
                .map(ProxyAuth::Credentials),
        };
        let auth_method = a.get(3).cloned();
        let how = match &auth {
            None => "",
            Some(ProxyAuth::Auto { .. }) => {
                ", Basic authentication when the proxy asks for it (407)"
            }
            Some(_) => " with Basic authentication",
        };
        let host = a[0].clone();
        if let Some(m) = auth_method.as_deref() {
            if !m.eq_ignore_ascii_case("basic") && !m.eq_ignore_ascii_case("none") {
                self.error(
                    d,
                    format!(
                        "asks for the proxy authentication method {m:?}; OxiVPN speaks only basic"
                    ),
                );
                return;
            }
        }
        o.http_proxy = Some(HttpProxy {
            host: host.clone(),
            port,
            auth,
            auth_method,
        });
        self.honour(
            d,
            format!("connects through the HTTP proxy {host}:{port} (CONNECT; TCP only){how}"),
        );
    }

    /// `http-proxy-option VERSION v | AGENT text | CUSTOM-HEADER name [value]`.
    pub(super) fn http_proxy_option(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        let a = &d.args;
        if !self.arity(d, 1, 3) {
            return;
        }
        let header_safe = |s: &str| !s.chars().any(|c| c.is_control());
        let po = &mut o.http_proxy_options;
        match a[0].to_ascii_uppercase().as_str() {
            "VERSION" if a.len() == 2 && (a[1] == "1.0" || a[1] == "1.1") => {
                po.version = Some(a[1].clone());
                let m = format!("speaks HTTP/{} to the proxy", a[1]);
                self.honour(d, m);
            }
            "VERSION" => self.error(d, "VERSION takes 1.0 or 1.1"),
            "AGENT" if a.len() == 2 && header_safe(&a[1]) => {
                po.agent = Some(a[1].clone());
                self.honour(d, "sends this User-Agent to the proxy");
            }
            "CUSTOM-HEADER"
                if a.len() >= 2
                    && !a[1].trim_end_matches(':').is_empty()
                    && a[1].chars().all(|c| c.is_ascii_graphic())
                    && a.get(2).is_none_or(|v| header_safe(v)) =>
            {
                // Written as `Name:` in some profiles; OpenVPN sends "name: value".
                let name = a[1].trim_end_matches(':').to_owned();
                let value = a.get(2).cloned().unwrap_or_default();
                let m = format!("sends the header {name} to the proxy");
                po.custom_headers.push((name, value));
                self.honour(d, m);
            }
            "AGENT" | "CUSTOM-HEADER" => self.error(
                d,
                "needs a header name (printable, no spaces) and a value without control characters",
            ),
            other => self.error(
                d,
                format!("{other:?} is not an option OxiVPN knows (VERSION, AGENT, CUSTOM-HEADER)"),
            ),
        }
    }
}

pub(crate) fn valid_or_err(b: &mut Builder, d: &RawDirective, host: &str) -> bool {
    if super::remotes::valid_host(host) {
        return true;
    }
    b.error(
        d,
        format!("has {host:?}, which is not a host name or IP address"),
    );
    false
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::conn(
        &["http-proxy"],
        HONOURED,
        "connects through an HTTP proxy (CONNECT, Basic authentication; TCP only)",
        Builder::http_proxy,
    )
    .guard(Guard::Inline(InlineRule::HttpProxy)),
    Directive::conn(
        &["http-proxy-option"],
        HONOURED,
        "VERSION, AGENT and CUSTOM-HEADER for the HTTP proxy",
        Builder::http_proxy_option,
    ),
    Directive::conn(
        &["http-proxy-user-pass"],
        HONOURED,
        "the HTTP proxy's user name and password (moved to the keyring)",
        Builder::on_http_proxy_user_pass,
    )
    .guard(Guard::UsesFile),
    Directive::conn(
        &["socks-proxy"],
        HONOURED,
        "connects through a SOCKS5 proxy (RFC 1928/1929; UDP through UDP ASSOCIATE)",
        Builder::on_socks_proxy,
    )
    .guard(Guard::SocksProxy),
];
