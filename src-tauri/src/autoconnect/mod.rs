//! Connecting by itself: profiles that connect when the app starts or at login, and the
//! trusted-networks rule (stay direct on trusted networks, connect the chosen profile
//! on any other). [`rules`] is the pure decision; [`nm`] reads the networks from
//! NetworkManager over D-Bus (Linux). Windows and macOS have no back end yet: their
//! network-change APIs (NLM / SystemConfiguration) are not wired, and the window says
//! the rule is unavailable there.

pub mod rules;

#[cfg(target_os = "linux")]
pub mod nm;

use std::sync::{Arc, Mutex};
#[cfg(target_os = "linux")]
use std::time::Duration;

use crate::controller::Controller;
use crate::model::{NetworkStatus, NetworkView, Settings};
use crate::settings::SettingsStore;
#[cfg(target_os = "linux")]
use rules::{decide, should_connect};
use rules::{Decision, NetKind, NetworkSeen, TrustRules};

/// The networks are read again at least this often (signals are the fast path).
#[cfg(target_os = "linux")]
const POLL: Duration = Duration::from_secs(5);

/// The profiles to connect now: those marked "when the app starts", and at a start
/// by the login (autostart) also those marked "at login".
pub fn start_profiles(settings: &Settings, at_login: bool, existing: &[String]) -> Vec<String> {
    settings
        .auto_connect
        .iter()
        .filter(|(id, a)| (a.on_start || (at_login && a.on_login)) && existing.contains(id))
        .map(|(id, _)| id.clone())
        .collect()
}

/// The rule as the settings hold it.
pub fn trust_rules(s: &Settings) -> TrustRules {
    TrustRules {
        trusted: s.trusted_networks.clone(),
        profile: s.untrusted_profile.clone(),
    }
}

/// What the window shows about the rule.
pub fn status_view(
    available: bool,
    networks: &[NetworkSeen],
    decision: Option<&Decision>,
    error: Option<String>,
) -> NetworkStatus {
    let (state, network, profile) = match decision {
        None => ("unavailable", None, None),
        Some(Decision::Off) => ("off", None, None),
        Some(Decision::NoNetwork) => ("noNetwork", None, None),
        Some(Decision::Direct { network }) => ("direct", Some(network.clone()), None),
        Some(Decision::Connect { profile, network }) => {
            ("connect", Some(network.clone()), Some(profile.clone()))
        }
        Some(Decision::MissingProfile { profile }) => {
            ("missingProfile", None, Some(profile.clone()))
        }
    };
    NetworkStatus {
        available,
        networks: networks
            .iter()
            .filter(|n| n.kind != NetKind::Virtual)
            .map(|n| NetworkView {
                name: n.name().to_string(),
                wifi: n.kind == NetKind::Wifi,
            })
            .collect(),
        state: state.to_string(),
        network,
        profile,
        error,
    }
}

/// Shared with the commands: the latest status for the window.
pub type SharedStatus = Arc<Mutex<NetworkStatus>>;

pub fn unavailable(error: &str) -> NetworkStatus {
    status_view(false, &[], None, Some(error.to_string()))
}

/// Watches the networks and applies the rule until the app ends.
#[cfg(target_os = "linux")]
pub async fn watch(controller: Controller, settings: Arc<SettingsStore>, status: SharedStatus) {
    match nm::NmMonitor::connect().await {
        Ok(m) => watch_on(m, controller, settings, status).await,
        Err(e) => {
            tracing::info!(error = %e, "no NetworkManager: trusted networks are off");
            if let Ok(mut s) = status.lock() {
                *s = unavailable(&e.to_string());
            }
        }
    }
}

/// [`watch`] with a monitor already connected (tests use a private bus).
#[cfg(target_os = "linux")]
pub async fn watch_on(
    mut monitor: nm::NmMonitor,
    controller: Controller,
    settings: Arc<SettingsStore>,
    status: SharedStatus,
) {
    let mut last: Option<Decision> = None;
    loop {
        match monitor.current().await {
            Ok(networks) => {
                let s = settings.get();
                let profiles: Vec<String> = match controller.snapshot().await {
                    Ok(snap) => snap.profiles.into_iter().map(|p| p.id).collect(),
                    Err(_) => return,
                };
                let d = decide(&trust_rules(&s), &networks, &profiles);
                if let Some(profile) = should_connect(last.as_ref(), &d) {
                    tracing::info!(%profile, "untrusted network: connecting");
                    let (protection, source) = s.protection_for(&profile);
                    if let Err(e) = controller
                        .connect_or_wait(profile, protection, source)
                        .await
                    {
                        tracing::warn!(error = %e.details, "automatic connect");
                    }
                }
                if let Ok(mut st) = status.lock() {
                    *st = status_view(true, &networks, Some(&d), None);
                }
                last = Some(d);
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading the networks");
                if let Ok(mut st) = status.lock() {
                    *st = status_view(true, &[], None, Some(e.to_string()));
                }
            }
        }
        tokio::select! {
            r = monitor.changed() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "network changes");
                    tokio::time::sleep(POLL).await;
                }
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// No back end on this system: the rule stays off and the window says so.
#[cfg(not(target_os = "linux"))]
pub async fn watch(_controller: Controller, _settings: Arc<SettingsStore>, status: SharedStatus) {
    if let Ok(mut s) = status.lock() {
        *s = unavailable("trusted networks need NetworkManager (Linux) in this version");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AutoConnect;

    #[test]
    fn start_and_login_profiles() {
        let mut s = Settings::default();
        s.auto_connect.insert(
            "Work".into(),
            AutoConnect {
                on_start: true,
                on_login: false,
            },
        );
        s.auto_connect.insert(
            "Home".into(),
            AutoConnect {
                on_start: false,
                on_login: true,
            },
        );
        s.auto_connect.insert(
            "Gone".into(),
            AutoConnect {
                on_start: true,
                on_login: true,
            },
        );
        let existing = vec!["Work".to_string(), "Home".to_string()];
        assert_eq!(start_profiles(&s, false, &existing), ["Work"]);
        assert_eq!(start_profiles(&s, true, &existing), ["Home", "Work"]);
    }
}
