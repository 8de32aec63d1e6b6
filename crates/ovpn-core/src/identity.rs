//! Loading the client certificate chain and private key (§4 "Client auth"):
//! PEM (PKCS#1, PKCS#8, SEC1, encrypted PKCS#8) and PKCS#12.

use crate::config::ClientIdentity;
use crate::verify::parse_pem_certs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("<cert>: {0}")]
    BadCert(String),
    #[error("<key>: {0}")]
    BadKey(String),
    #[error("<key> is encrypted: a passphrase is needed")]
    PassphraseNeeded,
    #[error("<key>: wrong passphrase or unsupported encryption ({0})")]
    Decrypt(String),
    #[error("<key> uses legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which is not supported; convert it with `openssl pkcs8 -topk8`")]
    LegacyPemEncryption,
    #[error("pkcs12: {0}")]
    Pkcs12(String),
    #[error("extra-certs: {0}")]
    ExtraCerts(String),
}

/// A loaded identity: chain (leaf first) and key.
pub struct LoadedIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for LoadedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Load the identity from the configuration (`None` for no client cert).
pub fn load(identity: &ClientIdentity) -> Result<Option<LoadedIdentity>, IdentityError> {
    match identity {
        ClientIdentity::None => Ok(None),
        ClientIdentity::Pem {
            cert_chain,
            key,
            extra_certs,
            passphrase,
        } => {
            let mut chain = parse_pem_certs(cert_chain).map_err(IdentityError::BadCert)?;
            append_extra(&mut chain, extra_certs.as_deref())?;
            let key = load_pem_key(key, passphrase.as_deref())?;
            Ok(Some(LoadedIdentity { chain, key }))
        }
        ClientIdentity::Pkcs12 {
            der,
            passphrase,
            extra_certs,
        } => {
            let mut id = load_pkcs12(der, passphrase)?;
            append_extra(&mut id.chain, extra_certs.as_deref())?;
            Ok(Some(id))
        }
    }
}

fn append_extra(
    chain: &mut Vec<CertificateDer<'static>>,
    extra: Option<&str>,
) -> Result<(), IdentityError> {
    if let Some(pem) = extra {
        chain.extend(parse_pem_certs(pem).map_err(IdentityError::ExtraCerts)?);
    }
    Ok(())
}

/// Load a PEM private key; decrypts `ENCRYPTED PRIVATE KEY` with `passphrase`.
pub fn load_pem_key(
    pem: &str,
    passphrase: Option<&str>,
) -> Result<PrivateKeyDer<'static>, IdentityError> {
    use rustls::pki_types::pem::PemObject;
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(IdentityError::LegacyPemEncryption);
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let pass = passphrase.ok_or(IdentityError::PassphraseNeeded)?;
        let (label, doc) = pkcs8::der::Document::from_pem(pem.trim())
            .map_err(|e| IdentityError::BadKey(e.to_string()))?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(IdentityError::BadKey(format!(
                "unexpected PEM label {label}"
            )));
        }
        let enc = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| IdentityError::BadKey(e.to_string()))?;
        let plain = enc
            .decrypt(pass.as_bytes())
            .map_err(|e| IdentityError::Decrypt(e.to_string()))?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        IdentityError::BadKey(format!("no PKCS#1, PKCS#8 or SEC1 private key found ({e})"))
    })
}

fn load_pkcs12(der: &[u8], passphrase: &str) -> Result<LoadedIdentity, IdentityError> {
    let ks = p12_keystore::KeyStore::from_pkcs12(
        der,
        passphrase,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| IdentityError::Pkcs12(e.to_string()))?;
    let (_, chain) = ks
        .private_key_chain()
        .ok_or_else(|| IdentityError::Pkcs12("no private key with certificate found".into()))?;
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(IdentityError::Pkcs12("the key has no certificate".into()));
    }
    Ok(LoadedIdentity {
        chain: certs,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_and_key() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key)
    }

    #[test]
    fn pkcs8_pem_loads() {
        let (cert, key) = cert_and_key();
        let id = load(&ClientIdentity::Pem {
            cert_chain: cert.clone(),
            key: key.serialize_pem(),
            extra_certs: Some(cert),
            passphrase: None,
        })
        .unwrap()
        .unwrap();
        assert_eq!(id.chain.len(), 2);
        assert!(matches!(id.key, PrivateKeyDer::Pkcs8(_)));
    }

    #[test]
    fn encrypted_pkcs8_roundtrip() {
        let (_, key) = cert_and_key();
        let der = key.serialize_der();
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(7);
        let enc = info.encrypt(&mut rng, b"s3cret").unwrap();
        let pem = enc
            .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        assert_eq!(
            load_pem_key(&pem, None).unwrap_err(),
            IdentityError::PassphraseNeeded
        );
        assert!(matches!(
            load_pem_key(&pem, Some("wrong")),
            Err(IdentityError::Decrypt(_))
        ));
        let k = load_pem_key(&pem, Some("s3cret")).unwrap();
        assert_eq!(k.secret_der(), key.serialize_der().as_slice());
    }

    #[test]
    fn pkcs12_roundtrip() {
        let (cert_pem, key) = cert_and_key();
        let cert_der = crate::verify::parse_pem_certs(&cert_pem).unwrap().remove(0);
        let chain = p12_keystore::PrivateKeyChain::new(
            "k1",
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
            [p12_keystore::Certificate::from_der(cert_der.as_ref()).unwrap()],
        );
        let mut ks = p12_keystore::KeyStore::new();
        ks.add_entry(
            "client",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        let der = ks.writer("p12pass").write().unwrap();
        let id = load(&ClientIdentity::Pkcs12 {
            der: der.clone(),
            passphrase: "p12pass".into(),
            extra_certs: None,
        })
        .unwrap()
        .unwrap();
        assert_eq!(id.chain, vec![cert_der]);
        assert_eq!(id.key.secret_der(), key.serialize_der().as_slice());
        assert!(matches!(
            load(&ClientIdentity::Pkcs12 {
                der,
                passphrase: "wrong".into(),
                extra_certs: None,
            }),
            Err(IdentityError::Pkcs12(_))
        ));
    }

    #[test]
    fn legacy_and_garbage_keys_rejected() {
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            load_pem_key(legacy, Some("x")).unwrap_err(),
            IdentityError::LegacyPemEncryption
        );
        assert!(matches!(
            load_pem_key("nothing", None),
            Err(IdentityError::BadKey(_))
        ));
        assert!(matches!(
            load(&ClientIdentity::Pkcs12 {
                der: vec![1, 2, 3],
                passphrase: String::new(),
                extra_certs: None
            }),
            Err(IdentityError::Pkcs12(_))
        ));
    }
}
