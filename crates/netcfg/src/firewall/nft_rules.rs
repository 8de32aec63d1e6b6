//! Policy -> the rules of our nftables table. PURE: no I/O, so every rule is unit-tested
//! here; `nft_batch` turns them into one nfnetlink transaction and the root tests check
//! that the kernel does what the rules say.
//!
//! Matching is interface-based for the tunnel (`oifname` = the TUN's name) and
//! address-based for the tunnel's own packets (server address + protocol + port, optionally
//! also the socket's fwmark). Chains use policy `drop`; a drop in our table is final for
//! the packet whatever other tables say, while our accepts only stop OUR table's checks.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::{is_lan_prefix, Endpoint, FirewallPolicy, Transport};

/// nftables family of our table: one table filters IPv4 and IPv6.
pub const FAMILY: &str = "inet";

/// ICMPv6 that IPv6 needs to work at all on a link (router solicitation, neighbour
/// solicitation / advertisement); sent with hop limit 255 only, so nothing routed can pose
/// as it.
const ND_TYPES: [u8; 3] = [133, 135, 136];

/// Our base chains, each hooked where its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Chain {
    /// The machine's own packets.
    Output,
    /// What this machine routes for others (containers, VMs, a shared connection).
    Forward,
}

impl Chain {
    pub const ALL: [Chain; 2] = [Chain::Output, Chain::Forward];

    pub fn name(self) -> &'static str {
        match self {
            Chain::Output => "output",
            Chain::Forward => "forward",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Udp,
    Tcp,
}

impl L4 {
    /// The IPPROTO_* number.
    pub fn number(self) -> u8 {
        match self {
            L4::Udp => 17,
            L4::Tcp => 6,
        }
    }
}

/// One condition of a rule, as nft would write it. The encoder adds what nft adds for
/// each (`ip daddr` also checks that the packet IS IPv4, `udp dport` that it is UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `oifname "x"`
    OifName(String),
    /// `iifname "x"`
    IifName(String),
    /// `meta nfproto ipv4|ipv6`
    NfProto(IpFamily),
    /// `ip daddr a.b.c.d/n` / `ip6 daddr x::/n` (a host address is a full-length prefix).
    Daddr(IpNet),
    /// `udp|tcp dport n`
    Dport(L4, u16),
    /// `udp|tcp sport n`
    Sport(L4, u16),
    /// `ip6 hoplimit n`
    HopLimit(u8),
    /// `icmpv6 type n`
    Icmpv6Type(u8),
    /// `meta mark n`
    Mark(u32),
    /// `ct state established,related`
    CtEstablishedOrRelated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

/// One rule: all matches AND, then the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: Chain,
    pub matches: Vec<Match>,
    /// Count what the rule matched (`nft list table` shows it).
    pub counter: bool,
    pub verdict: Verdict,
    pub comment: String,
}

fn rule(chain: Chain, matches: Vec<Match>, verdict: Verdict, comment: impl Into<String>) -> Rule {
    Rule {
        chain,
        matches,
        counter: false,
        verdict,
        comment: comment.into(),
    }
}

/// Ordered rules of both chains; everything not accepted falls to the chains' drop policy.
///
/// `forwarding`: this machine routes packets for others (IPv4 or IPv6 forwarding on, read
/// when the table is written). Only then does the forward chain get its stateful "replies
/// from the tunnel" rule: any `ct` expression starts connection tracking for the whole
/// network namespace, which then costs every packet of the machine (about 6 % of the
/// client's CPU in a download through the tunnel, and ~1 ms of connect while it starts),
/// for a chain that sees no packet while forwarding is off. Forwarding turned on later
/// gets replies from the tunnel at the next apply (reconnect); until then they are
/// dropped, never leaked.
pub fn nft_rules(p: &FirewallPolicy, forwarding: bool) -> Vec<Rule> {
    use Chain::*;
    use Match::*;
    use Verdict::*;
    let mut out = vec![rule(Output, vec![OifName("lo".into())], Accept, "loopback")];
    if let Some(tun) = &p.tunnel_iface {
        if !p.tunnel_ipv6 {
            out.push(rule(
                Output,
                vec![OifName(tun.clone()), NfProto(IpFamily::V6)],
                Drop,
                "the tunnel carries no IPv6",
            ));
        }
        out.push(rule(
            Output,
            vec![OifName(tun.clone())],
            Accept,
            "into the tunnel",
        ));
    }
    for ep in &p.endpoints {
        out.push(rule(
            Output,
            endpoint_matches(ep, p.endpoint_mark),
            Accept,
            format!("VPN server {ep}"),
        ));
    }
    out.push(rule(
        Output,
        vec![
            NfProto(IpFamily::V4),
            Sport(L4::Udp, 68),
            Dport(L4::Udp, 67),
        ],
        Accept,
        "DHCP",
    ));
    // One rule per type (same comment): the kernel has no "in" without a set, and these
    // three rules are what the anonymous set would hold.
    for t in ND_TYPES {
        out.push(rule(
            Output,
            vec![HopLimit(255), Icmpv6Type(t)],
            Accept,
            "IPv6 neighbour discovery / router solicitation",
        ));
    }
    out.extend(tail(Output, p));

    if let Some(tun) = &p.tunnel_iface {
        if !p.tunnel_ipv6 {
            out.push(rule(
                Forward,
                vec![OifName(tun.clone()), NfProto(IpFamily::V6)],
                Drop,
                "the tunnel carries no IPv6",
            ));
        }
        out.push(rule(
            Forward,
            vec![OifName(tun.clone())],
            Accept,
            "into the tunnel",
        ));
        if forwarding {
            out.push(rule(
                Forward,
                vec![IifName(tun.clone()), CtEstablishedOrRelated],
                Accept,
                "replies from the tunnel",
            ));
        }
    }
    out.extend(tail(Forward, p));
    out
}

/// DNS only through the tunnel, IPv6 only if the tunnel has it, then the LAN toggle, then
/// a counted drop (the chain policy would drop too; the counter shows what was stopped).
fn tail(chain: Chain, p: &FirewallPolicy) -> Vec<Rule> {
    use Match::*;
    use Verdict::*;
    let mut out = Vec::new();
    for (l4, name) in [(L4::Udp, "udp"), (L4::Tcp, "tcp")] {
        out.push(rule(
            chain,
            vec![Dport(l4, 53)],
            Drop,
            format!("DNS ({name}) only through the tunnel"),
        ));
    }
    if !p.tunnel_ipv6 {
        out.push(rule(
            chain,
            vec![NfProto(IpFamily::V6)],
            Drop,
            "the tunnel carries no IPv6",
        ));
    }
    if p.allow_lan {
        let mut nets: Vec<IpNet> = p.lan_prefixes.iter().map(IpNet::trunc).collect();
        nets.retain(is_lan_prefix);
        nets.retain(|n| p.tunnel_ipv6 || matches!(n, IpNet::V4(_)));
        nets.sort();
        nets.dedup();
        for net in nets {
            out.push(rule(chain, vec![Daddr(net)], Accept, format!("LAN {net}")));
        }
        // Link-local broadcast / multicast (DHCP-less discovery, mDNS) stays on the link.
        for net in [
            Ipv4Net::from(Ipv4Addr::BROADCAST),
            Ipv4Net::new(Ipv4Addr::new(224, 0, 0, 0), 24).unwrap_or_default(),
        ] {
            out.push(rule(
                chain,
                vec![Daddr(IpNet::V4(net))],
                Accept,
                "LAN broadcast / link-local multicast",
            ));
        }
    }
    out.push(Rule {
        counter: true,
        ..rule(chain, Vec::new(), Drop, "kill switch")
    });
    out
}

fn endpoint_matches(ep: &Endpoint, mark: Option<u32>) -> Vec<Match> {
    let l4 = match ep.transport {
        Transport::Udp => L4::Udp,
        Transport::Tcp => L4::Tcp,
    };
    let mut v = vec![
        Match::Daddr(IpNet::from(ep.addr)),
        Match::Dport(l4, ep.port),
    ];
    if let Some(m) = mark {
        v.push(Match::Mark(m));
    }
    v
}

/// The IP family a match implies, if any (for the encoder's `meta nfproto` dependency).
pub fn family_of(net: &IpNet) -> IpFamily {
    match net.addr() {
        IpAddr::V4(_) => IpFamily::V4,
        IpAddr::V6(_) => IpFamily::V6,
    }
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

    fn chain(rules: &[Rule], c: Chain) -> Vec<Rule> {
        rules.iter().filter(|r| r.chain == c).cloned().collect()
    }

    fn position(rules: &[Rule], comment_part: &str) -> Option<usize> {
        rules.iter().position(|r| r.comment.contains(comment_part))
    }

    #[test]
    fn output_allows_only_loopback_tunnel_server_dhcp_and_nd() {
        let out = chain(&nft_rules(&policy(), true), Chain::Output);
        let accepts: Vec<&str> = out
            .iter()
            .filter(|r| r.verdict == Verdict::Accept)
            .map(|r| r.comment.as_str())
            .collect();
        let nd = "IPv6 neighbour discovery / router solicitation";
        assert_eq!(
            accepts,
            [
                "loopback",
                "into the tunnel",
                "VPN server udp 198.18.0.1:1194",
                "DHCP",
                nd,
                nd,
                nd
            ]
        );
        let server = &out[position(&out, "VPN server").unwrap()];
        assert_eq!(
            server.matches,
            [
                Match::Daddr("198.18.0.1/32".parse().unwrap()),
                Match::Dport(L4::Udp, 1194)
            ]
        );
        let nd_types: Vec<_> = out
            .iter()
            .filter(|r| r.comment == nd)
            .map(|r| r.matches.clone())
            .collect();
        assert_eq!(
            nd_types,
            [133, 135, 136].map(|t| vec![Match::HopLimit(255), Match::Icmpv6Type(t)])
        );
        // the last rule is the counted drop, matching everything
        let last = out.last().unwrap();
        assert_eq!(last.comment, "kill switch");
        assert!(last.counter && last.matches.is_empty() && last.verdict == Verdict::Drop);
        // LAN is not mentioned when allow_lan is off
        assert!(position(&out, "LAN").is_none());
        // only the kill switch rule counts
        assert_eq!(out.iter().filter(|r| r.counter).count(), 1);
    }

    #[test]
    fn dns_is_dropped_before_any_lan_accept() {
        let mut p = policy();
        p.allow_lan = true;
        let all = nft_rules(&p, true);
        for c in Chain::ALL {
            let rules = chain(&all, c);
            let dns_udp = position(&rules, "DNS (udp)").unwrap();
            let dns_tcp = position(&rules, "DNS (tcp)").unwrap();
            let lan = position(&rules, "LAN 192.168.1.0/24").unwrap();
            assert!(dns_udp < lan && dns_tcp < lan, "{c:?}");
            assert_eq!(rules[dns_udp].verdict, Verdict::Drop);
            assert_eq!(rules[dns_udp].matches, [Match::Dport(L4::Udp, 53)]);
            assert_eq!(rules[dns_tcp].matches, [Match::Dport(L4::Tcp, 53)]);
            assert_eq!(
                rules[lan].matches,
                [Match::Daddr("192.168.1.0/24".parse().unwrap())]
            );
            let bcast: Vec<_> = rules
                .iter()
                .filter(|r| r.comment.contains("broadcast"))
                .map(|r| r.matches.clone())
                .collect();
            assert_eq!(
                bcast,
                [
                    vec![Match::Daddr("255.255.255.255/32".parse().unwrap())],
                    vec![Match::Daddr("224.0.0.0/24".parse().unwrap())]
                ]
            );
        }
    }

    #[test]
    fn tunnel_server_on_port_53_still_works() {
        let mut p = policy();
        p.endpoints[0].port = 53;
        let out = chain(&nft_rules(&p, true), Chain::Output);
        assert!(position(&out, "VPN server").unwrap() < position(&out, "DNS (udp)").unwrap());
    }

    #[test]
    fn ipv6_is_blocked_everywhere_without_tunnel_ipv6_and_allowed_into_it_with() {
        let mut p = policy();
        p.allow_lan = true;
        p.lan_prefixes.push("fd00:1::/64".parse().unwrap());
        let out = chain(&nft_rules(&p, true), Chain::Output);
        let tun_v6_drop = position(&out, "the tunnel carries no IPv6").unwrap();
        assert!(tun_v6_drop < position(&out, "into the tunnel").unwrap());
        assert_eq!(
            out[tun_v6_drop].matches,
            [Match::OifName("oxi0".into()), Match::NfProto(IpFamily::V6)]
        );
        assert!(out.iter().all(|r| r.comment != "LAN fd00:1::/64"));
        // ND still passes (before the blanket IPv6 drop)
        let nd = position(&out, "neighbour discovery").unwrap();
        let last_v6_drop = out
            .iter()
            .rposition(|r| r.comment == "the tunnel carries no IPv6")
            .unwrap();
        assert!(nd < last_v6_drop);
        assert_eq!(out[last_v6_drop].matches, [Match::NfProto(IpFamily::V6)]);

        p.tunnel_ipv6 = true;
        let out = chain(&nft_rules(&p, true), Chain::Output);
        assert!(position(&out, "the tunnel carries no IPv6").is_none());
        let lan6 = position(&out, "LAN fd00:1::/64").unwrap();
        assert_eq!(
            family_of(match &out[lan6].matches[0] {
                Match::Daddr(n) => n,
                m => panic!("{m:?}"),
            }),
            IpFamily::V6
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
        let out = chain(&nft_rules(&p, true), Chain::Output);
        let lans: Vec<&str> = out
            .iter()
            .map(|r| r.comment.as_str())
            .filter(|c| c.starts_with("LAN ") && !c.contains("broadcast"))
            .collect();
        assert_eq!(lans, ["LAN 192.168.1.0/24"]);
    }

    #[test]
    fn without_a_tunnel_yet_only_the_server_leaves() {
        let mut p = policy();
        p.tunnel_iface = None;
        let all = nft_rules(&p, true);
        let out = chain(&all, Chain::Output);
        assert!(position(&out, "into the tunnel").is_none());
        assert!(out.iter().all(|r| !r
            .matches
            .iter()
            .any(|m| matches!(m, Match::OifName(n) if n != "lo"))));
        let fwd = chain(&all, Chain::Forward);
        assert!(fwd.iter().all(|r| r.verdict == Verdict::Drop));
    }

    #[test]
    fn no_connection_tracking_unless_the_machine_forwards() {
        let all = nft_rules(&policy(), false);
        assert!(
            all.iter()
                .all(|r| !r.matches.contains(&Match::CtEstablishedOrRelated)),
            "{all:#?}"
        );
        // The rest of the forward chain is the same: into the tunnel, then the tail.
        let with = chain(&nft_rules(&policy(), true), Chain::Forward);
        let without = chain(&all, Chain::Forward);
        assert_eq!(without.len() + 1, with.len());
        assert!(position(&without, "into the tunnel").is_some());
        assert_eq!(
            chain(&all, Chain::Output),
            chain(&nft_rules(&policy(), true), Chain::Output)
        );
    }

    #[test]
    fn forward_lets_tunnel_replies_back_only_when_established() {
        let fwd = chain(&nft_rules(&policy(), true), Chain::Forward);
        let r = &fwd[position(&fwd, "replies from the tunnel").unwrap()];
        assert_eq!(
            r.matches,
            [Match::IifName("oxi0".into()), Match::CtEstablishedOrRelated]
        );
        assert_eq!(r.verdict, Verdict::Accept);
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
        let out = chain(&nft_rules(&p, true), Chain::Output);
        let r = &out[position(&out, "VPN server").unwrap()];
        assert_eq!(r.comment, "VPN server tcp [2001:db8::1]:443");
        assert_eq!(
            r.matches,
            [
                Match::Daddr("2001:db8::1/128".parse().unwrap()),
                Match::Dport(L4::Tcp, 443),
                Match::Mark(0x6f78)
            ]
        );
        // the server stays reachable over IPv6 even though the tunnel has none
        assert!(
            position(&out, "VPN server").unwrap()
                < out
                    .iter()
                    .rposition(|r| r.comment == "the tunnel carries no IPv6")
                    .unwrap()
        );
    }
}
