//! `oxivpnctl status` against a real OpenVPN 2.7 server (the cached 2.7.6 build;
//! skipped with a notice without it), through the helper service (root only):
//! the data channel's format ("AES-256-GCM, epoch keys (2.7)"), the drop
//! counters, and the MSS clamp count after a TCP transfer through the tunnel
//! (`mssfix`'s default lowers the MSS of the SYN the client sends).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok};

use std::path::Path;
use std::time::{Duration, Instant};

use oxivpn_e2e::{
    compressible_transfer, root_or_skip, ClientVariant, Lab, LabConfig, OpenvpnBuild, ServerVariant,
};

#[test]
fn status_shows_the_epoch_format_drops_and_mss_clamps() {
    let name = "status_shows_the_epoch_format_drops_and_mss_clamps";
    if !root_or_skip(name) {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED {name}: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let Some(build) = OpenvpnBuild::cached("2.7.6") else {
        eprintln!("SKIPPED {name}: no OpenVPN 2.7.6 build in the cache (cargo xtask builds it)");
        return;
    };
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab
        .start_server(&ServerVariant {
            openvpn: Some(build),
            ..ServerVariant::default()
        })
        .unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "client")
        .unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    ok(&ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "lab27"],
    ));
    ok(&ctl(&sock, &data, &["connect", "lab27", "--timeout", "30"]));
    let got = compressible_transfer(&lab, 200_000, Duration::from_secs(15)).unwrap();
    assert_eq!(got, 200_000);

    let deadline = Instant::now() + Duration::from_secs(15);
    let (text, json) = loop {
        let json: serde_json::Value =
            serde_json::from_str(ok(&ctl(&sock, &data, &["--json", "status"])).trim()).unwrap();
        let clamped = json["sessions"][0]["stats"]["mss_clamped"]
            .as_u64()
            .unwrap_or(0);
        if clamped >= 1 {
            break (ok(&ctl(&sock, &data, &["status"])), json);
        }
        assert!(
            Instant::now() < deadline,
            "the MSS clamp count never reached status: {json}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!("oxivpnctl status:\n{text}");
    let session = &json["sessions"][0];
    assert_eq!(
        session["connection"]["data_format"], "AES-256-GCM, epoch keys (2.7)",
        "{json}"
    );
    assert!(
        text.contains("data channel AES-256-GCM, epoch keys (2.7)"),
        "{text}"
    );
    // Only "not connected" drops (packets the system sent before the tunnel was up).
    assert!(text.contains("; MSS clamped in "), "{text}");
    let drops = &session["stats"]["drops"];
    assert_eq!(
        drops["not_connected"].as_u64(),
        Some(session_total(drops)),
        "{json}"
    );
    assert_eq!(session["stats"]["drops"]["epoch"], 0, "{json}");
    ok(&ctl(&sock, &data, &["disconnect", "lab27"]));
}

/// Sum of every drop reason in a status JSON `drops` object.
fn session_total(drops: &serde_json::Value) -> u64 {
    drops
        .as_object()
        .map(|o| o.values().filter_map(serde_json::Value::as_u64).sum())
        .unwrap_or(0)
}
