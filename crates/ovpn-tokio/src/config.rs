//! A parsed profile ([`ovpn_profile::Profile`]) and one of its endpoints become the
//! core's [`ClientConfig`] for one connection attempt.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use ovpn_core::config::{
    AllowCompression, ClientConfig, ClientIdentity, Compression, Credentials, PullFilter,
    PullFilterAction, Secret, StaticChallenge, TlsOptions, TlsVersion, TlsWrap, Transport,
    VerifyOptions, X509NameKind,
};
use ovpn_core::static_key::{StaticKey, TlsCryptV2ClientKey};
use ovpn_profile::{AuthUserPass, CertRole, Credential, Endpoint, KeyDirection, Material, Profile};

/// Why a profile cannot become a client configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A directive still names a file: the caller must inline it first
    /// (profile-store does that next to the profile).
    #[error("`{directive}` still refers to a file; inline it first")]
    FileReference { directive: &'static str },
    #[error("`{directive}`: {message}")]
    BadMaterial {
        directive: &'static str,
        message: String,
    },
    #[error("the profile has no `<ca>` and no `peer-fingerprint`: the server cannot be verified")]
    NoTrustAnchor,
    #[error("the profile needs a user name and password (`auth-user-pass`) but none was given")]
    MissingCredentials,
    #[error("`peer-fingerprint` {0:?} is not a SHA-256 fingerprint")]
    BadFingerprint(String),
}

/// Everything besides the profile that one attempt needs.
#[derive(Debug, Clone, Default)]
pub struct AttemptInputs {
    /// The server address this attempt connects to (already resolved).
    pub remote_addr: Option<IpAddr>,
    /// User name and password (from a file, the keyring or a prompt).
    pub credentials: Option<Credentials>,
    /// An `auth-token` pushed on a previous connection.
    pub auth_token: Option<Secret>,
    /// `IV_GUI_VER` to announce.
    pub gui_version: Option<String>,
    /// The passphrase of an encrypted private key or PKCS#12 archive (typed by the
    /// user, from the keyring or from `askpass FILE` read at import).
    pub key_passphrase: Option<Secret>,
}

fn inline<'a>(
    m: &'a Option<Material>,
    directive: &'static str,
) -> Result<Option<&'a str>, ConfigError> {
    match m {
        None => Ok(None),
        Some(Material::Inline(t)) => Ok(Some(t)),
        Some(Material::File(_)) => Err(ConfigError::FileReference { directive }),
    }
}

fn bad(directive: &'static str, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::BadMaterial {
        directive,
        message: e.to_string(),
    }
}

/// Builds the core configuration for connecting to `endpoint` of `profile`.
pub fn client_config(
    profile: &Profile,
    endpoint: &Endpoint,
    inputs: &AttemptInputs,
) -> Result<ClientConfig, ConfigError> {
    let mut c = ClientConfig {
        transport: if endpoint.proto.is_tcp() {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        remote_addr: inputs.remote_addr,
        ..ClientConfig::default()
    };
    c.tls_wrap = tls_wrap(profile)?;
    c.ca_pem = inline(&profile.ca, "ca")?.map(str::to_owned);
    c.identity = identity(profile, inputs.key_passphrase.as_ref())?;
    c.verify = verify(profile)?;
    if c.ca_pem.is_none() && c.verify.peer_fingerprints.is_empty() {
        return Err(ConfigError::NoTrustAnchor);
    }
    c.tls = TlsOptions {
        version_min: profile.tls_version_min.map(|v| tls_version(v.version)),
        version_max: profile.tls_version_max.map(tls_version),
        cipher_list: profile.tls_cipher.as_ref().map(|s| {
            s.iter()
                .map(|s| s.openssl_name())
                .collect::<Vec<_>>()
                .join(":")
        }),
        ciphersuites: profile.tls_ciphersuites.as_ref().map(|s| {
            s.iter()
                .map(|s| s.openssl_name())
                .collect::<Vec<_>>()
                .join(":")
        }),
        groups: profile.tls_groups.as_ref().map(|g| {
            g.iter()
                .map(|g| g.openssl_name())
                .collect::<Vec<_>>()
                .join(":")
        }),
    };
    c.credentials = credentials(profile, inputs)?;
    c.auth_token = inputs.auth_token.clone();
    c.static_challenge = profile.static_challenge.as_ref().map(|s| StaticChallenge {
        text: s.text.clone(),
        echo: s.echo,
    });
    if !profile.data_ciphers.is_empty() {
        c.data_ciphers = profile.data_ciphers.clone();
    }
    c.fallback_ciphers = [&profile.data_ciphers_fallback, &profile.cipher]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if let Some(a) = &profile.auth {
        c.auth_digest = a.clone();
    }
    c.compression = compression(profile)?;
    c.allow_compression = allow_compression(profile)?;
    timers(profile, endpoint, &mut c);
    c.peer_info.gui_ver = inputs.gui_version.clone();
    c.pull_filters = profile
        .pull_filters
        .iter()
        .map(|f| PullFilter {
            action: match f.action {
                ovpn_profile::PullFilterAction::Accept => PullFilterAction::Accept,
                ovpn_profile::PullFilterAction::Ignore => PullFilterAction::Ignore,
                ovpn_profile::PullFilterAction::Reject => PullFilterAction::Reject,
            },
            prefix: f.text.clone(),
        })
        .collect();
    c.route_nopull = profile.route_nopull;
    if let Some(mtu) = endpoint.options.tun_mtu.and_then(|m| u16::try_from(m).ok()) {
        c.tun_mtu = mtu;
    }
    if let Some(m) = endpoint.options.mssfix {
        c.mssfix = mssfix(m);
    }
    Ok(c)
}

/// `mssfix [max [mtu|fixed]]` as the core sizes it (a bare `mssfix` is the default).
fn mssfix(m: ovpn_profile::Mssfix) -> ovpn_core::mss::Mssfix {
    use ovpn_core::mss::{Mssfix, MssfixUnit};
    match m.max {
        None => Mssfix::Default,
        Some(0) => Mssfix::Off,
        Some(n) => Mssfix::Max {
            // The profile refuses sizes above 65535.
            size: u16::try_from(n).unwrap_or(u16::MAX),
            unit: match m.unit {
                ovpn_profile::MssfixUnit::Packet => MssfixUnit::Packet,
                ovpn_profile::MssfixUnit::Mtu => MssfixUnit::Mtu,
                ovpn_profile::MssfixUnit::Fixed => MssfixUnit::Fixed,
            },
        },
    }
}

fn tls_wrap(p: &Profile) -> Result<TlsWrap, ConfigError> {
    if let Some(t) = inline(&p.tls_crypt_v2, "tls-crypt-v2")? {
        let k = TlsCryptV2ClientKey::parse_pem(t).map_err(|e| bad("tls-crypt-v2", e))?;
        let mut blob = k.key.as_bytes().to_vec();
        blob.extend_from_slice(&k.wkc);
        return Ok(TlsWrap::CryptV2 { client_key: blob });
    }
    if let Some(t) = inline(&p.tls_crypt, "tls-crypt")? {
        let k = StaticKey::parse_pem(t).map_err(|e| bad("tls-crypt", e))?;
        return Ok(TlsWrap::Crypt {
            key: k.as_bytes().to_vec(),
        });
    }
    if let Some(ta) = &p.tls_auth {
        let text = match &ta.key {
            Material::Inline(t) => t,
            Material::File(_) => {
                return Err(ConfigError::FileReference {
                    directive: "tls-auth",
                })
            }
        };
        let k = StaticKey::parse_pem(text).map_err(|e| bad("tls-auth", e))?;
        let dir = ta.direction.or(p.key_direction).map(|d| match d {
            KeyDirection::Normal => 0,
            KeyDirection::Inverse => 1,
        });
        return Ok(TlsWrap::Auth {
            key: k.as_bytes().to_vec(),
            key_direction: dir,
        });
    }
    Ok(TlsWrap::None)
}

/// Whether the profile's private key is encrypted (PEM) or comes in a PKCS#12
/// archive, so that a passphrase may be needed to use it.
pub fn key_may_need_passphrase(p: &Profile) -> bool {
    let encrypted = |t: &str| {
        t.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || t.contains("Proc-Type: 4,ENCRYPTED")
    };
    p.pkcs12.is_some() || matches!(&p.key, Some(Material::Inline(k)) if encrypted(k))
}

/// Opens the profile's client key with `passphrase` now, so that a missing or wrong
/// passphrase is reported before any connection is made (and the user asked again).
pub fn check_identity(p: &Profile, passphrase: Option<&Secret>) -> Result<(), IdentityCheck> {
    let id = identity(p, passphrase).map_err(IdentityCheck::Config)?;
    ovpn_core::identity::load(&id)
        .map(|_| ())
        .map_err(|e| match e {
            // A PKCS#12 archive is first tried with the empty password.
            ovpn_core::identity::IdentityError::WrongPassphrase if passphrase.is_none() => {
                IdentityCheck::PassphraseNeeded
            }
            ovpn_core::identity::IdentityError::WrongPassphrase => IdentityCheck::WrongPassphrase,
            ovpn_core::identity::IdentityError::PassphraseNeeded => IdentityCheck::PassphraseNeeded,
            other => IdentityCheck::Unusable(other),
        })
}

/// Why [`check_identity`] refused the profile's client key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityCheck {
    #[error("the private key is encrypted: its passphrase is needed")]
    PassphraseNeeded,
    #[error("the private key's passphrase is wrong")]
    WrongPassphrase,
    #[error(transparent)]
    Unusable(ovpn_core::identity::IdentityError),
    #[error(transparent)]
    Config(ConfigError),
}

fn identity(p: &Profile, passphrase: Option<&Secret>) -> Result<ClientIdentity, ConfigError> {
    let extra = inline(&p.extra_certs, "extra-certs")?.map(str::to_owned);
    if let Some(b64) = inline(&p.pkcs12, "pkcs12")? {
        let compact: String = b64.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| bad("pkcs12", e))?;
        return Ok(ClientIdentity::Pkcs12 {
            der,
            // An archive without a password is opened with the empty one.
            passphrase: passphrase.cloned().unwrap_or_default(),
            extra_certs: extra,
        });
    }
    match (inline(&p.cert, "cert")?, inline(&p.key, "key")?) {
        (Some(cert), Some(key)) => Ok(ClientIdentity::Pem {
            cert_chain: cert.to_owned(),
            key: key.to_owned(),
            extra_certs: extra,
            passphrase: passphrase.cloned(),
        }),
        (None, None) => Ok(ClientIdentity::None),
        (Some(_), None) => Err(bad("cert", "a client certificate without its `key`")),
        (None, Some(_)) => Err(bad("key", "a private key without its `cert`")),
    }
}

fn verify(p: &Profile) -> Result<VerifyOptions, ConfigError> {
    let mut v = VerifyOptions {
        remote_cert_tls_server: p.remote_cert_tls == Some(CertRole::Server)
            || p.ns_cert_type == Some(CertRole::Server),
        remote_cert_eku: p.remote_cert_eku.clone(),
        remote_cert_ku: p.remote_cert_ku.clone(),
        ..VerifyOptions::default()
    };
    v.verify_x509_name = p.verify_x509_name.as_ref().map(|n| {
        let kind = match n.kind {
            ovpn_profile::X509NameKind::Subject => X509NameKind::Subject,
            ovpn_profile::X509NameKind::Name => X509NameKind::Name,
            ovpn_profile::X509NameKind::NamePrefix => X509NameKind::NamePrefix,
        };
        (n.name.clone(), kind)
    });
    for fp in &p.peer_fingerprints {
        v.peer_fingerprints.push(parse_fingerprint(fp)?);
    }
    // `crl-verify` (inlined at import): the verifier checks the server's chain against it.
    v.crl_pem = inline(&p.crl_verify, "crl-verify")?.map(str::to_owned);
    Ok(v)
}

fn parse_fingerprint(fp: &str) -> Result<[u8; 32], ConfigError> {
    let err = || ConfigError::BadFingerprint(fp.to_owned());
    let mut out = [0u8; 32];
    let parts: Vec<&str> = fp.split(':').collect();
    if parts.len() != 32 {
        return Err(err());
    }
    for (o, h) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(h, 16).map_err(|_| err())?;
    }
    Ok(out)
}

fn credentials(p: &Profile, inputs: &AttemptInputs) -> Result<Option<Credentials>, ConfigError> {
    let Some(aup) = &p.auth_user_pass else {
        return Ok(None);
    };
    if let Some(c) = &inputs.credentials {
        return Ok(Some(c.clone()));
    }
    match aup {
        AuthUserPass::Credentials(Credential::Inline {
            username,
            password: Some(password),
        }) => Ok(Some(Credentials {
            username: username.clone(),
            password: Secret::from(password.as_str()),
        })),
        _ => Err(ConfigError::MissingCredentials),
    }
}

/// The profile's `compress`/`comp-lzo` (the later-processed `compress` wins
/// when both are present, as in profiles written for 2.4+ servers).
fn compression(p: &Profile) -> Result<Compression, ConfigError> {
    let bad = |directive: &'static str| {
        move |e: ovpn_core::compress::UnknownCompression| ConfigError::BadMaterial {
            directive,
            message: e.to_string(),
        }
    };
    match (&p.compression.compress, &p.compression.comp_lzo) {
        (Some(a), _) => Compression::from_compress_arg(a.as_deref()).map_err(bad("compress")),
        (None, Some(a)) => Compression::from_comp_lzo_arg(a.as_deref()).map_err(bad("comp-lzo")),
        (None, None) => Ok(Compression::None),
    }
}

fn allow_compression(p: &Profile) -> Result<AllowCompression, ConfigError> {
    match p.compression.allow_compression.as_deref() {
        None => Ok(AllowCompression::Asym),
        Some(a) => AllowCompression::from_arg(a).ok_or_else(|| ConfigError::BadMaterial {
            directive: "allow-compression",
            message: format!("{a:?} is not yes, no or asym"),
        }),
    }
}

fn tls_version(v: ovpn_profile::TlsVersion) -> TlsVersion {
    match v {
        ovpn_profile::TlsVersion::V1_0 => TlsVersion::V1_0,
        ovpn_profile::TlsVersion::V1_1 => TlsVersion::V1_1,
        ovpn_profile::TlsVersion::V1_2 => TlsVersion::V1_2,
        ovpn_profile::TlsVersion::V1_3 => TlsVersion::V1_3,
    }
}

fn timers(p: &Profile, e: &Endpoint, c: &mut ClientConfig) {
    let secs = |s: u32| Duration::from_secs(u64::from(s));
    let t = &mut c.timers;
    if let Some(s) = p.reneg_sec {
        // reneg-sec 0 disables time-based renegotiation.
        t.reneg_sec = (s > 0).then(|| secs(s));
    }
    t.reneg_bytes = p.reneg_bytes.filter(|b| *b > 0);
    t.reneg_pkts = p.reneg_pkts.filter(|b| *b > 0);
    if let Some(s) = p.hand_window {
        t.hand_window = secs(s);
    }
    if let Some(s) = p.tls_timeout {
        t.tls_timeout = secs(s.max(1));
    }
    if let Some((interval, timeout)) = p.keepalive {
        t.ping = Some(secs(interval));
        t.ping_restart = Some(secs(timeout));
    }
    if let Some(s) = p.ping {
        t.ping = (s > 0).then(|| secs(s));
    }
    if let Some(s) = p.ping_restart {
        t.ping_restart = (s > 0).then(|| secs(s));
    }
    if !e.proto.is_tcp() {
        t.explicit_exit_notify = e.options.explicit_exit_notify;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Profile {
        ovpn_profile::parse(text.as_bytes()).unwrap().profile
    }

    /// A static key whose last byte is 0x01 (16 lines of 16 bytes).
    fn ta() -> String {
        let mut s = String::from("-----BEGIN OpenVPN Static key V1-----\n");
        for i in 0..16 {
            let line = if i == 15 {
                "00112233445566778899aabbccddee01"
            } else {
                "00112233445566778899aabbccddeeff"
            };
            s.push_str(line);
            s.push('\n');
        }
        s.push_str("-----END OpenVPN Static key V1-----\n");
        s
    }

    fn endpoint(p: &Profile) -> Endpoint {
        p.endpoints().into_iter().next().unwrap()
    }

    #[test]
    fn inline_crl_reaches_the_verifier() {
        let crl = "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n";
        let text = format!(
            "client\ndev tun\nremote vpn.example 1194\n<ca>\nCA\n</ca>\n<crl-verify>\n{crl}</crl-verify>\n"
        );
        let p = parse(&text);
        let c = client_config(&p, &endpoint(&p), &AttemptInputs::default()).unwrap();
        assert_eq!(c.verify.crl_pem.as_deref(), Some(crl));
        let p = parse("client\ndev tun\nremote vpn.example 1194\n<ca>\nCA\n</ca>\n");
        let c = client_config(&p, &endpoint(&p), &AttemptInputs::default()).unwrap();
        assert_eq!(c.verify.crl_pem, None);
    }

    #[test]
    fn maps_compression_policy_and_legacy_cipher_names() {
        let cfg = |extra: &str| {
            let p = parse(&format!(
                "client\nremote vpn.example.com 1194\n{extra}\n<ca>\nCA\n</ca>\n"
            ));
            let e = endpoint(&p);
            client_config(&p, &e, &AttemptInputs::default())
        };
        // A bare `comp-lzo` means adaptive in OpenVPN (options.c); `yes` always compresses.
        let c = cfg("comp-lzo").unwrap();
        assert_eq!(c.compression, Compression::LzoAdaptive);
        assert_eq!(c.allow_compression, AllowCompression::Asym);
        assert_eq!(cfg("comp-lzo yes").unwrap().compression, Compression::Lzo);
        let c = cfg("compress lz4-v2\nallow-compression yes").unwrap();
        assert_eq!(c.compression, Compression::Lz4V2);
        assert_eq!(c.allow_compression, AllowCompression::Yes);
        assert_eq!(cfg("comp-lzo no").unwrap().compression, Compression::LzoNo);
        assert_eq!(cfg("compress lzo").unwrap().compression, Compression::Lzo);
        let c = cfg("cipher AES-256-CBC\ndata-ciphers-fallback AES-128-CBC").unwrap();
        assert_eq!(c.fallback_ciphers, vec!["AES-128-CBC", "AES-256-CBC"]);
    }

    #[test]
    fn maps_mssfix_forms() {
        use ovpn_core::mss::{Mssfix, MssfixUnit};
        let cfg = |extra: &str| {
            let p = parse(&format!(
                "client\nremote vpn.example.com 1194\n{extra}\n<ca>\nCA\n</ca>\n"
            ));
            let e = endpoint(&p);
            client_config(&p, &e, &AttemptInputs::default()).unwrap()
        };
        assert_eq!(cfg("").mssfix, Mssfix::Default);
        assert_eq!(cfg("mssfix").mssfix, Mssfix::Default);
        assert_eq!(cfg("mssfix 0").mssfix, Mssfix::Off);
        let max = |size, unit| Mssfix::Max { size, unit };
        assert_eq!(cfg("mssfix 1450").mssfix, max(1450, MssfixUnit::Packet));
        assert_eq!(cfg("mssfix 1400 mtu").mssfix, max(1400, MssfixUnit::Mtu));
        assert_eq!(
            cfg("mssfix 1400 fixed").mssfix,
            max(1400, MssfixUnit::Fixed)
        );
    }

    #[test]
    fn maps_wrap_ciphers_timers_and_transport() {
        let text = format!(
            "client\ndev tun\nproto tcp-client\nremote vpn.example 443\nremote-cert-tls server\n\
             data-ciphers AES-256-CBC\nauth SHA256\nreneg-sec 10\nkeepalive 10 60\nhand-window 5\n\
             compress stub-v2\nkey-direction 1\n<ca>\nCA\n</ca>\n<tls-auth>\n{}</tls-auth>\n",
            ta()
        );
        let p = parse(&text);
        let e = endpoint(&p);
        let c = client_config(&p, &e, &AttemptInputs::default()).unwrap();
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.data_ciphers, vec!["AES-256-CBC".to_string()]);
        assert_eq!(c.auth_digest, "SHA256");
        assert_eq!(c.timers.reneg_sec, Some(Duration::from_secs(10)));
        assert_eq!(c.timers.ping, Some(Duration::from_secs(10)));
        assert_eq!(c.timers.ping_restart, Some(Duration::from_secs(60)));
        assert_eq!(c.timers.hand_window, Duration::from_secs(5));
        assert_eq!(c.compression, Compression::StubV2);
        assert!(c.verify.remote_cert_tls_server);
        match c.tls_wrap {
            TlsWrap::Auth { key, key_direction } => {
                assert_eq!(key.len(), 256);
                assert_eq!(key[255], 0x01);
                assert_eq!(key_direction, Some(1));
            }
            other => panic!("expected tls-auth, got {other:?}"),
        }
    }

    #[test]
    fn credentials_come_from_inputs_then_inline_block_else_error() {
        let base = "client\nremote 198.18.0.1 1194\n<ca>\nCA\n</ca>\n";
        let prompt = parse(&format!("{base}auth-user-pass\n"));
        let e = endpoint(&prompt);
        assert_eq!(
            client_config(&prompt, &e, &AttemptInputs::default()).unwrap_err(),
            ConfigError::MissingCredentials
        );
        let given = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let inputs = AttemptInputs {
            credentials: Some(given.clone()),
            ..AttemptInputs::default()
        };
        assert_eq!(
            client_config(&prompt, &e, &inputs).unwrap().credentials,
            Some(given)
        );
        let inline = parse(&format!(
            "{base}<auth-user-pass>\nalice\nsecret\n</auth-user-pass>\n"
        ));
        let c = client_config(&inline, &endpoint(&inline), &AttemptInputs::default()).unwrap();
        assert_eq!(c.credentials.unwrap().username, "alice");
        let none = parse(base);
        let c = client_config(&none, &endpoint(&none), &AttemptInputs::default()).unwrap();
        assert!(c.credentials.is_none());
    }

    #[test]
    fn file_references_and_missing_trust_are_refused() {
        let p = parse("client\nremote a 1\nca ca.crt\n");
        assert_eq!(
            client_config(&p, &endpoint(&p), &AttemptInputs::default()).unwrap_err(),
            ConfigError::FileReference { directive: "ca" }
        );
        let p = parse("client\nremote a 1\n");
        assert_eq!(
            client_config(&p, &endpoint(&p), &AttemptInputs::default()).unwrap_err(),
            ConfigError::NoTrustAnchor
        );
    }

    /// The profile crate's client key, encrypted by the real `openssl` at test time.
    fn encrypted_fixture_key(pass: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ovpn-profile/tests/fixtures/"
        );
        let out = std::process::Command::new("openssl")
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
            .arg(format!("{fixtures}client.key"))
            .arg("-passout")
            .arg(format!("pass:{pass}"))
            .arg("-out")
            .arg(dir.path().join("k.pem"))
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(dir.path().join("k.pem")).unwrap()
    }

    #[test]
    fn key_passphrase_reaches_the_core_and_is_checked_first() {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ovpn-profile/tests/fixtures/"
        );
        let cert = std::fs::read_to_string(format!("{fixtures}client.crt")).unwrap();
        let ca = std::fs::read_to_string(format!("{fixtures}ca.crt")).unwrap();
        let key = encrypted_fixture_key("open sesame");
        let p = parse(&format!(
            "client\nremote 198.18.0.1 1194\n<ca>\n{ca}</ca>\n<cert>\n{cert}</cert>\n<key>\n{key}</key>\n"
        ));
        assert!(key_may_need_passphrase(&p));
        let right = Secret("open sesame".into());
        let wrong = Secret("sesame".into());
        assert!(matches!(
            check_identity(&p, None),
            Err(IdentityCheck::PassphraseNeeded)
        ));
        let e = check_identity(&p, Some(&wrong)).unwrap_err();
        assert!(matches!(e, IdentityCheck::WrongPassphrase));
        assert_eq!(e.to_string(), "the private key's passphrase is wrong");
        check_identity(&p, Some(&right)).unwrap();
        let inputs = AttemptInputs {
            key_passphrase: Some(right),
            ..AttemptInputs::default()
        };
        let c = client_config(&p, &endpoint(&p), &inputs).unwrap();
        match &c.identity {
            ClientIdentity::Pem { passphrase, .. } => {
                assert_eq!(passphrase.as_ref().map(Secret::expose), Some("open sesame"))
            }
            other => panic!("expected a PEM identity, got {other:?}"),
        }
        // An unencrypted key needs nothing.
        let plain = std::fs::read_to_string(format!("{fixtures}client.key")).unwrap();
        let p = parse(&format!(
            "client\nremote 198.18.0.1 1194\n<ca>\n{ca}</ca>\n<cert>\n{cert}</cert>\n<key>\n{plain}</key>\n"
        ));
        assert!(!key_may_need_passphrase(&p));
        check_identity(&p, None).unwrap();
    }

    #[test]
    fn fingerprints_parse_strictly() {
        let ok = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&ok).unwrap(), [0xAB; 32]);
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint(&vec!["ZZ"; 32].join(":")).is_err());
    }
}
