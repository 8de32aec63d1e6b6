//! Leak protection with the full client: `oxivpn-helper connect` with a redirect-gateway
//! profile turns the kill switch on; a capture on the router's LAN side sees nothing but
//! the tunnel's own UDP to the server, even when a rogue route (DHCP option 121,
//! TunnelVision) sends 10.0.0.0/8 around the tunnel and a program asks the LAN resolver.
//! SIGTERM removes the nft table and restores the network exactly (root only).
//!
//! The TunnelCrack, IPv6, DNS, reconnect and kill -9 cases capture with `Capture` (pcap,
//! only what the client sent) and run each scenario twice: once with `--no-kill-switch`
//! (the control: proves the probes WOULD leak there) and once by default (zero leaks).
//! Each prints a `LEAK-FIGURE` line with both captures' counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oxivpn_e2e::{
    addr, root_or_skip, send_probes, Capture, CaptureSummary, ClientProfile, ClientVariant, Lab,
    LabConfig, Probe, Proc, Role, ServerHandle, ServerVariant, TunnelEndpoint,
};

const READY: &str = "Initialization Sequence Completed";
/// Everything except link-layer housekeeping (ARP, DHCP, IPv6 ND/MLD) and the tunnel itself.
const LEAK_FILTER: &str =
    "not arp and not (udp and (port 67 or port 68)) and not icmp6 and not (ip6 and ip6 multicast) \
     and not (udp and host 198.18.0.1)";

#[test]
fn kill_switch_blocks_plaintext_and_rogue_routes() -> anyhow::Result<()> {
    if !root_or_skip("kill_switch_blocks_plaintext_and_rogue_routes") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let client = ClientVariant {
        extra: vec!["redirect-gateway def1".into()],
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &client, "client")?;

    // The router's interface towards the client: what leaves the client machine.
    let mut cap_cmd = lab.ns(Role::Lan)?.cmd("tcpdump");
    cap_cmd.args(["-n", "-l", "-i", "lan0", LEAK_FILTER]);
    let mut capture = oxivpn_e2e::Proc::spawn(cap_cmd, "tcpdump", &lab.dir().join("tcpdump.log"))?;
    capture.wait_for_log("listening on", Duration::from_secs(5))?;

    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    if let Err(e) = helper.wait_for_log(READY, Duration::from_secs(20)) {
        anyhow::bail!("{e:#}\nserver log:\n{}", srv.log(&lab));
    }
    let log = helper.log();
    assert!(log.contains("kill switch on"), "{log}");
    let tables = lab
        .ns(Role::Cli)?
        .cmd("nft")
        .args(["list", "tables"])
        .output()?;
    assert!(
        String::from_utf8_lossy(&tables.stdout).contains("inet oxivpn"),
        "no kill switch table: {}",
        String::from_utf8_lossy(&tables.stdout)
    );

    // Through the tunnel: works.
    let stats = lab.ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))?;
    assert_eq!(stats.received, 3, "{stats:?}\n{}", helper.log_tail(30));

    // TunnelVision: a more specific route around the tunnel, then plain-text probes.
    let cli = lab.ns(Role::Cli)?;
    cli.ip(&[
        "route",
        "add",
        "10.0.0.0/8",
        "via",
        addr::ROUTER_LAN,
        "dev",
        "eth0",
    ])?;
    let rogue = lab.ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200));
    let dns = cli
        .cmd("bash")
        .args([
            "-c",
            "for i in 1 2 3; do printf 'leak' > /dev/udp/192.168.1.1/53; done; \
             timeout 2 bash -c \"printf leak > /dev/tcp/192.168.1.1/53\"",
        ])
        .output()?;
    cli.ip(&[
        "route",
        "del",
        "10.0.0.0/8",
        "via",
        addr::ROUTER_LAN,
        "dev",
        "eth0",
    ])?;
    assert!(
        rogue.as_ref().map(|s| s.received == 0).unwrap_or(true),
        "the rogue route got replies: {rogue:?}"
    );
    assert!(
        !dns.status.success(),
        "DNS to the LAN resolver was not refused"
    );

    std::thread::sleep(Duration::from_millis(500));
    capture.signal(Signal::SIGINT)?;
    capture.wait_exit(Duration::from_secs(5))?;
    let cap = capture.log();
    assert!(
        cap.contains("\n0 packets captured"),
        "plaintext left the client:\n{cap}\nhelper log:\n{}",
        helper.log_tail(30)
    );

    helper.signal(Signal::SIGTERM)?;
    let st = helper.wait_exit(Duration::from_secs(10))?;
    assert!(st.success(), "helper exit {st}\n{}", helper.log_tail(30));
    let tables = lab
        .ns(Role::Cli)?
        .cmd("nft")
        .args(["list", "tables"])
        .output()?;
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("oxivpn"),
        "kill switch left after SIGTERM: {}",
        String::from_utf8_lossy(&tables.stdout)
    );
    let after = lab.client_network_snapshot()?;
    assert_eq!(before, after, "network not restored");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Shared steps of the capture-based cases.

fn redirect_profile(lab: &Lab, srv: &ServerHandle, name: &str) -> ClientProfile {
    let client = ClientVariant {
        extra: vec!["redirect-gateway def1".into()],
        ..ClientVariant::default()
    };
    lab.write_client_profile(srv, &client, name).unwrap()
}

fn server_endpoint(srv: &ServerHandle) -> TunnelEndpoint {
    TunnelEndpoint {
        addr: srv.remote_host().parse().unwrap(),
        port: srv.port,
        tcp: srv.variant.transport.is_tcp(),
    }
}

fn connect(lab: &Lab, profile: &ClientProfile, name: &str, kill_switch: bool) -> Proc {
    let extra: &[&str] = if kill_switch {
        &[]
    } else {
        &["--no-kill-switch"]
    };
    let mut helper = lab.spawn_helper_connect(profile, name, extra).unwrap();
    if let Err(e) = helper.wait_for_log(READY, Duration::from_secs(20)) {
        panic!("{e:#}");
    }
    helper
}

fn disconnect(mut helper: Proc) {
    helper.signal(Signal::SIGTERM).unwrap();
    let st = helper.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(st.success(), "helper exit {st}\n{}", helper.log_tail(30));
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

/// Connects (with or without the kill switch), runs `during` while connected, sends the
/// probes, and returns what the client put on its LAN.
fn capture_connected(
    lab: &Lab,
    profile: &ClientProfile,
    tunnel: &[TunnelEndpoint],
    server_names: &[&str],
    probes: &[Probe],
    kill_switch: bool,
    during: &dyn Fn(&Lab),
) -> CaptureSummary {
    let tag = if kill_switch { "protected" } else { "control" };
    let mut cap = Capture::start(lab, Role::Lan, "lan0", &format!("cap-{tag}")).unwrap();
    let helper = connect(lab, profile, &format!("helper-{tag}"), kill_switch);
    during(lab);
    send_probes(lab, Role::Cli, probes).unwrap();
    cap.sync(lab, Role::Cli).unwrap();
    let summary = cap.stop_allowing(tunnel, server_names).unwrap();
    if kill_switch && !summary.leaks.is_empty() {
        eprintln!("helper log:\n{}", helper.log_tail(40));
    }
    disconnect(helper);
    summary
}

fn report(case: &str, control: Option<&CaptureSummary>, protected: &CaptureSummary) {
    let c = control
        .map(|c| {
            format!(
                "control (--no-kill-switch) {} leaked of {}; ",
                c.leaks.len(),
                c.total
            )
        })
        .unwrap_or_default();
    eprintln!(
        "LEAK-FIGURE {case}: {c}kill switch: {} leaked of {} ({} tunnel, {} housekeeping, {} server-name lookups)",
        protected.leaks.len(),
        protected.total,
        protected.tunnel,
        protected.housekeeping,
        protected.server_lookups
    );
}

/// TunnelCrack LocalNet (CVE-2023-36672): the LAN's DHCP hands out addresses that make
/// the target's subnet (10.0.0.0/8) and a public range (203.0.113.0/24, reachable only
/// through the tunnel) look directly attached, so routing sends traffic for them around
/// the tunnel. The kill switch must drop it; the control run shows it would leak.
#[test]
fn tunnelcrack_localnet_leaks_nothing() -> anyhow::Result<()> {
    if !root_or_skip("tunnelcrack_localnet_leaks_nothing") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    // A public range behind the VPN server.
    lab.ns(Role::Srv)?
        .ip(&["addr", "add", "203.0.113.2/24", "dev", "lan0"])?;
    lab.ns(Role::Tgt)?
        .ip(&["addr", "add", "203.0.113.3/24", "dev", "eth0"])?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = redirect_profile(&lab, &srv, "client");
    // The rogue LAN's address plan (what its DHCP server hands out), and the attacker
    // answering for the addresses it pulled onto the LAN.
    let lan = lab.ns(Role::Lan)?;
    lan.ip(&["addr", "add", "10.0.0.3/8", "dev", "lan0"])?;
    lan.ip(&["addr", "add", "203.0.113.3/24", "dev", "lan0"])?;
    let cli = lab.ns(Role::Cli)?;
    cli.ip(&["addr", "add", "10.0.0.50/8", "dev", "eth0"])?;
    cli.ip(&["addr", "add", "203.0.113.50/24", "dev", "eth0"])?;
    let before = lab.client_network_snapshot()?;
    let probes = [
        Probe::Ping(addr::TARGET.into()),
        Probe::Ping("203.0.113.3".into()),
        Probe::Udp(addr::TARGET.into(), 9),
        Probe::Udp("203.0.113.3".into(), 9),
        Probe::Tcp("203.0.113.3".into(), 80),
    ];
    let tunnel = [server_endpoint(&srv)];
    let control = capture_connected(&lab, &profile, &tunnel, &[], &probes, false, &|_| {});
    let protected = capture_connected(&lab, &profile, &tunnel, &[], &probes, true, &|lab| {
        // The tunnel itself works (its pool is more specific than the rogue /8).
        lab.wait_reachable(Role::Cli, addr::TUNNEL_SERVER, Duration::from_secs(10))
            .unwrap();
    });
    report("tunnelcrack_localnet", Some(&control), &protected);
    assert!(
        !control.leaks.is_empty(),
        "control run leaked nothing: the probes prove nothing\n{control}"
    );
    assert!(protected.leaks.is_empty(), "{protected}");
    assert!(!nft_tables(&lab).contains("oxivpn"));
    assert_eq!(
        before,
        lab.client_network_snapshot()?,
        "network not restored"
    );
    Ok(())
}

/// TunnelCrack ServerIP (CVE-2023-36673): the LAN resolver answers the profile's server
/// NAME with the target's address (10.0.0.3) and the router forwards the VPN port there to
/// the real server, so the tunnel comes up "to 10.0.0.3" and the client's server route
/// sends 10.0.0.3 around the tunnel. Only the tunnel's own datagrams may use that route:
/// a plaintext probe even to the same address AND port (another socket) must not leave.
#[test]
fn tunnelcrack_serverip_spoofed_dns_leaks_nothing() -> anyhow::Result<()> {
    if !root_or_skip("tunnelcrack_serverip_spoofed_dns_leaks_nothing") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant::default())?;
    // The attacker's resolver on the router (the client's resolv.conf names 192.168.1.1).
    lan_resolver(&mut lab, addr::TARGET)?;
    // The router forwards the VPN port of the spoofed address to the real server.
    let nat = format!(
        "table ip spoof {{\n chain pre {{\n type nat hook prerouting priority -100;\n \
         ip daddr {} udp dport {} dnat to {}\n }}\n}}\n",
        addr::TARGET,
        srv.port,
        addr::SERVER
    );
    let nat_file = lab.dir().join("spoof.nft");
    std::fs::write(&nat_file, &nat)?;
    let out = lab
        .ns(Role::Lan)?
        .cmd("nft")
        .arg("-f")
        .arg(&nat_file)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut profile = redirect_profile(&lab, &srv, "client");
    profile.text = profile.text.replace(
        &format!("remote {} {}", addr::SERVER, srv.port),
        &format!("remote vpn.lab.example {}", srv.port),
    );
    assert!(profile.text.contains("remote vpn.lab.example"));
    std::fs::write(&profile.path, &profile.text)?;
    let before = lab.client_network_snapshot()?;

    let spoofed = TunnelEndpoint {
        addr: addr::TARGET.parse()?,
        port: srv.port,
        tcp: false,
    };
    let probes = [
        Probe::Ping(addr::TARGET.into()),
        Probe::Udp(addr::TARGET.into(), srv.port),
        Probe::Udp(addr::TARGET.into(), 9),
        Probe::Tcp(addr::TARGET.into(), 80),
    ];
    let control = capture_connected(
        &lab,
        &profile,
        &[spoofed],
        &["vpn.lab.example"],
        &probes,
        false,
        &|_| {},
    );
    let protected = capture_connected(
        &lab,
        &profile,
        &[spoofed],
        &["vpn.lab.example"],
        &probes,
        true,
        &|lab| {
            // The attack worked as far as it can: the tunnel runs via the spoofed address.
            lab.wait_reachable(Role::Cli, addr::TUNNEL_SERVER, Duration::from_secs(10))
                .unwrap();
        },
    );
    report("tunnelcrack_serverip", Some(&control), &protected);
    assert!(
        !control.leaks.is_empty(),
        "control run leaked nothing\n{control}"
    );
    assert!(protected.tunnel > 0, "{protected}");
    assert!(protected.leaks.is_empty(), "{protected}");
    assert_eq!(
        before,
        lab.client_network_snapshot()?,
        "network not restored"
    );
    Ok(())
}

/// dnsmasq on the router (the client's resolver, 192.168.1.1) answering
/// `vpn.lab.example` with `answer`.
fn lan_resolver(lab: &mut Lab, answer: &str) -> anyhow::Result<()> {
    let pid = lab.dir().join("lan-dns.pid");
    let dns = lab.spawn_kept(
        Role::Lan,
        &[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--user=root",
            "--no-resolv",
            "--no-hosts",
            "--log-facility=-",
            "--port=53",
            "--listen-address=192.168.1.1",
            "--bind-interfaces",
            &format!("--pid-file={}", pid.display()),
            &format!("--address=/vpn.lab.example/{answer}"),
        ],
        "lan-dns",
    )?;
    dns.wait_for_log("started, version", Duration::from_secs(10))?;
    Ok(())
}

/// A profile whose remote is a host NAME: reconnecting happens while the kill switch
/// blocks DNS outside the tunnel, so the client must reuse the addresses it resolved
/// before instead of failing to resolve forever.
#[test]
fn hostname_remote_reconnects_under_the_kill_switch() -> anyhow::Result<()> {
    if !root_or_skip("hostname_remote_reconnects_under_the_kill_switch") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant::default())?;
    lan_resolver(&mut lab, addr::SERVER)?;
    let mut profile = redirect_profile(&lab, &srv, "client");
    profile.text = profile.text.replace(
        &format!("remote {} {}", addr::SERVER, srv.port),
        &format!("remote vpn.lab.example {}", srv.port),
    );
    std::fs::write(&profile.path, &profile.text)?;
    let mut cap = Capture::start(&lab, Role::Lan, "lan0", "cap-hostname")?;
    let helper = connect(&lab, &profile, "helper", true);
    srv.signal(&mut lab, Signal::SIGTERM)?;
    let dir = srv.dir.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !srv.log(&lab).contains("process exiting") {
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let restarted = lab.spawn_kept(
        Role::Srv,
        &["openvpn", "--cd", &dir, "--config", "server.conf"],
        "openvpn-restarted",
    )?;
    restarted.wait_for_log(READY, Duration::from_secs(15))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while helper.log().matches(READY).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no rejoin:\n{}",
            helper.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.wait_reachable(Role::Cli, addr::TARGET, Duration::from_secs(10))?;
    cap.sync(&lab, Role::Cli)?;
    let summary = cap.stop_allowing(&[server_endpoint(&srv)], &["vpn.lab.example"])?;
    report("hostname_reconnect", None, &summary);
    assert!(summary.leaks.is_empty(), "{summary}");
    disconnect(helper);
    Ok(())
}

/// An IPv4-only tunnel on a dual-stack LAN: IPv6 must not go out in the clear.
#[test]
fn ipv6_blocked_when_tunnel_is_ipv4_only() -> anyhow::Result<()> {
    if !root_or_skip("ipv6_blocked_when_tunnel_is_ipv4_only") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = redirect_profile(&lab, &srv, "client");
    let probes = [
        Probe::Ping(addr::TARGET6.into()),
        Probe::Ping("fd00:1::1".into()),
        Probe::Udp(addr::SERVER6.into(), 9),
        Probe::Udp(addr::TARGET6.into(), 53),
        Probe::Tcp(addr::TARGET6.into(), 80),
    ];
    let tunnel = [server_endpoint(&srv)];
    let control = capture_connected(&lab, &profile, &tunnel, &[], &probes, false, &|_| {});
    let protected = capture_connected(&lab, &profile, &tunnel, &[], &probes, true, &|_| {});
    report("ipv6_ipv4_only_tunnel", Some(&control), &protected);
    assert!(protected.leaks.is_empty(), "{protected}");
    Ok(())
}

/// DNS while connected: the system resolver uses the tunnel's server (10.0.0.3, answers
/// `test.example`), and queries aimed at the LAN resolver do not leave.
#[test]
fn dns_only_through_the_tunnel() -> anyhow::Result<()> {
    if !root_or_skip("dns_only_through_the_tunnel") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig {
        target_dns: true,
        ..LabConfig::reference()
    })?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = redirect_profile(&lab, &srv, "client");
    let probes = [
        Probe::Udp(addr::ROUTER_LAN.into(), 53),
        Probe::Tcp(addr::ROUTER_LAN.into(), 53),
        Probe::Udp("fd00:1::1".into(), 53),
    ];
    let resolves = |lab: &Lab| {
        let out = lab
            .ns(Role::Cli)
            .unwrap()
            .cmd("getent")
            .args(["hosts", "test.example"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(addr::TARGET),
            "test.example through the tunnel: {text:?}"
        );
    };
    let tunnel = [server_endpoint(&srv)];
    let control = capture_connected(&lab, &profile, &tunnel, &[], &probes, false, &resolves);
    let protected = capture_connected(&lab, &profile, &tunnel, &[], &probes, true, &resolves);
    report("dns_lan_resolver", Some(&control), &protected);
    assert!(
        !control.leaks.is_empty(),
        "control run leaked nothing\n{control}"
    );
    assert!(protected.leaks.is_empty(), "{protected}");
    Ok(())
}

/// Plaintext probes in a loop from `role` until the returned process is stopped (or
/// `secs` pass): target, server address off the tunnel port, LAN resolver, IPv6.
fn probe_loop(lab: &Lab, secs: u32, name: &str) -> Proc {
    let m = oxivpn_e2e::PROBE_MARKER;
    let script = format!(
        "end=$((SECONDS+{secs})); while [ $SECONDS -lt $end ]; do \
         ping -n -q -c 1 -W 1 {t} >/dev/null 2>&1 & \
         ping -n -q -c 1 -W 1 {t6} >/dev/null 2>&1 & \
         (printf '{m}' > /dev/udp/{t}/9) 2>/dev/null; \
         (printf '{m}' > /dev/udp/{s}/9) 2>/dev/null; \
         (printf '{m}' > /dev/udp/{r}/53) 2>/dev/null; \
         sleep 0.1; done; wait",
        t = addr::TARGET,
        t6 = addr::TARGET6,
        s = addr::SERVER,
        r = addr::ROUTER_LAN,
    );
    lab.spawn(Role::Cli, &["bash", "-c", &script], name)
        .unwrap()
}

/// Reconnecting: the server goes away (SIGTERM: it tells the client RESTART and is gone
/// for a while), the client keeps retrying, the server comes back and the client rejoins.
/// Probes run the whole time; nothing plain may leave.
#[test]
fn reconnect_leaks_nothing() -> anyhow::Result<()> {
    if !root_or_skip("reconnect_leaks_nothing") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = redirect_profile(&lab, &srv, "client");
    let tunnel = [server_endpoint(&srv)];
    let mut cap = Capture::start(&lab, Role::Lan, "lan0", "cap-reconnect")?;
    let mut helper = connect(&lab, &profile, "helper", true);
    let mut probes = probe_loop(&lab, 30, "probe-loop");

    srv.signal(&mut lab, Signal::SIGTERM)?;
    // The client noticed and is reconnecting (its TUN is gone: nothing routes into it).
    helper.wait_for_log("reconnecting", Duration::from_secs(15))?;
    let down_since = Instant::now();
    // Stay down for 3 s of probing, then the server returns with the same config.
    while down_since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = srv.dir.to_string_lossy().into_owned();
    let restarted = lab.spawn_kept(
        Role::Srv,
        &["openvpn", "--cd", &dir, "--config", "server.conf"],
        "openvpn-restarted",
    )?;
    restarted.wait_for_log(READY, Duration::from_secs(15))?;
    // Rejoined: a second "Initialization Sequence Completed" and pings through the tunnel.
    let deadline = Instant::now() + Duration::from_secs(30);
    while helper.log().matches(READY).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no reconnect:\n{}",
            helper.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.wait_reachable(Role::Cli, addr::TARGET, Duration::from_secs(10))?;
    probes.signal(Signal::SIGTERM)?;
    probes.wait_exit(Duration::from_secs(5))?;
    cap.sync(&lab, Role::Cli)?;
    let summary = cap.stop(&tunnel)?;
    report("reconnect", None, &summary);
    assert!(
        summary.leaks.is_empty(),
        "{summary}\n{}",
        helper.log_tail(40)
    );
    disconnect(helper);
    assert!(!nft_tables(&lab).contains("oxivpn"));
    Ok(())
}

/// kill -9 of the helper: the TUN dies with it, the routes into it vanish, and the kill
/// switch's rules stay, so nothing leaves in the clear. The next run keeps the rules
/// while it connects, and its SIGTERM removes them and restores the network.
#[test]
fn helper_kill_9_leaks_nothing_and_next_run_recovers() -> anyhow::Result<()> {
    if !root_or_skip("helper_kill_9_leaks_nothing_and_next_run_recovers") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = redirect_profile(&lab, &srv, "client");
    let tunnel = [server_endpoint(&srv)];
    let mut helper = connect(&lab, &profile, "helper", true);
    let mut cap = Capture::start(&lab, Role::Lan, "lan0", "cap-kill9")?;
    helper.signal(Signal::SIGKILL)?;
    helper.wait_exit(Duration::from_secs(5))?;
    assert!(
        nft_tables(&lab).contains("inet oxivpn"),
        "rules gone after kill -9"
    );
    let probes = [
        Probe::Ping(addr::TARGET.into()),
        Probe::Ping(addr::SERVER.into()),
        Probe::Ping(addr::TARGET6.into()),
        Probe::Udp(addr::SERVER.into(), 9),
        Probe::Udp(addr::ROUTER_LAN.into(), 53),
        Probe::Tcp(addr::TARGET.into(), 80),
    ];
    send_probes(&lab, Role::Cli, &probes)?;
    cap.sync(&lab, Role::Cli)?;
    let summary = cap.stop(&tunnel)?;
    report("after_kill_9", None, &summary);
    assert!(summary.leaks.is_empty(), "{summary}");

    let next = connect(&lab, &profile, "helper-next", true);
    assert!(
        next.log()
            .contains("kept the kill switch left by a previous run"),
        "{}",
        next.log_tail(30)
    );
    let stats = lab.ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))?;
    assert_eq!(stats.received, 2, "{stats:?}");
    disconnect(next);
    assert!(!nft_tables(&lab).contains("oxivpn"));
    assert_eq!(
        before,
        lab.client_network_snapshot()?,
        "network not restored"
    );
    Ok(())
}

/// A server that stays away for several reconnect attempts (TCP: each attempt fails at
/// once with "connection refused"): the client keeps trying instead of giving up — giving
/// up would remove the kill switch — nothing plain leaves meanwhile, and it rejoins.
#[test]
fn server_down_for_several_attempts_keeps_kill_switch() -> anyhow::Result<()> {
    if !root_or_skip("server_down_for_several_attempts_keeps_kill_switch") {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant {
        transport: oxivpn_e2e::Transport::Tcp,
        ..ServerVariant::default()
    })?;
    let profile = redirect_profile(&lab, &srv, "client");
    let tunnel = [server_endpoint(&srv)];
    let mut cap = Capture::start(&lab, Role::Lan, "lan0", "cap-down")?;
    let mut helper = connect(&lab, &profile, "helper", true);
    let mut probes = probe_loop(&lab, 40, "probe-loop");

    srv.signal(&mut lab, Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while helper.log().matches("reconnect failed").count() < 2 {
        assert!(
            Instant::now() < deadline && helper.try_status().is_none(),
            "the client did not keep retrying:\n{}",
            helper.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        nft_tables(&lab).contains("inet oxivpn"),
        "kill switch gone while retrying"
    );

    let dir = srv.dir.to_string_lossy().into_owned();
    let restarted = lab.spawn_kept(
        Role::Srv,
        &["openvpn", "--cd", &dir, "--config", "server.conf"],
        "openvpn-restarted",
    )?;
    restarted.wait_for_log(READY, Duration::from_secs(15))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while helper.log().matches(READY).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no rejoin:\n{}",
            helper.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.wait_reachable(Role::Cli, addr::TARGET, Duration::from_secs(10))?;
    probes.signal(Signal::SIGTERM)?;
    probes.wait_exit(Duration::from_secs(5))?;
    cap.sync(&lab, Role::Cli)?;
    let summary = cap.stop(&tunnel)?;
    report("server_down_several_attempts", None, &summary);
    assert!(
        summary.leaks.is_empty(),
        "{summary}\n{}",
        helper.log_tail(40)
    );
    disconnect(helper);
    Ok(())
}

/// The helper SERVICE (what the app and oxivpnctl use): connected through `oxivpnctl
/// connect` (kill switch on by default for a redirect-gateway profile), then the service
/// is killed with -9. Its TUN is gone, its rules stay: nothing plain leaves.
#[test]
fn service_kill_9_leaks_nothing() -> anyhow::Result<()> {
    if !root_or_skip("service_kill_9_leaks_nothing") {
        return Ok(());
    }
    let helper = oxivpn_e2e::helper_binary()?;
    let ctl_bin = helper.with_file_name("oxivpnctl");
    anyhow::ensure!(
        ctl_bin.exists(),
        "{} does not exist: run `cargo build -p oxivpnctl` (cargo test --workspace builds it)",
        ctl_bin.display()
    );
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = redirect_profile(&lab, &srv, "client");
    let socket = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let argv = [
        helper.to_string_lossy().into_owned(),
        "service".into(),
        "--socket".into(),
        socket.to_string_lossy().into_owned(),
        "--group".into(),
        "root".into(),
        "--state-dir".into(),
        state.to_string_lossy().into_owned(),
        "--dhcp-lease-dir".into(),
        lab.dir().to_string_lossy().into_owned(),
    ];
    let mut service = lab.spawn(Role::Cli, &argv, "helper-service")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no socket:\n{}",
            service.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(&ctl_bin)
            .args(args)
            .env("OXIVPN_SOCKET", &socket)
            .env("XDG_DATA_HOME", lab.dir().join("ctl-data"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "oxivpnctl {args:?}: {text}");
        text
    };
    ctl(&[
        "import",
        &profile.path.to_string_lossy(),
        "--name",
        "leaktest",
    ]);
    ctl(&["connect", "leaktest", "--timeout", "30"]);
    assert!(lab.reachable(Role::Cli, addr::TARGET));
    assert!(
        nft_tables(&lab).contains("inet oxivpn"),
        "the service put no kill switch up"
    );

    let mut cap = Capture::start(&lab, Role::Lan, "lan0", "cap-service")?;
    service.signal(Signal::SIGKILL)?;
    service.wait_exit(Duration::from_secs(5))?;
    let probes = [
        Probe::Ping(addr::TARGET.into()),
        Probe::Ping(addr::SERVER.into()),
        Probe::Ping(addr::TARGET6.into()),
        Probe::Udp(addr::SERVER.into(), srv.port),
        Probe::Udp(addr::ROUTER_LAN.into(), 53),
        Probe::Tcp(addr::TARGET.into(), 80),
    ];
    send_probes(&lab, Role::Cli, &probes)?;
    cap.sync(&lab, Role::Cli)?;
    let summary = cap.stop(&[server_endpoint(&srv)])?;
    report("service_kill_9", None, &summary);
    assert!(summary.leaks.is_empty(), "{summary}");
    assert!(
        nft_tables(&lab).contains("inet oxivpn"),
        "rules gone after kill -9"
    );
    Ok(())
}
