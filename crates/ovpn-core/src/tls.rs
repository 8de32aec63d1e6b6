//! The TLS session of one key_state: a rustls 0.23 buffered `ClientConnection`
//! fed from and drained into memory (§4). No SNI, no resumption, a fresh
//! connection per key_id, the caller's clock for certificate validity.

use crate::config::{ClientConfig, TlsVersion};
use crate::identity::{self, IdentityError};
use crate::verify::{OpenVpnVerifier, VerifierConfigError, VerifyError};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{NamedGroup, SupportedCipherSuite};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    Verifier(#[from] VerifierConfigError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("unsupported TLS setting: {0}")]
    Unsupported(String),
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

/// Failure of a running handshake, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlsError {
    #[error("server certificate refused: {0}")]
    Certificate(VerifyError),
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

/// Wall clock supplied by the caller (unix seconds), shared with rustls so
/// certificate validity is checked against the caller's time, never read here.
#[derive(Debug, Default)]
pub struct CallerClock(AtomicU64);

impl CallerClock {
    pub fn set(&self, unix_secs: u64) {
        self.0.store(unix_secs, Ordering::Relaxed);
    }
}

impl TimeProvider for CallerClock {
    fn current_time(&self) -> Option<UnixTime> {
        let s = self.0.load(Ordering::Relaxed);
        (s != 0).then(|| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
    }
}

/// Everything needed to start TLS sessions for one connection.
#[derive(Debug, Clone)]
pub struct TlsContext {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<OpenVpnVerifier>,
    pub clock: Arc<CallerClock>,
}

fn suite_from_name(name: &str) -> Option<&'static str> {
    // OpenSSL names and IANA names (OpenVPN accepts both) → rustls suite names.
    let n = name.trim().to_ascii_uppercase().replace('_', "-");
    let table: &[(&[&str], &str)] = &[
        (
            &[
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
            ],
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            &[
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
            ],
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            &[
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
            ],
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            &[
                "ECDHE-RSA-AES128-GCM-SHA256",
                "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
            ],
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            &[
                "ECDHE-RSA-AES256-GCM-SHA384",
                "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
            ],
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            &[
                "ECDHE-RSA-CHACHA20-POLY1305",
                "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
            ],
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (&["TLS-AES-128-GCM-SHA256"], "TLS13_AES_128_GCM_SHA256"),
        (&["TLS-AES-256-GCM-SHA384"], "TLS13_AES_256_GCM_SHA384"),
        (
            &["TLS-CHACHA20-POLY1305-SHA256"],
            "TLS13_CHACHA20_POLY1305_SHA256",
        ),
    ];
    table
        .iter()
        .find(|(names, _)| names.contains(&n.as_str()))
        .map(|(_, r)| *r)
}

fn suite_name(s: &SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

/// Filter `suites` (of one TLS version) by an OpenSSL-style list. Keywords
/// (`DEFAULT`, `HIGH`, `@SECLEVEL=0`, `!x` ...) keep the defaults when no
/// explicit suite we support is named.
fn filter_suites(
    list: &str,
    suites: Vec<SupportedCipherSuite>,
    what: &str,
) -> Result<Vec<SupportedCipherSuite>, TlsSetupError> {
    let mut wanted: Vec<&'static str> = Vec::new();
    let mut wildcard = false;
    for item in list.split([':', ',', ' ']).filter(|s| !s.is_empty()) {
        if let Some(name) = suite_from_name(item) {
            wanted.push(name);
        } else if item.starts_with(['!', '-', '+', '@'])
            || item
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            wildcard = true;
        } else {
            tracing::info!(
                suite = item,
                "{what}: suite not supported by rustls, skipped"
            );
        }
    }
    if wanted.is_empty() {
        if wildcard {
            return Ok(suites);
        }
        return Err(TlsSetupError::Unsupported(format!(
            "{what} {list:?} names no suite rustls implements (only ECDHE with AES-GCM or ChaCha20-Poly1305)"
        )));
    }
    let out: Vec<SupportedCipherSuite> = wanted
        .iter()
        .filter_map(|w| suites.iter().find(|s| suite_name(s) == *w).copied())
        .collect();
    Ok(out)
}

fn group_from_name(name: &str) -> Option<NamedGroup> {
    match name.trim().to_ascii_lowercase().as_str() {
        "x25519" => Some(NamedGroup::X25519),
        "p-256" | "prime256v1" | "secp256r1" => Some(NamedGroup::secp256r1),
        "p-384" | "secp384r1" => Some(NamedGroup::secp384r1),
        _ => None,
    }
}

/// Build the crypto provider honouring tls-cipher / tls-ciphersuites / tls-groups.
fn provider_for(cfg: &ClientConfig) -> Result<CryptoProvider, TlsSetupError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let (tls13, tls12): (Vec<_>, Vec<_>) = provider
        .cipher_suites
        .iter()
        .copied()
        .partition(|s| s.version() == &rustls::version::TLS13);
    let tls12 = match &cfg.tls.cipher_list {
        Some(l) => filter_suites(l, tls12, "tls-cipher")?,
        None => tls12,
    };
    let tls13 = match &cfg.tls.ciphersuites {
        Some(l) => filter_suites(l, tls13, "tls-ciphersuites")?,
        None => tls13,
    };
    provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
    if let Some(groups) = &cfg.tls.groups {
        let wanted: Vec<NamedGroup> = groups.split(':').filter_map(group_from_name).collect();
        let kx: Vec<_> = wanted
            .iter()
            .filter_map(|g| provider.kx_groups.iter().find(|k| k.name() == *g).copied())
            .collect();
        if kx.is_empty() {
            return Err(TlsSetupError::Unsupported(format!(
                "tls-groups {groups:?} names no group rustls implements (X25519, P-256, P-384)"
            )));
        }
        provider.kx_groups = kx;
    }
    Ok(provider)
}

fn versions_for(
    cfg: &ClientConfig,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    let min = cfg.tls.version_min.unwrap_or(TlsVersion::V1_2);
    let max = cfg.tls.version_max.unwrap_or(TlsVersion::V1_3);
    let mut v = Vec::new();
    if min <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        v.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::V1_3 {
        v.push(&rustls::version::TLS13);
    }
    if v.is_empty() {
        return Err(TlsSetupError::Unsupported(
            "tls-version-max below 1.2: rustls only speaks TLS 1.2 and 1.3".into(),
        ));
    }
    Ok(v)
}

impl TlsContext {
    pub fn new(cfg: &ClientConfig) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(provider_for(cfg)?);
        let verifier = Arc::new(OpenVpnVerifier::new(
            cfg.ca_pem.as_deref(),
            cfg.verify.clone(),
            provider.clone(),
        )?);
        let clock = Arc::new(CallerClock::default());
        let builder = rustls::ClientConfig::builder_with_details(provider, clock.clone())
            .with_protocol_versions(&versions_for(cfg)?)
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut config = match identity::load(&cfg.identity)? {
            Some(id) => builder
                .with_client_auth_cert(id.chain, id.key)
                .map_err(|e| TlsSetupError::Rustls(format!("client certificate/key: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = false;
        config.resumption = Resumption::disabled();
        Ok(TlsContext {
            config: Arc::new(config),
            verifier,
            clock,
        })
    }

    /// Start the TLS session of a new key_state.
    pub fn start(&self) -> Result<TlsSession, TlsSetupError> {
        let name = ServerName::try_from("openvpn-server")
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        let conn = rustls::ClientConnection::new(self.config.clone(), name)
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        Ok(TlsSession {
            conn,
            verifier: self.verifier.clone(),
            failed: None,
        })
    }
}

/// One TLS client session in memory.
pub struct TlsSession {
    conn: rustls::ClientConnection,
    verifier: Arc<OpenVpnVerifier>,
    failed: Option<TlsError>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("failed", &self.failed)
            .finish()
    }
}

fn describe(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P};
    match e {
        E::PeerIncompatible(P::NoCipherSuitesInCommon) => {
            "no TLS cipher suite in common: the server offers none rustls implements (ECDHE with AES-GCM/ChaCha20 only; DHE and CBC suites are unsupported)".into()
        }
        E::PeerIncompatible(P::NoKxGroupsInCommon) => {
            "no key-exchange group in common: rustls offers X25519, P-256, P-384 (ffdhe and X448 are unsupported)".into()
        }
        E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13) => {
            "the server speaks neither TLS 1.2 nor 1.3 (tls-version-max below 1.2 on the server?)".into()
        }
        E::AlertReceived(A::HandshakeFailure) => {
            "the server aborted the handshake (no common TLS version/suite/group, or it requires a client certificate)".into()
        }
        E::AlertReceived(A::ProtocolVersion) => {
            "the server refused the TLS version (server tls-version-max below 1.2?)".into()
        }
        E::AlertReceived(A::CertificateRequired) | E::AlertReceived(A::BadCertificate) => {
            format!("the server refused our client certificate ({e})")
        }
        E::AlertReceived(A::UnknownCA) => {
            "the server does not trust our client certificate (unknown CA)".into()
        }
        other => other.to_string(),
    }
}

impl TlsSession {
    /// Feed TLS bytes from one control message. Returns an error once the
    /// session is dead (the alert, if any, is still available via
    /// [`take_ciphertext`](Self::take_ciphertext)).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), TlsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(self.fail(TlsError::Handshake(e.to_string()))),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let err = match (&e, self.verifier.last_error()) {
                    (rustls::Error::InvalidCertificate(_), Some(v)) => TlsError::Certificate(v),
                    _ => TlsError::Handshake(describe(&e)),
                };
                return Err(self.fail(err));
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: TlsError) -> TlsError {
        self.failed = Some(e.clone());
        e
    }

    pub fn failed(&self) -> Option<&TlsError> {
        self.failed.as_ref()
    }

    /// TLS bytes waiting to be sent, at most `max` (call again for more).
    pub fn take_ciphertext(&mut self, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() && out.len() < max {
            let mut chunk = Vec::new();
            if self.conn.write_tls(&mut chunk).is_err() || chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        out
    }

    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Queue plaintext as one TLS write (one record when ≤ 16 KiB); held by
    /// rustls until the handshake completes.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| TlsError::Handshake(e.to_string()))
    }

    /// Drain decrypted plaintext into `out`.
    pub fn read_plaintext(&mut self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Negotiated protocol version and suite, for logs.
    pub fn describe_session(&self) -> String {
        let version = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(v) => format!("{v:?}"),
            None => "TLS (handshake not finished)".to_owned(),
        };
        match self.conn.negotiated_cipher_suite() {
            Some(s) => format!("{version} {:?}", s.suite()),
            None => version,
        }
    }

    /// RFC 5705/8446 exporter with NO context (OpenVPN's `use_context = 0`).
    pub fn export_keying_material(&self, label: &[u8], len: usize) -> Result<Vec<u8>, TlsError> {
        let mut out = vec![0u8; len];
        self.conn
            .export_keying_material(&mut out, label, None)
            .map_err(|e| TlsError::Handshake(format!("keying material export: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_lists() {
        let p = rustls::crypto::ring::default_provider();
        let tls12: Vec<_> = p
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
        let f = filter_suites(
            "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-SHA",
            tls12.clone(),
            "tls-cipher",
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(suite_name(&f[0]), "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
        assert_eq!(
            filter_suites("DEFAULT:@SECLEVEL=0", tls12.clone(), "tls-cipher")
                .unwrap()
                .len(),
            tls12.len()
        );
        assert!(matches!(
            filter_suites("DHE-RSA-AES256-GCM-SHA384", tls12, "tls-cipher"),
            Err(TlsSetupError::Unsupported(_))
        ));
    }

    #[test]
    fn versions_and_groups() {
        let mut cfg = ClientConfig::default();
        assert_eq!(versions_for(&cfg).unwrap().len(), 2);
        cfg.tls.version_min = Some(TlsVersion::V1_3);
        assert_eq!(versions_for(&cfg).unwrap().len(), 1);
        cfg.tls.version_min = None;
        cfg.tls.version_max = Some(TlsVersion::V1_1);
        assert!(versions_for(&cfg).is_err());
        let mut cfg = ClientConfig::default();
        cfg.tls.groups = Some("ffdhe2048:X448".into());
        assert!(matches!(
            provider_for(&cfg),
            Err(TlsSetupError::Unsupported(_))
        ));
        cfg.tls.groups = Some("prime256v1:X25519".into());
        assert_eq!(provider_for(&cfg).unwrap().kx_groups.len(), 2);
    }

    #[test]
    fn context_needs_trust() {
        let cfg = ClientConfig::default();
        assert!(matches!(
            TlsContext::new(&cfg),
            Err(TlsSetupError::Verifier(VerifierConfigError::NoTrust))
        ));
    }
}
