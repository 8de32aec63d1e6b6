//! Import from a server against the lab's stand-in Access Server (python's ssl, a
//! certificate from the lab CA): the REST profile download with good, wrong and
//! two-factor credentials, plain URLs, and the TLS and address failures, each named.
//! The downloaded bytes go through the same `import_bytes` as any profile.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use oxivpn_e2e::{
    AccessServer, CertKind, AS_AUTOLOGIN_USER, AS_CHALLENGE_TEXT, AS_MFA_USER, AS_OTP,
    AS_UNENROLLED_USER, AS_USER,
};
use profile_store::fetch::{
    fetch_access_server, fetch_url, roots_from_pem, AccessServerLogin, FetchConfig, FetchError,
    Zeroizing,
};
use profile_store::{import_bytes, NameChoice, Store};

fn lab_config() -> FetchConfig {
    FetchConfig::new(roots_from_pem(&AccessServer::ca_pem().unwrap()).unwrap())
}

fn login(server: &AccessServer, (user, pw): (&str, &str), autologin: bool) -> AccessServerLogin {
    AccessServerLogin {
        server: format!("localhost:{}", server.port()),
        user: user.into(),
        password: Zeroizing::new(pw.into()),
        autologin,
    }
}

#[tokio::test]
async fn access_server_rest_download_with_credentials() {
    let server = AccessServer::start(CertKind::LabCa).unwrap();
    let cfg = lab_config();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();

    // Good credentials: the user-locked profile, imported like a file.
    let got = fetch_access_server(&login(&server, AS_USER, false), &cfg)
        .await
        .unwrap();
    assert_eq!(got.file_name, "localhost.ovpn");
    assert_eq!(got.bytes, server.userlogin_profile().unwrap().into_bytes());
    let done = import_bytes(&store, &got.bytes, None, NameChoice::Derived("localhost")).unwrap();
    assert!(done.report.usable, "{:?}", done.report);
    assert_eq!(done.name.as_deref(), Some("localhost"));
    assert!(store
        .read_text("localhost")
        .unwrap()
        .contains("<tls-crypt-v2>"));
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("GET /rest/GetUserlogin?tls-cryptv2=1&action=import ")),
        "{requests:?}"
    );

    // Wrong password: the XML AUTH_FAILED answer.
    let wrong = fetch_access_server(&login(&server, (AS_USER.0, "wrong"), false), &cfg)
        .await
        .unwrap_err();
    assert!(matches!(wrong, FetchError::AuthFailed { .. }), "{wrong:?}");
    assert_eq!(
        wrong.to_string(),
        "the Access Server refused the user name or password"
    );

    // Autologin: refused for a user without the right, served to one with it.
    let no_auto = fetch_access_server(&login(&server, AS_USER, true), &cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(no_auto, FetchError::NoAutologin { .. }),
        "{no_auto:?}"
    );
    let auto = fetch_access_server(&login(&server, AS_AUTOLOGIN_USER, true), &cfg)
        .await
        .unwrap();
    let text = String::from_utf8(auto.bytes).unwrap();
    assert!(!text.contains("auth-user-pass") && text.contains("OVPN_ACCESS_SERVER_AUTOLOGIN=1"));

    // Not enrolled in two-factor sign-in yet.
    let newbie = fetch_access_server(&login(&server, AS_UNENROLLED_USER, false), &cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(newbie, FetchError::NotEnrolled { .. }),
        "{newbie:?}"
    );
    assert!(newbie.to_string().contains("enroll"), "{newbie}");

    // Second factor: the challenge text, then the answer, then the profile.
    let first = login(&server, AS_MFA_USER, false);
    let FetchError::ChallengeRequired(challenge) =
        fetch_access_server(&first, &cfg).await.unwrap_err()
    else {
        panic!("a CRV1 challenge was expected");
    };
    assert_eq!(challenge.text, AS_CHALLENGE_TEXT);
    assert!(challenge.response_required && challenge.echo);
    let bad = fetch_access_server(&challenge.answer(&first, "000000"), &cfg)
        .await
        .unwrap_err();
    assert!(matches!(bad, FetchError::AuthFailed { .. }), "{bad:?}");
    let ok = fetch_access_server(&challenge.answer(&first, AS_OTP), &cfg)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&ok.bytes).contains("OVPN_ACCESS_SERVER_PROFILE"));

    // http:// is refused before anything is sent.
    let before = server.requests().len();
    let http = fetch_access_server(
        &AccessServerLogin {
            server: format!("http://localhost:{}", server.port()),
            ..login(&server, AS_USER, false)
        },
        &cfg,
    )
    .await
    .unwrap_err();
    assert!(matches!(http, FetchError::NotHttps { .. }), "{http:?}");
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn profile_urls_redirects_pages_and_statuses() {
    let server = AccessServer::start(CertKind::LabCa).unwrap();
    let cfg = lab_config();
    let got = fetch_url(&server.url("/profiles/work.ovpn"), &cfg)
        .await
        .unwrap();
    assert_eq!(got.file_name, "work.ovpn");
    // A downloaded profile that names files: the same missing-files rule as a file
    // import, nothing stored.
    let refs = fetch_url(&server.url("/profiles/refs.ovpn"), &cfg)
        .await
        .unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let e = import_bytes(&store, &refs.bytes, None, NameChoice::Derived("refs")).unwrap_err();
    assert!(
        matches!(&e, profile_store::ImportError::MissingFiles(m) if m.len() == 3),
        "{e:?}"
    );
    assert!(e.to_string().contains("ca \"ca.crt\""), "{e}");
    assert!(store.list().unwrap().is_empty());
    let moved = fetch_url(&server.url("/moved"), &cfg).await.unwrap();
    assert_eq!(
        moved.file_name, "work.ovpn",
        "the redirect's target names it"
    );
    assert!(matches!(
        fetch_url(&server.url("/login"), &cfg).await,
        Err(FetchError::Html)
    ));
    let notes = fetch_url(&server.url("/notes.txt"), &cfg)
        .await
        .unwrap_err();
    assert!(matches!(notes, FetchError::NotAProfile { .. }), "{notes:?}");
    let big = fetch_url(&server.url("/big.ovpn"), &cfg).await.unwrap_err();
    assert!(matches!(big, FetchError::TooLarge { .. }), "{big:?}");
    let missing = fetch_url(&server.url("/nope.ovpn"), &cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, FetchError::Http { status: 404, .. }),
        "{missing:?}"
    );
    let http = fetch_url(
        &format!("http://localhost:{}/profiles/work.ovpn", server.port()),
        &cfg,
    )
    .await
    .unwrap_err();
    assert!(matches!(http, FetchError::NotHttps { .. }), "{http:?}");

    // Nobody listening: the connect step is named.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = fetch_url(&format!("https://127.0.0.1:{port}/x.ovpn"), &cfg)
        .await
        .unwrap_err();
    assert!(matches!(refused, FetchError::Connect { .. }), "{refused:?}");
}

#[tokio::test]
async fn certificate_problems_are_named() {
    let cfg = lab_config();
    let self_signed = AccessServer::start(CertKind::SelfSigned).unwrap();
    let e = fetch_access_server(&login(&self_signed, AS_USER, false), &cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FetchError::Certificate { problem, .. } if problem.contains("does not trust")),
        "{e:?}"
    );
    assert!(
        self_signed.requests().is_empty(),
        "no credentials were sent"
    );

    let wrong_name = AccessServer::start(CertKind::WrongName).unwrap();
    let e = fetch_url(&wrong_name.url("/profiles/work.ovpn"), &cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FetchError::Certificate { problem, .. } if problem.contains("another server name")),
        "{e:?}"
    );

    // The lab's server is not trusted by a client with the system's roots only.
    let lab = AccessServer::start(CertKind::LabCa).unwrap();
    let e = fetch_url(
        &lab.url("/profiles/work.ovpn"),
        &FetchConfig::new(rustls_roots_empty()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, FetchError::Certificate { .. }), "{e:?}");
}

fn rustls_roots_empty() -> profile_store::fetch::RootCertStore {
    profile_store::fetch::RootCertStore::empty()
}
