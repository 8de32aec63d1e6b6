//! Linux: rtnetlink requests (no `ip` command).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{AddOutcome, IfaceAddress, RouteRecord};
use crate::netlink::{is_exists, is_not_found, Netlink};
use crate::plan::TunAddress;
use crate::types::{IfaceId, TunV4};
use crate::Error;

pub(super) struct Backend {
    nl: Netlink,
}

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn route_message(r: &RouteRecord, for_delete: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    let v6 = matches!(r.dst, IpNet::V6(_));
    m.header.address_family = family(v6);
    m.header.destination_prefix_length = r.dst.prefix_len();
    m.header.table = u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.protocol = RouteProtocol::from(r.protocol);
    // On delete, "no scope" means any scope.
    m.header.scope = if for_delete {
        RouteScope::NoWhere
    } else {
        RouteScope::from(r.scope)
    };
    m.header.kind = RouteType::from(r.kind);
    if r.onlink {
        m.header.flags |= RouteFlags::Onlink;
    }
    if r.dst.prefix_len() > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                r.dst.addr(),
            )));
    }
    if let Some(g) = r.gateway {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(g)));
    }
    if let Some(o) = r.oif {
        m.attributes.push(RouteAttribute::Oif(o));
    }
    if let Some(p) = r.metric {
        m.attributes.push(RouteAttribute::Priority(p));
    }
    if let Some(s) = r.pref_src {
        if !for_delete {
            m.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::from(s)));
        }
    }
    m.attributes.push(RouteAttribute::Table(r.table));
    m
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn record_of(m: &RouteMessage) -> Option<RouteRecord> {
    let v6 = match m.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut dst_addr: Option<IpAddr> = None;
    let mut rec = RouteRecord {
        dst: IpNet::default(),
        gateway: None,
        oif: None,
        table: u32::from(m.header.table),
        metric: None,
        protocol: u8::from(m.header.protocol),
        scope: u8::from(m.header.scope),
        kind: u8::from(m.header.kind),
        pref_src: None,
        onlink: m.header.flags.contains(RouteFlags::Onlink),
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst_addr = ip_of(d),
            RouteAttribute::Gateway(g) => rec.gateway = ip_of(g),
            RouteAttribute::Oif(o) => rec.oif = Some(*o),
            RouteAttribute::Priority(p) => rec.metric = Some(*p),
            RouteAttribute::Table(t) => rec.table = *t,
            RouteAttribute::PrefSource(s) => rec.pref_src = ip_of(s),
            _ => {}
        }
    }
    let zero: IpAddr = if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    };
    rec.dst = IpNet::new(dst_addr.unwrap_or(zero), m.header.destination_prefix_length).ok()?;
    Some(rec)
}

fn tun_addr_message(iface: u32, a: &TunAddress) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.index = iface;
    match *a {
        TunAddress::V4(TunV4::Subnet { addr, prefix_len }) => {
            m.header.family = AddressFamily::Inet;
            m.header.prefix_len = prefix_len;
            m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
            m.attributes
                .push(AddressAttribute::Address(IpAddr::V4(addr)));
        }
        TunAddress::V4(TunV4::PointToPoint { local, peer }) => {
            m.header.family = AddressFamily::Inet;
            m.header.prefix_len = 32;
            m.attributes
                .push(AddressAttribute::Local(IpAddr::V4(local)));
            m.attributes
                .push(AddressAttribute::Address(IpAddr::V4(peer)));
        }
        TunAddress::V6(v6) => {
            m.header.family = AddressFamily::Inet6;
            m.header.prefix_len = v6.prefix_len;
            m.attributes
                .push(AddressAttribute::Address(IpAddr::V6(v6.addr)));
            // A tunnel has no neighbours to defend the address against.
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    m
}

impl super::Backend for Backend {
    fn open() -> Result<Self, Error> {
        Ok(Self {
            nl: Netlink::open()?,
        })
    }

    fn routes(&mut self) -> Result<Vec<RouteRecord>, Error> {
        let mut out = Vec::new();
        for v6 in [false, true] {
            let mut m = RouteMessage::default();
            m.header.address_family = family(v6);
            let answers = self
                .nl
                .request(RouteNetlinkMessage::GetRoute(m), NLM_F_DUMP)
                .map_err(|e| Error::netlink("dump routes", e))?;
            for a in answers {
                if let RouteNetlinkMessage::NewRoute(r) = a {
                    // Clones in the IPv6 cache are not table entries.
                    if r.header.flags.contains(RouteFlags::Cloned) {
                        continue;
                    }
                    out.extend(record_of(&r));
                }
            }
        }
        Ok(out)
    }

    fn add_route(&mut self, r: &RouteRecord) -> Result<AddOutcome, Error> {
        let msg = RouteNetlinkMessage::NewRoute(route_message(r, false));
        match self.nl.request(msg, NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => Ok(AddOutcome::Added),
            Err(e) if is_exists(&e) => Ok(AddOutcome::AlreadyPresent),
            Err(e) => Err(Error::netlink(format!("add route {r}"), e)),
        }
    }

    fn delete_route(&mut self, r: &RouteRecord) -> Result<bool, Error> {
        let msg = RouteNetlinkMessage::DelRoute(route_message(r, true));
        match self.nl.request(msg, 0) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::netlink(format!("delete route {r}"), e)),
        }
    }

    fn lookup(&mut self, addr: IpAddr) -> Result<Option<RouteRecord>, Error> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(addr.is_ipv6());
        m.header.destination_prefix_length = if addr.is_ipv6() { 128 } else { 32 };
        m.header.flags = RouteFlags::FibMatch;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(addr)));
        match self.nl.request(RouteNetlinkMessage::GetRoute(m), 0) {
            Ok(answers) => Ok(answers.iter().find_map(|a| match a {
                RouteNetlinkMessage::NewRoute(r) => record_of(r),
                _ => None,
            })),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) | Some(libc::ESRCH)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::netlink(format!("look up the route to {addr}"), e)),
        }
    }

    fn links(&mut self) -> Result<Vec<IfaceId>, Error> {
        let answers = self
            .nl
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|e| Error::netlink("dump links", e))?;
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|x| match x {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some(IfaceId {
                        index: l.header.index,
                        name,
                    })
                }
                _ => None,
            })
            .collect())
    }

    fn addresses(&mut self) -> Result<Vec<IfaceAddress>, Error> {
        let answers = self
            .nl
            .request(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|e| Error::netlink("dump addresses", e))?;
        let mut out = Vec::new();
        for a in answers {
            let RouteNetlinkMessage::NewAddress(m) = a else {
                continue;
            };
            let mut local = None;
            let mut address = None;
            for at in &m.attributes {
                match at {
                    AddressAttribute::Local(l) => local = Some(*l),
                    AddressAttribute::Address(a) => address = Some(*a),
                    _ => {}
                }
            }
            // IPv4: LOCAL is ours, ADDRESS the peer when they differ. IPv6: ADDRESS only.
            let Some(addr) = local.or(address) else {
                continue;
            };
            let peer = match (local, address) {
                (Some(l), Some(a)) if l != a => Some(a),
                _ => None,
            };
            out.push(IfaceAddress {
                iface: m.header.index,
                addr,
                prefix_len: m.header.prefix_len,
                peer,
            });
        }
        Ok(out)
    }

    fn add_address(&mut self, iface: u32, a: &TunAddress) -> Result<AddOutcome, Error> {
        let msg = RouteNetlinkMessage::NewAddress(tun_addr_message(iface, a));
        match self.nl.request(msg, NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => Ok(AddOutcome::Added),
            Err(e) if is_exists(&e) => Ok(AddOutcome::AlreadyPresent),
            Err(e) => Err(Error::netlink(format!("add address {a:?} on #{iface}"), e)),
        }
    }

    fn delete_address(&mut self, iface: u32, a: &TunAddress) -> Result<bool, Error> {
        let msg = RouteNetlinkMessage::DelAddress(tun_addr_message(iface, a));
        match self.nl.request(msg, 0) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::netlink(
                format!("delete address {a:?} on #{iface}"),
                e,
            )),
        }
    }

    fn set_mtu(&mut self, iface: u32, mtu: u32) -> Result<(), Error> {
        let mut m = LinkMessage::default();
        m.header.index = iface;
        m.attributes.push(LinkAttribute::Mtu(mtu));
        self.nl
            .request(RouteNetlinkMessage::SetLink(m), 0)
            .map(|_| ())
            .map_err(|e| Error::netlink(format!("set mtu {mtu} on #{iface}"), e))
    }

    fn set_up(&mut self, iface: u32) -> Result<(), Error> {
        let mut m = LinkMessage::default();
        m.header.index = iface;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.nl
            .request(RouteNetlinkMessage::SetLink(m), 0)
            .map(|_| ())
            .map_err(|e| Error::netlink(format!("bring up #{iface}"), e))
    }

    fn delete_link(&mut self, iface: u32) -> Result<bool, Error> {
        let mut m = LinkMessage::default();
        m.header.index = iface;
        match self.nl.request(RouteNetlinkMessage::DelLink(m), 0) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::netlink(format!("delete link #{iface}"), e)),
        }
    }

    fn is_tun(&mut self, iface: u32) -> Result<bool, Error> {
        let mut m = LinkMessage::default();
        m.header.index = iface;
        match self.nl.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(answers) => Ok(answers.iter().any(|a| match a {
                RouteNetlinkMessage::NewLink(l) => l.attributes.iter().any(|x| {
                    matches!(x, LinkAttribute::LinkInfo(infos)
                        if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Tun))))
                }),
                _ => false,
            })),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::netlink(format!("read link #{iface}"), e)),
        }
    }
}
