//! `oxivpnctl` against a real helper process (root only; the helper runs in a
//! network namespace of its own with a stand-in tunnel, so nothing leaves the box).
//! Needs the helper binary next to oxivpnctl (`cargo test --workspace` builds both);
//! skips with a notice otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The service is reached over a Unix socket here (Windows: see the Wine e2e in xtask).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const FP: &str = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";

struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn helper_bin() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    p.exists().then_some(p)
}

fn start_helper(bin: &Path, dir: &Path) -> (Helper, PathBuf) {
    let sock = dir.join("helper.sock");
    let child = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(bin)
        .arg("service")
        .arg("--socket")
        .arg(&sock)
        .args(["--group", "root", "--stub-tunnel", "--state-dir"])
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let h = Helper(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "helper did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (h, sock)
}

struct Ctl<'a> {
    sock: &'a Path,
    data: &'a Path,
}

impl Ctl<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_oxivpnctl"))
            .args(args)
            .env("OXIVPN_SOCKET", self.sock)
            .env("XDG_DATA_HOME", self.data)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "oxivpnctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(self.ok(&a).trim()).unwrap()
    }
}

#[test]
fn import_connect_status_logs_disconnect() {
    if effective_uid() != 0 {
        eprintln!("SKIPPED import_connect_status_logs_disconnect: needs root (runs the helper)");
        return;
    }
    let Some(bin) = helper_bin() else {
        eprintln!("SKIPPED import_connect_status_logs_disconnect: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_helper, sock) = start_helper(&bin, dir.path());
    let data = dir.path().join("data");
    let ctl = Ctl {
        sock: &sock,
        data: &data,
    };

    // Import drops the script and reports it; the stored profile is what the helper accepts.
    let file = dir.path().join("office.ovpn");
    std::fs::write(
        &file,
        format!("client\ndev tun\nremote 127.0.0.1 1 udp\nnobind\nscript-security 2\nup /bin/sh\npeer-fingerprint {FP}\n"),
    )
    .unwrap();
    let human = ctl.ok(&["import", file.to_str().unwrap()]);
    assert!(human.contains("imported \"office\""), "{human}");
    assert!(human.contains("2 directive(s) were dropped"), "{human}");
    let list = ctl.json(&["list"]);
    assert_eq!(list["profiles"][0]["name"], "office");
    assert_eq!(list["helper_reachable"], true);

    // A profile that needs a password: no terminal and no --auth-file is a clear error.
    let pw = dir.path().join("pw.ovpn");
    std::fs::write(
        &pw,
        format!("client\nremote 127.0.0.1 1 udp\nauth-user-pass\npeer-fingerprint {FP}\n"),
    )
    .unwrap();
    ctl.ok(&["import", pw.to_str().unwrap(), "--name", "with pw"]);
    let out = ctl.run(&["connect", "with pw"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--auth-file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let auth = dir.path().join("auth.txt");
    std::fs::write(&auth, "alice\nsecret\n").unwrap();
    let started = ctl.json(&[
        "connect",
        "with pw",
        "--no-wait",
        "--auth-file",
        auth.to_str().unwrap(),
    ]);
    assert_eq!(started["profile_name"], "with pw");

    // The stand-in tunnel never connects: a waiting connect gives up, fails, and
    // leaves nothing behind.
    let t = Instant::now();
    let out = ctl.run(&["connect", "office", "--timeout", "2"]);
    assert!(!out.status.success());
    assert!(t.elapsed() < Duration::from_secs(20));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not connect within 2 s"));

    let started = ctl.json(&["connect", "office", "--no-wait"]);
    let id = started["id"].as_u64().unwrap();
    let status = ctl.json(&["status"]);
    assert_eq!(status["helper"]["peer_uid"], 0);
    assert_eq!(status["sessions"].as_array().unwrap().len(), 2, "{status}");

    // The log shows the gave-up session's life and the running one.
    let logs = ctl.ok(&["logs"]);
    assert!(logs.contains(&format!("s{id} [connecting]")), "{logs}");
    assert!(logs.contains("disconnected on request"), "{logs}");

    let rc = ctl.json(&["route-check", "127.0.0.1"]);
    assert_eq!(rc["via_tunnel"], false);

    let gone = ctl.json(&["disconnect", "office"]);
    assert_eq!(gone["disconnected"][0], id);
    ctl.ok(&["disconnect"]);
    let status = ctl.json(&["status"]);
    assert!(
        status["sessions"].as_array().unwrap().is_empty(),
        "{status}"
    );
    let out = ctl.run(&["disconnect", "office"]);
    assert!(
        !out.status.success(),
        "disconnecting nothing by name must fail"
    );
}

fn effective_uid() -> u32 {
    // From /proc: no libc dependency for one number.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
