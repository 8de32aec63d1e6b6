//! The systemd-resolved back end against a stand-in resolve1 service of our own on a
//! private bus (`dbus-daemon --session --address=unix:path=...`). Never touches the
//! machine's DNS. Skips with a notice when dbus-daemon is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netcfg::*;

/// The private bus; killed (by its PID) on every exit path.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let sock: PathBuf = dir.path().join("bus");
        let address = format!("unix:path={}", sock.display());
        let child = match Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: dbus-daemon cannot run here ({e}); `apt-get install dbus-daemon`");
                return None;
            }
        };
        let bus = Self {
            child,
            address,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(bus)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records every call it gets, in order.
#[derive(Clone, Default)]
struct Resolve1 {
    calls: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.freedesktop.resolve1.Manager")]
impl Resolve1 {
    #[zbus(name = "SetLinkDNS")]
    fn set_link_dns(&self, ifindex: i32, addresses: Vec<(i32, Vec<u8>)>) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("SetLinkDNS {ifindex} {addresses:?}"));
    }

    #[zbus(name = "SetLinkDomains")]
    fn set_link_domains(&self, ifindex: i32, domains: Vec<(String, bool)>) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("SetLinkDomains {ifindex} {domains:?}"));
    }

    #[zbus(name = "SetLinkDefaultRoute")]
    fn set_link_default_route(&self, ifindex: i32, enable: bool) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("SetLinkDefaultRoute {ifindex} {enable}"));
    }

    #[zbus(property, name = "DNS")]
    fn dns(&self) -> Vec<(i32, i32, Vec<u8>)> {
        vec![
            (2, 2, vec![192, 168, 1, 1]),
            (
                0,
                10,
                vec![
                    0x26, 0x06, 0x47, 0, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x11,
                ],
            ),
        ]
    }

    #[zbus(name = "RevertLink")]
    fn revert_link(&self, ifindex: i32) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("RevertLink {ifindex}"));
    }
}

fn tun() -> IfaceId {
    IfaceId {
        index: 42,
        name: "oxi0".into(),
    }
}

fn opts(bus: &Bus, resolv: PathBuf) -> DnsOptions {
    DnsOptions {
        backend: DnsBackendChoice::Auto,
        resolv_conf: resolv,
        dbus_address: Some(bus.address.clone()),
    }
}

#[test]
fn resolved_gets_link_dns_domains_and_default_route_then_revert() {
    let Some(bus) = Bus::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");

    // Without resolved's name on the bus, Auto falls back to the file.
    let dns = Dns::new(&opts(&bus, resolv.clone())).unwrap();
    assert_eq!(dns.backend(), DnsBackend::ResolvConf);

    let service = Resolve1::default();
    let _server = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.resolve1")
        .unwrap()
        .serve_at("/org/freedesktop/resolve1", service.clone())
        .unwrap()
        .build()
        .unwrap();

    let mut dns = Dns::new(&opts(&bus, resolv.clone())).unwrap();
    assert_eq!(dns.backend(), DnsBackend::Resolved);
    let change = DnsChange {
        servers: vec![
            "10.0.0.3".parse::<IpAddr>().unwrap(),
            "fd00:10::3".parse().unwrap(),
        ],
        search_domains: vec!["corp.example".into()],
        resolve_domains: vec!["lab.example".into(), ".".into()],
        default_route: true,
    };
    let undo = dns.prepare(&tun(), &change).unwrap().unwrap();
    assert_eq!(
        undo,
        UndoAction::RevertResolvedLink {
            iface: tun(),
            dbus_address: Some(bus.address.clone()),
        }
    );
    dns.apply(&tun(), &change).unwrap();
    netcfg::dns::undo(&undo).unwrap();

    let mut v6 = vec![0xfdu8, 0, 0, 0x10];
    v6.extend([0u8; 11]);
    v6.push(3);
    let calls = service.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            format!("SetLinkDNS 42 [(2, [10, 0, 0, 3]), (10, {v6:?})]"),
            "SetLinkDomains 42 [(\"corp.example\", false), (\"lab.example\", true), (\"~.\", true)]"
                .to_string(),
            "SetLinkDefaultRoute 42 true".to_string(),
            "RevertLink 42".to_string(),
        ]
    );
    // The file back end was never used.
    assert!(!resolv.exists());
}

#[test]
fn split_tunnel_does_not_take_the_default_dns_route() {
    let Some(bus) = Bus::start() else {
        return;
    };
    let service = Resolve1::default();
    let _server = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.resolve1")
        .unwrap()
        .serve_at("/org/freedesktop/resolve1", service.clone())
        .unwrap()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut dns = Dns::new(&DnsOptions {
        backend: DnsBackendChoice::Resolved,
        ..opts(&bus, dir.path().join("resolv.conf"))
    })
    .unwrap();
    let change = DnsChange {
        servers: vec!["10.0.0.3".parse().unwrap()],
        search_domains: vec![],
        resolve_domains: vec!["corp.example".into()],
        default_route: false,
    };
    dns.apply(&tun(), &change).unwrap();
    let calls = service.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1], "SetLinkDomains 42 [(\"corp.example\", true)]");
    assert_eq!(calls[2], "SetLinkDefaultRoute 42 false");
}

#[test]
fn resolvers_come_from_resolved_when_present() {
    let Some(bus) = Bus::start() else {
        return;
    };
    assert_eq!(netcfg::dns::resolved_servers(Some(&bus.address)), None);
    let _server = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.resolve1")
        .unwrap()
        .serve_at("/org/freedesktop/resolve1", Resolve1::default())
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        netcfg::dns::resolved_servers(Some(&bus.address)),
        Some(vec![
            "192.168.1.1".parse::<IpAddr>().unwrap(),
            "2606:4700:4700::1111".parse().unwrap()
        ])
    );
}

/// Root only: a whole NetSession whose DNS goes to resolved, in a private network namespace
/// of a dedicated thread (`unshare`; the D-Bus socket is a path, reachable from there).
#[test]
fn session_undo_and_recover_revert_the_resolved_link() {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIP session_undo_and_recover_revert_the_resolved_link: needs root (unshare)");
        return;
    }
    let Some(bus) = Bus::start() else {
        return;
    };
    let service = Resolve1::default();
    let _server = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.resolve1")
        .unwrap()
        .serve_at("/org/freedesktop/resolve1", service.clone())
        .unwrap()
        .build()
        .unwrap();
    let address = bus.address.clone();
    let calls = service.calls.clone();
    std::thread::spawn(move || {
        // SAFETY: affects only this thread, which ends with the test.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        // A real TUN: recovery reverts DNS only on a TUN of ours that the journal created.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let tun = Tun::create(&TunConfig::default()).unwrap();
        let lo = tun.iface().clone();
        let dir = tempfile::tempdir().unwrap();
        let opts = SessionOptions {
            journal_path: dir.path().join("journal.json"),
            dns: DnsOptions {
                backend: DnsBackendChoice::Auto,
                resolv_conf: dir.path().join("resolv.conf"),
                dbus_address: Some(address),
            },
        };
        let plan = Plan {
            changes: vec![PlannedChange {
                change: Change::SetDns(DnsChange {
                    servers: vec!["10.0.0.3".parse().unwrap()],
                    search_domains: vec![],
                    resolve_domains: vec![".".into()],
                    default_route: true,
                }),
                kind: Reason::Dns,
                why: "pushed DNS".into(),
            }],
            ..Default::default()
        };
        let idx = lo.index;
        let mut s = NetSession::apply(&plan, &lo, &opts).unwrap();
        assert_eq!(calls.lock().unwrap().len(), 3);
        s.undo_all().unwrap();
        assert_eq!(
            calls.lock().unwrap().last().unwrap(),
            &format!("RevertLink {idx}")
        );
        // After a crash, recover() reverts the link from the journal.
        let s = NetSession::apply(&plan, &lo, &opts).unwrap();
        std::mem::forget(s);
        let n = calls.lock().unwrap().len();
        let report = recover_trusting(&opts.journal_path, &opts.journal_trust()).unwrap();
        assert!(report.undone >= 1);
        assert_eq!(report.refused, 0);
        let c = calls.lock().unwrap();
        assert_eq!(c.len(), n + 1);
        assert_eq!(c.last().unwrap(), &format!("RevertLink {idx}"));
        assert!(!dir.path().join("resolv.conf").exists());
    })
    .join()
    .unwrap();
}
