//! Key material: `ca`, `cert`, `key`, PKCS#12, tls-auth/-crypt(-v2), `crl-verify`, `secret`, `key-direction`.

use crate::build::*;
use crate::material;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::{FileKind, Severity};

use super::*;

impl Builder {
    pub(super) fn on_ca(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::Ca);
    }

    pub(super) fn on_cert(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::Cert);
    }

    pub(super) fn on_key(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::Key);
    }

    pub(super) fn on_extra_certs(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::ExtraCerts);
    }

    pub(super) fn on_pkcs12(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::Pkcs12);
    }

    pub(super) fn on_tls_crypt(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::TlsCrypt);
    }

    pub(super) fn on_tls_crypt_v2(&mut self, d: &RawDirective) {
        self.set_material(d, FileKind::TlsCryptV2);
    }

    /// `crl-verify FILE|<crl-verify>` (`crl-verify DIR dir` is refused before this).
    pub(super) fn on_crl_verify(&mut self, d: &RawDirective) {
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

    pub(super) fn on_tls_auth(&mut self, d: &RawDirective) {
        let a = &d.args;
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
                    self.error(d, format!("has the key direction {s:?}; it must be 0 or 1"));
                    return;
                }
            },
        };
        let has_dir = direction.is_some() || self.p.key_direction.is_some();
        if let Some(key) = self.material(d, FileKind::TlsAuth, has_dir) {
            self.p.tls_auth = Some(TlsAuth { key, direction });
        }
    }

    pub(super) fn on_secret(&mut self, d: &RawDirective) {
        self.unsupported(
            d,
            "static-key mode (no TLS) is not supported by OxiVPN, and OpenVPN 2.7 removes it",
            true,
        );
    }

    pub(super) fn on_key_direction(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    /// `ca`/`cert`/... : inline block or file name.
    pub(crate) fn material(
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

    pub(super) fn set_material(&mut self, d: &RawDirective, kind: FileKind) {
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
}

pub(crate) fn looks_placeholder_bytes(a: &[u8]) -> bool {
    let s = String::from_utf8_lossy(a);
    s.contains("{{")
        || (s.starts_with('$') && s.len() > 1)
        || (s.starts_with('<') && s.ends_with('>'))
}

const INLINE: Guard = Guard::Inline(InlineRule::FileArg);

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(
        &["ca"],
        HONOURED,
        "the CA certificate(s) the server's certificate must chain to",
        Builder::on_ca,
    )
    .guard(INLINE),
    Directive::top(
        &["cert"],
        HONOURED,
        "the client certificate",
        Builder::on_cert,
    )
    .guard(INLINE),
    Directive::top(
        &["key"],
        HONOURED,
        "the client's private key (an encrypted one asks for its passphrase)",
        Builder::on_key,
    )
    .guard(INLINE),
    Directive::top(
        &["extra-certs"],
        HONOURED,
        "intermediate certificates sent with the client certificate",
        Builder::on_extra_certs,
    )
    .guard(INLINE),
    Directive::top(
        &["pkcs12"],
        HONOURED,
        "a PKCS#12 bundle with the client certificate, key and CA",
        Builder::on_pkcs12,
    )
    .guard(INLINE),
    Directive::top(
        &["tls-crypt"],
        HONOURED,
        "encrypts and authenticates the control channel with a shared key",
        Builder::on_tls_crypt,
    )
    .guard(INLINE),
    Directive::top(
        &["tls-crypt-v2"],
        HONOURED,
        "encrypts and authenticates the control channel with a per-client key",
        Builder::on_tls_crypt_v2,
    )
    .guard(INLINE),
    Directive::top(
        &["tls-auth"],
        HONOURED,
        "authenticates the control channel with a shared HMAC key",
        Builder::on_tls_auth,
    )
    .guard(INLINE),
    Directive::top(
        &["crl-verify"],
        HONOURED,
        "the server's certificate chain is checked against this revocation list",
        Builder::on_crl_verify,
    )
    .guard(INLINE)
    .refuse_if(
        |a| a.get(1).is_some_and(|a| a.eq_ignore_ascii_case("dir")),
        CRL_DIR,
        true,
    ),
    Directive::top(
        &["key-direction"],
        HONOURED,
        "which half of the tls-auth key each side uses",
        Builder::on_key_direction,
    ),
    Directive::top(
        &["secret"],
        UNUSABLE,
        "static-key mode (no TLS) is not supported by OxiVPN, and OpenVPN 2.7 removes it",
        Builder::on_secret,
    )
    .guard(INLINE),
];

const CRL_DIR: &str = "names a directory of revocation lists, which the root helper never opens; no revocation check is made: put the CRL file's content in a <crl-verify> block (or `crl-verify FILE` next to the profile) and import again";
