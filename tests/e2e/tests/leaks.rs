//! Leak protection with the full client: `oxivpn-helper connect` with a redirect-gateway
//! profile turns the kill switch on; a capture on the router's LAN side sees nothing but
//! the tunnel's own UDP to the server, even when a rogue route (DHCP option 121,
//! TunnelVision) sends 10.0.0.0/8 around the tunnel and a program asks the LAN resolver.
//! SIGTERM removes the nft table and restores the network exactly (root only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nix::sys::signal::Signal;
use oxivpn_e2e::{addr, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant};

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
