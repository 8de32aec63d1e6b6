//! "Check for leaks": what the machine does now with internet traffic, DNS, the VPN
//! server and the DHCP server, whether the kill switch is in the firewall, and whether
//! the tunnel answers. [`observe`] reads the real state (netlink route lookups, the
//! resolvers, our nftables table) and sends one thing only: echo requests through the
//! tunnel to the VPN's own gateway. [`judge`] is pure: facts + what the session should
//! look like -> one verdict per check in plain words.

use std::net::IpAddr;
use std::time::Duration;

use super::leak_probe::{probe, PROBE_TRIES, PROBE_WAIT};
use ipc::{
    CheckKind, CheckOutcome, CheckVerdict, LeakCheck, LeakReport, ProfileName, RouteEntry,
    RouteKind, SessionId, ShortText,
};

/// What the checked session is supposed to do, from the helper's own records.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub session: Option<SessionId>,
    pub profile_name: Option<ProfileName>,
    pub connected: bool,
    /// The session's TUN.
    pub tunnel_iface: Option<String>,
    /// Every connected session's TUN (traffic into any of them is in a tunnel).
    pub all_tunnels: Vec<String>,
    pub server: Option<IpAddr>,
    /// The session runs with the kill switch.
    pub guarded: bool,
    /// The session's plan sends all IPv4 / IPv6 traffic into the tunnel.
    pub full_v4: bool,
    pub full_v6: bool,
    /// The DHCP server its plan routes around the tunnel (bypass-dhcp).
    pub dhcp_bypass: Option<IpAddr>,
    /// The tunnel's gateway (route-gateway / the peer), the probe's target.
    pub gateway: Option<IpAddr>,
    /// The session that holds the helper's kill switch.
    pub kill_switch_owner: Option<SessionId>,
}

impl Target {
    /// Fills what the applied route plan says (empty before the session connects).
    pub fn read_plan(&mut self, routes: &[RouteEntry]) {
        for r in routes {
            let dst = r.destination.as_str();
            match r.kind {
                RouteKind::IntoTunnel => {
                    if matches!(dst, "0.0.0.0/0" | "0.0.0.0/1" | "128.0.0.0/1") {
                        self.full_v4 = true;
                        if let Some(g @ IpAddr::V4(_)) = r.gateway {
                            self.gateway.get_or_insert(g);
                        }
                    }
                    if matches!(dst, "::/0" | "::/1" | "8000::/1" | "::/3" | "2000::/4") {
                        self.full_v6 = true;
                    }
                }
                RouteKind::DhcpServerBypass => {
                    if let Some(a) = dst.split('/').next().and_then(|a| a.parse().ok()) {
                        self.dhcp_bypass = Some(a);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Where the kernel would send a packet (one route lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub iface: Option<String>,
    pub gateway: Option<IpAddr>,
    /// The address is this machine (a local stub resolver).
    pub local: bool,
}

/// `Ok(None)`: no route; `Err`: the lookup failed (why).
pub type Lookup = Result<Option<Seen>, String>;

#[derive(Debug, Clone)]
pub struct Resolver {
    pub addr: IpAddr,
    pub route: Lookup,
    /// systemd-resolved's link for it, when it is a per-link server.
    pub link: Option<String>,
}

/// The machine's state as read now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub v4: Lookup,
    pub v6: Lookup,
    pub resolvers: Result<Vec<Resolver>, String>,
    pub kill_switch_table: Result<bool, String>,
    pub server: Option<Lookup>,
    /// The DHCP server (from the plan or the lease) and its route.
    pub dhcp: Option<(IpAddr, Lookup)>,
    /// `Ok(Some(rtt))`: answered; `Ok(None)`: no answer; `None`: not tried.
    pub probe: Option<Result<Option<Duration>, String>>,
}

/// Reads the machine's state for `target`. Blocking (netlink, D-Bus, a socket): call
/// from `spawn_blocking`.
pub fn observe(target: &Target, discover: &netcfg::DiscoverOptions) -> Observed {
    let mut routes = netcfg::Routes::open().map_err(|e| e.to_string());
    let mut lookup = |addr: IpAddr| -> Lookup {
        let r = routes.as_mut().map_err(|e| e.clone())?;
        let route = r.lookup(addr).map_err(|e| e.to_string())?;
        let Some(route) = route else {
            return Ok(None);
        };
        let iface = match route.oif {
            Some(i) => r.iface(i).map_err(|e| e.to_string())?.map(|i| i.name),
            None => None,
        };
        Ok(Some(Seen {
            iface,
            gateway: route.gateway,
            local: route.kind == netcfg::RouteRecord::KIND_LOCAL || addr.is_loopback(),
        }))
    };
    let v4 = lookup(ipc::leak_check::PROBE_V4);
    let v6 = lookup(ipc::leak_check::PROBE_V6);
    let state = netcfg::discover_state(discover).map_err(|e| e.to_string());
    let links: Vec<netcfg::IfaceId> = netcfg::Routes::open()
        .and_then(|mut r| r.links())
        .unwrap_or_default();
    let link_name = |index: u32| {
        links
            .iter()
            .find(|l| l.index == index)
            .map(|l| l.name.clone())
    };
    let resolvers = state.as_ref().map_err(|e| e.clone()).map(|s| {
        // With systemd-resolved, a per-link server is asked over its link.
        let per_link = netcfg::dns::resolved_servers_by_link(discover.dbus_address.as_deref())
            .unwrap_or_default();
        let mut out = Vec::new();
        for addr in &s.resolvers {
            if out.iter().any(|r: &Resolver| r.addr == *addr) {
                continue;
            }
            let link = per_link
                .iter()
                .find(|(i, a)| a == addr && *i != 0)
                .and_then(|(i, _)| link_name(*i));
            out.push(Resolver {
                addr: *addr,
                route: lookup(*addr),
                link,
            });
        }
        out
    });
    let kill_switch_table =
        netcfg::firewall::table_present(netcfg::firewall::DEFAULT_TABLE).map_err(|e| e.to_string());
    let server = target.server.map(&mut lookup);
    let dhcp_addr = target.dhcp_bypass.or_else(|| {
        state
            .as_ref()
            .ok()
            .and_then(|s| s.dhcp_server)
            .map(IpAddr::V4)
    });
    let dhcp = dhcp_addr.map(|a| (a, lookup(a)));
    let probe = match (target.connected, &target.tunnel_iface, target.gateway) {
        (true, Some(iface), Some(gw)) => Some(probe(iface, gw)),
        _ => None,
    };
    Observed {
        v4,
        v6,
        resolvers,
        kill_switch_table,
        server,
        dhcp,
        probe,
    }
}

/// One verdict per check.
pub fn judge(t: &Target, o: &Observed) -> LeakReport {
    let ks_on = t.guarded && matches!(o.kill_switch_table, Ok(true));
    let checks = vec![
        default_route(t, &o.v4, false, ks_on),
        default_route(t, &o.v6, true, ks_on),
        dns(t, &o.resolvers, ks_on),
        kill_switch(t, &o.kill_switch_table),
        server_route(t, o.server.as_ref()),
        dhcp_route(t, o.dhcp.as_ref()),
        tunnel_probe(t, o.probe.as_ref()),
    ];
    LeakReport {
        session: t.session,
        profile_name: t.profile_name.clone(),
        connected: t.connected,
        checks,
    }
}

struct Finding {
    verdict: CheckVerdict,
    outcome: CheckOutcome,
    explanation: String,
}

fn check(kind: CheckKind, addrs: Vec<IpAddr>, seen: Option<&Seen>, f: Finding) -> LeakCheck {
    LeakCheck {
        kind,
        verdict: f.verdict,
        outcome: f.outcome,
        addrs,
        interface: seen
            .and_then(|s| s.iface.as_deref())
            .map(ShortText::sanitized),
        gateway: seen.and_then(|s| s.gateway),
        explanation: ShortText::sanitized(&f.explanation),
    }
}

fn finding(verdict: CheckVerdict, outcome: CheckOutcome, explanation: String) -> Finding {
    Finding {
        verdict,
        outcome,
        explanation,
    }
}

use CheckOutcome as O;
use CheckVerdict::{Fail, NotApplicable as NA, Pass};

/// Where a lookup says traffic goes, in words: "via 192.168.1.1 on eth0".
fn path(s: &Seen) -> String {
    let dev = s.iface.as_deref().unwrap_or("?");
    match s.gateway {
        Some(g) => format!("via {g} on {dev}"),
        None => format!("directly on {dev}"),
    }
}

fn in_tunnel(t: &Target, s: &Seen) -> bool {
    s.iface
        .as_ref()
        .is_some_and(|i| t.tunnel_iface.as_ref() == Some(i) || t.all_tunnels.contains(i))
}

fn default_route(t: &Target, lookup: &Lookup, v6: bool, ks_on: bool) -> LeakCheck {
    let (kind, fam, addr) = if v6 {
        (CheckKind::DefaultIpv6, "IPv6", ipc::leak_check::PROBE_V6)
    } else {
        (CheckKind::DefaultIpv4, "IPv4", ipc::leak_check::PROBE_V4)
    };
    let seen = match lookup {
        Ok(s) => s.as_ref(),
        Err(e) => {
            let f = finding(
                Fail,
                O::Error,
                format!("could not look up the {fam} route: {e}"),
            );
            return check(kind, vec![addr], None, f);
        }
    };
    let full = if v6 { t.full_v6 } else { t.full_v4 };
    let f = match seen {
        _ if !t.connected => match seen {
            Some(s) if in_tunnel(t, s) => finding(
                NA,
                O::IntoTunnel,
                format!("no session of yours is connected; {fam} traffic goes into another tunnel ({})", s.iface.as_deref().unwrap_or("?")),
            ),
            Some(s) => finding(
                NA,
                O::Direct,
                format!("no VPN is connected: {fam} traffic goes directly to the internet {}", path(s)),
            ),
            None => finding(NA, O::NoRoute, format!("no VPN is connected and there is no {fam} route: {fam} traffic cannot leave")),
        },
        Some(s) if in_tunnel(t, s) => finding(
            Pass,
            O::IntoTunnel,
            format!("{fam} traffic to the internet goes into the tunnel ({})", s.iface.as_deref().unwrap_or("?")),
        ),
        Some(s) if full && ks_on => finding(
            Fail,
            O::BlockedByKillSwitch,
            format!("the tunnel should carry all {fam} traffic, but its route goes {}; the kill switch drops it, so nothing leaks, but the internet is unreachable", path(s)),
        ),
        Some(s) if full => finding(
            Fail,
            O::Leaks,
            format!("the tunnel should carry all {fam} traffic, but it leaves {}: a leak", path(s)),
        ),
        None if full => finding(
            Fail,
            O::NoRoute,
            format!("the tunnel should carry all {fam} traffic, but there is no {fam} route: the internet is unreachable"),
        ),
        // IPv4-only tunnel: IPv6 must not leave around it.
        None if v6 && t.full_v4 => finding(
            Pass,
            O::NoRoute,
            "the tunnel carries IPv4 only and there is no IPv6 route: IPv6 traffic cannot leave".into(),
        ),
        Some(s) if v6 && t.full_v4 && ks_on => finding(
            Pass,
            O::BlockedByKillSwitch,
            format!("the tunnel carries IPv4 only; IPv6 traffic would go {}, but the kill switch drops it", path(s)),
        ),
        Some(s) if v6 && t.full_v4 => finding(
            Fail,
            O::Leaks,
            format!("the tunnel carries IPv4 only and IPv6 traffic leaves {} around it: a leak", path(s)),
        ),
        Some(s) => finding(
            NA,
            O::Direct,
            format!("the VPN carries only its own networks (split tunnel): {fam} internet traffic goes {} by design", path(s)),
        ),
        None => finding(NA, O::NoRoute, format!("there is no {fam} route: {fam} traffic cannot leave")),
    };
    check(kind, vec![addr], seen, f)
}

fn dns(t: &Target, resolvers: &Result<Vec<Resolver>, String>, ks_on: bool) -> LeakCheck {
    let kind = CheckKind::Dns;
    let list = match resolvers {
        Ok(l) => l,
        Err(e) => {
            let f = finding(
                Fail,
                O::Error,
                format!("could not read the DNS configuration: {e}"),
            );
            return check(kind, vec![], None, f);
        }
    };
    let addrs: Vec<IpAddr> = list.iter().map(|r| r.addr).collect();
    if list.is_empty() {
        let f = finding(NA, O::NoResolvers, "no DNS server is configured".into());
        return check(kind, addrs, None, f);
    }
    // Each server: the interface its queries leave through (resolved's link wins).
    let mut inside = Vec::new();
    let mut outside: Vec<(IpAddr, Seen)> = Vec::new();
    let mut unroutable = Vec::new();
    for r in list {
        let seen = match (&r.link, &r.route) {
            (Some(link), Ok(route)) => Some(Seen {
                iface: Some(link.clone()),
                gateway: route.as_ref().and_then(|s| s.gateway),
                local: false,
            }),
            (Some(link), Err(_)) => Some(Seen {
                iface: Some(link.clone()),
                gateway: None,
                local: false,
            }),
            (None, Ok(route)) => route.clone(),
            (None, Err(e)) => {
                let f = finding(
                    Fail,
                    O::Error,
                    format!("could not look up the route to DNS server {}: {e}", r.addr),
                );
                return check(kind, addrs, None, f);
            }
        };
        match seen {
            Some(s) if in_tunnel(t, &s) || s.local => inside.push((r.addr, s)),
            Some(s) => outside.push((r.addr, s)),
            None => unroutable.push(r.addr),
        }
    }
    let names = |v: &[IpAddr]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = names(&addrs);
    let first_seen = outside
        .first()
        .map(|(_, s)| s.clone())
        .or_else(|| inside.first().map(|(_, s)| s.clone()));
    let full = t.full_v4 || t.full_v6;
    let f = if !t.connected {
        match outside.first() {
            Some((_, s)) => finding(
                NA,
                O::Direct,
                format!(
                    "no VPN is connected: DNS questions go to {all}, {}",
                    path(s)
                ),
            ),
            None => finding(
                NA,
                O::Direct,
                format!("no VPN is connected: DNS questions go to {all}"),
            ),
        }
    } else if outside.is_empty() && unroutable.is_empty() {
        let via = inside
            .iter()
            .find(|(_, s)| !s.local)
            .and_then(|(_, s)| s.iface.clone());
        let how = match via {
            Some(i) => format!("into the tunnel ({i})"),
            None => "to this machine's resolver".into(),
        };
        finding(
            Pass,
            O::IntoTunnel,
            format!("DNS questions go to {all}, {how}"),
        )
    } else if !full {
        finding(
            NA,
            O::Direct,
            format!("split tunnel: DNS questions go to {all}, partly outside the tunnel by design"),
        )
    } else if let Some((a, s)) = outside.first() {
        if ks_on && !inside.is_empty() {
            finding(
                Pass,
                O::BlockedByKillSwitch,
                format!(
                    "DNS server {a} would be asked {}, but the kill switch drops those questions (the servers in the tunnel answer)",
                    path(s)
                ),
            )
        } else if ks_on {
            finding(
                Fail,
                O::BlockedByKillSwitch,
                format!(
                    "DNS server {a} would be asked {}; the kill switch drops those questions, so nothing leaks, but no DNS server is reachable through the tunnel",
                    path(s)
                ),
            )
        } else {
            finding(
                Fail,
                O::Leaks,
                format!(
                    "DNS server {a} is asked {}, outside the tunnel: your names leak",
                    path(s)
                ),
            )
        }
    } else {
        finding(
            Fail,
            O::NoRoute,
            format!(
                "no route to DNS server {}: names cannot be resolved",
                names(&unroutable)
            ),
        )
    };
    check(kind, addrs, first_seen.as_ref(), f)
}

fn kill_switch(t: &Target, table: &Result<bool, String>) -> LeakCheck {
    let kind = CheckKind::KillSwitch;
    let present = match table {
        Ok(p) => *p,
        Err(e) => {
            let f = finding(Fail, O::Error, format!("could not ask the firewall: {e}"));
            return check(kind, vec![], None, f);
        }
    };
    let owner = t.kill_switch_owner;
    let f = match (t.connected, t.guarded, present) {
        _ if owner.is_some() && owner != t.session => finding(
            NA,
            O::KillSwitchOtherSession,
            format!("the kill switch belongs to session {}", owner.map(|s| s.to_string()).unwrap_or_default()),
        ),
        (true, true, true) => finding(Pass, O::KillSwitchOn, "on: if the tunnel drops, nothing leaves outside it".into()),
        (true, true, false) => finding(Fail, O::KillSwitchMissing, "this session should be guarded, but the kill switch's firewall rules are missing".into()),
        (true, false, _) => finding(NA, O::KillSwitchOff, "off for this session: if the tunnel drops, traffic goes out directly".into()),
        (false, _, true) if owner.is_some() => finding(NA, O::KillSwitchOn, "on while the session reconnects: nothing leaves outside the tunnel".into()),
        (false, _, true) => finding(NA, O::KillSwitchLeftOver, "the kill switch's rules are in the firewall although no session holds them: traffic is blocked".into()),
        (false, _, false) => finding(NA, O::KillSwitchOff, "off: no VPN is connected".into()),
    };
    check(kind, vec![], None, f)
}

fn server_route(t: &Target, lookup: Option<&Lookup>) -> LeakCheck {
    let kind = CheckKind::ServerRoute;
    let addrs: Vec<IpAddr> = t.server.into_iter().collect();
    let (Some(lookup), Some(addr), true) = (lookup, t.server, t.connected) else {
        let f = finding(NA, O::NotConnected, "no VPN is connected".into());
        return check(kind, addrs, None, f);
    };
    let seen = match lookup {
        Ok(s) => s.as_ref(),
        Err(e) => {
            let f = finding(
                Fail,
                O::Error,
                format!("could not look up the route to the VPN server: {e}"),
            );
            return check(kind, addrs, None, f);
        }
    };
    let f = match seen {
        Some(s) if in_tunnel(t, s) => finding(
            Fail,
            O::InsideTunnel,
            format!(
                "the VPN server {addr} is routed into the tunnel itself: the tunnel cannot work"
            ),
        ),
        Some(s) => finding(
            Pass,
            O::AroundTunnel,
            format!(
                "the VPN server {addr} is reached {}, outside the tunnel as it must be",
                path(s)
            ),
        ),
        None => finding(
            Fail,
            O::NoRoute,
            format!("there is no route to the VPN server {addr}"),
        ),
    };
    check(kind, addrs, seen, f)
}

fn dhcp_route(t: &Target, dhcp: Option<&(IpAddr, Lookup)>) -> LeakCheck {
    let kind = CheckKind::DhcpRoute;
    let Some((addr, lookup)) = dhcp else {
        let f = finding(
            NA,
            O::NoDhcpServer,
            "no DHCP server is known (a fixed address, or no lease found)".into(),
        );
        return check(kind, vec![], None, f);
    };
    let addrs = vec![*addr];
    let seen = match lookup {
        Ok(s) => s.as_ref(),
        Err(e) => {
            let f = finding(
                Fail,
                O::Error,
                format!("could not look up the route to the DHCP server: {e}"),
            );
            return check(kind, addrs, None, f);
        }
    };
    let f = match seen {
        _ if !t.connected => match seen {
            Some(s) => finding(NA, O::Direct, format!("no VPN is connected: the DHCP server {addr} is reached {}", path(s))),
            None => finding(NA, O::NoRoute, format!("no VPN is connected and there is no route to the DHCP server {addr}")),
        },
        Some(s) if in_tunnel(t, s) && t.full_v4 => finding(Fail, O::InsideTunnel, format!("the DHCP server {addr} is routed into the tunnel: lease renewals would fail")),
        Some(s) if in_tunnel(t, s) => finding(NA, O::IntoTunnel, format!("the DHCP server {addr} is routed into the tunnel by a pushed route")),
        Some(s) => finding(Pass, O::AroundTunnel, format!("the DHCP server {addr} is reached {}, outside the tunnel, so lease renewals keep working", path(s))),
        None => finding(Fail, O::NoRoute, format!("there is no route to the DHCP server {addr}: the lease cannot be renewed")),
    };
    check(kind, addrs, seen, f)
}

fn tunnel_probe(t: &Target, probe: Option<&Result<Option<Duration>, String>>) -> LeakCheck {
    let kind = CheckKind::TunnelProbe;
    let addrs: Vec<IpAddr> = t.gateway.into_iter().collect();
    let iface = t.tunnel_iface.clone().unwrap_or_default();
    let seen = Seen {
        iface: t.tunnel_iface.clone(),
        gateway: None,
        local: false,
    };
    let f = match (t.connected, t.gateway, probe) {
        (false, _, _) => finding(NA, O::NotConnected, "no VPN is connected".into()),
        (true, None, _) | (true, _, None) => {
            finding(NA, O::NoGateway, "the tunnel has no gateway to ask".into())
        }
        (true, Some(g), Some(Ok(Some(rtt)))) => finding(
            Pass,
            O::ProbeAnswered,
            format!(
                "the VPN's gateway {g} answered through the tunnel ({iface}) in {} ms",
                rtt.as_millis().max(1)
            ),
        ),
        (true, Some(g), Some(Ok(None))) => finding(
            Fail,
            O::ProbeUnanswered,
            format!(
                "the VPN's gateway {g} did not answer through the tunnel ({iface}) within {} s",
                u64::from(PROBE_TRIES) * PROBE_WAIT.as_secs()
            ),
        ),
        (true, Some(_), Some(Err(e))) => {
            finding(Fail, O::Error, format!("could not probe the tunnel: {e}"))
        }
    };
    check(kind, addrs, t.tunnel_iface.as_ref().map(|_| &seen), f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "leak_check_tests.rs"]
mod tests;
