//! The kill switch as Windows Filtering Platform filters: the same policy as the nftables
//! rules ([`super::nft_rules`]), expressed as OS-neutral filter descriptions so the logic
//! is unit-tested on every OS. `windows.rs` turns each [`WfpFilter`] into an
//! `FWPM_FILTER0` in our own sublayer, at the ALE connect layers (egress, like the
//! nftables output chain).
//!
//! WFP evaluates a sublayer's filters by weight, highest first, and the first
//! permit/block decides; so the order is: permits for loopback, the tunnel, the servers,
//! DHCP and neighbour discovery; then the DNS block (block-outside-dns); then the LAN
//! permits; then block everything.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::{is_lan_prefix, FirewallPolicy, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Permit,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// FWP_CONDITION_FLAG_IS_LOOPBACK set.
    Loopback,
    /// The packet leaves through the interface with this alias (the TUN); resolved to a
    /// LUID when applied.
    Interface(String),
    RemoteAddr(IpNet),
    RemotePort(u16),
    LocalPort(u16),
    /// IPPROTO_* number (6 tcp, 17 udp, 58 icmpv6).
    Protocol(u8),
    /// ICMP type range (WFP keeps the ICMP type in the local-port field).
    IcmpTypes(u8, u8),
    /// The connecting program's executable (ALE app id): the Windows counterpart of the
    /// Linux `endpoint_mark`, without the socket having to do anything.
    App(String),
}

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// One filter; all conditions must match (different fields AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WfpFilter {
    pub name: String,
    pub family: Family,
    pub action: Action,
    /// 0..=15 (FWP_UINT8 weight); higher is evaluated first.
    pub weight: u8,
    pub conditions: Vec<Condition>,
}

pub const W_PERMIT: u8 = 15;
pub const W_BLOCK_DNS: u8 = 10;
pub const W_LAN: u8 = 8;
pub const W_BLOCK_ALL: u8 = 0;

fn f(name: &str, family: Family, action: Action, weight: u8, c: Vec<Condition>) -> WfpFilter {
    WfpFilter {
        name: format!("OxiVPN kill switch: {name}"),
        family,
        action,
        weight,
        conditions: c,
    }
}

fn family_of(addr: &IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// The filters for `policy` (the kill switch). With `app` (the helper's own executable)
/// only that program may reach the VPN servers around the tunnel.
pub fn wfp_rules(policy: &FirewallPolicy, app: Option<&str>) -> Vec<WfpFilter> {
    use Action::*;
    use Condition::*;
    use Family::*;
    let mut out = Vec::new();
    for fam in [V4, V6] {
        out.push(f("loopback", fam, Permit, W_PERMIT, vec![Loopback]));
    }
    if let Some(tun) = &policy.tunnel_iface {
        out.push(f(
            "into the tunnel",
            V4,
            Permit,
            W_PERMIT,
            vec![Interface(tun.clone())],
        ));
        if policy.tunnel_ipv6 {
            out.push(f(
                "into the tunnel",
                V6,
                Permit,
                W_PERMIT,
                vec![Interface(tun.clone())],
            ));
        }
    }
    for ep in &policy.endpoints {
        let proto = match ep.transport {
            Transport::Udp => PROTO_UDP,
            Transport::Tcp => PROTO_TCP,
        };
        let mut conds = vec![
            RemoteAddr(IpNet::from(ep.addr)),
            RemotePort(ep.port),
            Protocol(proto),
        ];
        if let Some(exe) = app {
            conds.push(App(exe.to_owned()));
        }
        out.push(f(
            &format!("VPN server {ep}"),
            family_of(&ep.addr),
            Permit,
            W_PERMIT,
            conds,
        ));
    }
    out.push(f(
        "DHCPv4",
        V4,
        Permit,
        W_PERMIT,
        vec![Protocol(PROTO_UDP), LocalPort(68), RemotePort(67)],
    ));
    // Router solicitation .. neighbour advertisement (133..=136): IPv6 keeps working on
    // the link even when the tunnel has no IPv6.
    out.push(f(
        "IPv6 neighbour discovery",
        V6,
        Permit,
        W_PERMIT,
        vec![Protocol(PROTO_ICMPV6), IcmpTypes(133, 136)],
    ));
    out.extend(block_dns_filters());
    if policy.allow_lan {
        for net in policy.lan_prefixes.iter().filter(|n| is_lan_prefix(n)) {
            let fam = family_of(&net.addr());
            out.push(f(
                &format!("LAN {net}"),
                fam,
                Permit,
                W_LAN,
                vec![RemoteAddr(*net)],
            ));
        }
        for net in [
            IpNet::from(IpAddr::V4(Ipv4Addr::BROADCAST)),
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(224, 0, 0, 0), 24).unwrap_or_default()),
        ] {
            out.push(f(
                &format!("LAN {net}"),
                V4,
                Permit,
                W_LAN,
                vec![RemoteAddr(net)],
            ));
        }
    }
    for fam in [V4, V6] {
        out.push(f("block everything else", fam, Block, W_BLOCK_ALL, vec![]));
    }
    out
}

/// DNS (udp/tcp 53) blocked on every interface but the tunnel (whose permit weighs
/// more): the kill switch's DNS rule, and on its own OpenVPN's `block-outside-dns`.
pub fn block_dns_filters() -> Vec<WfpFilter> {
    let mut out = Vec::new();
    for fam in [Family::V4, Family::V6] {
        for proto in [PROTO_UDP, PROTO_TCP] {
            out.push(f(
                "DNS outside the tunnel",
                fam,
                Action::Block,
                W_BLOCK_DNS,
                vec![Condition::Protocol(proto), Condition::RemotePort(53)],
            ));
        }
    }
    out
}

/// `block-outside-dns` without the kill switch: DNS only through the tunnel.
pub fn block_outside_dns(tunnel_iface: &str) -> Vec<WfpFilter> {
    let mut out = Vec::new();
    for fam in [Family::V4, Family::V6] {
        out.push(f(
            "DNS into the tunnel",
            fam,
            Action::Permit,
            W_PERMIT,
            vec![
                Condition::Interface(tunnel_iface.to_owned()),
                Condition::RemotePort(53),
            ],
        ));
        out.push(f(
            "DNS on loopback",
            fam,
            Action::Permit,
            W_PERMIT,
            vec![Condition::Loopback],
        ));
    }
    out.extend(block_dns_filters());
    out
}

/// What a set of filters decides for an outgoing packet: the model the tests check the
/// filters against (first match by weight, ties in list order, no match = permit, as
/// WFP does for a sublayer with no matching filter).
pub fn decide(filters: &[WfpFilter], pkt: &Packet<'_>) -> Action {
    let mut sorted: Vec<&WfpFilter> = filters.iter().collect();
    // Stable: equal weights keep list order.
    sorted.sort_by_key(|flt| std::cmp::Reverse(flt.weight));
    sorted
        .into_iter()
        .filter(|flt| flt.family == family_of(&pkt.dst))
        .find(|flt| flt.conditions.iter().all(|c| matches(c, pkt)))
        .map_or(Action::Permit, |flt| flt.action)
}

/// An outgoing packet as the ALE connect layer sees it.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    pub app: &'a str,
    pub iface: &'a str,
    pub loopback: bool,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

fn matches(c: &Condition, p: &Packet<'_>) -> bool {
    match c {
        Condition::Loopback => p.loopback,
        Condition::Interface(name) => p.iface == name,
        Condition::RemoteAddr(net) => net.contains(&p.dst),
        Condition::RemotePort(port) => p.dst_port == *port,
        Condition::LocalPort(port) => p.src_port == *port,
        Condition::Protocol(n) => p.proto == *n,
        Condition::App(exe) => exe.eq_ignore_ascii_case(p.app),
        Condition::IcmpTypes(lo, hi) => {
            p.proto == PROTO_ICMPV6 && (u16::from(*lo)..=u16::from(*hi)).contains(&p.src_port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Endpoint;

    fn policy(tunnel: Option<&str>, allow_lan: bool, v6: bool) -> FirewallPolicy {
        FirewallPolicy {
            endpoints: vec![Endpoint {
                addr: "198.51.100.7".parse().unwrap(),
                port: 1194,
                transport: Transport::Udp,
            }],
            tunnel_iface: tunnel.map(str::to_owned),
            allow_lan,
            lan_prefixes: vec![
                "192.168.1.0/24".parse().unwrap(),
                "203.0.113.0/24".parse().unwrap(),
            ],
            tunnel_ipv6: v6,
            endpoint_mark: None,
        }
    }

    const HELPER: &str = r"C:\Program Files\OxiVPN\oxivpn-helper.exe";

    fn pkt(iface: &'static str, dst: &str, proto: u8, dport: u16) -> Packet<'static> {
        Packet {
            app: HELPER,
            iface,
            loopback: iface == "lo",
            dst: dst.parse().unwrap(),
            proto,
            src_port: 50000,
            dst_port: dport,
        }
    }

    #[test]
    fn tunnel_server_and_loopback_pass_everything_else_is_blocked() {
        let fl = wfp_rules(&policy(Some("OxiVPN"), false, false), None);
        let permit = Action::Permit;
        let block = Action::Block;
        assert_eq!(
            decide(&fl, &pkt("OxiVPN", "8.8.8.8", PROTO_TCP, 443)),
            permit
        );
        assert_eq!(
            decide(&fl, &pkt("OxiVPN", "10.8.0.1", PROTO_UDP, 53)),
            permit
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "198.51.100.7", PROTO_UDP, 1194)),
            permit
        );
        assert_eq!(
            decide(&fl, &pkt("lo", "127.0.0.1", PROTO_TCP, 8080)),
            permit
        );
        // Same server, other port or protocol: blocked.
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "198.51.100.7", PROTO_TCP, 1194)),
            block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "198.51.100.7", PROTO_UDP, 53)),
            block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "8.8.8.8", PROTO_TCP, 443)),
            block
        );
        // IPv6 is blocked when the tunnel has none, even into the tunnel.
        assert_eq!(
            decide(&fl, &pkt("OxiVPN", "2001:db8::1", PROTO_TCP, 443)),
            block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "2001:db8::1", PROTO_TCP, 443)),
            block
        );
    }

    #[test]
    fn before_the_tunnel_exists_only_the_server_passes() {
        let fl = wfp_rules(&policy(None, false, false), None);
        assert!(fl.iter().all(|f| !f
            .conditions
            .iter()
            .any(|c| matches!(c, Condition::Interface(_)))));
        assert_eq!(
            decide(&fl, &pkt("OxiVPN", "8.8.8.8", PROTO_TCP, 443)),
            Action::Block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "198.51.100.7", PROTO_UDP, 1194)),
            Action::Permit
        );
    }

    #[test]
    fn dhcp_and_neighbour_discovery_pass() {
        let fl = wfp_rules(&policy(Some("OxiVPN"), false, false), None);
        let mut dhcp = pkt("Ethernet", "192.168.1.1", PROTO_UDP, 67);
        dhcp.src_port = 68;
        assert_eq!(decide(&fl, &dhcp), Action::Permit);
        let mut ns = pkt("Ethernet", "ff02::1:ff00:1", PROTO_ICMPV6, 0);
        ns.src_port = 135;
        assert_eq!(decide(&fl, &ns), Action::Permit);
        ns.src_port = 128; // echo request
        assert_eq!(decide(&fl, &ns), Action::Block);
    }

    #[test]
    fn allow_lan_passes_private_lan_but_never_lan_dns_or_public_prefixes() {
        let fl = wfp_rules(&policy(Some("OxiVPN"), true, false), None);
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "192.168.1.20", PROTO_TCP, 445)),
            Action::Permit
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "192.168.1.1", PROTO_UDP, 53)),
            Action::Block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "192.168.1.1", PROTO_TCP, 53)),
            Action::Block
        );
        // A public prefix in lan_prefixes (e.g. a pushed route) is not LAN.
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "203.0.113.5", PROTO_TCP, 80)),
            Action::Block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "255.255.255.255", PROTO_UDP, 9)),
            Action::Permit
        );
        let fl = wfp_rules(&policy(Some("OxiVPN"), false, false), None);
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "192.168.1.20", PROTO_TCP, 445)),
            Action::Block
        );
    }

    #[test]
    fn ipv6_tunnel_passes_v6_into_the_tunnel_only() {
        let fl = wfp_rules(&policy(Some("OxiVPN"), false, true), None);
        assert_eq!(
            decide(&fl, &pkt("OxiVPN", "2001:db8::1", PROTO_TCP, 443)),
            Action::Permit
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "2001:db8::1", PROTO_TCP, 443)),
            Action::Block
        );
    }

    #[test]
    fn block_outside_dns_blocks_dns_elsewhere_and_nothing_else() {
        let fl = block_outside_dns("OxiVPN");
        assert_eq!(
            decide(&fl, &pkt("OxiVPN", "10.8.0.1", PROTO_UDP, 53)),
            Action::Permit
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "192.168.1.1", PROTO_UDP, 53)),
            Action::Block
        );
        assert_eq!(
            decide(&fl, &pkt("Wi-Fi", "2001:db8::53", PROTO_TCP, 53)),
            Action::Block
        );
        assert_eq!(
            decide(&fl, &pkt("Ethernet", "8.8.8.8", PROTO_TCP, 443)),
            Action::Permit
        );
    }

    #[test]
    fn with_an_app_only_the_helper_reaches_the_server() {
        let fl = wfp_rules(&policy(Some("OxiVPN"), false, false), Some(HELPER));
        let mut p = pkt("Ethernet", "198.51.100.7", PROTO_UDP, 1194);
        assert_eq!(decide(&fl, &p), Action::Permit);
        p.app = r"C:\Users\x\evil.exe";
        assert_eq!(decide(&fl, &p), Action::Block);
        // Everything else is unchanged by the app condition.
        let mut t = pkt("OxiVPN", "8.8.8.8", PROTO_TCP, 443);
        t.app = r"C:\Users\x\browser.exe";
        assert_eq!(decide(&fl, &t), Action::Permit);
    }

    #[test]
    fn weights_fit_the_uint8_range_and_names_are_prefixed() {
        for flt in wfp_rules(&policy(Some("OxiVPN"), true, true), None) {
            assert!(flt.weight <= 15, "{flt:?}");
            assert!(flt.name.starts_with("OxiVPN kill switch: "));
        }
    }
}
