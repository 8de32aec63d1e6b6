//! One session's life: runs attempts until one ends for good. The reconnect policy
//! lives here and only here: backoff, remote failover, `auth-token` reuse, challenges
//! asked of the user, and the network watch that reconnects at once when the network
//! under the tunnel changes. The service runs one per session; `oxivpn-helper connect`
//! runs exactly one.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use ipc::{
    ChallengeRequest, DisconnectReason, IpcError, KillSwitchMode, LogLevel, Secret, ShortText,
    Stage,
};
use ovpn_core::config::ChallengeResponse;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::challenge::{ask, response_for, Asked, CHALLENGE_TIMEOUT};
use super::launcher::Attempts;
use super::netwatch::NetWatch;
use super::retry::RetryPlan;
use super::{AttemptSpec, Events, SessionEvent, SessionSpec, TunnelEnd, TunnelOutcome};

/// Challenges answered in a row (a server asking over and over is refused).
const MAX_CHALLENGES: u32 = 4;

/// `Some(uid)` once somebody asked the session to stop.
pub type StopRequest = watch::Receiver<Option<u32>>;

/// How the session is steered from outside.
pub struct Control {
    pub stop: StopRequest,
    /// Answers to challenges, in order; `None`: nobody can answer (the session fails
    /// with a clear message when the server asks).
    pub answers: Option<mpsc::Receiver<Secret>>,
    /// Set (with a reason) when the session must reconnect now: the machine woke up.
    pub reconnect: Option<watch::Receiver<Option<String>>>,
}

/// Where the service and `connect` differ.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// End a session that never got up once every remote failed (`connect`: a wrong
    /// profile or an unreachable server is reported, not retried forever). Once
    /// connected, both keep trying: giving up would lift the kill switch, so anyone
    /// who blocks the server for a minute would get plain traffic.
    pub give_up_unless_connected: bool,
}

/// Runs `spec` until it ends for good; the reason is also the last `Disconnected` stage
/// event. Releases what the launcher kept for the session before returning.
pub async fn run(
    spec: Arc<SessionSpec>,
    launcher: Arc<dyn Attempts>,
    events: Events,
    mut control: Control,
    policy: Policy,
) -> DisconnectReason {
    let reason = supervise(&spec, launcher.as_ref(), &events, &mut control, policy).await;
    launcher.session_ended(spec.id).await;
    let _ = events.send(SessionEvent::Stage(Stage::Disconnected {
        reason: reason.clone(),
    }));
    reason
}

fn requested(stop: &StopRequest) -> Option<DisconnectReason> {
    stop.borrow()
        .map(|by_uid| DisconnectReason::Requested { by_uid })
}

async fn supervise(
    spec: &Arc<SessionSpec>,
    launcher: &dyn Attempts,
    events: &Events,
    control: &mut Control,
    policy: Policy,
) -> DisconnectReason {
    let remotes = spec.profile.endpoints().len().max(1);
    // The shuffle of `remote-random` only; a failed read keeps a fixed order.
    let seed = ovpn_tokio::os_seed().unwrap_or([0; 32]);
    let mut plan = RetryPlan::new(&spec.profile, seed);
    let mut next = AttemptSpec {
        session: spec.clone(),
        remote_index: plan.current(),
        auth_token: None,
        attempt: 0,
        challenge_response: spec.static_response.clone().and_then(|response| {
            spec.profile
                .static_challenge
                .is_some()
                .then_some(ChallengeResponse::Static { response })
        }),
    };
    let mut ever_connected = false;
    // Attempts since the last connected one (for giving up after a round of remotes).
    let mut failed_in_a_row = 0usize;
    let mut asked = 0u32;
    // Servers that refused us (TLS, configuration) since the last connection.
    let mut refused = std::collections::HashSet::new();
    loop {
        let (out, net_changed) = one_attempt(next.clone(), launcher, events, control).await;
        if out.auth_token.is_some() {
            next.auth_token = out.auth_token.clone();
        }
        if out.was_connected {
            ever_connected = true;
            plan.connected();
            refused.clear();
            failed_in_a_row = 0;
            asked = 0;
        }
        if let Some(r) = requested(&control.stop) {
            return r;
        }
        // The server asked a question: the next attempt carries the answer, at once.
        if let (Some(challenge), false) = (&out.challenge, out.end == TunnelEnd::Stopped) {
            if asked < MAX_CHALLENGES {
                asked += 1;
                match ask(challenge, events, control).await {
                    Asked::Answer(response) => {
                        next.challenge_response = Some(response_for(challenge, response));
                        log(
                            events,
                            LogLevel::Info,
                            "challenge answered; authenticating again",
                        );
                        next.attempt = next.attempt.saturating_add(1);
                        continue;
                    }
                    Asked::Stopped => {
                        return requested(&control.stop)
                            .unwrap_or(DisconnectReason::Requested { by_uid: 0 })
                    }
                    Asked::TimedOut => {
                        return DisconnectReason::AuthFailed {
                            message: ShortText::sanitized(&format!(
                                "the challenge was not answered within {} s",
                                CHALLENGE_TIMEOUT.as_secs()
                            )),
                        }
                    }
                    Asked::Unsupported(what) => {
                        return DisconnectReason::Failed {
                            error: IpcError::tunnel(what),
                        }
                    }
                }
            }
        }
        let end = match net_changed {
            Some(reason) => TunnelEnd::RetryNow(reason),
            None => out.end,
        };
        let (reason, delay) = match end {
            TunnelEnd::Stopped => {
                return DisconnectReason::Requested {
                    by_uid: control.stop.borrow().unwrap_or(0),
                }
            }
            TunnelEnd::AuthFailed(m) => {
                if next.auth_token.take().is_some() {
                    // An expired token: retry once with the real password.
                    let delay = match plan.failed(false, false, Instant::now().into_std()) {
                        Ok(d) => d,
                        Err(give_up) => {
                            return DisconnectReason::Failed {
                                error: IpcError::tunnel(give_up.text(&m)),
                            }
                        }
                    };
                    (
                        "auth-token refused, retrying with the password".to_owned(),
                        delay,
                    )
                } else {
                    return DisconnectReason::AuthFailed {
                        message: ShortText::sanitized(&m),
                    };
                }
            }
            TunnelEnd::Fatal(m) => {
                return DisconnectReason::Failed {
                    error: IpcError::tunnel(m),
                }
            }
            // Another server may accept us; once every one refused, nothing will change.
            TunnelEnd::Refused(m) => {
                refused.insert(next.remote_index);
                if refused.len() >= remotes {
                    return DisconnectReason::Failed {
                        error: IpcError::tunnel(m),
                    };
                }
                log(
                    events,
                    LogLevel::Warn,
                    format!("{m}; trying the next server"),
                );
                match plan.failed(true, false, Instant::now().into_std()) {
                    Ok(delay) => (m, delay),
                    Err(give_up) => {
                        return DisconnectReason::Failed {
                            error: IpcError::tunnel(give_up.text(&m)),
                        }
                    }
                }
            }
            TunnelEnd::Retry {
                reason,
                next_remote,
            } => {
                if !out.was_connected {
                    failed_in_a_row += 1;
                }
                if policy.give_up_unless_connected && !ever_connected && failed_in_a_row >= remotes
                {
                    return DisconnectReason::Failed {
                        error: IpcError::tunnel(format!("could not connect: {reason}")),
                    };
                }
                match plan.failed(next_remote, out.resolve_failed, Instant::now().into_std()) {
                    Ok(delay) => (reason, delay),
                    Err(give_up) => {
                        return DisconnectReason::Failed {
                            error: IpcError::tunnel(give_up.text(&reason)),
                        }
                    }
                }
            }
            TunnelEnd::RetryNow(reason) => (reason, Duration::ZERO),
        };
        next.remote_index = plan.current();
        next.attempt = next.attempt.saturating_add(1);
        let _ = events.send(SessionEvent::Stage(Stage::Reconnecting {
            reason: ShortText::sanitized(&reason),
            attempt: next.attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            by = control.stop.wait_for(|s| s.is_some()) => {
                let by_uid = by.ok().and_then(|b| *b).unwrap_or(0);
                return DisconnectReason::Requested { by_uid };
            }
        }
    }
}

/// Runs one attempt, forwarding its events; cancels it on a stop request or when the
/// network under a connected tunnel changes (returned as the second value).
async fn one_attempt(
    spec: AttemptSpec,
    launcher: &dyn Attempts,
    events: &Events,
    control: &mut Control,
) -> (TunnelOutcome, Option<String>) {
    let stop = &mut control.stop;
    let reconnect = &mut control.reconnect;
    let answers = &mut control.answers;
    // CR_TEXT on the live session: where the user's answer goes.
    let mut cr_answer: Option<mpsc::UnboundedSender<ovpn_core::config::Secret>> = None;
    let watches = launcher.wired();
    // The kill switch's table depends on forwarding (Linux): watch it when it may be on.
    let guarded = spec.session.options.kill_switch != KillSwitchMode::Off;
    let token = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = launcher.attempt(spec, tx, token.clone());
    tokio::pin!(fut);
    let mut watch: Option<NetWatch> = None;
    let mut net_changed: Option<String> = None;
    let mut stopping = stop.borrow().is_some();
    if stopping {
        token.cancel();
    }
    let out = loop {
        tokio::select! {
            Some(ev) = rx.recv() => {
                let ev = relay_cr_text(ev, &mut cr_answer, answers);
                let up = matches!(ev, SessionEvent::Stage(Stage::Connected { .. }));
                if up && watches && watch.is_none() {
                    // From the configured state on: our own routes are part of the
                    // baseline, taken before anyone hears that the tunnel is up.
                    watch = Some(NetWatch::start(guarded));
                }
                let _ = events.send(ev);
            }
            reason = changed(&mut watch), if watch.is_some() && net_changed.is_none() => {
                log(events, LogLevel::Warn, format!("{reason}: reconnecting now"));
                net_changed = Some(reason);
                token.cancel();
            }
            r = woke(reconnect), if net_changed.is_none() => match r {
                Some(reason) => {
                    log(events, LogLevel::Warn, format!("{reason}: reconnecting now"));
                    net_changed = Some(reason);
                    token.cancel();
                }
                None => *reconnect = None,
            },
            r = stop.changed(), if !stopping => {
                // A dropped sender counts as a stop: nobody could stop it any more.
                if r.is_err() || stop.borrow().is_some() {
                    stopping = true;
                    token.cancel();
                }
            }
            a = next_answer(answers), if cr_answer.is_some() => match (a, &cr_answer) {
                (Some(a), Some(tx)) => {
                    let _ = tx.send(String::from(a).into());
                }
                // Nobody can answer any more.
                _ => cr_answer = None,
            },
            out = &mut fut => break out,
        }
    };
    drop(watch);
    while let Ok(ev) = rx.try_recv() {
        let ev = match ev {
            SessionEvent::CrText(_) => SessionEvent::Log(
                LogLevel::Warn,
                "the server's challenge came after the attempt ended".into(),
            ),
            ev => ev,
        };
        let _ = events.send(ev);
    }
    (out, net_changed)
}

/// A CR_TEXT question of the live attempt becomes a challenge for the user (whose
/// answer [`one_attempt`] feeds back into the attempt); everything else passes.
fn relay_cr_text(
    ev: SessionEvent,
    cr_answer: &mut Option<mpsc::UnboundedSender<ovpn_core::config::Secret>>,
    answers: &mut Option<mpsc::Receiver<Secret>>,
) -> SessionEvent {
    let SessionEvent::CrText(p) = ev else {
        return ev;
    };
    let Some(rx) = answers.as_mut() else {
        return SessionEvent::Log(
            LogLevel::Warn,
            format!(
                "the server asks: {:?}; nobody can answer it here (use the service: oxivpnctl connect)",
                p.text
            ),
        );
    };
    // An answer left over from an earlier prompt is stale.
    while rx.try_recv().is_ok() {}
    *cr_answer = Some(p.answer.clone());
    SessionEvent::Challenge(ChallengeRequest {
        prompt: ShortText::sanitized(&p.text),
        echo: p.echo,
    })
}

/// The next challenge answer; pending for ever when nobody can send one.
async fn next_answer(rx: &mut Option<mpsc::Receiver<Secret>>) -> Option<Secret> {
    match rx.as_mut() {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next reconnect request; `None` once nobody can send one.
async fn woke(rx: &mut Option<watch::Receiver<Option<String>>>) -> Option<String> {
    let Some(rx) = rx.as_mut() else {
        return std::future::pending().await;
    };
    match rx.changed().await {
        Ok(()) => Some(rx.borrow_and_update().clone().unwrap_or_default()),
        Err(_) => None,
    }
}

async fn changed(watch: &mut Option<NetWatch>) -> String {
    match watch.as_mut() {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

fn log(events: &Events, level: LogLevel, msg: impl Into<String>) {
    let _ = events.send(SessionEvent::Log(level, msg.into()));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tunnel::launcher::BoxFuture;
    use ipc::SessionId;
    use ovpn_core::session::Challenge;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// An attempt as scripted: its outcome, and whether it first reports `connected`
    /// and then waits to be cancelled.
    enum Step {
        End(TunnelOutcome),
        UpUntilCancelled,
    }

    #[derive(Default)]
    struct Script {
        steps: Mutex<VecDeque<Step>>,
        seen: Mutex<Vec<AttemptSpec>>,
        ended: Mutex<Vec<SessionId>>,
    }

    struct Scripted(Arc<Script>);

    impl Attempts for Scripted {
        fn wired(&self) -> bool {
            false
        }
        fn attempt(
            &self,
            spec: AttemptSpec,
            events: Events,
            stop: CancellationToken,
        ) -> crate::tunnel::launcher::BoxFuture<TunnelOutcome> {
            let me = self.0.clone();
            Box::pin(async move {
                me.seen.lock().unwrap().push(spec.clone());
                let step = me.steps.lock().unwrap().pop_front();
                match step {
                    Some(Step::End(out)) => out,
                    Some(Step::UpUntilCancelled) => {
                        let _ = events.send(SessionEvent::Stage(Stage::Connected {
                            tunnel_ipv4: None,
                            tunnel_ipv6: None,
                            interface: None,
                        }));
                        stop.cancelled().await;
                        let mut out = TunnelOutcome::new(TunnelEnd::Stopped, None);
                        out.was_connected = true;
                        out
                    }
                    None => {
                        stop.cancelled().await;
                        TunnelOutcome::new(TunnelEnd::Stopped, None)
                    }
                }
            })
        }
        fn session_ended(&self, session: SessionId) -> BoxFuture<()> {
            self.0.ended.lock().unwrap().push(session);
            Box::pin(async {})
        }
    }

    const FP: &str = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";

    fn spec(remotes: usize) -> Arc<SessionSpec> {
        spec_with("", remotes)
    }

    fn spec_with(extra: &str, remotes: usize) -> Arc<SessionSpec> {
        let mut text =
            format!("client\ndev tun\nproto udp\nnobind\npeer-fingerprint {FP}\n{extra}\n");
        for i in 0..remotes {
            text.push_str(&format!("remote 127.0.0.{} 1194\n", i + 1));
        }
        let profile = ovpn_profile::check_untrusted(text.as_bytes()).unwrap();
        Arc::new(SessionSpec {
            id: SessionId(7),
            profile: Arc::new(profile),
            credentials: None,
            proxy_credentials: None,
            static_response: None,
            key_passphrase: None,
            options: ipc::ConnectOptions::default(),
        })
    }

    fn retry() -> Step {
        Step::End(TunnelOutcome::new(
            TunnelEnd::Retry {
                reason: "no reply from the server".into(),
                next_remote: true,
            },
            None,
        ))
    }

    fn control() -> (watch::Sender<Option<u32>>, Control) {
        let (tx, rx) = watch::channel(None);
        (
            tx,
            Control {
                stop: rx,
                answers: None,
                reconnect: None,
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn connect_gives_up_after_one_round_of_remotes() {
        let script = Arc::new(Script::default());
        script.steps.lock().unwrap().extend([retry(), retry()]);
        let (_stop, control) = control();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let policy = Policy {
            give_up_unless_connected: true,
        };
        let r = run(
            spec(2),
            Arc::new(Scripted(script.clone())),
            tx,
            control,
            policy,
        )
        .await;
        match &r {
            DisconnectReason::Failed { error } => {
                assert!(
                    error.to_string().contains("could not connect: no reply"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
        let seen: Vec<usize> = script
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.remote_index)
            .collect();
        assert_eq!(seen, vec![0, 1], "each remote once");
        assert_eq!(*script.ended.lock().unwrap(), vec![SessionId(7)]);
        let mut last = None;
        while let Ok(ev) = rx.try_recv() {
            if let SessionEvent::Stage(s) = ev {
                last = Some(s);
            }
        }
        assert!(matches!(last, Some(Stage::Disconnected { .. })), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_service_keeps_trying_and_a_stop_ends_it() {
        let script = Arc::new(Script::default());
        script
            .steps
            .lock()
            .unwrap()
            .extend([retry(), retry(), retry()]);
        let (stop, control) = control();
        let (tx, _rx) = mpsc::unbounded_channel();
        let policy = Policy {
            give_up_unless_connected: false,
        };
        let task = tokio::spawn(run(
            spec(2),
            Arc::new(Scripted(script.clone())),
            tx,
            control,
            policy,
        ));
        // 1 s between attempts (connect-retry's default), then the fourth attempt waits.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(script.seen.lock().unwrap().len(), 4);
        stop.send_replace(Some(1000));
        assert_eq!(
            task.await.unwrap(),
            DisconnectReason::Requested { by_uid: 1000 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_service_gives_up_after_connect_retry_max_rounds() {
        let script = Arc::new(Script::default());
        script
            .steps
            .lock()
            .unwrap()
            .extend([retry(), retry(), retry(), retry(), retry()]);
        let (_stop, control) = control();
        let (tx, _rx) = mpsc::unbounded_channel();
        let policy = Policy {
            give_up_unless_connected: false,
        };
        let started = tokio::time::Instant::now();
        let r = run(
            spec_with("connect-retry 2\nconnect-retry-max 2", 2),
            Arc::new(Scripted(script.clone())),
            tx,
            control,
            policy,
        )
        .await;
        match &r {
            DisconnectReason::Failed { error } => {
                assert!(error.to_string().contains("connect-retry-max 2"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        let seen: Vec<usize> = script
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.remote_index)
            .collect();
        assert_eq!(seen, vec![0, 1, 0, 1], "each server twice, in turn");
        // Three waits of connect-retry's 2 s between the four attempts.
        assert_eq!(started.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_server_fails_over_and_all_refusing_ends_the_session() {
        let refused = || {
            Step::End(TunnelOutcome::new(
                TunnelEnd::Refused("certificate verify failed".into()),
                None,
            ))
        };
        let script = Arc::new(Script::default());
        script
            .steps
            .lock()
            .unwrap()
            .extend([refused(), retry(), refused(), refused(), refused()]);
        let (_stop, control) = control();
        let (tx, _rx) = mpsc::unbounded_channel();
        let policy = Policy {
            give_up_unless_connected: false,
        };
        let r = run(
            spec(3),
            Arc::new(Scripted(script.clone())),
            tx,
            control,
            policy,
        )
        .await;
        match &r {
            DisconnectReason::Failed { error } => {
                assert!(
                    error.to_string().contains("certificate verify failed"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
        let seen: Vec<usize> = script
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.remote_index)
            .collect();
        // 0 refuses, 1 does not answer, 2 and 0 refuse, then 1 too: every one refused.
        assert_eq!(seen, vec![0, 1, 2, 0, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dynamic_challenge_is_asked_and_the_answer_carried() {
        let script = Arc::new(Script::default());
        let mut asked = TunnelOutcome::new(TunnelEnd::AuthFailed("CRV1".into()), None);
        asked.challenge = Some(Challenge::Dynamic {
            state_id: "st".into(),
            username: "alice".into(),
            text: "Your OTP".into(),
            echo: true,
            response_required: true,
        });
        script
            .steps
            .lock()
            .unwrap()
            .push_back(Step::End(asked.clone()));
        let (stop, mut control) = control();
        let (answer_tx, answer_rx) = mpsc::channel(1);
        control.answers = Some(answer_rx);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let policy = Policy {
            give_up_unless_connected: false,
        };
        let task = tokio::spawn(run(
            spec(1),
            Arc::new(Scripted(script.clone())),
            tx,
            control,
            policy,
        ));
        let prompt = loop {
            match rx.recv().await.unwrap() {
                SessionEvent::Challenge(c) => break c,
                _ => continue,
            }
        };
        assert_eq!(prompt.prompt.as_str(), "Your OTP");
        answer_tx
            .send(Secret::try_from("123456").unwrap())
            .await
            .unwrap();
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let second = script.seen.lock().unwrap()[1].clone();
        match second.challenge_response {
            Some(ChallengeResponse::Dynamic {
                state_id, response, ..
            }) => assert_eq!((state_id.as_str(), response.expose()), ("st", "123456")),
            other => panic!("{other:?}"),
        }
        stop.send_replace(Some(0));
        task.await.unwrap();

        // Nobody to ask (`connect`): the session ends saying so.
        let script = Arc::new(Script::default());
        script.steps.lock().unwrap().push_back(Step::End(asked));
        let (_stop, control) = control_pair();
        let (tx, _rx) = mpsc::unbounded_channel();
        let r = run(spec(1), Arc::new(Scripted(script)), tx, control, policy).await;
        assert!(
            matches!(&r, DisconnectReason::Failed { error } if error.to_string().contains("nobody can answer")),
            "{r:?}"
        );
    }

    fn control_pair() -> (watch::Sender<Option<u32>>, Control) {
        control()
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnect_request_cuts_a_connected_attempt_short() {
        let script = Arc::new(Script::default());
        script
            .steps
            .lock()
            .unwrap()
            .extend([Step::UpUntilCancelled, Step::UpUntilCancelled]);
        let (stop, mut control) = control();
        let (wake_tx, wake_rx) = watch::channel(None);
        control.reconnect = Some(wake_rx);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let policy = Policy {
            give_up_unless_connected: false,
        };
        let task = tokio::spawn(run(
            spec(1),
            Arc::new(Scripted(script.clone())),
            tx,
            control,
            policy,
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
        wake_tx.send_replace(Some("the machine woke up".into()));
        let delay = loop {
            if let SessionEvent::Stage(Stage::Reconnecting {
                delay_ms, reason, ..
            }) = rx.recv().await.unwrap()
            {
                assert_eq!(reason.as_str(), "the machine woke up");
                break delay_ms;
            }
        };
        assert_eq!(delay, 0, "no backoff after a wake-up");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(script.seen.lock().unwrap().len(), 2);
        stop.send_replace(Some(0));
        task.await.unwrap();
    }
}
