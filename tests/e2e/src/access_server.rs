//! A stand-in OpenVPN Access Server on loopback, for "import from a server" tests.
//!
//! `access_server.py` answers the Access Server's REST profile download
//! (`/rest/GetUserlogin`, `/rest/GetAutologin`) as its documentation describes it:
//! HTTP Basic credentials, the profile as `text/plain`, and `<Error>` XML bodies with an
//! error status for a wrong password, a missing autologin right, a user not enrolled, and
//! a CRV1 challenge for a second factor. It also serves a few plain pages for URL
//! imports (a profile, a redirect to it, an HTML sign-in page, a text file, a 404).
//!
//! The TLS certificate is issued for `localhost`/127.0.0.1 by the lab CA ([`crate::pki`]);
//! other [`CertKind`]s give the certificate problems a client must name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context};

use crate::cmd::run;
use crate::pki::{keys, pki, KeyAlg};
use crate::process::Proc;

const SCRIPT: &str = include_str!("access_server.py");

/// Users the stand-in knows (user name, password).
pub const AS_USER: (&str, &str) = ("ann", "correct horse");
/// May download the autologin profile.
pub const AS_AUTOLOGIN_USER: (&str, &str) = ("auto", "battery staple");
/// Gets a CRV1 challenge after the right password; [`AS_OTP`] answers it.
pub const AS_MFA_USER: (&str, &str) = ("mfa", "second factor");
/// Right password, but "must enroll in Authenticator first" (9008).
pub const AS_UNENROLLED_USER: (&str, &str) = ("newbie", "not enrolled");
/// The one-time code that answers the challenge.
pub const AS_OTP: &str = "123456";
/// The challenge text the server sends (without the "(9007)" code it appends).
pub const AS_CHALLENGE_TEXT: &str = "Enter the code from your authenticator app";

/// Which certificate the server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Issued by the lab CA for `localhost` and 127.0.0.1.
    LabCa,
    /// Self-signed for `localhost`: an issuer no client trusts.
    SelfSigned,
    /// Issued by the lab CA, but for the name `elsewhere.example` only.
    WrongName,
}

/// The running server; stopped on drop.
#[derive(Debug)]
pub struct AccessServer {
    proc: Proc,
    port: u16,
    dir: tempfile::TempDir,
}

impl AccessServer {
    /// Starts the server with a certificate of `kind`.
    pub fn start(kind: CertKind) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temp dir for the access server")?;
        let d = dir.path();
        let (cert, key) = certificate(d, kind)?;
        std::fs::write(d.join("userlogin.ovpn"), as_profile(true)?)?;
        std::fs::write(d.join("autologin.ovpn"), as_profile(false)?)?;
        let script = d.join("access_server.py");
        std::fs::write(&script, SCRIPT)?;
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(&cert).arg(&key).arg(d);
        let mut proc = Proc::spawn(cmd, "access-server", &d.join("server.log"))?;
        proc.wait_for_log("ready ", Duration::from_secs(10))?;
        let log = proc.log();
        let port = log
            .lines()
            .find_map(|l| l.strip_prefix("ready "))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow!("access server printed no port: {log}"))?;
        Ok(Self { proc, port, dir })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:PORT` (what a user types as the server's address).
    pub fn address(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// `https://localhost:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// The lab CA's certificate (PEM) that the server's certificate chains to.
    pub fn ca_pem() -> anyhow::Result<String> {
        Ok(pki(KeyAlg::EcP256)?.ca_cert.clone())
    }

    /// Writes the lab CA to `ca.pem` in the server's folder, for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> anyhow::Result<PathBuf> {
        let p = self.dir.path().join("ca.pem");
        std::fs::write(&p, Self::ca_pem()?)?;
        Ok(p)
    }

    /// The request lines the server logged (`"GET /rest/GetUserlogin?... HTTP/1.1" 200 -`).
    pub fn requests(&self) -> Vec<String> {
        self.proc
            .log()
            .lines()
            .filter_map(|l| l.strip_prefix("request "))
            .map(str::to_owned)
            .collect()
    }

    /// The profile the server hands out for the user-locked download.
    pub fn userlogin_profile(&self) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(
            self.dir.path().join("userlogin.ovpn"),
        )?)
    }
}

/// A profile shaped like the ones the Access Server generates: the comment header with
/// its `OVPN_ACCESS_SERVER_*` settings, `setenv` lines, udp and tcp remotes, and the
/// keys inline (lab CA, client certificate and key, a tls-crypt-v2 client key).
fn as_profile(userlogin: bool) -> anyhow::Result<String> {
    let p = pki(KeyAlg::EcP256)?;
    let k = keys()?;
    let user = AS_USER.0;
    let auth = if userlogin {
        "auth-user-pass\n"
    } else {
        "# OVPN_ACCESS_SERVER_AUTOLOGIN=1\n"
    };
    Ok(format!(
        "# Automatically generated OpenVPN client config file\n\
         # Generated on Mon Dec  7 05:00:00 2026 by vpn.example.com\n\
         # Note: this config file contains inline private keys\n\
         #       and therefore should be kept confidential!\n\
         # Define the profile name of this particular configuration file\n\
         # OVPN_ACCESS_SERVER_PROFILE={user}@vpn.example.com\n\
         # OVPN_ACCESS_SERVER_CLI_PREF_ALLOW_WEB_IMPORT=True\n\
         # OVPN_ACCESS_SERVER_CLI_PREF_BASIC_CLIENT=False\n\
         # OVPN_ACCESS_SERVER_WSHOST=vpn.example.com:443\n\
         setenv FORWARD_COMPATIBLE 1\n\
         client\n\
         server-poll-timeout 4\n\
         nobind\n\
         remote vpn.example.com 1194 udp\n\
         remote vpn.example.com 443 tcp\n\
         dev tun\n\
         dev-type tun\n\
         remote-cert-tls server\n\
         tls-version-min 1.2\n\
         reneg-sec 604800\n\
         tun-mtu 1420\n\
         {auth}\
         verb 3\n\
         push-peer-info\n\
         <ca>\n{}</ca>\n<cert>\n{}</cert>\n<key>\n{}</key>\n<tls-crypt-v2>\n{}</tls-crypt-v2>\n",
        p.ca_cert, p.client_cert, p.client_key, k.v2_client
    ))
}

const EXT: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = @names
[names]
";

/// Writes a key and a certificate of `kind` into `d`; returns their paths.
fn certificate(d: &Path, kind: CertKind) -> anyhow::Result<(PathBuf, PathBuf)> {
    let names = match kind {
        CertKind::WrongName => "DNS.1 = elsewhere.example\n",
        CertKind::LabCa | CertKind::SelfSigned => "DNS.1 = localhost\nIP.1 = 127.0.0.1\n",
    };
    std::fs::write(d.join("ext.cnf"), format!("{EXT}{names}"))?;
    let openssl = |args: &[&str]| -> anyhow::Result<()> {
        run(Command::new("openssl").current_dir(d).args(args))?;
        Ok(())
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "https.key",
    ])?;
    if kind == CertKind::SelfSigned {
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-config",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-key",
            "https.key",
            "-subj",
            "/CN=localhost",
            "-days",
            "30",
            "-out",
            "https.crt",
        ])?;
    } else {
        let p = pki(KeyAlg::EcP256)?;
        std::fs::write(d.join("ca.crt"), &p.ca_cert)?;
        std::fs::write(d.join("ca.key"), &p.ca_key)?;
        openssl(&[
            "req",
            "-new",
            "-config",
            "ext.cnf",
            "-key",
            "https.key",
            "-subj",
            "/CN=access-server",
            "-out",
            "https.csr",
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "https.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "77",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-out",
            "https.crt",
        ])?;
        std::fs::remove_file(d.join("ca.key"))?;
    }
    Ok((d.join("https.crt"), d.join("https.key")))
}
