//! The real tunnel behind the service's seam, with one undo journal per session so
//! that two sessions never share (and clobber) each other's record of changes.

use std::path::PathBuf;

use tokio::sync::mpsc;

use super::tunnel_port::{
    AttemptFuture, AttemptSpec, ChallengeAnswers, StopSignal, TunnelLauncher, TunnelUpdate,
};
use crate::tunnel::launcher::EngineLauncher;
use crate::tunnel::NetOptions;

pub struct PerSessionEngine {
    pub net: NetOptions,
    /// `journal-<session>.json` files go here; `recover_network` reads them at start.
    pub state_dir: PathBuf,
}

impl PerSessionEngine {
    pub fn journal_for(&self, spec: &AttemptSpec) -> PathBuf {
        self.state_dir
            .join(format!("journal-{}.json", spec.session.0))
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
        EngineLauncher { net }.run(spec, updates, stop, challenges)
    }
}
