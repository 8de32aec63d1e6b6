//! Everything the client core needs to connect, in protocol terms.
//!
//! This is deliberately plain data: the `.ovpn` profile is parsed elsewhere
//! (`ovpn-profile`) and converted into a [`ClientConfig`] by the caller, which
//! also resolves host names (the core never does I/O).

use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroize;

/// Transport protocol of the link. Affects the options string, the TCP length
/// framing and `explicit-exit-notify` (UDP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

/// Control-channel wrapping (`tls-auth`, `tls-crypt`, `tls-crypt-v2`).
#[derive(Clone, Default)]
pub enum TlsWrap {
    /// No wrapping: plain control packets.
    #[default]
    None,
    /// `tls-auth`: the 256-byte (or 128-byte) static key and the optional
    /// `key-direction` (normally `Some(1)` for a client). The HMAC digest is
    /// [`ClientConfig::auth_digest`].
    Auth {
        key: Vec<u8>,
        key_direction: Option<u8>,
    },
    /// `tls-crypt`: the 256-byte static key (client always sends with key[1]).
    Crypt { key: Vec<u8> },
    /// `tls-crypt-v2`: the decoded client key blob (`Kc` 256 bytes || `WKc`).
    CryptV2 { client_key: Vec<u8> },
}

impl std::fmt::Debug for TlsWrap {
    // Key bytes are secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsWrap::None => f.write_str("None"),
            TlsWrap::Auth { key, key_direction } => f
                .debug_struct("Auth")
                .field("key_len", &key.len())
                .field("key_direction", key_direction)
                .finish(),
            TlsWrap::Crypt { key } => f
                .debug_struct("Crypt")
                .field("key_len", &key.len())
                .finish(),
            TlsWrap::CryptV2 { client_key } => f
                .debug_struct("CryptV2")
                .field("blob_len", &client_key.len())
                .finish(),
        }
    }
}

/// The client's own certificate and key.
#[derive(Clone, Default)]
pub enum ClientIdentity {
    /// No client certificate (`auth-user-pass` only, server with
    /// `verify-client-cert none|optional`).
    #[default]
    None,
    /// PEM text: `<cert>` (leaf first, optionally followed by intermediates),
    /// `<key>` (PKCS#1, PKCS#8, SEC1 or encrypted PKCS#8) and `extra-certs`.
    Pem {
        cert_chain: String,
        key: String,
        extra_certs: Option<String>,
        /// Passphrase for an encrypted private key (`askpass`).
        passphrase: Option<Secret>,
    },
    /// A PKCS#12 archive (`pkcs12`), DER bytes, with its passphrase (empty if none).
    Pkcs12 {
        der: Vec<u8>,
        passphrase: Secret,
        extra_certs: Option<String>,
    },
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientIdentity::None => f.write_str("None"),
            ClientIdentity::Pem { cert_chain, .. } => f
                .debug_struct("Pem")
                .field("cert_chain_len", &cert_chain.len())
                .finish_non_exhaustive(),
            ClientIdentity::Pkcs12 { der, .. } => f
                .debug_struct("Pkcs12")
                .field("der_len", &der.len())
                .finish_non_exhaustive(),
        }
    }
}

/// Which part of the server certificate `verify-x509-name` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum X509NameKind {
    /// The full one-line subject as OpenSSL prints it (`C=DE, O=Org, CN=srv`).
    #[default]
    Subject,
    /// The common name, exactly.
    Name,
    /// The common name starts with the given text.
    NamePrefix,
}

/// Server certificate checks beyond the chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// `remote-cert-tls server`: KU extension present and EKU contains serverAuth.
    pub remote_cert_tls_server: bool,
    /// `remote-cert-eku OID` (dotted OID or `TLS Web Server Authentication`).
    pub remote_cert_eku: Option<String>,
    /// `remote-cert-ku` hex values (any-of, each fully contained in the KU bits).
    pub remote_cert_ku: Vec<u16>,
    /// `verify-x509-name NAME [kind]`.
    pub verify_x509_name: Option<(String, X509NameKind)>,
    /// `peer-fingerprint`: SHA-256 digests of acceptable leaf certificates.
    /// With no CA configured the chain is not checked at all (OpenVPN semantics).
    pub peer_fingerprints: Vec<[u8; 32]>,
    /// `crl-verify` PEM text (one or more `X509 CRL` blocks); checked for the
    /// whole chain (OpenVPN sets CRL_CHECK_ALL).
    pub crl_pem: Option<String>,
}

/// TLS version bound (`tls-version-min`/`tls-version-max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

/// TLS tuning from the profile.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub version_min: Option<TlsVersion>,
    pub version_max: Option<TlsVersion>,
    /// `tls-cipher` (OpenSSL names, `:`-separated; TLS 1.2 suites).
    pub cipher_list: Option<String>,
    /// `tls-ciphersuites` (TLS 1.3 names, `:`-separated).
    pub ciphersuites: Option<String>,
    /// `tls-groups` (`:`-separated, e.g. `X25519:prime256v1`).
    pub groups: Option<String>,
}

/// A secret string: a password, a challenge answer, an auth-token. `Debug` never shows
/// it, and its memory is wiped when it is dropped (and before it is replaced through
/// [`Secret::set`]). Build it by moving a `String` in (`Secret::from(s)`, no copy); read
/// it only where it is handed on ([`Secret::expose`]). The IPC's `ipc::Secret` moves
/// into it the same way (`String::from(ipc_secret)` takes the buffer, leaving nothing).
///
/// The field is public so tests can write `Secret("...".into())`; code that builds a
/// secret from pieces uses [`Secret::with_capacity`] and [`Secret::push_str`], which
/// never grow the buffer behind the caller's back (a grown `String` leaves its old
/// buffer unwiped).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// An empty secret that can take `capacity` bytes without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        Secret(String::with_capacity(capacity))
    }

    /// Appends `s`; when it does not fit, moves into an exactly-sized buffer and wipes
    /// the old one (so no unwiped copy is left by `String`'s growth).
    pub fn push_str(&mut self, s: &str) {
        let need = self.0.len() + s.len();
        if need > self.0.capacity() {
            let mut grown = String::with_capacity(need);
            grown.push_str(&self.0);
            std::mem::swap(&mut self.0, &mut grown);
            grown.zeroize();
        }
        self.0.push_str(s);
    }

    /// Replaces the secret, wiping the old one.
    pub fn set(&mut self, s: String) {
        self.0.zeroize();
        self.0 = s;
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl PartialEq<str> for Secret {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Secret {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The password a `static-challenge` answer is sent as: `SCRV1:<b64 password>:<b64
/// response>`, built in one exactly-sized buffer.
pub(crate) fn scrv1_password(password: &Secret, response: &Secret) -> Secret {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let len = |s: &Secret| base64::encoded_len(s.len(), true).unwrap_or(0);
    let mut out = Secret::with_capacity("SCRV1::".len() + len(password) + len(response));
    out.push_str("SCRV1:");
    b64.encode_string(password.expose(), &mut out.0);
    out.push_str(":");
    b64.encode_string(response.expose(), &mut out.0);
    out
}

/// The password a dynamic (`CRV1`) challenge answer is sent as:
/// `CRV1::<state_id>::<response>`.
pub(crate) fn crv1_password(state_id: &str, response: &Secret) -> Secret {
    let mut out = Secret::with_capacity("CRV1::::".len() + state_id.len() + response.len());
    for part in ["CRV1::", state_id, "::", response.expose()] {
        out.push_str(part);
    }
    out
}

/// `auth-user-pass` credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The user's answer to a challenge, sent with the next connection attempt.
#[derive(Clone, PartialEq, Eq)]
pub enum ChallengeResponse {
    /// `static-challenge`: password becomes `SCRV1:<b64 password>:<b64 response>`.
    Static { response: Secret },
    /// `AUTH_FAILED,CRV1` dynamic challenge: username becomes the server-given
    /// username, password `CRV1::<state_id>::<response>`.
    Dynamic {
        state_id: String,
        username: String,
        response: Secret,
    },
}

impl std::fmt::Debug for ChallengeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeResponse::Static { .. } => f.write_str("Static{..}"),
            ChallengeResponse::Dynamic { .. } => f.write_str("Dynamic{..}"),
        }
    }
}

/// Compression (§7.5); shared with the data path.
pub use crate::compress::{AllowCompression, Compression};

/// Timers in seconds as OpenVPN uses them; defaults per §9.
#[derive(Debug, Clone)]
pub struct Timers {
    pub tls_timeout: Duration,
    pub hand_window: Duration,
    pub reneg_sec: Option<Duration>,
    pub reneg_bytes: Option<u64>,
    pub reneg_pkts: Option<u64>,
    pub transition_window: Duration,
    /// Keepalive interval before a server pushes `ping` (None = off).
    pub ping: Option<Duration>,
    /// Restart interval before a server pushes `ping-restart` (UDP pull client: 120 s).
    pub ping_restart: Option<Duration>,
    pub push_request_interval: Duration,
    /// `explicit-exit-notify N` from the profile (None = off).
    pub explicit_exit_notify: Option<u32>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            tls_timeout: Duration::from_secs(2),
            hand_window: Duration::from_secs(60),
            reneg_sec: Some(Duration::from_secs(3600)),
            reneg_bytes: None,
            reneg_pkts: None,
            transition_window: Duration::from_secs(3600),
            ping: None,
            ping_restart: Some(Duration::from_secs(120)),
            push_request_interval: Duration::from_secs(5),
            explicit_exit_notify: None,
        }
    }
}

/// Extra peer-info lines.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// `IV_GUI_VER`, e.g. `OxiVPN_0.1.0`.
    pub gui_ver: Option<String>,
    /// `IV_PLAT` (`linux`, `win`, `mac`, ...).
    pub plat: String,
    /// `IV_VER` we claim (the 2.6 server only logs it).
    pub version: String,
    /// Further `IV_*`/`UV_*` lines, e.g. `("IV_SSO", "openurl,crtext")`.
    pub extra: Vec<(String, String)>,
}

impl Default for PeerInfo {
    fn default() -> Self {
        PeerInfo {
            gui_ver: None,
            plat: default_plat().to_string(),
            version: "2.6.14".to_string(),
            extra: Vec::new(),
        }
    }
}

fn default_plat() -> &'static str {
    if cfg!(target_os = "windows") {
        "win"
    } else if cfg!(target_os = "macos") {
        "mac"
    } else if cfg!(target_os = "freebsd") {
        "freebsd"
    } else if cfg!(target_os = "openbsd") {
        "openbsd"
    } else if cfg!(target_os = "android") {
        "android"
    } else {
        "linux"
    }
}

/// `pull-filter accept|ignore|reject "text"`: first match by prefix wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFilterAction {
    Accept,
    Ignore,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFilter {
    pub action: PullFilterAction,
    /// Compared against the start of each pushed option line.
    pub prefix: String,
}

/// Complete client configuration for one connection attempt.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub transport: Transport,
    /// Address of the server we connect to (resolved by the caller). Used for
    /// the IP overhead in control packet sizing and to refuse pushed routes
    /// covering it.
    pub remote_addr: Option<IpAddr>,
    pub tls_wrap: TlsWrap,
    /// `<ca>` PEM text (may hold several certificates). `None` only with
    /// `peer_fingerprints`.
    pub ca_pem: Option<String>,
    pub identity: ClientIdentity,
    pub verify: VerifyOptions,
    pub tls: TlsOptions,
    pub credentials: Option<Credentials>,
    pub challenge_response: Option<ChallengeResponse>,
    /// `static-challenge` is configured (password must carry the SCRV1 prefix;
    /// without a [`ChallengeResponse::Static`] the session emits
    /// `Event::ChallengeNeeded` before connecting).
    pub static_challenge: Option<StaticChallenge>,
    /// An `auth-token` kept from a previous connection (replaces the password).
    pub auth_token: Option<Secret>,
    /// `auth-token-user` (base64-decoded) kept from a previous connection.
    pub auth_token_user: Option<String>,
    /// `data-ciphers` in preference order (OpenVPN names, e.g. `AES-256-GCM`).
    pub data_ciphers: Vec<String>,
    /// Ciphers the profile names for servers that negotiate nothing
    /// (`data-ciphers-fallback`, then `cipher`): accepted, with a "legacy
    /// cipher" warning, never announced in `IV_CIPHERS`.
    pub fallback_ciphers: Vec<String>,
    /// `auth` digest (`SHA1` default): CBC data HMAC and tls-auth HMAC.
    pub auth_digest: String,
    pub compression: Compression,
    /// `allow-compression` (default asym: decompress, never compress).
    pub allow_compression: AllowCompression,
    pub timers: Timers,
    pub peer_info: PeerInfo,
    pub pull_filters: Vec<PullFilter>,
    pub route_nopull: bool,
    /// `tun-mtu` (default 1500), announced in the options string.
    pub tun_mtu: u16,
    /// `tls-mtu` (default 1250): bound for one control packet's IP datagram.
    pub tls_mtu: u16,
    /// `mssfix`: clamp the MSS of tunnelled TCP connections (OpenVPN 2.6's
    /// default when absent).
    pub mssfix: crate::mss::Mssfix,
    /// Announce and use dynamic tls-crypt (IV_PROTO bit 9) for renegotiations.
    pub dynamic_tls_crypt: bool,
}

/// `static-challenge "text" echo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticChallenge {
    pub text: String,
    pub echo: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            transport: Transport::Udp,
            remote_addr: None,
            tls_wrap: TlsWrap::None,
            ca_pem: None,
            identity: ClientIdentity::None,
            verify: VerifyOptions::default(),
            tls: TlsOptions::default(),
            credentials: None,
            challenge_response: None,
            static_challenge: None,
            auth_token: None,
            auth_token_user: None,
            data_ciphers: vec![
                "AES-256-GCM".to_string(),
                "AES-128-GCM".to_string(),
                "CHACHA20-POLY1305".to_string(),
            ],
            fallback_ciphers: Vec::new(),
            auth_digest: "SHA1".to_string(),
            compression: Compression::None,
            allow_compression: AllowCompression::Asym,
            timers: Timers::default(),
            peer_info: PeerInfo::default(),
            pull_filters: Vec::new(),
            route_nopull: false,
            tun_mtu: 1500,
            tls_mtu: 1250,
            mssfix: crate::mss::Mssfix::Default,
            // Interop-tested against openvpn 2.6.14 (tests/interop_openvpn.rs).
            dynamic_tls_crypt: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_built_without_growth() {
        let pw = Secret::from("correct horse battery");
        assert_eq!(format!("{pw:?}"), "<redacted>");
        let c = Credentials {
            username: "alice".into(),
            password: pw.clone(),
        };
        assert!(!format!("{c:?}").contains("horse"));
        let scrv1 = scrv1_password(&pw, &Secret::from("4242"));
        assert_eq!(scrv1, "SCRV1:Y29ycmVjdCBob3JzZSBiYXR0ZXJ5:NDI0Mg==");
        assert_eq!(scrv1.0.capacity(), scrv1.len(), "sized exactly");
        let crv1 = crv1_password("st42", &Secret::from("7777"));
        assert_eq!(crv1, "CRV1::st42::7777");
        assert_eq!(crv1.0.capacity(), crv1.len(), "sized exactly");

        let mut s = Secret::with_capacity(2);
        s.push_str("ab");
        s.push_str("cdef");
        assert_eq!(s, "abcdef");
        s.set("x".into());
        assert_eq!(s.expose(), "x");
    }
}
