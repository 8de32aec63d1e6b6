//! Test PKI made with `openssl` and `openvpn --genkey` at test time, once per process.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, Context};

use crate::cmd::run;

/// Key algorithm of the CA, server and client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    EcP256,
    Rsa2048,
}

/// PEM texts of a CA with one server and one client certificate (PKCS#8 keys).
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: String,
    /// The CA's key (PKCS#8), for revocation lists.
    pub ca_key: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// OpenVPN static keys: tls-auth/tls-crypt keys and tls-crypt-v2 server/client keys.
#[derive(Debug, Clone)]
pub struct StaticKeys {
    /// `openvpn --genkey secret`, used by the servers for tls-auth and tls-crypt.
    pub ta_key: String,
    /// Another such key, for "wrong key" cases.
    pub other_ta_key: String,
    pub v2_server: String,
    /// A client key wrapped by `v2_server`.
    pub v2_client: String,
}

static EC: OnceLock<Result<Pki, String>> = OnceLock::new();
static RSA: OnceLock<Result<Pki, String>> = OnceLock::new();
static KEYS: OnceLock<Result<StaticKeys, String>> = OnceLock::new();

/// The process-wide PKI for `alg`, generated on first use.
pub fn pki(alg: KeyAlg) -> anyhow::Result<&'static Pki> {
    let cell = match alg {
        KeyAlg::EcP256 => &EC,
        KeyAlg::Rsa2048 => &RSA,
    };
    cell.get_or_init(|| generate_pki(alg).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("lab PKI ({alg:?}): {e}"))
}

/// The process-wide OpenVPN static keys, generated on first use.
pub fn keys() -> anyhow::Result<&'static StaticKeys> {
    KEYS.get_or_init(|| generate_keys().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("lab static keys: {e}"))
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = DNS:server
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
";

fn generate_pki(alg: KeyAlg) -> anyhow::Result<Pki> {
    let dir = tempfile::tempdir().context("temp dir for the PKI")?;
    let d = dir.path();
    let cnf = d.join("openssl.cnf");
    std::fs::write(&cnf, OPENSSL_CNF)?;
    for who in ["ca", "server", "client"] {
        genkey(alg, &d.join(format!("{who}.key")))?;
    }
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca_ext",
            "-key",
            "ca.key",
            "-subj",
            "/CN=OxiVPN Lab CA",
            "-days",
            "3650",
            "-sha256",
            "-out",
            "ca.crt",
        ],
    )?;
    for (who, serial) in [("server", "2"), ("client", "3")] {
        openssl(
            d,
            &[
                "req",
                "-new",
                "-config",
                "openssl.cnf",
                "-key",
                &format!("{who}.key"),
                "-subj",
                &format!("/CN={who}"),
                "-out",
                &format!("{who}.csr"),
            ],
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "3650",
                "-sha256",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                &format!("{who}_ext"),
                "-out",
                &format!("{who}.crt"),
            ],
        )?;
    }
    let read = |f: &str| {
        std::fs::read_to_string(d.join(f)).with_context(|| format!("reading generated {f}"))
    };
    Ok(Pki {
        ca_cert: read("ca.crt")?,
        ca_key: read("ca.key")?,
        server_cert: read("server.crt")?,
        server_key: read("server.key")?,
        client_cert: read("client.crt")?,
        client_key: read("client.key")?,
    })
}

/// How the lab client's private key is protected by a passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProtection {
    /// `-----BEGIN ENCRYPTED PRIVATE KEY-----`: PBES2, PBKDF2 + AES-256-CBC
    /// (`openssl pkcs8 -topk8 -v2 aes-256-cbc`).
    Pkcs8,
    /// PKCS#8 with scrypt as the KDF (`openssl pkcs8 -topk8 -scrypt`).
    Pkcs8Scrypt,
    /// OpenSSL's traditional form: `Proc-Type: 4,ENCRYPTED`, `DEK-Info: AES-256-CBC,..`
    /// (`openssl pkey -traditional -aes256`, what `openssl genrsa -aes256` writes).
    Traditional,
}

/// The lab client's key for `alg`, encrypted with `passphrase` as `how` (PEM text).
pub fn encrypted_client_key(
    alg: KeyAlg,
    how: KeyProtection,
    passphrase: &str,
) -> anyhow::Result<String> {
    let p = pki(alg)?;
    let dir = tempfile::tempdir().context("temp dir for the encrypted key")?;
    let d = dir.path();
    std::fs::write(d.join("client.key"), &p.client_key)?;
    let pass = format!("pass:{passphrase}");
    let args: Vec<&str> = match how {
        KeyProtection::Pkcs8 => vec!["pkcs8", "-topk8", "-v2", "aes-256-cbc"],
        KeyProtection::Pkcs8Scrypt => vec!["pkcs8", "-topk8", "-scrypt", "-scrypt_N", "4096"],
        KeyProtection::Traditional => vec!["pkey", "-traditional", "-aes256"],
    };
    let mut all = args;
    all.extend(["-in", "client.key", "-passout", &pass, "-out", "enc.key"]);
    openssl(d, &all)?;
    std::fs::read_to_string(d.join("enc.key")).context("reading the encrypted key")
}

/// The lab client's certificate and key for `alg` in a PKCS#12 archive protected by
/// `password` (DER, what `openssl pkcs12 -export` writes).
pub fn client_pkcs12(alg: KeyAlg, password: &str) -> anyhow::Result<Vec<u8>> {
    let p = pki(alg)?;
    let dir = tempfile::tempdir().context("temp dir for the PKCS#12 archive")?;
    let d = dir.path();
    std::fs::write(d.join("client.key"), &p.client_key)?;
    std::fs::write(d.join("client.crt"), &p.client_cert)?;
    let pass = format!("pass:{password}");
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "client.key",
            "-in",
            "client.crt",
            "-name",
            "client",
            "-passout",
            &pass,
            "-out",
            "client.p12",
        ],
    )?;
    std::fs::read(d.join("client.p12")).context("reading the PKCS#12 archive")
}

/// A second server certificate of the lab CA (CN `server`, serial 4) that the CA has
/// revoked, and the CA's revocation list saying so (`openssl ca -revoke`, `-gencrl`).
#[derive(Debug, Clone)]
pub struct Revoked {
    pub server_cert: String,
    pub server_key: String,
    /// PEM `X509 CRL` listing serial 4 only (the lab's normal server, serial 2, is not in it).
    pub crl: String,
}

const CA_CNF: &str = "\
[ca]
default_ca = lab
[lab]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 3650
certificate = ca.crt
private_key = ca.key
";

static REVOKED_EC: OnceLock<Result<Revoked, String>> = OnceLock::new();

/// The revoked server certificate and the CRL of the lab's EC CA, made on first use.
pub fn revoked_server() -> anyhow::Result<&'static Revoked> {
    REVOKED_EC
        .get_or_init(|| generate_revoked(KeyAlg::EcP256).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("lab CRL: {e}"))
}

fn generate_revoked(alg: KeyAlg) -> anyhow::Result<Revoked> {
    let p = pki(alg)?;
    let dir = tempfile::tempdir().context("temp dir for the CRL")?;
    let d = dir.path();
    std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF)?;
    std::fs::write(d.join("ca.cnf"), CA_CNF)?;
    std::fs::write(d.join("ca.crt"), &p.ca_cert)?;
    std::fs::write(d.join("ca.key"), &p.ca_key)?;
    std::fs::write(d.join("index.txt"), "")?;
    std::fs::write(d.join("crlnumber"), "01\n")?;
    genkey(alg, &d.join("revoked.key"))?;
    openssl(
        d,
        &[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-key",
            "revoked.key",
            "-subj",
            "/CN=server",
            "-out",
            "revoked.csr",
        ],
    )?;
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "revoked.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "4",
            "-days",
            "3650",
            "-sha256",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "server_ext",
            "-out",
            "revoked.crt",
        ],
    )?;
    openssl(d, &["ca", "-config", "ca.cnf", "-revoke", "revoked.crt"])?;
    openssl(
        d,
        &["ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem"],
    )?;
    let read = |f: &str| {
        std::fs::read_to_string(d.join(f)).with_context(|| format!("reading generated {f}"))
    };
    Ok(Revoked {
        server_cert: read("revoked.crt")?,
        server_key: read("revoked.key")?,
        crl: read("crl.pem")?,
    })
}

fn genkey(alg: KeyAlg, out: &Path) -> anyhow::Result<()> {
    let opt = match alg {
        KeyAlg::EcP256 => ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyAlg::Rsa2048 => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    };
    run(Command::new("openssl")
        .arg("genpkey")
        .args(opt)
        .arg("-out")
        .arg(out))?;
    Ok(())
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("openssl").current_dir(dir).args(args))?;
    Ok(())
}

fn generate_keys() -> anyhow::Result<StaticKeys> {
    let dir = tempfile::tempdir().context("temp dir for static keys")?;
    let d = dir.path();
    let ovpn = |args: &[&str]| -> anyhow::Result<()> {
        run(Command::new("openvpn").current_dir(d).args(args))?;
        Ok(())
    };
    ovpn(&["--genkey", "secret", "ta.key"])?;
    ovpn(&["--genkey", "secret", "other-ta.key"])?;
    ovpn(&["--genkey", "tls-crypt-v2-server", "v2-server.key"])?;
    ovpn(&[
        "--tls-crypt-v2",
        "v2-server.key",
        "--genkey",
        "tls-crypt-v2-client",
        "v2-client.key",
    ])?;
    let read = |f: &str| {
        std::fs::read_to_string(d.join(f)).with_context(|| format!("reading generated {f}"))
    };
    Ok(StaticKeys {
        ta_key: read("ta.key")?,
        other_ta_key: read("other-ta.key")?,
        v2_server: read("v2-server.key")?,
        v2_client: read("v2-client.key")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have(tool: &str) -> bool {
        Command::new(tool).arg("--version").output().is_ok()
    }

    #[test]
    fn pki_certificates_verify_with_the_right_purpose() {
        if !have("openssl") {
            eprintln!("SKIPPED: openssl not installed");
            return;
        }
        for alg in [KeyAlg::EcP256, KeyAlg::Rsa2048] {
            let p = pki(alg).unwrap();
            let d = tempfile::tempdir().unwrap();
            for (f, t) in [
                ("ca.crt", &p.ca_cert),
                ("server.crt", &p.server_cert),
                ("client.crt", &p.client_cert),
            ] {
                std::fs::write(d.path().join(f), t).unwrap();
            }
            let verify = |cert: &str, purpose: &str| {
                Command::new("openssl")
                    .current_dir(d.path())
                    .args(["verify", "-CAfile", "ca.crt", "-purpose", purpose, cert])
                    .output()
                    .unwrap()
                    .status
                    .success()
            };
            assert!(verify("server.crt", "sslserver"), "{alg:?} server cert");
            assert!(verify("client.crt", "sslclient"), "{alg:?} client cert");
            assert!(
                !verify("client.crt", "sslserver"),
                "{alg:?} client cert must not serve"
            );
            assert!(p.client_key.contains("BEGIN PRIVATE KEY"));
        }
    }

    #[test]
    fn static_keys_have_openvpn_headers() {
        if !have("openvpn") {
            eprintln!("SKIPPED: openvpn not installed");
            return;
        }
        let k = keys().unwrap();
        assert!(k.ta_key.contains("BEGIN OpenVPN Static key V1"));
        assert_ne!(k.ta_key, k.other_ta_key);
        assert!(k
            .v2_server
            .contains("BEGIN OpenVPN tls-crypt-v2 server key"));
        assert!(k
            .v2_client
            .contains("BEGIN OpenVPN tls-crypt-v2 client key"));
    }
}
