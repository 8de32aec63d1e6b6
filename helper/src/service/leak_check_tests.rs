//! Tests of `leak_check.rs` (kept apart so that module stays small).
use super::*;

fn seen(iface: &str, gw: Option<&str>) -> Option<Seen> {
    Some(Seen {
        iface: Some(iface.into()),
        gateway: gw.map(|g| g.parse().unwrap()),
        local: false,
    })
}

fn connected_full() -> Target {
    Target {
        session: Some(SessionId(1)),
        connected: true,
        tunnel_iface: Some("oxi0".into()),
        all_tunnels: vec!["oxi0".into()],
        server: Some("198.18.0.1".parse().unwrap()),
        guarded: true,
        full_v4: true,
        dhcp_bypass: Some("192.168.2.2".parse().unwrap()),
        gateway: Some("10.8.0.1".parse().unwrap()),
        kill_switch_owner: Some(SessionId(1)),
        ..Target::default()
    }
}

/// The reference scenario while connected: def1 into oxi0, server and DHCP server
/// via the LAN gateway, DNS pushed into the tunnel, no IPv6 route.
fn healthy() -> Observed {
    Observed {
        v4: Ok(seen("oxi0", Some("10.8.0.1"))),
        v6: Ok(None),
        resolvers: Ok(vec![Resolver {
            addr: "10.0.0.3".parse().unwrap(),
            route: Ok(seen("oxi0", Some("10.8.0.1"))),
            link: None,
        }]),
        kill_switch_table: Ok(true),
        server: Some(Ok(seen("eth0", Some("192.168.1.1")))),
        dhcp: Some((
            "192.168.2.2".parse().unwrap(),
            Ok(seen("eth0", Some("192.168.1.1"))),
        )),
        probe: Some(Ok(Some(Duration::from_millis(3)))),
    }
}

fn verdicts(r: &LeakReport) -> Vec<(CheckKind, CheckVerdict, CheckOutcome)> {
    r.checks
        .iter()
        .map(|c| (c.kind, c.verdict, c.outcome))
        .collect()
}

#[test]
fn reference_scenario_connected_passes_every_check() {
    let r = judge(&connected_full(), &healthy());
    assert!(!r.failed(), "{:#?}", r.checks);
    assert_eq!(
        verdicts(&r),
        vec![
            (CheckKind::DefaultIpv4, Pass, O::IntoTunnel),
            (CheckKind::DefaultIpv6, Pass, O::NoRoute),
            (CheckKind::Dns, Pass, O::IntoTunnel),
            (CheckKind::KillSwitch, Pass, O::KillSwitchOn),
            (CheckKind::ServerRoute, Pass, O::AroundTunnel),
            (CheckKind::DhcpRoute, Pass, O::AroundTunnel),
            (CheckKind::TunnelProbe, Pass, O::ProbeAnswered),
        ]
    );
    assert_eq!(r.checks[4].interface.as_ref().unwrap().as_str(), "eth0");
}

#[test]
fn missing_def1_routes_fail_even_with_the_kill_switch() {
    let mut o = healthy();
    o.v4 = Ok(seen("eth0", Some("192.168.1.1")));
    let r = judge(&connected_full(), &o);
    assert!(r.failed());
    assert_eq!(r.checks[0].verdict, Fail);
    assert_eq!(r.checks[0].outcome, O::BlockedByKillSwitch);
    // DNS routed out with the rest: nothing leaks, but no server is reachable.
    o.resolvers = Ok(vec![Resolver {
        addr: "10.0.0.3".parse().unwrap(),
        route: Ok(seen("eth0", Some("192.168.1.1"))),
        link: None,
    }]);
    let r = judge(&connected_full(), &o);
    assert_eq!(
        (r.checks[2].verdict, r.checks[2].outcome),
        (Fail, O::BlockedByKillSwitch)
    );
    // Without the kill switch the same state is a leak.
    let mut t = connected_full();
    t.guarded = false;
    t.kill_switch_owner = None;
    o.kill_switch_table = Ok(false);
    let r = judge(&t, &o);
    assert_eq!(r.checks[0].outcome, O::Leaks);
    assert_eq!(r.checks[3].verdict, NA, "{:?}", r.checks[3]);
}

#[test]
fn ipv6_around_an_ipv4_tunnel_is_a_leak_unless_blocked() {
    let mut o = healthy();
    o.v6 = Ok(seen("eth0", Some("fe80::1")));
    let r = judge(&connected_full(), &o);
    assert_eq!(r.checks[1].verdict, Pass);
    assert_eq!(r.checks[1].outcome, O::BlockedByKillSwitch);
    o.kill_switch_table = Ok(false);
    let r = judge(&connected_full(), &o);
    assert_eq!(r.checks[1].outcome, O::Leaks);
    assert_eq!(r.checks[3].outcome, O::KillSwitchMissing);
    assert!(r.failed());
}

#[test]
fn dns_outside_the_tunnel_leaks_and_a_resolved_link_wins_over_the_route() {
    let mut o = healthy();
    let mut t = connected_full();
    t.guarded = false;
    o.resolvers = Ok(vec![Resolver {
        addr: "10.0.0.3".parse().unwrap(),
        // Routed into the tunnel, but resolved asks it over eth0.
        route: Ok(seen("oxi0", None)),
        link: Some("eth0".into()),
    }]);
    let r = judge(&t, &o);
    assert_eq!(r.checks[2].verdict, Fail);
    assert_eq!(r.checks[2].outcome, O::Leaks);
    assert_eq!(r.checks[2].interface.as_ref().unwrap().as_str(), "eth0");
}

#[test]
fn a_per_link_server_outside_is_harmless_while_the_kill_switch_drops_it() {
    let mut o = healthy();
    o.resolvers = Ok(vec![
        Resolver {
            addr: "10.0.0.3".parse().unwrap(),
            route: Ok(seen("oxi0", None)),
            link: Some("oxi0".into()),
        },
        Resolver {
            addr: "192.168.1.1".parse().unwrap(),
            route: Ok(seen("eth0", None)),
            link: Some("eth0".into()),
        },
    ]);
    let r = judge(&connected_full(), &o);
    assert_eq!(
        (r.checks[2].verdict, r.checks[2].outcome),
        (Pass, O::BlockedByKillSwitch)
    );
    assert_eq!(r.checks[2].addrs.len(), 2);
}

#[test]
fn disconnected_reports_the_direct_path_and_nothing_fails() {
    let t = Target {
        dhcp_bypass: None,
        ..Target::default()
    };
    let o = Observed {
        v4: Ok(seen("eth0", Some("192.168.1.1"))),
        v6: Ok(None),
        resolvers: Ok(vec![Resolver {
            addr: "192.168.1.1".parse().unwrap(),
            route: Ok(seen("eth0", None)),
            link: None,
        }]),
        kill_switch_table: Ok(false),
        server: None,
        dhcp: Some((
            "192.168.2.2".parse().unwrap(),
            Ok(seen("eth0", Some("192.168.1.1"))),
        )),
        probe: None,
    };
    let r = judge(&t, &o);
    assert!(!r.failed());
    assert!(r.checks.iter().all(|c| c.verdict == NA), "{:#?}", r.checks);
    assert_eq!(r.checks[0].outcome, O::Direct);
    assert!(r.checks[0]
        .explanation
        .as_str()
        .contains("via 192.168.1.1 on eth0"));
}

#[test]
fn server_in_the_tunnel_and_an_unanswered_probe_fail() {
    let mut o = healthy();
    o.server = Some(Ok(seen("oxi0", None)));
    o.probe = Some(Ok(None));
    let r = judge(&connected_full(), &o);
    assert_eq!(r.checks[4].outcome, O::InsideTunnel);
    assert_eq!(r.checks[6].outcome, O::ProbeUnanswered);
    assert_eq!(r.checks[6].verdict, Fail);
}

#[test]
fn plan_entries_say_what_the_session_should_look_like() {
    let e = |dst: &str, gw: Option<&str>, kind| RouteEntry {
        destination: ShortText::sanitized(dst),
        gateway: gw.map(|g| g.parse().unwrap()),
        device: None,
        kind,
        reason: ShortText::sanitized("x"),
    };
    let mut t = Target::default();
    t.read_plan(&[
        e(
            "198.18.0.1/32",
            Some("192.168.1.1"),
            RouteKind::ServerBypass,
        ),
        e(
            "192.168.2.2/32",
            Some("192.168.1.1"),
            RouteKind::DhcpServerBypass,
        ),
        e("0.0.0.0/1", Some("10.8.0.1"), RouteKind::IntoTunnel),
        e("128.0.0.0/1", Some("10.8.0.1"), RouteKind::IntoTunnel),
        e("::/0", None, RouteKind::Blocked),
    ]);
    assert!(t.full_v4 && !t.full_v6);
    assert_eq!(t.gateway, Some("10.8.0.1".parse().unwrap()));
    assert_eq!(t.dhcp_bypass, Some("192.168.2.2".parse().unwrap()));
    let mut split = Target::default();
    split.read_plan(&[e("10.0.0.0/24", Some("10.8.0.1"), RouteKind::Pushed)]);
    assert!(!split.full_v4 && split.gateway.is_none());
}
