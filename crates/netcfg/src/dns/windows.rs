//! Windows DNS: the tunnel adapter's own servers and search list (`SetInterfaceDnsSettings`,
//! Windows 10 2004+). Undo clears the adapter's settings: the adapter is ours and had none.
//!
//! Compiled (`cargo check --target x86_64-pc-windows-gnu`), never run here.
//! NRPT rules (`windows_nrpt`): the split tunnel's routing-only domains go to the tunnel's
//! servers, and a full tunnel's rule for "." makes them win over other adapters' servers.
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

use super::{windows_nrpt, DnsBackend, DnsBackendChoice, DnsOptions};
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
        if let Some(rule) = windows_nrpt::rule(iface.index, change) {
            nrpt::write(&rule)?;
            tracing::info!(names = ?rule.names, servers = %rule.servers, "NRPT rule set");
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
            // The NRPT rule first: it would keep sending names to a dead tunnel.
            let nrpt = nrpt::delete(&windows_nrpt::rule_key(iface.index));
            set(iface.index, false, "", "")?;
            set(iface.index, true, "", "")?;
            nrpt
        }
        _ => Err(Error::Unsupported("this DNS undo action on Windows")),
    }
}

/// The NRPT rule in the registry (local policy). The DNS client service watches its
/// parameters key; untested here whether it applies the rule without a cache flush.
mod nrpt {
    use std::io;
    use std::ptr::null_mut;

    use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS};
    use windows_sys::Win32::System::Registry::{
        RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegOpenKeyExW, RegSetValueExW, HKEY,
        HKEY_LOCAL_MACHINE, KEY_ALL_ACCESS, KEY_SET_VALUE, REG_DWORD, REG_MULTI_SZ,
        REG_OPTION_NON_VOLATILE, REG_SZ,
    };

    use super::{wide, windows_nrpt};
    use crate::Error;

    fn fail(what: String, rc: u32) -> Error {
        Error::netlink(what, io::Error::from_raw_os_error(rc as i32))
    }

    struct Key(HKEY);

    impl Drop for Key {
        fn drop(&mut self) {
            // SAFETY: a key we opened.
            unsafe { RegCloseKey(self.0) };
        }
    }

    fn set(k: &Key, name: &str, kind: u32, data: &[u8]) -> Result<(), Error> {
        let n = wide(name);
        // SAFETY: name and data outlive the call; the length is data's.
        let rc =
            unsafe { RegSetValueExW(k.0, n.as_ptr(), 0, kind, data.as_ptr(), data.len() as u32) };
        if rc != ERROR_SUCCESS {
            return Err(fail(format!("NRPT: set {name}"), rc));
        }
        Ok(())
    }

    fn bytes16(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|c| c.to_le_bytes()).collect()
    }

    pub fn write(rule: &windows_nrpt::NrptRule) -> Result<(), Error> {
        let path = wide(&format!("{}\\{}", windows_nrpt::NRPT_PARENT, rule.key));
        let mut h: HKEY = null_mut();
        // SAFETY: path is NUL-terminated; h receives the key.
        let rc = unsafe {
            RegCreateKeyExW(
                HKEY_LOCAL_MACHINE,
                path.as_ptr(),
                0,
                null_mut(),
                REG_OPTION_NON_VOLATILE,
                KEY_SET_VALUE,
                null_mut(),
                &mut h,
                null_mut(),
            )
        };
        if rc != ERROR_SUCCESS {
            return Err(fail(format!("NRPT: create {}", rule.key), rc));
        }
        let k = Key(h);
        set(
            &k,
            "Version",
            REG_DWORD,
            &windows_nrpt::RULE_VERSION.to_le_bytes(),
        )?;
        set(
            &k,
            "Name",
            REG_MULTI_SZ,
            &bytes16(&windows_nrpt::multi_sz(&rule.names)),
        )?;
        set(
            &k,
            "GenericDNSServers",
            REG_SZ,
            &bytes16(&wide(&rule.servers)),
        )?;
        set(
            &k,
            "ConfigOptions",
            REG_DWORD,
            &windows_nrpt::CONFIG_OPTIONS_GENERIC_SERVERS.to_le_bytes(),
        )?;
        set(&k, "IPSECCARestriction", REG_SZ, &bytes16(&wide("")))
    }

    /// Removes the rule; absent is fine.
    pub fn delete(key: &str) -> Result<(), Error> {
        let parent = wide(windows_nrpt::NRPT_PARENT);
        let mut h: HKEY = null_mut();
        // SAFETY: parent is NUL-terminated; h receives the key.
        let rc = unsafe {
            RegOpenKeyExW(
                HKEY_LOCAL_MACHINE,
                parent.as_ptr(),
                0,
                KEY_ALL_ACCESS,
                &mut h,
            )
        };
        if rc == ERROR_FILE_NOT_FOUND {
            return Ok(());
        }
        if rc != ERROR_SUCCESS {
            return Err(fail("NRPT: open DnsPolicyConfig".into(), rc));
        }
        let k = Key(h);
        let sub = wide(key);
        // SAFETY: sub is NUL-terminated.
        let rc = unsafe { RegDeleteTreeW(k.0, sub.as_ptr()) };
        if rc != ERROR_SUCCESS && rc != ERROR_FILE_NOT_FOUND {
            return Err(fail(format!("NRPT: delete {key}"), rc));
        }
        Ok(())
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
