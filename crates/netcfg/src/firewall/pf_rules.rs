//! The kill switch on macOS as pf rules for one anchor: the same policy as the nftables
//! rules ([`super::nft_rules`]) and the WFP filters ([`super::wfp_rules`]). Pure text,
//! unit-tested on every OS; `macos.rs` loads it with `pfctl -a <anchor> -f -`.
//!
//! The anchor is `com.apple/250.<table>`: macOS's stock /etc/pf.conf evaluates
//! `anchor "com.apple/*"`, so our rules take effect without editing the main ruleset.
//! Every rule is `quick` (first match wins, like WFP weights), ending in a quick block;
//! only outgoing packets are filtered (pf keeps state, so replies pass).

use std::fmt::Write;

use super::{is_lan_prefix, FirewallPolicy, Transport};

/// The pf anchor holding our rules.
pub fn anchor_name(table: &str) -> String {
    format!("com.apple/250.{table}")
}

/// pf interface names are short alphanumerics (utun7, en0): anything else is refused
/// rather than pasted into a ruleset.
pub fn is_pf_iface(name: &str) -> bool {
    !name.is_empty() && name.len() <= 15 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The anchor's ruleset. A tunnel name that is not a plain interface name is left out
/// (so nothing passes into it) and noted in a comment.
pub fn pf_rules(p: &FirewallPolicy) -> String {
    let mut r = String::from("# OxiVPN kill switch (generated; do not edit)\n");
    r.push_str("pass out quick on lo0 all\n");
    match p.tunnel_iface.as_deref() {
        Some(t) if is_pf_iface(t) => {
            let _ = writeln!(r, "pass out quick on {t} inet all");
            if p.tunnel_ipv6 {
                let _ = writeln!(r, "pass out quick on {t} inet6 all");
            }
        }
        Some(_) => r.push_str("# tunnel interface name refused (not alphanumeric)\n"),
        None => {}
    }
    for ep in &p.endpoints {
        let proto = match ep.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        let fam = if ep.addr.is_ipv4() { "inet" } else { "inet6" };
        let _ = writeln!(
            r,
            "pass out quick {fam} proto {proto} from any to {} port {}",
            ep.addr, ep.port
        );
    }
    r.push_str("pass out quick inet proto udp from any port 68 to any port 67\n");
    r.push_str(
        "pass out quick inet6 proto icmp6 all icmp6-type { routersol, routeradv, neighbrsol, neighbradv }\n",
    );
    r.push_str("block drop out quick proto { udp, tcp } from any to any port 53\n");
    if p.allow_lan {
        for net in p.lan_prefixes.iter().filter(|n| is_lan_prefix(n)) {
            let fam = if net.addr().is_ipv4() {
                "inet"
            } else {
                "inet6"
            };
            let _ = writeln!(r, "pass out quick {fam} from any to {net}");
        }
        r.push_str("pass out quick inet from any to 255.255.255.255\n");
        r.push_str("pass out quick inet from any to 224.0.0.0/24\n");
    }
    r.push_str("block drop out quick all\n");
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Endpoint;

    fn policy() -> FirewallPolicy {
        FirewallPolicy {
            endpoints: vec![
                Endpoint {
                    addr: "198.51.100.7".parse().unwrap(),
                    port: 1194,
                    transport: Transport::Udp,
                },
                Endpoint {
                    addr: "2001:db8::7".parse().unwrap(),
                    port: 443,
                    transport: Transport::Tcp,
                },
            ],
            tunnel_iface: Some("utun7".into()),
            allow_lan: false,
            lan_prefixes: vec![
                "192.168.1.0/24".parse().unwrap(),
                "203.0.113.0/24".parse().unwrap(),
            ],
            tunnel_ipv6: false,
            endpoint_mark: None,
        }
    }

    #[test]
    fn rules_are_the_kill_switch_policy_in_order() {
        let text = pf_rules(&policy());
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            vec![
                "pass out quick on lo0 all",
                "pass out quick on utun7 inet all",
                "pass out quick inet proto udp from any to 198.51.100.7 port 1194",
                "pass out quick inet6 proto tcp from any to 2001:db8::7 port 443",
                "pass out quick inet proto udp from any port 68 to any port 67",
                "pass out quick inet6 proto icmp6 all icmp6-type { routersol, routeradv, neighbrsol, neighbradv }",
                "block drop out quick proto { udp, tcp } from any to any port 53",
                "block drop out quick all",
            ]
        );
    }

    #[test]
    fn ipv6_tunnel_and_lan() {
        let mut p = policy();
        p.tunnel_ipv6 = true;
        p.allow_lan = true;
        let text = pf_rules(&p);
        assert!(text.contains("pass out quick on utun7 inet6 all\n"));
        assert!(text.contains("pass out quick inet from any to 192.168.1.0/24\n"));
        // Public prefixes never count as LAN (TunnelVision).
        assert!(!text.contains("203.0.113.0/24"));
        // LAN passes come after the DNS block, so LAN DNS stays blocked.
        let dns = text.find("port 53").unwrap();
        assert!(dns < text.find("192.168.1.0/24").unwrap());
        assert!(text.ends_with("block drop out quick all\n"));
    }

    #[test]
    fn before_the_tunnel_and_odd_names() {
        let mut p = policy();
        p.tunnel_iface = None;
        assert!(!pf_rules(&p).contains(" on utun"));
        p.tunnel_iface = Some("utun7 all\npass out all".into());
        let text = pf_rules(&p);
        assert!(!text.contains("pass out all\n"), "{text}");
        assert!(text.contains("refused"));
        assert_eq!(anchor_name("oxivpn"), "com.apple/250.oxivpn");
    }
}
