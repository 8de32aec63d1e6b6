//! The helper service goes away mid-session and comes back (a crash, a package upgrade):
//! the controller looks for it by itself with a bounded backoff, says so, and connects
//! again what the user had connected — unless the user cancelled it meanwhile.
// Against the fake helper, which listens on a Unix socket.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxivpn_app::commands::ops;
use oxivpn_app::error::ErrorKind;
use oxivpn_app::model::{
    AppEvent, ConnState, CredentialsAnswer, KillSwitchChoice, Protection, ProtectionSource,
    ServiceView, StageKind,
};
use oxivpn_app::secrets::{SavedCredentials, SecretStore};

#[path = "support/rig.rs"]
mod rig;
mod support;
use rig::*;
use support::fake_helper::Script;

fn is_waiting_for_service(e: &AppEvent) -> bool {
    matches!(e, AppEvent::State(ConnState::Connecting { stage, .. })
        if stage.kind == StageKind::WaitingForService)
}

fn service(e: &AppEvent) -> Option<&ServiceView> {
    match e {
        AppEvent::Service(s) => Some(s),
        _ => None,
    }
}

/// The helper dies under a connected profile: the window is told it waits.
async fn lose_helper(r: &Rig) {
    r.rec.clear();
    r.helper.stop();
    r.rec
        .wait_for("waiting for the service", is_waiting_for_service)
        .await;
    r.rec
        .wait_for("the banner", |e| service(e).is_some_and(|s| s.waiting))
        .await;
}

fn connects(r: &Rig) -> usize {
    r.helper.seen.lock().unwrap().connects.len()
}

#[tokio::test]
async fn a_helper_that_stops_mid_session_is_explained_and_waited_for() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    r.rec.wait_for("connected", is_connected).await;
    lose_helper(&r).await;
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    assert!(snap.service.waiting);
    let error = snap.service.error.unwrap();
    assert_eq!(error.kind, ErrorKind::HelperLost);
    assert_eq!(
        error.message,
        "The connection to the OxiVPN helper was lost."
    );
    assert!(error.hint.unwrap().contains("try again"));
    assert!(
        r.rec
            .notes
            .lock()
            .unwrap()
            .iter()
            .any(|n| n == "Work: waiting for the OxiVPN service"),
        "{:?}",
        r.rec.notes.lock().unwrap()
    );
    // Not "failed": the connection is on its way back.
    assert!(!r.rec.states().iter().any(|s| s.starts_with("Failed")));
}

#[tokio::test]
async fn a_connected_profile_connects_again_by_itself_when_the_helper_is_back() {
    let r = rig(Script::Normal, &[("Office", password_profile())]);
    let id = r.ids[0].clone();
    let saved = SavedCredentials {
        username: "ann".into(),
        password: "pw".into(),
        key_passphrase: None,
    };
    r.secrets.save(&id, &saved).unwrap();
    let protection = Protection {
        kill_switch: KillSwitchChoice::Off,
        allow_lan: false,
    };
    r.state
        .controller
        .connect_with(id.clone(), protection, ProtectionSource::Profile)
        .await
        .unwrap();
    r.rec.wait_for("connected", is_connected_in_detail).await;
    lose_helper(&r).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    r.rec.clear();
    let back = Instant::now();
    r.helper.restart();
    // No call into the controller from here on: it notices by itself.
    let AppEvent::State(ConnState::Connected { session }) =
        r.rec.wait_for("connected again", is_connected).await
    else {
        unreachable!()
    };
    eprintln!(
        "reattach: connected again {:.2} s after the helper came back",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(session.profile_id, id);
    assert_eq!(
        session.protection.map(|p| p.requested),
        Some(protection),
        "the protection the user chose is asked for again"
    );
    r.rec
        .wait_for("the banner gone", |e| {
            service(e).is_some_and(|s| !s.waiting)
        })
        .await;
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    assert_eq!(snap.service, ServiceView::default());
    let back_lines: Vec<_> = snap
        .log
        .iter()
        .filter(|l| l.message.starts_with("The OxiVPN service is back"))
        .collect();
    assert_eq!(back_lines.len(), 1, "{back_lines:?}");
    let seen = r.helper.seen.lock().unwrap();
    assert_eq!(seen.connects.len(), 2);
    assert_eq!(seen.connects[1].options, seen.connects[0].options);
    assert_eq!(
        seen.connects[1]
            .credentials
            .password
            .as_ref()
            .unwrap()
            .expose(),
        "pw",
        "the saved password from the keyring"
    );
}

#[tokio::test]
async fn without_saved_credentials_the_usual_prompt_asks_after_the_helper_is_back() {
    let r = rig(Script::Normal, &[("Office", password_profile())]);
    let id = r.ids[0].clone();
    ops::connect(&r.state, id.clone()).await.unwrap();
    let prompt = next_prompt(&r).await;
    let answer = CredentialsAnswer {
        prompt_id: prompt.id,
        username: Some("ann".into()),
        password: Some("pw".into()),
        remember: false,
        ..Default::default()
    };
    ops::submit_credentials(&r.state, answer).await.unwrap();
    r.rec.wait_for("connected", is_connected).await;
    assert_eq!(r.secrets.load(&id).unwrap(), None);
    lose_helper(&r).await;
    r.helper.restart();
    let again = next_prompt(&r).await;
    assert_eq!(again.profile_id, id);
    assert_eq!(connects(&r), 1, "nothing is sent without the password");
    let answer = CredentialsAnswer {
        prompt_id: again.id,
        username: Some("ann".into()),
        password: Some("pw".into()),
        ..Default::default()
    };
    ops::submit_credentials(&r.state, answer).await.unwrap();
    r.rec.wait_for("connected again", is_connected).await;
    assert_eq!(connects(&r), 2);
}

#[tokio::test]
async fn a_profile_cancelled_while_the_helper_was_away_stays_off() {
    let r = rig(
        Script::Normal,
        &[("Home", cert_profile()), ("Work", cert_profile())],
    );
    let (home, work) = (r.ids[0].clone(), r.ids[1].clone());
    ops::connect(&r.state, home.clone()).await.unwrap();
    r.rec.wait_for("home connected", is_connected).await;
    r.rec.clear();
    ops::connect(&r.state, work.clone()).await.unwrap();
    r.rec.wait_for("work connected", is_connected).await;
    lose_helper(&r).await;
    // The user cancels "Work" (the button says Cancel while it waits).
    ops::disconnect_profile(&r.state, work.clone())
        .await
        .unwrap();
    r.rec.clear();
    r.helper.restart();
    r.rec
        .wait_for("home connected again", |e| {
            matches!(e, AppEvent::State(ConnState::Connected { session }) if session.profile_id == home)
        })
        .await;
    // Give a wrong reconnect of "Work" time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let names: Vec<String> = r
        .helper
        .seen
        .lock()
        .unwrap()
        .connects
        .iter()
        .map(|c| c.profile_name.as_str().to_string())
        .collect();
    assert_eq!(names, ["Home", "Work", "Home"]);
    let snap = ops::get_snapshot(&r.state).await.unwrap();
    assert_eq!(snap.connections.len(), 1, "{:?}", snap.connections);
}

#[tokio::test]
async fn try_again_reaches_a_helper_that_is_back_at_once() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    r.rec.wait_for("connected", is_connected).await;
    lose_helper(&r).await;
    // Still away: "Try again" says so and the app keeps looking.
    let e = ops::reattach_helper(&r.state).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::HelperNotRunning);
    assert!(ops::get_snapshot(&r.state).await.unwrap().service.waiting);
    // The background's first tries (0.25 s, then 0.75 s) have failed; the next is
    // 1 s away. "Try again" does not wait for it.
    r.rec
        .wait_for("two tries", |e| service(e).is_some_and(|s| s.attempts >= 2))
        .await;
    r.helper.restart();
    let asked = Instant::now();
    ops::reattach_helper(&r.state).await.unwrap();
    assert!(asked.elapsed() < Duration::from_millis(500));
    assert!(!ops::get_snapshot(&r.state).await.unwrap().service.waiting);
    assert_eq!(connects(&r), 2, "the connect was sent again at once");
    r.rec.wait_for("connected again", is_connected).await;
}

#[tokio::test]
async fn a_helper_that_never_comes_back_is_looked_for_with_a_bounded_backoff() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    r.rec.wait_for("connected", is_connected).await;
    lose_helper(&r).await;
    let lost = Instant::now();
    // Something answers on the socket but is no helper: each try is one accept.
    let listener = tokio::net::UnixListener::bind(&r.helper.socket).unwrap();
    let tries = Arc::new(AtomicU32::new(0));
    let counted = tries.clone();
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    // Tries at 0.25, 0.75, 1.75 and 3.75 s (0.25 s doubling to 5 s): four in 4.5 s.
    tokio::time::sleep(Duration::from_millis(4500).saturating_sub(lost.elapsed())).await;
    let in_window = tries.load(Ordering::SeqCst);
    eprintln!("reattach: {in_window} tries in the first 4.5 s without a helper");
    assert!(
        (3..=5).contains(&in_window),
        "{in_window} tries in 4.5 s: a busy loop or no search"
    );
    let reported = ops::get_snapshot(&r.state).await.unwrap().service.attempts;
    assert!(
        reported + 1 >= in_window && reported <= in_window,
        "the window says {reported} tries, the socket saw {in_window}"
    );
    // The app quits: the search stops with it (the next try would be at 8.75 s).
    let Rig { state, rec, .. } = r;
    drop(state);
    drop(rec);
    tokio::time::sleep(Duration::from_millis(9500).saturating_sub(lost.elapsed())).await;
    let after_quit = tries.load(Ordering::SeqCst);
    assert_eq!(after_quit, in_window, "tries after the app quit");
    accept.abort();
}

#[tokio::test]
async fn a_helper_that_dies_on_every_connect_is_not_hammered() {
    // The helper answers, takes the connect, and goes away 0.2 s after "connected",
    // every time: each loss soon after a return starts the next wait twice as long.
    let r = rig(Script::DiesWhenConnected, &[("Work", cert_profile())]);
    let started = Instant::now();
    ops::connect(&r.state, r.ids[0].clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let n = connects(&r);
    eprintln!("reattach: {n} connects in 4 s to a helper that dies on each");
    // 0 s, then about 0.45, 1.2 and 2.4 s (waits of 0.25, 0.5, 1 s); a fixed 0.25 s
    // wait would make about 9.
    assert!(
        (3..=5).contains(&n),
        "{n} connects in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// At login the app may start before the service: a connect the app makes by itself
/// (connect at start or at login, an untrusted network) waits for the service instead
/// of failing, and goes through once the service listens — no click.
#[tokio::test]
async fn a_connect_at_start_waits_for_a_service_that_is_not_up_yet() {
    let r = rig(Script::Normal, &[("Work", cert_profile())]);
    r.helper.stop();
    let id = r.ids[0].clone();
    r.rec.clear();
    r.state
        .controller
        .connect_or_wait(id.clone(), Protection::default(), ProtectionSource::Global)
        .await
        .expect("queued, not failed");
    r.rec
        .wait_for("waiting for the service", is_waiting_for_service)
        .await;
    r.rec
        .wait_for("the banner", |e| service(e).is_some_and(|s| s.waiting))
        .await;
    assert_eq!(connects(&r), 0);
    assert!(
        !r.rec.states().iter().any(|s| s.starts_with("Failed")),
        "no failure shown for a service that is only starting: {:?}",
        r.rec.states()
    );
    r.rec.clear();
    r.helper.restart();
    let AppEvent::State(ConnState::Connected { session }) =
        r.rec.wait_for("connected", is_connected).await
    else {
        unreachable!()
    };
    assert_eq!(session.profile_id, id);
    assert_eq!(connects(&r), 1);
    assert!(!r.rec.states().iter().any(|s| s.starts_with("Failed")));
}
