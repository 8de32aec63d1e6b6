//! OpenSSL / OpenVPN TLS cipher-suite and group names to what rustls offers.
//! rustls only has ECDHE key exchange with AEAD suites, so DHE, RSA key exchange and
//! CBC suites have no counterpart and are dropped.

use serde::Serialize;

/// A TLS cipher suite rustls implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TlsSuite {
    Tls13Aes128GcmSha256,
    Tls13Aes256GcmSha384,
    Tls13Chacha20Poly1305Sha256,
    EcdheEcdsaAes128GcmSha256,
    EcdheEcdsaAes256GcmSha384,
    EcdheEcdsaChacha20Poly1305,
    EcdheRsaAes128GcmSha256,
    EcdheRsaAes256GcmSha384,
    EcdheRsaChacha20Poly1305,
}

const SUITES: &[(TlsSuite, &str, &str, &str)] = &[
    // (suite, rustls CipherSuite name, OpenSSL name, IANA/OpenVPN name)
    (
        TlsSuite::Tls13Aes128GcmSha256,
        "TLS13_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
    ),
    (
        TlsSuite::Tls13Aes256GcmSha384,
        "TLS13_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_256_GCM_SHA384",
    ),
    (
        TlsSuite::Tls13Chacha20Poly1305Sha256,
        "TLS13_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        TlsSuite::EcdheEcdsaAes128GcmSha256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
    ),
    (
        TlsSuite::EcdheEcdsaAes256GcmSha384,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
    ),
    (
        TlsSuite::EcdheEcdsaChacha20Poly1305,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
    ),
    (
        TlsSuite::EcdheRsaAes128GcmSha256,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
    ),
    (
        TlsSuite::EcdheRsaAes256GcmSha384,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
    ),
    (
        TlsSuite::EcdheRsaChacha20Poly1305,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
    ),
];

impl TlsSuite {
    fn row(self) -> (TlsSuite, &'static str, &'static str, &'static str) {
        SUITES
            .iter()
            .copied()
            .find(|r| r.0 == self)
            .unwrap_or(SUITES[0])
    }

    /// Name of the matching `rustls::CipherSuite` variant.
    pub fn rustls_name(self) -> &'static str {
        self.row().1
    }

    /// OpenSSL spelling (used when writing a profile).
    pub fn openssl_name(self) -> &'static str {
        self.row().2
    }

    /// True for TLS 1.3 suites.
    pub fn is_tls13(self) -> bool {
        matches!(
            self,
            TlsSuite::Tls13Aes128GcmSha256
                | TlsSuite::Tls13Aes256GcmSha384
                | TlsSuite::Tls13Chacha20Poly1305Sha256
        )
    }

    /// Look up one OpenSSL or IANA/OpenVPN name (case-insensitive).
    pub fn from_name(name: &str) -> Option<TlsSuite> {
        SUITES
            .iter()
            .find(|r| {
                r.2.eq_ignore_ascii_case(name)
                    || r.3.eq_ignore_ascii_case(name)
                    || r.1.eq_ignore_ascii_case(name)
            })
            .map(|r| r.0)
    }
}

/// A key-exchange group rustls implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TlsGroup {
    X25519,
    Secp256r1,
    Secp384r1,
    Secp521r1,
}

impl TlsGroup {
    /// Name of the matching `rustls::NamedGroup` variant.
    pub fn rustls_name(self) -> &'static str {
        match self {
            TlsGroup::X25519 => "X25519",
            TlsGroup::Secp256r1 => "secp256r1",
            TlsGroup::Secp384r1 => "secp384r1",
            TlsGroup::Secp521r1 => "secp521r1",
        }
    }

    /// OpenSSL spelling.
    pub fn openssl_name(self) -> &'static str {
        match self {
            TlsGroup::X25519 => "X25519",
            TlsGroup::Secp256r1 => "prime256v1",
            TlsGroup::Secp384r1 => "secp384r1",
            TlsGroup::Secp521r1 => "secp521r1",
        }
    }

    /// Look up an OpenSSL group or curve name (case-insensitive).
    pub fn from_name(name: &str) -> Option<TlsGroup> {
        Some(match name.to_ascii_lowercase().as_str() {
            "x25519" => TlsGroup::X25519,
            "prime256v1" | "secp256r1" | "p-256" => TlsGroup::Secp256r1,
            "secp384r1" | "p-384" => TlsGroup::Secp384r1,
            "secp521r1" | "p-521" => TlsGroup::Secp521r1,
            _ => return None,
        })
    }
}

/// Result of mapping an OpenSSL list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped<T> {
    /// The list uses OpenSSL keywords (`DEFAULT`, `HIGH`, `!aNULL`, ...) that we do not
    /// evaluate; rustls' own (strong) defaults are used.
    Keywords,
    /// Names rustls has, and the names it does not.
    Names { kept: Vec<T>, dropped: Vec<String> },
}

const KEYWORD_HINTS: &[&str] = &[
    "DEFAULT",
    "HIGH",
    "MEDIUM",
    "LOW",
    "ALL",
    "COMPLEMENTOFDEFAULT",
    "SECLEVEL",
];

/// Map a `tls-cipher` (TLS 1.2, `:`-separated) or `tls-ciphersuites` (TLS 1.3) list.
pub fn map_suites(list: &str) -> Mapped<TlsSuite> {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for item in list.split(':').map(str::trim).filter(|s| !s.is_empty()) {
        if item.starts_with(['!', '-', '+', '@'])
            || KEYWORD_HINTS.iter().any(|k| item.eq_ignore_ascii_case(k))
        {
            return Mapped::Keywords;
        }
        match TlsSuite::from_name(item) {
            Some(s) if !kept.contains(&s) => kept.push(s),
            Some(_) => {}
            None => dropped.push(item.to_string()),
        }
    }
    Mapped::Names { kept, dropped }
}

/// Map a `tls-groups` list (`:`-separated).
pub fn map_groups(list: &str) -> Mapped<TlsGroup> {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for item in list.split(':').map(str::trim).filter(|s| !s.is_empty()) {
        match TlsGroup::from_name(item) {
            Some(g) if !kept.contains(&g) => kept.push(g),
            Some(_) => {}
            None => dropped.push(item.to_string()),
        }
    }
    Mapped::Names { kept, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_and_iana_names_map() {
        assert_eq!(
            TlsSuite::from_name("ECDHE-RSA-AES256-GCM-SHA384"),
            Some(TlsSuite::EcdheRsaAes256GcmSha384)
        );
        assert_eq!(
            TlsSuite::from_name("TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384"),
            Some(TlsSuite::EcdheRsaAes256GcmSha384)
        );
        assert_eq!(
            TlsSuite::from_name("TLS_AES_256_GCM_SHA384").map(TlsSuite::rustls_name),
            Some("TLS13_AES_256_GCM_SHA384")
        );
    }

    #[test]
    fn dhe_and_cbc_are_dropped() {
        let m = map_suites(
            "TLS-DHE-RSA-WITH-AES-256-CBC-SHA:DHE-RSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256",
        );
        assert_eq!(
            m,
            Mapped::Names {
                kept: vec![TlsSuite::EcdheRsaAes128GcmSha256],
                dropped: vec![
                    "TLS-DHE-RSA-WITH-AES-256-CBC-SHA".into(),
                    "DHE-RSA-AES256-SHA".into()
                ]
            }
        );
    }

    #[test]
    fn keyword_lists_use_defaults() {
        assert_eq!(map_suites("DEFAULT:!EXP:!LOW"), Mapped::Keywords);
        assert_eq!(map_suites("HIGH:@SECLEVEL=0"), Mapped::Keywords);
    }

    #[test]
    fn groups() {
        assert_eq!(
            map_groups("X25519:prime256v1:ffdhe2048:X448"),
            Mapped::Names {
                kept: vec![TlsGroup::X25519, TlsGroup::Secp256r1],
                dropped: vec!["ffdhe2048".into(), "X448".into()]
            }
        );
    }
}
