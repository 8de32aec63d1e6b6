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
        server_cert: read("server.crt")?,
        server_key: read("server.key")?,
        client_cert: read("client.crt")?,
        client_key: read("client.key")?,
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
