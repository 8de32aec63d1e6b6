//! The DHCP server of an interface, from the DHCP client's lease: dhclient lease files,
//! NetworkManager (internal client key=value files and its dhclient files) and
//! systemd-networkd (`/run/systemd/netif/leases/<ifindex>`). Parsers are pure; the finder
//! reads the configured directories and takes the newest lease for the interface.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::types::IfaceId;

/// One `lease { ... }` block of a dhclient lease file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DhclientLease {
    pub interface: Option<String>,
    pub fixed_address: Option<Ipv4Addr>,
    pub server_identifier: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    /// `expire` as seconds since the epoch (`never` = `i64::MAX`).
    pub expire: Option<i64>,
}

/// Parses a dhclient (ISC) lease file; blocks come back in file order (dhclient appends,
/// so the last block for an interface is its newest). Unparseable lines are skipped.
pub fn parse_dhclient_leases(text: &str) -> Vec<DhclientLease> {
    let mut out = Vec::new();
    let mut cur: Option<DhclientLease> = None;
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("lease") && line.ends_with('{') {
            cur = Some(DhclientLease::default());
            continue;
        }
        if line.starts_with('}') {
            if let Some(l) = cur.take() {
                out.push(l);
            }
            continue;
        }
        let Some(lease) = cur.as_mut() else {
            continue;
        };
        let stmt = line.trim_end_matches(';').trim();
        let mut words = stmt.split_whitespace();
        match words.next() {
            Some("interface") => {
                lease.interface = words.next().map(|w| w.trim_matches('"').to_string());
            }
            Some("fixed-address") => lease.fixed_address = words.next().and_then(parse_v4),
            Some("expire") => lease.expire = parse_dhclient_time(&words.collect::<Vec<_>>()),
            Some("option") => match words.next() {
                Some("dhcp-server-identifier") => {
                    lease.server_identifier = words.next().and_then(parse_v4)
                }
                Some("routers") => {
                    let rest: String = words.collect::<Vec<_>>().join(" ");
                    lease.routers = rest.split(',').filter_map(|w| parse_v4(w.trim())).collect();
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    s.trim_matches(|c| c == '"' || c == ';').parse().ok()
}

/// `3 2026/11/25 07:42:31` (UTC), `epoch 1764056551`, or `never`.
fn parse_dhclient_time(words: &[&str]) -> Option<i64> {
    match words {
        ["never", ..] => Some(i64::MAX),
        ["epoch", secs, ..] => secs.parse().ok(),
        [_weekday, date, time, ..] => {
            let mut d = date.split('/').map(|x| x.parse::<i64>().ok());
            let (y, m, day) = (d.next()??, d.next()??, d.next()??);
            let mut t = time.split(':').map(|x| x.parse::<i64>().ok());
            let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
            // Bounded fields keep the arithmetic below far from overflow.
            if !(1..=9999).contains(&y)
                || !(1..=12).contains(&m)
                || !(1..=31).contains(&day)
                || !(0..=23).contains(&hh)
                || !(0..=59).contains(&mm)
                || !(0..=60).contains(&ss)
            {
                return None;
            }
            Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The newest lease for `iface` in one dhclient file: latest `expire`, later blocks win ties.
pub fn dhclient_server_for(text: &str, iface: &str) -> Option<Ipv4Addr> {
    parse_dhclient_leases(text)
        .into_iter()
        .enumerate()
        .filter(|(_, l)| l.interface.as_deref().is_none_or(|i| i == iface))
        .filter(|(_, l)| l.server_identifier.is_some())
        .max_by_key(|(pos, l)| (l.expire.unwrap_or(i64::MIN), *pos))
        .and_then(|(_, l)| l.server_identifier)
}

/// A systemd-style `KEY=value` lease (systemd-networkd, NetworkManager's internal client).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValueLease {
    pub address: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub server_address: Option<Ipv4Addr>,
}

pub fn parse_key_value_lease(text: &str) -> KeyValueLease {
    let mut out = KeyValueLease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let first = v.split_whitespace().next().unwrap_or("");
        match k.trim() {
            "ADDRESS" => out.address = parse_v4(first),
            "ROUTER" => out.router = parse_v4(first),
            "SERVER_ADDRESS" => out.server_address = parse_v4(first),
            _ => {}
        }
    }
    out
}

/// Where the lease files live; tests point these at their own directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSources {
    pub dhclient_dirs: Vec<PathBuf>,
    pub networkmanager_dir: PathBuf,
    pub networkd_dir: PathBuf,
}

impl Default for LeaseSources {
    fn default() -> Self {
        Self {
            dhclient_dirs: vec!["/var/lib/dhcp".into(), "/var/lib/dhclient".into()],
            networkmanager_dir: "/var/lib/NetworkManager".into(),
            networkd_dir: "/run/systemd/netif/leases".into(),
        }
    }
}

/// The DHCP server found for an interface, and the file that said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLease {
    pub server: Ipv4Addr,
    pub source: PathBuf,
}

/// The DHCP server of `iface` from the newest lease file that names one.
pub fn find_dhcp_server(sources: &LeaseSources, iface: &IfaceId) -> Option<FoundLease> {
    let mut found: Vec<(SystemTime, FoundLease)> = Vec::new();
    let mut consider = |path: PathBuf, server: Option<Ipv4Addr>| {
        if let Some(server) = server {
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((
                mtime,
                FoundLease {
                    server,
                    source: path,
                },
            ));
        }
    };
    // systemd-networkd: one file per interface index.
    let nd = sources.networkd_dir.join(iface.index.to_string());
    if let Ok(text) = std::fs::read_to_string(&nd) {
        consider(nd, parse_key_value_lease(&text).server_address);
    }
    // NetworkManager: internal-<uuid>-<iface>.lease (key=value) or dhclient-<uuid>-<iface>.lease.
    let suffix = format!("-{}.lease", iface.name);
    for path in list_dir(&sources.networkmanager_dir) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(&suffix) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let server = if name.starts_with("dhclient") {
            dhclient_server_for(&text, &iface.name)
        } else {
            parse_key_value_lease(&text).server_address
        };
        consider(path, server);
    }
    // dhclient: dhclient.leases, dhclient.<iface>.leases, dhclient-<uuid>-<iface>.lease, or
    // whatever `-lf` named (any *.lease(s) in the configured directories; IPv6 leases carry
    // no dhcp-server-identifier and so never match).
    for dir in &sources.dhclient_dirs {
        for path in list_dir(dir) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with("dhclient6") {
                continue;
            }
            if !(name.ends_with(".leases") || name.ends_with(".lease")) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            consider(path.clone(), dhclient_server_for(&text, &iface.name));
        }
    }
    found.into_iter().max_by_key(|(t, _)| *t).map(|(_, f)| f)
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const DHCLIENT: &str = r#"
default-duid "\000\001\000\001,\2363\014\266\234\357\331\015";
lease {
  interface "eth0";
  fixed-address 192.168.1.2;
  option subnet-mask 255.255.255.0;
  option routers 192.168.1.1;
  option dhcp-lease-time 600;
  option dhcp-message-type 5;
  option dhcp-server-identifier 192.168.2.9;
  renew 3 2026/11/25 06:10:01;
  rebind 3 2026/11/25 06:13:46;
  expire 3 2026/11/25 06:15:01;
}
lease {
  interface "wlan0";
  fixed-address 10.1.1.7;
  option routers 10.1.1.1, 10.1.1.2;
  option dhcp-server-identifier 10.1.1.1;
  expire 3 2026/11/25 09:00:00;
}
lease {
  interface "eth0";
  fixed-address 192.168.1.2;
  option routers 192.168.1.1;
  option dhcp-server-identifier 192.168.2.2;   # the relay's upstream server
  renew 3 2026/11/25 07:10:01;
  expire 3 2026/11/25 07:15:01;
}
"#;

    #[test]
    fn dhclient_blocks_are_parsed() {
        let leases = parse_dhclient_leases(DHCLIENT);
        assert_eq!(leases.len(), 3);
        assert_eq!(leases[1].interface.as_deref(), Some("wlan0"));
        assert_eq!(
            leases[1].routers,
            vec![
                "10.1.1.1".parse::<Ipv4Addr>().unwrap(),
                "10.1.1.2".parse().unwrap()
            ]
        );
        assert_eq!(
            leases[2].fixed_address,
            Some("192.168.1.2".parse().unwrap())
        );
        // 2026-11-25 07:15:01 UTC
        assert_eq!(leases[2].expire, Some(1_795_590_901));
    }

    #[test]
    fn dhclient_takes_the_latest_lease_of_the_interface() {
        assert_eq!(
            dhclient_server_for(DHCLIENT, "eth0"),
            Some("192.168.2.2".parse().unwrap())
        );
        assert_eq!(
            dhclient_server_for(DHCLIENT, "wlan0"),
            Some("10.1.1.1".parse().unwrap())
        );
        assert_eq!(dhclient_server_for(DHCLIENT, "eth9"), None);
    }

    #[test]
    fn dhclient_latest_by_expiry_not_position() {
        let text = "lease {\n interface \"eth0\";\n option dhcp-server-identifier 1.1.1.1;\n expire epoch 2000000000; # later\n}\nlease {\n interface \"eth0\";\n option dhcp-server-identifier 2.2.2.2;\n expire epoch 1000000000;\n}\n";
        assert_eq!(
            dhclient_server_for(text, "eth0"),
            Some("1.1.1.1".parse().unwrap())
        );
    }

    #[test]
    fn dhclient_garbage_does_not_panic() {
        let text = "lease {\n interface\n option dhcp-server-identifier not-an-ip;\n expire 3 2026/13/99 xx;\n}\n}\n{\nlease {\n expire 3 99999999999999999/12/01 00:00:00;\n}\nlease {\n expire 3 2026/12/01 99999999999999999:00:00;\n}\n";
        let leases = parse_dhclient_leases(text);
        assert_eq!(leases.len(), 3);
        assert!(leases.iter().all(|l| l.expire.is_none()));
        assert_eq!(leases[0].server_identifier, None);
        assert_eq!(leases[0].expire, None);
    }

    const NETWORKD: &str = "# This is private data. Do not parse.\nADDRESS=192.168.1.2\nNETMASK=255.255.255.0\nROUTER=192.168.1.1\nSERVER_ADDRESS=192.168.2.2\nT1=300\nT2=525\nLIFETIME=600\nDNS=192.168.1.1\nCLIENTID=ff1e2f3a\n";

    const NM_INTERNAL: &str = "# This is private data. Do not parse.\nADDRESS=10.0.2.15\nNETMASK=255.255.255.0\nROUTER=10.0.2.2\nSERVER_ADDRESS=10.0.2.2\nNEXT_SERVER=10.0.2.4\nT1=43200\nLIFETIME=86400\nDNS=10.0.2.3\n";

    #[test]
    fn key_value_leases_are_parsed() {
        let l = parse_key_value_lease(NETWORKD);
        assert_eq!(l.server_address, Some("192.168.2.2".parse().unwrap()));
        assert_eq!(l.router, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(l.address, Some("192.168.1.2".parse().unwrap()));
        let nm = parse_key_value_lease(NM_INTERNAL);
        assert_eq!(nm.server_address, Some("10.0.2.2".parse().unwrap()));
        assert_eq!(
            parse_key_value_lease("SERVER_ADDRESS=bogus\n=\n").server_address,
            None
        );
    }

    fn sources(root: &Path) -> LeaseSources {
        LeaseSources {
            dhclient_dirs: vec![root.join("dhcp")],
            networkmanager_dir: root.join("nm"),
            networkd_dir: root.join("networkd"),
        }
    }

    #[test]
    fn finder_reads_each_source() {
        let eth0 = IfaceId {
            index: 7,
            name: "eth0".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path());
        assert_eq!(find_dhcp_server(&s, &eth0), None);

        std::fs::create_dir_all(dir.path().join("networkd")).unwrap();
        std::fs::write(dir.path().join("networkd/7"), NETWORKD).unwrap();
        std::fs::write(dir.path().join("networkd/8"), NM_INTERNAL).unwrap();
        let f = find_dhcp_server(&s, &eth0).unwrap();
        assert_eq!(f.server, "192.168.2.2".parse::<Ipv4Addr>().unwrap());
        assert!(f.source.ends_with("networkd/7"));
        std::fs::remove_file(dir.path().join("networkd/7")).unwrap();

        std::fs::create_dir_all(dir.path().join("nm")).unwrap();
        std::fs::write(
            dir.path().join("nm/internal-0d5c-4b1e-eth0.lease"),
            NM_INTERNAL,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("nm/internal-0d5c-4b1e-eth1.lease"),
            NETWORKD,
        )
        .unwrap();
        let f = find_dhcp_server(&s, &eth0).unwrap();
        assert_eq!(f.server, "10.0.2.2".parse::<Ipv4Addr>().unwrap());
        std::fs::remove_file(dir.path().join("nm/internal-0d5c-4b1e-eth0.lease")).unwrap();

        // NetworkManager with its dhclient plugin: dhclient syntax in its own directory.
        std::fs::write(
            dir.path().join("nm/dhclient-0d5c-4b1e-eth0.lease"),
            DHCLIENT,
        )
        .unwrap();
        let f = find_dhcp_server(&s, &eth0).unwrap();
        assert_eq!(f.server, "192.168.2.2".parse::<Ipv4Addr>().unwrap());
        assert!(f.source.ends_with("nm/dhclient-0d5c-4b1e-eth0.lease"));
        std::fs::remove_file(dir.path().join("nm/dhclient-0d5c-4b1e-eth0.lease")).unwrap();

        std::fs::create_dir_all(dir.path().join("dhcp")).unwrap();
        std::fs::write(dir.path().join("dhcp/dhclient.eth0.leases"), DHCLIENT).unwrap();
        let f = find_dhcp_server(&s, &eth0).unwrap();
        assert_eq!(f.server, "192.168.2.2".parse::<Ipv4Addr>().unwrap());
        assert!(f.source.ends_with("dhclient.eth0.leases"));
        // A lease file named by `dhclient -lf`, written later, wins.
        let custom = DHCLIENT.replace("192.168.2.2", "192.168.3.3");
        let path = dir.path().join("dhcp/cli.leases");
        std::fs::write(&path, custom).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
        let f = find_dhcp_server(&s, &eth0).unwrap();
        assert_eq!(f.server, "192.168.3.3".parse::<Ipv4Addr>().unwrap());
    }

    proptest::proptest! {
        /// Lease files are input from other programs: nothing in them may panic us.
        #[test]
        fn parsers_never_panic(text in "(lease \\{\n|  [a-z-]{1,12} [0-9/:. \"a-z,]{0,30};\n|\\}\n|[A-Z_]{1,8}=[0-9./a-z]{0,20}\n){0,20}") {
            let _ = parse_dhclient_leases(&text);
            let _ = dhclient_server_for(&text, "eth0");
            let _ = parse_key_value_lease(&text);
            let _ = crate::dns::parse_resolv_conf_servers(&text);
        }

        #[test]
        fn dhclient_times_never_panic(y in proptest::num::i64::ANY, m in proptest::num::i64::ANY, d in 0i64..40) {
            let date = format!("{y}/{m}/{d}");
            let _ = parse_dhclient_time(&["3", &date, "12:00:00"]);
        }
    }
}
