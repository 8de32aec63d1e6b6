//! Name Resolution Policy Table rules for the tunnel on Windows (what the DNS client
//! consults before any adapter's servers): split DNS sends only the pushed domains to
//! the tunnel's servers; a full tunnel gets a rule for "." so every name goes there
//! (otherwise Windows asks all adapters' servers in parallel). Pure, tested on every
//! OS; `windows.rs` writes the rule under [`NRPT_PARENT`] and removes it on undo.

use std::net::IpAddr;

use crate::plan::DnsChange;

/// The local (non-group-policy) NRPT: one subkey per rule.
pub const NRPT_PARENT: &str =
    r"SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig";
/// ConfigOptions: "use GenericDNSServers".
pub const CONFIG_OPTIONS_GENERIC_SERVERS: u32 = 0x8;
pub const RULE_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NrptRule {
    /// Subkey name under [`NRPT_PARENT`]; one per tunnel interface, so undo finds it.
    pub key: String,
    /// `Name` (REG_MULTI_SZ): ".corp.example" matches the domain and its subdomains,
    /// "." matches every name.
    pub names: Vec<String>,
    /// `GenericDNSServers` (REG_SZ), `;`-separated.
    pub servers: String,
}

pub fn rule_key(iface_index: u32) -> String {
    format!("OxiVPN-{iface_index}")
}

/// The rule for `change` on the tunnel interface, or `None` when there is nothing to
/// route (no servers, or a split tunnel without domains).
pub fn rule(iface_index: u32, change: &DnsChange) -> Option<NrptRule> {
    if change.servers.is_empty() {
        return None;
    }
    let names: Vec<String> = if change.default_route {
        vec![".".to_owned()]
    } else {
        let mut v: Vec<String> = change
            .resolve_domains
            .iter()
            .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
            .filter(|d| {
                !d.is_empty()
                    && d.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            })
            .map(|d| format!(".{d}"))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if names.is_empty() {
        return None;
    }
    Some(NrptRule {
        key: rule_key(iface_index),
        names,
        servers: servers(&change.servers),
    })
}

fn servers(s: &[IpAddr]) -> String {
    s.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// REG_MULTI_SZ data: each string NUL-terminated, then one more NUL.
pub fn multi_sz(names: &[String]) -> Vec<u16> {
    let mut v: Vec<u16> = Vec::new();
    for n in names {
        v.extend(n.encode_utf16());
        v.push(0);
    }
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(default_route: bool, domains: &[&str]) -> DnsChange {
        DnsChange {
            servers: vec!["10.8.0.1".parse().unwrap(), "fd00::53".parse().unwrap()],
            search_domains: vec!["corp.example".into()],
            resolve_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            default_route,
        }
    }

    #[test]
    fn full_tunnel_sends_every_name_to_the_tunnel() {
        let r = rule(17, &change(true, &["."])).unwrap();
        assert_eq!(r.key, "OxiVPN-17");
        assert_eq!(r.names, vec!["."]);
        assert_eq!(r.servers, "10.8.0.1;fd00::53");
    }

    #[test]
    fn split_tunnel_routes_only_its_domains() {
        let r = rule(
            17,
            &change(false, &["Corp.Example.", "lab.example", ".", "bad domain"]),
        )
        .unwrap();
        assert_eq!(r.names, vec![".corp.example", ".lab.example"]);
        assert_eq!(rule(17, &change(false, &[])), None);
        assert_eq!(rule(17, &change(false, &["."])), None);
        let mut c = change(true, &[]);
        c.servers.clear();
        assert_eq!(rule(17, &c), None);
    }

    #[test]
    fn multi_sz_layout() {
        assert_eq!(
            multi_sz(&[".a".into(), ".b".into()]),
            vec![46, 97, 0, 46, 98, 0, 0]
        );
    }
}
