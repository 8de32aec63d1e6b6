//! The IPC service's seam ([`TunnelLauncher`]) implemented with the real tunnel.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ipc::{LogLevel, Secret, ShortText, Stage, Stats};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use super::{remote_text, run, NetOptions, TunnelEnd, TunnelEvent, TunnelSpec, TunnelStage};
use crate::service::tunnel_port::{
    AttemptEnd, AttemptFuture, AttemptSpec, ChallengeAnswers, StopSignal, TunnelLauncher,
    TunnelUpdate,
};

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
        _challenges: ChallengeAnswers,
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
            let ts = TunnelSpec {
                profile,
                credentials,
                auth_token: spec.auth_token.as_ref().map(|s| s.expose().to_owned()),
                remote_index: Some(spec.remote_index),
                net,
                gui_version: Some(format!("OxiVPN_{}", env!("CARGO_PKG_VERSION"))),
            };
            let token = CancellationToken::new();
            let watcher = {
                let token = token.clone();
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
            let (tx, mut rx) = mpsc::unbounded_channel();
            let fut = run(ts, tx, token);
            tokio::pin!(fut);
            let mut since_ms = 0u64;
            let outcome = loop {
                tokio::select! {
                    Some(ev) = rx.recv() => forward(ev, &updates, &mut since_ms).await,
                    out = &mut fut => break out,
                }
            };
            while let Ok(ev) = rx.try_recv() {
                forward(ev, &updates, &mut since_ms).await;
            }
            watcher.abort();
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
        TunnelEvent::Challenge(_) => TunnelUpdate::Log(
            LogLevel::Warn,
            "the server asks for a challenge response, which this helper cannot ask for yet".into(),
        ),
    };
    let _ = updates.send(u).await;
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
