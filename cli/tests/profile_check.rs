//! `oxivpnctl profile check`: exit codes, human and JSON output, the corpus summary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CA: &str = include_str!("../../crates/ovpn-profile/tests/fixtures/ca.crt");
const KEY: &str = include_str!("../../crates/ovpn-profile/tests/fixtures/client.key");

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxivpnctl"))
        .args(args)
        // Never reach a real helper or the user's profiles.
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join("oxivpnctl-test-none"),
        )
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn good(extra: &str) -> String {
    format!("client\ndev tun\nremote vpn.example.com 1194\n{extra}\n<ca>\n{CA}</ca>\n<cert>\n{CA}</cert>\n<key>\n{KEY}</key>\n")
}

#[test]
fn exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = write(
        tmp.path(),
        "ok.ovpn",
        good("up /etc/openvpn/update-resolv-conf").as_bytes(),
    );
    let needs = write(
        tmp.path(),
        "needs.ovpn",
        good("tls-auth ta.key 1").as_bytes(),
    );
    let tap = write(
        tmp.path(),
        "tap.ovpn",
        good("").replace("dev tun", "dev tap").as_bytes(),
    );
    let binary = write(
        tmp.path(),
        "bin.ovpn",
        &(0u8..=255).cycle().take(10_000).collect::<Vec<u8>>(),
    );

    let o = run(&["profile", "check", &ok]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("line    4 refused") && text.contains("OxiVPN sets DNS itself"),
        "{text}"
    );
    assert!(text.contains("=> usable"));

    let o = run(&["profile", "check", &needs]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a missing referenced file does not make it unusable"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("needs-file"));

    for bad in [&tap, &binary] {
        let o = run(&["profile", "check", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("NOT usable"));
    }
    let missing = tmp.path().join("nope.ovpn").display().to_string();
    assert_eq!(run(&["profile", "check", &missing]).status.code(), Some(1));

    let o = run(&["profile", "check", &ok, &tap]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out.lines().last().unwrap(),
        "1 usable, 1 unusable, 1 refused directives"
    );

    assert_eq!(run(&["profile", "check"]).status.code(), Some(2));
    assert_eq!(
        run(&["profile", "check", "--bogus", &ok]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["profile"]).status.code(), Some(2));
}

#[test]
fn json_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = write(
        tmp.path(),
        "ok.ovpn",
        good("script-security 2\nca ca.crt").as_bytes(),
    );
    let o = run(&["profile", "check", "--json", &ok]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["file"], ok.as_str());
    assert_eq!(f["usable"], true);
    assert_eq!(f["reason"], serde_json::Value::Null);
    assert_eq!(f["refused"], 1);
    let findings = f["findings"].as_array().unwrap();
    for x in findings {
        assert!(x["line"].is_u64() || x["line"].is_null());
        assert!(x["directive"].is_string() && x["message"].is_string());
        let sev = x["severity"].as_str().unwrap();
        assert!([
            "info",
            "honoured",
            "ignored",
            "unsupported",
            "refused",
            "needs-file",
            "error"
        ]
        .contains(&sev));
    }
    assert!(findings.iter().any(|x| x["severity"] == "refused"
        && x["line"] == 4
        && x["directive"] == "script-security"));
    // `ca ca.crt` comes before <ca>, which wins: nothing is needed.
    assert_eq!(f["needs_files"].as_array().unwrap().len(), 0);
    assert_eq!(v["summary"]["usable"], 1);
    assert_eq!(v["summary"]["unusable"], 0);
}

#[test]
fn whole_corpus_summary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ovpn");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        println!("notice: corpus not found at {}; skipping", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| !p.ends_with("SOURCES.tsv"))
        .collect();
    files.sort();
    let args: Vec<String> = ["profile", "check"]
        .iter()
        .map(|s| s.to_string())
        .chain(files.iter().map(|p| p.display().to_string()))
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "no crash: {:?}",
        o.status
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let summary = out.lines().last().unwrap();
    println!("corpus summary: {summary}");
    let nums: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "{summary}");
    assert_eq!(nums[0] + nums[1], files.len(), "{summary}");
    assert_eq!(o.status.code(), Some(if nums[1] == 0 { 0 } else { 1 }));
}

/// `oxivpnctl import` stores nothing when a file the profile names is missing: exit 1,
/// each missing file named with where it was looked for; `--file NAME=PATH` supplies it.
#[test]
fn import_refuses_missing_files_and_takes_supplied_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let import = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oxivpnctl"))
            .arg("import")
            .args(args)
            .env("XDG_DATA_HOME", &data)
            .output()
            .unwrap()
    };
    let text = format!(
        "client\ndev tun\nremote vpn.example.com 1194\nca keys/ca.crt\ntls-auth ta.key 1\n<cert>\n{CA}</cert>\n<key>\n{KEY}</key>\n"
    );
    let profile = write(tmp.path(), "office.ovpn", text.as_bytes());
    let out = import(&[&profile]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let dir = tmp.path().display();
    for want in [
        "office.ovpn was not imported: 2 file(s)".to_string(),
        format!("line 4, ca \"keys/ca.crt\": looked at {dir}/keys/ca.crt, {dir}/ca.crt"),
        format!("line 5, tls-auth \"ta.key\": looked at {dir}/ta.key"),
        "--file NAME=PATH".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    let stored = data.join("oxivpn/profiles");
    let count = || std::fs::read_dir(&stored).map_or(0, |d| d.count());
    assert_eq!(count(), 0, "nothing may be stored");

    // One supplied, one still missing: still refused, naming only the missing one.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let ca = write(&elsewhere, "my-ca.pem", CA.as_bytes());
    let ca_arg = format!("ca.crt={ca}");
    let out = import(&[&profile, "--file", &ca_arg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 file(s)") && err.contains("ta.key") && !err.contains("keys/ca.crt"),
        "{err}"
    );
    assert_eq!(count(), 0);

    // Both supplied: stored, self-contained.
    let ta = write(
        &elsewhere,
        "ta.key",
        include_bytes!("../../crates/ovpn-profile/tests/fixtures/ta.key"),
    );
    let ta_arg = format!("ta.key={ta}");
    let out = import(&[&profile, "--file", &ca_arg, "--file", &ta_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(stored.join("office.ovpn")).unwrap();
    assert!(
        saved.contains("<ca>") && saved.contains("<tls-auth>"),
        "{saved}"
    );
    ovpn_profile::check_untrusted(saved.as_bytes()).unwrap();

    // A --file the profile does not name is an error, not silently ignored.
    let out = import(&[
        &profile,
        "--name",
        "other",
        "--file",
        &ca_arg,
        "--file",
        &ta_arg,
        "--file",
        "nope.crt=/x",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("names no file \"nope.crt\""), "{err}");
}
