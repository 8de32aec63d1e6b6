//! The reference scenario end to end through the product's own path (root only):
//! the client namespace gets 192.168.1.x by DHCP from a server one hop away (relay on
//! the router), `oxivpn-helper service` runs inside it on a test socket, `oxivpnctl
//! import` + `oxivpnctl connect` bring the reference profile up against OpenVPN 2.6.
//!
//! Asserted: server /32 via 192.168.1.1, 0/1 and 128/1 via the TUN, the bypass-dhcp host
//! route, DNS set, ping 10.0.0.3 and a name through the tunnel, a capture of what leaves
//! the client's eth0 holds only encrypted packets to the server (plus ARP/DHCP), and
//! `oxivpnctl disconnect` restores routes, rules, links and resolv.conf byte for byte.
//! The routing table before / during / after goes to target/e2e/reference-routes.txt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oxivpn_e2e::{
    addr, classify, parse_pcap, root_or_skip, Addressing, Class, ClientVariant, Lab, LabConfig,
    Proc, Role, ServerVariant, Signal, TunnelEndpoint,
};

/// The client's IPv4 routing table and policy rules as `ip` prints them.
fn routes(lab: &Lab) -> String {
    let ns = lab.ns(Role::Cli).unwrap();
    format!(
        "$ ip -4 route show\n{}$ ip -4 rule show\n{}",
        ns.ip(&["-4", "route", "show"]).unwrap(),
        ns.ip(&["-4", "rule", "show"]).unwrap()
    )
}

fn nft_tables(lab: &Lab) -> String {
    let out = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Packets the client's eth0 has transmitted (kernel counter).
fn tx_packets(lab: &Lab) -> usize {
    let out = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("cat")
        .arg("/sys/class/net/eth0/statistics/tx_packets")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// tcpdump of what LEAVES the client's eth0.
struct Outgoing {
    proc: Proc,
    file: PathBuf,
    tx_at_start: usize,
}

impl Outgoing {
    fn start(lab: &Lab) -> Self {
        let file = lab.dir().join("cli-eth0-out.pcap");
        let mut cmd = lab.ns(Role::Cli).unwrap().cmd("tcpdump");
        cmd.args(["-n", "-U", "-Q", "out", "-i", "eth0", "-w"])
            .arg(&file);
        let mut proc = Proc::spawn(cmd, "tcpdump-cli", &lab.dir().join("tcpdump-cli.log")).unwrap();
        proc.wait_for_log("listening on", Duration::from_secs(10))
            .unwrap();
        // Read after tcpdump listens: every packet counted from here on is captured.
        let tx_at_start = tx_packets(lab);
        Self {
            proc,
            file,
            tx_at_start,
        }
    }

    /// Waits (bounded) until the file holds at least as many frames as eth0 transmitted
    /// since the start, then stops tcpdump and returns the frames.
    fn drain_and_stop(mut self, lab: &Lab) -> Vec<Vec<u8>> {
        let sent = tx_packets(lab) - self.tx_at_start;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = std::fs::read(&self.file)
                .ok()
                .and_then(|b| parse_pcap(&b).ok())
                .map_or(0, |f| f.len());
            if n >= sent {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "capture has {n} of the {sent} packets eth0 sent"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc.signal(Signal::SIGINT).unwrap();
        self.proc.wait_exit(Duration::from_secs(10)).unwrap();
        parse_pcap(&std::fs::read(&self.file).unwrap()).unwrap()
    }
}

#[test]
fn reference_scenario_through_the_service_and_oxivpnctl() {
    if !root_or_skip("reference_scenario_through_the_service_and_oxivpnctl") {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED reference_scenario_through_the_service_and_oxivpnctl: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let mut lab = Lab::start(LabConfig {
        addressing: Addressing::DhcpRelay,
        target_dns: true,
        ..LabConfig::reference()
    })
    .unwrap();
    let cli_addr = lab
        .ns(Role::Cli)
        .unwrap()
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(cli_addr.contains("192.168.1."), "DHCP address: {cli_addr}");
    let before = lab.client_network_snapshot().unwrap();
    let routes_before = routes(&lab);
    let resolv_path = lab.ns(Role::Cli).unwrap().resolv_conf_path();
    let resolv_before = std::fs::read(&resolv_path).unwrap();
    let nft_before = nft_tables(&lab);

    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "reference")
        .unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);

    ok(&ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "lab"],
    ));
    let capture = Outgoing::start(&lab);
    let t0 = Instant::now();
    let out = ok(&ctl(&sock, &data, &["connect", "lab", "--timeout", "30"]));
    let connect_ms = t0.elapsed().as_millis();
    assert!(out.contains("connected"), "{out}");

    let routes_during = routes(&lab);
    let tun = routes_during
        .lines()
        .find(|l| l.starts_with("0.0.0.0/1 "))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "dev").nth(1))
        .unwrap_or_else(|| panic!("no 0.0.0.0/1 route:\n{routes_during}"))
        .to_owned();
    let has_line = |prefix: &str, parts: &[&str]| {
        routes_during
            .lines()
            .any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
    };
    let tun_dev = format!("dev {tun}");
    assert!(
        has_line("198.18.0.1 ", &["via 192.168.1.1", "dev eth0"]),
        "server /32 via the LAN gateway:\n{routes_during}"
    );
    assert!(has_line("0.0.0.0/1 ", &[&tun_dev]), "{routes_during}");
    assert!(has_line("128.0.0.0/1 ", &[&tun_dev]), "{routes_during}");
    assert!(
        has_line("192.168.2.2 ", &["via 192.168.1.1", "dev eth0"]),
        "bypass-dhcp route to the DHCP server one hop away:\n{routes_during}"
    );
    let resolv_during = std::fs::read_to_string(&resolv_path).unwrap();
    assert!(
        resolv_during.contains("nameserver 10.0.0.3"),
        "{resolv_during}"
    );
    assert!(nft_tables(&lab).contains("inet oxivpn"), "kill switch on");
    let plan = ok(&ctl(&sock, &data, &["routes", "lab"]));
    for kind in [
        "server bypass",
        "DHCP-server bypass",
        "into tunnel",
        "blocked",
    ] {
        assert!(
            plan.contains(kind),
            "`oxivpnctl routes` lacks {kind}:\n{plan}"
        );
    }

    let ping = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(ping.received, 3, "ping 10.0.0.3 through the tunnel");
    let name = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("getent")
        .args(["hosts", "test.example"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&name.stdout).contains("10.0.0.3"),
        "DNS through the tunnel: {name:?}"
    );

    let frames = capture.drain_and_stop(&lab);
    let server = TunnelEndpoint {
        addr: addr::SERVER.parse().unwrap(),
        port: srv.port,
        tcp: false,
    };
    let (mut tunnel, mut housekeeping, mut leaks) = (0, 0, Vec::new());
    for f in &frames {
        match classify(f, &[server]) {
            Class::Tunnel => tunnel += 1,
            Class::Housekeeping => housekeeping += 1,
            Class::Leak(d) => leaks.push(d),
        }
    }
    assert!(tunnel >= 6, "encrypted packets to the server: {tunnel}");
    assert!(leaks.is_empty(), "plaintext left eth0: {leaks:#?}");

    ok(&ctl(&sock, &data, &["disconnect", "lab"]));
    let routes_after = routes(&lab);
    let after = lab.client_network_snapshot().unwrap();
    assert_eq!(
        routes_before, routes_after,
        "routing table after disconnect"
    );
    assert_eq!(
        before, after,
        "routes, rules, links, resolv.conf after disconnect"
    );
    assert_eq!(
        resolv_before,
        std::fs::read(&resolv_path).unwrap(),
        "resolv.conf byte for byte"
    );
    assert_eq!(nft_before, nft_tables(&lab), "nftables after disconnect");

    let report = format!(
        "# Reference scenario through `oxivpn-helper service` + `oxivpnctl` (cli/tests/cli_reference_scenario.rs)\n\
         # client eth0 by DHCP (relay on 192.168.1.1, DHCP server 192.168.2.2); server {}:{} udp; connect took {connect_ms} ms\n\
         # capture of client eth0 (outgoing): {} frames: {tunnel} encrypted to the server, {housekeeping} ARP/DHCP, {} other\n\n\
         ## BEFORE connecting\n{routes_before}\n## CONNECTED (tunnel {tun})\n{routes_during}\n## `oxivpnctl routes lab`\n{plan}\n## AFTER `oxivpnctl disconnect`\n{routes_after}",
        addr::SERVER,
        srv.port,
        frames.len(),
        leaks.len(),
    );
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("reference-routes.txt"), &report).unwrap();
    println!("{report}");
    println!(
        "written to {}",
        out_dir.join("reference-routes.txt").display()
    );
}
