//! Windows routes and addresses through the IP Helper API (iphlpapi: `*IpForwardEntry2`,
//! `*UnicastIpAddressEntry`, `GetBestRoute2`), plus the default interface's DHCP server and
//! resolvers from `GetAdaptersAddresses`.
//!
//! Compiled (`cargo check --target x86_64-pc-windows-gnu`), never run here.
//! Differences from Linux the callers should know:
//! - one routing table; `RouteRecord::table` is always [`TABLE_MAIN`];
//! - Windows keeps no free "route protocol" number: our routes are `MIB_IPPROTO_NETMGMT`
//!   (static) like any other static route, so leftovers are found through the journal only
//!   (`is_ours()` is false for every route read back);
//! - the effective metric is route metric + interface metric; `metric` is the route's own;
//! - a route needs an interface: one planned without (`Dev::Auto`) takes the interface
//!   `GetBestRoute2` picks for its gateway;
//! - adapters (wintun) are removed by closing their session, never here.
// FFI module: every unsafe block is an iphlpapi call on memory this module owns.
#![allow(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use windows_sys::Win32::Foundation::{
    ERROR_BUFFER_OVERFLOW, ERROR_NOT_FOUND, ERROR_OBJECT_ALREADY_EXISTS, NO_ERROR, WIN32_ERROR,
};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    CreateIpForwardEntry2, CreateUnicastIpAddressEntry, DeleteIpForwardEntry2,
    DeleteUnicastIpAddressEntry, FreeMibTable, GetAdaptersAddresses, GetBestRoute2, GetIfTable2,
    GetIpForwardTable2, GetIpInterfaceEntry, GetUnicastIpAddressTable, InitializeIpForwardEntry,
    InitializeUnicastIpAddressEntry, SetIpInterfaceEntry, GAA_FLAG_INCLUDE_ALL_INTERFACES,
    GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_MULTICAST, IP_ADAPTER_ADDRESSES_LH, MIB_IF_TABLE2,
    MIB_IPFORWARD_ROW2, MIB_IPFORWARD_TABLE2, MIB_IPINTERFACE_ROW, MIB_UNICASTIPADDRESS_ROW,
    MIB_UNICASTIPADDRESS_TABLE,
};
use windows_sys::Win32::Networking::WinSock::{
    IpDadStatePreferred, IpPrefixOriginManual, ADDRESS_FAMILY, AF_INET, AF_INET6, AF_UNSPEC,
    MIB_IPPROTO_NETMGMT, SOCKADDR, SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_INET,
};

use super::{AddOutcome, IfaceAddress, RouteRecord, TABLE_MAIN};
use crate::plan::TunAddress;
use crate::types::{IfaceId, TunV4};
use crate::Error;

pub(super) struct Backend;

fn check(op: impl FnOnce() -> String, rc: WIN32_ERROR) -> Result<(), Error> {
    if rc == NO_ERROR {
        Ok(())
    } else {
        // WIN32_ERROR codes are small positive numbers; io::Error renders them with the
        // system's message.
        Err(Error::netlink(
            op(),
            io::Error::from_raw_os_error(rc as i32),
        ))
    }
}

/// `SOCKADDR_INET` for an address (port 0, scope 0).
pub(crate) fn to_sockaddr(addr: IpAddr) -> SOCKADDR_INET {
    let mut sa = SOCKADDR_INET::default();
    match addr {
        IpAddr::V4(v4) => {
            let mut sin = SOCKADDR_IN {
                sin_family: AF_INET,
                ..Default::default()
            };
            // S_addr is in network byte order: the octets as they are in memory.
            sin.sin_addr.S_un.S_addr = u32::from_ne_bytes(v4.octets());
            sa.Ipv4 = sin;
        }
        IpAddr::V6(v6) => {
            let mut sin6 = SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                ..Default::default()
            };
            sin6.sin6_addr.u.Byte = v6.octets();
            sa.Ipv6 = sin6;
        }
    }
    sa
}

/// The address in a `SOCKADDR_INET`; `None` for a family that is neither IPv4 nor IPv6.
pub(crate) fn from_sockaddr(sa: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: every variant starts with the family; the one read is the one it names.
    unsafe {
        match sa.si_family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::from(
                sa.Ipv4.sin_addr.S_un.S_addr.to_ne_bytes(),
            ))),
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(sa.Ipv6.sin6_addr.u.Byte))),
            _ => None,
        }
    }
}

/// The address behind a `SOCKADDR` pointer of `GetAdaptersAddresses` (null: `None`).
///
/// # Safety
/// `p` is null or points at a socket address of at least the size its family implies.
unsafe fn from_sockaddr_ptr(p: *const SOCKADDR) -> Option<IpAddr> {
    if p.is_null() {
        return None;
    }
    // SAFETY: caller's contract; SOCKADDR_INET is as large as the largest family we read.
    unsafe {
        match (*p).sa_family {
            AF_INET => from_sockaddr(&SOCKADDR_INET {
                Ipv4: *(p as *const SOCKADDR_IN),
            }),
            AF_INET6 => from_sockaddr(&SOCKADDR_INET {
                Ipv6: *(p as *const SOCKADDR_IN6),
            }),
            _ => None,
        }
    }
}

fn unspecified(a: IpAddr) -> bool {
    a.is_unspecified()
}

fn record_of(row: &MIB_IPFORWARD_ROW2) -> Option<RouteRecord> {
    let prefix = from_sockaddr(&row.DestinationPrefix.Prefix)?;
    let dst = IpNet::new(prefix, row.DestinationPrefix.PrefixLength).ok()?;
    let gateway = from_sockaddr(&row.NextHop).filter(|g| !unspecified(*g));
    Some(RouteRecord {
        dst,
        gateway,
        oif: Some(row.InterfaceIndex),
        table: TABLE_MAIN,
        metric: Some(row.Metric),
        // Windows' NL_ROUTE_PROTOCOL values (3 static, 2 local, ...) fit a byte.
        protocol: u8::try_from(row.Protocol).unwrap_or(u8::MAX),
        scope: if gateway.is_some() {
            RouteRecord::SCOPE_UNIVERSE
        } else {
            RouteRecord::SCOPE_LINK
        },
        kind: if row.Loopback {
            RouteRecord::KIND_LOCAL
        } else {
            RouteRecord::KIND_UNICAST
        },
        pref_src: None,
        onlink: false,
    })
}

impl Backend {
    fn row_of(&mut self, r: &RouteRecord) -> Result<MIB_IPFORWARD_ROW2, Error> {
        let oif = match (r.oif, r.gateway) {
            (Some(i), _) => i,
            (None, Some(g)) => self
                .best_route(g)?
                .and_then(|b| b.oif)
                .ok_or_else(|| Error::Plan(format!("no interface reaches gateway {g} of {r}")))?,
            (None, None) => {
                return Err(Error::Plan(format!(
                    "route {r} names neither an interface nor a gateway"
                )))
            }
        };
        let mut row = MIB_IPFORWARD_ROW2::default();
        // SAFETY: initializes a row we own.
        unsafe { InitializeIpForwardEntry(&mut row) };
        row.InterfaceIndex = oif;
        row.DestinationPrefix.Prefix = to_sockaddr(r.dst.network());
        row.DestinationPrefix.PrefixLength = r.dst.prefix_len();
        let any = match r.dst {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        row.NextHop = to_sockaddr(r.gateway.unwrap_or(any));
        row.Metric = r.metric.unwrap_or(0);
        row.Protocol = MIB_IPPROTO_NETMGMT;
        Ok(row)
    }

    fn best_route(&mut self, addr: IpAddr) -> Result<Option<RouteRecord>, Error> {
        let dest = to_sockaddr(addr);
        let mut row = MIB_IPFORWARD_ROW2::default();
        let mut src = SOCKADDR_INET::default();
        // SAFETY: all pointers are to locals; a null LUID with index 0 means "any interface".
        let rc = unsafe {
            GetBestRoute2(
                std::ptr::null(),
                0,
                std::ptr::null(),
                &dest,
                0,
                &mut row,
                &mut src,
            )
        };
        if rc == ERROR_NOT_FOUND {
            return Ok(None);
        }
        check(|| format!("GetBestRoute2 {addr}"), rc)?;
        let mut rec = record_of(&row);
        if let Some(r) = rec.as_mut() {
            r.pref_src = from_sockaddr(&src).filter(|s| !unspecified(*s));
        }
        Ok(rec)
    }

    fn unicast_row(iface: u32, a: &TunAddress) -> MIB_UNICASTIPADDRESS_ROW {
        let mut row = MIB_UNICASTIPADDRESS_ROW::default();
        // SAFETY: initializes a row we own.
        unsafe { InitializeUnicastIpAddressEntry(&mut row) };
        row.InterfaceIndex = iface;
        let (addr, prefix) = match a {
            TunAddress::V4(TunV4::Subnet { addr, prefix_len }) => (IpAddr::V4(*addr), *prefix_len),
            // Windows has no point-to-point addresses; like OpenVPN on Windows, a net30
            // peer gets the /30 that holds both ends.
            TunAddress::V4(TunV4::PointToPoint { local, .. }) => (IpAddr::V4(*local), 30),
            TunAddress::V6(v6) => (IpAddr::V6(v6.addr), v6.prefix_len),
        };
        row.Address = to_sockaddr(addr);
        row.OnLinkPrefixLength = prefix;
        row.PrefixOrigin = IpPrefixOriginManual;
        row.DadState = IpDadStatePreferred;
        row
    }

    fn mtu_of_family(iface: u32, family: ADDRESS_FAMILY, mtu: u32) -> Result<bool, Error> {
        let mut row = MIB_IPINTERFACE_ROW {
            Family: family,
            InterfaceIndex: iface,
            ..Default::default()
        };
        // SAFETY: a row we own, keyed by family and index.
        let rc = unsafe { GetIpInterfaceEntry(&mut row) };
        if rc == ERROR_NOT_FOUND {
            return Ok(false);
        }
        check(|| format!("GetIpInterfaceEntry #{iface}"), rc)?;
        row.NlMtu = mtu;
        // SetIpInterfaceEntry refuses IPv4 rows whose SitePrefixLength is not 0.
        row.SitePrefixLength = 0;
        // SAFETY: as above.
        let rc = unsafe { SetIpInterfaceEntry(&mut row) };
        check(|| format!("SetIpInterfaceEntry #{iface} mtu {mtu}"), rc)?;
        Ok(true)
    }

    /// The DHCP server and the DNS servers of the adapter with `ifindex`.
    pub(super) fn adapter_dhcp_and_dns(
        ifindex: u32,
    ) -> Result<(Option<Ipv4Addr>, Vec<IpAddr>), Error> {
        let flags =
            GAA_FLAG_INCLUDE_ALL_INTERFACES | GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST;
        let mut len: u32 = 16 * 1024;
        // u64 words keep the buffer aligned for IP_ADAPTER_ADDRESSES_LH.
        let mut buf: Vec<u64> = Vec::new();
        for _ in 0..4 {
            buf.resize((len as usize).div_ceil(8), 0);
            // SAFETY: buf holds at least `len` bytes.
            let rc = unsafe {
                GetAdaptersAddresses(
                    u32::from(AF_UNSPEC),
                    flags,
                    std::ptr::null(),
                    buf.as_mut_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>(),
                    &mut len,
                )
            };
            if rc == ERROR_BUFFER_OVERFLOW {
                continue;
            }
            check(|| "GetAdaptersAddresses".to_string(), rc)?;
            let mut p = buf.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
            // SAFETY: the API filled a linked list inside buf; we only follow its pointers.
            unsafe {
                while !p.is_null() {
                    let a = &*p;
                    if a.Anonymous1.Anonymous.IfIndex == ifindex {
                        let dhcp = match from_sockaddr_ptr(a.Dhcpv4Server.lpSockaddr) {
                            Some(IpAddr::V4(v4)) if !v4.is_unspecified() => Some(v4),
                            _ => None,
                        };
                        let mut dns = Vec::new();
                        let mut d = a.FirstDnsServerAddress;
                        while !d.is_null() {
                            if let Some(ip) = from_sockaddr_ptr((*d).Address.lpSockaddr) {
                                dns.push(ip);
                            }
                            d = (*d).Next;
                        }
                        return Ok((dhcp, dns));
                    }
                    p = a.Next;
                }
            }
            return Ok((None, Vec::new()));
        }
        Err(Error::netlink(
            "GetAdaptersAddresses",
            io::Error::other("the adapter list kept growing"),
        ))
    }
}

impl super::Backend for Backend {
    fn open() -> Result<Self, Error> {
        Ok(Self)
    }

    fn routes(&mut self) -> Result<Vec<RouteRecord>, Error> {
        let mut table: *mut MIB_IPFORWARD_TABLE2 = std::ptr::null_mut();
        // SAFETY: the API allocates the table; we free it below.
        let rc = unsafe { GetIpForwardTable2(AF_UNSPEC, &mut table) };
        check(|| "GetIpForwardTable2".to_string(), rc)?;
        let mut out = Vec::new();
        // SAFETY: NumEntries rows follow the header in the API's allocation.
        unsafe {
            let n = (*table).NumEntries as usize;
            let rows = std::slice::from_raw_parts((*table).Table.as_ptr(), n);
            out.extend(rows.iter().filter_map(record_of));
            FreeMibTable(table.cast());
        }
        Ok(out)
    }

    fn add_route(&mut self, r: &RouteRecord) -> Result<AddOutcome, Error> {
        let row = self.row_of(r)?;
        // SAFETY: a row we own.
        let rc = unsafe { CreateIpForwardEntry2(&row) };
        if rc == ERROR_OBJECT_ALREADY_EXISTS {
            return Ok(AddOutcome::AlreadyPresent);
        }
        check(|| format!("add route {r}"), rc)?;
        Ok(AddOutcome::Added)
    }

    fn delete_route(&mut self, r: &RouteRecord) -> Result<bool, Error> {
        let row = self.row_of(r)?;
        // SAFETY: a row we own.
        let rc = unsafe { DeleteIpForwardEntry2(&row) };
        if rc == ERROR_NOT_FOUND {
            return Ok(false);
        }
        check(|| format!("delete route {r}"), rc)?;
        Ok(true)
    }

    fn lookup(&mut self, addr: IpAddr) -> Result<Option<RouteRecord>, Error> {
        self.best_route(addr)
    }

    fn links(&mut self) -> Result<Vec<IfaceId>, Error> {
        let mut table: *mut MIB_IF_TABLE2 = std::ptr::null_mut();
        // SAFETY: the API allocates the table; we free it below.
        let rc = unsafe { GetIfTable2(&mut table) };
        check(|| "GetIfTable2".to_string(), rc)?;
        let mut out = Vec::new();
        // SAFETY: NumEntries rows follow the header in the API's allocation.
        unsafe {
            let n = (*table).NumEntries as usize;
            for row in std::slice::from_raw_parts((*table).Table.as_ptr(), n) {
                let end = row
                    .Alias
                    .iter()
                    .position(|c| *c == 0)
                    .unwrap_or(row.Alias.len());
                out.push(IfaceId {
                    index: row.InterfaceIndex,
                    name: String::from_utf16_lossy(&row.Alias[..end]),
                });
            }
            FreeMibTable(table.cast());
        }
        Ok(out)
    }

    fn addresses(&mut self) -> Result<Vec<IfaceAddress>, Error> {
        let mut table: *mut MIB_UNICASTIPADDRESS_TABLE = std::ptr::null_mut();
        // SAFETY: the API allocates the table; we free it below.
        let rc = unsafe { GetUnicastIpAddressTable(AF_UNSPEC, &mut table) };
        check(|| "GetUnicastIpAddressTable".to_string(), rc)?;
        let mut out = Vec::new();
        // SAFETY: NumEntries rows follow the header in the API's allocation.
        unsafe {
            let n = (*table).NumEntries as usize;
            for row in std::slice::from_raw_parts((*table).Table.as_ptr(), n) {
                if let Some(addr) = from_sockaddr(&row.Address) {
                    out.push(IfaceAddress {
                        iface: row.InterfaceIndex,
                        addr,
                        prefix_len: row.OnLinkPrefixLength,
                        peer: None,
                    });
                }
            }
            FreeMibTable(table.cast());
        }
        Ok(out)
    }

    fn add_address(&mut self, iface: u32, a: &TunAddress) -> Result<AddOutcome, Error> {
        let row = Self::unicast_row(iface, a);
        // SAFETY: a row we own.
        let rc = unsafe { CreateUnicastIpAddressEntry(&row) };
        if rc == ERROR_OBJECT_ALREADY_EXISTS {
            return Ok(AddOutcome::AlreadyPresent);
        }
        check(|| format!("add address {a:?} on #{iface}"), rc)?;
        Ok(AddOutcome::Added)
    }

    fn delete_address(&mut self, iface: u32, a: &TunAddress) -> Result<bool, Error> {
        let row = Self::unicast_row(iface, a);
        // SAFETY: a row we own.
        let rc = unsafe { DeleteUnicastIpAddressEntry(&row) };
        if rc == ERROR_NOT_FOUND {
            return Ok(false);
        }
        check(|| format!("delete address {a:?} on #{iface}"), rc)?;
        Ok(true)
    }

    fn set_mtu(&mut self, iface: u32, mtu: u32) -> Result<(), Error> {
        let v4 = Self::mtu_of_family(iface, AF_INET, mtu)?;
        let v6 = Self::mtu_of_family(iface, AF_INET6, mtu)?;
        if !(v4 || v6) {
            return Err(Error::netlink(
                format!("set MTU {mtu} on #{iface}"),
                io::Error::from(io::ErrorKind::NotFound),
            ));
        }
        Ok(())
    }

    fn set_up(&mut self, _: u32) -> Result<(), Error> {
        // A wintun adapter is up while its session is open; there is nothing to switch on.
        Ok(())
    }

    fn delete_link(&mut self, _: u32) -> Result<bool, Error> {
        Err(Error::Unsupported(
            "deleting a network adapter (close its wintun session instead)",
        ))
    }

    fn is_tun(&mut self, _: u32) -> Result<bool, Error> {
        // Never claim an adapter as ours: recover() then leaves adapters alone.
        Ok(false)
    }

    fn dhcp_and_resolvers(
        &mut self,
        default_iface: Option<u32>,
    ) -> Result<(Option<Ipv4Addr>, Vec<IpAddr>), Error> {
        match default_iface {
            Some(i) => Self::adapter_dhcp_and_dns(i),
            None => Ok((None, Vec::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trips() {
        for a in ["10.1.2.3", "0.0.0.0", "2001:db8::1", "::"] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(from_sockaddr(&to_sockaddr(ip)), Some(ip));
        }
    }
}
