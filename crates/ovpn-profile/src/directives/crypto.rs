//! The data channel: HMAC digest and ciphers.

use crate::build::*;
use crate::reader::RawDirective;

use super::*;

impl Builder {
    pub(super) fn on_auth(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            self.p.auth = Some(upper(&a[0]));
            self.honour(d, format!("HMAC digest {}", upper(&a[0])));
        }
    }

    pub(super) fn on_cipher(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_data_ciphers(&mut self, d: &RawDirective) {
        let a = &d.args;
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

    pub(super) fn on_data_ciphers_fallback(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            self.p.data_ciphers_fallback = Some(upper(&a[0]));
            self.honour(d, format!("fallback data cipher {}", upper(&a[0])));
        }
    }

    /// A profile that names `cipher` but no `data-ciphers` was written for
    /// servers that negotiate no cipher: say what OxiVPN does with it.
    pub(crate) fn legacy_cipher_remark(&self) -> Option<String> {
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
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(&["auth"], HONOURED, "HMAC digest", Builder::on_auth),
    Directive::top(
        &["cipher"],
        HONOURED,
        "data cipher used when the server cannot negotiate",
        Builder::on_cipher,
    ),
    Directive::top(
        &["data-ciphers", "ncp-ciphers"],
        HONOURED,
        "data ciphers offered to the server",
        Builder::on_data_ciphers,
    ),
    Directive::top(
        &["data-ciphers-fallback"],
        HONOURED,
        "fallback data cipher",
        Builder::on_data_ciphers_fallback,
    ),
];
