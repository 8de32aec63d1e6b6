//! The lab itself: topologies, DHCP (direct and relayed), IPv6 twins, teardown (root only).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::path::Path;

use oxivpn_e2e::{addr, root_or_skip, Addressing, Lab, LabConfig, Role, Topology};

fn lease_text(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dhcp_lease_file().expect("DHCP lab has a lease file")).unwrap()
}

#[test]
fn dhcp_relay_leases_from_the_fifth_namespace() -> anyhow::Result<()> {
    if !root_or_skip("dhcp_relay_leases_from_the_fifth_namespace") {
        return Ok(());
    }
    let lab = Lab::start(LabConfig {
        addressing: Addressing::DhcpRelay,
        ..LabConfig::reference()
    })?;
    let a = lab.client_lan_address()?;
    assert!(a.starts_with("192.168.1."), "leased address {a}");
    assert_ne!(
        a,
        addr::CLI_REFERENCE,
        "static address where a lease was expected"
    );
    let lease = lease_text(&lab);
    assert!(
        lease.contains(&format!("dhcp-server-identifier {}", addr::DHCP_SERVER)),
        "{lease}"
    );
    assert!(lab.reachable(Role::Cli, addr::DHCP_SERVER));
    let route = lab.ns(Role::Cli)?.ip(&["route", "show", "default"])?;
    assert!(route.contains("via 192.168.1.1"), "{route}");
    Ok(())
}

#[test]
fn dhcp_on_the_router_and_ipv6_twins() -> anyhow::Result<()> {
    if !root_or_skip("dhcp_on_the_router_and_ipv6_twins") {
        return Ok(());
    }
    let lab = Lab::start(LabConfig {
        addressing: Addressing::Dhcp,
        ..LabConfig::reference()
    })?;
    let lease = lease_text(&lab);
    assert!(
        lease.contains(&format!("dhcp-server-identifier {}", addr::ROUTER_LAN)),
        "{lease}"
    );
    // Without a tunnel the server's link answers, the target's network does not.
    assert!(lab.reachable(Role::Cli, addr::SERVER));
    assert!(lab.reachable(Role::Cli, addr::SERVER6));
    assert!(!lab.reachable(Role::Cli, addr::TARGET));
    assert!(!lab.reachable(Role::Cli, addr::TARGET6));
    // The server itself reaches the target both ways.
    assert!(lab.reachable(Role::Srv, addr::TARGET));
    assert!(lab.reachable(Role::Srv, addr::TARGET6));
    Ok(())
}

#[test]
fn direct_variant_puts_the_client_on_the_server_link() -> anyhow::Result<()> {
    if !root_or_skip("direct_variant_puts_the_client_on_the_server_link") {
        return Ok(());
    }
    let lab = Lab::start(LabConfig::direct())?;
    assert_eq!(lab.config().topology, Topology::Direct);
    assert_eq!(lab.client_lan_address()?, addr::CLI_DIRECT);
    assert!(lab.reachable(Role::Cli, addr::SERVER));
    assert!(!lab.reachable(Role::Cli, addr::TARGET));
    assert!(lab.ns(Role::Lan).is_err());
    Ok(())
}

#[test]
fn dropping_a_lab_removes_its_namespaces_processes_and_files() -> anyhow::Result<()> {
    if !root_or_skip("dropping_a_lab_removes_its_namespaces_processes_and_files") {
        return Ok(());
    }
    let lab = Lab::start(LabConfig {
        addressing: Addressing::Dhcp,
        target_dns: true,
        ..LabConfig::reference()
    })?;
    let names: Vec<String> = [Role::Cli, Role::Lan, Role::Srv, Role::Tgt]
        .iter()
        .map(|r| lab.ns(*r).unwrap().name().to_owned())
        .collect();
    let pids: Vec<i32> = [Role::Cli, Role::Lan, Role::Tgt]
        .iter()
        .flat_map(|r| lab.ns(*r).unwrap().pids())
        .collect();
    assert!(
        pids.len() >= 3,
        "dhclient and two dnsmasq expected: {pids:?}"
    );
    let resolv = lab.ns(Role::Cli)?.resolv_conf_path();
    assert!(resolv.exists());
    let dir = lab.dir().to_owned();
    drop(lab);
    for n in &names {
        assert!(
            !Path::new("/var/run/netns").join(n).exists(),
            "{n} left behind"
        );
    }
    for p in pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "pid {p} left behind"
        );
    }
    assert!(!resolv.exists());
    assert!(!dir.exists());
    Ok(())
}
