//! The per-connect kill switch options of the service (root only; real OpenVPN 2.6
//! server in the lab): `on` guards a split tunnel too, `off` leaves a full tunnel
//! unguarded, and with the kill switch on nothing but the server endpoint leaves the
//! physical interface outside the tunnel. (Default = on for redirect-gateway is covered
//! by service_tunnel.rs; kept across reconnects by service_reconnect.rs.)
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab_support;

use std::time::Duration;

use ipc::{ConnectOptions, KillSwitchMode, Stage, Subscription};
use lab_support::{
    connect_request, disconnect_and_wait, nft_table_present, start_service, wait_stage,
};
use oxivpn_e2e::{addr, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant};

async fn connected_session(
    lab: &Lab,
    srv: &oxivpn_e2e::ServerHandle,
    options: ConnectOptions,
    name: &str,
) -> (
    oxivpn_e2e::Proc,
    ipc::Client,
    lab_support::Events,
    ipc::SessionInfo,
) {
    let profile = lab
        .write_client_profile(srv, &ClientVariant::default(), "client")
        .unwrap();
    let sock = lab.dir().join(format!("{name}.sock"));
    let state = lab.dir().join(format!("{name}-state"));
    let service = start_service(lab, &sock, &state, name);
    let mut client = ipc::Client::connect(&sock, name).await.unwrap();
    let mut events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
    let info = client
        .connect_profile(connect_request(&profile, Default::default(), options))
        .await
        .unwrap();
    wait_stage(&mut events, info.id, "connected", Duration::from_secs(30)).await;
    (service, client, events, info)
}

async fn kill_switch_reported(client: &ipc::Client, id: ipc::SessionId) -> bool {
    let sessions = client.list_sessions().await.unwrap();
    sessions
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.connection.as_ref())
        .expect("connection details")
        .kill_switch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_on_guards_a_split_tunnel() {
    if !root_or_skip("kill_switch_on_guards_a_split_tunnel") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let variant = ServerVariant {
        split_tunnel: true,
        ..ServerVariant::default()
    };
    let srv = lab.start_server(&variant).unwrap();
    let (_service, client, mut events, info) = connected_session(
        &lab,
        &srv,
        ConnectOptions {
            kill_switch: KillSwitchMode::On,
            allow_lan: false,
        },
        "ks-on",
    )
    .await;
    assert!(kill_switch_reported(&client, info.id).await);
    assert!(nft_table_present(&lab));
    // The pushed route works through the tunnel...
    let through = lab
        .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(through.received, 2);
    // ...and the LAN gateway, reachable without the kill switch, is not (no allow_lan).
    let lan = lab
        .ping(Role::Cli, addr::ROUTER_LAN, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(lan.received, 0, "LAN reachable despite the kill switch");
    let routes = client.session_routes(info.id).await.unwrap();
    assert!(
        routes
            .routes
            .iter()
            .any(|r| r.kind == ipc::RouteKind::Blocked && r.destination.as_str() == "0.0.0.0/0"),
        "{routes:#?}"
    );
    disconnect_and_wait(&client, &mut events, info.id).await;
    assert!(!nft_table_present(&lab));
    let lan = lab
        .ping(Role::Cli, addr::ROUTER_LAN, 1, Duration::from_millis(200))
        .unwrap();
    assert_eq!(lan.received, 1, "LAN after the kill switch is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_off_and_allow_lan() {
    if !root_or_skip("kill_switch_off_and_allow_lan") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let variant = ServerVariant::default();
    let srv = lab.start_server(&variant).unwrap();
    // Off: a full tunnel without the table.
    let (_service, client, mut events, info) = connected_session(
        &lab,
        &srv,
        ConnectOptions {
            kill_switch: KillSwitchMode::Off,
            allow_lan: false,
        },
        "ks-off",
    )
    .await;
    assert!(!kill_switch_reported(&client, info.id).await);
    assert!(!nft_table_present(&lab));
    disconnect_and_wait(&client, &mut events, info.id).await;

    // Default + allow_lan: guarded, but the LAN gateway answers.
    let (_service2, client, mut events, info) = connected_session(
        &lab,
        &srv,
        ConnectOptions {
            kill_switch: KillSwitchMode::Default,
            allow_lan: true,
        },
        "ks-lan",
    )
    .await;
    assert!(kill_switch_reported(&client, info.id).await);
    assert!(nft_table_present(&lab));
    let lan = lab
        .ping(Role::Cli, addr::ROUTER_LAN, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(lan.received, 2, "allow_lan lets the LAN through");
    disconnect_and_wait(&client, &mut events, info.id).await;
    assert!(!nft_table_present(&lab));
}

/// Runs `sysctl -qw` for each setting in the client's namespace.
fn client_sysctl(lab: &Lab, settings: &[&str]) {
    for s in settings {
        let st = lab
            .ns(Role::Cli)
            .unwrap()
            .cmd("sysctl")
            .args(["-qw", s])
            .status()
            .unwrap();
        assert!(st.success(), "sysctl -w {s}");
    }
}

/// The kernel's listing of our table in the client's namespace.
fn nft_table_text(lab: &Lab) -> String {
    let out = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("nft")
        .args(["list", "table", "inet", "oxivpn"])
        .output()
        .unwrap();
    assert!(out.status.success(), "nft list table inet oxivpn");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Docker, libvirt or connection sharing turning forwarding on after the VPN is up: the
/// kill switch's table gains the forward chain's reply rule at once (a reconnect writes it
/// again), so replies to forwarded traffic are not dropped until some later reconnect; and
/// turning forwarding off again takes it away (no connection tracking for nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_turned_on_while_connected_rewrites_the_kill_switch() {
    if !root_or_skip("forwarding_turned_on_while_connected_rewrites_the_kill_switch") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    // A new namespace may inherit the host's forwarding: start from a desktop's "off".
    client_sysctl(
        &lab,
        &["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"],
    );
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let (_service, client, mut events, info) =
        connected_session(&lab, &srv, ConnectOptions::default(), "ks-fwd").await;
    assert!(kill_switch_reported(&client, info.id).await);
    let reply_rule = "ct state established,related accept";
    assert!(!nft_table_text(&lab).contains(reply_rule));

    for (setting, on) in [
        ("net.ipv4.ip_forward=1", true),
        ("net.ipv4.ip_forward=0", false),
    ] {
        client_sysctl(&lab, &[setting]);
        let s = wait_stage(
            &mut events,
            info.id,
            "reconnecting",
            Duration::from_secs(10),
        )
        .await;
        let Stage::Reconnecting { reason, .. } = &s else {
            unreachable!()
        };
        let want = if on {
            "forwarding turned on"
        } else {
            "forwarding turned off"
        };
        assert!(reason.as_str().contains(want), "{s:?}");
        wait_stage(&mut events, info.id, "connected", Duration::from_secs(20)).await;
        let table = nft_table_text(&lab);
        assert_eq!(table.contains(reply_rule), on, "{setting}:\n{table}");
        let through = lab
            .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
            .unwrap();
        assert_eq!(through.received, 2, "through the tunnel after {setting}");
    }
    disconnect_and_wait(&client, &mut events, info.id).await;
    assert!(!nft_table_present(&lab));
}
