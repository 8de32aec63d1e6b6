//! `oxivpnctl` drives a real tunnel (root only): the helper service runs in the
//! lab's client namespace against a real OpenVPN server; the CLI imports the
//! profile, `connect` waits until connected (exit 0), traffic crosses, `route-check`
//! names the tunnel, `disconnect` restores the namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok};

use std::path::Path;
use std::time::Duration;

use oxivpn_e2e::{addr, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant};

#[test]
fn connect_waits_for_a_real_tunnel() {
    if !root_or_skip("connect_waits_for_a_real_tunnel") {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED connect_waits_for_a_real_tunnel: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let before = lab.client_network_snapshot().unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "client")
        .unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);

    ok(&ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "lab"],
    ));
    let mut args = vec!["connect", "lab", "--timeout", "30"];
    let auth;
    if let Some(f) = &profile.auth_file {
        auth = f.to_str().unwrap().to_owned();
        args.extend(["--auth-file", auth.as_str()]);
    }
    let out = ok(&ctl(&sock, &data, &args));
    assert!(out.contains("connected"), "{out}");

    let stats = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 3);
    let rc: serde_json::Value = serde_json::from_str(
        ok(&ctl(&sock, &data, &["--json", "route-check", addr::TARGET])).trim(),
    )
    .unwrap();
    assert_eq!(rc["via_tunnel"], true, "{rc}");

    ok(&ctl(&sock, &data, &["disconnect", "lab"]));
    assert_eq!(before, lab.client_network_snapshot().unwrap());
}
