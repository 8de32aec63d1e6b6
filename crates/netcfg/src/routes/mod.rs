//! Routes, addresses and links of the OS, one public type over a private per-OS `imp`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::plan::TunAddress;
use crate::types::{IfaceId, NetworkState};
use crate::Error;

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
// The macOS command lines and parsers are pure: their tests run on every OS.
#[cfg(all(test, not(target_os = "macos")))]
#[path = "macos.rs"]
#[allow(dead_code)]
mod macos_commands;

/// The route protocol number our routes carry, so leftovers are identifiable (and removable)
/// even without a journal. Unassigned in iproute2's `rt_protos`.
pub const ROUTE_PROTO_OXIVPN: u8 = 87;

/// The main routing table.
pub const TABLE_MAIN: u32 = 254;

/// One route as the kernel has it (enough to delete or re-add exactly that route).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteRecord {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    pub table: u32,
    pub metric: Option<u32>,
    /// Route protocol (`proto` in `ip route`): who added it.
    pub protocol: u8,
    /// Route scope (0 universe, 253 link, 254 host).
    pub scope: u8,
    /// Route type (1 unicast, 2 local, ...).
    pub kind: u8,
    pub pref_src: Option<IpAddr>,
    /// The gateway is on-link even without a prefix covering it (`ip route ... onlink`).
    #[serde(default)]
    pub onlink: bool,
}

impl RouteRecord {
    pub const KIND_UNICAST: u8 = 1;
    pub const KIND_LOCAL: u8 = 2;
    pub const SCOPE_UNIVERSE: u8 = 0;
    pub const SCOPE_LINK: u8 = 253;

    pub fn is_ours(&self) -> bool {
        self.protocol == ROUTE_PROTO_OXIVPN
    }
}

impl std::fmt::Display for RouteRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(o) = self.oif {
            write!(f, " oif #{o}")?;
        }
        if self.table != TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        write!(f, " proto {}", self.protocol)?;
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IfaceAddress {
    pub iface: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// The peer of a point-to-point address.
    pub peer: Option<IpAddr>,
}

/// What `add_*` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The same thing was already there (not ours: leave it alone on undo).
    AlreadyPresent,
}

/// The shape every per-OS back end has.
trait Backend: Sized {
    fn open() -> Result<Self, Error>;
    fn routes(&mut self) -> Result<Vec<RouteRecord>, Error>;
    fn add_route(&mut self, r: &RouteRecord) -> Result<AddOutcome, Error>;
    fn delete_route(&mut self, r: &RouteRecord) -> Result<bool, Error>;
    fn lookup(&mut self, addr: IpAddr) -> Result<Option<RouteRecord>, Error>;
    fn links(&mut self) -> Result<Vec<IfaceId>, Error>;
    fn addresses(&mut self) -> Result<Vec<IfaceAddress>, Error>;
    fn add_address(&mut self, iface: u32, a: &TunAddress) -> Result<AddOutcome, Error>;
    fn delete_address(&mut self, iface: u32, a: &TunAddress) -> Result<bool, Error>;
    fn set_mtu(&mut self, iface: u32, mtu: u32) -> Result<(), Error>;
    fn set_up(&mut self, iface: u32) -> Result<(), Error>;
    fn delete_link(&mut self, iface: u32) -> Result<bool, Error>;
    fn is_tun(&mut self, iface: u32) -> Result<bool, Error>;
    /// The DHCP server and resolvers of the default route's interface, where the OS keeps
    /// them beside its routes (Windows); Linux finds them in lease files and resolv.conf.
    fn dhcp_and_resolvers(
        &mut self,
        _default_iface: Option<u32>,
    ) -> Result<(Option<std::net::Ipv4Addr>, Vec<IpAddr>), Error> {
        Ok((None, Vec::new()))
    }
}

/// The OS's routing table, addresses and links.
pub struct Routes {
    imp: imp::Backend,
}

impl Routes {
    /// Opens a handle in the calling thread's network namespace.
    pub fn open() -> Result<Self, Error> {
        Ok(Self {
            imp: Backend::open()?,
        })
    }

    /// Every route of every table, IPv4 and IPv6.
    pub fn dump(&mut self) -> Result<Vec<RouteRecord>, Error> {
        self.imp.routes()
    }

    pub fn add(&mut self, r: &RouteRecord) -> Result<AddOutcome, Error> {
        self.imp.add_route(r)
    }

    /// Deletes exactly `r` (matching its protocol); `false` when it was not there.
    pub fn delete(&mut self, r: &RouteRecord) -> Result<bool, Error> {
        self.imp.delete_route(r)
    }

    /// The route the kernel picks for `addr` (the table entry itself, not a cache clone).
    pub fn lookup(&mut self, addr: IpAddr) -> Result<Option<RouteRecord>, Error> {
        self.imp.lookup(addr)
    }

    pub fn links(&mut self) -> Result<Vec<IfaceId>, Error> {
        self.imp.links()
    }

    pub fn iface(&mut self, index: u32) -> Result<Option<IfaceId>, Error> {
        Ok(self.links()?.into_iter().find(|l| l.index == index))
    }

    pub fn addresses(&mut self) -> Result<Vec<IfaceAddress>, Error> {
        self.imp.addresses()
    }

    pub fn add_address(&mut self, iface: u32, a: &TunAddress) -> Result<AddOutcome, Error> {
        self.imp.add_address(iface, a)
    }

    pub fn delete_address(&mut self, iface: u32, a: &TunAddress) -> Result<bool, Error> {
        self.imp.delete_address(iface, a)
    }

    pub fn set_mtu(&mut self, iface: u32, mtu: u32) -> Result<(), Error> {
        self.imp.set_mtu(iface, mtu)
    }

    pub fn set_up(&mut self, iface: u32) -> Result<(), Error> {
        self.imp.set_up(iface)
    }

    /// Deletes a link; `false` when it is already gone.
    pub fn delete_link(&mut self, iface: u32) -> Result<bool, Error> {
        self.imp.delete_link(iface)
    }

    /// Whether the link with that index exists and is a TUN device.
    pub fn is_tun(&mut self, iface: u32) -> Result<bool, Error> {
        self.imp.is_tun(iface)
    }

    /// Default routes and on-link prefixes (no DHCP server, no resolvers: see
    /// [`crate::discover_state`]).
    pub fn network_state(&mut self) -> Result<NetworkState, Error> {
        let links = self.links()?;
        let name_of = |index: u32| links.iter().find(|l| l.index == index).cloned();
        let routes = self.dump()?;
        let default = |v6: bool| {
            routes
                .iter()
                .filter(|r| r.table == TABLE_MAIN && r.kind == RouteRecord::KIND_UNICAST)
                .filter(|r| r.dst.prefix_len() == 0 && matches!(r.dst, IpNet::V6(_)) == v6)
                .filter(|r| !r.is_ours())
                .min_by_key(|r| r.metric.unwrap_or(0))
                .and_then(|r| {
                    Some(crate::types::DefaultRoute {
                        gateway: r.gateway,
                        iface: name_of(r.oif?)?,
                        metric: r.metric,
                    })
                })
        };
        let mut on_link = Vec::new();
        for a in self.addresses()? {
            let Some(iface) = name_of(a.iface) else {
                continue;
            };
            if a.addr.is_loopback() || iface.name == "lo" {
                continue;
            }
            if let IpAddr::V6(v6) = a.addr {
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
            }
            let net = match a.peer {
                Some(p) if p != a.addr => IpNet::from(p),
                _ => match IpNet::new(a.addr, a.prefix_len) {
                    Ok(n) => n.trunc(),
                    Err(_) => continue,
                },
            };
            on_link.push(crate::types::OnLinkPrefix { net, iface });
        }
        let default_v4 = default(false);
        let (dhcp_server, resolvers) = self
            .imp
            .dhcp_and_resolvers(default_v4.as_ref().map(|d| d.iface.index))?;
        Ok(NetworkState {
            default_v4,
            default_v6: default(true),
            on_link,
            dhcp_server,
            resolvers,
        })
    }
}
