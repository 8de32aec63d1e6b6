//! The service brings a REAL tunnel up (root only): the helper runs as a service in
//! the lab's client namespace, a client sends the profile text over IPC, and the
//! session goes to `connected`; a ping crosses the tunnel; `disconnect` puts the
//! namespace's routes, rules, links and resolv.conf back exactly as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ipc::{ConnectRequest, Credentials, EventBody, ProfileName, ProfileText, Stage, Subscription};
use oxivpn_e2e::{addr, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant};

async fn wait_stage(
    events: &mut tokio::sync::mpsc::Receiver<ipc::Event>,
    session: ipc::SessionId,
    want: &str,
    timeout: Duration,
) -> Stage {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no `{want}` stage within {timeout:?}"))
            .expect("event stream ended");
        if ev.session != session {
            continue;
        }
        if let EventBody::Stage(s) = ev.body {
            if s.name() == want {
                return s;
            }
            assert!(
                !matches!(s, Stage::Disconnected { .. }),
                "session ended while waiting for {want}: {s:?}"
            );
        }
    }
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
    let helper = env!("CARGO_BIN_EXE_oxivpn-helper");
    let lab_dir = lab.dir().to_owned();
    let argv = [
        helper,
        "service",
        "--socket",
        sock.to_str().unwrap(),
        "--group",
        "root",
        "--state-dir",
        state.to_str().unwrap(),
        "--dhcp-lease-dir",
        lab_dir.to_str().unwrap(),
    ];
    lab.spawn_kept(Role::Cli, &argv, "helper-service").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "helper service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut client = ipc::Client::connect(&sock, "service-tunnel-test")
        .await
        .unwrap();
    assert!(client.status().await.unwrap().tunnel_wired);
    let mut events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
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
        })
        .await
        .unwrap();
    let connected = wait_stage(&mut events, info.id, "connected", Duration::from_secs(30)).await;
    let Stage::Connected { interface, .. } = connected else {
        unreachable!()
    };

    let stats = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 3, "pings through the tunnel");

    // route-check sees the tunnel for the target, named after the session.
    let r = client
        .route_check(addr::TARGET.parse().unwrap())
        .await
        .unwrap();
    assert!(r.via_tunnel, "{r:?}");
    assert_eq!(r.session, Some(info.id));
    assert_eq!(r.interface, interface);

    client.disconnect(info.id).await.unwrap();
    wait_stage(
        &mut events,
        info.id,
        "disconnected",
        Duration::from_secs(15),
    )
    .await;
    let after = lab.client_network_snapshot().unwrap();
    assert_eq!(before, after, "network state after disconnect");
}
