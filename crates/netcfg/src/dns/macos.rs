//! macOS DNS: the tunnel as its own service in configd's dynamic store, written with
//! `scutil` (the same keys SystemConfiguration's SCDynamicStore API writes):
//! `State:/Network/Service/OxiVPN-<utunN>/DNS` (ServerAddresses, SearchDomains,
//! SupplementalMatchDomains for split DNS) and, for a full tunnel, `.../IPv4` with
//! `OverridePrimary` so the tunnel's resolvers become the default resolver.
//! Undo removes both keys: nothing of the user's own services is modified, so nothing
//! needs saving (journaled as `RevertResolvedLink`, like the Windows back end).
//! Scripts are built by pure functions (tested on every OS); running scutil is macOS-only.
//! COMPILED for aarch64-apple-darwin only; not run here.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use super::{DnsBackend, DnsBackendChoice, DnsOptions};
use crate::journal::UndoAction;
use crate::plan::DnsChange;
use crate::types::IfaceId;
use crate::Error;

pub(super) struct Backend {
    kind: DnsBackend,
}

/// The dynamic-store service id for a tunnel interface.
pub fn service_key(iface: &str) -> String {
    format!("State:/Network/Service/OxiVPN-{iface}")
}

/// scutil reads whitespace-separated tokens: names with anything but these characters
/// are refused instead of quoted.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

/// The scutil script that publishes `change` for `iface` (whose IPv4 address is `v4`,
/// needed for the IPv4 dictionary that makes a full tunnel primary).
pub fn set_script(iface: &str, v4: Option<Ipv4Addr>, change: &DnsChange) -> Result<String, Error> {
    if !is_token(iface) {
        return Err(Error::Unsupported(
            "DNS for an interface name scutil cannot take",
        ));
    }
    let key = service_key(iface);
    let mut s = String::new();
    s.push_str("d.init\n");
    if !change.servers.is_empty() {
        s.push_str("d.add ServerAddresses *");
        for a in &change.servers {
            let _ = write!(s, " {a}");
        }
        s.push('\n');
    }
    let search: Vec<&String> = change
        .search_domains
        .iter()
        .filter(|d| is_token(d))
        .collect();
    if !search.is_empty() {
        s.push_str("d.add SearchDomains *");
        for d in &search {
            let _ = write!(s, " {d}");
        }
        s.push('\n');
        let _ = writeln!(s, "d.add DomainName {}", search[0]);
    }
    if !change.default_route {
        // Split DNS: only these names go to the tunnel's servers.
        let domains: Vec<&String> = change
            .resolve_domains
            .iter()
            .chain(change.search_domains.iter())
            .filter(|d| d.as_str() != "." && is_token(d))
            .collect();
        if !domains.is_empty() {
            s.push_str("d.add SupplementalMatchDomains *");
            for d in &domains {
                let _ = write!(s, " {d}");
            }
            s.push('\n');
        }
    }
    let _ = writeln!(s, "set {key}/DNS");
    if change.default_route {
        if let Some(addr) = v4 {
            s.push_str("d.init\n");
            let _ = writeln!(s, "d.add Addresses * {addr}");
            s.push_str("d.add SubnetMasks * 255.255.255.255\n");
            let _ = writeln!(s, "d.add Router {addr}");
            let _ = writeln!(s, "d.add InterfaceName {iface}");
            s.push_str("d.add OverridePrimary # 1\n");
            let _ = writeln!(s, "set {key}/IPv4");
        }
    }
    s.push_str("quit\n");
    Ok(s)
}

/// The script that removes what [`set_script`] wrote.
pub fn remove_script(iface: &str) -> Result<String, Error> {
    if !is_token(iface) {
        return Err(Error::Unsupported(
            "DNS for an interface name scutil cannot take",
        ));
    }
    let key = service_key(iface);
    Ok(format!("remove {key}/DNS\nremove {key}/IPv4\nquit\n"))
}

/// `inet A --> B netmask M` or `inet A netmask M` in `ifconfig IFACE` output.
pub fn parse_ifconfig_v4(text: &str) -> Option<Ipv4Addr> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("inet")).then(|| w.next()?.parse().ok())?
    })
}

#[cfg(target_os = "macos")]
fn run_scutil(script: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let io = |what: &'static str| move |e: std::io::Error| Error::netlink(what.to_owned(), e);
    let mut child = Command::new("/usr/sbin/scutil")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io("run /usr/sbin/scutil"))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(script.as_bytes())
            .map_err(io("write to scutil"))?;
    }
    let out = child.wait_with_output().map_err(io("wait for scutil"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Error::netlink(
            format!("scutil refused: {}", text.trim()),
            std::io::Error::other("scutil"),
        ));
    }
    Ok(())
}

#[cfg(not(target_os = "macos"))]
fn run_scutil(_: &str) -> Result<(), Error> {
    Err(Error::Unsupported("DNS configuration"))
}

#[cfg(target_os = "macos")]
fn tunnel_v4(iface: &str) -> Option<Ipv4Addr> {
    let out = std::process::Command::new("/sbin/ifconfig")
        .arg(iface)
        .output()
        .ok()?;
    parse_ifconfig_v4(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(not(target_os = "macos"))]
fn tunnel_v4(_: &str) -> Option<Ipv4Addr> {
    None
}

impl super::Backend for Backend {
    fn new(opts: &DnsOptions) -> Result<Self, Error> {
        let kind = match opts.backend {
            DnsBackendChoice::Disabled => DnsBackend::Disabled,
            _ => DnsBackend::Interface,
        };
        Ok(Self { kind })
    }
    fn kind(&self) -> DnsBackend {
        self.kind
    }
    fn prepare(&mut self, iface: &IfaceId, _: &DnsChange) -> Result<UndoAction, Error> {
        Ok(UndoAction::RevertResolvedLink {
            iface: iface.clone(),
            dbus_address: None,
        })
    }
    fn apply(&mut self, iface: &IfaceId, change: &DnsChange) -> Result<(), Error> {
        if self.kind == DnsBackend::Disabled {
            return Ok(());
        }
        run_scutil(&set_script(&iface.name, tunnel_v4(&iface.name), change)?)
    }
}

pub fn resolved_servers(_: Option<&str>) -> Option<Vec<IpAddr>> {
    None
}

pub fn undo(action: &UndoAction) -> Result<(), Error> {
    match action {
        UndoAction::RevertResolvedLink { iface, .. } => run_scutil(&remove_script(&iface.name)?),
        _ => Err(Error::Unsupported("this DNS undo on macOS")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(default_route: bool) -> DnsChange {
        DnsChange {
            servers: vec!["10.8.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            search_domains: vec!["corp.example".into()],
            resolve_domains: vec!["internal.example".into(), ".".into()],
            default_route,
        }
    }

    #[test]
    fn full_tunnel_publishes_dns_and_becomes_primary() {
        let s = set_script("utun7", Some(Ipv4Addr::new(10, 8, 0, 2)), &change(true)).unwrap();
        assert_eq!(
            s,
            "d.init\n\
             d.add ServerAddresses * 10.8.0.1 fd00::1\n\
             d.add SearchDomains * corp.example\n\
             d.add DomainName corp.example\n\
             set State:/Network/Service/OxiVPN-utun7/DNS\n\
             d.init\n\
             d.add Addresses * 10.8.0.2\n\
             d.add SubnetMasks * 255.255.255.255\n\
             d.add Router 10.8.0.2\n\
             d.add InterfaceName utun7\n\
             d.add OverridePrimary # 1\n\
             set State:/Network/Service/OxiVPN-utun7/IPv4\n\
             quit\n"
        );
    }

    #[test]
    fn split_tunnel_uses_supplemental_domains_and_stays_secondary() {
        let s = set_script("utun7", Some(Ipv4Addr::new(10, 8, 0, 2)), &change(false)).unwrap();
        assert!(s.contains("d.add SupplementalMatchDomains * internal.example corp.example\n"));
        assert!(!s.contains("OverridePrimary"));
        assert!(!s.contains("/IPv4"));
    }

    #[test]
    fn unsafe_tokens_are_refused_or_dropped() {
        assert!(set_script("utun7\nremove State:/x", None, &change(true)).is_err());
        let mut c = change(false);
        c.search_domains = vec!["evil\nset State:/Network/Global/DNS".into()];
        let s = set_script("utun7", None, &c).unwrap();
        assert!(!s.contains("Global"), "{s}");
        assert_eq!(
            remove_script("utun7").unwrap(),
            "remove State:/Network/Service/OxiVPN-utun7/DNS\n\
             remove State:/Network/Service/OxiVPN-utun7/IPv4\nquit\n"
        );
    }

    #[test]
    fn ifconfig_address() {
        let out = "utun7: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1500\n\
                   \tinet 10.8.0.2 --> 10.8.0.2 netmask 0xffffff00\n";
        assert_eq!(parse_ifconfig_v4(out), Some(Ipv4Addr::new(10, 8, 0, 2)));
        assert_eq!(parse_ifconfig_v4("utun7: flags=8051<UP>\n"), None);
    }
}
