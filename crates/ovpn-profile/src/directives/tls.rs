//! TLS settings and how the server's certificate is checked.

use crate::build::*;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::Severity;
use crate::tls_names::{self, Mapped};

use super::*;

impl Builder {
    pub(super) fn on_tls_version_min(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_tls_version_max(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_tls_cert_profile(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            self.p.tls_cert_profile = Some(a[0].clone());
            self.not_applied(d, format!("is not applied: certificates are checked by the rules of OxiVPN's TLS library, not by the profile {}", a[0]));
        }
    }

    pub(super) fn on_remote_cert_tls(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_remote_cert_ku(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_remote_cert_eku(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            self.p.remote_cert_eku = Some(a[0].clone());
            self.honour(d, "checks the server certificate's extended key usage");
        }
    }

    pub(super) fn on_verify_x509_name(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 2) {
            let kind = match a.get(1).map(String::as_str) {
                None | Some("subject") => X509NameKind::Subject,
                Some("name") => X509NameKind::Name,
                Some("name-prefix") => X509NameKind::NamePrefix,
                Some(other) => {
                    self.error(
                        d,
                        format!("has the unknown type {other:?} (subject, name or name-prefix)"),
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

    pub(super) fn on_peer_fingerprint(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_verify_hash(&mut self, d: &RawDirective) {
        let a = &d.args;
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
            self.not_applied(d, "is not applied yet: the CA certificate's fingerprint is not checked (the server's certificate is still verified against the ca)");
        }
    }

    pub(super) fn tls_list(&mut self, d: &RawDirective) {
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
}

pub(crate) fn colon_hex(hex: &str) -> String {
    let up = hex.to_ascii_uppercase();
    up.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(
        &["tls-version-min"],
        HONOURED,
        "minimum TLS version (OxiVPN always uses TLS 1.2 or newer)",
        Builder::on_tls_version_min,
    ),
    Directive::top(
        &["tls-version-max"],
        HONOURED,
        "maximum TLS version",
        Builder::on_tls_version_max,
    )
    .also(&[UNUSABLE]),
    Directive::top(
        &["tls-cipher", "tls-ciphersuites", "tls-groups"],
        HONOURED,
        "restricts TLS to the named choices OxiVPN's TLS library has",
        Builder::tls_list,
    )
    .also(&[IGNORED, UNSUPPORTED]),
    Directive::top(
        &["tls-cert-profile"],
        UNSUPPORTED,
        "is not applied: certificates are checked by the rules of OxiVPN's TLS library",
        Builder::on_tls_cert_profile,
    ),
    Directive::top(
        &["remote-cert-tls", "ns-cert-type"],
        HONOURED,
        "checks that the server's certificate is a server certificate",
        Builder::on_remote_cert_tls,
    ),
    Directive::top(
        &["remote-cert-ku"],
        HONOURED,
        "checks the server certificate's key usage",
        Builder::on_remote_cert_ku,
    ),
    Directive::top(
        &["remote-cert-eku"],
        HONOURED,
        "checks the server certificate's extended key usage",
        Builder::on_remote_cert_eku,
    ),
    Directive::top(
        &["verify-x509-name"],
        HONOURED,
        "checks the server certificate's subject or name",
        Builder::on_verify_x509_name,
    ),
    Directive::top(
        &["peer-fingerprint"],
        HONOURED,
        "trusts the server certificate with this SHA-256 fingerprint",
        Builder::on_peer_fingerprint,
    ),
    Directive::top(
        &["verify-hash"],
        UNSUPPORTED,
        "is not applied yet: the CA certificate's fingerprint is not checked",
        Builder::on_verify_hash,
    ),
];
