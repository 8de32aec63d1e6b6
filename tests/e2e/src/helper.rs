//! Running our own client (`oxivpn-helper connect`) inside a lab.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::lab::{Lab, Role};
use crate::process::Proc;
use crate::server::ClientProfile;

/// The `oxivpn-helper` binary: `$OXIVPN_HELPER`, else the one next to the running test
/// executable's directory (`target/<profile>/oxivpn-helper`, which `cargo test
/// --workspace` builds). Build it first when testing this crate alone:
/// `cargo build -p oxivpn-helper`.
pub fn helper_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("OXIVPN_HELPER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    // target/debug/deps/test-hash -> target/debug/oxivpn-helper
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let candidate = dir.join("oxivpn-helper");
    if !candidate.exists() {
        bail!(
            "{} does not exist: run `cargo build -p oxivpn-helper` or set OXIVPN_HELPER",
            candidate.display()
        );
    }
    Ok(candidate)
}

impl Lab {
    /// Starts `oxivpn-helper connect` with `profile` in the client namespace (journal
    /// `<lab dir>/<profile stem>.journal.json`, DHCP lease lookup in the lab directory; `--auth-file` when the profile has
    /// credentials). Output goes to `<lab dir>/<name>.log`.
    pub fn spawn_helper_connect(
        &self,
        profile: &ClientProfile,
        name: &str,
        extra: &[&str],
    ) -> anyhow::Result<Proc> {
        let helper = helper_binary()?;
        let mut argv: Vec<String> = vec![
            helper.to_string_lossy().into_owned(),
            "connect".into(),
            "--config".into(),
            profile.path.to_string_lossy().into_owned(),
            "--journal".into(),
            // One journal per profile, so a second run finds what a killed one left.
            self.dir()
                .join(format!(
                    "{}.journal.json",
                    profile
                        .path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ))
                .to_string_lossy()
                .into_owned(),
            "--dhcp-lease-dir".into(),
            self.dir().to_string_lossy().into_owned(),
        ];
        if let Some(a) = &profile.auth_file {
            argv.push("--auth-file".into());
            argv.push(a.to_string_lossy().into_owned());
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        let (prog, args) = argv.split_first().context("empty command line")?;
        let mut cmd = self.ns(Role::Cli)?.cmd(prog);
        cmd.args(args).env("NO_COLOR", "1");
        Proc::spawn(cmd, name, &self.dir().join(format!("{name}.log")))
    }

    /// `ip route`, `ip -6 route` and resolv.conf of the client namespace: what must be
    /// the same before a connection and after it ends.
    pub fn client_network_snapshot(&self) -> anyhow::Result<String> {
        let ns = self.ns(Role::Cli)?;
        let v4 = ns.ip(&["-4", "route", "show", "table", "all"])?;
        let v6 = ns.ip(&["-6", "route", "show", "table", "main"])?;
        let rules = ns.ip(&["rule", "show"])?;
        let resolv = std::fs::read_to_string(ns.resolv_conf_path()).unwrap_or_default();
        let links = ns.ip(&["-o", "link", "show"])?;
        let links: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(str::trim))
            .collect();
        Ok(format!(
            "## routes\n{v4}\n## routes6\n{v6}\n## rules\n{rules}\n## resolv.conf\n{resolv}\n## links\n{}\n",
            links.join(" ")
        ))
    }
}
