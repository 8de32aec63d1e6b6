//! Client keys with passphrases and revocation lists, through the helper service and
//! `oxivpnctl` against real OpenVPN servers in the lab (root only). Keys, archives and
//! CRLs are made by the real `openssl` at test time from the lab CA.
//!
//! - The client key as encrypted PKCS#8 (PBKDF2 and scrypt), as OpenSSL's traditional
//!   encrypted PEM and as a password-protected PKCS#12 archive: each connects with the
//!   passphrase from `--key-passphrase-file`; a wrong one is refused before anything
//!   starts, with "the private key's passphrase is wrong". The foreground client
//!   (`oxivpn-helper connect --key-passphrase-file`) likewise, for encrypted PKCS#8.
//! - `crl-verify FILE` (inlined at import) and inline `<crl-verify>` with a CRL of the lab
//!   CA: the server whose certificate it revokes is refused ("revoked"), the other one
//!   connects; a damaged CRL and `crl-verify DIR dir` are refused at import.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use oxivpn_e2e::{
    addr, client_pkcs12, encrypted_client_key, revoked_server, root_or_skip, ClientVariant, KeyAlg,
    KeyProtection, Lab, LabConfig, Role, ServerVariant,
};

const PASSPHRASE: &str = "correct horse battery";

/// Files written next to a profile: name and content.
type Files<'a> = Vec<(&'a str, &'a [u8])>;

fn helper_or_skip(test: &str) -> Option<PathBuf> {
    if !root_or_skip(test) {
        return None;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED {test}: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return None;
    }
    Some(helper)
}

/// `profile` with its `<tag>` block replaced by `with` (removed when empty).
fn replace_block(profile: &str, tag: &str, with: &str) -> String {
    let open = format!("<{tag}>\n");
    let close = format!("</{tag}>\n");
    let start = profile.find(&open).unwrap();
    let end = profile[start..].find(&close).unwrap() + start + close.len();
    format!("{}{with}{}", &profile[..start], &profile[end..])
}

/// Import `text` as profile `name` (written into `dir` with `files` beside it).
fn import(
    sock: &Path,
    data: &Path,
    dir: &Path,
    name: &str,
    text: &str,
    files: &[(&str, &[u8])],
) -> Output {
    let d = dir.join(format!("profile-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    for (f, body) in files {
        std::fs::write(d.join(f), body).unwrap();
    }
    let path = d.join(format!("{name}.ovpn"));
    std::fs::write(&path, text).unwrap();
    ctl(
        sock,
        data,
        &["import", path.to_str().unwrap(), "--name", name],
    )
}

#[test]
fn encrypted_keys_and_pkcs12_connect_with_their_passphrase() {
    let Some(helper) = helper_or_skip("encrypted_keys_and_pkcs12_connect_with_their_passphrase")
    else {
        return;
    };
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let before = lab.client_network_snapshot().unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let plain = lab
        .write_client_profile(&srv, &ClientVariant::default(), "plain")
        .unwrap()
        .text;
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    let dir = lab.dir().to_owned();
    let right = dir.join("right.pass");
    let wrong = dir.join("wrong.pass");
    std::fs::write(&right, format!("{PASSPHRASE}\n")).unwrap();
    std::fs::write(&wrong, "not the passphrase\n").unwrap();

    let alg = KeyAlg::EcP256;
    let p12 = client_pkcs12(alg, PASSPHRASE).unwrap();
    let mut cases: Vec<(&str, String, Files<'_>)> = Vec::new();
    for (name, how) in [
        ("pkcs8", KeyProtection::Pkcs8),
        ("pkcs8-scrypt", KeyProtection::Pkcs8Scrypt),
        ("traditional", KeyProtection::Traditional),
    ] {
        let key = encrypted_client_key(alg, how, PASSPHRASE).unwrap();
        let marker = if how == KeyProtection::Traditional {
            "Proc-Type: 4,ENCRYPTED"
        } else {
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        };
        assert!(key.contains(marker), "{name}: {key}");
        let profile = replace_block(&plain, "key", &format!("<key>\n{key}</key>\n"));
        cases.push((name, profile, Vec::new()));
    }
    // `pkcs12 FILE` next to the profile: import reads the DER archive and inlines it.
    let p12_profile = replace_block(
        &replace_block(&plain, "cert", ""),
        "key",
        "pkcs12 client.p12\n",
    );
    cases.push(("pkcs12", p12_profile, vec![("client.p12", &p12)]));

    for (name, profile, files) in &cases {
        ok(&import(&sock, &data, &dir, name, profile, files));
        // Wrong passphrase: refused before any packet, with the words the user needs.
        let wrong_path = wrong.to_str().unwrap();
        let out = ctl(
            &sock,
            &data,
            &[
                "connect",
                name,
                "--timeout",
                "30",
                "--key-passphrase-file",
                wrong_path,
            ],
        );
        assert!(!out.status.success(), "{name}: {}", text(&out));
        assert!(
            text(&out).contains("the private key's passphrase is wrong"),
            "{name}: {}",
            text(&out)
        );
        // No passphrase and no terminal: says what is needed and how to give it.
        let out = ctl(&sock, &data, &["connect", name, "--timeout", "30"]);
        assert!(!out.status.success(), "{name}: {}", text(&out));
        assert!(text(&out).contains("passphrase"), "{name}: {}", text(&out));
        // The right one connects, and traffic crosses the tunnel.
        let out = ok(&ctl(
            &sock,
            &data,
            &[
                "connect",
                name,
                "--timeout",
                "30",
                "--key-passphrase-file",
                right.to_str().unwrap(),
            ],
        ));
        assert!(out.contains("connected"), "{name}: {out}");
        let stats = lab
            .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
            .unwrap();
        assert_eq!(stats.received, 2, "{name}");
        ok(&ctl(&sock, &data, &["disconnect", name]));
    }

    // On a terminal (a real pty from util-linux `script`): a wrong passphrase is asked
    // again with the reason, and the right one then connects.
    let cmd = format!(
        "{} connect pkcs8 --timeout 30",
        env!("CARGO_BIN_EXE_oxivpnctl")
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("OXIVPN_SOCKET", &sock)
        .env("XDG_DATA_HOME", &data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        // One line per prompt, after the prompt is up (the pty keeps what comes early,
        // but turning echo off may drop it).
        std::thread::sleep(Duration::from_millis(700));
        stdin.write_all(b"not the passphrase\r").unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        stdin
            .write_all(format!("{PASSPHRASE}\r").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("the private key's passphrase is wrong"), "{t}");
    assert!(t.contains("connected"), "{t}");
    ok(&ctl(&sock, &data, &["disconnect", "pkcs8"]));
    assert_eq!(before, lab.client_network_snapshot().unwrap());

    // The foreground client (`oxivpn-helper connect`) with an encrypted PKCS#8 key: a
    // wrong `--key-passphrase-file` and none at all (stdin is no terminal) stop it before
    // anything starts, saying so; the right one connects and traffic crosses.
    let key = encrypted_client_key(alg, KeyProtection::Pkcs8, PASSPHRASE).unwrap();
    let fg_path = dir.join("foreground.ovpn");
    std::fs::write(
        &fg_path,
        replace_block(&plain, "key", &format!("<key>\n{key}</key>\n")),
    )
    .unwrap();
    let fg = oxivpn_e2e::ClientProfile {
        path: fg_path,
        text: String::new(),
        auth_file: None,
    };
    let wrong_arg = ["--key-passphrase-file", wrong.to_str().unwrap()];
    for (name, extra, says) in [
        (
            "fg-wrong",
            &wrong_arg[..],
            "the private key's passphrase is wrong",
        ),
        ("fg-none", &[][..], "--key-passphrase-file"),
    ] {
        let mut p = lab.spawn_helper_connect(&fg, name, extra).unwrap();
        let st = p.wait_exit(Duration::from_secs(15)).unwrap();
        assert!(!st.success(), "{name}: {}", p.log());
        assert!(p.log().contains(says), "{name}: {}", p.log());
        assert!(!p.log().contains("connecting to"), "{name}: {}", p.log());
    }
    let mut fg_run = lab
        .spawn_helper_connect(
            &fg,
            "fg-right",
            &["--key-passphrase-file", right.to_str().unwrap()],
        )
        .unwrap();
    fg_run
        .wait_for_log("Initialization Sequence Completed", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", fg_run.log_tail(30)));
    let stats = lab
        .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 2, "foreground: {}", fg_run.log_tail(30));
    let st = fg_run.stop().unwrap();
    assert!(st.success(), "{}", fg_run.log_tail(30));
    assert_eq!(before, lab.client_network_snapshot().unwrap());
}

#[test]
fn crl_refuses_the_revoked_server_and_accepts_the_other() {
    let Some(helper) = helper_or_skip("crl_refuses_the_revoked_server_and_accepts_the_other")
    else {
        return;
    };
    let revoked = revoked_server().unwrap();
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let before = lab.client_network_snapshot().unwrap();
    let dir = lab.dir().to_owned();
    // The lab's normal server (serial 2, not in the CRL) and one presenting the
    // certificate the CA revoked (serial 4), same CA and name.
    let good = lab.start_server(&ServerVariant::default()).unwrap();
    let revoked_dir = dir.join("revoked-server");
    std::fs::create_dir_all(&revoked_dir).unwrap();
    let (rc, rk) = (
        revoked_dir.join("server.crt"),
        revoked_dir.join("server.key"),
    );
    std::fs::write(&rc, &revoked.server_cert).unwrap();
    std::fs::write(&rk, &revoked.server_key).unwrap();
    let bad = lab
        .start_server_with(&ServerVariant::default(), |t| {
            t.replace("cert server.crt\n", &format!("cert {}\n", rc.display()))
                .replace("key server.key\n", &format!("key {}\n", rk.display()))
        })
        .unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    let good_profile = lab
        .write_client_profile(&good, &ClientVariant::default(), "good")
        .unwrap()
        .text;
    let bad_profile = lab
        .write_client_profile(&bad, &ClientVariant::default(), "bad")
        .unwrap()
        .text;
    let crl = revoked.crl.as_bytes();
    let inline_crl = format!("<crl-verify>\n{}</crl-verify>\n", revoked.crl);

    // `crl-verify FILE`, inlined at import: the revoked server is refused.
    let with_file = |p: &str| format!("{p}crl-verify crl.pem\n");
    ok(&import(
        &sock,
        &data,
        &dir,
        "file-bad",
        &with_file(&bad_profile),
        &[("crl.pem", crl)],
    ));
    let out = ctl(&sock, &data, &["connect", "file-bad", "--timeout", "30"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("revoked"),
        "{}",
        text(&out)
    );

    // Inline `<crl-verify>`: the same.
    let inline_bad = format!("{}{inline_crl}", bad_profile);
    ok(&import(&sock, &data, &dir, "inline-bad", &inline_bad, &[]));
    let out = ctl(&sock, &data, &["connect", "inline-bad", "--timeout", "30"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("revoked"),
        "{}",
        text(&out)
    );

    // The server the CRL does not list connects, with the file and inline forms.
    ok(&import(
        &sock,
        &data,
        &dir,
        "file-good",
        &with_file(&good_profile),
        &[("crl.pem", crl)],
    ));
    let inline_good = format!("{}{inline_crl}", good_profile);
    ok(&import(
        &sock,
        &data,
        &dir,
        "inline-good",
        &inline_good,
        &[],
    ));
    for name in ["file-good", "inline-good"] {
        let out = ok(&ctl(&sock, &data, &["connect", name, "--timeout", "30"]));
        assert!(out.contains("connected"), "{name}: {out}");
        let stats = lab
            .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
            .unwrap();
        assert_eq!(stats.received, 2, "{name}");
        ok(&ctl(&sock, &data, &["disconnect", name]));
    }

    // A CRL that does not parse: refused at import, naming the directive and the file.
    // Truncated: the header, the first line of base64 and the footer.
    let lines: Vec<&str> = revoked.crl.lines().collect();
    let damaged = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]);
    let out = import(
        &sock,
        &data,
        &dir,
        "damaged",
        &with_file(&good_profile),
        &[("crl.pem", damaged.as_bytes())],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("crl-verify") && t.contains("crl.pem"), "{t}");
    assert!(!ok(&ctl(&sock, &data, &["list"])).contains("damaged"));

    // `crl-verify DIR dir`: refused clearly (the helper never opens a folder).
    let out = import(
        &sock,
        &data,
        &dir,
        "crl-dir",
        &format!("{}crl-verify crls dir\n", good_profile),
        &[],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("crl-verify") && t.contains("directory"), "{t}");

    assert_eq!(before, lab.client_network_snapshot().unwrap());
}
