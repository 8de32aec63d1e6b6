//! OpenVPN 2.6 server variants (`TESTBED.md` "Server variants worth testing") and the
//! matching client profiles with inline blocks.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::lab::{addr, write_executable, Lab, Role};
use crate::pki::{keys, pki, KeyAlg};
use crate::process::Proc;

/// Transport between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// TCP with `tcp-nodelay` on the server (pushed to the client as well).
    TcpNoDelay,
    /// UDP over IPv6 (`proto udp6`, client remote `fd00:18::1`).
    Udp6,
    /// TCP over IPv6.
    Tcp6,
}

impl Transport {
    pub fn is_tcp(self) -> bool {
        matches!(self, Self::Tcp | Self::TcpNoDelay | Self::Tcp6)
    }
    pub fn is_ipv6(self) -> bool {
        matches!(self, Self::Udp6 | Self::Tcp6)
    }
}

/// Control-channel protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    None,
    /// `tls-auth` with key-direction 0 on the server, 1 on the client.
    TlsAuth,
    TlsCrypt,
    TlsCryptV2,
    /// tls-crypt-v2 with `force-cookie` (the server insists on the HMAC cookie).
    TlsCryptV2ForceCookie,
}

/// The one data-channel cipher the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCipher {
    Aes256Gcm,
    Chacha20Poly1305,
    /// AES-256-CBC with `auth SHA256`.
    Aes256CbcSha256,
}

impl DataCipher {
    pub fn openvpn_name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "AES-256-GCM",
            Self::Chacha20Poly1305 => "CHACHA20-POLY1305",
            Self::Aes256CbcSha256 => "AES-256-CBC",
        }
    }
}

/// Compression configured on the server and pushed to the client (or, with
/// [`ServerVariant::compression_in_profile`], written into the client profile
/// instead). The real algorithms come with `allow-compression yes` on the
/// server, so a 2.6 (or 2.5) server compresses what it sends whenever it shrinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    StubV2,
    CompLzoNo,
    /// `compress` (stub, swap framing).
    Stub,
    /// `comp-lzo yes`.
    CompLzoYes,
    /// bare `comp-lzo` (adaptive), as many provider profiles have it.
    CompLzoBare,
    /// `compress lzo`.
    Lzo,
    /// `comp-lzo adaptive`.
    CompLzoAdaptive,
    /// `compress lz4`.
    Lz4,
    /// `compress lz4-v2`.
    Lz4V2,
}

impl Compression {
    /// The directive line, or `None`.
    pub fn directive(self) -> Option<&'static str> {
        Some(match self {
            Self::None => return None,
            Self::StubV2 => "compress stub-v2",
            Self::CompLzoNo => "comp-lzo no",
            Self::Stub => "compress",
            Self::CompLzoYes => "comp-lzo yes",
            Self::CompLzoBare => "comp-lzo",
            Self::Lzo => "compress lzo",
            Self::CompLzoAdaptive => "comp-lzo adaptive",
            Self::Lz4 => "compress lz4",
            Self::Lz4V2 => "compress lz4-v2",
        })
    }

    /// A real algorithm (the server compresses what it sends).
    pub fn is_real(self) -> bool {
        matches!(
            self,
            Self::CompLzoYes
                | Self::CompLzoBare
                | Self::CompLzoAdaptive
                | Self::Lzo
                | Self::Lz4
                | Self::Lz4V2
        )
    }
}

/// An OpenVPN built from a release tag (see xtask's `openvpn_build`), run as the
/// server instead of Debian's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenvpnBuild {
    /// `2.5.11`, `2.7.6`.
    pub version: String,
    pub path: std::path::PathBuf,
}

impl OpenvpnBuild {
    /// The build xtask left in `/var/cache/oxivpn/openvpn-<version>/`
    /// (`OXIVPN_OPENVPN_CACHE` overrides the directory), if there is one.
    pub fn cached(version: &str) -> Option<Self> {
        let base = std::env::var_os("OXIVPN_OPENVPN_CACHE")
            .map_or_else(|| std::path::PathBuf::from("/var/cache/oxivpn"), Into::into);
        let path = base
            .join(format!("openvpn-{version}"))
            .join("sbin")
            .join("openvpn");
        path.is_file().then(|| Self {
            version: version.to_owned(),
            path,
        })
    }
}

/// Server topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topo {
    Subnet,
    Net30,
}

/// One server configuration.
#[derive(Debug, Clone)]
pub struct ServerVariant {
    pub transport: Transport,
    pub wrap: Wrap,
    pub cipher: DataCipher,
    pub key_alg: KeyAlg,
    /// Username/password checked by an `auth-user-pass-verify` script, with
    /// `verify-client-cert none` (the client has no certificate).
    pub user_pass: bool,
    /// `reneg-sec` on the server.
    pub reneg_sec: Option<u32>,
    /// `server-ipv6 fd00:8::/64` and a pushed `route-ipv6 fd00:10::/64`.
    pub ipv6: bool,
    pub compression: Compression,
    /// Put the compression line into the client profile instead of pushing it.
    pub compression_in_profile: bool,
    /// Which OpenVPN runs the server (Debian's 2.6 unless a built one is given).
    pub openvpn: Option<OpenvpnBuild>,
    /// OpenVPN 2.5's `ncp-disable` + `cipher AES-256-CBC`: a server that negotiates
    /// no cipher (2.3/2.4-era behaviour); `cipher` must be AES-256-CBC.
    pub ncp_disable: bool,
    pub topology: Topo,
    /// Push `route 10.0.0.0 255.255.255.0` instead of `redirect-gateway def1`.
    pub split_tunnel: bool,
}

impl Default for ServerVariant {
    /// The reference scenario's server: UDP, tls-crypt, AES-256-GCM, EC certificates,
    /// `redirect-gateway def1 bypass-dhcp`, `dhcp-option DNS 10.0.0.3`.
    fn default() -> Self {
        Self {
            transport: Transport::Udp,
            wrap: Wrap::TlsCrypt,
            cipher: DataCipher::Aes256Gcm,
            key_alg: KeyAlg::EcP256,
            user_pass: false,
            reneg_sec: None,
            ipv6: false,
            compression: Compression::None,
            compression_in_profile: false,
            openvpn: None,
            ncp_disable: false,
            topology: Topo::Subnet,
            split_tunnel: false,
        }
    }
}

/// Which credentials a user/password profile carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    Right,
    Wrong,
}

/// The accepted username and password of user/password servers.
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery";

/// Client-side choices for a profile.
#[derive(Debug, Clone)]
pub struct ClientVariant {
    pub credentials: Credentials,
    /// Put the credentials in an inline `<auth-user-pass>` block instead of a file.
    pub inline_credentials: bool,
    /// `reneg-sec` in the profile (client-initiated renegotiation).
    pub reneg_sec: Option<u32>,
    /// Use a tls-crypt (or tls-auth) key the server does not know.
    pub wrong_wrap_key: bool,
    /// An old profile: `cipher AES-256-CBC` + `auth SHA256` and no `data-ciphers`.
    pub legacy_cipher_only: bool,
    /// More lines appended to the profile.
    pub extra: Vec<String>,
}

impl Default for ClientVariant {
    fn default() -> Self {
        Self {
            credentials: Credentials::Right,
            inline_credentials: false,
            reneg_sec: None,
            wrong_wrap_key: false,
            legacy_cipher_only: false,
            extra: Vec::new(),
        }
    }
}

/// A written client profile.
#[derive(Debug, Clone)]
pub struct ClientProfile {
    pub path: PathBuf,
    pub text: String,
    /// Username and password file (two lines) for user/password servers, to pass as
    /// `--auth-file` (ours) or `--auth-user-pass` (openvpn).
    pub auth_file: Option<PathBuf>,
}

/// A running server inside a lab (the lab owns the process).
#[derive(Debug, Clone)]
pub struct ServerHandle {
    pub variant: ServerVariant,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub port: u16,
    proc_index: usize,
}

impl ServerHandle {
    /// The address clients connect to.
    pub fn remote_host(&self) -> &'static str {
        if self.variant.transport.is_ipv6() {
            addr::SERVER6
        } else {
            addr::SERVER
        }
    }

    /// Sends `sig` to the server process (SIGHUP makes OpenVPN restart, telling
    /// clients RESTART through explicit-exit-notify on UDP).
    pub fn signal(&self, lab: &mut Lab, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
        lab.kept_mut(self.proc_index)
            .context("the server process is gone")?
            .signal(sig)
    }

    /// The server's log so far.
    pub fn log(&self, lab: &Lab) -> String {
        lab.kept(self.proc_index).map(Proc::log).unwrap_or_default()
    }
}

const VERIFY_SCRIPT: &str = "#!/bin/sh
# auth-user-pass-verify via-file: $1 holds the username and the password on two lines.
user=$(sed -n 1p \"$1\")
pass=$(sed -n 2p \"$1\")
[ \"$user\" = \"__USER__\" ] && [ \"$pass\" = \"__PASS__\" ]
";

impl ServerVariant {
    /// The server's configuration text; files it names live next to it.
    pub fn config_text(&self, port: u16) -> String {
        let mut c = String::new();
        let mut line = |s: &str| {
            c.push_str(s);
            c.push('\n');
        };
        // OpenVPN refuses config lines over 256 bytes, comments included.
        let about: String = format!("{self:?}").chars().take(200).collect();
        line(&format!("# OxiVPN lab server: {about}"));
        line("dev tun");
        line(match self.transport {
            Transport::Udp => "proto udp",
            Transport::Tcp | Transport::TcpNoDelay => "proto tcp-server",
            Transport::Udp6 => "proto udp6",
            Transport::Tcp6 => "proto tcp6-server",
        });
        line(&format!("port {port}"));
        line(&format!(
            "topology {}",
            match self.topology {
                Topo::Subnet => "subnet",
                Topo::Net30 => "net30",
            }
        ));
        line("server 10.8.0.0 255.255.255.0");
        line("ca ca.crt");
        line("cert server.crt");
        line("key server.key");
        line("dh none");
        match self.wrap {
            Wrap::None => {}
            Wrap::TlsAuth => line("tls-auth ta.key 0"),
            Wrap::TlsCrypt => line("tls-crypt ta.key"),
            Wrap::TlsCryptV2 => line("tls-crypt-v2 v2-server.key"),
            Wrap::TlsCryptV2ForceCookie => line("tls-crypt-v2 v2-server.key force-cookie"),
        }
        if self.ncp_disable {
            line("ncp-disable");
            line(&format!("cipher {}", self.cipher.openvpn_name()));
        } else {
            line(&format!("data-ciphers {}", self.cipher.openvpn_name()));
        }
        if self.cipher == DataCipher::Aes256CbcSha256 {
            line("auth SHA256");
        }
        line("keepalive 10 60");
        if self.split_tunnel {
            line("push \"route 10.0.0.0 255.255.255.0\"");
        } else {
            line("push \"redirect-gateway def1 bypass-dhcp\"");
        }
        line("push \"dhcp-option DNS 10.0.0.3\"");
        if self.ipv6 {
            line("server-ipv6 fd00:8::/64");
            line("push \"route-ipv6 fd00:10::/64\"");
        }
        if let Some(d) = self.compression.directive() {
            line(d);
            if !self.compression_in_profile {
                line(&format!("push \"{d}\""));
            }
            if self.compression.is_real() {
                line("allow-compression yes");
            }
        }
        if let Some(s) = self.reneg_sec {
            line(&format!("reneg-sec {s}"));
        }
        if self.transport == Transport::TcpNoDelay {
            line("tcp-nodelay");
        }
        if !self.transport.is_tcp() {
            line("explicit-exit-notify 1");
        }
        if self.user_pass {
            line("verify-client-cert none");
            line("username-as-common-name");
            line("script-security 2");
            line("auth-user-pass-verify verify.sh via-file");
        }
        // 2.5 has no DCO and does not know the option.
        if self
            .openvpn
            .as_ref()
            .is_none_or(|o| !o.version.starts_with("2.5"))
        {
            line("disable-dco");
        }
        line("verb 3");
        c
    }

    /// The client profile (inline blocks) that matches this server.
    pub fn client_text(
        &self,
        remote: &str,
        port: u16,
        client: &ClientVariant,
    ) -> anyhow::Result<String> {
        let p = pki(self.key_alg)?;
        let k = keys()?;
        let mut c = String::new();
        let mut line = |s: &str| {
            c.push_str(s);
            c.push('\n');
        };
        line("client");
        line("dev tun");
        line(match self.transport {
            Transport::Udp => "proto udp",
            Transport::Tcp | Transport::TcpNoDelay => "proto tcp-client",
            Transport::Udp6 => "proto udp6",
            Transport::Tcp6 => "proto tcp6-client",
        });
        line(&format!("remote {remote} {port}"));
        line("nobind");
        line("remote-cert-tls server");
        if client.legacy_cipher_only {
            line("cipher AES-256-CBC");
            line("auth SHA256");
        } else if self.cipher == DataCipher::Aes256CbcSha256 {
            line("data-ciphers AES-256-CBC");
            line("auth SHA256");
        }
        if let Some(s) = client.reneg_sec {
            line(&format!("reneg-sec {s}"));
        }
        if self.compression_in_profile {
            if let Some(d) = self.compression.directive() {
                line(d);
            }
        }
        line("verb 3");
        for e in &client.extra {
            line(e);
        }
        let block = |c: &mut String, tag: &str, body: &str| {
            let _ = write!(c, "<{tag}>\n{}\n</{tag}>\n", body.trim_end());
        };
        block(&mut c, "ca", &p.ca_cert);
        if self.user_pass {
            if client.inline_credentials {
                block(
                    &mut c,
                    "auth-user-pass",
                    &credential_lines(client.credentials),
                );
            } else {
                c.push_str("auth-user-pass\n");
            }
        } else {
            block(&mut c, "cert", &p.client_cert);
            block(&mut c, "key", &p.client_key);
        }
        let ta = if client.wrong_wrap_key {
            &k.other_ta_key
        } else {
            &k.ta_key
        };
        match self.wrap {
            Wrap::None => {}
            Wrap::TlsAuth => {
                c.push_str("key-direction 1\n");
                block(&mut c, "tls-auth", ta);
            }
            Wrap::TlsCrypt => block(&mut c, "tls-crypt", ta),
            Wrap::TlsCryptV2 | Wrap::TlsCryptV2ForceCookie => {
                block(&mut c, "tls-crypt-v2", &k.v2_client)
            }
        }
        Ok(c)
    }
}

fn credential_lines(which: Credentials) -> String {
    match which {
        Credentials::Right => format!("{USERNAME}\n{PASSWORD}\n"),
        Credentials::Wrong => format!("{USERNAME}\nnot the password\n"),
    }
}

impl Lab {
    /// Starts an OpenVPN server for `variant` in the `srv` namespace and waits (at
    /// most 15 s) for "Initialization Sequence Completed"; the error carries the
    /// server's log when it fails. Each further server in the same lab gets the next
    /// port after 1194.
    pub fn start_server(&mut self, variant: &ServerVariant) -> anyhow::Result<ServerHandle> {
        self.start_server_with(variant, |text| text)
    }

    /// [`Lab::start_server`] with the configuration text passed through `edit` first.
    pub fn start_server_with(
        &mut self,
        variant: &ServerVariant,
        edit: impl FnOnce(String) -> String,
    ) -> anyhow::Result<ServerHandle> {
        let n = self.servers_started;
        self.servers_started += 1;
        let port = 1194 + n;
        let dir = self.dir().join(format!("server{n}"));
        std::fs::create_dir_all(&dir)?;
        let p = pki(variant.key_alg)?;
        let k = keys()?;
        for (f, t) in [
            ("ca.crt", &p.ca_cert),
            ("server.crt", &p.server_cert),
            ("server.key", &p.server_key),
            ("ta.key", &k.ta_key),
            ("v2-server.key", &k.v2_server),
        ] {
            std::fs::write(dir.join(f), t).with_context(|| format!("writing server {f}"))?;
        }
        if variant.user_pass {
            let script = VERIFY_SCRIPT
                .replace("__USER__", USERNAME)
                .replace("__PASS__", PASSWORD);
            write_executable(&dir.join("verify.sh"), &script)?;
        }
        let config_path = dir.join("server.conf");
        std::fs::write(&config_path, edit(variant.config_text(port)))?;
        let bin = variant
            .openvpn
            .as_ref()
            .map_or_else(|| std::path::PathBuf::from("openvpn"), |o| o.path.clone());
        let mut cmd = self.ns(Role::Srv)?.cmd(&bin);
        cmd.current_dir(&dir).arg("--config").arg(&config_path);
        let name = format!("openvpn-server{n}");
        let mut proc = Proc::spawn(cmd, &name, &self.dir().join(format!("{name}.log")))?;
        proc.wait_for_log("Initialization Sequence Completed", Duration::from_secs(15))
            .with_context(|| format!("starting the OpenVPN server {variant:?}"))?;
        let proc_index = self.keep(proc);
        Ok(ServerHandle {
            variant: variant.clone(),
            dir,
            config_path,
            port,
            proc_index,
        })
    }

    /// Writes the client profile for `server` (and the credentials file, when the
    /// server wants a password) into the lab directory as `<name>.ovpn`.
    pub fn write_client_profile(
        &self,
        server: &ServerHandle,
        client: &ClientVariant,
        name: &str,
    ) -> anyhow::Result<ClientProfile> {
        let text = server
            .variant
            .client_text(server.remote_host(), server.port, client)?;
        let path = self.dir().join(format!("{name}.ovpn"));
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        let auth_file = if server.variant.user_pass {
            let f = self.dir().join(format!("{name}.auth"));
            std::fs::write(&f, credential_lines(client.credentials))?;
            Some(f)
        } else {
            None
        };
        Ok(ClientProfile {
            path,
            text,
            auth_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_config_reflects_the_variant() {
        let v = ServerVariant {
            transport: Transport::TcpNoDelay,
            wrap: Wrap::TlsCryptV2ForceCookie,
            cipher: DataCipher::Aes256CbcSha256,
            user_pass: true,
            reneg_sec: Some(10),
            ipv6: true,
            compression: Compression::StubV2,
            topology: Topo::Net30,
            split_tunnel: true,
            ..ServerVariant::default()
        };
        let c = v.config_text(1195);
        for needle in [
            "proto tcp-server\n",
            "port 1195\n",
            "tcp-nodelay\n",
            "tls-crypt-v2 v2-server.key force-cookie\n",
            "data-ciphers AES-256-CBC\nauth SHA256\n",
            "verify-client-cert none\n",
            "auth-user-pass-verify verify.sh via-file\n",
            "reneg-sec 10\n",
            "server-ipv6 fd00:8::/64\n",
            "push \"compress stub-v2\"\n",
            "topology net30\n",
            "push \"route 10.0.0.0 255.255.255.0\"\n",
            "disable-dco\n",
        ] {
            assert!(c.contains(needle), "missing {needle:?} in\n{c}");
        }
        assert!(!c.contains("redirect-gateway"));
        assert!(
            !c.contains("explicit-exit-notify"),
            "TCP servers cannot use it"
        );
        let udp = ServerVariant::default().config_text(1194);
        assert!(udp.contains("explicit-exit-notify 1\n"));
        assert!(udp.contains("push \"redirect-gateway def1 bypass-dhcp\"\n"));
        assert!(udp.contains("tls-crypt ta.key\n"));
    }

    #[test]
    fn verify_script_accepts_only_the_right_password() {
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("verify.sh");
        write_executable(
            &script,
            &VERIFY_SCRIPT
                .replace("__USER__", USERNAME)
                .replace("__PASS__", PASSWORD),
        )
        .unwrap();
        let check = |which| {
            let f = d.path().join("creds");
            std::fs::write(&f, credential_lines(which)).unwrap();
            std::process::Command::new(&script)
                .arg(&f)
                .status()
                .unwrap()
                .success()
        };
        assert!(check(Credentials::Right));
        assert!(!check(Credentials::Wrong));
    }
}
