//! `oxivpnctl status` shows the tunnel's dropped packets by reason (root only): a
//! real 2.6 server pushes `comp-lzo yes` and compresses what shrinks, the profile
//! says `allow-compression no`, so every compressed packet is refused, counted under
//! "compression", and the count reaches `oxivpnctl status` (text and JSON).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok};

use std::path::Path;
use std::time::{Duration, Instant};

use oxivpn_e2e::{
    addr, ping_sized, root_or_skip, ClientVariant, Compression, Lab, LabConfig, Role, ServerVariant,
};

#[test]
fn status_counts_refused_compressed_packets() {
    let name = "status_counts_refused_compressed_packets";
    if !root_or_skip(name) {
        return;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED {name}: oxivpn-helper not built next to oxivpnctl (run cargo test --workspace)");
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab
        .start_server(&ServerVariant {
            compression: Compression::CompLzoYes,
            ..ServerVariant::default()
        })
        .unwrap();
    let client = ClientVariant {
        extra: vec!["allow-compression no".into()],
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &client, "client").unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    ok(&ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "lab"],
    ));
    ok(&ctl(&sock, &data, &["connect", "lab", "--timeout", "30"]));
    // Short pings do not shrink: they pass. Zero-filled 1200-byte replies are
    // compressed by the server and refused by this profile.
    let short = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(short.received, 3);
    let big = ping_sized(&lab, Role::Cli, addr::TARGET, 5, 1200).unwrap();
    assert_eq!(big.received, 0, "compressed replies must not get through");

    let deadline = Instant::now() + Duration::from_secs(15);
    let (text, json, n) = loop {
        let json: serde_json::Value =
            serde_json::from_str(ok(&ctl(&sock, &data, &["--json", "status"])).trim()).unwrap();
        let n = json["sessions"][0]["stats"]["drops"]["compression"]
            .as_u64()
            .unwrap_or(0);
        if n >= 5 {
            break (ok(&ctl(&sock, &data, &["status"])), json, n);
        }
        assert!(
            Instant::now() < deadline,
            "drop counters never reached status: {json}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    eprintln!("oxivpnctl status:\n{text}");
    assert!(text.contains(&format!("compression {n}")), "{text}");
    assert!(text.contains("dropped "), "{text}");
    // The 2.6 server's data channel: the classic format, named in status.
    assert!(
        text.contains("data channel AES-256-GCM, per-session keys"),
        "{text}"
    );
    assert!(text.contains("MSS clamped in "), "{text}");
    assert_eq!(
        json["sessions"][0]["stats"]["drops"]["replayed"], 0,
        "{json}"
    );
    ok(&ctl(&sock, &data, &["disconnect", "lab"]));
}
