//! `<connection>` blocks through the helper service, as real multi-server profiles
//! write them (root only): the first block names a UDP port where something takes the
//! packets and never answers (a firewalled server), with `server-poll-timeout 3`; the
//! second a TCP port that refuses; the third the lab's real openvpn 2.6 server. The
//! session must fail over block by block, in order, with each block's own options,
//! and end up connected with traffic through the tunnel. A profile whose blocks all
//! fail, with `connect-retry-max 1`, ends with a message naming that directive.
//! The profile's own `dhcp-option DNS` is applied while connected.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok, text};

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use oxivpn_e2e::{
    addr, root_or_skip, spawn_in, ClientVariant, Lab, LabConfig, Role, ServerVariant,
};

/// The port of the silent UDP "server" in the server's namespace.
const SILENT_PORT: u16 = 1195;
/// A TCP port nothing listens on in the server's namespace: the kernel refuses.
const REFUSING_PORT: u16 = 1196;

/// The lab's profile with its `remote`/`proto` lines replaced by `blocks`.
fn with_blocks(profile: &str, blocks: &[String]) -> String {
    let mut out: String = profile
        .lines()
        .filter(|l| !l.starts_with("remote ") && !l.starts_with("proto "))
        .map(|l| format!("{l}\n"))
        .collect();
    for b in blocks {
        out.push_str(b);
    }
    out
}

fn block(port: u16, proto: &str, extra: &str) -> String {
    format!(
        "<connection>\nremote {} {port} {proto}\n{extra}</connection>\n",
        addr::SERVER
    )
}

#[test]
fn connection_blocks_fail_over_in_order_with_their_own_options() {
    let name = "connection_blocks_fail_over_in_order_with_their_own_options";
    if !root_or_skip(name) {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED {name}: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    // A socket that takes every datagram and never answers: no ICMP either.
    let ns = lab.ns(Role::Srv).unwrap().name().to_owned();
    let silent = spawn_in(&ns, "silent-udp", || {
        Ok(UdpSocket::bind(("0.0.0.0", SILENT_PORT))?)
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();

    let base = lab
        .write_client_profile(&srv, &ClientVariant::default(), "base")
        .unwrap();
    // The profile's own DNS server, applied like a pushed one.
    let good = with_blocks(
        &format!("{}dhcp-option DNS 192.0.2.53\n", base.text),
        &[
            block(SILENT_PORT, "udp", "server-poll-timeout 3\n"),
            block(REFUSING_PORT, "tcp-client", ""),
            block(srv.port, "udp", ""),
        ],
    );
    let dead = with_blocks(
        &base.text,
        &[
            block(
                SILENT_PORT,
                "udp",
                "server-poll-timeout 2\nconnect-retry-max 1\n",
            ),
            block(REFUSING_PORT, "tcp-client", "connect-retry-max 1\n"),
        ],
    );
    let dir = base.path.parent().unwrap();
    let (good_path, dead_path) = (dir.join("blocks.ovpn"), dir.join("dead.ovpn"));
    std::fs::write(&good_path, &good).unwrap();
    std::fs::write(&dead_path, &dead).unwrap();

    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    let report = ok(&ctl(
        &sock,
        &data,
        &["import", good_path.to_str().unwrap(), "--name", "blocks"],
    ));
    println!("{report}");

    let started = Instant::now();
    ok(&ctl(
        &sock,
        &data,
        &["connect", "blocks", "--timeout", "45"],
    ));
    let took = started.elapsed();
    println!("connected through the third block after {took:?}");
    let pings = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(pings.received, 3, "traffic through the tunnel");
    let resolv = std::fs::read_to_string(lab.ns(Role::Cli).unwrap().resolv_conf_path()).unwrap();
    assert!(
        resolv.contains("nameserver 192.0.2.53"),
        "the profile's dhcp-option DNS is in use: {resolv}"
    );
    let logs = ok(&ctl(&sock, &data, &["logs", "blocks"]));
    let at = |needle: &str| {
        logs.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in the session log:\n{logs}"))
    };
    // Each block in turn, with its own options: the first gave up after its own
    // 3 s (the default wait for a silent server is the 60 s hand-window).
    let first = at("no reply from the server within 3 s (server-poll-timeout)");
    let second = at(&format!("{}:{REFUSING_PORT}", addr::SERVER));
    let third = at(&format!("{}:{}", addr::SERVER, srv.port));
    assert!(
        first < second && second < third,
        "order of attempts:\n{logs}"
    );
    let status = ok(&ctl(&sock, &data, &["--json", "status"]));
    assert!(
        status.contains(&format!("\"server_port\":{}", srv.port))
            || status.contains(&format!("{}:{}", addr::SERVER, srv.port)),
        "{status}"
    );
    ok(&ctl(&sock, &data, &["disconnect", "blocks"]));

    // Every block fails once: connect-retry-max 1 ends the session, naming why.
    ok(&ctl(
        &sock,
        &data,
        &["import", dead_path.to_str().unwrap(), "--name", "dead"],
    ));
    let started = Instant::now();
    let out = ctl(&sock, &data, &["connect", "dead", "--timeout", "40"]);
    let said = text(&out);
    println!("dead profile after {:?}: {said}", started.elapsed());
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("connect-retry-max 1"),
        "the failure names the directive: {said}"
    );
    drop(silent);
}
