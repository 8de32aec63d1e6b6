//! Server certificate verification with OpenVPN semantics (§4):
//! chain to the profile's CA only (webpki), no host name check, then the
//! leaf checks `remote-cert-tls server`, `remote-cert-ku/eku`,
//! `verify-x509-name` and `peer-fingerprint`.

use crate::config::{VerifyOptions, X509NameKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use x509_parser::prelude::*;

/// id-kp-serverAuth 1.3.6.1.5.5.7.3.1, DER content octets.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// Why a server certificate was refused; shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    #[error("server certificate is not signed by the profile's <ca>")]
    UnknownIssuer,
    #[error("server certificate has expired")]
    Expired,
    #[error("server certificate is not valid yet (check the clock)")]
    NotValidYet,
    #[error("server certificate chain uses a signature algorithm or key rustls refuses (e.g. SHA-1 signatures or RSA keys below 2048 bits): {0}")]
    UnsupportedAlgorithm(String),
    #[error("server certificate has an unknown critical extension, which webpki refuses")]
    UnsupportedCriticalExtension,
    #[error("server certificate has an extended key usage without TLS Web Server Authentication")]
    EkuWithoutServerAuth,
    #[error("server certificate chain rejected: {0}")]
    Chain(String),
    #[error("remote-cert-tls server: server certificate has no key usage extension")]
    MissingKeyUsage,
    #[error("remote-cert-tls server: server certificate lacks extended key usage TLS Web Server Authentication")]
    MissingServerAuthEku,
    #[error("remote-cert-ku: server key usage {actual:#04x} matches none of {expected}")]
    KeyUsageMismatch { actual: u8, expected: String },
    #[error("remote-cert-eku: server certificate lacks {0}")]
    EkuMismatch(String),
    #[error("verify-x509-name: server certificate {what} {actual:?} does not match {expected:?}")]
    NameMismatch {
        what: &'static str,
        actual: String,
        expected: String,
    },
    #[error("peer-fingerprint: server certificate SHA-256 {0} is not in the profile's list")]
    FingerprintMismatch(String),
    #[error("server certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("server certificate has been revoked (crl-verify)")]
    Revoked,
}

/// Errors building the verifier from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifierConfigError {
    #[error("<ca>: {0}")]
    BadCa(String),
    #[error("neither <ca> nor peer-fingerprint is configured: the server cannot be authenticated")]
    NoTrust,
    #[error("crl-verify: {0}")]
    BadCrl(String),
}

/// Our [`ServerCertVerifier`].
#[derive(Debug)]
pub struct OpenVpnVerifier {
    roots: Option<Vec<TrustAnchor<'static>>>,
    crls: Vec<webpki::CertRevocationList<'static>>,
    opts: VerifyOptions,
    provider: Arc<CryptoProvider>,
    /// The most recent refusal, for a clear disconnect reason.
    last_error: Mutex<Option<VerifyError>>,
}

/// Parse all certificates of a PEM text.
pub fn parse_pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| format!("bad PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found".to_string());
    }
    // The profile check lets a certificate whose DER does not hold together through
    // with a warning (the corpus expects such profiles to import); here is where the
    // connection stops, in the same words, before rustls or webpki give a vaguer one.
    for (i, c) in certs.iter().enumerate() {
        if !der_whole(c) {
            return Err(format!(
                "certificate {} is damaged (its DER structure is incomplete: base64 lines \
                 missing or out of order); get an intact copy of the profile",
                i + 1
            ));
        }
    }
    Ok(certs)
}

/// One DER SEQUENCE that spans exactly the bytes given.
fn der_whole(der: &[u8]) -> bool {
    use x509_parser::der_parser;
    matches!(der_parser::parse_der(der), Ok((rest, obj)) if rest.is_empty() && obj.as_sequence().is_ok())
}

impl OpenVpnVerifier {
    pub fn new(
        ca_pem: Option<&str>,
        opts: VerifyOptions,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, VerifierConfigError> {
        let roots = match ca_pem {
            Some(pem) => {
                let certs = parse_pem_certs(pem).map_err(VerifierConfigError::BadCa)?;
                let mut anchors = Vec::new();
                for (i, c) in certs.iter().enumerate() {
                    let ta = webpki::anchor_from_trusted_cert(c).map_err(|e| {
                        VerifierConfigError::BadCa(format!("certificate #{}: {e}", i + 1))
                    })?;
                    anchors.push(ta.to_owned());
                }
                Some(anchors)
            }
            None if opts.peer_fingerprints.is_empty() => return Err(VerifierConfigError::NoTrust),
            None => None,
        };
        let mut crls = Vec::new();
        if let Some(pem) = &opts.crl_pem {
            use rustls::pki_types::pem::PemObject;
            for (i, der) in
                rustls::pki_types::CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
                    .enumerate()
            {
                let der = der.map_err(|e| VerifierConfigError::BadCrl(format!("bad PEM: {e}")))?;
                let crl = webpki::OwnedCertRevocationList::from_der(der.as_ref())
                    .map_err(|e| VerifierConfigError::BadCrl(format!("CRL #{}: {e:?}", i + 1)))?;
                crls.push(webpki::CertRevocationList::Owned(crl));
            }
            if crls.is_empty() {
                return Err(VerifierConfigError::BadCrl(
                    "no X509 CRL block found".into(),
                ));
            }
        }
        Ok(OpenVpnVerifier {
            roots,
            crls,
            opts,
            provider,
            last_error: Mutex::new(None),
        })
    }

    /// The reason of the last refusal, if any.
    pub fn last_error(&self) -> Option<VerifyError> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), VerifyError> {
        if let Some(roots) = &self.roots {
            let ee = webpki::EndEntityCert::try_from(end_entity)
                .map_err(|e| VerifyError::BadCertificate(e.to_string()))?;
            let crl_refs: Vec<&webpki::CertRevocationList<'_>> = self.crls.iter().collect();
            let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs)
                .ok()
                .map(|b| {
                    b.with_depth(webpki::RevocationCheckDepth::Chain)
                        .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                        .build()
                });
            ee.verify_for_usage(
                self.provider.signature_verification_algorithms.all,
                roots,
                intermediates,
                now,
                webpki::KeyUsage::required_if_present(EKU_SERVER_AUTH),
                revocation,
                None,
            )
            .map_err(map_webpki)?;
        }
        check_leaf(end_entity.as_ref(), &self.opts)
    }
}

fn map_webpki(e: webpki::Error) -> VerifyError {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => VerifyError::UnknownIssuer,
        E::CertExpired { .. } => VerifyError::Expired,
        E::CertNotValidYet { .. } => VerifyError::NotValidYet,
        // Same issuer name but a signature that does not verify: another CA.
        E::InvalidSignatureForPublicKey => VerifyError::UnknownIssuer,
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            VerifyError::UnsupportedAlgorithm(format!("{e:?}"))
        }
        E::UnsupportedCriticalExtension => VerifyError::UnsupportedCriticalExtension,
        E::CertRevoked => VerifyError::Revoked,
        E::RequiredEkuNotFoundContext(_) => VerifyError::EkuWithoutServerAuth,
        other => VerifyError::Chain(format!("{other:?}")),
    }
}

/// First byte of the KU bit string, as OpenVPN compares it (digitalSignature = 0x80).
fn ku_byte(flags: u16) -> u8 {
    let mut b = 0u8;
    for i in 0..8 {
        if flags & (1 << i) != 0 {
            b |= 1 << (7 - i);
        }
    }
    b
}

fn eku_oid_for(name: &str) -> String {
    match name {
        "TLS Web Server Authentication" | "serverAuth" => "1.3.6.1.5.5.7.3.1".into(),
        "TLS Web Client Authentication" | "clientAuth" => "1.3.6.1.5.5.7.3.2".into(),
        "Code Signing" | "codeSigning" => "1.3.6.1.5.5.7.3.3".into(),
        "E-mail Protection" | "emailProtection" => "1.3.6.1.5.5.7.3.4".into(),
        other => other.to_string(),
    }
}

fn short_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    match oid.to_id_string().as_str() {
        "2.5.4.3" => "CN".into(),
        "2.5.4.6" => "C".into(),
        "2.5.4.7" => "L".into(),
        "2.5.4.8" => "ST".into(),
        "2.5.4.10" => "O".into(),
        "2.5.4.11" => "OU".into(),
        "2.5.4.5" => "serialNumber".into(),
        "2.5.4.42" => "GN".into(),
        "2.5.4.4" => "SN".into(),
        "2.5.4.12" => "title".into(),
        "2.5.4.46" => "dnQualifier".into(),
        "1.2.840.113549.1.9.1" => "emailAddress".into(),
        "0.9.2342.19200300.100.1.25" => "DC".into(),
        "0.9.2342.19200300.100.1.1" => "UID".into(),
        other => other.to_string(),
    }
}

/// The subject as OpenSSL's one-line form used by OpenVPN (`C=DE, O=Org, CN=srv`).
pub fn subject_oneline(name: &X509Name<'_>) -> String {
    name.iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let v = atv.as_str().map(str::to_string).unwrap_or_else(|_| {
                        String::from_utf8_lossy(atv.attr_value().data).into_owned()
                    });
                    format!("{}={}", short_name(atv.attr_type()), v)
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .last()
        .and_then(|cn| cn.as_str().ok().map(str::to_string))
}

/// Colon-separated upper-case hex, as OpenVPN prints fingerprints.
pub fn fingerprint_hex(d: &[u8]) -> String {
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Leaf checks from the profile (no chain involved).
pub fn check_leaf(der: &[u8], opts: &VerifyOptions) -> Result<(), VerifyError> {
    if !opts.peer_fingerprints.is_empty() {
        let digest: [u8; 32] = Sha256::digest(der).into();
        if !opts.peer_fingerprints.contains(&digest) {
            return Err(VerifyError::FingerprintMismatch(fingerprint_hex(&digest)));
        }
    }
    let needs_parse = opts.remote_cert_tls_server
        || opts.remote_cert_eku.is_some()
        || !opts.remote_cert_ku.is_empty()
        || opts.verify_x509_name.is_some();
    if !needs_parse {
        return Ok(());
    }
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| VerifyError::BadCertificate(e.to_string()))?;
    let ku = cert
        .key_usage()
        .map_err(|e| VerifyError::BadCertificate(e.to_string()))?
        .map(|k| k.value.flags);
    let eku_oids: Option<Vec<String>> = cert
        .extended_key_usage()
        .map_err(|e| VerifyError::BadCertificate(e.to_string()))?
        .map(|e| {
            let mut v: Vec<String> = e.value.other.iter().map(|o| o.to_id_string()).collect();
            if e.value.server_auth {
                v.push("1.3.6.1.5.5.7.3.1".into());
            }
            if e.value.client_auth {
                v.push("1.3.6.1.5.5.7.3.2".into());
            }
            if e.value.code_signing {
                v.push("1.3.6.1.5.5.7.3.3".into());
            }
            if e.value.email_protection {
                v.push("1.3.6.1.5.5.7.3.4".into());
            }
            v
        });
    if opts.remote_cert_tls_server {
        if ku.is_none() {
            return Err(VerifyError::MissingKeyUsage);
        }
        let has = eku_oids
            .as_ref()
            .is_some_and(|v| v.iter().any(|o| o == "1.3.6.1.5.5.7.3.1"));
        if !has {
            return Err(VerifyError::MissingServerAuthEku);
        }
    }
    if !opts.remote_cert_ku.is_empty() {
        let Some(flags) = ku else {
            return Err(VerifyError::MissingKeyUsage);
        };
        let actual = ku_byte(flags);
        let ok = opts
            .remote_cert_ku
            .iter()
            .any(|&e| e <= 0xff && (u16::from(actual) & e) == e);
        if !ok {
            return Err(VerifyError::KeyUsageMismatch {
                actual,
                expected: opts
                    .remote_cert_ku
                    .iter()
                    .map(|e| format!("{e:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    if let Some(want) = &opts.remote_cert_eku {
        let oid = eku_oid_for(want);
        if !eku_oids.as_ref().is_some_and(|v| v.contains(&oid)) {
            return Err(VerifyError::EkuMismatch(want.clone()));
        }
    }
    if let Some((expected, kind)) = &opts.verify_x509_name {
        let subject = cert.subject();
        match kind {
            X509NameKind::Subject => {
                let actual = subject_oneline(subject);
                if &actual != expected {
                    return Err(VerifyError::NameMismatch {
                        what: "subject",
                        actual,
                        expected: expected.clone(),
                    });
                }
            }
            X509NameKind::Name | X509NameKind::NamePrefix => {
                let actual = common_name(subject).unwrap_or_default();
                let ok = if *kind == X509NameKind::Name {
                    &actual == expected
                } else {
                    actual.starts_with(expected.as_str())
                };
                if !ok {
                    return Err(VerifyError::NameMismatch {
                        what: "common name",
                        actual,
                        expected: expected.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Error type carried inside `rustls::Error::InvalidCertificate(Other(..))`.
#[derive(Debug)]
struct Refused(VerifyError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Refused {}

impl ServerCertVerifier for OpenVpnVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(e) => {
                tracing::warn!(error = %e, "server certificate refused");
                if let Ok(mut g) = self.last_error.lock() {
                    *g = Some(e.clone());
                }
                let ce = match e {
                    VerifyError::UnknownIssuer => CertificateError::UnknownIssuer,
                    VerifyError::Expired => CertificateError::Expired,
                    VerifyError::NotValidYet => CertificateError::NotValidYet,
                    other => CertificateError::Other(rustls::OtherError(Arc::new(Refused(other)))),
                };
                Err(rustls::Error::InvalidCertificate(ce))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    struct Pki {
        ca_pem: String,
        leaf_der: Vec<u8>,
    }

    fn pki(server_eku: bool, ku: bool) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CountryName, "DE");
        p.distinguished_name.push(DnType::OrganizationName, "Org");
        p.distinguished_name.push(DnType::CommonName, "server-1");
        if server_eku {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        if ku {
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        }
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf = p.signed_by(&leaf_key, &issuer).unwrap();
        Pki {
            ca_pem: ca.pem(),
            leaf_der: leaf.der().to_vec(),
        }
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000))
    }

    #[test]
    fn chain_to_profile_ca_without_hostname() {
        let p = pki(true, true);
        let v = OpenVpnVerifier::new(
            Some(&p.ca_pem),
            VerifyOptions {
                remote_cert_tls_server: true,
                ..Default::default()
            },
            provider(),
        )
        .unwrap();
        let leaf = CertificateDer::from(p.leaf_der.clone());
        let name = ServerName::try_from("unrelated.example").unwrap();
        assert!(v.verify_server_cert(&leaf, &[], &name, &[], now()).is_ok());
        // Another CA: refused with a clear reason.
        let other = pki(true, true);
        let v2 = OpenVpnVerifier::new(Some(&other.ca_pem), VerifyOptions::default(), provider())
            .unwrap();
        assert!(v2
            .verify_server_cert(&leaf, &[], &name, &[], now())
            .is_err());
        assert_eq!(v2.last_error(), Some(VerifyError::UnknownIssuer));
    }

    #[test]
    fn remote_cert_tls_requires_ku_and_eku() {
        let no_eku = pki(false, true);
        let opts = VerifyOptions {
            remote_cert_tls_server: true,
            ..Default::default()
        };
        assert_eq!(
            check_leaf(&no_eku.leaf_der, &opts),
            Err(VerifyError::MissingServerAuthEku)
        );
        let no_ku = pki(true, false);
        assert_eq!(
            check_leaf(&no_ku.leaf_der, &opts),
            Err(VerifyError::MissingKeyUsage)
        );
        assert!(check_leaf(&pki(true, true).leaf_der, &opts).is_ok());
    }

    #[test]
    fn remote_cert_ku_values() {
        let p = pki(true, true);
        // digitalSignature|keyEncipherment = 0xa0.
        let ok = VerifyOptions {
            remote_cert_ku: vec![0x88, 0xa0],
            ..Default::default()
        };
        assert!(check_leaf(&p.leaf_der, &ok).is_ok());
        let bad = VerifyOptions {
            remote_cert_ku: vec![0x88],
            ..Default::default()
        };
        assert!(matches!(
            check_leaf(&p.leaf_der, &bad),
            Err(VerifyError::KeyUsageMismatch { actual: 0xa0, .. })
        ));
        let eku = VerifyOptions {
            remote_cert_eku: Some("TLS Web Server Authentication".into()),
            ..Default::default()
        };
        assert!(check_leaf(&p.leaf_der, &eku).is_ok());
    }

    #[test]
    fn verify_x509_name_kinds() {
        let p = pki(true, true);
        let mk = |s: &str, k| VerifyOptions {
            verify_x509_name: Some((s.to_string(), k)),
            ..Default::default()
        };
        let subj = match check_leaf(&p.leaf_der, &mk("?", X509NameKind::Subject)) {
            Err(VerifyError::NameMismatch { actual, .. }) => actual,
            other => panic!("{other:?}"),
        };
        // Printed in certificate order (rcgen's order), OpenSSL one-line style.
        let mut parts: Vec<&str> = subj.split(", ").collect();
        parts.sort_unstable();
        assert_eq!(parts, vec!["C=DE", "CN=server-1", "O=Org"]);
        assert!(check_leaf(&p.leaf_der, &mk(&subj, X509NameKind::Subject)).is_ok());
        assert!(check_leaf(&p.leaf_der, &mk("CN=server-1", X509NameKind::Subject)).is_err());
        assert!(check_leaf(&p.leaf_der, &mk("server-1", X509NameKind::Name)).is_ok());
        assert!(check_leaf(&p.leaf_der, &mk("server", X509NameKind::Name)).is_err());
        assert!(check_leaf(&p.leaf_der, &mk("server", X509NameKind::NamePrefix)).is_ok());
    }

    #[test]
    fn crl_revokes_leaf() {
        use rcgen::{
            CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "CRL CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf = |serial: u64| {
            let k = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.serial_number = Some(SerialNumber::from(serial));
            p.distinguished_name.push(DnType::CommonName, "srv");
            p.signed_by(&k, &issuer).unwrap().der().clone()
        };
        let good = leaf(10);
        let bad = leaf(11);
        let crl = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2026, 1, 1),
            next_update: rcgen::date_time_ymd(2030, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(11u64),
                revocation_time: rcgen::date_time_ymd(2026, 1, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        let v = OpenVpnVerifier::new(
            Some(&ca.pem()),
            VerifyOptions {
                crl_pem: Some(crl.pem().unwrap()),
                ..Default::default()
            },
            provider(),
        )
        .unwrap();
        let name = ServerName::try_from("x").unwrap();
        assert!(v.verify_server_cert(&good, &[], &name, &[], now()).is_ok());
        assert!(v.verify_server_cert(&bad, &[], &name, &[], now()).is_err());
        assert_eq!(v.last_error(), Some(VerifyError::Revoked));
        assert!(matches!(
            OpenVpnVerifier::new(
                Some(&ca.pem()),
                VerifyOptions {
                    crl_pem: Some("garbage".into()),
                    ..Default::default()
                },
                provider()
            ),
            Err(VerifierConfigError::BadCrl(_))
        ));
    }

    #[test]
    fn fingerprint_without_ca() {
        let p = pki(true, true);
        let fp: [u8; 32] = Sha256::digest(&p.leaf_der).into();
        let v = OpenVpnVerifier::new(
            None,
            VerifyOptions {
                peer_fingerprints: vec![fp],
                ..Default::default()
            },
            provider(),
        )
        .unwrap();
        let leaf = CertificateDer::from(p.leaf_der.clone());
        let name = ServerName::try_from("x").unwrap();
        assert!(v.verify_server_cert(&leaf, &[], &name, &[], now()).is_ok());
        let other = CertificateDer::from(pki(true, true).leaf_der);
        assert!(v
            .verify_server_cert(&other, &[], &name, &[], now())
            .is_err());
        assert!(matches!(
            v.last_error(),
            Some(VerifyError::FingerprintMismatch(_))
        ));
        assert_eq!(
            OpenVpnVerifier::new(None, VerifyOptions::default(), provider()).unwrap_err(),
            VerifierConfigError::NoTrust
        );
    }
    /// The PEM of `pem` with two base64 lines swapped (eduVPN's example profile).
    fn scrambled(pem: &str) -> String {
        let mut lines: Vec<&str> = pem.lines().collect();
        lines.swap(2, 5);
        lines.join("\n") + "\n"
    }

    #[test]
    fn damaged_ca_stops_the_connection_with_its_reason() {
        let p = pki(true, true);
        let bad = scrambled(&p.ca_pem);
        assert_ne!(bad, p.ca_pem);
        let e = OpenVpnVerifier::new(Some(&bad), VerifyOptions::default(), provider())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("<ca>: certificate 1 is damaged"), "{e}");
        // The client certificate goes through the same parser.
        let two = format!("{}{}", p.ca_pem, bad);
        assert!(parse_pem_certs(&two)
            .unwrap_err()
            .starts_with("certificate 2 is damaged"));
        assert_eq!(parse_pem_certs(&p.ca_pem).unwrap().len(), 1);
    }
}
