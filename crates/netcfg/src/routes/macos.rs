//! macOS routes and addresses through the system tools the routing socket sits behind:
//! `/sbin/route` (add/delete/get: PF_ROUTE messages), `netstat -rn` (the table dump) and
//! `ifconfig` (addresses, MTU). Command lines and output parsers are pure functions,
//! tested on every OS; only running them is macOS-only.
//! COMPILED for aarch64-apple-darwin only; not run here.
//! Differences from Linux: one table ([`TABLE_MAIN`]); no route protocol number, so
//! leftovers are found through the journal only (like Windows); utun devices vanish when
//! their file descriptor closes, so `delete_link` has nothing to do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[cfg(target_os = "macos")]
use super::AddOutcome;
use super::{IfaceAddress, RouteRecord, TABLE_MAIN};
use crate::plan::TunAddress;
#[cfg(target_os = "macos")]
use crate::types::IfaceId;
use crate::types::{TunV4, TunV6};
#[cfg(target_os = "macos")]
use crate::Error;

/// `route -n add|delete` arguments for `r` (`iface_name` for routes bound to an interface).
pub fn route_args(op: &str, r: &RouteRecord, iface_name: Option<&str>) -> Vec<String> {
    let fam = if r.dst.addr().is_ipv4() {
        "-inet"
    } else {
        "-inet6"
    };
    let mut a = vec!["-n".to_owned(), op.to_owned(), fam.to_owned()];
    if r.dst.prefix_len() == r.dst.max_prefix_len() {
        a.push("-host".into());
        a.push(r.dst.addr().to_string());
    } else {
        a.push("-net".into());
        a.push(r.dst.trunc().to_string());
    }
    match (r.gateway, iface_name) {
        (Some(gw), Some(ifn)) if r.onlink => {
            a.push(gw.to_string());
            a.push("-ifscope".into());
            a.push(ifn.to_owned());
        }
        (Some(gw), _) => a.push(gw.to_string()),
        (None, Some(ifn)) => {
            a.push("-interface".into());
            a.push(ifn.to_owned());
        }
        (None, None) => {}
    }
    a
}

/// A `netstat -rn` destination: `default`, `10.8/16`, `192.168.1` (classful width from the
/// octets given), `10.8.0.1`, `fe80::%utun3/64`.
pub fn parse_destination(s: &str, v6: bool) -> Option<IpNet> {
    if s == "default" {
        return Some(if v6 {
            IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0).ok()?)
        } else {
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).ok()?)
        });
    }
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let addr = addr.split('%').next()?;
    if v6 {
        let a: Ipv6Addr = addr.parse().ok()?;
        return IpNet::new(IpAddr::V6(a), len.unwrap_or(128)).ok();
    }
    let parts: Vec<u8> = addr
        .split('.')
        .map(|p| p.parse::<u8>().ok())
        .collect::<Option<_>>()?;
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut o = [0u8; 4];
    o[..parts.len()].copy_from_slice(&parts);
    let len = len.unwrap_or(8 * parts.len() as u8);
    IpNet::new(IpAddr::V4(Ipv4Addr::from(o)), len).ok()
}

/// Routes from `netstat -rn -f inet|inet6` (`Destination Gateway Flags Netif Expire`);
/// `index` maps an interface name to its index. Link-layer (ARP/ND) entries are skipped.
pub fn parse_netstat(
    text: &str,
    v6: bool,
    index: &dyn Fn(&str) -> Option<u32>,
) -> Vec<RouteRecord> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || cols[0] == "Destination" {
            continue;
        }
        let (dst, gw, flags, netif) = (cols[0], cols[1], cols[2], cols[3]);
        let Some(net) = parse_destination(dst, v6) else {
            continue;
        };
        let gateway = gw
            .split('%')
            .next()
            .and_then(|g| g.parse::<IpAddr>().ok())
            .filter(|g| flags.contains('G') && g.is_ipv6() == v6);
        if gateway.is_none() && !gw.starts_with("link#") && gw.parse::<IpAddr>().is_err() {
            // A MAC address: a neighbour (ARP/ND) cache entry, not a route.
            continue;
        }
        out.push(RouteRecord {
            dst: net,
            gateway,
            oif: index(netif),
            table: TABLE_MAIN,
            metric: None,
            protocol: if flags.contains('S') { 4 } else { 3 },
            scope: if gateway.is_some() {
                RouteRecord::SCOPE_UNIVERSE
            } else {
                RouteRecord::SCOPE_LINK
            },
            kind: RouteRecord::KIND_UNICAST,
            pref_src: None,
            onlink: false,
        });
    }
    out
}

/// `route -n get ADDR`: the gateway and interface lines.
pub fn parse_route_get(text: &str) -> (Option<IpAddr>, Option<String>) {
    let mut gw = None;
    let mut iface = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("gateway:") {
            gw = v.trim().split('%').next().and_then(|g| g.parse().ok());
        } else if let Some(v) = line.strip_prefix("interface:") {
            iface = Some(v.trim().to_owned());
        }
    }
    (gw, iface)
}

/// Addresses from `ifconfig` (all interfaces): `inet A [--> P] netmask 0x..`, `inet6 A
/// prefixlen N`.
pub fn parse_ifconfig(text: &str, index: &dyn Fn(&str) -> Option<u32>) -> Vec<IfaceAddress> {
    let mut out = Vec::new();
    let mut cur: Option<u32> = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            cur = line.split(':').next().and_then(index);
            continue;
        }
        let Some(iface) = cur else { continue };
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["inet", a, rest @ ..] => {
                let Ok(addr) = a.parse::<Ipv4Addr>() else {
                    continue;
                };
                let mut peer = None;
                let mut prefix = 32u8;
                let mut it = rest.iter();
                while let Some(k) = it.next() {
                    match *k {
                        "-->" => peer = it.next().and_then(|p| p.parse::<IpAddr>().ok()),
                        "netmask" => {
                            if let Some(m) = it.next().and_then(|m| {
                                u32::from_str_radix(m.trim_start_matches("0x"), 16).ok()
                            }) {
                                prefix = m.count_ones() as u8;
                            }
                        }
                        _ => {}
                    }
                }
                // A point-to-point link whose peer is itself is a plain address.
                let peer = peer.filter(|p| *p != IpAddr::V4(addr));
                out.push(IfaceAddress {
                    iface,
                    addr: IpAddr::V4(addr),
                    prefix_len: prefix,
                    peer,
                });
            }
            ["inet6", a, rest @ ..] => {
                let Ok(addr) = a.split('%').next().unwrap_or("").parse::<Ipv6Addr>() else {
                    continue;
                };
                let prefix = rest
                    .iter()
                    .position(|k| *k == "prefixlen")
                    .and_then(|i| rest.get(i + 1))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(128);
                out.push(IfaceAddress {
                    iface,
                    addr: IpAddr::V6(addr),
                    prefix_len: prefix,
                    peer: None,
                });
            }
            _ => {}
        }
    }
    out
}

/// `nameserver` lines of a resolv.conf.
pub fn parse_nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().split('%').next()?.parse().ok())
        .collect()
}

/// `ifconfig IFACE ...` arguments adding (`alias`) or removing (`-alias`) an address.
pub fn address_args(iface: &str, a: &TunAddress, add: bool) -> Vec<String> {
    let mut v = vec![iface.to_owned()];
    match a {
        TunAddress::V4(TunV4::Subnet { addr, prefix_len }) => {
            let mask = ipnet::Ipv4Net::new(*addr, *prefix_len)
                .map(|n| n.netmask())
                .unwrap_or(Ipv4Addr::BROADCAST);
            // utun is point-to-point: local and "peer" both the address, the subnet
            // itself is reached through the route the plan adds.
            v.extend(["inet".into(), addr.to_string(), addr.to_string()]);
            v.extend(["netmask".into(), mask.to_string()]);
        }
        TunAddress::V4(TunV4::PointToPoint { local, peer }) => {
            v.extend(["inet".into(), local.to_string(), peer.to_string()]);
        }
        TunAddress::V6(TunV6 { addr, prefix_len }) => {
            v.extend([
                "inet6".into(),
                addr.to_string(),
                "prefixlen".into(),
                prefix_len.to_string(),
            ]);
        }
    }
    v.push(if add { "alias".into() } else { "-alias".into() });
    v
}

#[cfg(target_os = "macos")]
mod sys {
    use std::process::Command;

    use crate::Error;

    pub fn run(prog: &str, args: &[String]) -> Result<(bool, String), Error> {
        let out = Command::new(prog)
            .args(args)
            .output()
            .map_err(|e| Error::netlink(format!("run {prog}"), e))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        Ok((out.status.success(), text))
    }

    pub fn must(prog: &str, args: &[String]) -> Result<String, Error> {
        let (ok, text) = run(prog, args)?;
        if !ok {
            return Err(Error::netlink(
                format!("{prog} {} failed: {}", args.join(" "), text.trim()),
                std::io::Error::other("command failed"),
            ));
        }
        Ok(text)
    }

    pub fn index(name: &str) -> Option<u32> {
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: c is a NUL-terminated string that lives across the call.
        #[allow(unsafe_code)]
        let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
        (i != 0).then_some(i)
    }

    pub fn name(index: u32) -> Option<String> {
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: buf has IF_NAMESIZE bytes as the call requires.
        #[allow(unsafe_code)]
        let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
        #[allow(unsafe_code)]
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Some(s.to_string_lossy().into_owned())
    }
}

#[cfg(target_os = "macos")]
pub(super) struct Backend;

#[cfg(target_os = "macos")]
impl Backend {
    fn iface_name(iface: u32) -> Result<String, Error> {
        sys::name(iface).ok_or(Error::Unsupported("an interface index without a name"))
    }
    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }
}

#[cfg(target_os = "macos")]
impl super::Backend for Backend {
    fn open() -> Result<Self, Error> {
        Ok(Self)
    }
    fn routes(&mut self) -> Result<Vec<RouteRecord>, Error> {
        let mut all = Vec::new();
        for (fam, v6) in [("inet", false), ("inet6", true)] {
            let text = sys::must("/usr/sbin/netstat", &Self::strs(&["-rn", "-f", fam]))?;
            all.extend(parse_netstat(&text, v6, &sys::index));
        }
        Ok(all)
    }
    fn add_route(&mut self, r: &RouteRecord) -> Result<AddOutcome, Error> {
        let name = r.oif.map(Self::iface_name).transpose()?;
        let (ok, text) = sys::run("/sbin/route", &route_args("add", r, name.as_deref()))?;
        match (ok, text.contains("File exists")) {
            (true, _) => Ok(AddOutcome::Added),
            (false, true) => Ok(AddOutcome::AlreadyPresent),
            (false, false) => Err(Error::netlink(
                format!("route add {r} failed: {}", text.trim()),
                std::io::Error::other("route"),
            )),
        }
    }
    fn delete_route(&mut self, r: &RouteRecord) -> Result<bool, Error> {
        let name = r.oif.map(Self::iface_name).transpose()?;
        let (ok, text) = sys::run("/sbin/route", &route_args("delete", r, name.as_deref()))?;
        if !ok && text.contains("not in table") {
            return Ok(false);
        }
        if !ok {
            return Err(Error::netlink(
                format!("route delete {r} failed: {}", text.trim()),
                std::io::Error::other("route"),
            ));
        }
        Ok(true)
    }
    fn lookup(&mut self, addr: IpAddr) -> Result<Option<RouteRecord>, Error> {
        let fam = if addr.is_ipv4() { "-inet" } else { "-inet6" };
        let (ok, text) = sys::run(
            "/sbin/route",
            &Self::strs(&["-n", "get", fam, &addr.to_string()]),
        )?;
        if !ok {
            return Ok(None);
        }
        let (gateway, iface) = parse_route_get(&text);
        Ok(Some(RouteRecord {
            dst: IpNet::from(addr),
            gateway,
            oif: iface.as_deref().and_then(sys::index),
            table: TABLE_MAIN,
            metric: None,
            protocol: 0,
            scope: RouteRecord::SCOPE_UNIVERSE,
            kind: RouteRecord::KIND_UNICAST,
            pref_src: None,
            onlink: false,
        }))
    }
    fn links(&mut self) -> Result<Vec<IfaceId>, Error> {
        let text = sys::must("/sbin/ifconfig", &Self::strs(&["-l"]))?;
        Ok(text
            .split_whitespace()
            .filter_map(|n| {
                sys::index(n).map(|index| IfaceId {
                    index,
                    name: n.to_owned(),
                })
            })
            .collect())
    }
    fn addresses(&mut self) -> Result<Vec<IfaceAddress>, Error> {
        let text = sys::must("/sbin/ifconfig", &[])?;
        Ok(parse_ifconfig(&text, &sys::index))
    }
    fn add_address(&mut self, iface: u32, a: &TunAddress) -> Result<AddOutcome, Error> {
        let name = Self::iface_name(iface)?;
        sys::must("/sbin/ifconfig", &address_args(&name, a, true))?;
        Ok(AddOutcome::Added)
    }
    fn delete_address(&mut self, iface: u32, a: &TunAddress) -> Result<bool, Error> {
        let Ok(name) = Self::iface_name(iface) else {
            return Ok(false); // the utun is gone, and its addresses with it
        };
        let (ok, _) = sys::run("/sbin/ifconfig", &address_args(&name, a, false))?;
        Ok(ok)
    }
    fn set_mtu(&mut self, iface: u32, mtu: u32) -> Result<(), Error> {
        let name = Self::iface_name(iface)?;
        sys::must("/sbin/ifconfig", &[name, "mtu".into(), mtu.to_string()]).map(|_| ())
    }
    fn set_up(&mut self, iface: u32) -> Result<(), Error> {
        let name = Self::iface_name(iface)?;
        sys::must("/sbin/ifconfig", &[name, "up".into()]).map(|_| ())
    }
    fn delete_link(&mut self, _iface: u32) -> Result<bool, Error> {
        // A utun disappears when the descriptor that created it closes.
        Ok(false)
    }
    fn is_tun(&mut self, iface: u32) -> Result<bool, Error> {
        Ok(sys::name(iface).is_some_and(|n| n.starts_with("utun")))
    }
    /// bypass-dhcp: the DHCP server of the default interface's lease (`ipconfig
    /// getoption IF server_identifier`); resolvers from /etc/resolv.conf, which macOS
    /// keeps in step with the primary service.
    fn dhcp_and_resolvers(
        &mut self,
        default_iface: Option<u32>,
    ) -> Result<(Option<Ipv4Addr>, Vec<IpAddr>), Error> {
        let dhcp = default_iface
            .and_then(sys::name)
            .and_then(|n| {
                sys::run(
                    "/usr/sbin/ipconfig",
                    &Self::strs(&["getoption", &n, "server_identifier"]),
                )
                .ok()
            })
            .and_then(|(ok, t)| if ok { t.trim().parse().ok() } else { None });
        let resolvers = std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| parse_nameservers(&t))
            .unwrap_or_default();
        Ok((dhcp, resolvers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(n: &str) -> Option<u32> {
        match n {
            "lo0" => Some(1),
            "en0" => Some(4),
            "utun7" => Some(20),
            _ => None,
        }
    }

    fn rec(dst: &str, gw: Option<&str>, onlink: bool) -> RouteRecord {
        RouteRecord {
            dst: dst.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
            oif: None,
            table: TABLE_MAIN,
            metric: None,
            protocol: 0,
            scope: 0,
            kind: 1,
            pref_src: None,
            onlink,
        }
    }

    #[test]
    fn route_commands_for_the_reference_plan() {
        // def1 halves into the tunnel, the server /32 via the LAN gateway.
        assert_eq!(
            route_args("add", &rec("0.0.0.0/1", None, false), Some("utun7")).join(" "),
            "-n add -inet -net 0.0.0.0/1 -interface utun7"
        );
        assert_eq!(
            route_args(
                "add",
                &rec("198.51.100.7/32", Some("192.168.1.1"), false),
                Some("en0")
            )
            .join(" "),
            "-n add -inet -host 198.51.100.7 192.168.1.1"
        );
        assert_eq!(
            route_args("delete", &rec("10.0.0.0/8", Some("10.8.0.1"), false), None).join(" "),
            "-n delete -inet -net 10.0.0.0/8 10.8.0.1"
        );
        assert_eq!(
            route_args("add", &rec("2000::/3", None, false), Some("utun7")).join(" "),
            "-n add -inet6 -net 2000::/3 -interface utun7"
        );
        assert_eq!(
            route_args(
                "add",
                &rec("203.0.113.9/32", Some("172.31.1.1"), true),
                Some("en0")
            )
            .join(" "),
            "-n add -inet -host 203.0.113.9 172.31.1.1 -ifscope en0"
        );
    }

    #[test]
    fn netstat_destinations_are_widened_like_netstat_abbreviates_them() {
        let p = |s| parse_destination(s, false).unwrap().to_string();
        assert_eq!(p("default"), "0.0.0.0/0");
        assert_eq!(p("10.8/16"), "10.8.0.0/16");
        assert_eq!(p("192.168.1"), "192.168.1.0/24");
        assert_eq!(p("127"), "127.0.0.0/8");
        assert_eq!(p("10.8.0.1"), "10.8.0.1/32");
        assert_eq!(
            parse_destination("fe80::%utun7/64", true)
                .unwrap()
                .to_string(),
            "fe80::/64"
        );
        assert_eq!(parse_destination("bogus", false), None);
    }

    #[test]
    fn netstat_table_keeps_routes_and_drops_neighbour_entries() {
        let text = "Routing tables\n\nInternet:\n\
Destination        Gateway            Flags           Netif Expire\n\
default            192.168.1.1        UGScg             en0\n\
0/1                10.8.0.1           UGSc            utun7\n\
10.8/24            link#20            UCS             utun7\n\
127                127.0.0.1          UCS               lo0\n\
192.168.1          link#4             UCS               en0      !\n\
192.168.1.1/32     link#4             UCS               en0      !\n\
192.168.1.1        a0:b1:c2:d3:e4:f5  UHLWIir           en0   1187\n\
198.51.100.7/32    192.168.1.1        UGSc              en0\n";
        let r = parse_netstat(text, false, &idx);
        let shown: Vec<String> = r
            .iter()
            .map(|x| format!("{} {:?} {:?}", x.dst, x.gateway, x.oif))
            .collect();
        assert_eq!(
            shown,
            vec![
                "0.0.0.0/0 Some(192.168.1.1) Some(4)",
                "0.0.0.0/1 Some(10.8.0.1) Some(20)",
                "10.8.0.0/24 None Some(20)",
                "127.0.0.0/8 None Some(1)",
                "192.168.1.0/24 None Some(4)",
                "192.168.1.1/32 None Some(4)",
                "198.51.100.7/32 Some(192.168.1.1) Some(4)",
            ]
        );
    }

    #[test]
    fn route_get_and_ifconfig() {
        let get = "   route to: 8.8.8.8\ndestination: default\n       mask: default\n    gateway: 192.168.1.1\n  interface: en0\n      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING>\n";
        assert_eq!(
            parse_route_get(get),
            (Some("192.168.1.1".parse().unwrap()), Some("en0".into()))
        );
        let ifc = "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384\n\
\tinet 127.0.0.1 netmask 0xff000000\n\
en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n\
\tinet6 fe80::1c2a:3b4c:5d6e:7f80%en0 prefixlen 64 secured scopeid 0x4\n\
\tinet 192.168.1.23 netmask 0xffffff00 broadcast 192.168.1.255\n\
utun7: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1500\n\
\tinet 10.8.0.6 --> 10.8.0.5 netmask 0xffffffff\n";
        let a = parse_ifconfig(ifc, &idx);
        let shown: Vec<String> = a
            .iter()
            .map(|x| format!("{} {}/{} {:?}", x.iface, x.addr, x.prefix_len, x.peer))
            .collect();
        assert_eq!(
            shown,
            vec![
                "1 127.0.0.1/8 None",
                "4 fe80::1c2a:3b4c:5d6e:7f80/64 None",
                "4 192.168.1.23/24 None",
                "20 10.8.0.6/32 Some(10.8.0.5)",
            ]
        );
    }

    #[test]
    fn nameservers() {
        let t = "#\n# macOS Notice\nnameserver 192.168.1.1\nnameserver fe80::1%en0\nsearch lan\n";
        assert_eq!(
            parse_nameservers(t),
            vec![
                "192.168.1.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn address_commands() {
        let a = TunAddress::V4(TunV4::Subnet {
            addr: Ipv4Addr::new(10, 8, 0, 2),
            prefix_len: 24,
        });
        assert_eq!(
            address_args("utun7", &a, true).join(" "),
            "utun7 inet 10.8.0.2 10.8.0.2 netmask 255.255.255.0 alias"
        );
        let v6 = TunAddress::V6(TunV6 {
            addr: "fd00::2".parse().unwrap(),
            prefix_len: 64,
        });
        assert_eq!(
            address_args("utun7", &v6, false).join(" "),
            "utun7 inet6 fd00::2 prefixlen 64 -alias"
        );
    }
}
