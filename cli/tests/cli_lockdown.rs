//! Lockdown ("block all traffic while disconnected") through `oxivpn-helper service` in the
//! lab, root only: the reference scenario (client 192.168.1.2 behind its router, OpenVPN
//! 2.6 server at 198.18.0.1 pushing `redirect-gateway def1`).
//!
//! Asserted, with probes from the client namespace to listeners in the server namespace
//! (TCP, UDP, ICMP to the server's public address, and a DNS port):
//! - lockdown on, no session: all blocked; `nft list ruleset` holds our lockdown table;
//! - connect works (the session's kill switch takes over) and pings through the tunnel;
//! - disconnect: blocked again; a session asking for no kill switch gets one anyway;
//! - the helper killed with SIGKILL: still blocked; started again: still blocked, and
//!   the ruleset holds exactly our lockdown table, once;
//! - lockdown off: everything reachable again and no table of ours left;
//! - package removal (`oxivpn-helper remove-lockdown` with the helper stopped): the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok, text};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use oxivpn_e2e::{
    addr, root_or_skip, spawn_in, ClientVariant, Lab, LabConfig, Role, ServerVariant,
};
use serde_json::Value;

const TCP_PORT: u16 = 8443;
const UDP_PORT: u16 = 9443;
const DNS_PORT: u16 = 53;
const WAIT: Duration = Duration::from_millis(700);

/// Echo listeners on the server's public address: TCP 8443, UDP 9443 and UDP 53. They
/// run until the lab's namespaces go (the test process ends).
fn start_listeners(lab: &Lab) {
    let srv = lab.ns(Role::Srv).unwrap().name().to_owned();
    let tcp_addr: SocketAddr = format!("{}:{TCP_PORT}", addr::SERVER).parse().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let tx = ready_tx.clone();
    spawn_in(&srv, "lockdown-tcp", move || {
        let l = TcpListener::bind(tcp_addr)?;
        tx.send(())?;
        for s in l.incoming() {
            let mut s = s?;
            let _ = s.write_all(b"hello");
        }
        Ok(())
    })
    .unwrap();
    for port in [UDP_PORT, DNS_PORT] {
        let tx = ready_tx.clone();
        let a: SocketAddr = format!("{}:{port}", addr::SERVER).parse().unwrap();
        spawn_in(&srv, "lockdown-udp", move || -> anyhow::Result<()> {
            let s = UdpSocket::bind(a)?;
            tx.send(())?;
            let mut buf = [0u8; 64];
            loop {
                let (n, from) = s.recv_from(&mut buf)?;
                s.send_to(&buf[..n], from)?;
            }
        })
        .unwrap();
    }
    for _ in 0..3 {
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}

/// What the client namespace reaches on the server's public address, by probe.
#[derive(Debug, PartialEq, Eq)]
struct Reach {
    tcp: bool,
    udp: bool,
    dns: bool,
    icmp: bool,
}

impl Reach {
    const ALL: Reach = Reach {
        tcp: true,
        udp: true,
        dns: true,
        icmp: true,
    };
    const NONE: Reach = Reach {
        tcp: false,
        udp: false,
        dns: false,
        icmp: false,
    };
}

fn probe(lab: &Lab) -> Reach {
    let cli = lab.cli().to_owned();
    let probes = spawn_in(&cli, "lockdown-probe", move || {
        let tcp =
            TcpStream::connect_timeout(&format!("{}:{TCP_PORT}", addr::SERVER).parse()?, WAIT)
                .and_then(|mut s| {
                    s.set_read_timeout(Some(WAIT))?;
                    let mut b = [0u8; 5];
                    s.read_exact(&mut b)?;
                    Ok(&b == b"hello")
                })
                .unwrap_or(false);
        let udp = |port: u16| -> bool {
            let echo = || -> std::io::Result<bool> {
                let s = UdpSocket::bind("0.0.0.0:0")?;
                s.set_read_timeout(Some(WAIT))?;
                s.connect(format!("{}:{port}", addr::SERVER))?;
                s.send(b"probe")?;
                let mut b = [0u8; 16];
                let n = s.recv(&mut b)?;
                Ok(b.get(..n) == Some(&b"probe"[..]))
            };
            echo().unwrap_or(false)
        };
        Ok((tcp, udp(UDP_PORT), udp(DNS_PORT)))
    })
    .unwrap();
    let (tcp, udp, dns) = probes.join().unwrap().unwrap();
    Reach {
        tcp,
        udp,
        dns,
        icmp: lab.reachable(Role::Cli, addr::SERVER),
    }
}

/// `nft list ruleset` in the client namespace: the names of its tables.
fn tables(lab: &Lab) -> Vec<String> {
    let out = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn ruleset(lab: &Lab) -> String {
    let out = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lockdown_json(sock: &Path, data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json", "lockdown"];
    all.extend_from_slice(args);
    let out = ok(&ctl(sock, data, &all));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The pid of the helper service listening on `sock` (ours: its socket path is unique).
fn helper_pid(sock: &Path) -> u32 {
    let want = sock.to_str().unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_helper = args.first().is_some_and(|a| a.ends_with(b"oxivpn-helper"));
        if is_helper && args.contains(&&b"service"[..]) && args.contains(&want.as_bytes()) {
            return pid;
        }
    }
    panic!("no helper process for {want}");
}

#[test]
fn lockdown_blocks_while_disconnected_survives_a_crash_and_lifts() {
    if !root_or_skip("lockdown_blocks_while_disconnected_survives_a_crash_and_lifts") {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED lockdown: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "reference")
        .unwrap();
    start_listeners(&lab);
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket.clone(), service.data.clone());
    ok(&ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "lab"],
    ));
    let t0 = std::time::Instant::now();
    assert_eq!(probe(&lab), Reach::ALL, "before lockdown");
    let st = lockdown_json(&sock, &data, &["status"]);
    assert_eq!(st["enabled"], false, "{st}");

    // On: nothing reaches the server, and our table is the only one.
    let on = lockdown_json(&sock, &data, &["on"]);
    assert_eq!(
        (&on["enabled"], &on["blocking"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{on}"
    );
    assert_eq!(probe(&lab), Reach::NONE, "lockdown on, no session");
    assert_eq!(tables(&lab), ["table inet oxivpn_lockdown"]);
    let human = text(&ctl(&sock, &data, &["status"]));
    assert!(human.contains("lockdown: on"), "{human}");

    // Connect: the session's kill switch takes over; the tunnel carries pings.
    let up = ctl(&sock, &data, &["connect", "lab", "--timeout", "30"]);
    assert!(up.status.success(), "{}", text(&up));
    lab.wait_reachable(Role::Cli, addr::TUNNEL_SERVER, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        tables(&lab),
        ["table inet oxivpn"],
        "kill switch instead of the block-all"
    );
    let during = lockdown_json(&sock, &data, &["status"]);
    assert_eq!(
        (&during["enabled"], &during["blocking"]),
        (&Value::Bool(true), &Value::Bool(false)),
        "{during}"
    );

    // Disconnect: blocked again.
    ok(&ctl(&sock, &data, &["disconnect", "lab"]));
    assert_eq!(tables(&lab), ["table inet oxivpn_lockdown"]);
    assert_eq!(probe(&lab), Reach::NONE, "after disconnect");

    // "Kill switch: off" cannot open a hole while locked down: the session is guarded
    // anyway, and gives the block back when it ends.
    let up = ctl(
        &sock,
        &data,
        &["connect", "lab", "--timeout", "30", "--kill-switch", "off"],
    );
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(tables(&lab), ["table inet oxivpn"], "forced kill switch");
    ok(&ctl(&sock, &data, &["disconnect", "lab"]));
    assert_eq!(tables(&lab), ["table inet oxivpn_lockdown"]);

    // The helper dies: its rules stay. A new one keeps exactly them.
    let pid = helper_pid(&sock);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", text(&killed));
    assert_eq!(probe(&lab), Reach::NONE, "helper killed");
    let service = lab.start_helper_service(&helper).unwrap();
    assert_eq!(service.socket, sock);
    assert_eq!(probe(&lab), Reach::NONE, "helper restarted");
    let rules = ruleset(&lab);
    assert_eq!(rules.matches("table ").count(), 1, "{rules}");
    assert_eq!(
        rules.matches("table inet oxivpn_lockdown {").count(),
        1,
        "{rules}"
    );
    let st = lockdown_json(&sock, &data, &["status"]);
    assert_eq!(
        (&st["enabled"], &st["blocking"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{st}"
    );

    // Off: reachable again, nothing of ours left.
    let off = lockdown_json(&sock, &data, &["off"]);
    assert_eq!(
        (&off["enabled"], &off["blocking"]),
        (&Value::Bool(false), &Value::Bool(false)),
        "{off}"
    );
    assert_eq!(probe(&lab), Reach::ALL, "lockdown off");
    assert!(tables(&lab).is_empty(), "{:?}", tables(&lab));

    // Package removal: the helper stopped, `oxivpn-helper remove-lockdown` (what prerm
    // runs) takes out exactly the table and the setting.
    lockdown_json(&sock, &data, &["on"]);
    assert_eq!(tables(&lab), ["table inet oxivpn_lockdown"]);
    let pid = helper_pid(&sock);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", text(&killed));
    let state = lab.dir().join("helper-state");
    assert!(state.join("lockdown.json").exists());
    let removed = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd(&helper)
        .arg("remove-lockdown")
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(tables(&lab).is_empty(), "{:?}", tables(&lab));
    assert!(!state.join("lockdown.json").exists());
    assert!(!state.join("lockdown.firewall.json").exists());
    assert_eq!(probe(&lab), Reach::ALL, "after remove-lockdown");
    println!("lockdown e2e steps: {:.1} s", t0.elapsed().as_secs_f64());
}
