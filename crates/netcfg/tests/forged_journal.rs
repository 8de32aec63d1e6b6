//! Root-only: a forged undo journal (what anyone able to write the state dir could leave
//! there) makes recovery touch nothing that OxiVPN did not make. Each forged entry names
//! something real in a network namespace this test creates: a decoy file, a file that
//! does not exist yet, the default route, a foreign address, a foreign TUN, a TUN with our
//! prefix but another index, a foreign nftables table, a D-Bus address that records
//! whether anyone dialed it. Two genuine entries next to them are still undone, so the
//! check filters rather than refusing whole journals. Skips with a notice when not root.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::process::Command;

use netcfg::*;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}

fn sh(ns: &str, script: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace with eth0 192.168.1.2/24 (veth, peer lan0 in the same namespace),
/// default via 192.168.1.1, a foreign TUN `tun0`, a TUN `oxi5` and a foreign
/// nftables table `inet other`. Deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!("oxnc-forged-{}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success());
        let ns = Netns(name);
        sh(
            &ns.0,
            "ip link set lo up && \
             ip link add eth0 type veth peer name lan0 && \
             ip addr add 192.168.1.2/24 dev eth0 && \
             ip link set eth0 up && ip link set lan0 up && \
             ip route add default via 192.168.1.1 dev eth0 && \
             ip tuntap add dev tun0 mode tun && ip link set tun0 up && \
             ip tuntap add dev oxi5 mode tun && \
             nft add table inet other && nft add chain inet other c",
        );
        ns
    }

    /// Runs `f` on a thread that has entered this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let fd = File::open(&path).unwrap();
            // SAFETY: a valid namespace fd; affects only this thread.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn entry(action: UndoAction, kind: Option<Reason>) -> JournalEntry {
    JournalEntry {
        action,
        kind,
        why: "forged".into(),
        skipped: false,
    }
}

/// What the namespace looks like: routes, links, addresses, nftables tables.
fn snapshot(ns: &Netns) -> (Vec<RouteRecord>, Vec<IfaceId>, Vec<IfaceAddress>, String) {
    let (mut routes, links, addrs) = ns.run(|| {
        let mut r = Routes::open().unwrap();
        (
            r.dump().unwrap(),
            r.links().unwrap(),
            r.addresses().unwrap(),
        )
    });
    routes.sort();
    (routes, links, addrs, sh(&ns.0, "nft list tables"))
}

#[test]
fn a_forged_journal_touches_nothing_that_is_not_ours() {
    if !is_root() {
        eprintln!("SKIP a_forged_journal_touches_nothing_that_is_not_ours: needs root (netns)");
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.8.0.1\n").unwrap();
    let decoy = dir.path().join("decoy");
    std::fs::write(&decoy, "precious").unwrap();
    let planted = dir.path().join("planted");
    let bus_path = dir.path().join("bus");
    let bus = UnixListener::bind(&bus_path).unwrap();
    bus.set_nonblocking(true).unwrap();

    let (links, default_route, ours) = ns.run(|| {
        let mut r = Routes::open().unwrap();
        let links = r.links().unwrap();
        let eth0 = links.iter().find(|l| l.name == "eth0").unwrap().clone();
        let default_route = r
            .dump()
            .unwrap()
            .into_iter()
            .find(|k| k.dst.prefix_len() == 0 && k.dst.addr().is_ipv4())
            .unwrap();
        // One genuine leftover: a route carrying our protocol number.
        let ours = RouteRecord {
            dst: "203.0.113.0/24".parse().unwrap(),
            gateway: Some("192.168.1.1".parse().unwrap()),
            oif: Some(eth0.index),
            table: 254,
            metric: None,
            protocol: ROUTE_PROTO_OXIVPN,
            scope: RouteRecord::SCOPE_UNIVERSE,
            kind: RouteRecord::KIND_UNICAST,
            pref_src: None,
            onlink: false,
        };
        assert_eq!(r.add(&ours).unwrap(), AddOutcome::Added);
        (links, default_route, ours)
    });
    let link = |name: &str| links.iter().find(|l| l.name == name).unwrap().clone();
    let (eth0, tun0, oxi5) = (link("eth0"), link("tun0"), link("oxi5"));
    assert_ne!(default_route.protocol, ROUTE_PROTO_OXIVPN);
    let oxi5_elsewhere = IfaceId {
        index: oxi5.index + 1000,
        name: oxi5.name.clone(),
    };
    let foreign_route = RouteRecord {
        dst: "198.51.100.0/24".parse().unwrap(),
        protocol: 4, // static
        ..ours.clone()
    };

    let forged = vec![
        // A TUN of ours by name, but not at that index: whatever is there is not ours.
        entry(
            UndoAction::DeleteLink {
                iface: oxi5_elsewhere.clone(),
            },
            None,
        ),
        entry(
            UndoAction::DeleteLink {
                iface: tun0.clone(),
            },
            None,
        ),
        entry(
            UndoAction::DeleteLink {
                iface: eth0.clone(),
            },
            None,
        ),
        entry(
            UndoAction::DeleteAddress {
                iface: eth0.clone(),
                addr: TunAddress::V4(TunV4::Subnet {
                    addr: "192.168.1.2".parse().unwrap(),
                    prefix_len: 24,
                }),
            },
            Some(Reason::TunnelAddress),
        ),
        entry(
            UndoAction::DeleteRoute(default_route.clone()),
            Some(Reason::Redirect),
        ),
        // A route we "deleted" to put back: the planner deletes only the default route.
        entry(
            UndoAction::RestoreRoute(foreign_route.clone()),
            Some(Reason::ReplaceDefault),
        ),
        entry(
            UndoAction::RestoreFile {
                path: decoy.clone(),
                previous: None,
            },
            Some(Reason::Dns),
        ),
        entry(
            UndoAction::RestoreFile {
                path: planted.clone(),
                previous: Some(b"owned by root now".to_vec()),
            },
            Some(Reason::Dns),
        ),
        entry(
            UndoAction::DeleteFirewallTable {
                family: "inet".into(),
                table: "other".into(),
            },
            None,
        ),
        entry(
            UndoAction::RevertResolvedLink {
                iface: oxi5_elsewhere,
                dbus_address: Some(format!("unix:path={}", bus_path.display())),
            },
            Some(Reason::Dns),
        ),
        entry(
            UndoAction::RevertResolvedLink {
                iface: tun0.clone(),
                dbus_address: None,
            },
            Some(Reason::Dns),
        ),
        // Genuine: our route, and the configured resolv.conf's previous bytes.
        entry(
            UndoAction::DeleteRoute(ours.clone()),
            Some(Reason::PushedRoute),
        ),
        entry(
            UndoAction::RestoreFile {
                path: resolv.clone(),
                previous: Some(b"nameserver 192.168.1.1\n".to_vec()),
            },
            Some(Reason::Dns),
        ),
    ];
    // Refused by the trust check: all but the oxi5 entry (our prefix: it passes the
    // check and is then found not to be that TUN at that index) and the two genuine ones.
    let n_refused = forged.len() - 3;
    let journal = dir.path().join("state/journal-1.json");
    let mut j = netcfg::journal::Journal::create(&journal).unwrap();
    j.push_all(forged).unwrap();
    drop(j);

    let before = ns.run(|| {
        let mut r = Routes::open().unwrap();
        let mut v = r.dump().unwrap();
        v.retain(|k| !k.is_ours());
        v.sort();
        v
    });
    let (_, links_before, addrs_before, tables_before) = snapshot(&ns);
    let trust = JournalTrust {
        resolv_conf: resolv.clone(),
        ..JournalTrust::default()
    };
    let report = {
        let journal = journal.clone();
        ns.run(move || recover_trusting(&journal, &trust).unwrap())
    };
    eprintln!("recover: {report:?}");

    let (routes_after, links_after, addrs_after, tables_after) = snapshot(&ns);
    assert_eq!(report.refused, n_refused, "{report:?}");
    assert_eq!(report.undone, 3, "{report:?}");
    // Only our route went; everything else is as it was.
    assert!(!routes_after.contains(&ours));
    assert_eq!(routes_after, before);
    assert!(routes_after.contains(&default_route));
    assert!(!routes_after.iter().any(|r| r.dst == foreign_route.dst));
    assert_eq!(links_after, links_before);
    assert!(links_after.contains(&tun0) && links_after.contains(&oxi5));
    assert_eq!(addrs_after, addrs_before);
    assert_eq!(tables_after, tables_before);
    assert!(tables_after.contains("table inet other"), "{tables_after}");
    assert_eq!(std::fs::read(&decoy).unwrap(), b"precious");
    assert!(!planted.exists(), "a forged entry planted a file");
    assert!(
        matches!(bus.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the helper dialed a forged D-Bus address"
    );
    // The genuine DNS entry was undone; the journal is gone (refused entries are dropped).
    assert_eq!(std::fs::read(&resolv).unwrap(), b"nameserver 192.168.1.1\n");
    assert!(!journal.exists());
}

#[test]
fn the_state_dir_is_made_0700_and_a_loose_one_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var/lib/oxivpn");
    netcfg::journal::ensure_state_dir(&state).unwrap();
    let meta = std::fs::metadata(&state).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o700);
    // Again: an existing good one is fine.
    netcfg::journal::ensure_state_dir(&state).unwrap();

    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = netcfg::journal::ensure_state_dir(&state).unwrap_err();
    assert!(e.to_string().contains("oxivpn"), "{e}");
    assert!(e.to_string().contains("0777"), "{e}");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).unwrap();
    assert!(netcfg::journal::ensure_state_dir(&state).is_err());
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    netcfg::journal::ensure_state_dir(&state).unwrap();

    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    assert!(netcfg::journal::ensure_state_dir(&link).is_err());
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(netcfg::journal::ensure_state_dir(&file).is_err());

    if is_root() {
        std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
        let e = netcfg::journal::ensure_state_dir(&state).unwrap_err();
        assert!(e.to_string().contains("uid 65534"), "{e}");
    } else {
        eprintln!("SKIP (part): another owner needs root to chown");
    }
}
