//! What the server pushed (plus the profile's own routes) in netcfg's terms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netcfg::{
    DnsConfig, IpNet, PushedRoute, RedirectGateway, RouteGateway, TunV4, TunV6, TunnelNetworkConfig,
};
use ovpn_core::config::ClientConfig;
use ovpn_core::push::{self, DhcpOption, PushedOptions, Topology};
use ovpn_profile::Profile;

/// Builds the network configuration for one connected session. Routes that cannot
/// be understood are skipped and described in the returned notes.
pub fn tunnel_network_config(
    pushed: &PushedOptions,
    profile: &Profile,
    remote: IpAddr,
) -> (TunnelNetworkConfig, Vec<String>) {
    let mut notes = Vec::new();
    let mut c = TunnelNetworkConfig {
        remotes: vec![remote],
        mtu: pushed.tun_mtu.map(u32::from),
        default_metric: pushed.route_metric.or(profile.route_metric),
        ..TunnelNetworkConfig::default()
    };
    if let Some((a, b)) = pushed.ifconfig {
        let subnet = match pushed.topology {
            Some(Topology::Subnet) => true,
            Some(Topology::Net30 | Topology::P2p) => false,
            // Without a pushed topology, a netmask-looking second address means subnet.
            None => is_netmask(b),
        };
        c.tun_v4 = Some(if subnet {
            TunV4::Subnet {
                addr: a,
                prefix_len: prefix_len(b),
            }
        } else {
            TunV4::PointToPoint { local: a, peer: b }
        });
        c.route_gateway_v4 = match &pushed.route_gateway {
            Some(push::RouteGateway::Addr(g)) => Some(*g),
            _ if !subnet => Some(b),
            _ => None,
        };
    }
    if let Some((addr, prefix_len, remote6)) = pushed.ifconfig_ipv6 {
        c.tun_v6 = Some(TunV6 { addr, prefix_len });
        c.route_gateway_v6 = remote6;
    }
    for r in &pushed.routes {
        match net4(r.network, prefix_len(r.netmask)) {
            Some(dst) => c.routes.push(PushedRoute {
                dst,
                gateway: r
                    .gateway
                    .map(|g| RouteGateway::Explicit(g.into()))
                    .unwrap_or_default(),
                metric: r.metric,
            }),
            None => notes.push(format!("pushed route {}/{} skipped", r.network, r.netmask)),
        }
    }
    for r in &pushed.routes_ipv6 {
        match IpNet::new(IpAddr::V6(r.network), r.prefix_len) {
            Ok(dst) => c.routes.push(PushedRoute {
                dst: dst.trunc(),
                gateway: r
                    .gateway
                    .map(|g| RouteGateway::Explicit(g.into()))
                    .unwrap_or_default(),
                metric: r.metric,
            }),
            Err(_) => notes.push(format!(
                "pushed route-ipv6 {}/{} skipped",
                r.network, r.prefix_len
            )),
        }
    }
    if !profile.route_nopull || pushed.routes.is_empty() {
        for r in &profile.routes {
            match profile_route(r) {
                Ok(pr) => c.routes.push(pr),
                Err(why) => notes.push(format!("profile route {} skipped: {why}", r.network)),
            }
        }
        for r in &profile.routes_ipv6 {
            match r.network.parse::<IpNet>() {
                Ok(dst) => c.routes.push(PushedRoute {
                    dst: dst.trunc(),
                    gateway: r
                        .gateway
                        .as_deref()
                        .and_then(|g| g.parse::<Ipv6Addr>().ok())
                        .map(|g| RouteGateway::Explicit(g.into()))
                        .unwrap_or_default(),
                    metric: r.metric,
                }),
                Err(_) => notes.push(format!("profile route-ipv6 {} skipped", r.network)),
            }
        }
    }
    let redirect = pushed.redirect_gateway.clone().or_else(|| {
        profile
            .redirect_gateway
            .as_ref()
            .map(|r| redirect_from_flags(&r.flags))
    });
    c.redirect = redirect.map(|r| RedirectGateway {
        def1: r.def1,
        local: r.local,
        autolocal: r.autolocal,
        block_local: r.block_local,
        bypass_dhcp: r.bypass_dhcp,
        bypass_dns: r.bypass_dns,
        ipv4: r.ipv4,
        ipv6: r.ipv6,
    });
    let local = profile_dns(profile, &mut notes);
    c.dns = dns(&merged_dns(local, pushed));
    (c, notes)
}

/// The profile's own `dhcp-option` and `dns` lines, read as the server's would be.
fn profile_dns(profile: &Profile, notes: &mut Vec<String>) -> PushedOptions {
    let lines: Vec<String> = profile
        .dhcp_options
        .iter()
        .map(|o| {
            format!(
                "dhcp-option {} {}",
                o.kind,
                o.value.as_deref().unwrap_or("")
            )
        })
        .chain(
            profile
                .dns
                .iter()
                .map(|words| format!("dns {}", words.join(" "))),
        )
        .collect();
    let mut out = PushedOptions::default();
    for line in lines {
        match push::parse_pushed(std::slice::from_ref(&line), &ClientConfig::default()) {
            Ok(o) => {
                out.dhcp_options.extend(o.dhcp_options);
                out.dns.servers.extend(o.dns.servers);
                out.dns.search_domains.extend(o.dns.search_domains);
            }
            Err(e) => notes.push(format!("profile line `{}` skipped: {e}", line.trim())),
        }
    }
    out
}

/// The profile's DNS settings with the server's added, as OpenVPN 2.6 merges them:
/// pushed `dhcp-option`s follow the profile's, and a pushed `dns server N` replaces
/// the profile's server of the same priority.
fn merged_dns(mut local: PushedOptions, pushed: &PushedOptions) -> PushedOptions {
    local
        .dhcp_options
        .extend(pushed.dhcp_options.iter().cloned());
    for (prio, server) in &pushed.dns.servers {
        local.dns.servers.insert(*prio, server.clone());
    }
    for d in &pushed.dns.search_domains {
        if !local.dns.search_domains.contains(d) {
            local.dns.search_domains.push(d.clone());
        }
    }
    local
}

fn dns(p: &PushedOptions) -> DnsConfig {
    let mut d = DnsConfig::default();
    // The 2.6 `dns` option wins over dhcp-option when both are pushed (as in OpenVPN).
    for server in p.dns.servers.values() {
        for a in &server.addresses {
            if let Some(ip) = parse_dns_address(a) {
                d.servers.push(ip);
            }
        }
        d.resolve_domains
            .extend(server.resolve_domains.iter().cloned());
    }
    d.search_domains
        .extend(p.dns.search_domains.iter().cloned());
    if d.servers.is_empty() {
        for o in &p.dhcp_options {
            match o {
                DhcpOption::Dns(ip) => d.servers.push(*ip),
                DhcpOption::Domain(s) | DhcpOption::DomainSearch(s) => {
                    if !d.search_domains.contains(s) {
                        d.search_domains.push(s.clone());
                    }
                }
                DhcpOption::Other { .. } => {}
            }
        }
    }
    d
}

/// `1.2.3.4`, `1.2.3.4:53`, `[fd00::1]:53` or a bare IPv6 address.
fn parse_dns_address(a: &str) -> Option<IpAddr> {
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Some(ip);
    }
    a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

fn redirect_from_flags(flags: &[String]) -> push::RedirectGateway {
    let has = |f: &str| flags.iter().any(|x| x == f);
    push::RedirectGateway {
        def1: has("def1"),
        local: has("local"),
        autolocal: has("autolocal"),
        bypass_dhcp: has("bypass-dhcp"),
        bypass_dns: has("bypass-dns"),
        block_local: has("block-local"),
        ipv6: has("ipv6"),
        ipv4: !has("!ipv4"),
    }
}

fn profile_route(r: &ovpn_profile::Route) -> Result<PushedRoute, String> {
    let network: Ipv4Addr = r
        .network
        .parse()
        .map_err(|_| "only literal IPv4 networks are supported".to_owned())?;
    let mask: Ipv4Addr = match r.netmask.as_deref() {
        None | Some("default") => Ipv4Addr::BROADCAST,
        Some(m) => m.parse().map_err(|_| format!("bad netmask {m:?}"))?,
    };
    if !is_netmask(mask) {
        return Err(format!("{mask} is not a netmask"));
    }
    let gateway = match r.gateway.as_deref() {
        None | Some("default") | Some("vpn_gateway") => RouteGateway::VpnGateway,
        Some("net_gateway") => RouteGateway::NetGateway,
        Some(g) => RouteGateway::Explicit(
            g.parse::<Ipv4Addr>()
                .map_err(|_| format!("unsupported gateway {g:?}"))?
                .into(),
        ),
    };
    let dst = net4(network, prefix_len(mask)).ok_or("bad network")?;
    Ok(PushedRoute {
        dst,
        gateway,
        metric: r.metric,
    })
}

fn net4(network: Ipv4Addr, len: u8) -> Option<IpNet> {
    IpNet::new(IpAddr::V4(network), len).ok().map(|n| n.trunc())
}

fn is_netmask(m: Ipv4Addr) -> bool {
    let v = u32::from(m);
    v.leading_ones() + v.trailing_zeros() == 32 && v != 0
}

fn prefix_len(m: Ipv4Addr) -> u8 {
    // leading_ones is at most 32.
    u8::try_from(u32::from(m).leading_ones()).unwrap_or(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(lines: &[&str]) -> PushedOptions {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        push::parse_pushed(&lines, &ovpn_core::config::ClientConfig::default()).unwrap()
    }

    #[test]
    fn the_profiles_own_dns_lines_come_first_and_pushed_ones_add_or_replace() {
        const FP: &str = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
        let profile = ovpn_profile::check_untrusted(
            format!(
                "client\ndev tun\nremote 198.18.0.1 1194\npeer-fingerprint {FP}\n\
                 dhcp-option DNS 192.0.2.53\ndhcp-option DOMAIN corp.example\n\
                 dhcp-option NTP 192.0.2.123\n"
            )
            .as_bytes(),
        )
        .unwrap();
        // Nothing pushed: the profile's settings alone.
        let (c, notes) = tunnel_network_config(
            &PushedOptions::default(),
            &profile,
            "198.18.0.1".parse().unwrap(),
        );
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(c.dns.servers, vec!["192.0.2.53".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.dns.search_domains, vec!["corp.example".to_owned()]);
        // Pushed dhcp-options follow the profile's.
        let p = pushed(&[
            "dhcp-option DNS 10.0.0.3",
            "dhcp-option DOMAIN corp.example",
        ]);
        let (c, _) = tunnel_network_config(&p, &profile, "198.18.0.1".parse().unwrap());
        assert_eq!(
            c.dns.servers,
            vec![
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "10.0.0.3".parse().unwrap()
            ]
        );
        assert_eq!(c.dns.search_domains, vec!["corp.example".to_owned()]);

        // `dns server N`: a pushed server of the same priority replaces the profile's.
        let profile = ovpn_profile::check_untrusted(
            format!(
                "client\ndev tun\nremote 198.18.0.1 1194\npeer-fingerprint {FP}\n\
                 dns server 1 address 192.0.2.1\ndns server 2 address 192.0.2.2\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let p = pushed(&["dns server 1 address 10.0.0.3"]);
        let (c, _) = tunnel_network_config(&p, &profile, "198.18.0.1".parse().unwrap());
        assert_eq!(
            c.dns.servers,
            vec![
                "10.0.0.3".parse::<IpAddr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
    }

    #[test]
    fn reference_push_reply_becomes_subnet_def1_and_dns() {
        let p = pushed(&[
            "redirect-gateway def1 bypass-dhcp",
            "dhcp-option DNS 10.0.0.3",
            "route-gateway 10.8.0.1",
            "topology subnet",
            "ping 10",
            "ping-restart 60",
            "ifconfig 10.8.0.2 255.255.255.0",
            "peer-id 0",
            "cipher AES-256-GCM",
            "tun-mtu 1500",
        ]);
        let remote: IpAddr = "198.18.0.1".parse().unwrap();
        let (c, notes) = tunnel_network_config(&p, &Profile::default(), remote);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            c.tun_v4,
            Some(TunV4::Subnet {
                addr: "10.8.0.2".parse().unwrap(),
                prefix_len: 24
            })
        );
        assert_eq!(c.route_gateway_v4, Some("10.8.0.1".parse().unwrap()));
        let r = c.redirect.unwrap();
        assert!(r.def1 && r.bypass_dhcp && r.ipv4 && !r.ipv6);
        assert_eq!(c.dns.servers, vec!["10.0.0.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.remotes, vec![remote]);
        assert_eq!(c.mtu, Some(1500));
    }

    #[test]
    fn net30_split_tunnel_and_ipv6() {
        let p = pushed(&[
            "route 10.0.0.0 255.255.255.0",
            "topology net30",
            "ifconfig 10.8.0.6 10.8.0.5",
            "route-ipv6 fd00:10::/64",
            "ifconfig-ipv6 fd00:8::1000/64 fd00:8::1",
        ]);
        let (c, _) = tunnel_network_config(&p, &Profile::default(), "198.18.0.1".parse().unwrap());
        assert_eq!(
            c.tun_v4,
            Some(TunV4::PointToPoint {
                local: "10.8.0.6".parse().unwrap(),
                peer: "10.8.0.5".parse().unwrap()
            })
        );
        assert_eq!(c.route_gateway_v4, Some("10.8.0.5".parse().unwrap()));
        assert!(c.redirect.is_none());
        let dsts: Vec<String> = c.routes.iter().map(|r| r.dst.to_string()).collect();
        assert_eq!(dsts, vec!["10.0.0.0/24", "fd00:10::/64"]);
        assert_eq!(c.tun_v6.unwrap().prefix_len, 64);
    }

    #[test]
    fn netmask_helpers() {
        assert!(is_netmask("255.255.255.0".parse().unwrap()));
        assert!(!is_netmask("10.8.0.5".parse().unwrap()));
        assert!(!is_netmask("0.0.0.0".parse().unwrap()));
        assert_eq!(prefix_len("255.255.255.252".parse().unwrap()), 30);
        assert_eq!(
            parse_dns_address("[fd00::1]:53"),
            Some("fd00::1".parse().unwrap())
        );
    }
}
