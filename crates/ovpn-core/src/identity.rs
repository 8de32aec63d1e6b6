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
    #[error("<key> uses legacy PEM encryption with {0}, which is not supported; convert it with `openssl pkcs8 -topk8`")]
    LegacyPemEncryption(String),
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
        let pass = passphrase.ok_or(IdentityError::PassphraseNeeded)?;
        return legacy::decrypt(pem, pass);
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

/// Legacy OpenSSL PEM encryption (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`):
/// key = EVP_BytesToKey(MD5, salt = IV\[..8\], passphrase, 1 round), CBC.
mod legacy {
    use super::IdentityError;
    use base64::Engine;
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    use md5::{Digest, Md5};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivateSec1KeyDer};

    fn bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 16);
        let mut prev: Vec<u8> = Vec::new();
        while out.len() < len {
            let mut h = Md5::new();
            h.update(&prev);
            h.update(pass);
            h.update(salt);
            prev = h.finalize().to_vec();
            out.extend_from_slice(&prev);
        }
        out.truncate(len);
        out
    }

    fn hex(s: &str) -> Option<Vec<u8>> {
        if s.len() % 2 != 0 {
            return None;
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    }

    fn dec<C: BlockDecryptMut + KeyIvInit>(
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<usize, IdentityError> {
        let d = C::new_from_slices(key, iv)
            .map_err(|_| IdentityError::BadKey("bad legacy PEM IV length".into()))?;
        d.decrypt_padded_mut::<Pkcs7>(data)
            .map(|p| p.len())
            .map_err(|_| IdentityError::Decrypt("wrong passphrase".into()))
    }

    pub(super) fn decrypt(pem: &str, pass: &str) -> Result<PrivateKeyDer<'static>, IdentityError> {
        let bad = |m: &str| IdentityError::BadKey(m.to_string());
        let label = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            "RSA"
        } else if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            "EC"
        } else {
            return Err(bad("encrypted PEM key is neither RSA nor EC"));
        };
        let dek = pem
            .lines()
            .find_map(|l| l.trim().strip_prefix("DEK-Info:"))
            .ok_or_else(|| bad("missing DEK-Info"))?;
        let (alg, iv_hex) = dek
            .trim()
            .split_once(',')
            .ok_or_else(|| bad("malformed DEK-Info"))?;
        let iv = hex(iv_hex.trim()).ok_or_else(|| bad("DEK-Info IV is not hex"))?;
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .filter(|l| !l.contains(':'))
            .map(str::trim)
            .collect();
        let mut data = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| bad("key body is not base64"))?;
        let salt = iv.get(..8).ok_or_else(|| bad("DEK-Info IV too short"))?;
        let alg = alg.trim().to_ascii_uppercase();
        let key_len = match alg.as_str() {
            "AES-128-CBC" => 16,
            "AES-192-CBC" => 24,
            "AES-256-CBC" => 32,
            "DES-EDE3-CBC" => 24,
            other => return Err(IdentityError::LegacyPemEncryption(other.to_string())),
        };
        let key = bytes_to_key(pass.as_bytes(), salt, key_len);
        let n = match alg.as_str() {
            "AES-128-CBC" => dec::<cbc::Decryptor<aes::Aes128>>(&key, &iv, &mut data)?,
            "AES-192-CBC" => dec::<cbc::Decryptor<aes::Aes192>>(&key, &iv, &mut data)?,
            "AES-256-CBC" => dec::<cbc::Decryptor<aes::Aes256>>(&key, &iv, &mut data)?,
            _ => dec::<cbc::Decryptor<des::TdesEde3>>(&key, &iv, &mut data)?,
        };
        data.truncate(n);
        // A wrong passphrase can still yield valid padding: check the DER SEQUENCE.
        if data.first() != Some(&0x30) {
            return Err(IdentityError::Decrypt("wrong passphrase".into()));
        }
        Ok(if label == "RSA" {
            PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(data))
        } else {
            PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(data))
        })
    }
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
    fn legacy_pem_encryption_decrypts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        let read = |f: &str| std::fs::read(format!("{dir}{f}")).unwrap();
        let rsa_pem = String::from_utf8(read("legacy-rsa-aes256.pem")).unwrap();
        let k = load_pem_key(&rsa_pem, Some("oxivpn")).unwrap();
        assert!(matches!(k, PrivateKeyDer::Pkcs1(_)));
        assert_eq!(k.secret_der(), read("legacy-rsa.der").as_slice());
        let ec_pem = String::from_utf8(read("legacy-ec-des3.pem")).unwrap();
        let k = load_pem_key(&ec_pem, Some("oxivpn")).unwrap();
        assert!(matches!(k, PrivateKeyDer::Sec1(_)));
        assert_eq!(k.secret_der(), read("legacy-ec.der").as_slice());
        assert!(matches!(
            load_pem_key(&ec_pem, Some("nope")),
            Err(IdentityError::Decrypt(_))
        ));
        assert_eq!(
            load_pem_key(&ec_pem, None).unwrap_err(),
            IdentityError::PassphraseNeeded
        );
    }

    #[test]
    fn legacy_and_garbage_keys_rejected() {
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: BF-CBC,0011223344556677\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            load_pem_key(legacy, Some("x")).unwrap_err(),
            IdentityError::LegacyPemEncryption("BF-CBC".into())
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
