//! The controller and the commands against an in-process fake helper that speaks the
//! real IPC protocol (crates/ipc frames) over a Unix socket in a temp dir.
// The fake helper listens on a Unix socket; the Windows service (named pipe) is tested
// end to end under Wine by `cargo xtask wine`.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use oxivpn_app::commands::ops;
use oxivpn_app::controller::Controller;
use oxivpn_app::error::ErrorKind;
use oxivpn_app::model::{AppEvent, ConnState, CredentialsAnswer, PromptKind, RouteSide, Verdict};
use oxivpn_app::profiles::MemoryRepo;
use oxivpn_app::secrets::{MemorySecrets, SavedCredentials, SecretStore};

#[path = "support/rig.rs"]
mod rig;
mod support;
use rig::*;
use support::fake_helper::{Script, SIGN_IN_URL};

#[tokio::test]
async fn certificate_profile_connects_through_the_stages_and_disconnects() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    let AppEvent::State(ConnState::Connected { session }) =
        r.rec.wait_for("connected", is_connected_in_detail).await
    else {
        unreachable!()
    };
    assert_eq!(session.tunnel_ipv4.as_deref(), Some("10.8.0.2"));
    assert_eq!(session.server.as_deref(), Some("udp 127.0.0.1:1194"));
    assert_eq!(session.cipher.as_deref(), Some("AES-256-GCM"));
    assert_eq!(
        session.tls.as_deref(),
        Some("TLSv1.3 TLS13_AES_256_GCM_SHA384")
    );
    assert_eq!(session.interface.as_deref(), Some("tun0"));
    assert_eq!(
        r.rec.states(),
        [
            "Starting",
            "Resolving",
            "Connecting",
            "Tls",
            "Authenticating",
            "Configuring",
            "Connected"
        ]
    );
    r.rec
        .wait_for(
            "stats",
            |e| matches!(e, AppEvent::Stats(s) if s.bytes_in == 4096),
        )
        .await;
    {
        let seen = r.helper.seen.lock().unwrap();
        assert_eq!(seen.connects.len(), 1);
        assert_eq!(seen.connects[0].profile_name.as_str(), "Work");
        assert!(seen.connects[0]
            .profile_text
            .as_str()
            .contains("remote 127.0.0.1 1194"));
        assert!(seen.connects[0].credentials.password.is_none());
    }
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    assert_eq!(snap.stats.len(), 1);
    assert!(snap
        .log
        .iter()
        .any(|l| l.message.contains("cipher AES-256-GCM")));

    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;
    assert_eq!(r.helper.seen.lock().unwrap().disconnects, 1);
    assert_eq!(
        *r.rec.notes.lock().unwrap(),
        ["Connected: Work", "Disconnected: Work"]
    );
}

#[tokio::test]
async fn password_is_asked_remembered_and_reused() {
    let r = rig(Script::Normal, &[("Office", password_profile())]);
    let id = r.ids[0].clone();
    ops::connect(&r.state, id.clone()).await.unwrap();
    let prompt = next_prompt(&r).await;
    assert!(matches!(
        prompt.kind,
        PromptKind::Password {
            username: None,
            challenge: None,
            key_passphrase: false
        }
    ));
    assert!(
        r.helper.seen.lock().unwrap().connects.is_empty(),
        "nothing is sent before the password"
    );

    // An empty password is refused without reaching the helper, and the prompt stays.
    let bad = CredentialsAnswer {
        prompt_id: prompt.id,
        username: Some("ann".into()),
        ..Default::default()
    };
    let e = ops::submit_credentials(&r.state, bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(ops::get_snapshot(&r.state).await.unwrap().prompt.is_some());

    let answer = CredentialsAnswer {
        prompt_id: prompt.id,
        username: Some("ann".into()),
        password: Some("pw".into()),
        remember: true,
        ..Default::default()
    };
    ops::submit_credentials(&r.state, answer).await.unwrap();
    let AppEvent::State(ConnState::Connected { session }) =
        r.rec.wait_for("connected", is_connected).await
    else {
        unreachable!()
    };
    // What was asked of the helper is still known after the password prompt.
    assert!(
        session.protection.is_some(),
        "the protection survives the prompt"
    );
    assert_eq!(
        r.secrets.load(&id).unwrap(),
        Some(SavedCredentials {
            username: "ann".into(),
            password: "pw".into(),
            key_passphrase: None,
        })
    );
    {
        let seen = r.helper.seen.lock().unwrap();
        let c = &seen.connects[0].credentials;
        assert_eq!(c.username.as_ref().unwrap().as_str(), "ann");
        assert_eq!(c.password.as_ref().unwrap().expose(), "pw");
    }
    assert!(
        ops::profile_details(&r.state, id.clone())
            .await
            .unwrap()
            .saved_credentials
    );

    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;
    r.rec.clear();
    ops::connect(&r.state, id).await.unwrap();
    r.rec.wait_for("connected again", is_connected).await;
    assert!(!r
        .rec
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, AppEvent::Prompt(Some(_)))));
    assert_eq!(
        r.helper.seen.lock().unwrap().connects[1]
            .credentials
            .password
            .as_ref()
            .unwrap()
            .expose(),
        "pw"
    );
}

#[tokio::test]
async fn rejected_saved_password_is_forgotten_and_asked_again() {
    let r = rig(Script::Normal, &[("Office", password_profile())]);
    let id = r.ids[0].clone();
    r.secrets
        .save(
            &id,
            &SavedCredentials {
                username: "ann".into(),
                password: "wrong".into(),
                key_passphrase: None,
            },
        )
        .unwrap();
    ops::connect(&r.state, id.clone()).await.unwrap();
    let AppEvent::State(ConnState::Failed { error, .. }) = r
        .rec
        .wait_for("failure", |e| {
            matches!(e, AppEvent::State(ConnState::Failed { .. }))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(error.kind, ErrorKind::AuthFailed);
    assert!(error.details.contains("bad user or password"));
    let AppEvent::Prompt(Some(prompt)) = r
        .rec
        .wait_for("re-prompt", |e| matches!(e, AppEvent::Prompt(Some(_))))
        .await
    else {
        unreachable!()
    };
    assert!(prompt.error.unwrap().contains("did not accept"));
    assert_eq!(r.secrets.load(&id).unwrap(), None);
}

#[tokio::test]
async fn dynamic_challenge_is_asked_and_answered() {
    let r = rig(Script::Challenge, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    let AppEvent::Prompt(Some(prompt)) = r
        .rec
        .wait_for("challenge", |e| matches!(e, AppEvent::Prompt(Some(_))))
        .await
    else {
        unreachable!()
    };
    let PromptKind::Challenge { challenge } = &prompt.kind else {
        panic!("{prompt:?}")
    };
    assert_eq!(challenge.text, "Enter the code from your app");
    assert!(challenge.echo);
    // A stale dialog cannot answer.
    let stale = CredentialsAnswer {
        prompt_id: prompt.id + 5,
        challenge_response: Some("1".into()),
        ..Default::default()
    };
    assert_eq!(
        ops::submit_credentials(&r.state, stale)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InvalidInput
    );
    let answer = CredentialsAnswer {
        prompt_id: prompt.id,
        challenge_response: Some("123456".into()),
        ..Default::default()
    };
    ops::submit_credentials(&r.state, answer).await.unwrap();
    r.rec.wait_for("connected", is_connected).await;
    assert_eq!(r.helper.seen.lock().unwrap().answers, ["123456"]);
    // While the question was open the stage said the server waits for the user.
    let states = r.rec.states();
    assert!(
        states.ends_with(&[
            "SignIn".to_string(),
            "Configuring".to_string(),
            "Connected".to_string()
        ]),
        "{states:?}"
    );
}

#[tokio::test]
async fn missing_helper_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = MemoryRepo::default();
    let id = repo.insert("Work", &cert_profile()).id;
    let rec = Arc::new(Recorder::default());
    let c = Controller::spawn(
        dir.path().join("nothing.sock"),
        Box::new(repo),
        Arc::new(MemorySecrets::default()),
        rec.clone(),
    );
    let e = c.connect(id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::HelperNotRunning);
    assert!(e.details.contains("nothing.sock"));
    assert!(e.hint.unwrap().contains("systemctl"));
    rec.wait_for("failed state", |e| {
        matches!(e, AppEvent::State(ConnState::Failed { .. }))
    })
    .await;
}

#[tokio::test]
async fn user_outside_the_group_is_told_how_to_fix_it() {
    let r = rig(Script::NotAuthorized, &[("Work", cert_profile())]);
    let e = ops::connect(&r.state, r.ids[0].clone()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::HelperNotPermitted);
    assert!(e.hint.unwrap().contains("usermod -aG oxivpn"));
}

#[tokio::test]
async fn route_check_asks_the_helper_and_typos_do_not() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    let inside = ops::route_check(&r.state, " 10.0.0.3 ".into())
        .await
        .unwrap();
    assert!(inside.via_tunnel);
    assert_eq!(inside.interface.as_deref(), Some("tun0"));
    let outside = ops::route_check(&r.state, "192.168.1.20".into())
        .await
        .unwrap();
    assert!(!outside.via_tunnel);
    assert!(outside.explanation.contains("normal network"));
    let e = ops::route_check(&r.state, "10.0.0".into())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let view = ops::routes(&r.state).await.unwrap();
    assert!(view
        .checks
        .iter()
        .any(|c| c.address == "1.1.1.1" && !c.via_tunnel));
}

#[tokio::test]
async fn lockdown_toggle_reaches_the_helper_and_an_old_helper_is_not_offered_it() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    let before = ops::lockdown_status(&r.state).await.unwrap();
    assert!(
        before.offered && !before.enabled && !before.blocking,
        "{before:?}"
    );
    let on = ops::set_lockdown(&r.state, true, true).await.unwrap();
    assert!(on.enabled && on.allow_lan && on.blocking, "{on:?}");
    let off = ops::set_lockdown(&r.state, false, false).await.unwrap();
    assert!(!off.enabled && !off.blocking, "{off:?}");
    assert_eq!(
        r.helper.seen.lock().unwrap().lockdown_changes,
        [
            ipc::LockdownChange {
                enabled: true,
                allow_lan: true
            },
            ipc::LockdownChange {
                enabled: false,
                allow_lan: false
            }
        ]
    );

    // A helper without lockdown: the toggle says "not offered" instead of an error, and
    // a change it cannot make is an error, not a silent no-op.
    let old = rig(Script::NoListing, &[]);
    let view = ops::lockdown_status(&old.state).await.unwrap();
    assert!(!view.offered, "{view:?}");
    assert!(ops::set_lockdown(&old.state, true, false).await.is_err());
}

#[tokio::test]
async fn profile_commands_import_rename_duplicate_delete() {
    let r = rig(Script::Normal, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("office.ovpn");
    std::fs::write(
        &file,
        format!("client\ndev tun\nremote vpn.example.com 443 tcp\nup /etc/openvpn/up.sh\n{CA}"),
    )
    .unwrap();
    let report = ops::import_profile(&r.state, file.display().to_string(), Vec::new())
        .await
        .unwrap();
    assert!(report.usable, "{report:?}");
    let p = report.profile.clone().unwrap();
    assert_eq!(p.name, "office");
    assert_eq!(p.server, "vpn.example.com:443");
    assert_eq!(p.protocol, "TCP");
    let refused = report
        .findings
        .iter()
        .find(|f| f.verdict == Verdict::Refused)
        .unwrap();
    assert_eq!((refused.line, refused.directive.as_str()), (Some(4), "up"));
    r.rec
        .wait_for("imported event", |e| matches!(e, AppEvent::Imported(_)))
        .await;

    let e = ops::import_profile(
        &r.state,
        dir.path().join("none.ovpn").display().to_string(),
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::File);

    assert_eq!(
        ops::rename_profile(&r.state, p.id.clone(), "  ".into())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        ops::rename_profile(&r.state, p.id.clone(), " Office ".into())
            .await
            .unwrap()
            .name,
        "Office"
    );
    let copy = ops::duplicate_profile(&r.state, p.id.clone())
        .await
        .unwrap();
    assert_eq!(copy.name, "Office copy");
    let d = ops::profile_details(&r.state, copy.id.clone())
        .await
        .unwrap();
    assert_eq!(d.remotes[0].host, "vpn.example.com");
    ops::delete_profile(&r.state, copy.id.clone())
        .await
        .unwrap();
    assert_eq!(
        ops::profile_details(&r.state, copy.id)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ProfileNotFound
    );
    assert_eq!(
        ops::connect(&r.state, String::new())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InvalidInput
    );

    // A connected profile cannot be deleted.
    ops::connect(&r.state, p.id.clone()).await.unwrap();
    r.rec.wait_for("connected", is_connected).await;
    assert_eq!(
        ops::delete_profile(&r.state, p.id.clone())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Busy
    );
    let names: Vec<String> = ops::get_snapshot(&r.state)
        .await
        .unwrap()
        .profiles
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Office"]);
}

#[tokio::test]
async fn a_running_tunnel_is_taken_over_at_start() {
    let r = rig(
        Script::AlreadyUp,
        &[("Home", cert_profile()), ("Work", cert_profile())],
    );
    r.state.controller.attach().await.unwrap();
    let AppEvent::State(ConnState::Connected { session }) =
        r.rec.wait_for("connected", is_connected).await
    else {
        unreachable!()
    };
    assert_eq!(session.profile_id, r.ids[1]);
    assert_eq!(session.tunnel_ipv4.as_deref(), Some("10.8.0.6"));
    assert_eq!(
        ops::get_snapshot(&r.state).await.unwrap().stats[0].bytes_out,
        20
    );
    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;
    assert_eq!(r.helper.seen.lock().unwrap().disconnects, 1);
}

#[tokio::test]
async fn attach_without_a_listing_helper_changes_nothing() {
    let r = rig(Script::NoListing, &[("Work", cert_profile())]);
    r.state.controller.attach().await.unwrap();
    assert_eq!(
        ops::get_snapshot(&r.state).await.unwrap().state,
        ConnState::Disconnected
    );
}

async fn failure(r: &Rig) -> oxivpn_app::error::AppError {
    let AppEvent::State(ConnState::Failed { error, .. }) = r
        .rec
        .wait_for("failure", |e| {
            matches!(e, AppEvent::State(ConnState::Failed { .. }))
        })
        .await
    else {
        unreachable!()
    };
    error
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_explained_in_words() {
    let r = rig(Script::ServerDown, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    let error = failure(&r).await;
    assert_eq!(error.kind, ErrorKind::ServerUnreachable);
    assert_eq!(error.message, "The VPN server could not be reached.");
    assert!(error.details.contains("no reply from the server"));
    assert!(error.hint.unwrap().contains("internet connection"));
}

#[tokio::test]
async fn a_wrong_typed_password_is_not_saved_and_the_user_name_is_kept() {
    let r = rig(Script::Normal, &[("Office", password_profile())]);
    let id = r.ids[0].clone();
    ops::connect(&r.state, id.clone()).await.unwrap();
    let prompt = next_prompt(&r).await;
    let answer = CredentialsAnswer {
        prompt_id: prompt.id,
        username: Some("ann".into()),
        password: Some("wrong".into()),
        remember: true,
        ..Default::default()
    };
    ops::submit_credentials(&r.state, answer).await.unwrap();
    assert_eq!(failure(&r).await.kind, ErrorKind::AuthFailed);
    let AppEvent::Prompt(Some(again)) = r
        .rec
        .wait_for("re-prompt", |e| matches!(e, AppEvent::Prompt(Some(_))))
        .await
    else {
        unreachable!()
    };
    assert!(again.error.unwrap().contains("did not accept"));
    let PromptKind::Password { username, .. } = again.kind else {
        panic!("a password prompt again")
    };
    assert_eq!(
        username.as_deref(),
        Some("ann"),
        "the typed user name is offered again"
    );
    assert_eq!(
        r.secrets.load(&id).unwrap(),
        None,
        "a password the server refused is never remembered"
    );
}

/// A profile whose key is encrypted (the fake helper opens it with "open sesame").
fn encrypted_key_profile() -> String {
    format!(
        "client\ndev tun\nremote 127.0.0.1 1194 udp\n{CA}<cert>\n{}</cert>\n<key>\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n</key>\n",
        include_str!("support/ca.pem")
    )
}

#[tokio::test]
async fn a_wrong_key_passphrase_is_asked_again_never_saved_and_the_right_one_remembered() {
    let r = rig(Script::Normal, &[("Laptop", encrypted_key_profile())]);
    let id = r.ids[0].clone();
    ops::connect(&r.state, id.clone()).await.unwrap();
    let prompt = next_prompt(&r).await;
    assert_eq!(prompt.kind, PromptKind::KeyPassphrase);
    let answer = |prompt_id, pass: &str| CredentialsAnswer {
        prompt_id,
        key_passphrase: Some(pass.into()),
        remember: true,
        ..Default::default()
    };
    // Wrong: the helper says so before starting; the dialog comes back saying why.
    ops::submit_credentials(&r.state, answer(prompt.id, "sesame"))
        .await
        .unwrap();
    let again = next_prompt(&r).await;
    assert_eq!(again.kind, PromptKind::KeyPassphrase);
    assert_eq!(
        again.error.as_deref(),
        Some("The private key's passphrase is wrong.")
    );
    assert_eq!(
        r.secrets.load(&id).unwrap(),
        None,
        "a wrong passphrase is never saved"
    );
    // Right: connects, and "remember" keeps it in the keyring.
    ops::submit_credentials(&r.state, answer(again.id, "open sesame"))
        .await
        .unwrap();
    r.rec.wait_for("connected", is_connected).await;
    let saved = r.secrets.load(&id).unwrap().unwrap();
    assert_eq!(saved.key_passphrase.as_deref(), Some("open sesame"));
    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;
    // Next time the saved passphrase is used without asking.
    r.rec.clear();
    ops::connect(&r.state, id.clone()).await.unwrap();
    r.rec.wait_for("connected again", is_connected).await;
    assert!(!r
        .rec
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, AppEvent::Prompt(Some(_)))));
    let seen = r.helper.seen.lock().unwrap();
    let last = seen.connects.last().unwrap();
    assert_eq!(
        last.credentials
            .key_passphrase
            .as_ref()
            .map(|p| p.expose().to_string()),
        Some("open sesame".to_string())
    );
    assert_eq!(seen.connects.len(), 3);
}

#[tokio::test]
async fn connection_details_and_route_plan_come_from_the_helper() {
    let r = rig(Script::Detailed, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    // The log names AES-256-GCM first; the helper's own answer wins.
    let AppEvent::State(ConnState::Connected { session }) = r
        .rec
        .wait_for("connected with details", |e| {
            matches!(e, AppEvent::State(ConnState::Connected { session }) if session.tls.is_some())
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(session.cipher.as_deref(), Some("CHACHA20-POLY1305"));
    assert_eq!(
        session.tls.as_deref(),
        Some("TLSv1.3 TLS13_AES_256_GCM_SHA384")
    );
    assert_eq!(session.kill_switch, Some(true));
    assert_eq!(
        session.server.as_deref(),
        Some("udp 127.0.0.1:1194 (vpn.example.com)")
    );
    assert_eq!(session.interface.as_deref(), Some("oxi0"));

    let routes = ops::routes(&r.state).await.unwrap();
    let sides: Vec<(&str, RouteSide, &str)> = routes
        .plan
        .iter()
        .map(|p| (p.destination.as_str(), p.side, p.what.as_str()))
        .collect();
    assert_eq!(
        sides,
        [
            ("0.0.0.0/1", RouteSide::Tunnel, "Everything else"),
            ("198.18.0.1/32", RouteSide::Outside, "The VPN server"),
            ("192.168.1.0/24", RouteSide::Outside, "Your local network"),
        ]
    );
    assert_eq!(routes.plan[1].gateway.as_deref(), Some("192.168.1.1"));
    assert_eq!(routes.notes, ["bypass-dhcp: the DHCP server is on-link"]);
}

#[tokio::test]
async fn routes_without_a_session_have_no_plan() {
    let r = rig(Script::Detailed, &[("Work", cert_profile())]);
    let routes = ops::routes(&r.state).await.unwrap();
    assert!(routes.plan.is_empty());
    assert!(!routes.checks.is_empty(), "the sample checks still run");
}

#[tokio::test]
async fn protection_settings_reach_the_helper_and_the_connection_view_says_which() {
    use oxivpn_app::model::{KillSwitchChoice, Protection, ProtectionSource};
    let full = format!("{}redirect-gateway def1\n", cert_profile());
    let r = rig(Script::Normal, &[("Home", full), ("Work", cert_profile())]);
    let (home, work) = (r.ids[0].clone(), r.ids[1].clone());

    // Global: automatic. A full tunnel is guarded by the helper's own rule.
    ops::connect(&r.state, home.clone()).await.unwrap();
    let AppEvent::State(ConnState::Connected { session }) = r
        .rec
        .wait_for("connected with details", is_connected_in_detail)
        .await
    else {
        unreachable!()
    };
    let p = session.protection.unwrap();
    assert_eq!(p.requested.kill_switch, KillSwitchChoice::Automatic);
    assert_eq!(p.source, ProtectionSource::Global);
    assert_eq!(p.kill_switch_active, Some(true));
    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;

    // Global "always" with LAN access; "Work" has its own setting: off.
    let mut s = r.state.settings.get();
    s.protection = Protection {
        kill_switch: KillSwitchChoice::Always,
        allow_lan: true,
    };
    r.state.settings.set(s).unwrap();
    ops::set_profile_protection(
        &r.state,
        work.clone(),
        Some(Protection {
            kill_switch: KillSwitchChoice::Off,
            allow_lan: false,
        }),
    )
    .await
    .unwrap();
    r.rec.clear();
    ops::connect(&r.state, work.clone()).await.unwrap();
    let AppEvent::State(ConnState::Connected { session }) = r
        .rec
        .wait_for("connected with details", is_connected_in_detail)
        .await
    else {
        unreachable!()
    };
    let p = session.protection.unwrap();
    assert_eq!(p.requested.kill_switch, KillSwitchChoice::Off);
    assert_eq!(p.source, ProtectionSource::Profile);
    assert_eq!(p.kill_switch_active, Some(false));
    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;

    // Back to the global setting for "Work": a split tunnel guarded anyway.
    ops::set_profile_protection(&r.state, work.clone(), None)
        .await
        .unwrap();
    r.rec.clear();
    ops::connect(&r.state, work.clone()).await.unwrap();
    let AppEvent::State(ConnState::Connected { session }) = r
        .rec
        .wait_for("connected with details", is_connected_in_detail)
        .await
    else {
        unreachable!()
    };
    assert_eq!(session.protection.unwrap().kill_switch_active, Some(true));

    let seen = r.helper.seen.lock().unwrap();
    let sent: Vec<(ipc::KillSwitchMode, bool)> = seen
        .connects
        .iter()
        .map(|c| (c.options.kill_switch, c.options.allow_lan))
        .collect();
    assert_eq!(
        sent,
        [
            (ipc::KillSwitchMode::Default, false),
            (ipc::KillSwitchMode::Off, false),
            (ipc::KillSwitchMode::On, true),
        ]
    );
}

#[tokio::test]
async fn two_split_tunnels_run_side_by_side_and_a_full_one_is_refused_clearly() {
    let full = format!("{}redirect-gateway def1\n", cert_profile());
    let r = rig(
        Script::Normal,
        &[
            ("Lab", cert_profile()),
            ("Office", cert_profile()),
            ("Everything", full),
        ],
    );
    let (lab, office, everything) = (r.ids[0].clone(), r.ids[1].clone(), r.ids[2].clone());
    let both_up = |e: &AppEvent| {
        matches!(e, AppEvent::Connections(c)
            if c.len() == 2 && c.iter().all(|s| matches!(s, ConnState::Connected { .. })))
    };

    ops::connect(&r.state, lab.clone()).await.unwrap();
    r.rec.wait_for("Lab connected", is_connected).await;
    ops::connect(&r.state, office.clone()).await.unwrap();
    let AppEvent::Connections(conns) = r.rec.wait_for("both connected", both_up).await else {
        unreachable!()
    };
    let ids: Vec<&str> = conns.iter().filter_map(|c| c.profile_id()).collect();
    assert_eq!(ids, [lab.as_str(), office.as_str()]);
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    assert_eq!(snap.connections.len(), 2);
    assert_eq!(r.helper.seen.lock().unwrap().disconnects, 0, "Lab stays up");

    // Disconnecting one leaves the other up.
    r.rec.clear();
    ops::disconnect_profile(&r.state, lab.clone())
        .await
        .unwrap();
    let AppEvent::Connections(conns) = r
        .rec
        .wait_for(
            "only Office left",
            |e| matches!(e, AppEvent::Connections(c) if c.len() == 1),
        )
        .await
    else {
        unreachable!()
    };
    assert_eq!(conns[0].profile_id(), Some(office.as_str()));
    assert!(matches!(conns[0], ConnState::Connected { .. }));

    // A full tunnel takes the kill switch; then another profile is refused with words.
    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for(
            "all down",
            |e| matches!(e, AppEvent::Connections(c) if c.is_empty()),
        )
        .await;
    ops::connect(&r.state, everything.clone()).await.unwrap();
    r.rec.wait_for("Everything connected", is_connected).await;
    r.rec.clear();
    ops::connect(&r.state, lab.clone()).await.unwrap();
    let AppEvent::State(ConnState::Failed {
        error, profile_id, ..
    }) = r
        .rec
        .wait_for("Lab refused", |e| {
            matches!(e, AppEvent::State(ConnState::Failed { .. }))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(profile_id.as_deref(), Some(lab.as_str()));
    assert_eq!(error.kind, ErrorKind::Busy);
    assert_eq!(
        error.message,
        "Another VPN connection's kill switch blocks this one."
    );
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    assert!(
        snap.connections.iter().any(
            |c| matches!(c, ConnState::Connected { session } if session.profile_id == everything)
        ),
        "the full tunnel stays up: {:?}",
        snap.connections
    );
}

fn sign_in_state(e: &AppEvent) -> Option<oxivpn_app::model::SignInView> {
    match e {
        AppEvent::State(ConnState::Connecting { stage, .. }) => stage.sign_in.clone(),
        _ => None,
    }
}

#[tokio::test]
async fn browser_sign_in_is_shown_opened_again_and_cancelled() {
    let r = rig(Script::SignIn, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    let ev = r
        .rec
        .wait_for("the sign-in step", |e| sign_in_state(e).is_some())
        .await;
    let AppEvent::State(ConnState::Connecting { stage, .. }) = &ev else {
        unreachable!()
    };
    assert_eq!(stage.kind, oxivpn_app::model::StageKind::SignIn);
    assert_eq!(stage.label, "Waiting for sign-in");
    let view = stage.sign_in.clone().unwrap();
    assert_eq!(view.host, "sso.example.com:8443");
    assert_eq!(view.url, SIGN_IN_URL);
    assert_eq!(view.timeout_secs, Some(60));
    let deadline = view.deadline_ms.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        deadline > now + 50_000 && deadline <= now + 60_000,
        "deadline {deadline} vs now {now}"
    );
    assert!(view.opened && view.kill_switch_exception && view.refusal.is_none());
    // Opened once by itself (the repeated request opens nothing more), with the user
    // told (the sink decides on a notification).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*r.rec.opened.lock().unwrap(), [SIGN_IN_URL]);
    assert_eq!(
        *r.rec.sign_ins.lock().unwrap(),
        [("Work".to_string(), "sso.example.com:8443".to_string())]
    );
    // The window shows it after a reload too.
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    let ConnState::Connecting { stage, .. } = &snap.connections[0] else {
        panic!("{:?}", snap.connections)
    };
    assert!(stage.sign_in.is_some());
    // "Open again" opens the helper's link, nothing the window names.
    ops::open_sign_in(&r.state, r.ids[0].clone()).await.unwrap();
    assert_eq!(r.rec.opened.lock().unwrap().len(), 2);
    // "Cancel" disconnects the waiting session.
    ops::disconnect_profile(&r.state, r.ids[0].clone())
        .await
        .unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;
    assert_eq!(r.helper.seen.lock().unwrap().disconnects, 1);
    // Nothing waits any more: nothing is opened.
    let e = ops::open_sign_in(&r.state, r.ids[0].clone())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(r.rec.opened.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_denied_sign_in_fails_clearly_and_remembers_nothing() {
    let r = rig(Script::SignInDenied, &[("Work", password_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    let AppEvent::Prompt(Some(prompt)) = r
        .rec
        .wait_for("the password dialog", |e| {
            matches!(e, AppEvent::Prompt(Some(_)))
        })
        .await
    else {
        unreachable!()
    };
    ops::submit_credentials(
        &r.state,
        CredentialsAnswer {
            prompt_id: prompt.id,
            username: Some("ann".into()),
            password: Some("right".into()),
            remember: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = failure(&r).await;
    assert_eq!(err.kind, ErrorKind::SignInFailed);
    assert_eq!(err.message, "The sign-in in your browser was not accepted.");
    assert!(err.details.contains("sign-in denied"), "{}", err.details);
    assert_eq!(r.rec.opened.lock().unwrap().len(), 1);
    // Not saved (never accepted), and no password dialog again: the password passed.
    assert!(r.secrets.load(&r.ids[0]).unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let prompts = r
        .rec
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, AppEvent::Prompt(Some(_))))
        .count();
    assert_eq!(prompts, 1);
    assert_eq!(r.rec.states().last().map(String::as_str), Some("Failed"));
}

/// A profile whose server is reached through an HTTP proxy (`how`: `stdin basic`,
/// `auto basic`); the fake proxy wants "squid" / PROXY_PASSWORD.
fn proxy_profile(how: &str, extra: &str) -> String {
    format!(
        "client\ndev tun\nremote 127.0.0.1 1194 tcp-client\nhttp-proxy 127.0.0.1 3128 {how}\n{extra}{CA}"
    )
}

fn proxy_answer(prompt_id: u32, user: &str, pass: &str, remember: bool) -> CredentialsAnswer {
    CredentialsAnswer {
        prompt_id,
        username: Some(user.into()),
        password: Some(pass.into()),
        remember,
        ..Default::default()
    }
}

fn sent_proxy_password(r: &Rig) -> Option<String> {
    let seen = r.helper.seen.lock().unwrap();
    seen.connects
        .last()
        .and_then(|c| c.credentials.proxy_password.as_ref())
        .map(|p| p.expose().to_string())
}

async fn disconnect_and_wait(r: &Rig) {
    ops::disconnect(&r.state).await.unwrap();
    r.rec
        .wait_for("disconnected", |e| {
            matches!(e, AppEvent::State(ConnState::Disconnected))
        })
        .await;
    r.rec.clear();
}

#[tokio::test]
async fn proxy_credentials_are_asked_sent_remembered_and_a_wrong_one_asked_again() {
    use support::fake_helper::PROXY_PASSWORD;
    let r = rig(
        Script::Normal,
        &[("Hotel", proxy_profile("stdin basic", ""))],
    );
    let id = r.ids[0].clone();
    ops::connect(&r.state, id.clone()).await.unwrap();
    // Asked before anything is sent: the helper would refuse a connect without them.
    let prompt = next_prompt(&r).await;
    assert_eq!(
        prompt.kind,
        PromptKind::Proxy {
            username: None,
            proxy_kind: "HTTP".into(),
            proxy: "127.0.0.1:3128".into(),
        }
    );
    assert!(r.helper.seen.lock().unwrap().connects.is_empty());
    // A password the proxy refuses: the connection fails saying so, the dialog comes
    // back with the user name kept, and nothing is remembered.
    ops::submit_credentials(&r.state, proxy_answer(prompt.id, "squid", "nope", true))
        .await
        .unwrap();
    let again = next_prompt(&r).await;
    assert_eq!(sent_proxy_password(&r).as_deref(), Some("nope"));
    assert_eq!(
        again.error.as_deref(),
        Some("The proxy did not accept the proxy user name or password.")
    );
    let PromptKind::Proxy { username, .. } = &again.kind else {
        panic!("the proxy dialog again, not {:?}", again.kind)
    };
    assert_eq!(username.as_deref(), Some("squid"));
    assert_eq!(
        r.secrets.load_proxy(&id).unwrap(),
        None,
        "a refused proxy password is never saved"
    );
    // An empty password is refused by the dialog's owner, not sent.
    let err = ops::submit_credentials(&r.state, proxy_answer(again.id, "squid", "", true))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    // The right one: connects, sent as the IPC secret, remembered in its own entry.
    ops::submit_credentials(
        &r.state,
        proxy_answer(again.id, "squid", PROXY_PASSWORD, true),
    )
    .await
    .unwrap();
    r.rec.wait_for("connected", is_connected).await;
    {
        let seen = r.helper.seen.lock().unwrap();
        let last = seen.connects.last().unwrap();
        assert_eq!(
            last.credentials.proxy_username.as_ref().unwrap().as_str(),
            "squid"
        );
        assert_eq!(
            last.credentials.password, None,
            "no VPN password was asked or sent"
        );
    }
    assert_eq!(sent_proxy_password(&r).as_deref(), Some(PROXY_PASSWORD));
    let saved = r.secrets.load_proxy(&id).unwrap().unwrap();
    assert_eq!(
        (saved.username.as_str(), saved.password.as_str()),
        ("squid", PROXY_PASSWORD)
    );
    assert_eq!(
        r.secrets.load(&id).unwrap(),
        None,
        "the VPN entry is not touched"
    );
    disconnect_and_wait(&r).await;

    // Next time the remembered pair goes without asking.
    ops::connect(&r.state, id.clone()).await.unwrap();
    r.rec.wait_for("connected again", is_connected).await;
    assert!(!r
        .rec
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, AppEvent::Prompt(Some(_)))));
    assert_eq!(sent_proxy_password(&r).as_deref(), Some(PROXY_PASSWORD));
    disconnect_and_wait(&r).await;

    // The proxy's password changed: the remembered one is refused, dropped, and asked for.
    r.secrets
        .save_proxy(
            &id,
            &SavedCredentials {
                username: "squid".into(),
                password: "last-years".into(),
                key_passphrase: None,
            },
        )
        .unwrap();
    ops::connect(&r.state, id.clone()).await.unwrap();
    let asked = next_prompt(&r).await;
    assert!(matches!(asked.kind, PromptKind::Proxy { .. }));
    assert!(asked.error.unwrap().contains("did not accept"));
    assert_eq!(sent_proxy_password(&r).as_deref(), Some("last-years"));
    assert_eq!(
        r.secrets.load_proxy(&id).unwrap(),
        None,
        "the refused saved password is forgotten"
    );
    // "Remember" off: connects, and nothing is kept.
    ops::submit_credentials(
        &r.state,
        proxy_answer(asked.id, "squid", PROXY_PASSWORD, false),
    )
    .await
    .unwrap();
    r.rec.wait_for("connected", is_connected).await;
    assert_eq!(r.secrets.load_proxy(&id).unwrap(), None);
    disconnect_and_wait(&r).await;
    // Deleting the profile removes its proxy entry too.
    r.secrets
        .save_proxy(
            &id,
            &SavedCredentials {
                username: "squid".into(),
                password: PROXY_PASSWORD.into(),
                key_passphrase: None,
            },
        )
        .unwrap();
    ops::delete_profile(&r.state, id.clone()).await.unwrap();
    assert_eq!(r.secrets.load_proxy(&id).unwrap(), None);
}

#[tokio::test]
async fn an_auto_proxy_is_asked_only_when_it_wants_credentials_and_the_vpn_password_is_kept() {
    use support::fake_helper::PROXY_PASSWORD;
    let r = rig(
        Script::Normal,
        &[("Cafe", proxy_profile("auto basic", "auth-user-pass\n"))],
    );
    let id = r.ids[0].clone();
    ops::connect(&r.state, id.clone()).await.unwrap();
    // The VPN password first, as for any profile.
    let vpn = next_prompt(&r).await;
    assert!(matches!(vpn.kind, PromptKind::Password { .. }));
    ops::submit_credentials(
        &r.state,
        CredentialsAnswer {
            prompt_id: vpn.id,
            username: Some("ann".into()),
            password: Some("pw".into()),
            remember: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // `auto`: sent without proxy credentials; the proxy wants some (407): asked.
    let proxy = next_prompt(&r).await;
    assert_eq!(sent_proxy_password(&r), None);
    assert_eq!(
        proxy.error.as_deref(),
        Some("The proxy asks for a user name and password.")
    );
    assert!(matches!(proxy.kind, PromptKind::Proxy { .. }));
    ops::submit_credentials(
        &r.state,
        proxy_answer(proxy.id, "squid", PROXY_PASSWORD, true),
    )
    .await
    .unwrap();
    r.rec.wait_for("connected", is_connected).await;
    {
        // The VPN password typed before the proxy dialog went again with the proxy's.
        let seen = r.helper.seen.lock().unwrap();
        let last = seen.connects.last().unwrap();
        assert_eq!(last.credentials.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(
            last.credentials.proxy_password.as_ref().unwrap().expose(),
            PROXY_PASSWORD
        );
        assert_eq!(seen.connects.len(), 2);
    }
    assert_eq!(r.secrets.load(&id).unwrap().unwrap().password, "pw");
    assert_eq!(
        r.secrets.load_proxy(&id).unwrap().unwrap().password,
        PROXY_PASSWORD
    );
}
