//! `oxivpnctl check` against the real machine state (root only): the reference scenario
//! (DHCP through a relay, OpenVPN 2.6 pushing `redirect-gateway def1 bypass-dhcp` and
//! DNS 10.0.0.3, kill switch on) through `oxivpn-helper service` in the lab.
//!
//! Asserted: before connecting the check reports the direct path (via 192.168.1.1 on
//! eth0) and fails nothing; connected, every check passes (internet and DNS into the
//! TUN, kill switch on and ours, server and DHCP server via eth0, the gateway answers
//! through the TUN); with the def1 routes deleted behind the helper's back the IPv4
//! and DNS checks fail and the exit status is 2; after disconnect the direct path again.
//! The outputs go to target/e2e/leak-check.txt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, text};

use std::path::Path;

use oxivpn_e2e::{root_or_skip, Addressing, ClientVariant, Lab, LabConfig, Role, ServerVariant};
use serde_json::Value;

/// `oxivpnctl --json check`: the exit status and the report.
fn check(sock: &Path, data: &Path) -> (i32, Value) {
    let out = ctl(sock, data, &["--json", "check"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check --json output: {e}\n{}", text(&out)));
    (out.status.code().unwrap(), report)
}

/// The check of `kind`: (verdict, outcome, interface).
fn find(report: &Value, kind: &str) -> (String, String, String) {
    let c = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} check in {report:#}"));
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    (s(&c["verdict"]), s(&c["outcome"]), s(&c["interface"]))
}

#[test]
fn leak_check_reports_the_real_state_before_during_and_when_broken() {
    if !root_or_skip("leak_check_reports_the_real_state_before_during_and_when_broken") {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED leak_check: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let mut lab = Lab::start(LabConfig {
        addressing: Addressing::DhcpRelay,
        ..LabConfig::reference()
    })
    .unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "reference")
        .unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    let imported = ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "lab"],
    );
    assert!(imported.status.success(), "{}", text(&imported));

    // Not connected: the direct path, nothing fails.
    let (code, before) = check(&sock, &data);
    assert_eq!(code, 0, "{before:#}");
    assert_eq!(before["connected"], false);
    let (v, o, i) = find(&before, "default_ipv4");
    assert_eq!(
        (v.as_str(), o.as_str(), i.as_str()),
        ("not_applicable", "direct", "eth0")
    );
    let (_, o, _) = find(&before, "kill_switch");
    assert_eq!(o, "kill_switch_off");
    let human_before = text(&ctl(&sock, &data, &["check"]));
    assert!(
        human_before.contains("via 192.168.1.1 on eth0"),
        "{human_before}"
    );

    let up = ctl(&sock, &data, &["connect", "lab", "--timeout", "30"]);
    assert!(up.status.success(), "{}", text(&up));

    // Connected: all pass.
    let (code, during) = check(&sock, &data);
    assert_eq!(code, 0, "{during:#}");
    assert_eq!(during["connected"], true);
    let tun = find(&during, "default_ipv4").2;
    assert!(tun.starts_with("oxi"), "{during:#}");
    for (kind, outcome, iface) in [
        ("default_ipv4", "into_tunnel", tun.as_str()),
        ("dns", "into_tunnel", tun.as_str()),
        ("kill_switch", "kill_switch_on", ""),
        ("server_route", "around_tunnel", "eth0"),
        ("dhcp_route", "around_tunnel", "eth0"),
        ("tunnel_probe", "probe_answered", tun.as_str()),
    ] {
        let (v, o, i) = find(&during, kind);
        assert_eq!(
            (v.as_str(), o.as_str(), i.as_str()),
            ("pass", outcome, iface),
            "{kind}: {during:#}"
        );
    }
    // The lab has no IPv6 default route: IPv6 cannot leave around the IPv4 tunnel.
    let (v, _, _) = find(&during, "default_ipv6");
    assert_eq!(v, "pass", "{during:#}");
    let human_during = text(&ctl(&sock, &data, &["check"]));
    assert!(!human_during.contains("FAIL"), "{human_during}");

    // Broken behind the helper's back: the def1 routes are gone.
    let ns = lab.ns(Role::Cli).unwrap();
    for half in ["0.0.0.0/1", "128.0.0.0/1"] {
        ns.ip(&["-4", "route", "del", half]).unwrap();
    }
    let (code, broken) = check(&sock, &data);
    assert_eq!(code, 2, "exit status 2 on a failed check: {broken:#}");
    let (v, o, i) = find(&broken, "default_ipv4");
    assert_eq!(
        (v.as_str(), o.as_str(), i.as_str()),
        ("fail", "blocked_by_kill_switch", "eth0"),
        "{broken:#}"
    );
    // DNS went out with the rest: dropped by the kill switch, so no server answers.
    let (v, o, i) = find(&broken, "dns");
    assert_eq!(
        (v.as_str(), o.as_str(), i.as_str()),
        ("fail", "blocked_by_kill_switch", "eth0"),
        "{broken:#}"
    );
    // The server and the DHCP server keep their host routes; the tunnel still answers.
    for kind in ["server_route", "dhcp_route", "tunnel_probe", "kill_switch"] {
        assert_eq!(find(&broken, kind).0, "pass", "{kind}: {broken:#}");
    }
    let human_broken = ctl(&sock, &data, &["check"]);
    assert_eq!(human_broken.status.code(), Some(2));
    let human_broken = text(&human_broken);
    assert!(human_broken.contains("FAIL"), "{human_broken}");

    let down = ctl(&sock, &data, &["disconnect", "lab"]);
    assert!(down.status.success(), "{}", text(&down));
    let (code, after) = check(&sock, &data);
    assert_eq!(code, 0, "{after:#}");
    assert_eq!(find(&after, "default_ipv4").1, "direct");
    assert_eq!(find(&after, "kill_switch").1, "kill_switch_off");

    let report = format!(
        "# `oxivpnctl check` in the reference scenario (cli/tests/cli_leak_check.rs)\n\n\
         ## not connected\n{human_before}\n## connected\n{human_during}\n\
         ## connected, def1 routes deleted (`ip route del 0.0.0.0/1; ip route del 128.0.0.0/1`)\n{human_broken}"
    );
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("leak-check.txt"), &report).unwrap();
    println!("{report}");
}
