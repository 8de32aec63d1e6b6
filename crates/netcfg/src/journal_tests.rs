//! Tests of `journal.rs` (kept apart so that module stays small).
use super::*;

fn entry(why: &str) -> JournalEntry {
    JournalEntry {
        action: UndoAction::RestoreFile {
            path: "/x".into(),
            previous: Some(b"a\nb".to_vec()),
        },
        kind: Some(Reason::Dns),
        why: why.into(),
        skipped: false,
    }
}

#[test]
fn entries_survive_on_disk_and_block_a_second_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/journal.json");
    let mut j = Journal::create(&path).unwrap();
    j.push(entry("one")).unwrap();
    let i = j.push(entry("two")).unwrap();
    j.mark_skipped(i).unwrap();
    let back = Journal::load(&path).unwrap().unwrap();
    assert_eq!(back.entries().len(), 2);
    assert_eq!(back.entries()[0], entry("one"));
    assert!(back.entries()[1].skipped);
    assert!(matches!(
        Journal::create(&path),
        Err(Error::JournalExists { .. })
    ));
    j.remove().unwrap();
    assert!(Journal::load(&path).unwrap().is_none());
    assert!(Journal::create(&path).is_ok());
}

#[test]
fn the_kill_switch_entry_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firewall.json");
    let e = JournalEntry {
        action: UndoAction::DeleteFirewallTable {
            family: "inet".into(),
            table: "oxivpn".into(),
        },
        kind: None,
        why: "kill switch".into(),
        skipped: false,
    };
    Journal::create(&path).unwrap().push(e.clone()).unwrap();
    assert_eq!(Journal::load(&path).unwrap().unwrap().entries(), [e]);
}

#[test]
fn only_changes_that_outlive_a_reboot_need_an_fsync() {
    let file = UndoAction::RestoreFile {
        path: "/etc/resolv.conf".into(),
        previous: None,
    };
    let table = UndoAction::DeleteFirewallTable {
        family: "inet".into(),
        table: "oxivpn".into(),
    };
    assert!(file.survives_reboot());
    // The kernel's nftables table is gone after a reboot; WFP filters are not.
    assert_eq!(table.survives_reboot(), !cfg!(target_os = "linux"));
}

#[test]
fn a_deferred_write_is_on_disk_at_once_and_owes_its_fsyncs_until_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let route_only = JournalEntry {
        action: UndoAction::DeleteFirewallTable {
            family: "inet".into(),
            table: "oxivpn".into(),
        },
        kind: None,
        why: "kill switch".into(),
        skipped: false,
    };
    let mut j = Journal::create(&path).unwrap();
    j.push_all_deferred(vec![route_only.clone()]).unwrap();
    // A crashed process's successor reads the list before any fsync.
    assert_eq!(
        Journal::load(&path).unwrap().unwrap().entries(),
        [route_only]
    );
    assert_eq!(j.unsynced, !cfg!(target_os = "linux"));
    j.push_all_deferred(vec![entry("dns")]).unwrap();
    assert!(j.unsynced, "a resolv.conf entry owes its fsyncs");
    j.make_durable().unwrap();
    assert!(!j.unsynced);
    assert_eq!(Journal::load(&path).unwrap().unwrap().entries().len(), 2);
    // An owed fsync is paid by the next ordinary write too.
    j.push_all_deferred(vec![]).unwrap();
    assert!(j.unsynced);
    j.mark_skipped(0).unwrap();
    assert!(!j.unsynced);
}

#[test]
fn a_journal_without_durable_entries_still_reads_back_and_blocks_a_second_session() {
    // What a crashed helper's successor sees: the list, whether fsync'ed or not.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("firewall.json");
    let e = JournalEntry {
        action: UndoAction::DeleteFirewallTable {
            family: "inet".into(),
            table: "oxivpn".into(),
        },
        kind: None,
        why: "kill switch".into(),
        skipped: false,
    };
    let mut j = Journal::create(&path).unwrap();
    j.push(e.clone()).unwrap();
    assert!(!j.durable || !cfg!(target_os = "linux"));
    // A durable entry after it makes this and every later write fsync'ed.
    j.push(entry("dns")).unwrap();
    assert!(j.durable);
    j.replace(vec![e.clone()]).unwrap();
    assert_eq!(Journal::load(&path).unwrap().unwrap().entries(), [e]);
    assert!(matches!(
        Journal::create(&path),
        Err(Error::JournalExists { .. })
    ));
    assert!(Journal::load(&path).unwrap().unwrap().durable);
}

#[cfg(target_os = "linux")]
fn route(dst: &str, protocol: u8) -> RouteRecord {
    RouteRecord {
        dst: dst.parse().unwrap(),
        gateway: Some("192.168.1.1".parse().unwrap()),
        oif: Some(2),
        table: TABLE_MAIN,
        metric: None,
        protocol,
        scope: RouteRecord::SCOPE_UNIVERSE,
        kind: RouteRecord::KIND_UNICAST,
        pref_src: None,
        onlink: false,
    }
}

#[cfg(target_os = "linux")]
fn with(action: UndoAction, kind: Option<Reason>) -> JournalEntry {
    JournalEntry {
        action,
        kind,
        why: "test".into(),
        skipped: false,
    }
}

#[test]
#[cfg(target_os = "linux")]
fn trust_accepts_only_what_oxivpn_makes() {
    let t = JournalTrust::default();
    let oxi0 = IfaceId {
        index: 7,
        name: "oxi0".into(),
    };
    let eth0 = IfaceId {
        index: 2,
        name: "eth0".into(),
    };
    let bare = IfaceId {
        index: 8,
        name: "tun0".into(),
    };
    let journal = [
        with(
            UndoAction::DeleteLink {
                iface: oxi0.clone(),
            },
            None,
        ),
        with(
            UndoAction::DeleteLink {
                iface: eth0.clone(),
            },
            None,
        ),
        with(
            UndoAction::DeleteLink {
                iface: bare.clone(),
            },
            None,
        ),
    ];
    let links = t.created_links(&journal, None);
    assert_eq!(links, std::slice::from_ref(&oxi0));
    let ok = |a: UndoAction, k: Option<Reason>| t.check(&with(a, k), &links);
    let addr = TunAddress::V4(crate::types::TunV4::Subnet {
        addr: "10.8.0.2".parse().unwrap(),
        prefix_len: 24,
    });

    assert!(ok(UndoAction::DeleteRoute(route("0.0.0.0/1", 87)), None).is_ok());
    assert!(ok(UndoAction::DeleteRoute(route("0.0.0.0/0", 3)), None).is_err());
    let default = route("0.0.0.0/0", 3);
    assert!(ok(
        UndoAction::RestoreRoute(default.clone()),
        Some(Reason::ReplaceDefault)
    )
    .is_ok());
    assert!(ok(UndoAction::RestoreRoute(default), Some(Reason::Redirect)).is_err());
    assert!(ok(
        UndoAction::RestoreRoute(route("10.0.0.0/8", 3)),
        Some(Reason::ReplaceDefault)
    )
    .is_err());
    assert!(ok(
        UndoAction::RestoreRoute(route("::/0", 3)),
        Some(Reason::ReplaceDefault)
    )
    .is_err());
    let file = |p: &str| UndoAction::RestoreFile {
        path: p.into(),
        previous: None,
    };
    assert!(ok(file("/etc/resolv.conf"), None).is_ok());
    assert!(ok(file("/etc/shadow"), None).is_err());
    assert!(ok(file("/etc/../etc/resolv.conf"), None).is_err());
    let fw = |f: &str, n: &str| UndoAction::DeleteFirewallTable {
        family: f.into(),
        table: n.into(),
    };
    assert!(ok(fw("inet", "oxivpn"), None).is_ok());
    assert!(ok(fw("inet", "other"), None).is_err());
    assert!(ok(fw("ip", "oxivpn"), None).is_err());
    let resolved = |i: &IfaceId, bus: Option<&str>| UndoAction::RevertResolvedLink {
        iface: i.clone(),
        dbus_address: bus.map(str::to_owned),
    };
    assert!(ok(resolved(&oxi0, None), None).is_ok());
    let r = ok(resolved(&oxi0, Some("unix:path=/tmp/evil")), None).unwrap_err();
    assert!(r.to_string().contains("/tmp/evil"), "{r}");
    assert!(ok(resolved(&eth0, None), None).is_err());
    assert!(ok(
        UndoAction::DeleteAddress {
            iface: oxi0.clone(),
            addr
        },
        None
    )
    .is_ok());
    assert!(ok(
        UndoAction::DeleteAddress {
            iface: eth0.clone(),
            addr
        },
        None
    )
    .is_err());
    assert!(ok(UndoAction::DeleteLink { iface: oxi0 }, None).is_ok());
    assert!(ok(
        UndoAction::DeleteLink {
            iface: eth0.clone()
        },
        None
    )
    .is_err());
    assert!(ok(UndoAction::DeleteLink { iface: bare }, None).is_err());
    // A live session's own TUN is trusted whatever its name (`--dev tun5`).
    let own = IfaceId {
        index: 9,
        name: "tun5".into(),
    };
    let links = t.created_links(&[], Some(&own));
    assert!(t
        .check(
            &with(UndoAction::DeleteAddress { iface: own, addr }, None),
            &links
        )
        .is_ok());
    // Another configured bus is trusted only when configured.
    let t2 = JournalTrust {
        dbus_address: Some("unix:path=/tmp/test-bus".into()),
        ..JournalTrust::default()
    };
    let l2 = t2.created_links(&journal, None);
    assert!(t2
        .check(
            &with(
                resolved(&links_first(&l2), Some("unix:path=/tmp/test-bus")),
                None
            ),
            &l2
        )
        .is_ok());
    assert!(t2
        .check(&with(resolved(&links_first(&l2), None), None), &l2)
        .is_err());
}

#[cfg(target_os = "linux")]
fn links_first(l: &[IfaceId]) -> IfaceId {
    l[0].clone()
}

#[test]
fn a_corrupt_journal_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    std::fs::write(&path, b"{not json").unwrap();
    let e = Journal::load(&path).unwrap_err();
    assert!(matches!(e, Error::JournalFormat { .. }));
    assert!(e.to_string().contains("journal.json"));
}
