//! Kill switch / leak protection: while a tunnel that carries all traffic is connecting,
//! up or reconnecting, nothing leaves through the physical interfaces except the tunnel's
//! own packets to its server, DHCP, IPv6 neighbour discovery and (optionally) the directly
//! attached LAN. One policy, three rule builders named for what they build
//! ([`nft_rules`], [`wfp_rules`], [`pf_rules`]) and one private `imp` per OS: Linux writes
//! our own nftables table `inet oxivpn` over netlink in one transaction ([`nft_batch`], no
//! `nft` process); Windows adds WFP filters in our own sublayer; macOS loads a pf anchor
//! with `pfctl` and holds a pf enable reference (`pfctl -E`) that removal releases.
//!
//! Lifecycle (differs from [`crate::NetSession`] on purpose):
//! - [`Firewall::apply`] journals "delete our table" BEFORE the first change (no fsync on
//!   Linux: the table does not outlive a reboot, see `crate::journal`), then
//!   replaces the whole table in one nft transaction; call it again on every change
//!   (TUN created, reconnect to another server): no gap between old and new rules.
//! - [`Firewall::remove`] on a DELIBERATE disconnect only.
//! - Dropping a [`Firewall`] leaves the rules in place: a crashed helper must keep the
//!   machine blocked. At helper start [`Firewall::recover`] hands back the leftover so the
//!   helper decides: reconnect (apply again) or `remove()`.

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod imp;
#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
#[path = "stub.rs"]
mod imp;

pub mod nft_batch;
pub mod nft_rules;
pub mod pf_rules;
#[cfg(any(target_os = "macos", test))]
mod pfctl;
pub mod wfp_rules;

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
/// The lockdown's table (`inet oxivpn_lockdown`): block-all while no VPN is connected.
/// A table of its own, beside the kill switch's, so each is added and removed whole
/// without touching the other (a drop in either is final, see [`FirewallPolicy::block_all`]).
pub const LOCKDOWN_TABLE: &str = "oxivpn_lockdown";

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

impl FirewallPolicy {
    /// Lockdown ("block all traffic while disconnected"): no server, no tunnel, no IPv6
    /// beyond neighbour discovery; what stays allowed is loopback, DHCP (to keep the
    /// lease), IPv6 neighbour discovery and, with `allow_lan`, the directly attached
    /// private subnets (never DNS). Built from the same policy as the kill switch so every
    /// OS's rule builder ([`nft_rules`], [`pf_rules`], [`wfp_rules`]) gives the same
    /// answer without a second set of rules.
    pub fn block_all(allow_lan: bool, lan_prefixes: Vec<IpNet>) -> Self {
        Self {
            endpoints: Vec::new(),
            tunnel_iface: None,
            allow_lan,
            lan_prefixes,
            tunnel_ipv6: false,
            endpoint_mark: None,
        }
    }

    /// Whether this policy lets nothing out but the local link ([`Self::block_all`]).
    pub fn is_block_all(&self) -> bool {
        self.endpoints.is_empty() && self.tunnel_iface.is_none() && !self.tunnel_ipv6
    }
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

/// The shape every per-OS back end has. `open` takes the options so a back end can keep
/// state beside the journal (macOS: the pf enable token).
trait Backend: Sized {
    fn open(opts: &FirewallOptions) -> Result<Self, Error>;
    /// Installs `policy`, atomically replacing what an earlier `apply` installed.
    fn apply(&mut self, policy: &FirewallPolicy) -> Result<(), Error>;
    /// Removes everything `apply` installed; no error when nothing is there.
    fn remove(&mut self) -> Result<(), Error>;
    /// Whether our rules (or, on macOS, our pf reference) are in the system now.
    fn is_present(&self) -> Result<bool, Error>;
}

/// The kill switch of this machine.
pub struct Firewall {
    journal: Journal,
    table: String,
    policy: Option<FirewallPolicy>,
    imp: imp::Backend,
}

impl std::fmt::Debug for Firewall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firewall")
            .field("journal", &self.journal)
            .field("table", &self.table)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Firewall {
    /// A handle with nothing applied; refuses when a previous run left a journal (use
    /// [`Firewall::recover`] first).
    pub fn new(opts: &FirewallOptions) -> Result<Self, Error> {
        let imp = imp::Backend::open(opts)?;
        Ok(Self {
            journal: Journal::create(&opts.journal_path)?,
            table: opts.table.clone(),
            policy: None,
            imp,
        })
    }

    /// At helper start: the kill switch a crashed helper left (journal or table present), or
    /// `None`. The rules stay in force until the caller applies a new policy or removes them.
    pub fn recover(opts: &FirewallOptions) -> Result<Option<Self>, Error> {
        let journal = Journal::load(&opts.journal_path)?;
        let imp = imp::Backend::open(opts)?;
        let present = imp.is_present()?;
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
            imp,
        }))
    }

    /// Applies (or atomically replaces) the rules.
    pub fn apply(&mut self, policy: &FirewallPolicy) -> Result<(), Error> {
        if self.journal.entries().is_empty() {
            self.journal.push(entry(&self.table))?;
        }
        self.imp.apply(policy)?;
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
        self.imp.remove()?;
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
        self.imp.is_present()
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn entry(table: &str) -> JournalEntry {
    JournalEntry {
        action: UndoAction::DeleteFirewallTable {
            family: nft_rules::FAMILY.into(),
            table: table.into(),
        },
        kind: None,
        why: "kill switch".into(),
        skipped: false,
    }
}

/// Whether `table` (ours) is in the firewall now. Read-only: the leak check asks it.
pub fn table_present(table: &str) -> Result<bool, Error> {
    imp::Backend::open(&FirewallOptions {
        table: table.into(),
        ..FirewallOptions::default()
    })?
    .is_present()
}

/// Whether the machine forwards packets, where the kill switch's rules depend on it:
/// on Linux the forward chain's reply rule (and with it connection tracking) is written
/// only when it does (see [`nft_rules::nft_rules`]), so a change means the table must be
/// written again. `None` on the other systems, whose rules do not depend on it.
pub fn forwarding_state() -> Option<bool> {
    #[cfg(target_os = "linux")]
    return Some(imp::forwarding());
    #[cfg(not(target_os = "linux"))]
    None
}

/// Deletes our table if present (also the journal's undo step).
pub fn delete_table(table: &str) -> Result<(), Error> {
    imp::Backend::open(&FirewallOptions {
        table: table.into(),
        ..FirewallOptions::default()
    })?
    .remove()
}

/// Only subnets inside private / link-local ranges can count as LAN: an address whose
/// netmask a rogue DHCP server widened (e.g. 10.1.2.3/1) must not open half the Internet.
/// Shared by the three rule builders.
pub fn is_lan_prefix(net: &IpNet) -> bool {
    const V4: [&str; 4] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
    ];
    const V6: [&str; 2] = ["fc00::/7", "fe80::/10"];
    let net = net.trunc();
    V4.iter()
        .chain(V6.iter())
        .filter_map(|r| r.parse::<IpNet>().ok())
        .any(|range| range.contains(&net))
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
        .filter(is_lan_prefix)
        .collect();
    nets.sort();
    nets.dedup();
    Ok(nets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_all_lets_nothing_beyond_the_link_out_in_every_builder() {
        let lan: Vec<IpNet> = vec!["192.168.1.0/24".parse().unwrap()];
        let p = FirewallPolicy::block_all(false, lan.clone());
        assert!(p.is_block_all());
        // nftables: loopback, DHCP and neighbour discovery are the only accepts.
        let rules = nft_rules::nft_rules(&p, true);
        let accepts: Vec<&str> = rules
            .iter()
            .filter(|r| r.verdict == nft_rules::Verdict::Accept)
            .map(|r| r.comment.as_str())
            .collect();
        let nd = "IPv6 neighbour discovery / router solicitation";
        assert_eq!(accepts, ["loopback", "DHCP", nd, nd, nd]);
        for chain in nft_rules::Chain::ALL {
            let last = rules.iter().rfind(|r| r.chain == chain).unwrap();
            assert_eq!(last.verdict, nft_rules::Verdict::Drop);
            assert!(
                last.matches.is_empty() && last.counter,
                "{chain:?}: {last:?}"
            );
        }
        // DNS is dropped before anything LAN-ish could accept it.
        let dns = rules
            .iter()
            .position(|r| r.comment.starts_with("DNS (udp)"))
            .unwrap();
        assert_eq!(rules[dns].verdict, nft_rules::Verdict::Drop);
        // pf: the same answer as one anchor.
        let pf = pf_rules::pf_rules(&p);
        let lines: Vec<&str> = pf.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "pass out quick on lo0 all",
                "pass out quick inet proto udp from any port 68 to any port 67",
                "pass out quick inet6 proto icmp6 all icmp6-type { routersol, routeradv, neighbrsol, neighbradv }",
                "block drop out quick proto { udp, tcp } from any to any port 53",
                "block drop out quick all",
            ]
        );
        // WFP: the server of a session, DNS and the web are blocked; DHCP and loopback pass.
        let wfp = wfp_rules::wfp_rules(&p, None);
        let pkt = |dst: &str, proto, src_port, dst_port, loopback| wfp_rules::Packet {
            app: "x.exe",
            iface: "Ethernet",
            loopback,
            dst: dst.parse().unwrap(),
            proto,
            src_port,
            dst_port,
        };
        use wfp_rules::{decide, Action, PROTO_TCP, PROTO_UDP};
        let block = [
            pkt("198.18.0.1", PROTO_UDP, 40000, 1194, false),
            pkt("198.18.0.1", PROTO_TCP, 40000, 443, false),
            pkt("192.168.1.1", PROTO_UDP, 40000, 53, false),
            pkt("2001:db8::1", PROTO_TCP, 40000, 443, false),
        ];
        for b in &block {
            assert_eq!(decide(&wfp, b), Action::Block, "{b:?}");
        }
        assert_eq!(
            decide(&wfp, &pkt("255.255.255.255", PROTO_UDP, 68, 67, false)),
            Action::Permit
        );
        assert_eq!(
            decide(&wfp, &pkt("127.0.0.1", PROTO_TCP, 40000, 80, true)),
            Action::Permit
        );

        // allow-LAN adds the attached private subnet, still never DNS.
        let with_lan = FirewallPolicy::block_all(true, lan);
        let rules = nft_rules::nft_rules(&with_lan, true);
        let lan_pos = rules
            .iter()
            .position(|r| r.comment == "LAN 192.168.1.0/24")
            .unwrap();
        let dns_pos = rules
            .iter()
            .position(|r| r.comment.starts_with("DNS (udp)"))
            .unwrap();
        assert!(dns_pos < lan_pos);
        // The kill switch's policy is not block-all.
        let ks = FirewallPolicy {
            tunnel_iface: Some("oxi0".into()),
            ..FirewallPolicy::block_all(false, Vec::new())
        };
        assert!(!ks.is_block_all());
    }

    #[test]
    fn lan_prefixes_only_private_or_link_local() {
        assert!(is_lan_prefix(&"192.168.1.0/24".parse().unwrap()));
        assert!(is_lan_prefix(&"169.254.0.0/16".parse().unwrap()));
        assert!(is_lan_prefix(&"fe80::/64".parse().unwrap()));
        assert!(is_lan_prefix(&"fd00:1::/64".parse().unwrap()));
        assert!(!is_lan_prefix(&"10.1.2.3/1".parse().unwrap()));
        assert!(!is_lan_prefix(&"0.0.0.0/0".parse().unwrap()));
        assert!(!is_lan_prefix(&"203.0.113.0/24".parse().unwrap()));
        assert!(!is_lan_prefix(&"2001:db8::/32".parse().unwrap()));
    }
}
