//! The lab side: the real helper service, profiles, and the sign-in "browser".

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use oxivpn_e2e::{helper_binary, Lab, Proc, Role};

use crate::driver::UI_WAIT;

pub fn start_helper(lab: &Lab, socket: &Path, state: &Path) -> anyhow::Result<Proc> {
    let helper = helper_binary()?;
    let argv = [
        helper.to_str().context("helper path")?,
        "service",
        "--socket",
        socket.to_str().context("socket path")?,
        "--group",
        "root",
        "--state-dir",
        state.to_str().context("state path")?,
        "--dhcp-lease-dir",
        lab.dir().to_str().context("lab path")?,
    ];
    let p = lab.spawn(Role::Cli, &argv, "helper-service")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if Instant::now() > deadline {
            bail!("helper service did not listen; log:\n{}", p.log_tail(30));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(p)
}

/// A profile the import must refuse: hooks that would run programs, and no CA.
pub const REFUSED_PROFILE: &str = "client\n\
dev tun\n\
proto udp\n\
remote vpn.example.com 1194\n\
script-security 2\n\
up /etc/openvpn/update-resolv-conf\n\
auth-user-pass\n";

/// The app's "browser" (`$BROWSER`, which xdg-open uses when it finds no desktop): it
/// records each link, and one instance at a time visits the page from the client
/// namespace (where the user is; the app itself runs outside the lab) once the test has
/// written the answer to give. Bounded: it gives up after 30 s.
pub struct TestBrowser {
    script: PathBuf,
    log: PathBuf,
    go: PathBuf,
}

impl TestBrowser {
    pub fn new(work: &Path, client_ns: &str) -> anyhow::Result<Self> {
        let dir = work.join("browser");
        std::fs::create_dir_all(&dir)?;
        let (log, go, lock) = (dir.join("log"), dir.join("go"), dir.join("visiting"));
        let script = dir.join("browser.sh");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
url="$1"
echo "open $url" >> "{log}"
mkdir "{lock}" 2>/dev/null || exit 0
i=0
while [ $i -lt 300 ]; do
  if mv "{go}" "{go}.$$" 2>/dev/null; then
    answer=$(cat "{go}.$$"); rm -f "{go}.$$"
    ip netns exec {ns} curl -s --max-time 5 "$url&answer=$answer" >> "{log}"; echo >> "{log}"
    rmdir "{lock}"
    exit 0
  fi
  sleep 0.1; i=$((i+1))
done
echo "no answer given" >> "{log}"
rmdir "{lock}"
"#,
                log = log.display(),
                go = go.display(),
                lock = lock.display(),
                ns = client_ns,
            ),
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(Self { script, log, go })
    }

    /// The app's environment: this browser, and no desktop for xdg-open to detect.
    pub fn install(&self, cmd: &mut Command) {
        cmd.env("BROWSER", &self.script);
        for v in [
            "XDG_CURRENT_DESKTOP",
            "DESKTOP_SESSION",
            "KDE_FULL_SESSION",
            "GNOME_DESKTOP_SESSION_ID",
            "MATE_DESKTOP_SESSION_ID",
        ] {
            cmd.env_remove(v);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lets the waiting browser visit the page with `answer`.
    pub fn answer(&self, answer: &str) -> anyhow::Result<()> {
        let tmp = self.go.with_extension("tmp");
        std::fs::write(&tmp, answer)?;
        std::fs::rename(&tmp, &self.go)?;
        Ok(())
    }

    /// Waits until the browser was given `n` links in all.
    pub async fn wait_opens(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let opens = self
                .log()
                .lines()
                .filter(|l| l.starts_with("open "))
                .count();
            if opens >= n {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the browser got {opens} links, not {n}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
