//! Kill switch / leak protection: while a tunnel that carries all traffic is connecting,
//! up or reconnecting, nothing leaves through the physical interfaces except the tunnel's
//! own packets to its server, DHCP, IPv6 neighbour discovery and (optionally) the directly
//! attached LAN. Linux: nftables through `nft -j -f -`, in our own table `inet oxivpn`;
//! Windows: WFP filters in our own sublayer; macOS: a pf anchor (see `backend`).
//!
//! Lifecycle (differs from [`crate::NetSession`] on purpose):
//! - [`Firewall::apply`] journals "delete our table" (fsync) BEFORE the first change, then
//!   replaces the whole table in one nft transaction; call it again on every change
//!   (TUN created, reconnect to another server): no gap between old and new rules.
//! - [`Firewall::remove`] on a DELIBERATE disconnect only.
//! - Dropping a [`Firewall`] leaves the rules in place: a crashed helper must keep the
//!   machine blocked. At helper start [`Firewall::recover`] hands back the leftover so the
//!   helper decides: reconnect (apply again) or `remove()`.

#[cfg(target_os = "macos")]
mod macos;
pub mod macos_rules;
pub mod rules;
#[cfg(windows)]
mod windows;
pub mod windows_rules;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, JournalEntry, UndoAction};
use crate::Error;

/// Where the firewall's own journal lives (separate from the route/DNS session's journal:
/// the kill switch outlives a session across reconnects and crashes).
pub const DEFAULT_FIREWALL_JOURNAL_PATH: &str = "/var/lib/oxivpn/firewall.json";
/// Our nftables table (family `inet`).
pub const DEFAULT_TABLE: &str = "oxivpn";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A VPN server the tunnel's own packets may go to (the RESOLVED address actually used).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
    pub transport: Transport,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        write!(
            f,
            "{proto} {}",
            std::net::SocketAddr::new(self.addr, self.port)
        )
    }
}

/// What the kill switch lets through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallPolicy {
    /// Every server the tunnel may connect to (all resolved remotes, or just the current one).
    pub endpoints: Vec<Endpoint>,
    /// The TUN's name; `None` while connecting before it exists (then only the servers).
    pub tunnel_iface: Option<String>,
    /// Let traffic to the directly attached subnets through (never DNS).
    pub allow_lan: bool,
    /// Subnets of the physical interfaces' ADDRESSES ([`lan_prefixes`]), never from routes:
    /// a pushed route (DHCP option 121, TunnelVision CVE-2024-3661) makes nothing LAN.
    /// Only private / link-local ranges are honoured.
    pub lan_prefixes: Vec<IpNet>,
    /// The tunnel carries IPv6; when false IPv6 is blocked everywhere except neighbour discovery
    /// (and the servers' own addresses).
    pub tunnel_ipv6: bool,
    /// When the tunnel socket sets SO_MARK, also require this mark on packets to the servers,
    /// so no other program can reach the server around the tunnel.
    pub endpoint_mark: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallOptions {
    pub journal_path: PathBuf,
    pub table: String,
}

impl Default for FirewallOptions {
    fn default() -> Self {
        Self {
            journal_path: DEFAULT_FIREWALL_JOURNAL_PATH.into(),
            table: DEFAULT_TABLE.into(),
        }
    }
}

/// The kill switch of this machine.
#[derive(Debug)]
pub struct Firewall {
    journal: Journal,
    table: String,
    policy: Option<FirewallPolicy>,
}

impl Firewall {
    /// A handle with nothing applied; refuses when a previous run left a journal (use
    /// [`Firewall::recover`] first).
    pub fn new(opts: &FirewallOptions) -> Result<Self, Error> {
        Ok(Self {
            journal: Journal::create(&opts.journal_path)?,
            table: opts.table.clone(),
            policy: None,
        })
    }

    /// At helper start: the kill switch a crashed helper left (journal or table present), or
    /// `None`. The rules stay in force until the caller applies a new policy or removes them.
    pub fn recover(opts: &FirewallOptions) -> Result<Option<Self>, Error> {
        let journal = Journal::load(&opts.journal_path)?;
        let present = backend::is_present(&opts.table)?;
        let journal = match journal {
            Some(j) if !j.entries().is_empty() => j,
            _ if present => {
                // Our table without a journal (journal lost): still ours to decide about.
                let mut j = Journal::create(&opts.journal_path)?;
                j.push(entry(&opts.table))?;
                j
            }
            Some(mut j) => {
                j.remove()?;
                return Ok(None);
            }
            None => return Ok(None),
        };
        tracing::info!(table = %opts.table, present, "kill switch left by a previous run");
        Ok(Some(Self {
            journal,
            table: opts.table.clone(),
            policy: None,
        }))
    }

    /// Applies (or atomically replaces) the rules.
    pub fn apply(&mut self, policy: &FirewallPolicy) -> Result<(), Error> {
        if self.journal.entries().is_empty() {
            self.journal.push(entry(&self.table))?;
        }
        backend::apply(&self.table, policy)?;
        tracing::info!(
            table = %self.table,
            tunnel = ?policy.tunnel_iface,
            endpoints = policy.endpoints.len(),
            allow_lan = policy.allow_lan,
            "kill switch applied"
        );
        self.policy = Some(policy.clone());
        Ok(())
    }

    /// Removes the rules (deliberate disconnect) and the journal entry.
    pub fn remove(&mut self) -> Result<(), Error> {
        delete_table(&self.table)?;
        self.journal.remove()?;
        self.policy = None;
        tracing::info!(table = %self.table, "kill switch removed");
        Ok(())
    }

    /// The policy applied through this handle (`None` after `remove` or right after `recover`).
    pub fn policy(&self) -> Option<&FirewallPolicy> {
        self.policy.as_ref()
    }

    /// Whether our table is in the kernel now.
    pub fn is_active(&self) -> Result<bool, Error> {
        backend::is_present(&self.table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn entry(table: &str) -> JournalEntry {
    JournalEntry {
        action: UndoAction::DeleteFirewallTable {
            family: rules::FAMILY.into(),
            table: table.into(),
        },
        kind: None,
        why: "kill switch".into(),
        skipped: false,
    }
}

/// Deletes our table if present (also the journal's undo step).
pub fn delete_table(table: &str) -> Result<(), Error> {
    backend::remove(table)
}

/// The per-OS mechanism: nftables (Linux), WFP filters (Windows, [`windows_rules`]),
/// a pf anchor (macOS, [`macos_rules`]). Same policy, same journal, same life cycle.
mod backend {
    use super::FirewallPolicy;
    use crate::Error;

    #[cfg(windows)]
    pub(super) fn apply(_table: &str, policy: &FirewallPolicy) -> Result<(), Error> {
        // Only the helper itself may reach the servers around the tunnel.
        let exe = std::env::current_exe().ok();
        let exe = exe.as_ref().and_then(|p| p.to_str());
        super::windows::apply(&super::windows_rules::filters(policy, exe))
    }
    #[cfg(windows)]
    pub(super) fn remove(_table: &str) -> Result<(), Error> {
        super::windows::remove()
    }
    #[cfg(windows)]
    pub(super) fn is_present(_table: &str) -> Result<bool, Error> {
        super::windows::is_present()
    }

    #[cfg(target_os = "macos")]
    pub(super) fn apply(table: &str, policy: &FirewallPolicy) -> Result<(), Error> {
        super::macos::apply(table, &super::macos_rules::anchor_rules(policy))
    }
    #[cfg(target_os = "macos")]
    pub(super) fn remove(table: &str) -> Result<(), Error> {
        super::macos::remove(table)
    }
    #[cfg(target_os = "macos")]
    pub(super) fn is_present(table: &str) -> Result<bool, Error> {
        super::macos::is_present(table)
    }

    #[cfg(not(any(windows, target_os = "macos")))]
    pub(super) fn apply(table: &str, policy: &FirewallPolicy) -> Result<(), Error> {
        super::nft::run(&super::rules::ruleset(table, policy))
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    pub(super) fn remove(table: &str) -> Result<(), Error> {
        super::nft::run(&super::rules::removal(table))
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    pub(super) fn is_present(table: &str) -> Result<bool, Error> {
        super::nft::table_exists(table)
    }
}

/// The directly attached subnets (from interface ADDRESSES, not routes) of every interface
/// except loopback and the given ones (the TUN), kept to private / link-local ranges.
pub fn lan_prefixes(exclude_ifaces: &[u32]) -> Result<Vec<IpNet>, Error> {
    let mut routes = crate::Routes::open()?;
    let links = routes.links()?;
    let addrs = routes.addresses()?;
    let mut nets: Vec<IpNet> = addrs
        .iter()
        .filter(|a| !exclude_ifaces.contains(&a.iface))
        .filter(|a| {
            links
                .iter()
                .find(|l| l.index == a.iface)
                .is_some_and(|l| l.name != "lo")
        })
        .filter(|a| a.peer.is_none())
        .filter_map(|a| IpNet::new(a.addr, a.prefix_len).ok())
        .map(|n| n.trunc())
        .filter(rules::is_lan_prefix)
        .collect();
    nets.sort();
    nets.dedup();
    Ok(nets)
}

#[cfg(not(any(windows, target_os = "macos")))]
mod nft {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use crate::Error;

    fn fail(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Firewall { what, source }
    }

    fn nft(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        if !cfg!(target_os = "linux") {
            return Err(Error::Unsupported("the kill switch"));
        }
        let mut child = Command::new("nft")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(fail("run nft (is the nftables package installed?)"))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes)
                .map_err(fail("write the ruleset to nft"))?;
        }
        let out = child.wait_with_output().map_err(fail("wait for nft"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Firewall {
                what: format!("nft {} refused: {}", args.join(" "), stderr.trim()),
                source: std::io::Error::other(format!("exit {}", out.status)),
            });
        }
        Ok(out.stdout)
    }

    pub(super) fn run(batch: &serde_json::Value) -> Result<(), Error> {
        let bytes = serde_json::to_vec(batch).map_err(|e| Error::Firewall {
            what: "serialize the ruleset".into(),
            source: std::io::Error::other(e),
        })?;
        nft(&["-j", "-f", "-"], Some(&bytes)).map(|_| ())
    }

    pub(super) fn table_exists(table: &str) -> Result<bool, Error> {
        let out = nft(&["-j", "list", "tables"], None)?;
        let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| Error::Firewall {
            what: "decode `nft -j list tables`".into(),
            source: std::io::Error::other(e),
        })?;
        Ok(v["nftables"].as_array().is_some_and(|items| {
            items.iter().any(|i| {
                i["table"]["family"] == super::rules::FAMILY && i["table"]["name"] == table
            })
        }))
    }
}
