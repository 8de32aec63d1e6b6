//! Shared pieces for the service tests that run against the lab (network namespaces,
//! real OpenVPN server): the helper service in the client namespace, stage waits with
//! deadlines, the nftables check.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use ipc::{
    ConnectOptions, ConnectRequest, Credentials, EventBody, ProfileName, ProfileText, Stage,
};
use oxivpn_e2e::{ClientProfile, Lab, Proc, Role};

pub type Events = tokio::sync::mpsc::Receiver<ipc::Event>;

/// Waits (bounded) for `session` to reach the stage named `want`; panics if it ends first.
pub async fn wait_stage(
    events: &mut Events,
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

/// Disconnects `session` on purpose and waits (bounded) until it reports `disconnected`.
pub async fn disconnect_and_wait(
    client: &ipc::Client,
    events: &mut Events,
    session: ipc::SessionId,
) {
    client.disconnect(session).await.unwrap();
    wait_stage(events, session, "disconnected", Duration::from_secs(15)).await;
}

/// Waits (bounded) for the next challenge of `session`.
pub async fn wait_challenge(
    events: &mut Events,
    session: ipc::SessionId,
    timeout: Duration,
) -> ipc::ChallengeRequest {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no challenge within {timeout:?}"))
            .expect("event stream ended");
        if ev.session != session {
            continue;
        }
        match ev.body {
            EventBody::Challenge(c) => return c,
            EventBody::Stage(s @ Stage::Disconnected { .. }) => {
                panic!("session ended while waiting for a challenge: {s:?}")
            }
            _ => {}
        }
    }
}

/// `oxivpn-helper service` in the lab's client namespace (waits until it accepts).
pub fn start_service(lab: &Lab, sock: &Path, state: &Path, name: &str) -> Proc {
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
    // A socket left by a killed helper must not pass for a live one.
    let _ = std::fs::remove_file(sock);
    let p = lab.spawn(Role::Cli, &argv, name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        assert!(Instant::now() < deadline, "helper service did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

/// The username and password of a lab profile's auth file.
pub fn lab_credentials(profile: &ClientProfile) -> Credentials {
    let mut credentials = Credentials::default();
    if let Some(f) = &profile.auth_file {
        let text = std::fs::read_to_string(f).unwrap();
        let mut lines = text.lines();
        credentials.username = Some(lines.next().unwrap().try_into().unwrap());
        credentials.password = Some(lines.next().unwrap().try_into().unwrap());
    }
    credentials
}

pub fn connect_request(
    profile: &ClientProfile,
    credentials: Credentials,
    options: ConnectOptions,
) -> ConnectRequest {
    ConnectRequest {
        profile_name: ProfileName::try_from("lab").unwrap(),
        profile_text: ProfileText::try_from(profile.text.as_str()).unwrap(),
        credentials,
        options,
    }
}

/// Whether the kill switch's nftables table exists in the client namespace.
pub fn nft_table_present(lab: &Lab) -> bool {
    let out = lab
        .ns(Role::Cli)
        .unwrap()
        .cmd("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(out.status.success(), "nft list tables failed");
    String::from_utf8_lossy(&out.stdout).contains("inet oxivpn")
}
