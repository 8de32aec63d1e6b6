//! The service reconnects on its own (root only; real OpenVPN 2.6 server in the lab):
//! - server restart (SIGHUP; `explicit-exit-notify 1` tells the client RESTART):
//!   back within 10 s, without asking for anything, kill switch on all the while;
//! - a server that goes silent (SIGSTOP): noticed by ping-restart, rejoined once it
//!   answers again.
//!
//! Times are measured and printed (`--nocapture`); the bounds are hang guards.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod lab_support;

use std::time::{Duration, Instant};

use ipc::{ConnectOptions, EventBody, Stage, Subscription};
use lab_support::{
    connect_request, disconnect_and_wait, lab_credentials, nft_table_present, start_service,
    wait_stage, Events,
};
use nix::sys::signal::Signal;
use oxivpn_e2e::{addr, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant};

/// Events until `session` is `connected` again; returns whether any challenge was asked.
async fn until_connected(events: &mut Events, session: ipc::SessionId, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut asked = false;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("not connected again within {timeout:?}"))
            .expect("event stream ended");
        if ev.session != session {
            continue;
        }
        match ev.body {
            EventBody::Stage(ref s) if s.name() != "connected" => {
                println!("  {} ms: {s:?}", ev.unix_ms % 100_000)
            }
            EventBody::Log(ref l) if l.level <= ipc::LogLevel::Warn => {
                println!("  {} ms: {}", ev.unix_ms % 100_000, l.message)
            }
            _ => {}
        }
        match ev.body {
            EventBody::Challenge(_) => asked = true,
            EventBody::Stage(Stage::Connected { .. }) => return asked,
            EventBody::Stage(s @ Stage::Disconnected { .. }) => panic!("session ended: {s:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_reconnects_within_10_s_keeping_the_kill_switch() {
    if !root_or_skip("server_restart_reconnects_within_10_s_keeping_the_kill_switch") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab
        .start_server(&ServerVariant {
            user_pass: true,
            ..ServerVariant::default()
        })
        .unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "client")
        .unwrap();
    let sock = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let _service = start_service(&lab, &sock, &state, "helper-restart");
    let mut client = ipc::Client::connect(&sock, "restart-test").await.unwrap();
    let mut events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
    let info = client
        .connect_profile(connect_request(
            &profile,
            lab_credentials(&profile),
            ConnectOptions::default(),
        ))
        .await
        .unwrap();
    wait_stage(&mut events, info.id, "connected", Duration::from_secs(30)).await;
    assert!(nft_table_present(&lab));

    let t0 = Instant::now();
    srv.signal(&mut lab, Signal::SIGHUP).unwrap();
    let reconnecting = wait_stage(
        &mut events,
        info.id,
        "reconnecting",
        Duration::from_secs(10),
    )
    .await;
    let noticed = t0.elapsed();
    // Between the attempts nothing may leave outside the tunnel.
    assert!(
        nft_table_present(&lab),
        "kill switch kept while reconnecting"
    );
    let asked = until_connected(&mut events, info.id, Duration::from_secs(40)).await;
    let back = t0.elapsed();
    println!(
        "server restart: RESTART noticed after {} ms ({reconnecting:?}), connected again after {} ms",
        noticed.as_millis(),
        back.as_millis()
    );
    assert!(!asked, "credentials or a challenge were asked again");
    // The target is 10 s (measured ~3.2 s on an idle machine: 1 s backoff + the reset
    // retransmitted after 2 s while the server restarts). The bound is a hang guard, so
    // a loaded CI machine does not fail here; slower runs are printed.
    if back > Duration::from_secs(10) {
        println!("NOTE: reconnect after RESTART took {back:?}, above the 10 s target");
    }
    assert!(back < Duration::from_secs(40), "reconnect took {back:?}");
    assert!(nft_table_present(&lab));
    let stats = lab
        .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 2, "pings after the reconnect");

    disconnect_and_wait(&client, &mut events, info.id).await;
    assert!(
        !nft_table_present(&lab),
        "kill switch removed on disconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_rejoined_after_ping_restart() {
    if !root_or_skip("silent_server_is_rejoined_after_ping_restart") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    // The server pushes `keepalive 10 60`; keep the test short with our own
    // ping-restart (the server still pings every 10 s, so 12 s never fires while it lives).
    let profile = lab
        .write_client_profile(
            &srv,
            &ClientVariant {
                extra: vec![
                    "pull-filter ignore \"ping-restart\"".into(),
                    "ping-restart 12".into(),
                ],
                ..ClientVariant::default()
            },
            "client",
        )
        .unwrap();
    let sock = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let _service = start_service(&lab, &sock, &state, "helper-vanish");
    let mut client = ipc::Client::connect(&sock, "vanish-test").await.unwrap();
    let mut events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
    let info = client
        .connect_profile(connect_request(
            &profile,
            Default::default(),
            ConnectOptions::default(),
        ))
        .await
        .unwrap();
    wait_stage(&mut events, info.id, "connected", Duration::from_secs(30)).await;

    let t0 = Instant::now();
    srv.signal(&mut lab, Signal::SIGSTOP).unwrap();
    let reconnecting = wait_stage(
        &mut events,
        info.id,
        "reconnecting",
        Duration::from_secs(25),
    )
    .await;
    let noticed = t0.elapsed();
    srv.signal(&mut lab, Signal::SIGCONT).unwrap();
    let resumed = t0.elapsed();
    until_connected(&mut events, info.id, Duration::from_secs(25)).await;
    let back = t0.elapsed();
    println!(
        "silent server: ping-restart after {} ms ({reconnecting:?}); server resumed at {} ms; connected again after {} ms ({} ms after it answered again)",
        noticed.as_millis(),
        resumed.as_millis(),
        back.as_millis(),
        (back - resumed).as_millis()
    );
    // ping-restart counts from the last packet received before SIGSTOP (moments before
    // on this idle tunnel, at most the server's 10 s ping interval): never this early.
    assert!(
        noticed >= Duration::from_secs(1),
        "restarted before ping-restart could have fired: {noticed:?}"
    );
    let stats = lab
        .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 2, "pings after rejoining");
    disconnect_and_wait(&client, &mut events, info.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_change_reconnects_at_once() {
    if !root_or_skip("network_change_reconnects_at_once") {
        return;
    }
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab.start_server(&ServerVariant::default()).unwrap();
    let profile = lab
        .write_client_profile(&srv, &ClientVariant::default(), "client")
        .unwrap();
    let sock = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let _service = start_service(&lab, &sock, &state, "helper-netchange");
    let mut client = ipc::Client::connect(&sock, "netchange-test").await.unwrap();
    let mut events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
    let info = client
        .connect_profile(connect_request(
            &profile,
            Default::default(),
            ConnectOptions::default(),
        ))
        .await
        .unwrap();
    wait_stage(&mut events, info.id, "connected", Duration::from_secs(30)).await;

    // The client gets another address on its LAN (a new network, as far as the
    // tunnel is concerned), then loses it again: each change reconnects at once,
    // long before the server's ping-restart (60 s) would notice anything.
    for (what, args) in [
        (
            "address added",
            ["addr", "add", "192.168.1.50/24", "dev", "eth0"],
        ),
        (
            "address removed",
            ["addr", "del", "192.168.1.50/24", "dev", "eth0"],
        ),
    ] {
        let t0 = Instant::now();
        lab.ns(Role::Cli).unwrap().ip(&args).unwrap();
        let s = wait_stage(
            &mut events,
            info.id,
            "reconnecting",
            Duration::from_secs(10),
        )
        .await;
        let noticed = t0.elapsed();
        let Stage::Reconnecting {
            reason, delay_ms, ..
        } = &s
        else {
            unreachable!()
        };
        assert!(reason.as_str().contains("network changed"), "{s:?}");
        assert_eq!(*delay_ms, 0, "a network change reconnects without backoff");
        until_connected(&mut events, info.id, Duration::from_secs(20)).await;
        let back = t0.elapsed();
        println!(
            "network change ({what}): noticed after {} ms, connected again after {} ms ({reason})",
            noticed.as_millis(),
            back.as_millis()
        );
        assert!(back < Duration::from_secs(10), "{what}: took {back:?}");
        let stats = lab
            .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
            .unwrap();
        assert_eq!(stats.received, 2, "pings after the reconnect ({what})");
    }
    disconnect_and_wait(&client, &mut events, info.id).await;
}
