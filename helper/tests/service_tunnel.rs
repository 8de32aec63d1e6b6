//! The service brings a REAL tunnel up (root only): the helper runs as a service in
//! the lab's client namespace, a client sends the profile text over IPC, and the
//! session goes to `connected`; a ping crosses the tunnel; `disconnect` puts the
//! namespace's routes, rules, links and resolv.conf back exactly as they were.
//! (kill -9 of the service and the repair at the next start: service_crash_stages.rs.)
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab_support;

use std::time::Duration;

use ipc::{ConnectRequest, Credentials, ProfileName, ProfileText, Stage, Subscription};
use lab_support::{disconnect_and_wait, nft_table_present, start_service, wait_stage, Events};
use oxivpn_e2e::{
    addr, root_or_skip, ClientProfile, ClientVariant, Lab, LabConfig, Role, ServerVariant,
};

/// Sends the lab's client profile over IPC and waits for `connected`.
async fn connect_lab_profile(
    client: &ipc::Client,
    events: &mut Events,
    profile: &ClientProfile,
) -> (ipc::SessionInfo, Stage) {
    let mut credentials = Credentials::default();
    if let Some(f) = &profile.auth_file {
        let text = std::fs::read_to_string(f).unwrap();
        let mut lines = text.lines();
        credentials.username = Some(lines.next().unwrap().try_into().unwrap());
        credentials.password = Some(lines.next().unwrap().try_into().unwrap());
    }
    let info = client
        .connect_profile(ConnectRequest {
            profile_name: ProfileName::try_from("lab").unwrap(),
            profile_text: ProfileText::try_from(profile.text.as_str()).unwrap(),
            credentials,
            options: ipc::ConnectOptions::default(),
        })
        .await
        .unwrap();
    let stage = wait_stage(events, info.id, "connected", Duration::from_secs(30)).await;
    (info, stage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_session_brings_a_real_tunnel_up_and_down() {
    if !root_or_skip("service_session_brings_a_real_tunnel_up_and_down") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let before = lab.client_network_snapshot().unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "client")
        .unwrap();
    let sock = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let _service = start_service(&lab, &sock, &state, "helper-service");

    let mut client = ipc::Client::connect(&sock, "service-tunnel-test")
        .await
        .unwrap();
    assert!(client.status().await.unwrap().tunnel_wired);
    let mut events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
    let (info, connected) = connect_lab_profile(&client, &mut events, &profile).await;
    let Stage::Connected { interface, .. } = connected else {
        unreachable!()
    };

    // Each session keeps its own undo journal in the state dir while it is up.
    let journal = state.join(format!("journal-{}.json", info.id.0));
    assert!(journal.exists(), "{} missing", journal.display());

    let stats = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 3, "pings through the tunnel");

    // The session says what it got: server actually connected, cipher, kill switch.
    let sessions = client.list_sessions().await.unwrap();
    let conn = sessions
        .iter()
        .find(|s| s.id == info.id)
        .and_then(|s| s.connection.clone())
        .expect("connection details of a connected session");
    assert_eq!(
        conn.server_addr,
        addr::SERVER.parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(conn.server_port, srv.port);
    assert_eq!(conn.transport, ipc::Transport::Udp);
    assert_eq!(
        conn.cipher.as_ref().map(|c| c.as_str()),
        Some("AES-256-GCM")
    );
    assert_eq!(conn.interface, interface);
    let tls = conn.tls.as_ref().map(|t| t.to_string()).unwrap_or_default();
    assert!(tls.starts_with("TLSv1."), "TLS version and suite: {tls:?}");
    assert_eq!(
        conn.key_derivation.as_ref().map(|k| k.as_str()),
        Some("tls-ekm")
    );
    assert!(
        conn.kill_switch,
        "redirect-gateway: kill switch on by default"
    );
    assert!(nft_table_present(&lab), "kill switch table while connected");

    // The applied route plan, entry by entry.
    let routes = client.session_routes(info.id).await.unwrap();
    let has = |dst: &str, kind: ipc::RouteKind| {
        routes
            .routes
            .iter()
            .any(|r| r.destination.as_str() == dst && r.kind == kind)
    };
    assert!(
        has("198.18.0.1/32", ipc::RouteKind::ServerBypass),
        "{routes:#?}"
    );
    assert!(has("0.0.0.0/1", ipc::RouteKind::IntoTunnel), "{routes:#?}");
    assert!(
        has("128.0.0.0/1", ipc::RouteKind::IntoTunnel),
        "{routes:#?}"
    );
    // Kill switch on, allow_lan off: the LAN prefix is listed as blocked.
    assert!(
        has("192.168.1.0/24", ipc::RouteKind::Blocked),
        "{routes:#?}"
    );
    assert!(has("0.0.0.0/0", ipc::RouteKind::Blocked), "{routes:#?}");
    let bypass = routes
        .routes
        .iter()
        .find(|r| r.kind == ipc::RouteKind::ServerBypass)
        .unwrap();
    assert_eq!(bypass.gateway, Some(addr::ROUTER_LAN.parse().unwrap()));

    // route-check sees the tunnel for the target, named after the session.
    let r = client
        .route_check(addr::TARGET.parse().unwrap())
        .await
        .unwrap();
    assert!(r.via_tunnel, "{r:?}");
    assert_eq!(r.session, Some(info.id));
    assert_eq!(r.interface, interface);

    disconnect_and_wait(&client, &mut events, info.id).await;
    let after = lab.client_network_snapshot().unwrap();
    assert!(!journal.exists(), "journal left after a clean disconnect");
    assert_eq!(before, after, "network state after disconnect");
    assert!(
        !nft_table_present(&lab),
        "kill switch left after a deliberate disconnect"
    );
}
