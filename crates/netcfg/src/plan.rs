//! The planner: tunnel wishes + the machine's state -> an ordered list of changes, each with
//! the reason it exists. Pure: no I/O, the same on every OS.
//!
//! Choices (OpenVPN 2.6 on Linux is the reference, with the deviations named):
//! - `redirect-gateway def1`: `0.0.0.0/1` + `128.0.0.0/1` through the tunnel; the original
//!   default route stays. Without `def1` the original default route is deleted and
//!   `0.0.0.0/0` through the tunnel is added (as OpenVPN does); undo restores the original.
//! - Unless `local` (or `autolocal` and the server is on-link), each server address gets a
//!   host route through the pre-tunnel gateway. A server on an on-link prefix needs none:
//!   the connected prefix is already more specific than the redirect routes.
//! - `redirect-gateway ipv6`: `::/3`, `2000::/4`, `3000::/4`, `fc00::/7` through the tunnel,
//!   exactly what OpenVPN adds; it leaves link-local (`fe80::/10`) and multicast alone.
//! - `bypass-dhcp` (Windows-only in OpenVPN; we do it everywhere): a host route to the
//!   lease's DHCP server through the pre-tunnel gateway when that server is not on-link.
//! - `bypass-dns`: host routes to the PRE-tunnel resolvers (not loopback, not on-link)
//!   through the pre-tunnel gateway, so the user's own resolvers stay reachable.
//! - `block-local`: the LAN gateway gets a host route on the LAN, the LAN prefix's two
//!   halves go into the tunnel (OpenVPN's approach).
//! - A pushed route into the tunnel that would capture a server address (it is at least as
//!   specific as whatever keeps the server outside) is refused, with the reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::types::{
    DefaultRoute, IfaceId, NetworkState, PushedRoute, RedirectGateway, RouteGateway, TunV4, TunV6,
    TunnelNetworkConfig,
};

/// Which device a route leaves through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dev {
    /// The tunnel interface (known only when the plan is applied).
    Tunnel,
    Iface(IfaceId),
    /// Let the OS find the device from the gateway.
    Auto,
}

/// A route the plan adds or deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRoute {
    pub dst: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Dev,
    pub metric: Option<u32>,
    /// `None`: the OS's main table.
    pub table: Option<u32>,
}

/// An address of the tunnel interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunAddress {
    V4(TunV4),
    V6(TunV6),
}

/// DNS for the tunnel interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsChange {
    pub servers: Vec<IpAddr>,
    pub search_domains: Vec<String>,
    /// Routing-only domains (resolved's `~domain`), including `.` when `default_route`.
    pub resolve_domains: Vec<String>,
    /// All names go to the tunnel's servers (all traffic is redirected).
    pub default_route: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    AddAddress(TunAddress),
    SetMtu(u32),
    AddRoute(PlannedRoute),
    /// Delete a pre-existing route (restored on undo).
    DeleteRoute(PlannedRoute),
    SetDns(DnsChange),
}

/// Why a change exists, for tools (the `why` text is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    TunnelAddress,
    TunnelMtu,
    ServerBypass,
    DhcpBypass,
    DnsBypass,
    BlockLocal,
    Redirect,
    ReplaceDefault,
    PushedRoute,
    Dns,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub change: Change,
    pub kind: Reason,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedRoute {
    pub route: PushedRoute,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<PlannedChange>,
    pub refused: Vec<RefusedRoute>,
    /// Things worth telling the user that change nothing.
    pub notes: Vec<String>,
}

impl Plan {
    /// The routes this plan adds, in order.
    pub fn added_routes(&self) -> impl Iterator<Item = (&PlannedRoute, &PlannedChange)> {
        self.changes.iter().filter_map(|c| match &c.change {
            Change::AddRoute(r) => Some((r, c)),
            _ => None,
        })
    }

    /// One line per change, refusal and note (newline-separated), for logs and the CLI.
    pub fn render(&self) -> String {
        self.render_lines().join("\n")
    }

    /// [`Plan::render`] as separate lines.
    pub fn render_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .changes
            .iter()
            .map(|c| format!("{}  # {}", c.change, c.why))
            .collect();
        out.extend(
            self.refused
                .iter()
                .map(|r| format!("refused route {}: {}", r.route.dst, r.reason)),
        );
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

impl std::fmt::Display for Dev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dev::Tunnel => f.write_str("<tunnel>"),
            Dev::Iface(i) => f.write_str(&i.name),
            Dev::Auto => f.write_str("<auto>"),
        }
    }
}

impl std::fmt::Display for PlannedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if self.dev != Dev::Auto {
            write!(f, " dev {}", self.dev)?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if let Some(t) = self.table {
            write!(f, " table {t}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::AddAddress(TunAddress::V4(TunV4::Subnet { addr, prefix_len })) => {
                write!(f, "add address {addr}/{prefix_len} dev <tunnel>")
            }
            Change::AddAddress(TunAddress::V4(TunV4::PointToPoint { local, peer })) => {
                write!(f, "add address {local} peer {peer} dev <tunnel>")
            }
            Change::AddAddress(TunAddress::V6(v6)) => {
                write!(f, "add address {}/{} dev <tunnel>", v6.addr, v6.prefix_len)
            }
            Change::SetMtu(m) => write!(f, "set mtu {m} dev <tunnel>"),
            Change::AddRoute(r) => write!(f, "add route {r}"),
            Change::DeleteRoute(r) => write!(f, "delete route {r}"),
            Change::SetDns(d) => {
                let servers: Vec<String> = d.servers.iter().map(|s| s.to_string()).collect();
                write!(f, "set dns [{}] dev <tunnel>", servers.join(", "))?;
                if !d.search_domains.is_empty() {
                    write!(f, " search [{}]", d.search_domains.join(", "))?;
                }
                if !d.resolve_domains.is_empty() {
                    write!(f, " domains [{}]", d.resolve_domains.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// Plans the network changes for a tunnel. Call with the state discovered BEFORE the
/// tunnel's own addresses exist.
pub fn plan(cfg: &TunnelNetworkConfig, state: &NetworkState) -> Plan {
    let mut p = Planner {
        cfg,
        state,
        out: Plan::default(),
    };
    p.addresses();
    let rg = cfg.redirect;
    // A family is redirected only if the tunnel carries it.
    let redirect_v4 = rg.is_some_and(|r| r.ipv4) && cfg.tun_v4.is_some();
    let redirect_v6 = rg.is_some_and(|r| r.ipv6) && cfg.tun_v6.is_some();
    if rg.is_some_and(|r| r.ipv4) && !redirect_v4 {
        p.out.notes.push(
            "redirect-gateway: the tunnel has no IPv4 address; IPv4 is not redirected".into(),
        );
    }
    if rg.is_some_and(|r| r.ipv6) && !redirect_v6 {
        p.out.notes.push(
            "redirect-gateway ipv6: the tunnel has no IPv6 address; IPv6 is not redirected".into(),
        );
    }
    if let Some(rg) = rg {
        p.server_bypass(&rg, redirect_v4, redirect_v6);
        if redirect_v4 && rg.bypass_dhcp {
            p.bypass_dhcp();
        }
        if rg.bypass_dns {
            p.bypass_dns(redirect_v4, redirect_v6);
        }
        if redirect_v4 && rg.block_local {
            p.block_local();
        }
        if redirect_v4 {
            p.redirect_v4(rg.def1);
        }
        if redirect_v6 {
            p.redirect_v6();
        }
    }
    for r in &cfg.routes {
        p.pushed_route(r);
    }
    p.dns(redirect_v4 || redirect_v6);
    p.out
}

struct Planner<'a> {
    cfg: &'a TunnelNetworkConfig,
    state: &'a NetworkState,
    out: Plan,
}

fn host_net(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}

impl Planner<'_> {
    fn push(&mut self, change: Change, kind: Reason, why: String) {
        self.out.changes.push(PlannedChange { change, kind, why });
    }

    fn add_route(&mut self, route: PlannedRoute, kind: Reason, why: String) {
        self.push(Change::AddRoute(route), kind, why);
    }

    fn addresses(&mut self) {
        match self.cfg.tun_v4 {
            Some(TunV4::Subnet { addr, prefix_len }) if prefix_len > 32 => self.out.notes.push(
                format!("tunnel address {addr}/{prefix_len} is invalid; skipped"),
            ),
            Some(v4) => {
                let why = match v4 {
                    TunV4::Subnet { .. } => "tunnel IPv4 address (topology subnet)",
                    TunV4::PointToPoint { .. } => "tunnel IPv4 address (net30 / p2p)",
                };
                self.push(
                    Change::AddAddress(TunAddress::V4(v4)),
                    Reason::TunnelAddress,
                    why.into(),
                );
            }
            None => {}
        }
        match self.cfg.tun_v6 {
            Some(v6) if v6.prefix_len > 128 => self.out.notes.push(format!(
                "tunnel address {}/{} is invalid; skipped",
                v6.addr, v6.prefix_len
            )),
            Some(v6) => self.push(
                Change::AddAddress(TunAddress::V6(v6)),
                Reason::TunnelAddress,
                "tunnel IPv6 address".into(),
            ),
            None => {}
        }
        if let Some(mtu) = self.cfg.mtu {
            self.push(Change::SetMtu(mtu), Reason::TunnelMtu, "tun-mtu".into());
        }
    }

    fn vpn_gateway_v4(&self) -> Option<Ipv4Addr> {
        self.cfg.route_gateway_v4.or(match self.cfg.tun_v4 {
            Some(TunV4::PointToPoint { peer, .. }) => Some(peer),
            _ => None,
        })
    }

    fn vpn_gateway(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            self.cfg.route_gateway_v6.map(IpAddr::V6)
        } else {
            self.vpn_gateway_v4().map(IpAddr::V4)
        }
    }

    /// Whether `addr` lies in the tunnel's own subnet (so a gateway there is on the tunnel).
    fn in_tunnel_subnet(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => match self.cfg.tun_v4 {
                Some(TunV4::Subnet { addr, prefix_len }) => {
                    Ipv4Net::new(addr, prefix_len).is_ok_and(|n| n.contains(&a))
                }
                Some(TunV4::PointToPoint { local, peer }) => a == local || a == peer,
                None => false,
            },
            IpAddr::V6(a) => self
                .cfg
                .tun_v6
                .is_some_and(|t| Ipv6Net::new(t.addr, t.prefix_len).is_ok_and(|n| n.contains(&a))),
        }
    }

    fn via_default(&self, dst: IpNet, d: &DefaultRoute, metric: Option<u32>) -> PlannedRoute {
        PlannedRoute {
            dst,
            via: d.gateway,
            dev: Dev::Iface(d.iface.clone()),
            metric,
            table: None,
        }
    }

    fn through_tunnel(&self, dst: IpNet, metric: Option<u32>) -> PlannedRoute {
        PlannedRoute {
            dst,
            via: self.vpn_gateway(matches!(dst, IpNet::V6(_))),
            dev: Dev::Tunnel,
            metric,
            table: None,
        }
    }

    fn gateway_text(d: &DefaultRoute) -> String {
        match d.gateway {
            Some(g) => format!("via the LAN gateway {g} on {}", d.iface.name),
            None => format!("on {}", d.iface.name),
        }
    }

    fn server_bypass(&mut self, rg: &RedirectGateway, v4: bool, v6: bool) {
        let mut seen: Vec<IpAddr> = Vec::new();
        for &server in &self.cfg.remotes {
            if seen.contains(&server) {
                continue;
            }
            seen.push(server);
            let redirected = if server.is_ipv4() { v4 } else { v6 };
            if !redirected {
                continue;
            }
            let on_link = self.state.on_link_prefix(server).cloned();
            let local = rg.local || (rg.autolocal && on_link.is_some());
            match (local, on_link) {
                (true, None) => self.out.notes.push(format!(
                    "local: server {server} is not on-link, the redirect will capture it"
                )),
                (true, Some(_)) | (false, Some(_)) if !rg.block_local => {
                    self.out.notes.push(format!(
                        "server {server} is on-link; its LAN prefix keeps it outside the tunnel"
                    ))
                }
                (_, Some(p)) => {
                    let route = PlannedRoute {
                        dst: host_net(server),
                        via: None,
                        dev: Dev::Iface(p.iface.clone()),
                        metric: None,
                        table: None,
                    };
                    self.add_route(
                        route,
                        Reason::ServerBypass,
                        format!(
                            "server address {server} stays on the LAN ({}) despite block-local",
                            p.iface.name
                        ),
                    );
                }
                (false, None) => match self.state.default_for(server) {
                    Some(d) => {
                        let route = self.via_default(host_net(server), d, None);
                        let why = format!(
                            "server address {server} stays outside the tunnel ({})",
                            Self::gateway_text(d)
                        );
                        self.add_route(route, Reason::ServerBypass, why);
                    }
                    None => self.out.notes.push(format!(
                        "no pre-tunnel default route for {server}; cannot keep it outside the tunnel"
                    )),
                },
            }
        }
    }

    fn bypass_dhcp(&mut self) {
        let Some(dhcp) = self.state.dhcp_server else {
            self.out
                .notes
                .push("bypass-dhcp: no DHCP lease found; nothing to bypass".into());
            return;
        };
        let addr = IpAddr::V4(dhcp);
        if let Some(p) = self.state.on_link_prefix(addr) {
            self.out.notes.push(format!(
                "bypass-dhcp: DHCP server {dhcp} is on-link ({}); no route needed",
                p.net
            ));
            return;
        }
        if self.cfg.remotes.contains(&addr) {
            return;
        }
        match self.state.default_v4.clone() {
            Some(d) => {
                let why = format!(
                    "bypass-dhcp: lease renewals go to {dhcp} {}",
                    Self::gateway_text(&d)
                );
                let route = self.via_default(host_net(addr), &d, None);
                self.add_route(route, Reason::DhcpBypass, why);
            }
            None => self
                .out
                .notes
                .push("bypass-dhcp: no pre-tunnel IPv4 default route".into()),
        }
    }

    fn bypass_dns(&mut self, v4: bool, v6: bool) {
        let mut seen: Vec<IpAddr> = Vec::new();
        for &r in &self.state.resolvers {
            let redirected = if r.is_ipv4() { v4 } else { v6 };
            if !redirected || r.is_loopback() || r.is_unspecified() || seen.contains(&r) {
                continue;
            }
            seen.push(r);
            if self.cfg.remotes.contains(&r) || self.state.dhcp_server.map(IpAddr::V4) == Some(r) {
                continue;
            }
            if self.state.on_link_prefix(r).is_some() {
                self.out.notes.push(format!(
                    "bypass-dns: resolver {r} is on-link; no route needed"
                ));
                continue;
            }
            match self.state.default_for(r).cloned() {
                Some(d) => {
                    let why = format!(
                        "bypass-dns: pre-tunnel resolver {r} stays reachable {}",
                        Self::gateway_text(&d)
                    );
                    let route = self.via_default(host_net(r), &d, None);
                    self.add_route(route, Reason::DnsBypass, why);
                }
                None => self
                    .out
                    .notes
                    .push(format!("bypass-dns: no pre-tunnel default route for {r}")),
            }
        }
    }

    fn block_local(&mut self) {
        let Some(d) = self.state.default_v4.clone() else {
            return;
        };
        let lans: Vec<Ipv4Net> = self
            .state
            .on_link
            .iter()
            .filter(|p| p.iface == d.iface)
            .filter_map(|p| match p.net {
                IpNet::V4(n) if n.prefix_len() < 31 => Some(n.trunc()),
                _ => None,
            })
            .collect();
        for lan in lans {
            if let Some(IpAddr::V4(gw)) = d.gateway {
                if lan.contains(&gw) {
                    let route = PlannedRoute {
                        dst: host_net(IpAddr::V4(gw)),
                        via: None,
                        dev: Dev::Iface(d.iface.clone()),
                        metric: None,
                        table: None,
                    };
                    self.add_route(
                        route,
                        Reason::BlockLocal,
                        format!("block-local: the LAN gateway {gw} stays reachable"),
                    );
                }
            }
            let Ok(halves) = lan.subnets(lan.prefix_len() + 1) else {
                continue;
            };
            for half in halves {
                let route = self.through_tunnel(IpNet::V4(half), None);
                self.add_route(
                    route,
                    Reason::BlockLocal,
                    format!("block-local: half of the LAN {lan} goes into the tunnel"),
                );
            }
        }
    }

    fn redirect_v4(&mut self, def1: bool) {
        let net = |a: [u8; 4], len: u8| {
            Ipv4Net::new(Ipv4Addr::from(a), len)
                .map(IpNet::V4)
                .unwrap_or_default()
        };
        let metric = self.cfg.default_metric;
        if def1 {
            let low = self.through_tunnel(net([0, 0, 0, 0], 1), metric);
            self.add_route(
                low,
                Reason::Redirect,
                "def1: lower half of IPv4 space into the tunnel (the original default route stays)"
                    .into(),
            );
            let high = self.through_tunnel(net([128, 0, 0, 0], 1), metric);
            self.add_route(
                high,
                Reason::Redirect,
                "def1: upper half of IPv4 space into the tunnel".into(),
            );
            return;
        }
        if let Some(d) = self.state.default_v4.clone() {
            let old = self.via_default(net([0, 0, 0, 0], 0), &d, d.metric);
            self.push(
                Change::DeleteRoute(old),
                Reason::ReplaceDefault,
                "redirect-gateway without def1 replaces the default route (restored on undo)"
                    .into(),
            );
        }
        let all = self.through_tunnel(net([0, 0, 0, 0], 0), metric);
        self.add_route(
            all,
            Reason::Redirect,
            "redirect-gateway: the default route goes into the tunnel".into(),
        );
    }

    fn redirect_v6(&mut self) {
        let metric = self.cfg.default_metric;
        let blocks: [(u16, u8); 4] = [(0, 3), (0x2000, 4), (0x3000, 4), (0xfc00, 7)];
        for (first, len) in blocks {
            let addr = Ipv6Addr::new(first, 0, 0, 0, 0, 0, 0, 0);
            let Ok(net) = Ipv6Net::new(addr, len) else {
                continue;
            };
            let route = self.through_tunnel(IpNet::V6(net), metric);
            self.add_route(
                route,
                Reason::Redirect,
                format!(
                    "redirect-gateway ipv6: {net} into the tunnel (OpenVPN's split of unicast space)"
                ),
            );
        }
    }

    /// The prefix length of whatever keeps `server` outside the tunnel after this plan
    /// (0 when nothing does).
    fn server_protection(&self, server: IpAddr) -> u8 {
        let host = self.out.changes.iter().any(|c| {
            matches!(&c.change, Change::AddRoute(r)
                if c.kind == Reason::ServerBypass && r.dst == host_net(server))
        });
        if host {
            return host_net(server).prefix_len();
        }
        self.state
            .on_link_prefix(server)
            .map_or(0, |p| p.net.prefix_len())
    }

    fn refuse(&mut self, r: &PushedRoute, reason: String) {
        self.out.refused.push(RefusedRoute {
            route: r.clone(),
            reason,
        });
    }

    fn pushed_route(&mut self, r: &PushedRoute) {
        let dst = r.dst.trunc();
        let v6 = matches!(dst, IpNet::V6(_));
        let metric = r.metric.or(self.cfg.default_metric);
        let family_on_tunnel = if v6 {
            self.cfg.tun_v6.is_some()
        } else {
            self.cfg.tun_v4.is_some()
        };
        let route = match r.gateway {
            RouteGateway::VpnGateway => {
                if !family_on_tunnel {
                    let fam = if v6 { "IPv6" } else { "IPv4" };
                    return self.refuse(r, format!("the tunnel has no {fam} address"));
                }
                self.through_tunnel(dst, metric)
            }
            RouteGateway::NetGateway => {
                let d = if v6 {
                    self.state.default_v6.clone()
                } else {
                    self.state.default_v4.clone()
                };
                match d {
                    Some(d) => self.via_default(dst, &d, metric),
                    None => {
                        return self.refuse(r, "net_gateway: no pre-tunnel default route".into())
                    }
                }
            }
            RouteGateway::Explicit(gw) => {
                if gw.is_ipv6() != v6 {
                    return self.refuse(r, format!("gateway {gw} is of the other address family"));
                }
                let dev = if self.in_tunnel_subnet(gw) {
                    Dev::Tunnel
                } else {
                    Dev::Auto
                };
                PlannedRoute {
                    dst,
                    via: Some(gw),
                    dev,
                    metric,
                    table: None,
                }
            }
        };
        if route.dev == Dev::Tunnel {
            for &server in &self.cfg.remotes {
                if dst.contains(&server) && dst.prefix_len() >= self.server_protection(server) {
                    return self.refuse(
                        r,
                        format!("it would send the server address {server} into the tunnel itself"),
                    );
                }
            }
        }
        let why = match r.gateway {
            RouteGateway::NetGateway => {
                format!("pushed route {dst} via net_gateway (around the tunnel)")
            }
            _ => format!("pushed route {dst}"),
        };
        self.add_route(route, Reason::PushedRoute, why);
    }

    fn dns(&mut self, redirected: bool) {
        let d = &self.cfg.dns;
        if d.servers.is_empty() {
            return;
        }
        let mut resolve_domains = d.resolve_domains.clone();
        if redirected && !resolve_domains.iter().any(|x| x == ".") {
            resolve_domains.push(".".into());
        }
        let why = if redirected {
            "pushed DNS servers answer every name (all traffic is redirected)"
        } else {
            "pushed DNS servers for the tunnel's domains"
        };
        let change = DnsChange {
            servers: d.servers.clone(),
            search_domains: d.search_domains.clone(),
            resolve_domains,
            default_route: redirected,
        };
        self.push(Change::SetDns(change), Reason::Dns, why.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{DefaultRoute, DnsConfig, OnLinkPrefix, TunV6};

    fn eth0() -> IfaceId {
        IfaceId {
            index: 2,
            name: "eth0".into(),
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// 192.168.1.2/24 on eth0, default via 192.168.1.1.
    fn lan_state(dhcp: Option<&str>) -> NetworkState {
        NetworkState {
            default_v4: Some(DefaultRoute {
                gateway: Some(ip("192.168.1.1")),
                iface: eth0(),
                metric: None,
            }),
            default_v6: None,
            on_link: vec![OnLinkPrefix {
                net: net("192.168.1.0/24"),
                iface: eth0(),
            }],
            dhcp_server: dhcp.map(|d| d.parse().unwrap()),
            resolvers: vec![ip("192.168.1.1")],
        }
    }

    fn reference_cfg() -> TunnelNetworkConfig {
        TunnelNetworkConfig {
            tun_v4: Some(TunV4::Subnet {
                addr: "10.8.0.2".parse().unwrap(),
                prefix_len: 24,
            }),
            mtu: Some(1500),
            route_gateway_v4: Some("10.8.0.1".parse().unwrap()),
            redirect: Some(RedirectGateway {
                def1: true,
                bypass_dhcp: true,
                ..Default::default()
            }),
            remotes: vec![ip("198.18.0.1")],
            dns: DnsConfig {
                servers: vec![ip("10.0.0.3")],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// (dst, via, dev) of every added route, in order.
    fn routes(p: &Plan) -> Vec<(String, Option<String>, String)> {
        p.added_routes()
            .map(|(r, _)| {
                (
                    r.dst.to_string(),
                    r.via.map(|v| v.to_string()),
                    r.dev.to_string(),
                )
            })
            .collect()
    }

    fn r(dst: &str, via: Option<&str>, dev: &str) -> (String, Option<String>, String) {
        (dst.into(), via.map(String::from), dev.into())
    }

    #[test]
    fn reference_scenario_def1_bypass_dhcp_one_hop_away() {
        let p = plan(&reference_cfg(), &lan_state(Some("192.168.2.2")));
        assert_eq!(
            routes(&p),
            vec![
                r("198.18.0.1/32", Some("192.168.1.1"), "eth0"),
                r("192.168.2.2/32", Some("192.168.1.1"), "eth0"),
                r("0.0.0.0/1", Some("10.8.0.1"), "<tunnel>"),
                r("128.0.0.0/1", Some("10.8.0.1"), "<tunnel>"),
            ]
        );
        // Addresses and MTU come first, DNS last; nothing deleted with def1.
        assert_eq!(
            p.changes[0].change,
            Change::AddAddress(TunAddress::V4(TunV4::Subnet {
                addr: "10.8.0.2".parse().unwrap(),
                prefix_len: 24
            }))
        );
        assert_eq!(p.changes[1].change, Change::SetMtu(1500));
        assert!(!p
            .changes
            .iter()
            .any(|c| matches!(c.change, Change::DeleteRoute(_))));
        let last = p.changes.last().unwrap();
        match &last.change {
            Change::SetDns(d) => {
                assert_eq!(d.servers, vec![ip("10.0.0.3")]);
                assert!(d.default_route);
                assert_eq!(d.resolve_domains, vec![".".to_string()]);
            }
            other => panic!("last change {other:?}"),
        }
        let dhcp = p
            .changes
            .iter()
            .find(|c| c.kind == Reason::DhcpBypass)
            .unwrap();
        assert!(
            dhcp.why.contains("lease renewals go to 192.168.2.2"),
            "{}",
            dhcp.why
        );
        assert!(dhcp.why.contains("192.168.1.1"));
        let srv = p
            .changes
            .iter()
            .find(|c| c.kind == Reason::ServerBypass)
            .unwrap();
        assert!(srv.why.contains("stays outside the tunnel"));
        assert!(p.refused.is_empty());
    }

    #[test]
    fn dhcp_server_on_link_gets_no_bypass_route() {
        let p = plan(&reference_cfg(), &lan_state(Some("192.168.1.1")));
        assert!(!p.changes.iter().any(|c| c.kind == Reason::DhcpBypass));
        assert!(
            p.notes.iter().any(|n| n.contains("on-link")),
            "{:?}",
            p.notes
        );
        assert_eq!(routes(&p).len(), 3);
    }

    #[test]
    fn unknown_dhcp_server_is_noted() {
        let p = plan(&reference_cfg(), &lan_state(None));
        assert!(!p.changes.iter().any(|c| c.kind == Reason::DhcpBypass));
        assert!(p.notes.iter().any(|n| n.contains("no DHCP lease")));
    }

    #[test]
    fn split_tunnel_adds_only_pushed_routes_and_no_server_route() {
        let mut cfg = reference_cfg();
        cfg.redirect = None;
        cfg.routes = vec![PushedRoute {
            dst: net("10.0.0.0/24"),
            gateway: RouteGateway::VpnGateway,
            metric: None,
        }];
        let p = plan(&cfg, &lan_state(Some("192.168.2.2")));
        assert_eq!(
            routes(&p),
            vec![r("10.0.0.0/24", Some("10.8.0.1"), "<tunnel>")]
        );
        match &p.changes.last().unwrap().change {
            Change::SetDns(d) => {
                assert!(!d.default_route);
                assert!(d.resolve_domains.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_flag_skips_the_server_route() {
        let mut cfg = reference_cfg();
        cfg.redirect = Some(RedirectGateway {
            def1: true,
            local: true,
            ..Default::default()
        });
        cfg.remotes = vec![ip("192.168.1.50")];
        let p = plan(&cfg, &lan_state(None));
        assert!(!p.changes.iter().any(|c| c.kind == Reason::ServerBypass));
        assert_eq!(routes(&p).len(), 2);
        // `local` with a server that is not on-link: nothing added, the user is told.
        cfg.remotes = vec![ip("198.18.0.1")];
        let p = plan(&cfg, &lan_state(None));
        assert!(!p.changes.iter().any(|c| c.kind == Reason::ServerBypass));
        assert!(p.notes.iter().any(|n| n.contains("will capture it")));
    }

    #[test]
    fn autolocal_decides_per_server() {
        let mut cfg = reference_cfg();
        cfg.redirect = Some(RedirectGateway {
            def1: true,
            autolocal: true,
            ..Default::default()
        });
        cfg.remotes = vec![ip("192.168.1.50"), ip("198.18.0.1")];
        let p = plan(&cfg, &lan_state(None));
        let bypass: Vec<String> = p
            .added_routes()
            .filter(|(_, c)| c.kind == Reason::ServerBypass)
            .map(|(r, _)| r.dst.to_string())
            .collect();
        assert_eq!(bypass, vec!["198.18.0.1/32".to_string()]);
    }

    #[test]
    fn without_def1_the_default_route_is_replaced() {
        let mut cfg = reference_cfg();
        cfg.redirect = Some(RedirectGateway::default());
        let p = plan(&cfg, &lan_state(None));
        let del: Vec<&PlannedRoute> = p
            .changes
            .iter()
            .filter_map(|c| match &c.change {
                Change::DeleteRoute(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(del.len(), 1);
        assert_eq!(del[0].dst, net("0.0.0.0/0"));
        assert_eq!(del[0].via, Some(ip("192.168.1.1")));
        assert_eq!(
            routes(&p),
            vec![
                r("198.18.0.1/32", Some("192.168.1.1"), "eth0"),
                r("0.0.0.0/0", Some("10.8.0.1"), "<tunnel>"),
            ]
        );
        // The server route comes before the default route is touched.
        let pos_srv = p
            .changes
            .iter()
            .position(|c| c.kind == Reason::ServerBypass);
        let pos_del = p
            .changes
            .iter()
            .position(|c| c.kind == Reason::ReplaceDefault);
        assert!(pos_srv < pos_del);
    }

    fn v6_state() -> NetworkState {
        let mut s = lan_state(None);
        s.default_v6 = Some(DefaultRoute {
            gateway: Some(ip("fd00:1::1")),
            iface: eth0(),
            metric: Some(1024),
        });
        s.on_link.push(OnLinkPrefix {
            net: net("fd00:1::/64"),
            iface: eth0(),
        });
        s
    }

    #[test]
    fn ipv6_redirect_uses_openvpns_blocks_and_keeps_v6_server_outside() {
        let mut cfg = reference_cfg();
        cfg.tun_v6 = Some(TunV6 {
            addr: "fd00:8::2".parse().unwrap(),
            prefix_len: 64,
        });
        cfg.route_gateway_v6 = Some("fd00:8::1".parse().unwrap());
        cfg.redirect = Some(RedirectGateway {
            def1: true,
            ipv6: true,
            ..Default::default()
        });
        cfg.remotes = vec![ip("198.18.0.1"), ip("fd00:18::1")];
        let p = plan(&cfg, &v6_state());
        let got = routes(&p);
        assert!(got.contains(&r("fd00:18::1/128", Some("fd00:1::1"), "eth0")));
        for dst in ["::/3", "2000::/4", "3000::/4", "fc00::/7"] {
            assert!(
                got.contains(&r(dst, Some("fd00:8::1"), "<tunnel>")),
                "{dst}: {got:?}"
            );
        }
        assert!(got.contains(&r("0.0.0.0/1", Some("10.8.0.1"), "<tunnel>")));
        assert!(p.changes.iter().any(|c| matches!(
            c.change,
            Change::AddAddress(TunAddress::V6(TunV6 { prefix_len: 64, .. }))
        )));
    }

    #[test]
    fn not_ipv4_redirects_only_ipv6() {
        let mut cfg = reference_cfg();
        cfg.tun_v6 = Some(TunV6 {
            addr: "fd00:8::2".parse().unwrap(),
            prefix_len: 64,
        });
        cfg.redirect = Some(RedirectGateway {
            def1: true,
            ipv6: true,
            ipv4: false,
            bypass_dhcp: true,
            ..Default::default()
        });
        cfg.remotes = vec![ip("198.18.0.1")];
        let p = plan(&cfg, &v6_state());
        let got = routes(&p);
        assert!(got.iter().all(|(dst, _, _)| dst.contains(':')), "{got:?}");
        assert_eq!(got.len(), 4);
        // No v6 gateway known: routes go by device.
        assert!(got.iter().all(|(_, via, _)| via.is_none()));
        assert!(!p.changes.iter().any(|c| c.kind == Reason::DhcpBypass));
    }

    #[test]
    fn net30_uses_the_peer_as_gateway() {
        let mut cfg = reference_cfg();
        cfg.tun_v4 = Some(TunV4::PointToPoint {
            local: "10.8.0.6".parse().unwrap(),
            peer: "10.8.0.5".parse().unwrap(),
        });
        cfg.route_gateway_v4 = None;
        cfg.redirect = None;
        cfg.routes = vec![PushedRoute {
            dst: net("10.8.0.1/32"),
            gateway: RouteGateway::VpnGateway,
            metric: None,
        }];
        let p = plan(&cfg, &lan_state(None));
        assert_eq!(
            routes(&p),
            vec![r("10.8.0.1/32", Some("10.8.0.5"), "<tunnel>")]
        );
        assert!(p.changes[0].why.contains("net30"));
        assert_eq!(
            p.changes[0].change.to_string(),
            "add address 10.8.0.6 peer 10.8.0.5 dev <tunnel>"
        );
    }

    #[test]
    fn a_pushed_route_over_the_server_is_refused() {
        // Split tunnel: nothing keeps the server outside, so any route covering it is refused.
        let mut cfg = reference_cfg();
        cfg.redirect = None;
        cfg.routes = vec![
            PushedRoute {
                dst: net("198.18.0.0/16"),
                gateway: RouteGateway::VpnGateway,
                metric: None,
            },
            PushedRoute {
                dst: net("10.0.0.0/24"),
                gateway: RouteGateway::VpnGateway,
                metric: None,
            },
            // Around the tunnel is fine.
            PushedRoute {
                dst: net("198.18.0.0/24"),
                gateway: RouteGateway::NetGateway,
                metric: None,
            },
        ];
        let p = plan(&cfg, &lan_state(None));
        assert_eq!(p.refused.len(), 1);
        assert_eq!(p.refused[0].route.dst, net("198.18.0.0/16"));
        assert!(p.refused[0].reason.contains("198.18.0.1"));
        assert_eq!(
            routes(&p),
            vec![
                r("10.0.0.0/24", Some("10.8.0.1"), "<tunnel>"),
                r("198.18.0.0/24", Some("192.168.1.1"), "eth0"),
            ]
        );
        // With redirect the server's host route protects it; only a host route to it is refused.
        let mut cfg = reference_cfg();
        cfg.routes = vec![
            PushedRoute {
                dst: net("198.18.0.0/16"),
                gateway: RouteGateway::VpnGateway,
                metric: None,
            },
            PushedRoute {
                dst: net("198.18.0.1/32"),
                gateway: RouteGateway::VpnGateway,
                metric: None,
            },
        ];
        let p = plan(&cfg, &lan_state(None));
        assert_eq!(p.refused.len(), 1);
        assert_eq!(p.refused[0].route.dst, net("198.18.0.1/32"));
    }

    #[test]
    fn metrics_come_from_the_route_or_route_metric() {
        let mut cfg = reference_cfg();
        cfg.default_metric = Some(50);
        cfg.routes = vec![
            PushedRoute {
                dst: net("10.0.0.0/24"),
                gateway: RouteGateway::VpnGateway,
                metric: Some(7),
            },
            PushedRoute {
                dst: net("10.1.0.0/24"),
                gateway: RouteGateway::Explicit(ip("10.8.0.9")),
                metric: None,
            },
            PushedRoute {
                dst: net("172.16.0.0/12"),
                gateway: RouteGateway::Explicit(ip("192.168.1.254")),
                metric: None,
            },
        ];
        let p = plan(&cfg, &lan_state(None));
        let m: Vec<(String, Option<u32>, String)> = p
            .added_routes()
            .map(|(r, _)| (r.dst.to_string(), r.metric, r.dev.to_string()))
            .collect();
        assert!(m.contains(&("0.0.0.0/1".into(), Some(50), "<tunnel>".into())));
        assert!(m.contains(&("10.0.0.0/24".into(), Some(7), "<tunnel>".into())));
        assert!(m.contains(&("10.1.0.0/24".into(), Some(50), "<tunnel>".into())));
        assert!(m.contains(&("172.16.0.0/12".into(), Some(50), "<auto>".into())));
        // The server bypass keeps no metric of its own.
        assert!(m.contains(&("198.18.0.1/32".into(), None, "eth0".into())));
    }

    #[test]
    fn bypass_dns_routes_pre_tunnel_resolvers_that_are_not_on_link() {
        let mut cfg = reference_cfg();
        cfg.redirect = Some(RedirectGateway {
            def1: true,
            bypass_dns: true,
            ..Default::default()
        });
        let mut s = lan_state(None);
        s.resolvers = vec![ip("127.0.0.53"), ip("192.168.1.1"), ip("9.9.9.9")];
        let p = plan(&cfg, &s);
        let dns: Vec<String> = p
            .added_routes()
            .filter(|(_, c)| c.kind == Reason::DnsBypass)
            .map(|(r, _)| format!("{} via {:?}", r.dst, r.via))
            .collect();
        assert_eq!(dns, vec!["9.9.9.9/32 via Some(192.168.1.1)".to_string()]);
    }

    #[test]
    fn block_local_sends_the_lan_halves_into_the_tunnel() {
        let mut cfg = reference_cfg();
        cfg.redirect = Some(RedirectGateway {
            def1: true,
            block_local: true,
            ..Default::default()
        });
        let p = plan(&cfg, &lan_state(None));
        let got = routes(&p);
        assert!(got.contains(&r("192.168.1.1/32", None, "eth0")));
        assert!(got.contains(&r("192.168.1.0/25", Some("10.8.0.1"), "<tunnel>")));
        assert!(got.contains(&r("192.168.1.128/25", Some("10.8.0.1"), "<tunnel>")));
    }

    #[test]
    fn net_gateway_without_default_route_is_refused() {
        let mut cfg = reference_cfg();
        cfg.redirect = None;
        cfg.routes = vec![PushedRoute {
            dst: net("203.0.113.0/24"),
            gateway: RouteGateway::NetGateway,
            metric: None,
        }];
        let p = plan(&cfg, &NetworkState::default());
        assert_eq!(p.refused.len(), 1);
        assert!(p.refused[0].reason.contains("net_gateway"));
    }

    #[test]
    fn render_names_every_change() {
        let p = plan(&reference_cfg(), &lan_state(Some("192.168.2.2")));
        let lines = p.render_lines();
        assert_eq!(p.render().lines().count(), lines.len());
        assert!(lines
            .iter()
            .any(|l| l.starts_with("add route 0.0.0.0/1 via 10.8.0.1 dev <tunnel>")));
        assert!(lines.iter().any(|l| l.contains("bypass-dhcp")));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Where the longest matching prefix sends `addr` (ties: the tunnel wins, the worst case).
        fn into_tunnel(p: &Plan, s: &NetworkState, addr: IpAddr) -> bool {
            let mut table: Vec<(IpNet, bool)> = s.on_link.iter().map(|o| (o.net, false)).collect();
            let default_deleted = p
                .changes
                .iter()
                .any(|c| matches!(&c.change, Change::DeleteRoute(r) if r.dst.prefix_len() == 0));
            if !default_deleted {
                table.push((net("0.0.0.0/0"), false));
            }
            for (r, _) in p.added_routes() {
                table.push((r.dst, r.dev == Dev::Tunnel));
            }
            let best = table
                .iter()
                .filter(|(n, _)| n.contains(&addr))
                .map(|(n, _)| n.prefix_len())
                .max();
            table
                .iter()
                .any(|(n, t)| *t && n.contains(&addr) && Some(n.prefix_len()) == best)
        }

        fn v4() -> impl Strategy<Value = Ipv4Addr> {
            prop_oneof![
                any::<u32>().prop_map(Ipv4Addr::from),
                (0u8..=255).prop_map(|x| Ipv4Addr::new(198, 18, 0, x)),
                (0u8..=255).prop_map(|x| Ipv4Addr::new(192, 168, 1, x)),
            ]
        }

        fn pushed() -> impl Strategy<Value = PushedRoute> {
            (v4(), 0u8..=32, 0u8..3).prop_map(|(a, len, g)| PushedRoute {
                dst: IpNet::V4(Ipv4Net::new(a, len).unwrap().trunc()),
                gateway: match g {
                    0 => RouteGateway::VpnGateway,
                    1 => RouteGateway::NetGateway,
                    _ => RouteGateway::Explicit(IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1))),
                },
                metric: None,
            })
        }

        proptest! {
            /// Whatever is pushed, the server never ends up routed into its own tunnel
            /// (unless the user said `local`), and every pushed route is either planned or
            /// refused.
            #[test]
            fn the_server_is_never_captured(
                servers in proptest::collection::vec(v4(), 1..3),
                routes in proptest::collection::vec(pushed(), 0..8),
                redirect in proptest::option::of((any::<bool>(), any::<bool>(), any::<bool>())),
            ) {
                let mut cfg = reference_cfg();
                cfg.remotes = servers.iter().map(|s| IpAddr::V4(*s)).collect();
                cfg.routes = routes.clone();
                cfg.redirect = redirect.map(|(def1, autolocal, block_local)| RedirectGateway {
                    def1,
                    autolocal,
                    block_local,
                    ..Default::default()
                });
                let s = lan_state(Some("192.168.2.2"));
                let p = plan(&cfg, &s);
                for srv in &cfg.remotes {
                    let lan_server = s.on_link_prefix(*srv).is_some();
                    let allowed = cfg.redirect.is_some_and(|r| r.autolocal) && lan_server;
                    prop_assert!(
                        allowed || !into_tunnel(&p, &s, *srv),
                        "server {srv} captured: {:#?}",
                        p.render_lines()
                    );
                }
                let planned = p.added_routes().filter(|(_, c)| c.kind == Reason::PushedRoute).count();
                prop_assert_eq!(planned + p.refused.len(), routes.len());
            }
        }
    }
}

#[cfg(test)]
#[path = "plan_platform_tests.rs"]
mod platform_tests;
