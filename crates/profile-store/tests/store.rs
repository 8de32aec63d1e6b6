//! Resolving file references next to a profile, and per-user storage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;

use ovpn_profile::{AuthUserPass, FileKind, Material, Severity};
use profile_store::{resolve, validate_name, Store, StoreError};

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const CA: &str = include_str!("../../ovpn-profile/tests/fixtures/ca.crt");
const KEY: &str = include_str!("../../ovpn-profile/tests/fixtures/client.key");
const TA: &str = include_str!("../../ovpn-profile/tests/fixtures/ta.key");

const PROFILE: &str = "client\ndev tun\nremote vpn.example.com 1194\nca keys/ca.crt\ncert /somewhere/else/client.crt\nkey client.key\ntls-auth ta.key 1\nauth-user-pass creds.txt\nup /etc/openvpn/update-resolv-conf\n";

fn write(dir: &Path, name: &str, data: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[test]
fn resolves_inlines_and_extracts_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "vpn.ovpn", PROFILE.as_bytes());
    write(d, "keys/ca.crt", CA.as_bytes());
    write(d, "client.crt", CA.as_bytes()); // found by bare name next to the profile
    write(d, "client.key", KEY.replace('\n', "\r\n").as_bytes());
    write(d, "ta.key", TA.as_bytes());
    write(d, "creds.txt", b"alice\nsecret-pw\n");
    let r = resolve(&d.join("vpn.ovpn")).unwrap();
    assert!(r.report.usable, "{}", r.report.to_text());
    assert!(
        r.report.needs_files.is_empty(),
        "{:?}",
        r.report.needs_files
    );
    let creds = r.credentials.clone().unwrap();
    assert_eq!(
        (creds.username.as_str(), creds.password.as_deref()),
        ("alice", Some("secret-pw"))
    );
    assert!(
        !format!("{creds:?}").contains("secret-pw"),
        "Debug must not show the password"
    );
    let p = r.profile.unwrap();
    assert!(matches!(p.ca, Some(Material::Inline(_))));
    assert_eq!(p.auth_user_pass, Some(AuthUserPass::Prompt));
    // tls-auth's direction moves to key-direction when inlined.
    assert_eq!(p.key_direction, Some(ovpn_profile::KeyDirection::Inverse));
    let text = p.to_ovpn_text();
    assert!(
        !text.contains("secret-pw") && !text.contains("update-resolv-conf") && !text.contains('\r')
    );
    // What the store writes is what the helper accepts.
    let checked = ovpn_profile::check_untrusted(text.as_bytes()).unwrap();
    assert_eq!(checked, p);
    let honoured = r
        .report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Honoured && f.message.contains("inlined"))
        .count();
    assert_eq!(honoured, 4);
}

#[test]
fn missing_and_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "vpn.ovpn", PROFILE.as_bytes());
    write(d, "keys/ca.crt", b"$CA$\n");
    let r = resolve(&d.join("vpn.ovpn")).unwrap();
    assert!(!r.report.usable);
    let reason = r.report.reason.clone().unwrap();
    assert!(
        reason.starts_with("line 4 (ca):") && reason.contains("placeholder"),
        "{reason}"
    );
    let kinds: Vec<FileKind> = r.report.needs_files.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        vec![
            FileKind::Cert,
            FileKind::Key,
            FileKind::TlsAuth,
            FileKind::AuthUserPass
        ]
    );
}

#[test]
fn fifo_and_directory_do_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "vpn.ovpn", PROFILE.as_bytes());
    std::fs::create_dir(d.join("client.key")).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(d.join("ta.key"))
        .status()
        .is_ok_and(|s| s.success());
    let r = resolve(&d.join("vpn.ovpn")).unwrap();
    assert!(!r.report.usable);
    let errs: Vec<_> = r
        .report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.directive.clone())
        .collect();
    assert!(errs.contains(&"key".to_string()));
    if ok {
        assert!(errs.contains(&"tls-auth".to_string()));
    }
}

#[test]
fn pkcs12_der_file_is_base64_inlined() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let der: [u8; 24] = [
        0x30, 0x16, 0x02, 0x01, 0x03, 0x30, 0x11, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
        0x01, 0x07, 0x01, 0xa0, 0x04, 0x04, 0x02, 0x30, 0x00,
    ];
    write(d, "x.p12", &der);
    write(
        d,
        "vpn.ovpn",
        b"client\ndev tun\nremote a.example\npkcs12 x.p12\n",
    );
    let r = resolve(&d.join("vpn.ovpn")).unwrap();
    assert!(r.report.usable, "{}", r.report.to_text());
    let p = r.profile.unwrap();
    assert_eq!(
        p.pkcs12.unwrap().inline(),
        Some("MBYCAQMwEQYJKoZIhvcNAQcBoAQEAjAA\n")
    );
}

#[test]
fn store_lifecycle_and_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("oxivpn/profiles")).unwrap();
    // Unix modes; on Windows the per-user folder's ACL does this job (tests run under Wine).
    #[cfg(unix)]
    assert_eq!(mode(store.dir()), 0o700);
    let text = format!("client\ndev tun\nremote a.example\n<ca>\n{CA}</ca>\n<auth-user-pass>\nbob\npw123\n</auth-user-pass>\n");
    let p = ovpn_profile::parse(text.as_bytes()).unwrap().profile;
    store.save_new("Work", &p).unwrap();
    assert!(matches!(
        store.save_new("Work", &p),
        Err(StoreError::AlreadyExists(_))
    ));
    #[cfg(unix)]
    assert_eq!(mode(&store.dir().join("Work.ovpn")), 0o600);
    assert!(
        !store.read_text("Work").unwrap().contains("pw123"),
        "passwords never reach disk"
    );
    assert_eq!(store.list().unwrap(), vec!["Work"]);
    store.duplicate("Work", "Work copy").unwrap();
    assert!(matches!(
        store.rename("Work", "Work copy"),
        Err(StoreError::AlreadyExists(_))
    ));
    store.rename("Work", "Home").unwrap();
    assert_eq!(store.list().unwrap(), vec!["Home", "Work copy"]);
    assert_eq!(store.free_name("Home").unwrap(), "Home (2)");
    let loaded = store.load("Home").unwrap();
    assert_eq!(loaded.remotes[0].host, "a.example");
    store.delete("Home").unwrap();
    assert!(matches!(store.delete("Home"), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.load("../etc/passwd"),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(validate_name("ok name").is_ok());
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

/// XDG is the Linux (and BSD) rule; Windows and macOS have their own place (below).
#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn default_store_uses_xdg_data_home() {
    let tmp = tempfile::tempdir().unwrap();
    // Only this test touches the variable in this test binary.
    std::env::set_var("XDG_DATA_HOME", tmp.path());
    let store = Store::open_default().unwrap();
    assert_eq!(store.dir(), tmp.path().join("oxivpn/profiles"));
    std::env::remove_var("XDG_DATA_HOME");
}

/// On Windows the profiles live in the user's roaming AppData (`%APPDATA%\oxivpn\profiles`).
#[cfg(windows)]
#[test]
fn default_store_is_in_roaming_app_data() {
    let store = Store::open_default().unwrap();
    let appdata = std::path::PathBuf::from(std::env::var_os("APPDATA").unwrap());
    assert_eq!(store.dir(), appdata.join("oxivpn").join("profiles"));
}

#[test]
fn huge_profile_is_a_line_numbered_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big.ovpn");
    let line = format!("# {}\n", "x".repeat(1000));
    std::fs::write(&p, line.repeat(50 * 1024)).unwrap();
    let r = resolve(&p).unwrap();
    assert!(!r.report.usable && r.profile.is_none());
    let reason = r.report.reason.unwrap();
    assert!(
        reason.starts_with("line 1046:") && reason.contains(&format!("{} bytes", 1003 * 50 * 1024)),
        "{reason}"
    );
}

#[test]
fn proxy_credentials_file_is_read_and_kept_out() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "p.ovpn", format!("client\ndev tun\nproto tcp-client\nremote a.example\nhttp-proxy proxy.example 3128 pauth.txt basic\n<ca>\n{CA}</ca>\n").as_bytes());
    write(d, "pauth.txt", b"proxyuser\nproxypw\n");
    let r = resolve(&d.join("p.ovpn")).unwrap();
    assert!(r.report.usable, "{}", r.report.to_text());
    assert!(
        r.report
            .findings
            .iter()
            .all(|f| !(f.severity == Severity::NeedsFile && f.line == Some(4))),
        "{}",
        r.report.to_text()
    );
    assert_eq!(r.proxy_credentials.unwrap().username, "proxyuser");
    let text = r.profile.unwrap().to_ovpn_text();
    assert!(
        text.contains("http-proxy proxy.example 3128 stdin") && !text.contains("pauth"),
        "{text}"
    );
}
