//! `oxivpnctl import --url` and `--access-server` against the lab's stand-in Access
//! Server (https with a certificate from the lab CA, trusted through SSL_CERT_FILE):
//! the profile is downloaded by profile-store's shared fetch and imported like a file.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use oxivpn_e2e::{AccessServer, CertKind, AS_CHALLENGE_TEXT, AS_MFA_USER, AS_OTP, AS_USER};
use support::{ok, text};

/// `oxivpnctl ARGS` with profiles under `data`, trusting only the lab CA.
fn ctl(data: &Path, ca: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxivpnctl"))
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env("SSL_CERT_FILE", ca)
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    text(out)
}

#[test]
fn import_from_an_access_server_and_a_url() {
    let server = AccessServer::start(CertKind::LabCa).unwrap();
    let ca = server.ca_file().unwrap();
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let host = format!("localhost:{}", server.port());
    let pw = d.join("pw");
    std::fs::write(&pw, format!("{}\n", AS_USER.1)).unwrap();
    let pw = pw.to_str().unwrap();

    // Good credentials: stored under the server's name, the file's report printed.
    let out = ctl(
        d,
        &ca,
        &[
            "import",
            "--access-server",
            &host,
            "--user",
            AS_USER.0,
            "--password-file",
            pw,
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("imported \"localhost\""), "{stdout}");
    assert!(
        stdout.contains("auth-user-pass") || stdout.contains("user name"),
        "{stdout}"
    );
    let stored = d.join("oxivpn/profiles/localhost.ovpn");
    assert!(std::fs::read_to_string(&stored)
        .unwrap()
        .contains("<tls-crypt-v2>"));
    assert!(
        !text(&out).contains(AS_USER.1),
        "the password is never printed"
    );

    // Wrong password: the Access Server's AUTH_FAILED, said plainly; nothing stored.
    let bad = d.join("bad");
    std::fs::write(&bad, "wrong\n").unwrap();
    let err = failed(&ctl(
        d,
        &ca,
        &[
            "import",
            "--access-server",
            &host,
            "--user",
            AS_USER.0,
            "--password-file",
            bad.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("refused the user name or password"), "{err}");

    // Second factor: without a terminal or an answer file, the server's question is shown.
    let mfa_pw = d.join("mfa");
    std::fs::write(&mfa_pw, format!("{}\n", AS_MFA_USER.1)).unwrap();
    let mfa_args = [
        "import",
        "--access-server",
        &host,
        "--user",
        AS_MFA_USER.0,
        "--password-file",
        mfa_pw.to_str().unwrap(),
        "--name",
        "work-mfa",
    ];
    let err = failed(&ctl(d, &ca, &mfa_args));
    assert!(
        err.contains(AS_CHALLENGE_TEXT) && err.contains("not a terminal"),
        "{err}"
    );
    let otp = d.join("otp");
    std::fs::write(&otp, format!("{AS_OTP}\n")).unwrap();
    let mut with_answer = mfa_args.to_vec();
    with_answer.extend(["--challenge-answer-file", otp.to_str().unwrap()]);
    let stdout = ok(&ctl(d, &ca, &with_answer));
    assert!(stdout.contains("imported \"work-mfa\""), "{stdout}");

    // A plain https URL; http:// is refused.
    let stdout = ok(&ctl(
        d,
        &ca,
        &[
            "--json",
            "import",
            "--url",
            &server.url("/profiles/work.ovpn"),
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["imported"], "work", "{v}");
    assert_eq!(v["report"]["usable"], true, "{v}");
    let err = failed(&ctl(
        d,
        &ca,
        &[
            "import",
            "--url",
            &format!("http://localhost:{}/profiles/work.ovpn", server.port()),
        ],
    ));
    assert!(err.contains("only https://"), "{err}");
    let err = failed(&ctl(
        d,
        &ca,
        &["import", "--url", &server.url("/profiles/refs.ovpn")],
    ));
    assert!(err.contains("3 file(s)") && err.contains("inline"), "{err}");
    let err = failed(&ctl(d, &ca, &["import", "--url", &server.url("/login")]));
    assert!(err.contains("web page"), "{err}");

    // A password is never taken on the command line.
    let out = ctl(
        d,
        &ca,
        &["import", "--access-server", &host, "--password", "x"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn an_untrusted_certificate_is_named_and_nothing_is_sent() {
    let server = AccessServer::start(CertKind::SelfSigned).unwrap();
    let lab = AccessServer::start(CertKind::LabCa).unwrap();
    let ca = lab.ca_file().unwrap();
    let data = tempfile::tempdir().unwrap();
    let pw = data.path().join("pw");
    std::fs::write(&pw, format!("{}\n", AS_USER.1)).unwrap();
    let err = failed(&ctl(
        data.path(),
        &ca,
        &[
            "import",
            "--access-server",
            &format!("localhost:{}", server.port()),
            "--user",
            AS_USER.0,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    ));
    assert!(
        err.contains("certificate") && err.contains("does not trust"),
        "{err}"
    );
    assert!(server.requests().is_empty());
    assert!(!data.path().join("oxivpn/profiles/localhost.ovpn").exists());
}
