//! The Windows service end to end under Wine: `oxivpn-helper.exe service` on its named
//! pipe (the real security descriptor, the real per-connection token check) and
//! `oxivpnctl.exe` over it, as a Windows user would run them.
//!
//! Wine knows no local group "OxiVPN Users" (the installer creates it with net.exe,
//! which Wine lacks), so the pipe admits the built-in Users group here: the descriptor
//! and the check are the same code, only the group's SID differs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;

use super::{Wine, TARGET, WINE};
use crate::sys;

/// The directory the test owns inside the prefix, as Windows sees it and as we do.
const WIN_DIR: &str = r"C:\oxivpn-e2e";
const PROFILE: &str = "wine-e2e";

pub fn run(wine: &Wine) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin = build(wine)?;
    let dir = wine.prefix.join("drive_c/oxivpn-e2e");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pipe = format!(r"\\.\pipe\oxivpn-wine-{}", std::process::id());
    let lab = Lab {
        wine,
        bin,
        dir,
        pipe,
    };
    // The user's stored profiles live in the prefix's %APPDATA% (dirs::data_dir).
    let store = wine
        .prefix
        .join("drive_c/users")
        .join(std::env::var("USER").unwrap_or_else(|_| "root".into()))
        .join("AppData/Roaming/oxivpn");
    if store.exists() {
        std::fs::remove_dir_all(&store).with_context(|| format!("removing {}", store.display()))?;
    }

    let (mut helper, status, stub) = lab.start_serving()?;
    let result = lab.steps(&mut helper, &store, &status, stub);
    let log = std::fs::read_to_string(lab.dir.join("state/helper.log")).unwrap_or_default();
    helper.stop();
    if let Err(e) = result {
        eprintln!("xtask wine: the helper's log:\n{log}");
        return Err(e);
    }
    eprintln!(
        "xtask wine: end-to-end passed ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn build(wine: &Wine) -> anyhow::Result<PathBuf> {
    sys::run(wine.cargo().args([
        "build",
        "--locked",
        "--target",
        TARGET,
        "-p",
        "oxivpn-helper",
        "-p",
        "oxivpnctl",
    ]))?;
    Ok(crate::dist::target_dir().join(TARGET).join("debug"))
}

struct Lab<'a> {
    wine: &'a Wine,
    bin: PathBuf,
    dir: PathBuf,
    pipe: String,
}

/// The helper under Wine; killed (with its Wine process tree) when dropped.
struct Helper {
    child: Option<Child>,
}

impl Helper {
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Lab<'_> {
    fn helper_cmd(&self, stub: bool) -> Command {
        let mut c = self.wine.command(WINE);
        c.arg(self.bin.join("oxivpn-helper.exe"))
            .args(["service", "--group", "Users", "--pipe", &self.pipe])
            .arg("--state-dir")
            .arg(format!(r"{WIN_DIR}\state"))
            .env("RUST_LOG", "debug");
        if stub {
            // The helper's stand-in tunnel: every stage up to Connected, nothing
            // configured (Wine has no wintun, WFP or DNS settings).
            c.args(["--stub-tunnel", "connect"]);
        }
        c
    }

    fn start_helper(&self, stub: bool) -> anyhow::Result<Helper> {
        let stderr = std::fs::File::create(self.dir.join("helper-stderr.txt"))
            .context("creating the helper's stderr file")?;
        let mut cmd = self.helper_cmd(stub);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        eprintln!("xtask: $ {cmd:?}");
        let child = cmd
            .spawn()
            .context("starting oxivpn-helper.exe under Wine")?;
        Ok(Helper { child: Some(child) })
    }

    /// The helper serving its pipe, with the stand-in tunnel when this build of the
    /// helper has one (`--stub-tunnel`); the status it first answered; whether stubbed.
    fn start_serving(&self) -> anyhow::Result<(Helper, Value, bool)> {
        let mut helper = self.start_helper(true)?;
        match self.wait_for_pipe(&mut helper) {
            Ok(status) => Ok((helper, status, true)),
            Err(e) => {
                let stderr =
                    std::fs::read_to_string(self.dir.join("helper-stderr.txt")).unwrap_or_default();
                if !stderr.contains("--stub-tunnel") {
                    return Err(e.context(stderr));
                }
                eprintln!(
                    "xtask wine: NOTICE: this helper has no --stub-tunnel; connect can only be \
                     checked for a clean refusal"
                );
                let mut helper = self.start_helper(false)?;
                let status = self.wait_for_pipe(&mut helper)?;
                Ok((helper, status, false))
            }
        }
    }

    /// oxivpnctl.exe with `args`, on our pipe, JSON output.
    fn ctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut c = self.wine.command(WINE);
        c.arg(self.bin.join("oxivpnctl.exe"))
            .args(["--json", "--socket", &self.pipe])
            .args(args)
            .stdin(Stdio::null());
        c.output()
            .with_context(|| format!("running oxivpnctl.exe {}", args.join(" ")))
    }

    /// oxivpnctl.exe that must succeed; its JSON values (one per line).
    fn ctl_ok(&self, args: &[&str]) -> anyhow::Result<Vec<Value>> {
        let out = self.ctl(args)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "oxivpnctl.exe {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
            .collect()
    }

    /// oxivpnctl.exe that must fail; its stderr.
    fn ctl_err(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.ctl(args)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            !out.status.success(),
            "oxivpnctl.exe {} should have failed: {text}",
            args.join(" ")
        );
        Ok(text)
    }

    fn wait_for_pipe(&self, helper: &mut Helper) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = helper.exited() {
                bail!("oxivpn-helper.exe exited with {status} before serving its pipe");
            }
            match self.ctl_ok(&["status"]) {
                Ok(mut v) if !v.is_empty() => return Ok(v.remove(0)),
                Ok(_) => bail!("oxivpnctl.exe status printed nothing"),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("the helper's pipe did not answer within 60 s"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    fn steps(
        &self,
        helper: &mut Helper,
        store: &Path,
        status: &Value,
        stub: bool,
    ) -> anyhow::Result<()> {
        // 1. The service answers over its pipe: the hello and the status carry the
        //    version this workspace builds, and the caller's identity.
        let version = status["helper"]["helper_version"].as_str().unwrap_or("");
        ensure!(
            version == env!("CARGO_PKG_VERSION"),
            "status names helper version {version:?}: {status}"
        );
        ensure!(
            status["helper"]["protocol"].as_u64().is_some(),
            "status without a protocol: {status}"
        );
        step("status over the named pipe (real pipe ACL, token check)");

        // 2. A second helper on the same pipe refuses to serve (a forged helper started
        //    after ours is refused the same way): real Windows refuses its first
        //    instance (FILE_FLAG_FIRST_PIPE_INSTANCE); Wine 8.0 ignores that flag
        //    (measured), and the helper's own instance count refuses it here.
        let second_err = self.dir.join("second-helper-stderr.txt");
        let mut second = Helper {
            child: Some(
                self.helper_cmd(stub)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(
                        std::fs::File::create(&second_err)
                            .context("creating the second helper's stderr file")?,
                    )
                    .spawn()
                    .context("starting a second helper")?,
            ),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(s) = second.exited() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        second.stop();
        let said = std::fs::read_to_string(&second_err).unwrap_or_default();
        match exit {
            Some(s) if !s.success() => {}
            Some(s) => bail!("a second helper on {} exited with {s}: {said}", self.pipe),
            None => bail!(
                "a second helper serves {} next to the first: {said}",
                self.pipe
            ),
        }
        let refusal = said
            .lines()
            .find(|l| l.contains("refusing to serve") || l.contains("another helper running"))
            .with_context(|| format!("the second helper failed without saying why: {said}"))?;
        ensure!(
            helper.exited().is_none(),
            "the first helper died when a second one tried its pipe"
        );
        self.ctl_ok(&["status"])
            .context("the helper stopped answering after a second instance tried its pipe")?;
        step(&format!(
            "a second helper on the same pipe refuses to serve: {}",
            refusal.trim()
        ));

        // 3. Import: a profile naming a CA file next to it (Windows path) and a script
        //    directive, which is dropped with a report; stored under %APPDATA%.
        make_pki(&self.dir)?;
        std::fs::write(self.dir.join("work.ovpn"), PROFILE_TEXT)?;
        let imported = self.ctl_ok(&[
            "import",
            &format!(r"{WIN_DIR}\work.ovpn"),
            "--name",
            PROFILE,
        ])?;
        let v = imported.first().context("import printed nothing")?;
        ensure!(v["imported"] == PROFILE, "import answered {v}");
        let stored =
            std::fs::read_to_string(store.join("profiles").join(format!("{PROFILE}.ovpn")))
                .with_context(|| format!("the imported profile is not in {}", store.display()))?;
        ensure!(
            stored.contains("<ca>") && stored.contains("BEGIN CERTIFICATE"),
            "the CA file was not inlined:\n{stored}"
        );
        ensure!(
            !stored.contains("script.bat"),
            "the script directive was kept:\n{stored}"
        );
        step("import (file inlined from a Windows path, script refused, stored in %APPDATA%)");

        // 4. Bad input: a broken profile is refused naming its line; nothing stored.
        std::fs::write(self.dir.join("broken.ovpn"), "client\nremote\n")?;
        let err = self.ctl_err(&["import", &format!(r"{WIN_DIR}\broken.ovpn")])?;
        ensure!(
            err.contains("line 2") || err.contains(":2"),
            "the error does not name the line: {err}"
        );
        ensure!(
            !store.join("profiles/broken.ovpn").exists(),
            "a broken profile was stored"
        );
        step("a broken profile is refused, naming its line");

        // 5. list shows the profile (and asks the helper for sessions over the pipe).
        let listed = self.ctl_ok(&["list"])?;
        let names = serde_json::to_string(&listed)?;
        ensure!(names.contains(PROFILE), "list does not show it: {names}");
        step("list");

        // 6. logs: subscribes over the pipe and replays the history.
        self.ctl_ok(&["logs"])?;
        step("logs");

        if stub {
            self.connect_with_stub()
        } else {
            self.connect_refused(helper)
        }
    }
}

/// Throw-away self-signed certificates for the profile to name: `ca.crt`, and
/// `client.crt` with `client.key` (a profile without a client identity would be refused
/// by oxivpnctl before it ever asks the helper).
fn make_pki(dir: &Path) -> anyhow::Result<()> {
    for (name, key) in [("ca", "ca.key"), ("client", "client.key")] {
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj"])
            .arg(format!("/CN=OxiVPN Wine e2e {name}"))
            .arg("-keyout")
            .arg(dir.join(key))
            .arg("-out")
            .arg(dir.join(format!("{name}.crt")))
            .output()
            .context("running openssl")?;
        ensure!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Lab<'_> {
    /// 7. connect through the Windows service with the stand-in tunnel: Connected, the
    ///    session's logs, disconnect.
    fn connect_with_stub(&self) -> anyhow::Result<()> {
        // The transcript (the issue note shows it): what oxivpnctl.exe printed, and the
        // session as the service reports it afterwards.
        let printed = self.ctl_ok(&["connect", PROFILE, "--timeout", "60"])?;
        transcript(
            &format!("oxivpnctl.exe --json connect {PROFILE} --timeout 60"),
            &printed,
        );
        let session = self.session()?.context("no session after connect")?;
        transcript(
            "oxivpnctl.exe --json status (our session)",
            std::slice::from_ref(&session),
        );
        ensure!(
            session["stage"]["connected"].is_object(),
            "connect returned but the session is {}",
            session["stage"]
        );
        step("connect reaches Connected through the Windows service (stand-in tunnel)");
        let logs = self.ctl_ok(&["logs", PROFILE])?;
        ensure!(!logs.is_empty(), "the connected session has no log lines");
        step(&format!("logs of the session ({} lines)", logs.len()));
        self.ctl_ok(&["disconnect", PROFILE])?;
        if let Some(s) = self.session()? {
            ensure!(
                !s["stage"]["connected"].is_object(),
                "still connected after disconnect: {s}"
            );
        }
        step("disconnect");
        Ok(())
    }

    /// 7. without a stand-in tunnel (a helper before it had one): Wine has no wintun, so
    ///    connect must fail with a clear error, leave no session, and the helper stays up.
    fn connect_refused(&self, helper: &mut Helper) -> anyhow::Result<()> {
        let err = self.ctl_err(&["connect", PROFILE, "--timeout", "30"])?;
        ensure!(
            err.lines()
                .any(|l| l.contains("error") || l.contains("Error")),
            "connect failed without an error message: {err}"
        );
        ensure!(
            helper.exited().is_none(),
            "the helper died on connect: {err}"
        );
        ensure!(self.session()?.is_none(), "a failed connect left a session");
        step(&format!(
            "connect refused without a tunnel under Wine: {}",
            err.lines().last().unwrap_or("").trim()
        ));
        Ok(())
    }

    /// Our profile's session in `status`, if any.
    fn session(&self) -> anyhow::Result<Option<Value>> {
        let status = self.ctl_ok(&["status"])?;
        Ok(status
            .first()
            .and_then(|v| v["sessions"].as_array())
            .and_then(|list| list.iter().find(|s| s["profile_name"] == PROFILE).cloned()))
    }
}

fn transcript(command: &str, printed: &[Value]) {
    eprintln!("xtask wine: $ {command}");
    for v in printed {
        eprintln!("xtask wine:   {v}");
    }
}

fn step(what: &str) {
    eprintln!("xtask wine: e2e PASS {what}");
}

const PROFILE_TEXT: &str = "client
dev tun
proto udp
remote 127.0.0.1 1194
nobind
remote-cert-tls server
ca ca.crt
cert client.crt
key client.key
up script.bat
";
