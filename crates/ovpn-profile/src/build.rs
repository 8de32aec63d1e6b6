//! Raw directives to a typed [`Profile`] plus findings, following OpenVPN 2.6's
//! `add_option()` rules: most options are last-wins; `remote`, `route`,
//! `route-ipv6`, `pull-filter`, `dhcp-option`, `dns`, `setenv` and `peer-fingerprint`
//! accumulate; `<connection>` blocks start from the options set so far.
//!
//! What each directive does is in [`crate::directives`] (one table: handler, class,
//! reason, whether it may appear in `<connection>`); this file holds the state
//! the handlers share, the dispatch, and the whole-profile checks of [`Builder::finish`].

use std::collections::BTreeSet;

use crate::directives::{self, Class, Handler};
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::{FileKind, FileNeed, Finding, Report, Severity};

pub(crate) struct Builder {
    pub(crate) p: Profile,
    pub(crate) findings: Vec<Finding>,
    pub(crate) needs: Vec<FileNeed>,
    /// Reasons the profile cannot be used, in order found.
    pub(crate) fatal: Vec<String>,
    pub(crate) ignore_unknown: BTreeSet<String>,
    pub(crate) server_hints: Vec<(u32, String)>,
    pub(crate) strong_server: Option<(u32, String)>,
    pub(crate) dev_type_tun: bool,
    pub(crate) dev_line: u32,
    pub(crate) saw_top_remote: Option<u32>,
    pub(crate) setenv_index: std::collections::HashMap<String, usize>,
    /// Inline `<http-proxy-user-pass>` seen so far (applies to http-proxy lines).
    pub(crate) http_proxy_user_pass: Option<Credential>,
    /// Line of the last `cipher` directive (for the legacy-cipher remark).
    pub(crate) cipher_line: u32,
}

pub(crate) fn u32_arg(s: &str) -> Option<u32> {
    s.parse::<u32>().ok()
}

pub(crate) fn upper(s: &str) -> String {
    s.to_ascii_uppercase()
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

    pub(crate) fn push(
        &mut self,
        line: u32,
        d: &str,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            line: Some(line),
            directive: d.to_string(),
            severity,
            message: message.into(),
        });
    }

    pub(crate) fn honour(&mut self, d: &RawDirective, msg: impl Into<String>) {
        self.push(d.line, &d.name, Severity::Honoured, msg);
    }

    /// Understood and kept in the profile, but nothing in OxiVPN carries it out yet:
    /// the report says so instead of "honoured".
    pub(crate) fn not_applied(&mut self, d: &RawDirective, why: impl Into<String>) {
        self.push(d.line, &d.name, Severity::Unsupported, why);
    }

    pub(crate) fn error(&mut self, d: &RawDirective, msg: impl Into<String>) {
        let msg = msg.into();
        self.fatal.push(reason_line(d.line, &d.name, &msg));
        self.push(d.line, &d.name, Severity::Error, msg);
    }

    pub(crate) fn unsupported(&mut self, d: &RawDirective, reason: &str, fatal: bool) {
        if fatal {
            self.fatal.push(reason_line(d.line, &d.name, reason));
        }
        self.push(d.line, &d.name, Severity::Unsupported, reason.to_string());
    }

    /// Check the argument count; an error finding when wrong.
    pub(crate) fn arity(&mut self, d: &RawDirective, min: usize, max: usize) -> bool {
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

    pub(crate) fn num(&mut self, d: &RawDirective, idx: usize) -> Option<u32> {
        let s = d.args.get(idx)?;
        let v = u32_arg(s);
        if v.is_none() {
            self.error(d, format!("needs a whole number, not {s:?}"));
        }
        v
    }

    /// Forget an earlier "needs file" of the same kind (OpenVPN: last one wins).
    pub(crate) fn replace_need(&mut self, kind: FileKind) {
        self.needs.retain(|n| n.kind != kind);
    }

    pub(crate) fn file_need(&mut self, d: &RawDirective, kind: FileKind, raw: &[u8]) -> FileRef {
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

    pub(crate) fn refuse(&mut self, d: &RawDirective, reason: &str) {
        if directives::lookup(&d.name).is_some_and(|e| e.server_only) {
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

    /// Directives without a typed field: reported with the registry's class and reason.
    pub(crate) fn other(&mut self, d: &RawDirective) {
        match directives::lookup(&d.name) {
            Some(e) => match e.class {
                Class::Refused => self.refuse(d, e.reason),
                Class::Unsupported { fatal } => self.unsupported(d, e.reason, fatal),
                Class::Ignored | Class::Honoured => {
                    if e.server_only {
                        self.server_hints.push((d.line, d.name.clone()));
                    }
                    self.push(d.line, &d.name, Severity::Ignored, e.reason);
                }
            },
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
            if !directives::known(&inner.name) {
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
        if let Some(r) = directives::refusal(&d.name, &d.args) {
            self.refuse(d, r.reason);
            // e.g. without its revocation list the profile would connect to servers
            // its author revoked: not usable until the CRL is inlined.
            if r.fatal {
                self.fatal.push(reason_line(d.line, &d.name, r.reason));
            }
            return;
        }
        match directives::lookup(&d.name).map(|e| e.handler) {
            Some(Handler::Top(f)) => f(self, d),
            Some(Handler::Conn(f)) => {
                let mut conn = std::mem::take(&mut self.p.conn);
                f(self, &mut conn, d);
                self.p.conn = conn;
            }
            Some(Handler::Class) | None => self.other(d),
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
