//! The one launcher: starts every attempt of every session (the real tunnel, or the
//! stand-in of [`super::stub`]) and owns what outlives an attempt: where each session
//! journals its network changes, and the kill switch.
//!
//! Kill switch (the same for the service and `connect`, on every OS): on by default when
//! the profile or the server redirects all traffic; `on` guards split tunnels too, `off`
//! never. It stays on across reconnects (no gap), is removed when the session ends on
//! purpose (disconnect, auth failure, giving up, helper shutdown), and a crash leaves it
//! on until the next start decides. There is one per helper (nftables table
//! `inet oxivpn`, one WFP sublayer, one pf anchor): a second guarded session would block
//! the first one's server, so one session holds it at a time.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use ipc::{KillSwitchMode, SessionId};
use tokio_util::sync::CancellationToken;

use super::attempt::{self, AttemptInput};
use super::killswitch::{self, KillSwitch};
use super::stub::{self, StubMode};
use super::{AttemptSpec, Events, NetOptions, TunnelEnd, TunnelOutcome};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the supervisor needs from a launcher. [`Launcher`] is the only implementation
/// outside tests (which script attempt ends with it).
pub trait Attempts: Send + Sync + 'static {
    /// Whether attempts bring real tunnels up (`status` reports it).
    fn wired(&self) -> bool;
    /// One attempt; every change it made is undone when the future resolves.
    fn attempt(
        &self,
        spec: AttemptSpec,
        events: Events,
        stop: CancellationToken,
    ) -> BoxFuture<TunnelOutcome>;
    /// The session ended for good: release what outlives its attempts (the kill switch).
    fn session_ended(&self, session: SessionId) -> BoxFuture<()>;
    /// The session holding the helper's one kill switch, if any.
    fn kill_switch_owner(&self) -> Option<SessionId> {
        None
    }
    /// Where the machine's DHCP lease and resolvers are read (the leak check).
    fn discover_options(&self) -> netcfg::DiscoverOptions {
        netcfg::DiscoverOptions::default()
    }
}

/// Where sessions journal their network changes.
#[derive(Debug, Clone)]
pub enum Journals {
    /// `journal-<session>.json` in the helper's state dir (the service: sessions never
    /// share, and clobber, each other's record); the kill switch's journal is
    /// `killswitch.firewall.json` there.
    PerSession(PathBuf),
    /// One journal (`oxivpn-helper connect --journal`), the kill switch's next to it.
    Fixed(PathBuf),
}

impl Journals {
    fn network(&self, session: SessionId) -> PathBuf {
        match self {
            Self::PerSession(dir) => dir.join(format!("journal-{}.json", session.0)),
            Self::Fixed(p) => p.clone(),
        }
    }

    /// What [`killswitch::journal_for`] derives the firewall journal from.
    pub fn kill_switch_base(&self) -> PathBuf {
        match self {
            Self::PerSession(dir) => dir.join("killswitch"),
            Self::Fixed(p) => p.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Real,
    Stub(StubMode),
}

pub struct Launcher {
    backend: Backend,
    net: NetOptions,
    journals: Journals,
    /// The session holding the kill switch; the stand-in holds it without a firewall.
    kill_switch: Mutex<Option<(SessionId, Option<KillSwitch>)>>,
}

impl Launcher {
    /// Real tunnels; `net` holds the discovery and DNS options every attempt shares.
    pub fn real(net: NetOptions, journals: Journals) -> Self {
        Self {
            backend: Backend::Real,
            net,
            journals,
            kill_switch: Mutex::new(None),
        }
    }

    /// The stand-in (`--stub-tunnel`): nothing on the machine changes.
    pub fn stub(mode: StubMode, journals: Journals) -> Self {
        Self {
            backend: Backend::Stub(mode),
            net: NetOptions::default(),
            journals,
            kill_switch: Mutex::new(None),
        }
    }

    /// Hands a kill switch a crashed run left (still on) to `session`, which keeps it on
    /// until its first apply replaces the rules (`connect` after a crash).
    pub fn adopt_kill_switch(&self, session: SessionId, leftover: netcfg::Firewall) {
        let ks = KillSwitch::new(&self.journals.kill_switch_base(), false, Some(leftover));
        *self.kill_switch.lock().unwrap_or_else(|p| p.into_inner()) = Some((session, Some(ks)));
    }

    /// At service start, before anyone can connect: undoes what sessions of a previous
    /// run left (crash, kill -9), and removes a kill switch it left on. Its session died
    /// with the crashed process (credentials are never stored), so nothing would
    /// reconnect it; keeping it would cut the machine off until someone notices.
    pub fn recover_at_start(&self) {
        if let Journals::PerSession(dir) = &self.journals {
            recover_network(dir);
        }
        if self.backend != Backend::Real {
            return;
        }
        let opts = netcfg::FirewallOptions {
            journal_path: killswitch::journal_for(&self.journals.kill_switch_base()),
            ..netcfg::FirewallOptions::default()
        };
        match netcfg::Firewall::recover(&opts) {
            Ok(Some(mut fw)) => match fw.remove() {
                Ok(()) => tracing::warn!(
                    "removed the kill switch a previous helper run left on (its session died with it)"
                ),
                Err(e) => tracing::error!(error = %e, "kill switch left by a previous run"),
            },
            Ok(None) => {}
            // Fails only if the firewall cannot be reached: connecting would fail too.
            Err(e) => tracing::error!(error = %e, "kill switch recovery failed"),
        }
    }

    /// The session's kill switch (created at its first attempt), or why it cannot have one.
    fn kill_switch_for(&self, spec: &AttemptSpec) -> Result<Option<KillSwitch>, String> {
        let session = spec.session.id;
        let options = spec.session.options;
        let mut slot = self.kill_switch.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((owner, ks)) if *owner == session => return Ok(ks.clone()),
            Some((owner, _)) => {
                return Err(ipc::IpcError::KillSwitchHeld { session: *owner }.to_string())
            }
            None => {}
        }
        // Lockdown on: every session is guarded (nothing leaves outside a VPN).
        let lockdown = crate::service::lockdown::forces_kill_switch();
        let ks = match self.backend {
            _ if options.kill_switch == KillSwitchMode::Off && !lockdown => return Ok(None),
            Backend::Real => Some(KillSwitch::new(
                &self.journals.kill_switch_base(),
                options.allow_lan,
                None,
            )),
            // The stand-in changes nothing but keeps the rule of one holder, for the
            // sessions that would surely be guarded (it never hears a pushed redirect).
            Backend::Stub(_) => {
                let redirects = spec.session.profile.redirect_gateway.is_some();
                if options.kill_switch == KillSwitchMode::Default && !redirects {
                    return Ok(None);
                }
                None
            }
        };
        *slot = Some((session, ks.clone()));
        Ok(ks)
    }

    /// The session whose kill switch is on (or about to be), if any.
    pub fn kill_switch_owner(&self) -> Option<SessionId> {
        self.kill_switch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(s, _)| *s)
    }
}

impl Attempts for Launcher {
    fn wired(&self) -> bool {
        self.backend == Backend::Real
    }

    fn attempt(
        &self,
        spec: AttemptSpec,
        events: Events,
        stop: CancellationToken,
    ) -> BoxFuture<TunnelOutcome> {
        let held = self.kill_switch_for(&spec);
        if let (Backend::Stub(mode), Ok(_)) = (self.backend, &held) {
            return Box::pin(async move { stub::run(mode, &spec, events, stop).await });
        }
        let mut net = self.net.clone();
        net.session.journal_path = self.journals.network(spec.session.id);
        match held {
            Ok(ks) => {
                net.kill_switch = ks;
                net.kill_switch_always = spec.session.options.kill_switch == KillSwitchMode::On
                    || crate::service::lockdown::forces_kill_switch();
            }
            Err(e) => {
                let token = spec.auth_token.clone();
                return Box::pin(async move { TunnelOutcome::new(TunnelEnd::Fatal(e), token) });
            }
        }
        Box::pin(async move { attempt::run(AttemptInput { spec: &spec, net }, events, stop).await })
    }

    fn kill_switch_owner(&self) -> Option<SessionId> {
        Launcher::kill_switch_owner(self)
    }

    fn discover_options(&self) -> netcfg::DiscoverOptions {
        self.net.discover.clone()
    }

    fn session_ended(&self, session: SessionId) -> BoxFuture<()> {
        let taken = {
            let mut slot = self.kill_switch.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some((owner, _)) if *owner == session => slot.take().and_then(|(_, ks)| ks),
                _ => None,
            }
        };
        Box::pin(async move {
            if let Some(ks) = taken {
                match ks.remove().await {
                    Ok(()) => tracing::info!(session = %session, "kill switch removed"),
                    Err(e) => tracing::error!(session = %session, error = %e, "kill switch"),
                }
            }
        })
    }
}

/// Undoes what the journals `journal*.json` in `state_dir` record. With no journal, one
/// pass still sweeps routes carrying our protocol number.
fn recover_network(state_dir: &Path) {
    let journals: Vec<PathBuf> = std::fs::read_dir(state_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("journal") && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    let targets = if journals.is_empty() {
        vec![state_dir.join("journal.json")]
    } else {
        journals
    };
    for j in targets {
        match netcfg::recover(&j) {
            Ok(r) if r.undone + r.swept > 0 => tracing::warn!(
                journal = %j.display(),
                undone = r.undone,
                swept = r.swept,
                "repaired network changes left by a previous run"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(journal = %j.display(), error = %e, "network recovery incomplete")
            }
        }
    }
}
