//! Tests of `push.rs` (kept apart so that module stays small).
use super::*;
use crate::config::PullFilter;

const LIVE: &str = ",redirect-gateway def1 bypass-dhcp,dhcp-option DNS 10.0.0.3,route 192.168.77.0 255.255.255.0,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,tun-mtu 1500";

fn parse(body: &str, cfg: &ClientConfig) -> Result<PushedOptions, PushError> {
    let mut acc = PushAccumulator::new();
    let lines = acc.add(body).unwrap().unwrap();
    parse_pushed(&lines, cfg)
}

#[test]
fn live_reply_parses() {
    let o = parse(LIVE, &ClientConfig::default()).unwrap();
    assert_eq!(
        o.ifconfig,
        Some((
            "10.8.0.2".parse().unwrap(),
            "255.255.255.0".parse().unwrap()
        ))
    );
    assert_eq!(o.topology, Some(Topology::Subnet));
    assert_eq!(
        (o.ping, o.ping_restart, o.peer_id),
        (Some(10), Some(60), Some(0))
    );
    assert_eq!(o.cipher.as_deref(), Some("AES-256-GCM"));
    assert!(o.uses_tls_ekm() && o.protocol_flags.cc_exit && o.protocol_flags.dyn_tls_crypt);
    let rg = o.redirect_gateway.unwrap();
    assert!(rg.def1 && rg.bypass_dhcp && rg.ipv4 && !rg.ipv6);
    assert_eq!(
        o.dhcp_options,
        vec![DhcpOption::Dns("10.0.0.3".parse().unwrap())]
    );
    assert_eq!(o.routes.len(), 1);
    assert_eq!(
        o.route_gateway,
        Some(RouteGateway::Addr("10.8.0.1".parse().unwrap()))
    );
    assert_eq!(o.tun_mtu, Some(1500));
    assert!(o.unknown.is_empty());
}

#[test]
fn continuation_collects_parts() {
    let mut acc = PushAccumulator::new();
    assert_eq!(
        acc.add(",route 10.1.0.0 255.255.0.0,push-continuation 2")
            .unwrap(),
        None
    );
    assert_eq!(
        acc.add(",route 10.2.0.0 255.255.0.0,push-continuation 2")
            .unwrap(),
        None
    );
    let lines = acc.add(",ping 10,push-continuation 1").unwrap().unwrap();
    assert_eq!(lines.len(), 3);
    let o = parse_pushed(&lines, &ClientConfig::default()).unwrap();
    assert_eq!(o.routes.len(), 2);
    assert_eq!(o.ping, Some(10));
    // Accumulator is reusable; a bare PUSH_REPLY is "no options".
    assert_eq!(acc.add("").unwrap(), Some(vec![]));
}

#[test]
fn pull_filter_and_route_nopull() {
    let cfg = ClientConfig {
        pull_filters: vec![
            PullFilter {
                action: PullFilterAction::Accept,
                prefix: "route 192.168.77.".into(),
            },
            PullFilter {
                action: PullFilterAction::Ignore,
                prefix: "route ".into(),
            },
            PullFilter {
                action: PullFilterAction::Ignore,
                prefix: "redirect-gateway".into(),
            },
        ],
        ..ClientConfig::default()
    };
    let o = parse(
        ",route 192.168.77.0 255.255.255.0,route 10.9.0.0 255.255.0.0,redirect-gateway def1",
        &cfg,
    )
    .unwrap();
    assert_eq!(o.routes.len(), 1);
    assert_eq!(o.redirect_gateway, None);
    assert_eq!(o.ignored.len(), 2);

    let cfg = ClientConfig {
        pull_filters: vec![PullFilter {
            action: PullFilterAction::Reject,
            prefix: "dhcp-option".into(),
        }],
        ..ClientConfig::default()
    };
    assert!(matches!(parse(LIVE, &cfg), Err(PushError::Rejected(_))));

    let cfg = ClientConfig {
        route_nopull: true,
        ..ClientConfig::default()
    };
    let o = parse(LIVE, &cfg).unwrap();
    assert!(o.routes.is_empty() && o.redirect_gateway.is_none() && o.dhcp_options.is_empty());
    assert!(o.ifconfig.is_some());
}

#[test]
fn route_covering_server_refused() {
    let cfg = ClientConfig {
        remote_addr: Some("198.51.100.7".parse().unwrap()),
        ..ClientConfig::default()
    };
    let o = parse(
        ",route 198.51.100.0 255.255.255.0,route 10.0.0.0 255.0.0.0",
        &cfg,
    )
    .unwrap();
    assert_eq!(o.routes.len(), 1);
    assert_eq!(o.routes[0].network, Ipv4Addr::new(10, 0, 0, 0));
    let cfg = ClientConfig {
        remote_addr: Some("2001:db8::1".parse().unwrap()),
        ..ClientConfig::default()
    };
    let o = parse(
        ",route-ipv6 2001:db8::/32,route-ipv6 2001:db9::/32 default 5",
        &cfg,
    )
    .unwrap();
    assert_eq!(o.routes_ipv6.len(), 1);
    assert_eq!(o.routes_ipv6[0].metric, Some(5));
}

#[test]
fn cipher_must_be_allowed() {
    let cfg = ClientConfig {
        data_ciphers: vec!["AES-128-GCM".into()],
        ..ClientConfig::default()
    };
    assert!(matches!(
        parse(",cipher AES-256-GCM", &cfg),
        Err(PushError::CipherNotAllowed { .. })
    ));
    // named by the profile's `cipher` (a server that negotiates nothing)
    let cfg = ClientConfig {
        fallback_ciphers: vec!["AES-256-CBC".into()],
        ..cfg
    };
    let o = parse(",cipher AES-256-CBC", &cfg).unwrap();
    assert_eq!(o.cipher.as_deref(), Some("AES-256-CBC"));
}

#[test]
fn dns_ipv6_token_compress_unknown() {
    let o = parse(
        ",dns server 0 address 10.0.0.53 [fd00::53]:5353,dns server 0 resolve-domains corp.example,dns server 1 transport DoT,dns search-domains a.example b.example,ifconfig-ipv6 fd00::2/64 fd00::1,auth-token SESS_abc,auth-token-user YWxpY2U=,compress stub-v2,setenv-safe FOO bar,echo \"hello world\"",
        &ClientConfig::default(),
    )
    .unwrap();
    let s0 = &o.dns.servers[&0];
    assert_eq!(s0.addresses, vec!["10.0.0.53", "[fd00::53]:5353"]);
    assert_eq!(s0.resolve_domains, vec!["corp.example"]);
    assert_eq!(o.dns.servers[&1].transport.as_deref(), Some("DoT"));
    assert_eq!(o.dns.search_domains.len(), 2);
    assert_eq!(
        o.ifconfig_ipv6,
        Some((
            "fd00::2".parse().unwrap(),
            64,
            Some("fd00::1".parse().unwrap())
        ))
    );
    assert_eq!(o.auth_token.as_ref().map(Secret::expose), Some("SESS_abc"));
    assert!(!format!("{o:?}").contains("SESS_abc"));
    assert_eq!(o.auth_token_user.as_deref(), Some("alice"));
    assert_eq!(o.compression, Some(Compression::StubV2));
    assert_eq!(o.unknown.len(), 2);
}

#[test]
fn malformed_is_error_not_panic() {
    for bad in [
        ",ifconfig 10.8.0.2",
        ",route 10.0.0.0 255.0.255.0",
        ",peer-id 99999999",
        ",route-ipv6 fd00::/200",
        ",topology star",
        ",ping x",
        ",compress snappy",
        ",comp-lzo maybe",
    ] {
        assert!(
            matches!(
                parse(bad, &ClientConfig::default()),
                Err(PushError::Malformed { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn pushed_compression_of_every_kind() {
    for (line, want) in [
        (",comp-lzo no", Compression::LzoNo),
        (",comp-lzo yes", Compression::Lzo),
        (",comp-lzo adaptive", Compression::LzoAdaptive),
        (",comp-lzo", Compression::LzoAdaptive),
        (",compress", Compression::StubSwap),
        (",compress stub", Compression::StubSwap),
        (",compress stub-v2", Compression::StubV2),
        (",compress lzo", Compression::Lzo),
        (",compress lz4", Compression::Lz4),
        (",compress lz4-v2", Compression::Lz4V2),
    ] {
        let o = parse(line, &ClientConfig::default()).unwrap();
        assert_eq!(o.compression, Some(want), "{line}");
    }
}
