//! Network namespaces named uniquely per process and lab, deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd::run;

/// Every namespace the lab creates starts with this, followed by the creating
/// process's pid, `x`, and a per-process counter; that lets a later run delete what a
/// killed run left behind.
pub(crate) const PREFIX: &str = "oxl";

const NETNS_DIR: &str = "/var/run/netns";
const ETC_NETNS_DIR: &str = "/etc/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A fresh name prefix for one lab, e.g. `oxl4242x3`.
pub(crate) fn lab_prefix() -> String {
    SWEEP.call_once(sweep_stale);
    format!(
        "{PREFIX}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// One network namespace; its processes are killed and it is deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    etc_dir: Option<PathBuf>,
}

impl Netns {
    /// Creates the namespace `name` with its loopback up.
    pub fn create(name: &str) -> anyhow::Result<Self> {
        run(Command::new("ip").args(["netns", "add", name]))
            .with_context(|| format!("creating network namespace {name}"))?;
        let ns = Self {
            name: name.to_owned(),
            etc_dir: None,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `ip -n NAME args...`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Sets a sysctl inside the namespace (forwarding and the like are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        run(self.cmd("sysctl").args(["-qw", &format!("{key}={value}")]))?;
        Ok(())
    }

    /// Gives processes in this namespace their own `/etc/resolv.conf` (through
    /// `/etc/netns/NAME/`, which `ip netns exec` bind-mounts over `/etc`).
    pub fn set_resolv_conf(&mut self, text: &str) -> anyhow::Result<PathBuf> {
        let dir = Path::new(ETC_NETNS_DIR).join(&self.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        self.etc_dir = Some(dir.clone());
        let file = dir.join("resolv.conf");
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }

    /// The `/etc/netns/NAME/resolv.conf` path processes in this namespace see as
    /// `/etc/resolv.conf` (it exists only after [`Netns::set_resolv_conf`]).
    pub fn resolv_conf_path(&self) -> PathBuf {
        Path::new(ETC_NETNS_DIR)
            .join(&self.name)
            .join("resolv.conf")
    }

    /// Pids of every process living in this namespace.
    pub fn pids(&self) -> Vec<i32> {
        ns_pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        destroy(&self.name);
    }
}

fn ns_pids(name: &str) -> Vec<i32> {
    run(Command::new("ip").args(["netns", "pids", name]))
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills whatever still lives in namespace `name`, deletes it and its `/etc/netns` dir.
fn destroy(name: &str) {
    for pid in ns_pids(name) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    // A killed process can hold the namespace for a moment; deletion only unlinks
    // the name, so it succeeds regardless.
    if let Err(e) = run(Command::new("ip").args(["netns", "del", name])) {
        eprintln!("lab: could not delete namespace {name}: {e:#}");
    }
    let etc = Path::new(ETC_NETNS_DIR).join(name);
    if etc.exists() {
        let _ = std::fs::remove_dir_all(&etc);
    }
}

/// Deletes namespaces (and /etc/netns dirs) left by lab processes that no longer run.
fn sweep_stale() {
    for dir in [NETNS_DIR, ETC_NETNS_DIR] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(owner) = owner_pid(&name) else {
                continue;
            };
            if Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            eprintln!("lab: removing stale namespace {name} (creator pid {owner} is gone)");
            if dir == NETNS_DIR {
                destroy(&name);
            } else {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The creating pid encoded in a lab namespace name, if `name` is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('x')?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_lab_names() {
        assert_eq!(owner_pid("oxl123x4cli"), Some(123));
        assert_eq!(owner_pid("oxl123cli"), None);
        assert_eq!(owner_pid("other123x4"), None);
        assert_eq!(owner_pid("oxlabcx1"), None);
    }

    #[test]
    fn prefixes_are_unique_and_carry_our_pid() {
        let a = lab_prefix();
        let b = lab_prefix();
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
    }
}
