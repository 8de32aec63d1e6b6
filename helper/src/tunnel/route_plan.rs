//! The applied route plan of a session in the IPC's terms: every route the session put
//! in place (or refused), which kind it is, and one human line why. The app's routes
//! view and `oxivpnctl routes` show this list.

use ipc::{RouteEntry, RouteKind, ShortText};
use netcfg::plan::{Change, Dev, PlannedRoute, Reason};
use netcfg::{IpNet, RouteGateway};

use super::attempt::AppliedPlan;

/// Routes (in the order they were applied), then the LAN prefixes that stay on the LAN,
/// then what is blocked; plus the planner's notes.
pub fn entries(applied: &AppliedPlan) -> (Vec<RouteEntry>, Vec<ShortText>) {
    let tun = applied.interface.as_str();
    let mut out = Vec::new();
    for c in &applied.plan.changes {
        let (route, removed) = match &c.change {
            Change::AddRoute(r) => (r, false),
            Change::DeleteRoute(r) => (r, true),
            Change::AddAddress(_) | Change::SetMtu(_) | Change::SetDns(_) => continue,
        };
        let kind = if removed {
            RouteKind::Removed
        } else {
            kind_of(c.kind, route)
        };
        out.push(entry(route, tun, kind, &c.why));
    }
    let mut lan: Vec<_> = applied
        .state
        .on_link
        .iter()
        // Link-local and host prefixes say nothing useful here.
        .filter(|p| p.net.prefix_len() < p.net.max_prefix_len() && !is_link_local(&p.net))
        .collect();
    lan.sort_by_key(|p| (p.net.addr().is_ipv6(), p.net));
    lan.dedup_by_key(|p| p.net);
    let lan_blocked = applied.kill_switch && !applied.allow_lan;
    for p in lan {
        let reason = if lan_blocked {
            format!(
                "directly attached to {}, but the kill switch drops LAN traffic (allow LAN is off)",
                p.iface.name
            )
        } else {
            format!(
                "directly attached to {}: stays on the LAN, more specific than the tunnel's routes",
                p.iface.name
            )
        };
        out.push(RouteEntry {
            destination: ShortText::sanitized(&p.net.to_string()),
            gateway: None,
            device: Some(ShortText::sanitized(&p.iface.name)),
            kind: if lan_blocked {
                RouteKind::Blocked
            } else {
                RouteKind::Lan
            },
            reason: ShortText::sanitized(&reason),
        });
    }
    for r in &applied.plan.refused {
        out.push(RouteEntry {
            destination: ShortText::sanitized(&r.route.dst.to_string()),
            gateway: match r.route.gateway {
                RouteGateway::Explicit(g) => Some(g),
                _ => None,
            },
            device: None,
            kind: RouteKind::Blocked,
            reason: ShortText::sanitized(&format!("refused: {}", r.reason)),
        });
    }
    if applied.kill_switch {
        for dst in ["0.0.0.0/0", "::/0"] {
            out.push(RouteEntry {
                destination: ShortText::sanitized(dst),
                gateway: None,
                device: None,
                kind: RouteKind::Blocked,
                reason: ShortText::sanitized(&format!(
                    "kill switch: whatever does not leave through {tun} or go to the VPN server is dropped"
                )),
            });
        }
    }
    let notes = applied
        .plan
        .notes
        .iter()
        .map(|n| ShortText::sanitized(n))
        .collect();
    (out, notes)
}

fn kind_of(reason: Reason, route: &PlannedRoute) -> RouteKind {
    match reason {
        Reason::ServerBypass => RouteKind::ServerBypass,
        Reason::DhcpBypass => RouteKind::DhcpServerBypass,
        Reason::DnsBypass => RouteKind::DnsBypass,
        Reason::PushedRoute => RouteKind::Pushed,
        // block-local: the LAN gateway stays on the LAN, the LAN itself goes into the tunnel.
        Reason::BlockLocal if route.dev != Dev::Tunnel => RouteKind::Lan,
        Reason::BlockLocal | Reason::Redirect | Reason::ReplaceDefault => RouteKind::IntoTunnel,
        Reason::TunnelAddress | Reason::TunnelMtu | Reason::Dns => {
            if route.dev == Dev::Tunnel {
                RouteKind::IntoTunnel
            } else {
                RouteKind::Lan
            }
        }
    }
}

fn entry(route: &PlannedRoute, tun: &str, kind: RouteKind, why: &str) -> RouteEntry {
    let device = match &route.dev {
        Dev::Tunnel => Some(tun.to_owned()),
        Dev::Iface(i) => Some(i.name.clone()),
        Dev::Auto => None,
    };
    RouteEntry {
        destination: ShortText::sanitized(&route.dst.to_string()),
        gateway: route.via,
        device: device.as_deref().map(ShortText::sanitized),
        kind,
        reason: ShortText::sanitized(why),
    }
}

fn is_link_local(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.addr().is_link_local(),
        IpNet::V6(n) => (n.addr().segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use netcfg::{
        DefaultRoute, IfaceId, NetworkState, OnLinkPrefix, RedirectGateway, TunV4,
        TunnelNetworkConfig,
    };

    fn eth0() -> IfaceId {
        IfaceId {
            index: 2,
            name: "eth0".into(),
        }
    }

    /// The reference scenario: LAN 192.168.1.0/24, DHCP server one hop away, def1 + bypass-dhcp.
    fn reference() -> AppliedPlan {
        let state = NetworkState {
            default_v4: Some(DefaultRoute {
                gateway: Some("192.168.1.1".parse().unwrap()),
                iface: eth0(),
                metric: None,
            }),
            on_link: vec![OnLinkPrefix {
                net: "192.168.1.0/24".parse().unwrap(),
                iface: eth0(),
            }],
            dhcp_server: Some("192.168.2.2".parse().unwrap()),
            ..NetworkState::default()
        };
        let cfg = TunnelNetworkConfig {
            tun_v4: Some(TunV4::Subnet {
                addr: "10.8.0.2".parse().unwrap(),
                prefix_len: 24,
            }),
            route_gateway_v4: Some("10.8.0.1".parse().unwrap()),
            redirect: Some(RedirectGateway {
                def1: true,
                bypass_dhcp: true,
                ..RedirectGateway::default()
            }),
            remotes: vec!["198.18.0.1".parse().unwrap()],
            routes: vec![
                netcfg::PushedRoute {
                    dst: "10.0.0.0/24".parse().unwrap(),
                    gateway: RouteGateway::VpnGateway,
                    metric: None,
                },
                // Would capture the server (as specific as its bypass): refused.
                netcfg::PushedRoute {
                    dst: "198.18.0.1/32".parse().unwrap(),
                    gateway: RouteGateway::VpnGateway,
                    metric: None,
                },
            ],
            ..TunnelNetworkConfig::default()
        };
        AppliedPlan {
            plan: netcfg::plan(&cfg, &state),
            state,
            interface: "oxi0".into(),
            kill_switch: true,
            allow_lan: true,
        }
    }

    fn find<'a>(e: &'a [RouteEntry], dst: &str, kind: RouteKind) -> &'a RouteEntry {
        e.iter()
            .find(|r| r.destination.as_str() == dst && r.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} entry for {dst} in {e:#?}"))
    }

    #[test]
    fn reference_plan_kinds_devices_and_reasons() {
        let (e, _) = entries(&reference());
        let server = find(&e, "198.18.0.1/32", RouteKind::ServerBypass);
        assert_eq!(server.gateway, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(server.device.as_ref().unwrap().as_str(), "eth0");
        let dhcp = find(&e, "192.168.2.2/32", RouteKind::DhcpServerBypass);
        assert_eq!(dhcp.gateway, Some("192.168.1.1".parse().unwrap()));
        for half in ["0.0.0.0/1", "128.0.0.0/1"] {
            let r = find(&e, half, RouteKind::IntoTunnel);
            assert_eq!(r.device.as_ref().unwrap().as_str(), "oxi0");
            assert!(!r.reason.as_str().is_empty());
        }
        let pushed = find(&e, "10.0.0.0/24", RouteKind::Pushed);
        assert_eq!(pushed.device.as_ref().unwrap().as_str(), "oxi0");
        let lan = find(&e, "192.168.1.0/24", RouteKind::Lan);
        assert_eq!(lan.device.as_ref().unwrap().as_str(), "eth0");
        let refused = find(&e, "198.18.0.1/32", RouteKind::Blocked);
        assert!(
            refused.reason.as_str().starts_with("refused:"),
            "{refused:?}"
        );
        let ks = find(&e, "0.0.0.0/0", RouteKind::Blocked);
        assert!(ks.reason.as_str().contains("kill switch"));
        // Nothing but routes: no address/MTU/DNS entries.
        assert!(e.iter().all(|r| r.destination.as_str().contains('/')));
    }

    #[test]
    fn kill_switch_without_allow_lan_blocks_the_lan() {
        let mut p = reference();
        p.allow_lan = false;
        let (e, _) = entries(&p);
        let lan = find(&e, "192.168.1.0/24", RouteKind::Blocked);
        assert!(lan.reason.as_str().contains("allow LAN is off"), "{lan:?}");
        assert!(!e.iter().any(|r| r.kind == RouteKind::Lan));
    }

    #[test]
    fn without_kill_switch_nothing_is_blocked_but_refusals() {
        let mut p = reference();
        p.kill_switch = false;
        let (e, _) = entries(&p);
        let blocked: Vec<_> = e
            .iter()
            .filter(|r| r.kind == RouteKind::Blocked)
            .map(|r| r.destination.as_str())
            .collect();
        assert_eq!(blocked, vec!["198.18.0.1/32"]);
    }

    #[test]
    fn redirect_without_def1_lists_the_removed_default() {
        let mut p = reference();
        let cfg = TunnelNetworkConfig {
            tun_v4: Some(TunV4::Subnet {
                addr: "10.8.0.2".parse().unwrap(),
                prefix_len: 24,
            }),
            route_gateway_v4: Some("10.8.0.1".parse().unwrap()),
            redirect: Some(RedirectGateway::default()),
            remotes: vec!["198.18.0.1".parse().unwrap()],
            ..TunnelNetworkConfig::default()
        };
        p.plan = netcfg::plan(&cfg, &p.state);
        let (e, _) = entries(&p);
        let removed = e.iter().find(|r| r.kind == RouteKind::Removed).unwrap();
        assert_eq!(removed.destination.as_str(), "0.0.0.0/0");
        assert_eq!(removed.gateway, Some("192.168.1.1".parse().unwrap()));
        find(&e, "0.0.0.0/0", RouteKind::IntoTunnel);
    }
}
