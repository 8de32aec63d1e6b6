//! Loading the client certificate chain and private key (§4 "Client auth"):
//! PEM (PKCS#1, PKCS#8, SEC1, encrypted PKCS#8) and PKCS#12.

use crate::config::{ClientIdentity, Secret};
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
    /// The passphrase does not open the key (or the PKCS#12 archive): ask again.
    #[error("the private key's passphrase is wrong")]
    WrongPassphrase,
    #[error("<key>: wrong passphrase or unsupported encryption ({0})")]
    Decrypt(String),
    #[error("<key> uses legacy PEM encryption with {0}, which is not supported; convert it with `openssl pkey -in key.pem -out key8.pem`")]
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
            let key = load_pem_key(key, passphrase.as_ref().map(Secret::expose))?;
            Ok(Some(LoadedIdentity { chain, key }))
        }
        ClientIdentity::Pkcs12 {
            der,
            passphrase,
            extra_certs,
        } => {
            let mut id = load_pkcs12(der, passphrase.expose())?;
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
        let plain = enc.decrypt(pass.as_bytes()).map_err(pkcs8_decrypt_error)?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        IdentityError::BadKey(format!("no PKCS#1, PKCS#8 or SEC1 private key found ({e})"))
    })
}

/// Why `EncryptedPrivateKeyInfo::decrypt` failed: an algorithm we lack is named as
/// such; anything else (bad padding, garbage DER after decryption) means the
/// passphrase did not open the key.
fn pkcs8_decrypt_error(e: pkcs8::Error) -> IdentityError {
    use pkcs8::pkcs5::Error as P5;
    match e {
        pkcs8::Error::EncryptedPrivateKey(P5::UnsupportedAlgorithm { oid }) => {
            IdentityError::Decrypt(format!("unsupported encryption algorithm {oid}"))
        }
        pkcs8::Error::EncryptedPrivateKey(P5::NoPbes1CryptSupport) => IdentityError::Decrypt(
            "PKCS#5 v1.5 (PBES1) encryption is not supported; convert the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc`".into(),
        ),
        pkcs8::Error::EncryptedPrivateKey(P5::AlgorithmParametersInvalid { oid }) => {
            IdentityError::Decrypt(format!("invalid parameters for encryption algorithm {oid}"))
        }
        _ => IdentityError::WrongPassphrase,
    }
}

/// Legacy OpenSSL PEM encryption (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`), what
/// `openssl genrsa -aes256` and OpenSSL 1.x's `-traditional` write. No maintained
/// crate decrypts the whole form (RustCrypto declined it: formats#1249), so it is
/// composed from crates: `pem` reads the RFC 1421 headers, `evpkdf` is OpenSSL's
/// EVP_BytesToKey (MD5, one round, salt = the IV's first 8 bytes) and RustCrypto's
/// `cbc`/`aes`/`des` decrypt.
mod legacy {
    use super::IdentityError;
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivateSec1KeyDer};
    use zeroize::Zeroizing;

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
            .map_err(|_| IdentityError::BadKey("DEK-Info: wrong IV length".into()))?;
        d.decrypt_padded_mut::<Pkcs7>(data)
            .map(|p| p.len())
            .map_err(|_| IdentityError::WrongPassphrase)
    }

    pub(super) fn decrypt(pem: &str, pass: &str) -> Result<PrivateKeyDer<'static>, IdentityError> {
        let bad = |m: &str| IdentityError::BadKey(m.to_string());
        let block = pem::parse(pem.trim())
            .map_err(|e| IdentityError::BadKey(format!("encrypted PEM key: {e}")))?;
        let is_rsa = match block.tag() {
            "RSA PRIVATE KEY" => true,
            "EC PRIVATE KEY" => false,
            other => {
                return Err(IdentityError::BadKey(format!(
                    "encrypted PEM block {other:?} is neither an RSA nor an EC private key"
                )))
            }
        };
        let dek = block
            .headers()
            .get("DEK-Info")
            .ok_or_else(|| bad("encrypted PEM key without a DEK-Info header"))?;
        let (alg, iv_hex) = dek
            .split_once(',')
            .ok_or_else(|| bad("DEK-Info is not ALGORITHM,IV"))?;
        let iv = hex(iv_hex.trim()).ok_or_else(|| bad("DEK-Info: the IV is not hex"))?;
        let salt = iv
            .get(..8)
            .ok_or_else(|| bad("DEK-Info: the IV is too short"))?;
        let alg = alg.trim().to_ascii_uppercase();
        let key_len = match alg.as_str() {
            "AES-128-CBC" => 16,
            "AES-192-CBC" | "DES-EDE3-CBC" => 24,
            "AES-256-CBC" => 32,
            other => return Err(IdentityError::LegacyPemEncryption(other.to_string())),
        };
        let mut key = Zeroizing::new(vec![0u8; key_len]);
        evpkdf::evpkdf::<md5::Md5>(pass.as_bytes(), salt, 1, &mut key);
        let mut data = Zeroizing::new(block.into_contents());
        let n = match alg.as_str() {
            "AES-128-CBC" => dec::<cbc::Decryptor<aes::Aes128>>(&key, &iv, &mut data)?,
            "AES-192-CBC" => dec::<cbc::Decryptor<aes::Aes192>>(&key, &iv, &mut data)?,
            "AES-256-CBC" => dec::<cbc::Decryptor<aes::Aes256>>(&key, &iv, &mut data)?,
            _ => dec::<cbc::Decryptor<des::TdesEde3>>(&key, &iv, &mut data)?,
        };
        let plain = data.get(..n).unwrap_or_default().to_vec();
        // A wrong passphrase still yields valid padding about once in 256 tries: the
        // plaintext must at least be one DER SEQUENCE.
        if !is_one_der_sequence(&plain) {
            return Err(IdentityError::WrongPassphrase);
        }
        Ok(if is_rsa {
            PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(plain))
        } else {
            PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(plain))
        })
    }

    /// Whether `der` is exactly one DER SEQUENCE (tag, definite length, no trailing bytes).
    fn is_one_der_sequence(der: &[u8]) -> bool {
        use pkcs8::der::{Decode, Reader, SliceReader};
        let Ok(mut r) = SliceReader::new(der) else {
            return false;
        };
        let Ok(header) = pkcs8::der::Header::decode(&mut r) else {
            return false;
        };
        header.tag == pkcs8::der::Tag::Sequence && r.remaining_len() == header.length
    }
}

fn load_pkcs12(der: &[u8], passphrase: &str) -> Result<LoadedIdentity, IdentityError> {
    let ks = p12_keystore::KeyStore::from_pkcs12(
        der,
        passphrase,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| match e {
        // The MAC is keyed by the password; without a MAC, bad padding says the same.
        p12_keystore::error::Error::MacError(_) | p12_keystore::error::Error::UnpadError => {
            IdentityError::WrongPassphrase
        }
        other => IdentityError::Pkcs12(other.to_string()),
    })?;
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
        assert_eq!(
            load(&ClientIdentity::Pkcs12 {
                der,
                passphrase: "wrong".into(),
                extra_certs: None,
            })
            .unwrap_err(),
            IdentityError::WrongPassphrase
        );
    }

    /// Keys written by the real `openssl` at test time (no committed key material).
    struct OpenSsl(tempfile::TempDir);

    impl OpenSsl {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }
        fn run(&self, args: &[&str]) {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(self.0.path())
                .output()
                .expect("openssl (the test writes its keys with it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fn read(&self, f: &str) -> Vec<u8> {
            std::fs::read(self.0.path().join(f)).unwrap()
        }
        fn text(&self, f: &str) -> String {
            String::from_utf8(self.read(f)).unwrap()
        }
        /// The plain PKCS#8 DER of `f`.
        fn pkcs8_der(&self, f: &str) -> Vec<u8> {
            self.run(&[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                f,
                "-outform",
                "DER",
                "-out",
                "plain.der",
            ]);
            self.read("plain.der")
        }
    }

    fn assert_wrong_and_needed(pem: &str) {
        assert_eq!(
            load_pem_key(pem, Some("not-it")).unwrap_err(),
            IdentityError::WrongPassphrase,
            "{pem}"
        );
        assert_eq!(
            load_pem_key(pem, Some("not-it")).unwrap_err().to_string(),
            "the private key's passphrase is wrong"
        );
        assert_eq!(
            load_pem_key(pem, None).unwrap_err(),
            IdentityError::PassphraseNeeded
        );
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "writes its keys with the openssl command, which the Wine run lacks"
    )]
    fn openssl_encrypted_pkcs8_pbkdf2_and_scrypt_decrypt() {
        let o = OpenSsl::new();
        o.run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ]);
        let plain = o.pkcs8_der("k.pem");
        o.run(&[
            "pkcs8",
            "-topk8",
            "-in",
            "k.pem",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:pw 1",
            "-out",
            "p.pem",
        ]);
        o.run(&[
            "pkcs8",
            "-topk8",
            "-in",
            "k.pem",
            "-scrypt",
            "-scrypt_N",
            "1024",
            "-passout",
            "pass:pw 1",
            "-out",
            "s.pem",
        ]);
        for f in ["p.pem", "s.pem"] {
            let pem = o.text(f);
            assert!(
                pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
                "{f}"
            );
            let k = load_pem_key(&pem, Some("pw 1")).unwrap();
            assert!(matches!(k, PrivateKeyDer::Pkcs8(_)), "{f}");
            assert_eq!(k.secret_der(), plain.as_slice(), "{f}");
            assert_wrong_and_needed(&pem);
        }
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "writes its keys with the openssl command, which the Wine run lacks"
    )]
    fn openssl_traditional_encrypted_pem_decrypts() {
        let o = OpenSsl::new();
        o.run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ]);
        o.run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "r.pem",
        ]);
        // What `openssl genrsa -aes256` / `openssl ec -aes256` (and OpenSSL 1.x) write.
        o.run(&[
            "ec",
            "-in",
            "k.pem",
            "-aes256",
            "-passout",
            "pass:pw",
            "-out",
            "ec-aes256.pem",
        ]);
        o.run(&[
            "ec",
            "-in",
            "k.pem",
            "-aes128",
            "-passout",
            "pass:pw",
            "-out",
            "ec-aes128.pem",
        ]);
        o.run(&[
            "rsa",
            "-in",
            "r.pem",
            "-traditional",
            "-des3",
            "-passout",
            "pass:pw",
            "-out",
            "rsa-des3.pem",
        ]);
        o.run(&[
            "rsa",
            "-in",
            "r.pem",
            "-traditional",
            "-aes192",
            "-passout",
            "pass:pw",
            "-out",
            "rsa-aes192.pem",
        ]);
        o.run(&["ec", "-in", "k.pem", "-outform", "DER", "-out", "ec.der"]);
        o.run(&[
            "rsa",
            "-in",
            "r.pem",
            "-traditional",
            "-outform",
            "DER",
            "-out",
            "rsa.der",
        ]);
        for (f, plain) in [
            ("ec-aes256.pem", "ec.der"),
            ("ec-aes128.pem", "ec.der"),
            ("rsa-des3.pem", "rsa.der"),
            ("rsa-aes192.pem", "rsa.der"),
        ] {
            let pem = o.text(f);
            assert!(pem.contains("Proc-Type: 4,ENCRYPTED"), "{f}");
            let k = load_pem_key(&pem, Some("pw")).unwrap();
            if plain == "rsa.der" {
                assert!(matches!(k, PrivateKeyDer::Pkcs1(_)), "{f}");
            } else {
                assert!(matches!(k, PrivateKeyDer::Sec1(_)), "{f}");
            }
            assert_eq!(k.secret_der(), o.read(plain).as_slice(), "{f}");
            assert_wrong_and_needed(&pem);
        }
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "writes its keys with the openssl command, which the Wine run lacks"
    )]
    fn openssl_pkcs12_with_password_loads() {
        let o = OpenSsl::new();
        o.run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ]);
        o.run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "k.pem",
            "-subj",
            "/CN=client",
            "-days",
            "2",
            "-out",
            "c.pem",
        ]);
        o.run(&[
            "pkcs12",
            "-export",
            "-inkey",
            "k.pem",
            "-in",
            "c.pem",
            "-passout",
            "pass:p12 pw",
            "-out",
            "c.p12",
        ]);
        let der = o.read("c.p12");
        let plain = o.pkcs8_der("k.pem");
        let cert = crate::verify::parse_pem_certs(&o.text("c.pem")).unwrap();
        let p12 = |pass: &str| ClientIdentity::Pkcs12 {
            der: der.clone(),
            passphrase: pass.into(),
            extra_certs: None,
        };
        let id = load(&p12("p12 pw")).unwrap().unwrap();
        assert_eq!(id.chain, cert);
        assert_eq!(id.key.secret_der(), plain.as_slice());
        let e = load(&p12("wrong")).unwrap_err();
        assert_eq!(e, IdentityError::WrongPassphrase);
        assert_eq!(e.to_string(), "the private key's passphrase is wrong");
        // What OpenSSL 1.x wrote by default (RC2-40 and 3DES, SHA-1 MAC): `-legacy`.
        o.run(&[
            "pkcs12",
            "-export",
            "-legacy",
            "-inkey",
            "k.pem",
            "-in",
            "c.pem",
            "-passout",
            "pass:p12 pw",
            "-out",
            "legacy.p12",
        ]);
        let legacy = |pass: &str| ClientIdentity::Pkcs12 {
            der: o.read("legacy.p12"),
            passphrase: pass.into(),
            extra_certs: None,
        };
        let id = load(&legacy("p12 pw")).unwrap().unwrap();
        assert_eq!(id.chain, cert);
        assert_eq!(id.key.secret_der(), plain.as_slice());
        assert_eq!(
            load(&legacy("wrong")).unwrap_err(),
            IdentityError::WrongPassphrase
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
                passphrase: Secret::default(),
                extra_certs: None
            }),
            Err(IdentityError::Pkcs12(_))
        ));
    }
}
