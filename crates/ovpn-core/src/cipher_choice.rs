//! Which data cipher a session uses, from what the server said (§5.3, §6.3).
//!
//! A negotiating server (2.5+) pushes `cipher X` with X from our `IV_CIPHERS`
//! (the profile's `data-ciphers`). A server that negotiates nothing (2.3/2.4,
//! or 2.5 with `ncp-disable`) pushes its own `cipher` or none, and names it in
//! its options string. OpenVPN 2.6 refuses such a cipher unless it is in
//! `data-ciphers`; OpenVPN Connect connects. We connect too, but only with a
//! cipher the profile names (`data-ciphers`, `cipher` or
//! `data-ciphers-fallback`), say so ("legacy cipher"), and never with a 64-bit
//! block cipher (SWEET32).

use crate::data::Cipher;
use thiserror::Error;

/// 64-bit block ciphers OpenVPN servers may still use; refused by name.
const SIXTY_FOUR_BIT: &[&str] = &[
    "BF-CBC",
    "BF-CFB",
    "BF-OFB",
    "DES-CBC",
    "DES-CFB",
    "DES-OFB",
    "DES-EDE-CBC",
    "DES-EDE3-CBC",
    "DES-EDE-CFB",
    "DES-EDE3-CFB",
    "DESX-CBC",
    "CAST5-CBC",
    "IDEA-CBC",
    "RC2-CBC",
    "RC2-40-CBC",
    "RC2-64-CBC",
];

/// True for a 64-bit block cipher name (case-insensitive).
pub fn is_64bit_block(name: &str) -> bool {
    SIXTY_FOUR_BIT.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// The cipher the session will use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherChoice {
    pub cipher: Cipher,
    /// Not negotiated: the server's own cipher, named by the profile only in
    /// `cipher`/`data-ciphers-fallback` (or pushed by a server that did not
    /// negotiate). Shown as a "legacy cipher" warning.
    pub legacy: bool,
}

/// Why no cipher could be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CipherRefusal {
    #[error("the server uses {0}, a 64-bit block cipher open to the SWEET32 attack; OxiVPN refuses it (ask the server's operator for AES-256-GCM)")]
    SixtyFourBit(String),
    #[error("the server uses cipher {0}, which the profile does not name in data-ciphers, cipher or data-ciphers-fallback")]
    NotNamed(String),
    #[error("the server uses cipher {0}, which OxiVPN does not support (AES-GCM, CHACHA20-POLY1305, AES-CBC)")]
    Unsupported(String),
    #[error("the server chose no data cipher from data-ciphers and names none (old server without cipher negotiation? add its cipher to the profile)")]
    NoneChosen,
}

/// Picks the cipher: `pushed` from PUSH_REPLY, `server_occ` from the server's
/// options string; `data_ciphers` is what we offered, `fallback` the
/// profile's `data-ciphers-fallback` and `cipher` names.
pub fn choose(
    pushed: Option<&str>,
    server_occ: Option<&str>,
    data_ciphers: &[String],
    fallback: &[String],
) -> Result<CipherChoice, CipherRefusal> {
    let in_list = |l: &[String], n: &str| l.iter().any(|x| x.eq_ignore_ascii_case(n));
    let name = match (pushed, server_occ) {
        (Some(p), _) => p,
        // Non-negotiating server: its options string names its cipher.
        (None, Some(c)) => c,
        // Nothing named at all (very old servers): the profile's fallback.
        (None, None) => fallback
            .first()
            .map(String::as_str)
            .ok_or(CipherRefusal::NoneChosen)?,
    };
    if is_64bit_block(name) {
        return Err(CipherRefusal::SixtyFourBit(name.to_ascii_uppercase()));
    }
    let negotiated = in_list(data_ciphers, name);
    if !negotiated && !in_list(fallback, name) {
        return Err(CipherRefusal::NotNamed(name.to_string()));
    }
    let cipher =
        Cipher::from_name(name).ok_or_else(|| CipherRefusal::Unsupported(name.to_string()))?;
    // A pushed cipher from our offer is negotiation; anything else is the
    // server's fixed cipher, accepted because the profile names it.
    let legacy = !(pushed.is_some() && negotiated);
    Ok(CipherChoice { cipher, legacy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_string()).collect()
    }

    const OFFER: &[&str] = &["AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305"];

    #[test]
    fn negotiated_cipher_is_not_legacy() {
        let c = choose(Some("AES-256-GCM"), Some("AES-256-GCM"), &v(OFFER), &[]).unwrap();
        assert_eq!(
            c,
            CipherChoice {
                cipher: Cipher::Aes256Gcm,
                legacy: false
            }
        );
    }

    #[test]
    fn legacy_server_cipher_named_by_profile_cipher_connects_with_warning() {
        // 2.5 + ncp-disable pushes its cipher; the old profile says `cipher AES-256-CBC`.
        let c = choose(
            Some("AES-256-CBC"),
            Some("AES-256-CBC"),
            &v(OFFER),
            &v(&["AES-256-CBC"]),
        )
        .unwrap();
        assert_eq!(
            c,
            CipherChoice {
                cipher: Cipher::Aes256Cbc,
                legacy: true
            }
        );
        // 2.4-era server: no push, only its options string.
        let c = choose(None, Some("AES-256-CBC"), &v(OFFER), &v(&["AES-256-CBC"])).unwrap();
        assert!(c.legacy);
        // named in data-ciphers but not negotiated (not pushed): still legacy
        let c = choose(None, Some("AES-256-CBC"), &v(&["AES-256-CBC"]), &[]).unwrap();
        assert!(c.legacy);
    }

    #[test]
    fn never_a_cipher_the_profile_did_not_name() {
        assert_eq!(
            choose(Some("AES-256-CBC"), None, &v(OFFER), &[]),
            Err(CipherRefusal::NotNamed("AES-256-CBC".into()))
        );
        assert_eq!(
            choose(None, Some("AES-128-CBC"), &v(OFFER), &v(&["AES-256-CBC"])),
            Err(CipherRefusal::NotNamed("AES-128-CBC".into()))
        );
        assert_eq!(
            choose(None, None, &v(OFFER), &[]),
            Err(CipherRefusal::NoneChosen)
        );
    }

    #[test]
    fn sixty_four_bit_block_ciphers_are_refused_by_name() {
        for name in ["BF-CBC", "bf-cbc", "DES-EDE3-CBC", "DES-CBC", "CAST5-CBC"] {
            let e = choose(Some(name), None, &v(OFFER), &v(&[name])).unwrap_err();
            assert!(e.to_string().contains(&name.to_ascii_uppercase()), "{e}");
            assert!(matches!(e, CipherRefusal::SixtyFourBit(_)));
        }
        // even when only the profile falls back to it
        assert!(matches!(
            choose(None, None, &v(OFFER), &v(&["BF-CBC"])),
            Err(CipherRefusal::SixtyFourBit(_))
        ));
    }

    #[test]
    fn named_but_unsupported() {
        assert_eq!(
            choose(None, Some("AES-256-CFB"), &v(OFFER), &v(&["AES-256-CFB"])),
            Err(CipherRefusal::Unsupported("AES-256-CFB".into()))
        );
    }
}
