//! Shared pieces for the helper's root-only service tests: a helper process guard,
//! throwaway users and group, and a client child that runs as one of those users.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A profile the helper accepts; its server (loopback port 1) never answers.
pub const PROFILE_OK: &str = "client\ndev tun\nproto udp\nremote 127.0.0.1 1\nnobind\n\
    peer-fingerprint 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n";

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn skip_notice(test: &str) {
    eprintln!(
        "SKIPPED {test}: needs root (creates users/groups and runs the helper); CI runs it as root"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A group and users made for one test, deleted on drop.
pub struct Accounts {
    pub group: String,
    pub users: Vec<String>,
}

impl Accounts {
    /// `members` join the group, `others` do not.
    pub fn create(tag: &str, members: &[&str], others: &[&str]) -> Self {
        let pid = std::process::id();
        let group = format!("oxivpn-test-{pid}{tag}");
        let mut acc = Accounts {
            group: group.clone(),
            users: Vec::new(),
        };
        run(Command::new("groupadd").arg(&group));
        for (who, member) in members
            .iter()
            .map(|m| (m, true))
            .chain(others.iter().map(|o| (o, false)))
        {
            let name = user_name(who);
            let mut cmd = Command::new("useradd");
            cmd.args(["-M", "-s", "/usr/sbin/nologin"]);
            if member {
                cmd.args(["-G", &group]);
            }
            cmd.arg(&name);
            run(&mut cmd);
            acc.users.push(name);
        }
        acc
    }
}

pub fn user_name(who: &str) -> String {
    format!("oxt{}{who}", std::process::id())
}

pub fn uid_of(who: &str) -> u32 {
    nix::unistd::User::from_name(&user_name(who))
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

/// A private directory every user can traverse (the socket lives here), deleted on drop.
pub struct OpenDir {
    pub dir: tempfile::TempDir,
}

impl OpenDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oxivpn-svc-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The real helper binary serving on a temp socket; killed on drop.
pub struct Helper {
    pub child: Child,
    pub socket: PathBuf,
}

impl Helper {
    pub fn start(dir: &Path, name: &str, group: &str, extra: &[&str]) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let state = dir.join(format!("{name}-state"));
        // In a network namespace of its own: the helper's start-up repair and
        // route lookups then never see the machine's routes.
        let child = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\"",
            ])
            .arg(env!("CARGO_BIN_EXE_oxivpn-helper"))
            .arg("service")
            .arg("--socket")
            .arg(&socket)
            .arg("--group")
            .arg(group)
            .arg("--state-dir")
            .arg(&state)
            .arg("--stub-tunnel")
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut h = Helper { child, socket };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::os::unix::net::UnixStream::connect(&h.socket).is_err() {
            assert!(
                h.child.try_wait().unwrap().is_none(),
                "helper exited during start"
            );
            assert!(Instant::now() < deadline, "helper did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
