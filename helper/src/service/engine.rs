//! The real tunnel behind the service's seam, with one undo journal per session so
//! that two sessions never share (and clobber) each other's record of changes, and the
//! kill switch kept per session across its attempts.
//!
//! Kill switch semantics (the same as `oxivpn-helper connect`): on by default when the
//! profile or the server redirects all traffic; `on` guards split tunnels too, `off`
//! never. It stays on across reconnects (no gap), is removed when the session ends on
//! purpose (disconnect, auth failure, giving up, helper shutdown), and a crash leaves it
//! on until the next start decides (see [`recover_kill_switch`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ipc::{KillSwitchMode, SessionId};
use tokio::sync::mpsc;

use super::tunnel_port::{
    AttemptEnd, AttemptFuture, AttemptSpec, ChallengeAnswers, StopSignal, TunnelLauncher,
    TunnelUpdate,
};
use crate::tunnel::killswitch::{self, KillSwitch};
use crate::tunnel::launcher::EngineLauncher;
use crate::tunnel::NetOptions;

/// The one kill switch of this helper (nftables table `inet oxivpn`): a second guarded
/// session would block the first one's server, so only one session holds it at a time.
pub struct PerSessionEngine {
    pub net: NetOptions,
    /// `journal-<session>.json` files go here; `recover_network` reads them at start.
    pub state_dir: PathBuf,
    kill_switch: Arc<Mutex<Option<(SessionId, KillSwitch)>>>,
}

/// What `killswitch::journal_for` derives the firewall journal from (`killswitch.firewall.json`).
pub fn kill_switch_base(state_dir: &Path) -> PathBuf {
    state_dir.join("killswitch")
}

/// At start, before serving: a kill switch left by a crashed run is removed. Its session
/// is gone with the crashed process (credentials are never stored), so nothing will
/// reconnect it; keeping it would cut the machine off until someone notices. Returns
/// whether one was found.
pub fn recover_kill_switch(state_dir: &Path) -> anyhow::Result<bool> {
    let opts = netcfg::FirewallOptions {
        journal_path: killswitch::journal_for(&kill_switch_base(state_dir)),
        ..netcfg::FirewallOptions::default()
    };
    match netcfg::Firewall::recover(&opts)? {
        Some(mut fw) => {
            fw.remove()?;
            tracing::warn!(
                "removed the kill switch a previous helper run left on (its session died with it)"
            );
            Ok(true)
        }
        None => Ok(false),
    }
}

impl PerSessionEngine {
    pub fn new(net: NetOptions, state_dir: PathBuf) -> Self {
        Self {
            net,
            state_dir,
            kill_switch: Arc::new(Mutex::new(None)),
        }
    }

    pub fn journal_for(&self, spec: &AttemptSpec) -> PathBuf {
        self.state_dir
            .join(format!("journal-{}.json", spec.session.0))
    }

    /// The session's kill switch (created at its first attempt), or why it cannot have one.
    fn kill_switch_for(&self, spec: &AttemptSpec) -> Result<Option<KillSwitch>, String> {
        let mode = spec.options.kill_switch;
        let mut slot = self.kill_switch.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((owner, ks)) if *owner == spec.session => return Ok(Some(ks.clone())),
            Some((owner, _)) => {
                return Err(format!(
                    "the kill switch of session {owner} is on and blocks every other server: disconnect {owner} first"
                ))
            }
            None => {}
        }
        if mode == KillSwitchMode::Off {
            return Ok(None);
        }
        let ks = KillSwitch::new(
            &kill_switch_base(&self.state_dir),
            spec.options.allow_lan,
            None,
        );
        *slot = Some((spec.session, ks.clone()));
        Ok(Some(ks))
    }
}

impl TunnelLauncher for PerSessionEngine {
    fn wired(&self) -> bool {
        true
    }

    fn run(
        &self,
        spec: AttemptSpec,
        updates: mpsc::Sender<TunnelUpdate>,
        stop: StopSignal,
        challenges: ChallengeAnswers,
    ) -> AttemptFuture {
        let mut net = self.net.clone();
        net.session.journal_path = self.journal_for(&spec);
        match self.kill_switch_for(&spec) {
            Ok(ks) => {
                net.kill_switch = ks;
                net.kill_switch_always = spec.options.kill_switch == KillSwitchMode::On;
            }
            Err(e) => return Box::pin(async move { AttemptEnd::Fatal(e) }),
        }
        EngineLauncher { net }.run(spec, updates, stop, challenges)
    }

    fn session_ended(&self, session: SessionId) -> AttemptFuture {
        let taken = {
            let mut slot = self.kill_switch.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some((owner, _)) if *owner == session => slot.take().map(|(_, ks)| ks),
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
            AttemptEnd::Stopped
        })
    }
}
