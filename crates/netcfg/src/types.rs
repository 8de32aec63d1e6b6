//! Inputs of the planner: what the tunnel wants and what the machine looks like now.
//! Every OS shares these; interface identity stays abstract (index + name).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An interface as every OS can name it: the kernel's index plus its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IfaceId {
    pub index: u32,
    pub name: String,
}

impl std::fmt::Display for IfaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (#{})", self.name, self.index)
    }
}

/// IPv4 addressing of the tunnel interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunV4 {
    /// `topology subnet`: `ifconfig 10.8.0.2 255.255.255.0`.
    Subnet { addr: Ipv4Addr, prefix_len: u8 },
    /// `topology net30` or `p2p`: `ifconfig 10.8.0.6 10.8.0.5`.
    PointToPoint { local: Ipv4Addr, peer: Ipv4Addr },
}

/// IPv6 addressing of the tunnel interface (`ifconfig-ipv6 fd00:8::2/64 ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunV6 {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
}

/// Which gateway a pushed route goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RouteGateway {
    /// `vpn_gateway` (also what OpenVPN uses when the route names none).
    #[default]
    VpnGateway,
    /// `net_gateway`: the pre-tunnel default gateway.
    NetGateway,
    /// An explicit address.
    Explicit(IpAddr),
}

/// One `route` / `route-ipv6` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRoute {
    pub dst: IpNet,
    pub gateway: RouteGateway,
    pub metric: Option<u32>,
}

/// The flags of `redirect-gateway` / `redirect-private`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectGateway {
    pub def1: bool,
    pub local: bool,
    pub autolocal: bool,
    pub block_local: bool,
    pub bypass_dhcp: bool,
    pub bypass_dns: bool,
    /// Redirect IPv4 (false after `!ipv4`).
    pub ipv4: bool,
    /// Redirect IPv6 too (`ipv6`).
    pub ipv6: bool,
}

impl Default for RedirectGateway {
    fn default() -> Self {
        Self {
            def1: false,
            local: false,
            autolocal: false,
            block_local: false,
            bypass_dhcp: false,
            bypass_dns: false,
            ipv4: true,
            ipv6: false,
        }
    }
}

/// DNS settings from `dhcp-option DNS/DOMAIN/DOMAIN-SEARCH` and the 2.6 `dns` option, already typed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsConfig {
    pub servers: Vec<IpAddr>,
    /// Search domains (`DOMAIN`, `DOMAIN-SEARCH`, `dns search-domains`).
    pub search_domains: Vec<String>,
    /// Split-DNS domains (`dns server N resolve-domains`): only these names go to the tunnel's servers
    /// unless all traffic is redirected.
    pub resolve_domains: Vec<String>,
}

/// Everything the tunnel asks of the network configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TunnelNetworkConfig {
    pub tun_v4: Option<TunV4>,
    pub tun_v6: Option<TunV6>,
    pub mtu: Option<u32>,
    /// `route-gateway` (for `topology subnet`); for point-to-point the peer is the gateway.
    pub route_gateway_v4: Option<Ipv4Addr>,
    /// `ifconfig-ipv6`'s remote / `route-ipv6-gateway`; without it IPv6 routes go by device only.
    pub route_gateway_v6: Option<Ipv6Addr>,
    pub routes: Vec<PushedRoute>,
    /// `route-metric`: the metric of routes that name none.
    pub default_metric: Option<u32>,
    pub redirect: Option<RedirectGateway>,
    /// The server addresses this connection uses (resolved).
    pub remotes: Vec<IpAddr>,
    pub dns: DnsConfig,
}

/// The pre-tunnel default route of one address family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRoute {
    pub gateway: Option<IpAddr>,
    pub iface: IfaceId,
    pub metric: Option<u32>,
}

/// A prefix reachable without a gateway, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnLinkPrefix {
    pub net: IpNet,
    pub iface: IfaceId,
}

/// What the machine's network looks like before the tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkState {
    pub default_v4: Option<DefaultRoute>,
    pub default_v6: Option<DefaultRoute>,
    pub on_link: Vec<OnLinkPrefix>,
    /// The DHCP server of the default route's interface, from the lease (if known).
    pub dhcp_server: Option<Ipv4Addr>,
    /// The resolvers in use before the tunnel.
    pub resolvers: Vec<IpAddr>,
}

impl NetworkState {
    /// The longest on-link prefix holding `addr`.
    pub fn on_link_prefix(&self, addr: IpAddr) -> Option<&OnLinkPrefix> {
        self.on_link
            .iter()
            .filter(|p| p.net.contains(&addr))
            .max_by_key(|p| p.net.prefix_len())
    }

    pub fn default_for(&self, addr: IpAddr) -> Option<&DefaultRoute> {
        match addr {
            IpAddr::V4(_) => self.default_v4.as_ref(),
            IpAddr::V6(_) => self.default_v6.as_ref(),
        }
    }
}
