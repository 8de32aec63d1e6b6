//! Import from an https URL against a local server whose certificate comes from a CA
//! made here: trusted -> the same import report as a file; the wrong CA, plain http,
//! a web page instead of a profile, a missing file: clear errors, nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use oxivpn_app::commands::{ops, AppState};
use oxivpn_app::controller::{Controller, EventSink};
use oxivpn_app::error::ErrorKind;
use oxivpn_app::model::AppEvent;
use oxivpn_app::profiles::MemoryRepo;
use oxivpn_app::secrets::MemorySecrets;
use oxivpn_app::settings::SettingsStore;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CA: &str = concat!("<ca>\n", include_str!("support/ca.pem"), "</ca>\n");

struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, _event: AppEvent) {}
    fn notify(&self, _title: &str, _body: &str) {}
    fn open_browser(&self, _url: &ipc::SignInUrl) -> Result<(), String> {
        Err("no browser in this test".into())
    }
    fn sign_in_needed(&self, _profile_name: &str, _host: &str) {}
}

/// A CA, and a server certificate for "localhost" signed by it.
fn pki() -> (
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (
        ca.der().clone(),
        leaf.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
}

/// Serves `path -> (content type, body)` over https on 127.0.0.1 until dropped.
async fn serve(
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pages: Vec<(&'static str, &'static str, String)>,
) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let pages = Arc::new(pages);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let pages = pages.clone();
            tokio::spawn(async move {
                // A handshake the client refuses ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let reply = match pages.iter().find(|p| p.0 == path) {
                    Some((_, ctype, body)) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn state(dir: &std::path::Path, roots: rustls::RootCertStore) -> AppState {
    state_with(dir, roots, Arc::new(MemorySecrets::default()))
}

fn state_with(
    dir: &std::path::Path,
    roots: rustls::RootCertStore,
    secrets: Arc<MemorySecrets>,
) -> AppState {
    let controller = Controller::spawn(
        dir.join("helper.sock"),
        Box::new(MemoryRepo::default()),
        secrets,
        Arc::new(Quiet),
    );
    AppState {
        controller,
        roots: Arc::new(roots),
        settings: Arc::new(SettingsStore::open(dir.join("settings.json"))),
        network: Arc::new(Mutex::new(oxivpn_app::autoconnect::unavailable("test"))),
        pending_reports: Mutex::new(Vec::new()),
    }
}

#[tokio::test]
async fn a_profile_is_imported_from_an_https_url_and_bad_answers_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key) = pki();
    let profile =
        format!("client\ndev tun\nremote vpn.example.com 1194 udp\nscript-security 2\n{CA}");
    let port = serve(
        leaf,
        key,
        vec![
            (
                "/profiles/work.ovpn",
                "application/x-openvpn-profile",
                profile,
            ),
            (
                "/login",
                "text/html; charset=utf-8",
                "<!DOCTYPE html><html><body>Sign in</body></html>".to_string(),
            ),
        ],
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let s = state(dir.path(), roots);

    let report =
        ops::import_profile_url(&s, format!("https://localhost:{port}/profiles/work.ovpn"))
            .await
            .unwrap();
    assert!(report.usable, "{report:?}");
    assert_eq!(report.file_name, "work.ovpn");
    assert_eq!(report.profile.as_ref().unwrap().name, "work");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.directive == "script-security"),
        "the same report as a file import: {report:?}"
    );
    assert_eq!(ops::get_snapshot(&s).await.unwrap().profiles.len(), 1);

    let html = ops::import_profile_url(&s, format!("https://localhost:{port}/login"))
        .await
        .unwrap_err();
    assert_eq!(
        html.message,
        "The server sent a web page, not an OpenVPN profile."
    );
    let missing = ops::import_profile_url(&s, format!("https://localhost:{port}/nope.ovpn"))
        .await
        .unwrap_err();
    assert!(missing.message.contains("404"), "{missing:?}");
    let http = ops::import_profile_url(&s, format!("http://localhost:{port}/profiles/work.ovpn"))
        .await
        .unwrap_err();
    assert_eq!(http.kind, ErrorKind::InvalidInput);

    // A client that does not trust the lab CA downloads nothing.
    let untrusting = state(dir.path(), rustls::RootCertStore::empty());
    let tls = ops::import_profile_url(
        &untrusting,
        format!("https://localhost:{port}/profiles/work.ovpn"),
    )
    .await
    .unwrap_err();
    assert_eq!(tls.kind, ErrorKind::TlsCertificate, "{tls:?}");
    assert!(ops::get_snapshot(&untrusting)
        .await
        .unwrap()
        .profiles
        .is_empty());
    assert_eq!(ops::get_snapshot(&s).await.unwrap().profiles.len(), 1);
}

/// The lab's stand-in OpenVPN Access Server (python ssl, certificate from the lab CA).
/// The lab is Unix-only, so are the Access Server tests.
#[cfg(unix)]
fn as_request(
    server: &oxivpn_e2e::AccessServer,
    (user, password): (&str, &str),
) -> oxivpn_app::download::AccessServerRequest {
    oxivpn_app::download::AccessServerRequest {
        server: server.address(),
        username: user.into(),
        password: profile_store::fetch::Zeroizing::new(password.into()),
        autologin: false,
        remember: false,
        challenge_response: None,
    }
}

#[cfg(unix)]
fn lab_roots() -> rustls::RootCertStore {
    profile_store::fetch::roots_from_pem(&oxivpn_e2e::AccessServer::ca_pem().unwrap()).unwrap()
}

#[cfg(unix)]
#[tokio::test]
async fn an_access_server_profile_is_imported_with_the_users_credentials() {
    use oxivpn_e2e::{AccessServer, CertKind, AS_CHALLENGE_TEXT, AS_MFA_USER, AS_OTP, AS_USER};
    let dir = tempfile::tempdir().unwrap();
    let server = AccessServer::start(CertKind::LabCa).unwrap();
    let secrets = Arc::new(MemorySecrets::default());
    let s = state_with(dir.path(), lab_roots(), secrets.clone());

    // Good credentials: the same import report as a file; nothing remembered.
    let report = ops::import_access_server(&s, as_request(&server, AS_USER))
        .await
        .unwrap();
    assert!(report.usable, "{report:?}");
    assert_eq!(report.file_name, "localhost.ovpn");
    assert_eq!(report.profile.as_ref().unwrap().name, "localhost");
    let key = format!("access-server://{}/{}", server.address(), AS_USER.0);
    use oxivpn_app::secrets::SecretStore as _;
    assert!(secrets.load(&key).unwrap().is_none());

    // Wrong password: the server's AUTH_FAILED as the usual sentence.
    let wrong = ops::import_access_server(&s, as_request(&server, (AS_USER.0, "nope")))
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ErrorKind::AuthFailed, "{wrong:?}");
    assert_eq!(
        wrong.message,
        "The server did not accept your user name or password."
    );

    // Remember: the password goes to the keyring only; later an empty password uses it.
    let mut remember = as_request(&server, AS_USER);
    remember.remember = true;
    ops::import_access_server(&s, remember).await.unwrap();
    assert_eq!(secrets.load(&key).unwrap().unwrap().password, AS_USER.1);
    let again = ops::import_access_server(&s, as_request(&server, (AS_USER.0, "")))
        .await
        .unwrap();
    assert_eq!(again.profile.as_ref().unwrap().name, "localhost (3)");

    // Two-factor: the server's question, then the answer imports.
    let mfa = ops::import_access_server(&s, as_request(&server, AS_MFA_USER))
        .await
        .unwrap_err();
    assert_eq!(mfa.kind, ErrorKind::ChallengeRequired, "{mfa:?}");
    assert_eq!(mfa.message, AS_CHALLENGE_TEXT);
    let mut answer = as_request(&server, AS_MFA_USER);
    answer.challenge_response = Some(profile_store::fetch::Zeroizing::new(AS_OTP.into()));
    let report = ops::import_access_server(&s, answer).await.unwrap();
    assert!(report.usable, "{report:?}");

    // Not enrolled in two-factor yet: a clear word to set it up or import the file.
    let newbie = ops::import_access_server(&s, as_request(&server, oxivpn_e2e::AS_UNENROLLED_USER))
        .await
        .unwrap_err();
    assert_eq!(newbie.kind, ErrorKind::TwoFactorNotSetUp);
    assert!(newbie.message.contains("two-factor"), "{newbie:?}");
    assert!(newbie.hint.unwrap().contains("import the profile file"));

    // http:// is refused; an unknown CA is named.
    let mut http = as_request(&server, AS_USER);
    http.server = format!("http://localhost:{}", server.port());
    let e = ops::import_access_server(&s, http).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e:?}");
    let untrusted = AccessServer::start(CertKind::SelfSigned).unwrap();
    let e = ops::import_access_server(&s, as_request(&untrusted, AS_USER))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsCertificate, "{e:?}");
    assert!(e.message.contains("does not trust"), "{e:?}");
    assert!(untrusted.requests().is_empty());
    assert_eq!(ops::get_snapshot(&s).await.unwrap().profiles.len(), 4);
}
