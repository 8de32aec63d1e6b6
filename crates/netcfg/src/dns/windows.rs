//! Windows DNS: the tunnel adapter's own servers and search list (`SetInterfaceDnsSettings`,
//! Windows 10 2004+). Undo clears the adapter's settings: the adapter is ours and had none.
//!
//! Compiled (`cargo check --target x86_64-pc-windows-gnu`), never run here.
//! Not done: routing-only domains of a split tunnel (NRPT rules) and making the tunnel's
//! servers win in a full tunnel (interface metric); both are noted in the log.
// FFI module: every unsafe block is an iphlpapi call on memory this module owns.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;

use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{NO_ERROR, WIN32_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    ConvertInterfaceIndexToLuid, ConvertInterfaceLuidToGuid, SetInterfaceDnsSettings,
    DNS_INTERFACE_SETTINGS, DNS_INTERFACE_SETTINGS_VERSION1, DNS_SETTING_IPV6,
    DNS_SETTING_NAMESERVER, DNS_SETTING_SEARCHLIST,
};
use windows_sys::Win32::NetworkManagement::Ndis::NET_LUID_LH;

use super::{DnsBackend, DnsBackendChoice, DnsOptions};
use crate::journal::UndoAction;
use crate::plan::DnsChange;
use crate::types::IfaceId;
use crate::Error;

pub(super) struct Backend {
    kind: DnsBackend,
}

fn dns_err(what: String, rc: WIN32_ERROR) -> Error {
    Error::netlink(what, io::Error::from_raw_os_error(rc as i32))
}

fn guid_of(index: u32) -> Result<GUID, Error> {
    let mut luid = NET_LUID_LH { Value: 0 };
    // SAFETY: out-parameters are locals.
    let rc = unsafe { ConvertInterfaceIndexToLuid(index, &mut luid) };
    if rc != NO_ERROR {
        return Err(dns_err(format!("interface #{index} has no LUID"), rc));
    }
    let mut guid = GUID::from_u128(0);
    // SAFETY: as above.
    let rc = unsafe { ConvertInterfaceLuidToGuid(&luid, &mut guid) };
    if rc != NO_ERROR {
        return Err(dns_err(format!("interface #{index} has no GUID"), rc));
    }
    Ok(guid)
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The comma-separated lists `SetInterfaceDnsSettings` takes, per family.
pub(crate) fn server_lists(servers: &[IpAddr]) -> (String, String) {
    let join = |v6: bool| {
        servers
            .iter()
            .filter(|s| s.is_ipv6() == v6)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    (join(false), join(true))
}

/// Sets (or, with empty strings, clears) one family's servers and the search list.
fn set(iface: u32, v6: bool, servers: &str, search: &str) -> Result<(), Error> {
    let guid = guid_of(iface)?;
    let mut servers_w = wide(servers);
    let mut search_w = wide(search);
    let mut flags = u64::from(DNS_SETTING_NAMESERVER | DNS_SETTING_SEARCHLIST);
    if v6 {
        flags |= u64::from(DNS_SETTING_IPV6);
    }
    let settings = DNS_INTERFACE_SETTINGS {
        Version: DNS_INTERFACE_SETTINGS_VERSION1,
        Flags: flags,
        NameServer: servers_w.as_mut_ptr(),
        SearchList: search_w.as_mut_ptr(),
        ..Default::default()
    };
    // SAFETY: the strings outlive the call; the API copies them.
    let rc = unsafe { SetInterfaceDnsSettings(guid, &settings) };
    if rc != NO_ERROR {
        return Err(dns_err(
            format!("SetInterfaceDnsSettings on #{iface} (ipv6: {v6})"),
            rc,
        ));
    }
    Ok(())
}

impl super::Backend for Backend {
    fn new(opts: &DnsOptions) -> Result<Self, Error> {
        let kind = match opts.backend {
            DnsBackendChoice::Disabled => DnsBackend::Disabled,
            DnsBackendChoice::Auto => DnsBackend::Interface,
            DnsBackendChoice::Resolved | DnsBackendChoice::ResolvConf => {
                return Err(Error::Unsupported(
                    "systemd-resolved or resolv.conf DNS on Windows",
                ))
            }
        };
        Ok(Self { kind })
    }

    fn kind(&self) -> DnsBackend {
        self.kind
    }

    fn prepare(&mut self, iface: &IfaceId, _: &DnsChange) -> Result<UndoAction, Error> {
        // "Forget everything set on the link": the same journal entry as resolved's.
        Ok(UndoAction::RevertResolvedLink {
            iface: iface.clone(),
            dbus_address: None,
        })
    }

    fn apply(&mut self, iface: &IfaceId, change: &DnsChange) -> Result<(), Error> {
        let (v4, v6) = server_lists(&change.servers);
        let search = change.search_domains.join(",");
        set(iface.index, false, &v4, &search)?;
        set(iface.index, true, &v6, &search)?;
        if !change.resolve_domains.is_empty() && !change.default_route {
            tracing::warn!(
                domains = ?change.resolve_domains,
                "routing-only DNS domains need NRPT rules, not implemented on Windows yet"
            );
        }
        Ok(())
    }
}

pub fn resolved_servers(_: Option<&str>) -> Option<Vec<IpAddr>> {
    None
}

pub fn undo(action: &UndoAction) -> Result<(), Error> {
    match action {
        UndoAction::RevertResolvedLink { iface, .. } => {
            set(iface.index, false, "", "")?;
            set(iface.index, true, "", "")
        }
        _ => Err(Error::Unsupported("this DNS undo action on Windows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_split_by_family() {
        let s: Vec<IpAddr> = vec![
            "10.8.0.1".parse().unwrap(),
            "2001:db8::53".parse().unwrap(),
            "10.8.0.2".parse().unwrap(),
        ];
        assert_eq!(
            server_lists(&s),
            ("10.8.0.1,10.8.0.2".to_string(), "2001:db8::53".to_string())
        );
    }
}
