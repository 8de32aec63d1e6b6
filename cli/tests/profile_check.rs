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
