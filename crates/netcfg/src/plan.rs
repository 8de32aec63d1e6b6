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
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "plan_platform_tests.rs"]
mod platform_tests;
