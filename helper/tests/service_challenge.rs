//! Challenge answers reach the real server (root only): the lab's OpenVPN 2.6 server
//! checks credentials with a script that
//! - accepts `SCRV1:<b64 password>:<b64 4242>` (static challenge),
//! - answers the plain right password with `AUTH_FAILED,CRV1:R,E:st42:<b64 alice>:...`
//!   (written to `$auth_failed_reason_file`), and accepts `CRV1::st42::7777` for `alice`.
//!
//! The helper service runs in the client namespace; the test is the app: it sends the
//! profile over IPC, answers the challenge event, and waits for `connected`.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab_support;

use std::time::Duration;

use ipc::{ConnectOptions, Secret, Subscription};
use lab_support::{
    connect_request, lab_credentials, start_service, wait_challenge, wait_stage, Events,
};
use oxivpn_e2e::{
    addr, root_or_skip, ClientProfile, ClientVariant, Lab, LabConfig, Proc, Role, ServerHandle,
    ServerVariant,
};

const CHALLENGE_SCRIPT: &str = r#"#!/bin/sh
# via-file: $1 holds the username and the password on two lines.
user=$(sed -n 1p "$1")
pass=$(sed -n 2p "$1")
b64() { printf %s "$1" | base64 -w0; }
here=$(dirname "$0")
case "$pass" in
  SCRV1:*)
    if [ "$user" = alice ] && [ "$pass" = "SCRV1:$(b64 'correct horse battery'):$(b64 4242)" ]; then
      echo scrv1-ok >> "$here/auth.log"; exit 0
    fi
    echo scrv1-bad >> "$here/auth.log"; exit 1 ;;
  CRV1::*)
    if [ "$user" = alice ] && [ "$pass" = "CRV1::st42::7777" ]; then
      echo crv1-ok >> "$here/auth.log"; exit 0
    fi
    echo crv1-bad >> "$here/auth.log"; exit 1 ;;
esac
if [ "$user" = alice ] && [ "$pass" = "correct horse battery" ]; then
  printf 'CRV1:R,E:st42:%s:Enter the code from the SMS' "$(b64 alice)" > "$auth_failed_reason_file"
  echo crv1-challenged >> "$here/auth.log"
  exit 1
fi
echo plain-bad >> "$here/auth.log"
exit 1
"#;

struct Setup {
    lab: Lab,
    srv: ServerHandle,
    _service: Proc,
    client: ipc::Client,
    events: Events,
}

async fn setup(test: &str) -> Setup {
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab
        .start_server(&ServerVariant {
            user_pass: true,
            ..ServerVariant::default()
        })
        .unwrap();
    // The server runs the script anew for every client: replacing it is enough.
    let script = srv.dir.join("verify.sh");
    let tmp = srv.dir.join("verify.sh.new");
    std::fs::write(&tmp, CHALLENGE_SCRIPT).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &script).unwrap();
    let sock = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let service = start_service(&lab, &sock, &state, &format!("helper-{test}"));
    let mut client = ipc::Client::connect(&sock, test).await.unwrap();
    let events = client.take_events().unwrap();
    client.subscribe(Subscription::all()).await.unwrap();
    Setup {
        lab,
        srv,
        _service: service,
        client,
        events,
    }
}

fn auth_log(srv: &ServerHandle) -> String {
    std::fs::read_to_string(srv.dir.join("auth.log")).unwrap_or_default()
}

fn profile(s: &Setup, extra: &[&str]) -> ClientProfile {
    s.lab
        .write_client_profile(
            &s.srv,
            &ClientVariant {
                extra: extra.iter().map(|l| (*l).to_owned()).collect(),
                ..ClientVariant::default()
            },
            "client",
        )
        .unwrap()
}

async fn ping_and_disconnect(s: &mut Setup, id: ipc::SessionId) {
    let stats = s
        .lab
        .ping(Role::Cli, addr::TARGET, 2, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 2, "pings through the tunnel");
    s.client.disconnect(id).await.unwrap();
    wait_stage(&mut s.events, id, "disconnected", Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_challenge_answer_given_with_the_password() {
    if !root_or_skip("static_challenge_answer_given_with_the_password") {
        return;
    }
    let mut s = setup("scrv1-upfront").await;
    let p = profile(&s, &["static-challenge \"Enter PIN\" 1"]);
    let mut creds = lab_credentials(&p);
    creds.challenge_response = Some(Secret::try_from("4242").unwrap());
    let info = s
        .client
        .connect_profile(connect_request(&p, creds, ConnectOptions::default()))
        .await
        .unwrap();
    wait_stage(&mut s.events, info.id, "connected", Duration::from_secs(30)).await;
    assert_eq!(auth_log(&s.srv).lines().collect::<Vec<_>>(), ["scrv1-ok"]);
    ping_and_disconnect(&mut s, info.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_challenge_asked_over_ipc_when_missing() {
    if !root_or_skip("static_challenge_asked_over_ipc_when_missing") {
        return;
    }
    let mut s = setup("scrv1-asked").await;
    let p = profile(&s, &["static-challenge \"Enter PIN\" 0"]);
    let info = s
        .client
        .connect_profile(connect_request(
            &p,
            lab_credentials(&p),
            ConnectOptions::default(),
        ))
        .await
        .unwrap();
    let c = wait_challenge(&mut s.events, info.id, Duration::from_secs(20)).await;
    assert_eq!(c.prompt.as_str(), "Enter PIN");
    assert!(!c.echo);
    // Nothing reached the server without the answer.
    assert_eq!(auth_log(&s.srv), "");
    s.client
        .answer_challenge(info.id, Secret::try_from("4242").unwrap())
        .await
        .unwrap();
    wait_stage(&mut s.events, info.id, "connected", Duration::from_secs(30)).await;
    assert_eq!(auth_log(&s.srv).lines().collect::<Vec<_>>(), ["scrv1-ok"]);
    ping_and_disconnect(&mut s, info.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_crv1_challenge_answered_then_reconnects() {
    if !root_or_skip("dynamic_crv1_challenge_answered_then_reconnects") {
        return;
    }
    let mut s = setup("crv1").await;
    let p = profile(&s, &[]);
    let info = s
        .client
        .connect_profile(connect_request(
            &p,
            lab_credentials(&p),
            ConnectOptions::default(),
        ))
        .await
        .unwrap();
    let c = wait_challenge(&mut s.events, info.id, Duration::from_secs(30)).await;
    assert_eq!(c.prompt.as_str(), "Enter the code from the SMS");
    assert!(c.echo, "flag E: the answer may be shown");
    assert_eq!(
        auth_log(&s.srv).lines().collect::<Vec<_>>(),
        ["crv1-challenged"]
    );
    // Answering twice is refused: one answer per prompt.
    s.client
        .answer_challenge(info.id, Secret::try_from("7777").unwrap())
        .await
        .unwrap();
    let again = s
        .client
        .answer_challenge(info.id, Secret::try_from("7777").unwrap())
        .await;
    assert!(again.is_err(), "{again:?}");
    wait_stage(&mut s.events, info.id, "connected", Duration::from_secs(30)).await;
    assert_eq!(
        auth_log(&s.srv).lines().collect::<Vec<_>>(),
        ["crv1-challenged", "crv1-ok"]
    );
    ping_and_disconnect(&mut s, info.id).await;
}
