//! The controller actor: the one place that holds the connection state. Commands, the
//! tray and the helper's events all become messages to it, handled one at a time.
//!
//! This file holds the handle, the messages and the dispatch; the work is split by
//! concern into [`profiles`] (import, rename, details), [`link`] (the helper connection
//! and one link per profile: connect, disconnect, take over), [`events`] (the helper's
//! stages and typed session details), [`prompts`] (credentials and challenges),
//! [`routes`] (route checks and the session's plan), [`log`] (the log and
//! statistics the window shows) and [`reattach`] (finding the helper again after its
//! link was lost, and resuming what ran). The helper runs several sessions; so does
//! the app.

mod events;
mod leak;
mod link;
mod lockdown;
mod log;
mod profiles;
mod prompts;
mod proxy;
mod reattach;
mod routes;
mod sign_in;

pub use events::apply_connection;
pub use routes::{parse_address, plan_entry};

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::model::{
    AppEvent, ConnState, CredentialsAnswer, CredentialsPrompt, ImportReport, LogEntry,
    ProfileDetails, ProfileSummary, Protection, ProtectionSource, ProtectionView, RouteCheckView,
    RoutesView, ServiceView, StatsSample,
};
use crate::profiles::{facts, ProfileRepo};
use crate::secrets::SecretStore;
use link::Link;
use prompts::Pending;

const CLIENT_NAME: &str = concat!("oxivpn-app ", env!("CARGO_PKG_VERSION"));
const LOG_KEEP: usize = 2000;
const STATS_KEEP: usize = 300;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the controller's news goes: the window, the tray, notifications.
pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: AppEvent);
    /// A desktop notification (the sink decides whether the user wants them).
    fn notify(&self, title: &str, body: &str);
    /// Opens a sign-in link (already checked: http or https) in the user's browser.
    fn open_browser(&self, url: &ipc::SignInUrl) -> Result<(), String>;
    /// The server waits for a browser sign-in: tell the user when the window is hidden
    /// (a reconnect after the token expired happens while nobody looks).
    fn sign_in_needed(&self, profile_name: &str, host: &str);
}

type Reply<T> = oneshot::Sender<Result<T, AppError>>;

enum Msg {
    Snapshot(oneshot::Sender<ControllerSnapshot>),
    Import(PathBuf, Vec<profile_store::Supplied>, Reply<ImportReport>),
    ImportBytes(String, Vec<u8>, Reply<ImportReport>),
    Rename(String, String, Reply<ProfileSummary>),
    Duplicate(String, Reply<ProfileSummary>),
    Delete(String, Reply<()>),
    Details(String, Reply<ProfileDetails>),
    /// `wait`: a connect of the app's own (at start, at login) waits for a missing
    /// service instead of failing (see `reattach`).
    Connect(String, Protection, ProtectionSource, bool, Reply<()>),
    Disconnect(Option<String>, Reply<()>),
    Submit(CredentialsAnswer, Reply<()>),
    CancelPrompt(Reply<()>),
    OpenSignIn(String, Reply<()>),
    Forget(String, Reply<()>),
    Routes(Reply<RoutesView>),
    RouteCheck(String, Reply<RouteCheckView>),
    LeakCheck(Option<String>, Reply<crate::leak::LeakReportView>),
    Lockdown(
        Option<ipc::LockdownChange>,
        Reply<crate::lockdown::LockdownView>,
    ),
    Attach(Reply<()>),
    Helper(u64, ipc::Event),
    HelperClosed(u64),
    /// "Try again" while the helper is away.
    Reattach(Reply<()>),
    /// The background search (see [`reattach`]) tried once more and found no helper.
    HelperAttempt(u64, u32),
    /// The background search reached the helper.
    HelperBack(u64, Box<ipc::Client>),
}

/// What the window gets when it opens (settings and reports are added by the caller).
#[derive(Debug, Clone)]
pub struct ControllerSnapshot {
    pub profiles: Vec<ProfileSummary>,
    pub state: ConnState,
    pub connections: Vec<ConnState>,
    pub prompt: Option<CredentialsPrompt>,
    pub log: Vec<LogEntry>,
    pub stats: Vec<StatsSample>,
    pub socket: String,
    pub service: ServiceView,
}

/// Cheap to clone; every method is one round trip to the actor.
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::Sender<Msg>,
    /// The keyring the actor uses; also for an Access Server password the user asked
    /// to remember (see `download`).
    secrets: Arc<dyn SecretStore>,
}

impl Controller {
    /// Starts the actor on the current tokio runtime.
    pub fn spawn(
        socket: PathBuf,
        repo: Box<dyn ProfileRepo>,
        secrets: Arc<dyn SecretStore>,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(256);
        let actor = Actor {
            me: tx.downgrade(),
            socket,
            repo,
            secrets: secrets.clone(),
            sink,
            client: None,
            generation: 0,
            links: Vec::new(),
            prompt: None,
            next_prompt: 0,
            reattach: reattach::Reattach::default(),
            log: VecDeque::new(),
            stats: VecDeque::new(),
        };
        tokio::spawn(actor.run(rx));
        Self { tx, secrets }
    }

    /// The keyring (the same one the profiles' passwords are in).
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        self.secrets.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T, AppError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| AppError::internal("controller stopped"))?;
        rx.await
            .map_err(|_| AppError::internal("controller dropped the request"))?
    }

    pub async fn snapshot(&self) -> Result<ControllerSnapshot, AppError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Snapshot(tx))
            .await
            .map_err(|_| AppError::internal("controller stopped"))?;
        rx.await
            .map_err(|_| AppError::internal("controller stopped"))
    }
    /// Imports a profile file; `supplied`: files the user picked for names the
    /// profile writes (after a [`crate::error::ErrorKind::MissingFiles`] answer).
    pub async fn import(
        &self,
        path: PathBuf,
        supplied: Vec<profile_store::Supplied>,
    ) -> Result<ImportReport, AppError> {
        self.ask(|r| Msg::Import(path, supplied, r)).await
    }
    /// Imports downloaded profile text (see [`crate::download`]).
    pub async fn import_bytes(
        &self,
        file_name: String,
        bytes: Vec<u8>,
    ) -> Result<ImportReport, AppError> {
        self.ask(|r| Msg::ImportBytes(file_name, bytes, r)).await
    }
    pub async fn rename(&self, id: String, name: String) -> Result<ProfileSummary, AppError> {
        self.ask(|r| Msg::Rename(id, name, r)).await
    }
    pub async fn duplicate(&self, id: String) -> Result<ProfileSummary, AppError> {
        self.ask(|r| Msg::Duplicate(id, r)).await
    }
    pub async fn delete(&self, id: String) -> Result<(), AppError> {
        self.ask(|r| Msg::Delete(id, r)).await
    }
    pub async fn details(&self, id: String) -> Result<ProfileDetails, AppError> {
        self.ask(|r| Msg::Details(id, r)).await
    }
    /// Connects with the default protection (automatic kill switch, no LAN access).
    pub async fn connect(&self, id: String) -> Result<(), AppError> {
        self.connect_with(id, Protection::default(), ProtectionSource::Global)
            .await
    }
    /// Connects with the protection the settings chose for this profile.
    pub async fn connect_with(
        &self,
        id: String,
        protection: Protection,
        source: ProtectionSource,
    ) -> Result<(), AppError> {
        self.ask(|r| Msg::Connect(id, protection, source, false, r))
            .await
    }
    /// Connects at start or at login: if the helper service is not there yet, the
    /// connection waits for it (see `reattach`) instead of failing.
    pub async fn connect_or_wait(
        &self,
        id: String,
        protection: Protection,
        source: ProtectionSource,
    ) -> Result<(), AppError> {
        self.ask(|r| Msg::Connect(id, protection, source, true, r))
            .await
    }
    /// Disconnects every connection.
    pub async fn disconnect(&self) -> Result<(), AppError> {
        self.ask(|r| Msg::Disconnect(None, r)).await
    }
    /// Disconnects one profile's connection.
    pub async fn disconnect_profile(&self, id: String) -> Result<(), AppError> {
        self.ask(|r| Msg::Disconnect(Some(id), r)).await
    }
    pub async fn submit_credentials(&self, answer: CredentialsAnswer) -> Result<(), AppError> {
        self.ask(|r| Msg::Submit(answer, r)).await
    }
    pub async fn cancel_prompt(&self) -> Result<(), AppError> {
        self.ask(Msg::CancelPrompt).await
    }
    /// Opens the sign-in link of this profile's connection in the browser again.
    pub async fn open_sign_in(&self, id: String) -> Result<(), AppError> {
        self.ask(|r| Msg::OpenSignIn(id, r)).await
    }
    pub async fn forget_credentials(&self, id: String) -> Result<(), AppError> {
        self.ask(|r| Msg::Forget(id, r)).await
    }
    pub async fn routes(&self) -> Result<RoutesView, AppError> {
        self.ask(Msg::Routes).await
    }
    pub async fn route_check(&self, address: String) -> Result<RouteCheckView, AppError> {
        self.ask(|r| Msg::RouteCheck(address, r)).await
    }
    /// "Check for leaks" for the session of `profile_id` (default: the connected one).
    pub async fn leak_check(
        &self,
        profile_id: Option<String>,
    ) -> Result<crate::leak::LeakReportView, AppError> {
        self.ask(|r| Msg::LeakCheck(profile_id, r)).await
    }
    /// The helper's lockdown ("block all traffic while disconnected"); `change` sets it.
    pub async fn lockdown(
        &self,
        change: Option<ipc::LockdownChange>,
    ) -> Result<crate::lockdown::LockdownView, AppError> {
        self.ask(|r| Msg::Lockdown(change, r)).await
    }
    /// Reaches the helper and takes over a tunnel of ours that is still up (the app
    /// was restarted while connected). Called once at start.
    pub async fn attach(&self) -> Result<(), AppError> {
        self.ask(Msg::Attach).await
    }
    /// Reaches the helper now, after it was lost (the window's "Try again"): takes over
    /// what it runs and connects again what was interrupted. The app also does this by
    /// itself in the background.
    pub async fn reattach(&self) -> Result<(), AppError> {
        self.ask(Msg::Reattach).await
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

struct Actor {
    me: mpsc::WeakSender<Msg>,
    socket: PathBuf,
    repo: Box<dyn ProfileRepo>,
    secrets: Arc<dyn SecretStore>,
    sink: Arc<dyn EventSink>,
    client: Option<ipc::Client>,
    /// Tells events of the current helper connection from those of an earlier one.
    generation: u64,
    /// One per profile that is connecting, connected, disconnecting or failed.
    links: Vec<Link>,
    /// The one open credentials or challenge dialog.
    prompt: Option<Pending>,
    next_prompt: u32,
    /// The search for the helper after its link was lost.
    reattach: reattach::Reattach,
    log: VecDeque<LogEntry>,
    stats: VecDeque<StatsSample>,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(msg) = rx.recv().await {
            self.handle(msg).await;
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Snapshot(r) => {
                let _ = r.send(self.snapshot());
            }
            Msg::Import(path, supplied, r) => {
                let res = self.import(&path, &supplied);
                let _ = r.send(res);
            }
            Msg::ImportBytes(name, bytes, r) => {
                let res = self.import_bytes(&name, &bytes);
                let _ = r.send(res);
            }
            Msg::Rename(id, name, r) => {
                let res = self.rename(&id, &name);
                self.after_profiles_changed(res.is_ok());
                let _ = r.send(res);
            }
            Msg::Duplicate(id, r) => {
                let res = self.repo.duplicate(&id).map(|p| facts(&p).summary);
                self.after_profiles_changed(res.is_ok());
                let _ = r.send(res);
            }
            Msg::Delete(id, r) => {
                let res = self.delete(&id);
                self.after_profiles_changed(res.is_ok());
                let _ = r.send(res);
            }
            Msg::Details(id, r) => {
                let res = self.details(&id);
                let _ = r.send(res);
            }
            Msg::Connect(id, protection, source, wait, r) => {
                let protection = ProtectionView {
                    requested: protection,
                    source,
                    kill_switch_active: None,
                };
                let res = if wait {
                    self.connect_or_wait(&id, protection).await
                } else {
                    self.connect(&id, protection).await
                };
                let _ = r.send(res);
            }
            Msg::Disconnect(which, r) => {
                let res = self.disconnect(which.as_deref()).await;
                let _ = r.send(res);
            }
            Msg::Submit(answer, r) => {
                let res = self.submit(answer).await;
                let _ = r.send(res);
            }
            Msg::CancelPrompt(r) => {
                let res = self.cancel_prompt().await;
                let _ = r.send(res);
            }
            Msg::OpenSignIn(id, r) => {
                let res = self.open_sign_in(&id);
                let _ = r.send(res);
            }
            Msg::Forget(id, r) => {
                let res = self
                    .secrets
                    .forget(&id)
                    .and_then(|()| self.secrets.forget_proxy(&id));
                let _ = r.send(res);
            }
            Msg::Routes(r) => {
                let res = self.routes().await;
                let _ = r.send(res);
            }
            Msg::RouteCheck(addr, r) => {
                let res = self.route_check_text(&addr).await;
                let _ = r.send(res);
            }
            Msg::LeakCheck(id, r) => {
                let res = self.leak_check(id).await;
                let _ = r.send(res);
            }
            Msg::Lockdown(change, r) => {
                let res = self.lockdown(change).await;
                let _ = r.send(res);
            }
            Msg::Attach(r) => {
                let res = self.attach().await;
                let _ = r.send(res);
            }
            Msg::Helper(generation, ev) if generation == self.generation => {
                let connected = match &ev.body {
                    ipc::EventBody::Stage(ipc::Stage::Connected { .. }) => Some(ev.session),
                    _ => None,
                };
                self.on_event(ev);
                if let Some(session) = connected {
                    self.learn_connection(session).await;
                }
            }
            Msg::Helper(..) => {}
            Msg::HelperClosed(generation) if generation == self.generation => {
                self.helper_closed();
            }
            Msg::HelperClosed(_) => {}
            Msg::Reattach(r) => {
                let res = self.reattach_now().await;
                let _ = r.send(res);
            }
            Msg::HelperAttempt(epoch, attempts) => self.on_helper_attempt(epoch, attempts),
            Msg::HelperBack(epoch, client) => self.on_helper_back(epoch, *client).await,
        }
    }

    fn socket_str(&self) -> String {
        self.socket.display().to_string()
    }
}
