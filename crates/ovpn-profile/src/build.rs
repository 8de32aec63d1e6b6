//! Raw directives to a typed [`Profile`] plus findings, following OpenVPN 2.6's
//! `add_option()` rules: most options are last-wins; `remote`, `route`,
//! `route-ipv6`, `pull-filter`, `dhcp-option`, `dns`, `setenv` and `peer-fingerprint`
//! accumulate; `<connection>` blocks start from the options set so far.

use std::collections::BTreeSet;

use crate::classify::{self, Class};
use crate::material;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::{FileKind, FileNeed, Finding, Report, Severity};
use crate::tls_names::{self, Mapped};

/// Options OpenVPN allows inside `<connection>` (OPT_P_CONNECTION).
const CONNECTION_OPTS: &[&str] = &[
    "remote",
    "proto",
    "port",
    "rport",
    "lport",
    "bind",
    "nobind",
    "local",
    "connect-retry",
    "connect-retry-max",
    "connect-timeout",
    "http-proxy",
    "http-proxy-option",
    "http-proxy-retry",
    "http-proxy-timeout",
    "http-proxy-user-pass",
    "socks-proxy",
    "socks-proxy-retry",
    "explicit-exit-notify",
    "tun-mtu",
    "tun-mtu-extra",
    "link-mtu",
    "mssfix",
    "fragment",
    "float",
    "server-poll-timeout",
    "mtu-disc",
];

pub(crate) struct Builder {
    p: Profile,
    findings: Vec<Finding>,
    needs: Vec<FileNeed>,
    /// Reasons the profile cannot be used, in order found.
    fatal: Vec<String>,
    ignore_unknown: BTreeSet<String>,
    server_hints: Vec<(u32, String)>,
    strong_server: Option<(u32, String)>,
    dev_type_tun: bool,
    dev_line: u32,
    saw_top_remote: Option<u32>,
    setenv_index: std::collections::HashMap<String, usize>,
    /// Inline `<http-proxy-user-pass>` seen so far (applies to http-proxy lines).
    http_proxy_user_pass: Option<Credential>,
    /// Line of the last `cipher` directive (for the legacy-cipher remark).
    cipher_line: u32,
}

fn u32_arg(s: &str) -> Option<u32> {
    s.parse::<u32>().ok()
}

fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
}

fn how_to_inline(kind: FileKind, path: &str) -> String {
    let tag = kind.directive();
    // Absolute paths from someone else's machine rarely exist here: the resolver
    // also looks for the bare file name next to the profile.
    let absolute = path.starts_with('/') || path.starts_with('\\') || path.get(1..3) == Some(":\\");
    let base = if absolute {
        path.rsplit(['/', '\\'])
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or(path)
    } else {
        path
    };
    if kind == FileKind::Askpass {
        return format!(
            "put a file named {base:?} (the passphrase on line 1) next to the profile, \
             or remove the line: OxiVPN asks for the passphrase and can keep it in the system keyring"
        );
    }
    if kind.is_credentials() {
        return format!(
            "put a file named {base:?} (user name on line 1, password on line 2) next to the profile; \
             OxiVPN keeps them in the system keyring, not in the profile"
        );
    }
    match kind {
        FileKind::Pkcs12 => format!(
            "put {base:?} next to the profile, or replace this line with <pkcs12>, \
             the file's content in base64, and </pkcs12>"
        ),
        _ => format!(
            "put {base:?} next to the profile, or replace this line with <{tag}>, \
             the file's content, and </{tag}>"
        ),
    }
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder {
            p: Profile::default(),
            findings: Vec::new(),
            needs: Vec::new(),
            fatal: Vec::new(),
            ignore_unknown: BTreeSet::new(),
            server_hints: Vec::new(),
            strong_server: None,
            dev_type_tun: false,
            dev_line: 0,
            saw_top_remote: None,
            http_proxy_user_pass: None,
            cipher_line: 0,
            setenv_index: std::collections::HashMap::new(),
        }
    }

    fn push(&mut self, line: u32, d: &str, severity: Severity, message: impl Into<String>) {
        self.findings.push(Finding {
            line: Some(line),
            directive: d.to_string(),
            severity,
            message: message.into(),
        });
    }

    fn honour(&mut self, d: &RawDirective, msg: impl Into<String>) {
        self.push(d.line, &d.name, Severity::Honoured, msg);
    }

    /// Understood and kept in the profile, but nothing in OxiVPN carries it out yet:
    /// the report says so instead of "honoured".
    fn not_applied(&mut self, d: &RawDirective, why: impl Into<String>) {
        self.push(d.line, &d.name, Severity::Unsupported, why);
    }

    fn error(&mut self, d: &RawDirective, msg: impl Into<String>) {
        let msg = msg.into();
        self.fatal.push(reason_line(d.line, &d.name, &msg));
        self.push(d.line, &d.name, Severity::Error, msg);
    }

    fn unsupported(&mut self, d: &RawDirective, reason: &str, fatal: bool) {
        if fatal {
            self.fatal.push(reason_line(d.line, &d.name, reason));
        }
        self.push(d.line, &d.name, Severity::Unsupported, reason.to_string());
    }

    /// Check the argument count; an error finding when wrong.
    fn arity(&mut self, d: &RawDirective, min: usize, max: usize) -> bool {
        let n = d.args.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            self.error(d, format!("expects {want} argument(s) but has {n}"));
            return false;
        }
        true
    }

    fn num(&mut self, d: &RawDirective, idx: usize) -> Option<u32> {
        let s = d.args.get(idx)?;
        let v = u32_arg(s);
        if v.is_none() {
            self.error(d, format!("needs a whole number, not {s:?}"));
        }
        v
    }

    /// A profile that names `cipher` but no `data-ciphers` was written for
    /// servers that negotiate no cipher: say what OxiVPN does with it.
    fn legacy_cipher_remark(&self) -> Option<String> {
        if !self.p.data_ciphers.is_empty() {
            return None;
        }
        let c = self.p.cipher.as_deref()?;
        // 64-bit block ciphers (the list ovpn-core's cipher_choice refuses).
        let sixty_four = ["BF-", "DES-", "DESX-", "CAST5-", "IDEA-", "RC2-"]
            .iter()
            .any(|p| c.starts_with(p));
        let supported = [
            "AES-128-GCM",
            "AES-192-GCM",
            "AES-256-GCM",
            "CHACHA20-POLY1305",
            "AES-128-CBC",
            "AES-192-CBC",
            "AES-256-CBC",
        ]
        .contains(&c);
        let offered = "OxiVPN offers AES-256-GCM, AES-128-GCM and CHACHA20-POLY1305 to a server that negotiates";
        Some(if sixty_four {
            format!("legacy cipher: the profile names only cipher {c} (no data-ciphers), for servers that negotiate no cipher. {c} is a 64-bit block cipher open to the SWEET32 attack, which OxiVPN refuses: {offered}, and cannot connect to a server that insists on {c}")
        } else if !supported {
            format!("legacy cipher: the profile names only cipher {c} (no data-ciphers), for servers that negotiate no cipher. OxiVPN does not support {c}: {offered}, and cannot connect to a server that insists on {c}")
        } else {
            format!("legacy cipher: the profile names only cipher {c} (no data-ciphers), for servers that negotiate no cipher. {offered}; with a server that does not, OxiVPN uses {c} and shows a legacy-cipher warning when connected")
        })
    }

    /// `mssfix [max [mtu|fixed]]` (arity already checked).
    fn mssfix(&mut self, d: &RawDirective) -> Option<Mssfix> {
        if d.args.is_empty() {
            return Some(Mssfix {
                max: None,
                unit: MssfixUnit::Mtu,
            });
        }
        let max = self.num(d, 0)?;
        if max > 65535 {
            self.error(d, format!("size {max} is larger than 65535"));
            return None;
        }
        let unit = match d.args.get(1).map(String::as_str) {
            None => MssfixUnit::Packet,
            Some("mtu") => MssfixUnit::Mtu,
            Some("fixed") => MssfixUnit::Fixed,
            Some(other) => {
                self.error(
                    d,
                    format!("unknown parameter {other:?} (expected \"mtu\" or \"fixed\")"),
                );
                return None;
            }
        };
        Some(Mssfix {
            max: Some(max),
            unit,
        })
    }

    fn port(&mut self, d: &RawDirective, s: &str) -> Option<u16> {
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

    fn proto(&mut self, d: &RawDirective, s: &str) -> Option<Proto> {
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

    /// Forget an earlier "needs file" of the same kind (OpenVPN: last one wins).
    fn replace_need(&mut self, kind: FileKind) {
        self.needs.retain(|n| n.kind != kind);
    }

    fn file_need(&mut self, d: &RawDirective, kind: FileKind, raw: &[u8]) -> FileRef {
        let path = String::from_utf8_lossy(raw).into_owned();
        self.replace_need(kind);
        let how = how_to_inline(kind, &path);
        self.needs.push(FileNeed {
            line: Some(d.line),
            kind,
            path: path.clone(),
            raw_path: raw.to_vec(),
            how_to_inline: how.clone(),
        });
        self.push(
            d.line,
            &d.name,
            Severity::NeedsFile,
            format!("needs the file {path:?}: {how}"),
        );
        FileRef {
            path,
            raw: raw.to_vec(),
        }
    }

    /// `ca`/`cert`/... : inline block or file name.
    fn material(
        &mut self,
        d: &RawDirective,
        kind: FileKind,
        has_direction: bool,
    ) -> Option<Material> {
        if let Some(b) = &d.block {
            self.replace_need(kind);
            match material::check(kind, &b.text, has_direction) {
                Ok(okm) => {
                    let extra = if okm.needs_passphrase {
                        "; OxiVPN will ask for its passphrase"
                    } else {
                        ""
                    };
                    self.honour(d, format!("inline {}{extra}", okm.summary));
                    if let Some(w) = okm.warning {
                        self.push(d.line, &d.name, Severity::Info, w);
                    }
                }
                Err(e) => self.error(d, e),
            }
            return Some(Material::Inline(b.text.clone()));
        }
        match d.raw_args.first() {
            Some(a) if a.as_slice() == b"[inline]" => {
                self.error(d, "says [inline] but no inline block follows");
                None
            }
            Some(a) if !a.is_empty() => {
                if looks_placeholder_bytes(a) {
                    self.error(
                        d,
                        format!(
                            "names the template placeholder {:?} instead of a file",
                            d.args[0]
                        ),
                    );
                    return None;
                }
                Some(Material::File(self.file_need(d, kind, &a.clone())))
            }
            _ => {
                self.error(d, "needs a file name or an inline block");
                None
            }
        }
    }

    fn credential(
        &mut self,
        d: &RawDirective,
        kind: FileKind,
        arg_idx: usize,
    ) -> Option<Credential> {
        if let Some(b) = &d.block {
            return match material::parse_credentials(&b.text) {
                Ok((username, password)) => {
                    self.honour(d, "inline user name (and password): OxiVPN moves them to the system keyring on import");
                    Some(Credential::Inline { username, password })
                }
                Err(e) => {
                    self.error(d, e);
                    None
                }
            };
        }
        let raw = d.raw_args.get(arg_idx)?.clone();
        Some(Credential::File(self.file_need(d, kind, &raw)))
    }

    fn apply_conn(&mut self, o: &mut ConnOptions, d: &RawDirective) -> bool {
        let a = &d.args;
        match d.name.as_str() {
            "proto" => {
                if self.arity(d, 1, 1) {
                    if let Some(p) = self.proto(d, &a[0]) {
                        o.proto = Some(p);
                        self.honour(d, format!("default protocol {}", p.as_str()));
                    }
                }
            }
            "port" | "rport" => {
                if self.arity(d, 1, 1) {
                    if let Some(p) = self.port(d, &a[0]) {
                        o.port = Some(p);
                        self.honour(d, format!("default server port {p}"));
                    }
                }
            }
            "connect-retry" => {
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
            "connect-retry-max" => {
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
            "connect-timeout" | "server-poll-timeout" => {
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
                            format!(
                                "waits at most {n} s for a server to answer before trying the next"
                            ),
                        );
                    }
                }
            }
            "explicit-exit-notify" => {
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
            "tun-mtu" => {
                if self.arity(d, 1, 2) {
                    if let Some(n) = self.num(d, 0) {
                        o.tun_mtu = Some(n);
                        self.honour(d, format!("tunnel MTU {n}"));
                    }
                }
            }
            "mssfix" => {
                if self.arity(d, 0, 2) {
                    if let Some(m) = self.mssfix(d) {
                        let what = match (m.max, m.unit) {
                            (None, _) => "clamps the TCP segment size (MSS) of tunnelled connections to OpenVPN 2.6's default: packets fit 1492 bytes with IP and UDP headers (or the tun-mtu when one is set)".to_string(),
                            (Some(0), _) => "turns MSS clamping off: tunnelled TCP connections keep the segment size they ask for (OpenVPN 2.6 clamps by default)".to_string(),
                            (Some(n), MssfixUnit::Mtu) => format!("clamps the TCP segment size (MSS) of tunnelled connections so their packets fit {n} bytes, IP and UDP headers included"),
                            (Some(n), MssfixUnit::Packet) => format!("clamps the TCP segment size (MSS) of tunnelled connections so their encrypted packets fit {n} bytes (outer IP and UDP headers not counted)"),
                            (Some(n), MssfixUnit::Fixed) => format!("clamps the TCP segment size (MSS) of tunnelled connections to {}", n.saturating_sub(40)),
                        };
                        o.mssfix = Some(m);
                        self.honour(d, what);
                    }
                }
            }
            "float" => {
                o.float = true;
                self.not_applied(d, "is not applied yet: OxiVPN only accepts packets from the address it connected to");
            }
            "nobind" => {
                o.nobind = true;
                self.honour(d, "uses any local port");
            }
            "http-proxy" => self.http_proxy(o, d),
            "socks-proxy" => {
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
            "http-proxy-option" => self.http_proxy_option(o, d),
            "http-proxy-user-pass" => {
                if let Some(c) = self.credential(d, FileKind::HttpProxyUserPass, 0) {
                    if let Some(HttpProxy { auth, .. }) = o.http_proxy.as_mut() {
                        *auth = Some(ProxyAuth::Credentials(c.clone()));
                    }
                    self.http_proxy_user_pass = Some(c);
                }
            }
            "fragment" | "link-mtu" | "tun-mtu-extra" | "mtu-disc" | "lport" | "bind" | "local"
            | "http-proxy-retry" | "http-proxy-timeout" | "socks-proxy-retry" => return false,
            _ => return false,
        }
        true
    }

    fn http_proxy(&mut self, o: &mut ConnOptions, d: &RawDirective) {
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
    fn http_proxy_option(&mut self, o: &mut ConnOptions, d: &RawDirective) {
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

    fn remote(&mut self, d: &RawDirective) -> Option<Remote> {
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

    fn connection(&mut self, d: &RawDirective) {
        let Some(block) = &d.block else { return };
        let mut opts = self.p.conn.clone();
        let mut remote: Option<Remote> = None;
        let mut remotes_seen = 0;
        for c in &block.children {
            if let Some(r) = classify::refused_with_args(&c.name, &c.args) {
                self.refuse(c, r);
                continue;
            }
            if c.name == "remote" {
                remotes_seen += 1;
                if let Some(r) = self.remote(c) {
                    remote = Some(r);
                }
                continue;
            }
            if !CONNECTION_OPTS.contains(&c.name.as_str()) {
                self.error(c, "is not allowed inside a <connection> block");
                continue;
            }
            if !self.apply_conn(&mut opts, c) {
                self.other(c);
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

    fn refuse(&mut self, d: &RawDirective, reason: &str) {
        if classify::server_only(&d.name) {
            self.server_hints.push((d.line, d.name.clone()));
        }
        let mut msg = format!("refused, not carried out: {reason}");
        let joined = d.args.join(" ");
        if matches!(
            d.name.to_ascii_lowercase().as_str(),
            "up" | "down" | "route-up" | "route-pre-down"
        ) && (joined.contains("resolv") || joined.contains("dns") || joined.contains("DNS"))
        {
            msg = "refused, not carried out: OxiVPN sets DNS itself (this script only updates DNS)"
                .into();
        } else if d.name.eq_ignore_ascii_case("script-security") {
            msg = "refused: allows profile scripts to run; OxiVPN never runs them".into();
        }
        if d.name != d.name.to_ascii_lowercase() {
            msg.push_str(" (OpenVPN option names are case-sensitive, but any spelling of this one is refused to be safe)");
        }
        self.push(d.line, &d.name, Severity::Refused, msg);
    }

    /// Directives without a typed field.
    fn other(&mut self, d: &RawDirective) {
        match classify::classify(&d.name) {
            Some(Class::Refused(r)) => self.refuse(d, r),
            Some(Class::Ignored(r)) => self.push(d.line, &d.name, Severity::Ignored, r),
            Some(Class::Unsupported { reason, fatal }) => self.unsupported(d, reason, fatal),
            Some(Class::Server) => {
                self.server_hints.push((d.line, d.name.clone()));
                self.push(
                    d.line,
                    &d.name,
                    Severity::Ignored,
                    "is a server option; it has no effect in a client",
                );
            }
            None => {
                if self.ignore_unknown.contains(&d.name) {
                    self.push(
                        d.line,
                        &d.name,
                        Severity::Ignored,
                        "unknown option, listed in ignore-unknown-option",
                    );
                } else if d.name.starts_with("//") || d.name.starts_with("/*") {
                    self.error(d, "is not an OpenVPN comment (comments start with # or ;)");
                } else {
                    self.push(
                        d.line,
                        &d.name,
                        Severity::Unsupported,
                        "is not an option OxiVPN knows (OpenVPN 2.6 would refuse it); ignored",
                    );
                }
            }
        }
    }

    fn set_material(&mut self, d: &RawDirective, kind: FileKind) {
        let m = self.material(d, kind, false);
        let slot = match kind {
            FileKind::Ca => &mut self.p.ca,
            FileKind::Cert => &mut self.p.cert,
            FileKind::Key => &mut self.p.key,
            FileKind::ExtraCerts => &mut self.p.extra_certs,
            FileKind::Pkcs12 => &mut self.p.pkcs12,
            FileKind::TlsCrypt => &mut self.p.tls_crypt,
            FileKind::TlsCryptV2 => &mut self.p.tls_crypt_v2,
            FileKind::CrlVerify => &mut self.p.crl_verify,
            _ => return,
        };
        if m.is_some() {
            *slot = m;
        }
    }

    fn tls_list(&mut self, d: &RawDirective) {
        if !self.arity(d, 1, 1) {
            return;
        }
        let list = &d.args[0];
        let name = d.name.as_str();
        if name == "tls-groups" {
            match tls_names::map_groups(list) {
                Mapped::Names { kept, dropped } => {
                    self.tls_result(d, kept, dropped, |p, v| p.tls_groups = v)
                }
                Mapped::Keywords => {}
            }
            return;
        }
        match tls_names::map_suites(list) {
            Mapped::Keywords => {
                if name == "tls-cipher" {
                    self.p.tls_cipher = None;
                } else {
                    self.p.tls_ciphersuites = None;
                }
                self.push(d.line, name, Severity::Ignored, "uses OpenSSL keywords; OxiVPN uses its own strong defaults (ECDHE with AES-GCM or ChaCha20)");
            }
            Mapped::Names { kept, dropped } => {
                if name == "tls-cipher" {
                    self.tls_result(d, kept, dropped, |p, v| p.tls_cipher = v);
                } else {
                    self.tls_result(d, kept, dropped, |p, v| p.tls_ciphersuites = v);
                }
            }
        }
    }

    fn tls_result<T>(
        &mut self,
        d: &RawDirective,
        kept: Vec<T>,
        dropped: Vec<String>,
        set: impl Fn(&mut Profile, Option<Vec<T>>),
    ) {
        let dropped_s = dropped.join(", ");
        if kept.is_empty() {
            set(&mut self.p, None);
            self.push(d.line, &d.name, Severity::Unsupported, format!(
                "names only choices OxiVPN's TLS library lacks ({dropped_s}); ignored, OxiVPN's defaults are used (a server that accepts only these will fail)"
            ));
        } else {
            let n = kept.len();
            set(&mut self.p, Some(kept));
            if dropped.is_empty() {
                self.honour(d, format!("restricts TLS to {n} choice(s)"));
            } else {
                self.honour(
                    d,
                    format!(
                        "restricts TLS to {n} choice(s); dropped ones OxiVPN lacks: {dropped_s}"
                    ),
                );
            }
        }
    }

    pub(crate) fn apply(&mut self, d: &RawDirective) {
        // `setenv opt X ...`: OpenVPN runs X but only warns if it is unknown.
        if d.name == "setenv" && d.args.first().map(String::as_str) == Some("opt") {
            if d.args.len() < 2 {
                self.error(d, "opt needs an option after it");
                return;
            }
            let inner = RawDirective {
                line: d.line,
                name: d.args[1].clone(),
                args: d.args[2..].to_vec(),
                raw_args: d.raw_args[2..].to_vec(),
                block: None,
            };
            if classify::refused(&inner.name).is_none()
                && classify::classify(&inner.name).is_none()
                && !is_typed(&inner.name)
            {
                self.push(
                    d.line,
                    &inner.name,
                    Severity::Ignored,
                    "unknown option behind setenv opt (OpenVPN ignores it too)",
                );
                return;
            }
            self.apply(&inner);
            return;
        }
        if let Some(r) = classify::refused_with_args(&d.name, &d.args) {
            self.refuse(d, r);
            // Without its revocation list the profile would connect to servers its
            // author revoked: not usable until the CRL is inlined.
            if d.name.eq_ignore_ascii_case("crl-verify") {
                self.fatal.push(reason_line(d.line, &d.name, r));
            }
            return;
        }
        let a = &d.args;
        match d.name.as_str() {
            "client" => {
                self.p.client = true;
                self.p.pull = true;
                self.p.tls_client = true;
                self.honour(d, "client mode (takes settings pushed by the server)");
            }
            "pull" => {
                self.p.pull = true;
                self.honour(d, "takes settings pushed by the server");
            }
            "tls-client" => {
                self.p.tls_client = true;
                self.honour(d, "TLS client");
            }
            "dev" => {
                if self.arity(d, 1, 1) {
                    let v = a[0].as_str();
                    self.dev_line = d.line;
                    if v.starts_with("tap") {
                        self.unsupported(d, "dev tap (layer-2 bridging) is not supported; OxiVPN only creates tun devices", true);
                    } else if v == "null" {
                        self.unsupported(d, "dev null is a test mode without a tunnel", true);
                    } else {
                        self.p.dev = if v == "tun" {
                            None
                        } else {
                            Some(v.to_string())
                        };
                        self.honour(d, "tun device (OxiVPN picks the device name)");
                    }
                }
            }
            "dev-type" => {
                if self.arity(d, 1, 1) {
                    if a[0] == "tun" {
                        self.dev_type_tun = true;
                        self.honour(d, "tun device");
                    } else {
                        self.unsupported(
                            d,
                            "only tun devices are supported (dev-type tap is layer-2 bridging)",
                            true,
                        );
                    }
                }
            }
            "mode" => {
                if a.first().map(String::as_str) == Some("server") {
                    self.strong_server
                        .get_or_insert((d.line, "mode server".into()));
                    self.push(d.line, "mode", Severity::Ignored, "is a server option");
                } else {
                    self.push(
                        d.line,
                        "mode",
                        Severity::Ignored,
                        "point-to-point mode is the client default",
                    );
                }
            }
            "server" | "server-bridge" | "server-ipv6" | "tls-server" => {
                self.strong_server.get_or_insert((d.line, d.name.clone()));
                self.push(d.line, &d.name, Severity::Ignored, "is a server option");
            }
            "remote" => {
                self.saw_top_remote.get_or_insert(d.line);
                if let Some(r) = self.remote(d) {
                    self.p.remotes.push(r);
                }
            }
            "remote-random" => {
                self.p.remote_random = true;
                self.honour(
                    d,
                    "tries the servers in a random order, chosen once per connection",
                );
            }
            "resolv-retry" => {
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
            "connection" => self.connection(d),
            "ca" => self.set_material(d, FileKind::Ca),
            "cert" => self.set_material(d, FileKind::Cert),
            "key" => self.set_material(d, FileKind::Key),
            "extra-certs" => self.set_material(d, FileKind::ExtraCerts),
            "pkcs12" => self.set_material(d, FileKind::Pkcs12),
            "tls-crypt" => self.set_material(d, FileKind::TlsCrypt),
            "tls-crypt-v2" => self.set_material(d, FileKind::TlsCryptV2),
            "crl-verify" => {
                if a.get(1).map(String::as_str) == Some("dir") {
                    self.unsupported(d, "a directory of revocation lists cannot be imported; put the CRL inline with <crl-verify>", false);
                } else {
                    self.set_material(d, FileKind::CrlVerify);
                    // Say what the CRL is for (ovpn-tokio hands it to the verifier).
                    if let Some(f) = self
                        .findings
                        .iter_mut()
                        .rev()
                        .find(|f| f.line == Some(d.line) && f.severity == Severity::Honoured)
                    {
                        f.message = format!(
                            "{}; the server's certificate chain is checked against it",
                            f.message
                        );
                    }
                }
            }
            "tls-auth" => {
                let (dir_arg, max) = if d.block.is_some() {
                    (a.first(), 1)
                } else {
                    (a.get(1), 2)
                };
                if d.block.is_none() && !self.arity(d, 1, max) {
                    return;
                }
                let direction = match dir_arg {
                    None => None,
                    Some(s) => match KeyDirection::parse(s) {
                        Some(k) => Some(k),
                        None => {
                            self.error(
                                d,
                                format!("has the key direction {s:?}; it must be 0 or 1"),
                            );
                            return;
                        }
                    },
                };
                let has_dir = direction.is_some() || self.p.key_direction.is_some();
                if let Some(key) = self.material(d, FileKind::TlsAuth, has_dir) {
                    self.p.tls_auth = Some(TlsAuth { key, direction });
                }
            }
            "secret" => {
                self.unsupported(d, "static-key mode (no TLS) is not supported by OxiVPN, and OpenVPN 2.7 removes it", true);
            }
            "key-direction" => {
                if self.arity(d, 1, 1) {
                    match KeyDirection::parse(&a[0]) {
                        Some(k) => {
                            self.p.key_direction = Some(k);
                            self.honour(d, format!("key direction {}", k.as_str()));
                        }
                        None => self.error(d, format!("must be 0 or 1, not {:?}", a[0])),
                    }
                }
            }
            "auth" => {
                if self.arity(d, 1, 1) {
                    self.p.auth = Some(upper(&a[0]));
                    self.honour(d, format!("HMAC digest {}", upper(&a[0])));
                }
            }
            "cipher" => {
                if self.arity(d, 1, 1) {
                    self.p.cipher = Some(upper(&a[0]));
                    self.cipher_line = d.line;
                    self.honour(
                        d,
                        format!(
                            "data cipher {} (used when the server cannot negotiate)",
                            upper(&a[0])
                        ),
                    );
                }
            }
            "data-ciphers" | "ncp-ciphers" => {
                if self.arity(d, 1, 1) {
                    self.p.data_ciphers = a[0]
                        .split(':')
                        .filter(|s| !s.is_empty())
                        .map(upper)
                        .collect();
                    self.honour(
                        d,
                        format!("data ciphers {}", self.p.data_ciphers.join(", ")),
                    );
                }
            }
            "data-ciphers-fallback" => {
                if self.arity(d, 1, 1) {
                    self.p.data_ciphers_fallback = Some(upper(&a[0]));
                    self.honour(d, format!("fallback data cipher {}", upper(&a[0])));
                }
            }
            "tls-version-min" => {
                if self.arity(d, 1, 2) {
                    match TlsVersion::parse(&a[0]) {
                        Some(v) => {
                            let or_highest = a.get(1).map(String::as_str) == Some("or-highest");
                            self.p.tls_version_min = Some(TlsVersionMin {
                                version: v,
                                or_highest,
                            });
                            if v < TlsVersion::V1_2 {
                                self.honour(
                                    d,
                                    "minimum TLS version (OxiVPN always uses TLS 1.2 or newer)",
                                );
                            } else {
                                self.honour(d, format!("minimum TLS version {}", v.as_str()));
                            }
                        }
                        None => self.error(d, format!("has the unknown TLS version {:?}", a[0])),
                    }
                }
            }
            "tls-version-max" => {
                if self.arity(d, 1, 1) {
                    match TlsVersion::parse(&a[0]) {
                        Some(v) if v < TlsVersion::V1_2 => {
                            self.p.tls_version_max = Some(v);
                            self.unsupported(
                                d,
                                "limits TLS below version 1.2, which OxiVPN does not speak",
                                true,
                            );
                        }
                        Some(v) => {
                            self.p.tls_version_max = Some(v);
                            self.honour(d, format!("maximum TLS version {}", v.as_str()));
                        }
                        None => self.error(d, format!("has the unknown TLS version {:?}", a[0])),
                    }
                }
            }
            "tls-cipher" | "tls-ciphersuites" | "tls-groups" => self.tls_list(d),
            "tls-cert-profile" => {
                if self.arity(d, 1, 1) {
                    self.p.tls_cert_profile = Some(a[0].clone());
                    self.honour(d, format!("certificate profile {}", a[0]));
                }
            }
            "remote-cert-tls" | "ns-cert-type" => {
                if self.arity(d, 1, 1) {
                    let role = match a[0].as_str() {
                        "server" => CertRole::Server,
                        "client" => CertRole::Client,
                        other => {
                            self.error(d, format!("must be server or client, not {other:?}"));
                            return;
                        }
                    };
                    if d.name == "remote-cert-tls" {
                        self.p.remote_cert_tls = Some(role);
                    } else {
                        self.p.ns_cert_type = Some(role);
                    }
                    self.honour(
                        d,
                        format!(
                            "checks that the server's certificate is a {} certificate",
                            a[0]
                        ),
                    );
                }
            }
            "remote-cert-ku" => {
                let mut v = Vec::new();
                for s in a {
                    match u16::from_str_radix(s.trim_start_matches("0x"), 16) {
                        Ok(n) => v.push(n),
                        Err(_) => {
                            self.error(d, format!("has {s:?}, which is not a hex key usage"));
                            return;
                        }
                    }
                }
                self.p.remote_cert_ku = v;
                self.honour(d, "checks the server certificate's key usage");
            }
            "remote-cert-eku" => {
                if self.arity(d, 1, 1) {
                    self.p.remote_cert_eku = Some(a[0].clone());
                    self.honour(d, "checks the server certificate's extended key usage");
                }
            }
            "verify-x509-name" => {
                if self.arity(d, 1, 2) {
                    let kind = match a.get(1).map(String::as_str) {
                        None | Some("subject") => X509NameKind::Subject,
                        Some("name") => X509NameKind::Name,
                        Some("name-prefix") => X509NameKind::NamePrefix,
                        Some(other) => {
                            self.error(
                                d,
                                format!(
                                    "has the unknown type {other:?} (subject, name or name-prefix)"
                                ),
                            );
                            return;
                        }
                    };
                    self.p.verify_x509_name = Some(VerifyX509Name {
                        name: a[0].clone(),
                        kind,
                    });
                    self.honour(
                        d,
                        format!(
                            "checks the server certificate's {} is {:?}",
                            kind.as_str(),
                            a[0]
                        ),
                    );
                }
            }
            "peer-fingerprint" => {
                let text = match &d.block {
                    Some(b) => b.text.clone(),
                    None => a.join(" "),
                };
                let mut fps = Vec::new();
                for item in text
                    .split(|c: char| c == ';' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                {
                    if item.starts_with('#') {
                        continue;
                    }
                    let hex: String = item.chars().filter(|c| *c != ':').collect();
                    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        self.error(
                            d,
                            format!("has {item:?}, which is not a SHA-256 fingerprint"),
                        );
                        return;
                    }
                    fps.push(colon_hex(&hex));
                }
                if fps.is_empty() {
                    self.error(d, "names no fingerprint");
                    return;
                }
                self.p.peer_fingerprints.extend(fps);
                self.honour(
                    d,
                    "trusts the server certificate with this SHA-256 fingerprint",
                );
            }
            "verify-hash" => {
                if self.arity(d, 1, 2) {
                    let algo = a.get(1).map_or("SHA1".to_string(), |s| upper(s));
                    let hex: String = a[0].chars().filter(|c| *c != ':').collect();
                    let want = if algo == "SHA256" { 64 } else { 40 };
                    if hex.len() != want || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        self.error(
                            d,
                            format!("has {:?}, which is not a {algo} fingerprint", a[0]),
                        );
                        return;
                    }
                    self.p.verify_hash = Some(VerifyHash {
                        hash: colon_hex(&hex),
                        algo,
                    });
                    self.honour(d, "checks the fingerprint of the server's CA certificate");
                }
            }
            "askpass" => {
                if !self.arity(d, 0, 1) {
                    return;
                }
                match d.raw_args.first() {
                    None => self.honour(
                        d,
                        "OxiVPN asks for the private key's passphrase (and can keep it in the system keyring)",
                    ),
                    // Read at import; the passphrase goes to the keyring, never into the
                    // stored profile (which therefore has no `askpass` line).
                    Some(raw) => {
                        let raw = raw.clone();
                        self.file_need(d, FileKind::Askpass, &raw);
                    }
                }
            }
            "auth-user-pass" => {
                if d.block.is_none() && !self.arity(d, 0, 1) {
                    return;
                }
                if d.block.is_none() && a.is_empty() {
                    self.p.auth_user_pass = Some(AuthUserPass::Prompt);
                    self.honour(d, "asks for a user name and password");
                    return;
                }
                if let Some(c) = self.credential(d, FileKind::AuthUserPass, 0) {
                    self.p.auth_user_pass = Some(AuthUserPass::Credentials(c));
                }
            }
            "static-challenge" => {
                if self.arity(d, 2, 3) {
                    self.p.static_challenge = Some(StaticChallenge {
                        text: a[0].clone(),
                        echo: a[1] == "1",
                        concat: a.get(2).map(String::as_str) == Some("concat"),
                    });
                    self.honour(
                        d,
                        format!("asks the challenge {:?} with the password", a[0]),
                    );
                }
            }
            "auth-nocache" => {
                self.p.auth_nocache = true;
                self.not_applied(d, "is not applied: the password is kept for the session (reconnects and renegotiation) and wiped when it ends");
            }
            "auth-retry" => {
                if self.arity(d, 1, 1) {
                    let r = match a[0].as_str() {
                        "none" => AuthRetry::None,
                        "nointeract" => AuthRetry::NoInteract,
                        "interact" => AuthRetry::Interact,
                        other => {
                            self.error(d, format!("has the unknown mode {other:?}"));
                            return;
                        }
                    };
                    self.p.auth_retry = Some(r);
                    self.honour(d, format!("on wrong password: {}", a[0]));
                }
            }
            "push-peer-info" => {
                self.p.push_peer_info = true;
                self.honour(d, "sends client details to the server");
            }
            "setenv" => {
                if self.arity(d, 1, 2) {
                    let v = a.get(1).cloned().unwrap_or_default();
                    // Last value wins, kept at the first position (an index keeps
                    // this linear for profiles with thousands of setenv lines).
                    match self.setenv_index.get(&a[0]) {
                        Some(&i) => self.p.setenv[i].1 = v,
                        None => {
                            self.setenv_index.insert(a[0].clone(), self.p.setenv.len());
                            self.p.setenv.push((a[0].clone(), v));
                        }
                    }
                    self.honour(d, format!("sets {} for the server (peer info)", a[0]));
                }
            }
            "setenv-safe" => self.push(
                d.line,
                &d.name,
                Severity::Ignored,
                "only sets a variable for scripts, which OxiVPN does not run",
            ),
            "script-security" => {
                let level = a.first().and_then(|s| u32_arg(s)).unwrap_or(1);
                if level > 1 {
                    self.refuse(d, "allows scripts to run");
                } else {
                    self.push(
                        d.line,
                        &d.name,
                        Severity::Ignored,
                        "OxiVPN never runs scripts",
                    );
                }
            }
            "ignore-unknown-option" => {
                self.ignore_unknown.extend(a.iter().cloned());
                self.push(
                    d.line,
                    &d.name,
                    Severity::Info,
                    "unknown options listed here are ignored",
                );
            }
            "route-nopull" => {
                self.p.route_nopull = true;
                self.honour(d, "ignores routes pushed by the server");
            }
            "pull-filter" => {
                if self.arity(d, 2, 2) {
                    let action = match a[0].as_str() {
                        "accept" => PullFilterAction::Accept,
                        "ignore" => PullFilterAction::Ignore,
                        "reject" => PullFilterAction::Reject,
                        other => {
                            self.error(
                                d,
                                format!(
                                    "has the unknown action {other:?} (accept, ignore or reject)"
                                ),
                            );
                            return;
                        }
                    };
                    self.p.pull_filters.push(PullFilter {
                        action,
                        text: a[1].clone(),
                    });
                    self.honour(
                        d,
                        format!("{} pushed options starting with {:?}", a[0], a[1]),
                    );
                }
            }
            "route" => {
                if self.arity(d, 1, 4) {
                    if material::looks_like_placeholder(&a[0]) {
                        self.error(d, format!("has the template placeholder {:?}", a[0]));
                        return;
                    }
                    let metric = match a.get(3) {
                        Some(m) if m != "default" => match self.num(d, 3) {
                            Some(n) => Some(n),
                            None => return,
                        },
                        _ => None,
                    };
                    let opt = |i: usize| a.get(i).filter(|s| s.as_str() != "default").cloned();
                    self.p.routes.push(Route {
                        network: a[0].clone(),
                        netmask: opt(1),
                        gateway: opt(2),
                        metric,
                    });
                    self.honour(d, format!("adds a route to {}", a[0]));
                }
            }
            "route-ipv6" => {
                if self.arity(d, 1, 3) {
                    let metric = match a.get(2) {
                        Some(_) => match self.num(d, 2) {
                            Some(n) => Some(n),
                            None => return,
                        },
                        None => None,
                    };
                    self.p.routes_ipv6.push(RouteIpv6 {
                        network: a[0].clone(),
                        gateway: a.get(1).cloned(),
                        metric,
                    });
                    self.honour(d, format!("adds an IPv6 route to {}", a[0]));
                }
            }
            "redirect-gateway" | "redirect-private" => {
                let g = Some(RedirectGateway { flags: a.clone() });
                if d.name == "redirect-gateway" {
                    self.p.redirect_gateway = g;
                    self.honour(d, "sends all traffic through the VPN");
                } else {
                    self.p.redirect_private = g;
                    self.honour(d, "routes private networks through the VPN");
                }
            }
            "dhcp-option" => {
                if self.arity(d, 1, 2) {
                    let kind = a[0].to_ascii_uppercase();
                    let value = a.get(1).cloned();
                    let shown = format!("{} {}", a[0], value.as_deref().unwrap_or(""))
                        .trim()
                        .to_owned();
                    match kind.as_str() {
                        "DNS" | "DNS6" => {
                            if value
                                .as_deref()
                                .and_then(|v| v.parse::<std::net::IpAddr>().ok())
                                .is_none()
                            {
                                self.error(
                                    d,
                                    format!("{shown}: the DNS server must be an IP address"),
                                );
                                return;
                            }
                            self.honour(d, format!("{shown}: DNS server while connected, before the ones the server pushes"));
                        }
                        "DOMAIN" | "DOMAIN-SEARCH" => {
                            self.honour(d, format!("{shown}: search domain while connected"));
                        }
                        _ => self.push(
                            d.line,
                            &d.name,
                            Severity::Ignored,
                            format!("{shown}: OxiVPN sets only DNS servers and search domains"),
                        ),
                    }
                    self.p.dhcp_options.push(DhcpOption {
                        kind: a[0].clone(),
                        value,
                    });
                }
            }
            "dns" => {
                if self.arity(d, 1, 16) {
                    self.p.dns.push(a.clone());
                    self.honour(d, "DNS setting while connected; a server pushing the same server priority replaces it");
                }
            }
            "block-outside-dns" => {
                self.p.block_outside_dns = true;
                if cfg!(windows) {
                    self.not_applied(
                        d,
                        "is not applied yet on Windows: with the kill switch on, DNS outside the tunnel is blocked anyway",
                    );
                } else {
                    self.push(
                        d.line,
                        &d.name,
                        Severity::Ignored,
                        "only matters on Windows (which asks every network's DNS servers); here DNS goes only where the tunnel's settings send it",
                    );
                }
            }
            "route-metric" => {
                if self.arity(d, 1, 1) {
                    if let Some(n) = self.num(d, 0) {
                        self.p.route_metric = Some(n);
                        self.honour(d, format!("route metric {n}"));
                    }
                }
            }
            "route-delay" => {
                if self.arity(d, 0, 2) {
                    let n = if a.is_empty() {
                        Some(0)
                    } else {
                        self.num(d, 0)
                    };
                    let w = if a.len() > 1 {
                        self.num(d, 1).map(Some)
                    } else {
                        Some(None)
                    };
                    if let (Some(n), Some(w)) = (n, w) {
                        self.p.route_delay = Some((n, w));
                        self.honour(d, "delays adding routes");
                    }
                }
            }
            "reneg-sec" | "hand-window" | "tls-timeout" | "ping" | "ping-restart" | "ping-exit" => {
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
            "reneg-bytes" | "reneg-pkts" => {
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
            "keepalive" => {
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
            "inactive" => {
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
            "comp-lzo" => {
                if self.arity(d, 0, 1) {
                    self.p.compression.comp_lzo = Some(a.first().cloned());
                    self.honour(d, "legacy compression setting (OxiVPN never compresses; it tells the server so)");
                }
            }
            "compress" => {
                if self.arity(d, 0, 1) {
                    self.p.compression.compress = Some(a.first().cloned());
                    self.honour(
                        d,
                        "compression setting (OxiVPN never compresses; it tells the server so)",
                    );
                }
            }
            "allow-compression" => {
                if self.arity(d, 1, 1) {
                    self.p.compression.allow_compression = Some(a[0].clone());
                    self.honour(d, "compression policy (OxiVPN never compresses)");
                }
            }
            _ => {
                let mut conn = std::mem::take(&mut self.p.conn);
                let handled = self.apply_conn(&mut conn, d);
                self.p.conn = conn;
                if !handled {
                    self.other(d);
                }
            }
        }
    }

    pub(crate) fn finish(mut self) -> (Profile, Report) {
        // Server configuration?
        let is_client = self.p.client || self.p.pull || self.p.tls_client;
        let server = self.strong_server.clone().or_else(|| {
            if is_client {
                None
            } else {
                self.server_hints.first().cloned()
            }
        });
        if let Some((line, what)) = server {
            self.fatal.insert(
                0,
                format!(
                    "this is a server configuration (line {line}: {what}), not a client profile"
                ),
            );
        }
        if !self.p.connections.is_empty() && !self.p.remotes.is_empty() {
            let line = self.saw_top_remote.unwrap_or(0);
            self.push(line, "remote", Severity::Info, "remote lines outside <connection> blocks are ignored when blocks exist (as in OpenVPN)");
            self.p.remotes.clear();
        }
        let whole = |s: &mut Self, sev: Severity, d: &str, msg: String| {
            s.findings.push(Finding {
                line: None,
                directive: d.into(),
                severity: sev,
                message: msg,
            });
        };
        if let Some(msg) = self.legacy_cipher_remark() {
            let line = self.cipher_line;
            self.push(line, "cipher", Severity::Info, msg);
        }
        if self.p.remotes.is_empty()
            && self.p.connections.is_empty()
            && !self.fatal.iter().any(|f| f.contains("remote"))
        {
            self.fatal
                .push("the profile names no server (no remote line)".into());
            whole(
                &mut self,
                Severity::Error,
                "remote",
                "the profile names no server (no remote line)".into(),
            );
        }
        if let Some(e) = self
            .p
            .endpoints()
            .into_iter()
            .find(|e| e.options.http_proxy.is_some() && !e.proto.is_tcp())
        {
            // OpenVPN's own rule: an HTTP proxy carries only a TCP connection.
            let m = format!(
                "http-proxy needs TCP, but the server {} is reached over {} (add `proto tcp-client`)",
                e.host,
                e.proto.as_str()
            );
            self.fatal.push(m.clone());
            whole(&mut self, Severity::Error, "http-proxy", m);
        }
        if !self.p.pull {
            let m = "the profile has neither client nor pull: OpenVPN's point-to-point mode (settings not pushed by the server) is not supported";
            self.fatal.push(m.into());
            whole(&mut self, Severity::Unsupported, "client", m.into());
        }
        if let Some(dev) = &self.p.dev {
            if !dev.starts_with("tun") && !self.dev_type_tun {
                let line = self.dev_line;
                let m = format!(
                    "the device name {dev:?} does not say tun, and there is no dev-type tun"
                );
                self.fatal.push(format!("line {line}: {m}"));
                self.push(line, "dev", Severity::Error, m);
            }
        }
        if self.p.ca.is_none() && self.p.peer_fingerprints.is_empty() && self.p.pkcs12.is_none() {
            let m = "the profile has no CA certificate (no ca and no peer-fingerprint), so the server cannot be verified";
            self.fatal.push(m.into());
            whole(&mut self, Severity::Error, "ca", m.into());
        }
        if self.p.pkcs12.is_some() && self.p.ca.is_none() && self.p.peer_fingerprints.is_empty() {
            whole(
                &mut self,
                Severity::Info,
                "pkcs12",
                "the CA certificate is expected inside the PKCS#12 bundle".into(),
            );
        }
        let has_cert = self.p.cert.is_some() || self.p.pkcs12.is_some();
        let has_key = self.p.key.is_some() || self.p.pkcs12.is_some();
        if !has_cert && !has_key && self.p.auth_user_pass.is_none() {
            let how = "add <cert> and <key> blocks (or cert/key files, or a pkcs12 bundle) from your VPN provider".to_string();
            self.needs.push(FileNeed {
                line: None,
                kind: FileKind::ClientCertAndKey,
                path: String::new(),
                raw_path: Vec::new(),
                how_to_inline: how.clone(),
            });
            whole(&mut self, Severity::NeedsFile, "cert", format!("the profile has no way to log in: it needs a client certificate and key ({how})"));
        } else if has_cert != has_key {
            let (kind, what) = if has_cert {
                (FileKind::Key, "the private key for its client certificate")
            } else {
                (FileKind::Cert, "the client certificate for its private key")
            };
            let how = format!("add a <{}> block", kind.directive());
            self.needs.push(FileNeed {
                line: None,
                kind,
                path: String::new(),
                raw_path: Vec::new(),
                how_to_inline: how.clone(),
            });
            whole(
                &mut self,
                Severity::NeedsFile,
                kind.directive(),
                format!("the profile needs {what} ({how})"),
            );
        }
        if let Some(t) = &self.p.tls_auth {
            if t.direction.is_none() && self.p.key_direction.is_none() {
                whole(
                    &mut self,
                    Severity::Info,
                    "key-direction",
                    "tls-auth has no key direction, so both sides use the same key (OpenVPN's \
                     default); most servers expect `key-direction 1` from clients"
                        .into(),
                );
            }
        }
        let wraps = [
            self.p.tls_auth.is_some(),
            self.p.tls_crypt.is_some(),
            self.p.tls_crypt_v2.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if wraps > 1 {
            whole(&mut self, Severity::Info, "tls-crypt", "several of tls-auth, tls-crypt and tls-crypt-v2 are set; OxiVPN uses tls-crypt-v2, then tls-crypt, then tls-auth".into());
        }
        // Stable order: by line, whole-profile findings last.
        self.findings.sort_by_key(|f| f.line.unwrap_or(u32::MAX));
        let error = self
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .map(|f| match f.line {
                Some(l) => format!("line {l}: {} {}", f.directive, f.message),
                None => f.message.clone(),
            });
        let reason = self.fatal.first().cloned().or(error);
        let report = Report {
            findings: self.findings,
            needs_files: self.needs,
            usable: reason.is_none(),
            reason,
        };
        (self.p, report)
    }
}

/// One-line reason naming the line; messages that start with a verb get the
/// directive as their subject.
fn reason_line(line: u32, name: &str, msg: &str) -> String {
    const VERBS: &[&str] = &[
        "has ", "needs ", "expects ", "is ", "must ", "names ", "says ", "block ", "opt ",
    ];
    if VERBS.iter().any(|v| msg.starts_with(v)) {
        format!("line {line}: {name} {msg}")
    } else {
        format!("line {line} ({name}): {msg}")
    }
}

fn valid_or_err(b: &mut Builder, d: &RawDirective, host: &str) -> bool {
    if valid_host(host) {
        return true;
    }
    b.error(
        d,
        format!("has {host:?}, which is not a host name or IP address"),
    );
    false
}

fn looks_placeholder_bytes(a: &[u8]) -> bool {
    let s = String::from_utf8_lossy(a);
    s.contains("{{")
        || (s.starts_with('$') && s.len() > 1)
        || (s.starts_with('<') && s.ends_with('>'))
}

fn colon_hex(hex: &str) -> String {
    let up = hex.to_ascii_uppercase();
    up.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Names handled by [`Builder::apply`] itself.
pub(crate) fn is_typed(name: &str) -> bool {
    matches!(
        name,
        "client"
            | "pull"
            | "tls-client"
            | "dev"
            | "dev-type"
            | "mode"
            | "remote"
            | "remote-random"
            | "resolv-retry"
            | "connection"
            | "ca"
            | "cert"
            | "key"
            | "extra-certs"
            | "pkcs12"
            | "tls-crypt"
            | "tls-crypt-v2"
            | "crl-verify"
            | "tls-auth"
            | "secret"
            | "key-direction"
            | "auth"
            | "cipher"
            | "data-ciphers"
            | "ncp-ciphers"
            | "data-ciphers-fallback"
            | "tls-version-min"
            | "tls-version-max"
            | "tls-cipher"
            | "tls-ciphersuites"
            | "tls-groups"
            | "tls-cert-profile"
            | "remote-cert-tls"
            | "ns-cert-type"
            | "remote-cert-ku"
            | "remote-cert-eku"
            | "verify-x509-name"
            | "peer-fingerprint"
            | "verify-hash"
            | "auth-user-pass"
            | "askpass"
            | "static-challenge"
            | "auth-nocache"
            | "auth-retry"
            | "push-peer-info"
            | "setenv"
            | "setenv-safe"
            | "script-security"
            | "ignore-unknown-option"
            | "route-nopull"
            | "pull-filter"
            | "route"
            | "route-ipv6"
            | "redirect-gateway"
            | "redirect-private"
            | "dhcp-option"
            | "dns"
            | "block-outside-dns"
            | "route-metric"
            | "route-delay"
            | "reneg-sec"
            | "hand-window"
            | "tls-timeout"
            | "ping"
            | "ping-restart"
            | "ping-exit"
            | "reneg-bytes"
            | "reneg-pkts"
            | "keepalive"
            | "inactive"
            | "comp-lzo"
            | "compress"
            | "allow-compression"
    ) || CONNECTION_OPTS.contains(&name)
}
