//! Tests of `plan.rs` (kept apart so that module stays small).
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
