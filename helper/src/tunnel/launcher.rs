//! The IPC service's seam ([`TunnelLauncher`]) implemented with the real tunnel.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipc::{ChallengeRequest, ConnectionInfo, LogLevel, Secret, ShortText, Stage, Stats, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use super::{
    remote_text, run, NetOptions, TunnelEnd, TunnelEvent, TunnelOutcome, TunnelSpec, TunnelStage,
};
use crate::service::netwatch::NetWatch;
use crate::service::tunnel_port::{
    AttemptEnd, AttemptFuture, AttemptSpec, ChallengeAnswers, StopSignal, TunnelLauncher,
    TunnelUpdate,
};
use ovpn_core::config::ChallengeResponse;
use ovpn_core::session::Challenge;

/// Brings real tunnels up for the service.
#[derive(Debug, Clone, Default)]
pub struct EngineLauncher {
    pub net: NetOptions,
}

impl TunnelLauncher for EngineLauncher {
    fn wired(&self) -> bool {
        true
    }

    fn run(
        &self,
        spec: AttemptSpec,
        updates: mpsc::Sender<TunnelUpdate>,
        mut stop: StopSignal,
        challenges: ChallengeAnswers,
    ) -> AttemptFuture {
        let net = self.net.clone();
        Box::pin(async move {
            // The service's guard already checked the text; parse it ourselves anyway.
            let profile = match ovpn_profile::check_untrusted(spec.profile_text.as_bytes()) {
                Ok(p) => p,
                Err(e) => return AttemptEnd::Fatal(e.to_string()),
            };
            let credentials = match (&spec.credentials.username, &spec.credentials.password) {
                (Some(u), Some(p)) => Some(ovpn_core::config::Credentials {
                    username: u.as_str().to_owned(),
                    password: p.expose().to_owned(),
                }),
                _ => None,
            };
            let mut ts = TunnelSpec {
                profile,
                credentials,
                auth_token: spec.auth_token.as_ref().map(|s| s.expose().to_owned()),
                remote_index: Some(spec.remote_index),
                net,
                gui_version: Some(format!("OxiVPN_{}", env!("CARGO_PKG_VERSION"))),
                challenge_response: None,
            };
            // A static-challenge answer typed with the password (app, oxivpnctl).
            if ts.profile.static_challenge.is_some() {
                ts.challenge_response = spec.credentials.challenge_response.as_ref().map(|r| {
                    ChallengeResponse::Static {
                        response: r.expose().to_owned(),
                    }
                });
            }
            let token = CancellationToken::new();
            let watcher = {
                let token = token.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        if stop.borrow_and_update().is_some() {
                            token.cancel();
                            return;
                        }
                        if stop.changed().await.is_err() {
                            return;
                        }
                    }
                })
            };
            let mut since_ms = 0u64;
            let mut asked = 0u32;
            let mut net_changed: Option<String> = None;
            let outcome = loop {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let fut = run(ts.clone(), tx, token.clone());
                tokio::pin!(fut);
                let mut challenge = None;
                let mut watch: Option<NetWatch> = None;
                // CR_TEXT on the live session: the owner's answer goes back into it.
                let mut cr_answer: Option<mpsc::UnboundedSender<String>> = None;
                let mut answers = challenges.lock().await;
                let outcome = loop {
                    tokio::select! {
                        Some(ev) = rx.recv() => match ev {
                            TunnelEvent::Challenge(c) => challenge = Some(c),
                            TunnelEvent::CrText(p) => {
                                cr_answer = Some(p.answer.clone());
                                let _ = updates.send(TunnelUpdate::Challenge(ChallengeRequest {
                                    prompt: ShortText::sanitized(&p.text),
                                    echo: p.echo,
                                })).await;
                            }
                            ev => {
                                let up = matches!(ev, TunnelEvent::Stage(TunnelStage::Connected { .. }));
                                if up && watch.is_none() {
                                    // From the configured state on: our own routes are part of the
                                    // baseline, taken before anyone hears that the tunnel is up.
                                    watch = Some(NetWatch::start());
                                }
                                forward(ev, &updates, &mut since_ms).await;
                            }
                        },
                        reason = changed(&mut watch), if watch.is_some() && net_changed.is_none() => {
                            let _ = updates.send(TunnelUpdate::Log(LogLevel::Warn, format!("{reason}: reconnecting now"))).await;
                            net_changed = Some(reason);
                            token.cancel();
                        }
                        Some(a) = answers.recv(), if cr_answer.is_some() => {
                            if let Some(tx) = &cr_answer {
                                let _ = tx.send(a.expose().to_owned());
                            }
                        }
                        out = &mut fut => break out,
                    }
                };
                drop(answers);
                drop(watch);
                while let Ok(ev) = rx.try_recv() {
                    match ev {
                        TunnelEvent::Challenge(c) => challenge = Some(c),
                        ev => forward(ev, &updates, &mut since_ms).await,
                    }
                }
                let Some(challenge) = challenge else {
                    break outcome;
                };
                if outcome.end == TunnelEnd::Stopped || asked >= MAX_CHALLENGES {
                    break outcome;
                }
                asked += 1;
                if let Some(t) = &outcome.auth_token {
                    ts.auth_token = Some(t.clone());
                }
                match ask(&challenge, &updates, &challenges, &mut stop).await {
                    Asked::Answer(response) => {
                        ts.challenge_response = Some(response_for(&challenge, response));
                        let _ = updates
                            .send(TunnelUpdate::Log(
                                LogLevel::Info,
                                "challenge answered; authenticating again".into(),
                            ))
                            .await;
                    }
                    Asked::Stopped => {
                        break TunnelOutcome {
                            end: TunnelEnd::Stopped,
                            ..outcome
                        }
                    }
                    Asked::TimedOut => {
                        break TunnelOutcome {
                            end: TunnelEnd::AuthFailed(format!(
                                "the challenge was not answered within {} s",
                                CHALLENGE_TIMEOUT.as_secs()
                            )),
                            ..outcome
                        }
                    }
                    Asked::Unsupported(what) => {
                        break TunnelOutcome {
                            end: TunnelEnd::Fatal(what),
                            ..outcome
                        }
                    }
                }
            };
            watcher.abort();
            if let Some(reason) = net_changed {
                if stop.borrow().is_none() {
                    return AttemptEnd::RetryNow(reason);
                }
            }
            match outcome.end {
                TunnelEnd::Stopped => AttemptEnd::Stopped,
                TunnelEnd::AuthFailed(m) => AttemptEnd::AuthFailed(m),
                TunnelEnd::Retry {
                    reason,
                    next_remote,
                } => AttemptEnd::Retry {
                    reason,
                    next_remote,
                },
                TunnelEnd::Fatal(m) => AttemptEnd::Fatal(m),
            }
        })
    }
}

async fn forward(ev: TunnelEvent, updates: &mpsc::Sender<TunnelUpdate>, since_ms: &mut u64) {
    let u = match ev {
        TunnelEvent::Stage(s) => TunnelUpdate::Stage(match s {
            TunnelStage::Resolving { .. } => Stage::Resolving,
            TunnelStage::Connecting { remote, tcp } => Stage::Connecting {
                remote: ShortText::sanitized(&remote_text(&remote, tcp)),
            },
            TunnelStage::Tls => Stage::Tls,
            TunnelStage::Authenticating => Stage::Authenticating,
            TunnelStage::Configuring => Stage::Configuring,
            TunnelStage::Connected {
                tunnel_ipv4,
                tunnel_ipv6,
                interface,
            } => {
                *since_ms = unix_ms();
                Stage::Connected {
                    tunnel_ipv4: tunnel_ipv4.map(IpAddr::V4),
                    tunnel_ipv6: tunnel_ipv6.map(IpAddr::V6),
                    interface: Some(ShortText::sanitized(&interface)),
                }
            }
        }),
        TunnelEvent::Log(level, msg) => TunnelUpdate::Log(log_level(level), msg),
        TunnelEvent::Stats(s) => TunnelUpdate::Stats(Stats {
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            packets_in: s.packets_in,
            packets_out: s.packets_out,
            since_unix_ms: *since_ms,
        }),
        TunnelEvent::AuthToken(t) => match Secret::try_from(t) {
            Ok(s) => TunnelUpdate::AuthToken(s),
            Err(_) => return,
        },
        // Answered by the attempt loop; a CR_TEXT challenge on a live session is not.
        TunnelEvent::Challenge(_) => TunnelUpdate::Log(
            LogLevel::Warn,
            "the server asks for a challenge response this helper cannot answer here".into(),
        ),
        TunnelEvent::Negotiated(d) => TunnelUpdate::Connection(ConnectionInfo {
            server_addr: d.remote.ip(),
            server_port: d.remote.port(),
            transport: if d.tcp {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            remote: ShortText::sanitized(&d.remote_host),
            cipher: d.cipher.as_deref().map(ShortText::sanitized),
            tls: d.tls.as_deref().map(ShortText::sanitized),
            key_derivation: d.key_derivation.as_deref().map(ShortText::sanitized),
            kill_switch: d.kill_switch,
            interface: Some(ShortText::sanitized(&d.interface)),
        }),
        TunnelEvent::Plan(p) => {
            let (routes, notes) = crate::service::route_plan::entries(&p);
            TunnelUpdate::Routes(routes, notes)
        }
        TunnelEvent::SignIn(n) => super::sso::to_ipc(&n),
        TunnelEvent::CrText(_) => TunnelUpdate::Log(
            LogLevel::Warn,
            "the server's challenge came after the attempt ended".into(),
        ),
    };
    let _ = updates.send(u).await;
}

async fn changed(watch: &mut Option<NetWatch>) -> String {
    match watch.as_mut() {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// How long the user has to answer a challenge before the session gives up.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(300);
/// Challenges answered per attempt (a server asking over and over is refused).
const MAX_CHALLENGES: u32 = 4;

enum Asked {
    Answer(Secret),
    Stopped,
    TimedOut,
    Unsupported(String),
}

/// Shows the challenge to the session's clients and waits for the answer.
async fn ask(
    challenge: &Challenge,
    updates: &mpsc::Sender<TunnelUpdate>,
    answers: &ChallengeAnswers,
    stop: &mut StopSignal,
) -> Asked {
    let (prompt, echo) = match challenge {
        Challenge::Static { text, echo } => (text.clone(), *echo),
        Challenge::Dynamic { text, echo, .. } => (text.clone(), *echo),
        other => {
            return Asked::Unsupported(format!(
                "the server asks for a challenge this helper cannot answer: {other:?}"
            ))
        }
    };
    let mut rx = answers.lock().await;
    // An answer left over from an earlier prompt is stale.
    while rx.try_recv().is_ok() {}
    let _ = updates
        .send(TunnelUpdate::Challenge(ChallengeRequest {
            prompt: ShortText::sanitized(&prompt),
            echo,
        }))
        .await;
    tokio::select! {
        a = rx.recv() => match a {
            Some(a) => Asked::Answer(a),
            None => Asked::Stopped,
        },
        _ = stop.wait_for(|s| s.is_some()) => Asked::Stopped,
        () = tokio::time::sleep(CHALLENGE_TIMEOUT) => Asked::TimedOut,
    }
}

fn response_for(challenge: &Challenge, answer: Secret) -> ChallengeResponse {
    match challenge {
        Challenge::Dynamic {
            state_id, username, ..
        } => ChallengeResponse::Dynamic {
            state_id: state_id.clone(),
            username: username.clone(),
            response: answer.expose().to_owned(),
        },
        _ => ChallengeResponse::Static {
            response: answer.expose().to_owned(),
        },
    }
}

fn log_level(l: Level) -> LogLevel {
    match l {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Debug,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
