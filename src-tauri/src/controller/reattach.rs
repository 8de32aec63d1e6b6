//! Finding the helper service again after the link to it was lost (a crash, a package
//! upgrade: systemd starts it again within seconds). A background task tries to reach
//! it with a bounded backoff; once it answers, the actor takes over what it runs and
//! connects again the profiles that were connecting or connected when it went, unless
//! the user cancelled them meanwhile. The window shows a banner while the app waits,
//! and its "Try again" does the same at once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::prompts::Purpose;
use super::{Actor, Msg, CLIENT_NAME};
use crate::error::{from_client_error, AppError, ErrorKind};
use crate::model::{
    AppEvent, ConnState, LogLevel, ProtectionView, ServiceView, StageKind, StageView,
};

/// The first try comes quickly: systemd restarts a crashed helper within about a second.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Doubling stops here, so a helper that never comes back costs one try per 5 s.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// A helper lost again this soon after it came back (crashing on every connect, say)
/// starts the next wait where the last one began times two, not from the start.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The background search for the helper while its link is down.
pub(super) struct Waiting {
    /// Tells this search's reports from those of an earlier one.
    epoch: u64,
    since: Instant,
    attempts: u32,
    /// Why the link went (shown in the banner).
    error: AppError,
    task: tokio::task::AbortHandle,
}

impl Drop for Waiting {
    // The search ends with the wait: when the helper is back, and when the app quits
    // (the actor, and with it this, is dropped).
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The actor's memory of the helper link's losses.
#[derive(Default)]
pub(super) struct Reattach {
    pub(super) waiting: Option<Waiting>,
    epoch: u64,
    /// The first delay of the latest wait.
    first: Duration,
    /// When the helper last came back.
    back_at: Option<Instant>,
}

impl Reattach {
    pub(super) fn view(&self) -> ServiceView {
        match &self.waiting {
            Some(w) => ServiceView {
                waiting: true,
                error: Some(w.error.clone()),
                attempts: w.attempts,
            },
            None => ServiceView::default(),
        }
    }

    /// The delay before the first try of a new wait.
    fn first_delay(&mut self) -> Duration {
        let recent = self.back_at.is_some_and(|t| t.elapsed() < STABLE_AFTER);
        self.first = if recent {
            self.first.saturating_mul(2).clamp(FIRST_DELAY, MAX_DELAY)
        } else {
            FIRST_DELAY
        };
        self.first
    }
}

/// Tries to reach the helper, waiting `first` and then twice as long each time (at most
/// [`MAX_DELAY`]), until it answers or the actor is gone.
async fn look_for_helper(me: mpsc::WeakSender<Msg>, socket: PathBuf, epoch: u64, first: Duration) {
    let mut delay = first;
    let mut attempt: u32 = 0;
    loop {
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
        // Bounded by the hello timeout; a missing socket fails at once.
        let res = ipc::Client::connect(&socket, CLIENT_NAME).await;
        let Some(tx) = me.upgrade() else { return };
        let msg = match res {
            Ok(client) => Msg::HelperBack(epoch, Box::new(client)),
            Err(e) => {
                tracing::debug!(attempt, error = %e, "the helper is not back yet");
                Msg::HelperAttempt(epoch, attempt)
            }
        };
        let back = matches!(msg, Msg::HelperBack(..));
        if tx.send(msg).await.is_err() || back {
            return;
        }
        delay = delay.saturating_mul(2).min(MAX_DELAY);
    }
}

impl Actor {
    /// The helper went away (its connection closed): what ran there waits for it to
    /// come back, and the search for it starts.
    pub(super) fn helper_closed(&mut self) {
        self.client = None;
        let err = from_client_error(ipc::ClientError::Closed, &self.socket_str());
        // A challenge belonged to a session of the gone helper.
        if matches!(
            self.prompt.as_ref().map(|p| &p.purpose),
            Some(Purpose::Challenge { .. })
        ) {
            self.set_prompt(None);
        }
        let mut waiting = Vec::new();
        let mut stopped = Vec::new();
        for l in &mut self.links {
            let Some(_) = l.session.take() else { continue };
            l.server = None;
            match l.state {
                ConnState::Connecting { .. } | ConnState::Connected { .. } => {
                    l.resume = true;
                    waiting.push((l.profile_id.clone(), l.profile_name.clone()));
                }
                // The user asked for it to stop, and with the helper it did.
                ConnState::Disconnecting { .. } => stopped.push(l.profile_id.clone()),
                _ => {}
            }
        }
        for id in stopped {
            self.set_state(&id, ConnState::Disconnected);
        }
        for (id, name) in &waiting {
            self.set_state(
                id,
                ConnState::Connecting {
                    profile_id: id.clone(),
                    profile_name: name.clone(),
                    stage: StageView::new(StageKind::WaitingForService, None),
                },
            );
            self.sink.notify(
                &format!("{name}: waiting for the OxiVPN service"),
                "The connection comes back by itself once the service runs again.",
            );
        }
        self.app_log(
            LogLevel::Error,
            format!(
                "{} ({}); waiting for it to come back.",
                err.message, err.details
            ),
        );
        self.start_waiting(err);
    }

    /// A connect the app makes by itself (connect at start, at login): the service may
    /// not be up yet (at login the desktop and the system services start in any order),
    /// so a helper that cannot be reached makes this connection wait for the service as
    /// a lost one would, instead of failing before the user has even looked.
    pub(super) async fn connect_or_wait(
        &mut self,
        id: &str,
        protection: ProtectionView,
    ) -> Result<(), AppError> {
        if self.client.is_none() && !self.is_active(id) {
            let reached = match self.reattach.waiting {
                Some(_) => self.reattach_now().await,
                None => self.ensure_client().await.map(|_| ()),
            };
            if let Err(e) = reached {
                if !matches!(e.kind, ErrorKind::HelperNotRunning | ErrorKind::HelperLost) {
                    return Err(e);
                }
                let profile = self.repo.load(id)?;
                let link = self.link_or_new(id, &profile.name);
                link.protection = Some(protection);
                link.resume = true;
                self.set_state(
                    id,
                    ConnState::Connecting {
                        profile_id: profile.id.clone(),
                        profile_name: profile.name.clone(),
                        stage: StageView::new(StageKind::WaitingForService, None),
                    },
                );
                self.app_log(
                    LogLevel::Info,
                    format!(
                        "\"{}\" connects once the OxiVPN service runs ({}).",
                        profile.name, e.details
                    ),
                );
                self.start_waiting(e);
                return Ok(());
            }
        }
        self.connect(id, protection).await
    }

    fn start_waiting(&mut self, error: AppError) {
        if self.reattach.waiting.is_some() {
            return;
        }
        let first = self.reattach.first_delay();
        self.reattach.epoch = self.reattach.epoch.wrapping_add(1);
        let epoch = self.reattach.epoch;
        let task = tokio::spawn(look_for_helper(
            self.me.clone(),
            self.socket.clone(),
            epoch,
            first,
        ))
        .abort_handle();
        self.reattach.waiting = Some(Waiting {
            epoch,
            since: Instant::now(),
            attempts: 0,
            error,
            task,
        });
        self.emit_service();
    }

    fn emit_service(&self) {
        self.sink.emit(AppEvent::Service(self.reattach.view()));
    }

    /// One more try that found no helper.
    pub(super) fn on_helper_attempt(&mut self, epoch: u64, attempts: u32) {
        if let Some(w) = self.reattach.waiting.as_mut().filter(|w| w.epoch == epoch) {
            w.attempts = attempts;
            self.emit_service();
        }
    }

    /// The background search reached the helper.
    pub(super) async fn on_helper_back(&mut self, epoch: u64, client: ipc::Client) {
        let Some(mut w) = self.reattach.waiting.take_if(|w| w.epoch == epoch) else {
            return;
        };
        w.attempts = w.attempts.saturating_add(1);
        // A request of the user's may have reached it first.
        if self.client.is_none() {
            if let Err(e) = self.adopt(client).await {
                drop(w);
                self.start_waiting(e);
                return;
            }
        }
        self.helper_back(w).await;
    }

    /// "Try again" while waiting: one try now (the background search goes on if the
    /// helper is still not there).
    pub(super) async fn reattach_now(&mut self) -> Result<(), AppError> {
        let Some(w) = self.reattach.waiting.take() else {
            return self.ensure_client().await.map(|_| ());
        };
        match self.ensure_client().await {
            Ok(_) => {
                self.helper_back(w).await;
                Ok(())
            }
            Err(e) => {
                self.reattach.waiting = Some(w);
                Err(e)
            }
        }
    }

    /// The helper answers again: take over what it runs, clear the error, and connect
    /// again what was connecting or connected when it went.
    async fn helper_back(&mut self, w: Waiting) {
        let after = w.since.elapsed();
        let attempts = w.attempts;
        drop(w);
        self.reattach.back_at = Some(Instant::now());
        tracing::info!(
            after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            attempts,
            "the helper service is back"
        );
        self.app_log(
            LogLevel::Info,
            format!(
                "The OxiVPN service is back after {:.1} s; resuming the connections it ran.",
                after.as_secs_f64()
            ),
        );
        self.emit_service();
        if let Err(e) = self.attach().await {
            self.warn_error(&e);
        }
        // Connects tried while it was away failed for that reason only.
        let stale: Vec<String> = self
            .links
            .iter()
            .filter(|l| {
                matches!(&l.state, ConnState::Failed { error, .. }
                    if matches!(error.kind, ErrorKind::HelperLost | ErrorKind::HelperNotRunning))
            })
            .map(|l| l.profile_id.clone())
            .collect();
        for id in stale {
            self.set_state(&id, ConnState::Disconnected);
        }
        let mut resume = Vec::new();
        for l in &mut self.links {
            let waits = matches!(&l.state, ConnState::Connecting { stage, .. }
                if stage.kind == StageKind::WaitingForService);
            if std::mem::take(&mut l.resume) && waits {
                resume.push(l.profile_id.clone());
            }
        }
        for id in resume {
            self.resume(&id).await;
        }
    }

    /// Connects `id` again as the user last asked (same protection, saved credentials
    /// or the usual prompt).
    async fn resume(&mut self, id: &str) {
        let profile = match self.repo.load(id) {
            Ok(p) => p,
            Err(e) => {
                self.fail(id, e);
                return;
            }
        };
        if let Some(p) = self.prompt.as_ref().filter(|p| p.prompt.profile_id != id) {
            // One dialog at a time: this one waits for the user like a connect would.
            let e = AppError::busy(&format!(
                "Answer the sign-in for \"{}\" first.",
                p.prompt.profile_name
            ));
            self.fail(id, e);
            return;
        }
        if let Some(l) = self.link_mut(id) {
            l.used_saved = false;
            l.proxy_typed = None;
            l.used_saved_proxy = false;
        }
        self.app_log(
            LogLevel::Info,
            format!(
                "Connecting \"{}\" again after the service came back.",
                profile.name
            ),
        );
        if let Err(e) = self.gather_and_start(profile, false).await {
            // `start` already shows a refused connect; this is what came before it.
            if self
                .link(id)
                .is_some_and(|l| !matches!(l.state, ConnState::Failed { .. }))
            {
                self.fail(id, e);
            }
        }
    }
}
