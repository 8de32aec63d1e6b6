//! Policy -> nftables JSON batch. PURE: no I/O, so every rule is unit-tested here and the
//! root tests only check that the kernel does what the batch says.
//!
//! Matching is interface-based for the tunnel (`oifname` = the TUN's name) and
//! address-based for the tunnel's own packets (server address + protocol + port, optionally
//! also the socket's fwmark). Chains use policy `drop`; a drop in our table is final for
//! the packet whatever other tables say, while our accepts only stop OUR table's checks.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::{Endpoint, FirewallPolicy, Transport};

/// nftables family of our table: one table filters IPv4 and IPv6.
pub const FAMILY: &str = "inet";

/// ICMPv6 that IPv6 needs to work at all on a link (neighbour discovery, router
/// solicitation); sent with hop limit 255 only, so nothing routed can pose as it.
const ND_TYPES: [&str; 3] = [
    "nd-router-solicit",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
];

/// The whole batch for `nft -j -f -`: creates the table if missing, deletes it and builds
/// it again in ONE transaction, so re-applying (new TUN name, new server) never opens a gap.
pub fn ruleset(table: &str, policy: &FirewallPolicy) -> Value {
    let mut cmds = vec![
        add_table(table),
        json!({"delete": {"table": {"family": FAMILY, "name": table}}}),
        add_table(table),
    ];
    for hook in ["output", "forward"] {
        cmds.push(json!({"add": {"chain": {
            "family": FAMILY, "table": table, "name": hook,
            "type": "filter", "hook": hook, "prio": 0, "policy": "drop",
        }}}));
    }
    for (chain, exprs, comment) in rules(policy) {
        cmds.push(json!({"add": {"rule": {
            "family": FAMILY, "table": table, "chain": chain,
            "expr": exprs, "comment": comment,
        }}}));
    }
    json!({ "nftables": cmds })
}

/// Deletes our table; adding it first makes the batch succeed when it is already gone.
pub fn removal(table: &str) -> Value {
    json!({"nftables": [
        add_table(table),
        {"delete": {"table": {"family": FAMILY, "name": table}}},
    ]})
}

fn add_table(table: &str) -> Value {
    json!({"add": {"table": {"family": FAMILY, "name": table}}})
}

/// Only subnets inside private / link-local ranges can count as LAN: an address whose
/// netmask a rogue DHCP server widened (e.g. 10.1.2.3/1) must not open half the Internet.
pub fn is_lan_prefix(net: &IpNet) -> bool {
    const V4: [&str; 4] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
    ];
    const V6: [&str; 2] = ["fc00::/7", "fe80::/10"];
    let net = net.trunc();
    V4.iter()
        .chain(V6.iter())
        .filter_map(|r| r.parse::<IpNet>().ok())
        .any(|range| range.contains(&net))
}

type Rule = (&'static str, Vec<Value>, String);

/// Ordered rules of both chains; everything not accepted falls to the chains' drop policy.
fn rules(p: &FirewallPolicy) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let accept = || json!({"accept": null});
    let drop = || json!({"drop": null});

    // output: the machine's own packets.
    out.push((
        "output",
        vec![eq(meta("oifname"), json!("lo")), accept()],
        "loopback".into(),
    ));
    if let Some(tun) = &p.tunnel_iface {
        if !p.tunnel_ipv6 {
            out.push((
                "output",
                vec![
                    eq(meta("oifname"), json!(tun)),
                    eq(meta("nfproto"), json!("ipv6")),
                    drop(),
                ],
                "the tunnel carries no IPv6".into(),
            ));
        }
        out.push((
            "output",
            vec![eq(meta("oifname"), json!(tun)), accept()],
            "into the tunnel".into(),
        ));
    }
    for ep in &p.endpoints {
        out.push((
            "output",
            endpoint_rule(ep, p.endpoint_mark),
            format!("VPN server {}", ep),
        ));
    }
    out.push((
        "output",
        vec![
            eq(meta("nfproto"), json!("ipv4")),
            eq(payload("udp", "sport"), json!(68)),
            eq(payload("udp", "dport"), json!(67)),
            accept(),
        ],
        "DHCP".into(),
    ));
    out.push((
        "output",
        vec![
            eq(payload("ip6", "hoplimit"), json!(255)),
            eq(payload("icmpv6", "type"), json!({"set": ND_TYPES})),
            accept(),
        ],
        "IPv6 neighbour discovery / router solicitation".into(),
    ));
    out.extend(tail("output", p));

    // forward: what this machine routes for others (containers, VMs, shared connection).
    if let Some(tun) = &p.tunnel_iface {
        if !p.tunnel_ipv6 {
            out.push((
                "forward",
                vec![
                    eq(meta("oifname"), json!(tun)),
                    eq(meta("nfproto"), json!("ipv6")),
                    drop(),
                ],
                "the tunnel carries no IPv6".into(),
            ));
        }
        out.push((
            "forward",
            vec![eq(meta("oifname"), json!(tun)), accept()],
            "into the tunnel".into(),
        ));
        out.push((
            "forward",
            vec![
                eq(meta("iifname"), json!(tun)),
                json!({"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                 "right": ["established", "related"]}}),
                accept(),
            ],
            "replies from the tunnel".into(),
        ));
    }
    out.extend(tail("forward", p));
    out
}

/// DNS only through the tunnel, IPv6 only if the tunnel has it, then the LAN toggle, then
/// a counted drop (the chain policy would drop too; the counter shows what was stopped).
fn tail(chain: &'static str, p: &FirewallPolicy) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for proto in ["udp", "tcp"] {
        out.push((
            chain,
            vec![
                eq(payload(proto, "dport"), json!(53)),
                json!({"drop": null}),
            ],
            format!("DNS ({proto}) only through the tunnel"),
        ));
    }
    if !p.tunnel_ipv6 {
        out.push((
            chain,
            vec![eq(meta("nfproto"), json!("ipv6")), json!({"drop": null})],
            "the tunnel carries no IPv6".into(),
        ));
    }
    if p.allow_lan {
        let mut nets: Vec<IpNet> = p.lan_prefixes.iter().map(IpNet::trunc).collect();
        nets.retain(is_lan_prefix);
        nets.retain(|n| p.tunnel_ipv6 || matches!(n, IpNet::V4(_)));
        nets.sort();
        nets.dedup();
        for net in nets {
            let field = match net {
                IpNet::V4(_) => "ip",
                IpNet::V6(_) => "ip6",
            };
            out.push((
                chain,
                vec![
                    eq(payload(field, "daddr"), prefix(&net)),
                    json!({"accept": null}),
                ],
                format!("LAN {net}"),
            ));
        }
        // Link-local broadcast / multicast (DHCP-less discovery, mDNS) stays on the link.
        out.push((
            chain,
            vec![
                eq(
                    payload("ip", "daddr"),
                    json!({"set": ["255.255.255.255", {"prefix": {"addr": "224.0.0.0", "len": 24}}]}),
                ),
                json!({"accept": null}),
            ],
            "LAN broadcast / link-local multicast".into(),
        ));
    }
    out.push((
        chain,
        vec![json!({"counter": null}), json!({"drop": null})],
        "kill switch".into(),
    ));
    out
}

fn endpoint_rule(ep: &Endpoint, mark: Option<u32>) -> Vec<Value> {
    let (family, addr) = match ep.addr {
        IpAddr::V4(a) => ("ip", a.to_string()),
        IpAddr::V6(a) => ("ip6", a.to_string()),
    };
    let proto = match ep.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    let mut v = vec![
        eq(payload(family, "daddr"), json!(addr)),
        eq(payload(proto, "dport"), json!(ep.port)),
    ];
    if let Some(m) = mark {
        v.push(eq(meta("mark"), json!(m)));
    }
    v.push(json!({"accept": null}));
    v
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn prefix(net: &IpNet) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FirewallPolicy {
        FirewallPolicy {
            endpoints: vec![Endpoint {
                addr: "198.18.0.1".parse().unwrap(),
                port: 1194,
                transport: Transport::Udp,
            }],
            tunnel_iface: Some("oxi0".into()),
            allow_lan: false,
            lan_prefixes: vec!["192.168.1.0/24".parse().unwrap()],
            tunnel_ipv6: false,
            endpoint_mark: None,
        }
    }

    /// The rules of one chain, each as (its expressions, its comment).
    fn chain(v: &Value, name: &str) -> Vec<(Vec<Value>, String)> {
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["add"]["rule"].as_object())
            .filter(|r| r["chain"] == name)
            .map(|r| {
                (
                    r["expr"].as_array().unwrap().clone(),
                    r["comment"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn verdict(exprs: &[Value]) -> &str {
        let last = exprs.last().unwrap();
        ["accept", "drop"]
            .into_iter()
            .find(|k| last.get(*k).is_some())
            .unwrap()
    }

    fn position(rules: &[(Vec<Value>, String)], comment_part: &str) -> Option<usize> {
        rules.iter().position(|(_, c)| c.contains(comment_part))
    }

    #[test]
    fn batch_replaces_the_table_atomically_with_drop_policy_chains() {
        let v = ruleset("oxivpn", &policy());
        let cmds = v["nftables"].as_array().unwrap();
        assert_eq!(cmds[0]["add"]["table"]["name"], "oxivpn");
        assert_eq!(cmds[1]["delete"]["table"]["name"], "oxivpn");
        assert_eq!(cmds[2]["add"]["table"]["family"], "inet");
        let chains: Vec<_> = cmds
            .iter()
            .filter_map(|c| c["add"]["chain"].as_object())
            .collect();
        assert_eq!(chains.len(), 2);
        for c in chains {
            assert_eq!(c["policy"], "drop");
            assert_eq!(c["hook"], c["name"]);
        }
        // every rule belongs to our table and family
        for c in cmds.iter().filter_map(|c| c["add"]["rule"].as_object()) {
            assert_eq!(c["table"], "oxivpn");
            assert_eq!(c["family"], "inet");
        }
    }

    #[test]
    fn output_allows_only_loopback_tunnel_server_dhcp_and_nd() {
        let v = ruleset("oxivpn", &policy());
        let out = chain(&v, "output");
        let accepts: Vec<&str> = out
            .iter()
            .filter(|(e, _)| verdict(e) == "accept")
            .map(|(_, c)| c.as_str())
            .collect();
        assert_eq!(
            accepts,
            [
                "loopback",
                "into the tunnel",
                "VPN server udp 198.18.0.1:1194",
                "DHCP",
                "IPv6 neighbour discovery / router solicitation"
            ]
        );
        let server = &out[position(&out, "VPN server").unwrap()].0;
        assert_eq!(server[0]["match"]["left"]["payload"]["field"], "daddr");
        assert_eq!(server[0]["match"]["right"], "198.18.0.1");
        assert_eq!(server[1]["match"]["left"]["payload"]["protocol"], "udp");
        assert_eq!(server[1]["match"]["right"], 1194);
        // the last rule is the counted drop
        let (last, c) = out.last().unwrap();
        assert_eq!(c, "kill switch");
        assert!(last[0].get("counter").is_some());
        // LAN is not mentioned when allow_lan is off
        assert!(position(&out, "LAN").is_none());
    }

    #[test]
    fn dns_is_dropped_before_any_lan_accept() {
        let mut p = policy();
        p.allow_lan = true;
        let v = ruleset("t", &p);
        for name in ["output", "forward"] {
            let rules = chain(&v, name);
            let dns_udp = position(&rules, "DNS (udp)").unwrap();
            let dns_tcp = position(&rules, "DNS (tcp)").unwrap();
            let lan = position(&rules, "LAN 192.168.1.0/24").unwrap();
            assert!(dns_udp < lan && dns_tcp < lan, "{name}");
            assert_eq!(verdict(&rules[dns_udp].0), "drop");
            assert_eq!(rules[dns_udp].0[0]["match"]["right"], 53);
            assert_eq!(rules[lan].0[0]["match"]["right"]["prefix"]["len"], 24);
        }
    }

    #[test]
    fn tunnel_server_on_port_53_still_works() {
        let mut p = policy();
        p.endpoints[0].port = 53;
        let out = chain(&ruleset("t", &p), "output");
        assert!(position(&out, "VPN server").unwrap() < position(&out, "DNS (udp)").unwrap());
    }

    #[test]
    fn ipv6_is_blocked_everywhere_without_tunnel_ipv6_and_allowed_into_it_with() {
        let mut p = policy();
        p.allow_lan = true;
        p.lan_prefixes.push("fd00:1::/64".parse().unwrap());
        let out = chain(&ruleset("t", &p), "output");
        let tun_v6_drop = position(&out, "the tunnel carries no IPv6").unwrap();
        assert!(tun_v6_drop < position(&out, "into the tunnel").unwrap());
        assert!(out.iter().all(|(_, c)| c != "LAN fd00:1::/64"));
        // ND still passes (before the blanket IPv6 drop)
        let nd = position(&out, "neighbour discovery").unwrap();
        let last_v6_drop = out
            .iter()
            .rposition(|(_, c)| c == "the tunnel carries no IPv6")
            .unwrap();
        assert!(nd < last_v6_drop);

        p.tunnel_ipv6 = true;
        let out = chain(&ruleset("t", &p), "output");
        assert!(position(&out, "the tunnel carries no IPv6").is_none());
        let lan6 = position(&out, "LAN fd00:1::/64").unwrap();
        assert_eq!(
            out[lan6].0[0]["match"]["left"]["payload"]["protocol"],
            "ip6"
        );
    }

    #[test]
    fn lan_prefixes_are_truncated_deduplicated_and_only_private() {
        let mut p = policy();
        p.allow_lan = true;
        p.lan_prefixes = vec![
            "192.168.1.2/24".parse().unwrap(),
            "192.168.1.0/24".parse().unwrap(),
            "10.1.2.3/1".parse().unwrap(), // widened by a rogue DHCP server
            "203.0.113.0/24".parse().unwrap(), // public: never LAN
        ];
        let out = chain(&ruleset("t", &p), "output");
        let lans: Vec<&str> = out
            .iter()
            .map(|(_, c)| c.as_str())
            .filter(|c| c.starts_with("LAN ") && !c.contains("broadcast"))
            .collect();
        assert_eq!(lans, ["LAN 192.168.1.0/24"]);
        assert!(is_lan_prefix(&"169.254.0.0/16".parse().unwrap()));
        assert!(is_lan_prefix(&"fe80::/64".parse().unwrap()));
        assert!(!is_lan_prefix(&"0.0.0.0/0".parse().unwrap()));
        assert!(!is_lan_prefix(&"2001:db8::/32".parse().unwrap()));
    }

    #[test]
    fn without_a_tunnel_yet_only_the_server_leaves() {
        let mut p = policy();
        p.tunnel_iface = None;
        let v = ruleset("t", &p);
        let out = chain(&v, "output");
        assert!(position(&out, "into the tunnel").is_none());
        let fwd = chain(&v, "forward");
        assert!(fwd.iter().all(|(e, _)| verdict(e) == "drop"));
    }

    #[test]
    fn endpoint_mark_and_tcp_and_ipv6_server() {
        let mut p = policy();
        p.endpoint_mark = Some(0x6f78);
        p.endpoints = vec![Endpoint {
            addr: "2001:db8::1".parse().unwrap(),
            port: 443,
            transport: Transport::Tcp,
        }];
        let out = chain(&ruleset("t", &p), "output");
        let (e, c) = &out[position(&out, "VPN server").unwrap()];
        assert_eq!(c, "VPN server tcp [2001:db8::1]:443");
        assert_eq!(e[0]["match"]["left"]["payload"]["protocol"], "ip6");
        assert_eq!(e[1]["match"]["left"]["payload"]["protocol"], "tcp");
        assert_eq!(e[2]["match"]["left"]["meta"]["key"], "mark");
        assert_eq!(e[2]["match"]["right"], 0x6f78);
        // the server stays reachable over IPv6 even though the tunnel has none
        assert!(
            position(&out, "VPN server").unwrap()
                < out
                    .iter()
                    .rposition(|(_, c)| c == "the tunnel carries no IPv6")
                    .unwrap()
        );
    }

    #[test]
    fn removal_tolerates_a_missing_table() {
        let v = removal("oxivpn");
        let cmds = v["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].get("add").is_some());
        assert!(cmds[1].get("delete").is_some());
    }
}
