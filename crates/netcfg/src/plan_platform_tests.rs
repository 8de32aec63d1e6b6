//! The planner on machine states as Windows and macOS report them (pure; run on Linux):
//! large interface indexes and names with spaces (Windows aliases), metric-ordered
//! default routes, link-scoped defaults without a gateway (PPP / macOS interface-scoped),
//! IPv6 link-local gateways (need the interface), net30 on point-to-point utun.

use super::*;
use crate::types::{DefaultRoute, DnsConfig, OnLinkPrefix, TunV6};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Windows: "Ethernet 2" (index 17), 10.0.5.20/24, default via 10.0.5.1 metric 25; the
/// DHCP server (Dhcpv4Server of GetAdaptersAddresses) sits one hop away.
fn windows_state() -> NetworkState {
    let eth = IfaceId {
        index: 17,
        name: "Ethernet 2".into(),
    };
    NetworkState {
        default_v4: Some(DefaultRoute {
            gateway: Some(ip("10.0.5.1")),
            iface: eth.clone(),
            metric: Some(25),
        }),
        default_v6: None,
        on_link: vec![OnLinkPrefix {
            net: net("10.0.5.0/24"),
            iface: eth,
        }],
        dhcp_server: Some("10.0.9.2".parse().unwrap()),
        resolvers: vec![ip("10.0.9.53")],
    }
}

/// macOS: Wi-Fi en0 (index 6) with 192.168.178.30/24 and an IPv6 default via fe80::1.
fn macos_state() -> NetworkState {
    let en0 = IfaceId {
        index: 6,
        name: "en0".into(),
    };
    NetworkState {
        default_v4: Some(DefaultRoute {
            gateway: Some(ip("192.168.178.1")),
            iface: en0.clone(),
            metric: None,
        }),
        default_v6: Some(DefaultRoute {
            gateway: Some(ip("fe80::1")),
            iface: en0.clone(),
            metric: None,
        }),
        on_link: vec![
            OnLinkPrefix {
                net: net("192.168.178.0/24"),
                iface: en0.clone(),
            },
            OnLinkPrefix {
                net: net("2001:db8:aa::/64"),
                iface: en0,
            },
        ],
        dhcp_server: Some("192.168.178.1".parse().unwrap()),
        resolvers: vec![ip("192.168.178.1")],
    }
}

fn full_tunnel(def1: bool) -> TunnelNetworkConfig {
    TunnelNetworkConfig {
        tun_v4: Some(TunV4::Subnet {
            addr: "10.8.0.2".parse().unwrap(),
            prefix_len: 24,
        }),
        route_gateway_v4: Some("10.8.0.1".parse().unwrap()),
        redirect: Some(RedirectGateway {
            def1,
            bypass_dhcp: true,
            bypass_dns: true,
            ..Default::default()
        }),
        remotes: vec![ip("203.0.113.7")],
        dns: DnsConfig {
            servers: vec![ip("10.8.0.1")],
            ..Default::default()
        },
        ..Default::default()
    }
}

fn added(p: &Plan, kind: Reason) -> Vec<&PlannedRoute> {
    p.changes
        .iter()
        .filter(|c| c.kind == kind)
        .filter_map(|c| match &c.change {
            Change::AddRoute(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn windows_bypass_routes_keep_the_adapter_index_and_alias() {
    let p = plan(&full_tunnel(true), &windows_state());
    let eth = Dev::Iface(IfaceId {
        index: 17,
        name: "Ethernet 2".into(),
    });
    for (kind, dst) in [
        (Reason::ServerBypass, "203.0.113.7/32"),
        (Reason::DhcpBypass, "10.0.9.2/32"),
        (Reason::DnsBypass, "10.0.9.53/32"),
    ] {
        let r = added(&p, kind);
        assert_eq!(r.len(), 1, "{kind:?}: {}", p.render());
        assert_eq!(r[0].dst, net(dst));
        assert_eq!(r[0].via, Some(ip("10.0.5.1")));
        // The interface by index (CreateIpForwardEntry2 keys on it), not by a name lookup.
        assert_eq!(r[0].dev, eth);
    }
    // The rendering names the alias verbatim, spaces included.
    assert!(p.render().contains("dev Ethernet 2"), "{}", p.render());
}

#[test]
fn windows_replaced_default_is_deleted_with_its_metric_and_restorable() {
    let mut cfg = full_tunnel(false);
    cfg.default_metric = Some(5);
    let p = plan(&cfg, &windows_state());
    let deleted: Vec<&PlannedRoute> = p
        .changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::DeleteRoute(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 1);
    // DeleteIpForwardEntry2 / re-create need the exact metric and interface of the original.
    assert_eq!(deleted[0].metric, Some(25));
    assert_eq!(deleted[0].via, Some(ip("10.0.5.1")));
    assert!(matches!(&deleted[0].dev, Dev::Iface(i) if i.index == 17));
    let new = added(&p, Reason::Redirect);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].dst, net("0.0.0.0/0"));
    assert_eq!(new[0].metric, Some(5));
    assert_eq!(new[0].dev, Dev::Tunnel);
}

#[test]
fn windows_def1_halves_carry_route_metric_and_beat_the_default_by_prefix() {
    let mut cfg = full_tunnel(true);
    cfg.default_metric = Some(300);
    let p = plan(&cfg, &windows_state());
    let halves = added(&p, Reason::Redirect);
    assert_eq!(halves.len(), 2);
    for h in halves {
        // Longer prefix than 0/0 wins regardless of the (higher) metric on every OS.
        assert_eq!(h.dst.prefix_len(), 1);
        assert_eq!(h.metric, Some(300));
        assert_eq!(h.via, Some(ip("10.8.0.1")));
    }
    assert!(!p
        .changes
        .iter()
        .any(|c| matches!(c.change, Change::DeleteRoute(_))));
}

#[test]
fn link_scoped_default_without_gateway_gives_an_on_link_bypass() {
    // Windows PPP / macOS interface-scoped default: 0.0.0.0/0 on the link, NextHop 0.0.0.0.
    let ppp = IfaceId {
        index: 23,
        name: "PPP adapter".into(),
    };
    let state = NetworkState {
        default_v4: Some(DefaultRoute {
            gateway: None,
            iface: ppp.clone(),
            metric: Some(10),
        }),
        default_v6: None,
        on_link: vec![],
        dhcp_server: None,
        resolvers: vec![],
    };
    let p = plan(&full_tunnel(true), &state);
    let srv = added(&p, Reason::ServerBypass);
    assert_eq!(srv.len(), 1);
    assert_eq!(srv[0].via, None);
    assert_eq!(srv[0].dev, Dev::Iface(ppp));
    assert!(p.notes.iter().any(|n| n.contains("no DHCP lease")));
}

#[test]
fn macos_ipv6_link_local_gateway_stays_bound_to_its_interface() {
    let cfg = TunnelNetworkConfig {
        tun_v6: Some(TunV6 {
            addr: "fd00:8::2".parse().unwrap(),
            prefix_len: 64,
        }),
        route_gateway_v6: Some("fd00:8::1".parse().unwrap()),
        redirect: Some(RedirectGateway {
            ipv4: false,
            ipv6: true,
            ..Default::default()
        }),
        remotes: vec![ip("2001:db8:ff::10")],
        ..Default::default()
    };
    let p = plan(&cfg, &macos_state());
    let srv = added(&p, Reason::ServerBypass);
    assert_eq!(srv.len(), 1);
    assert_eq!(srv[0].dst, net("2001:db8:ff::10/128"));
    // fe80::1 means nothing without its scope: the route must name en0 (index 6).
    assert_eq!(srv[0].via, Some(ip("fe80::1")));
    assert!(matches!(&srv[0].dev, Dev::Iface(i) if i.index == 6 && i.name == "en0"));
    // Only IPv6 is redirected; no IPv4 change.
    assert!(added(&p, Reason::Redirect)
        .iter()
        .all(|r| matches!(r.dst, IpNet::V6(_)) && r.dev == Dev::Tunnel));
}

#[test]
fn macos_dhcp_server_that_is_the_router_needs_no_bypass() {
    let p = plan(&full_tunnel(true), &macos_state());
    assert!(added(&p, Reason::DhcpBypass).is_empty());
    // The resolver is on-link as well: no DNS bypass route either.
    assert!(added(&p, Reason::DnsBypass).is_empty());
    let srv = added(&p, Reason::ServerBypass);
    assert_eq!(srv.len(), 1);
    assert_eq!(srv[0].via, Some(ip("192.168.178.1")));
}

#[test]
fn macos_utun_net30_routes_go_via_the_peer() {
    // utun is point-to-point: net30/p2p pushes local + peer; the peer is the gateway.
    let mut cfg = full_tunnel(true);
    cfg.tun_v4 = Some(TunV4::PointToPoint {
        local: "10.8.0.6".parse().unwrap(),
        peer: "10.8.0.5".parse().unwrap(),
    });
    cfg.route_gateway_v4 = None;
    cfg.routes = vec![PushedRoute {
        dst: net("10.20.0.0/16"),
        gateway: RouteGateway::Explicit(ip("10.8.0.5")),
        metric: None,
    }];
    let p = plan(&cfg, &macos_state());
    for r in added(&p, Reason::Redirect) {
        assert_eq!(r.via, Some(ip("10.8.0.5")));
        assert_eq!(r.dev, Dev::Tunnel);
    }
    let pushed = added(&p, Reason::PushedRoute);
    assert_eq!(pushed.len(), 1);
    // The peer is "in the tunnel subnet" of a p2p address, so the route is on the tunnel.
    assert_eq!(pushed[0].dev, Dev::Tunnel);
}
