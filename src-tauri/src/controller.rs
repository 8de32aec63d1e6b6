//! The controller actor: the one place that holds the connection state. Commands, the
//! tray and the helper's events all become messages to it, handled one at a time.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::error::{from_client_error, AppError, ErrorKind};
use crate::model::{
    AppEvent, ChallengeView, ConnState, CredentialsAnswer, CredentialsPrompt, ImportReport,
    LogEntry, LogLevel, ProfileDetails, ProfileSummary, PromptKind, RouteCheckView, RoutePlanEntry,
    RouteSide, RoutesView, SessionView, StageKind, StageView, StatsSample,
};
use crate::profiles::{facts, AuthNeeds, ProfileRepo, StoredProfile};
use crate::secrets::{SavedCredentials, SecretStore};

const CLIENT_NAME: &str = concat!("oxivpn-app ", env!("CARGO_PKG_VERSION"));
const LOG_KEEP: usize = 2000;
const STATS_KEEP: usize = 300;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the controller's news goes: the window, the tray, notifications.
pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: AppEvent);
    /// A desktop notification (the sink decides whether the user wants them).
    fn notify(&self, title: &str, body: &str);
}

type Reply<T> = oneshot::Sender<Result<T, AppError>>;

enum Msg {
    Snapshot(oneshot::Sender<ControllerSnapshot>),
    Import(PathBuf, Reply<ImportReport>),
    Rename(String, String, Reply<ProfileSummary>),
    Duplicate(String, Reply<ProfileSummary>),
    Delete(String, Reply<()>),
    Details(String, Reply<ProfileDetails>),
    Connect(String, Reply<()>),
    Disconnect(Reply<()>),
    Submit(CredentialsAnswer, Reply<()>),
    CancelPrompt(Reply<()>),
    Forget(String, Reply<()>),
    Routes(Reply<RoutesView>),
    RouteCheck(String, Reply<RouteCheckView>),
    Attach(Reply<()>),
    Helper(u64, ipc::Event),
    HelperClosed(u64),
}

/// What the window gets when it opens (settings and reports are added by the caller).
#[derive(Debug, Clone)]
pub struct ControllerSnapshot {
    pub profiles: Vec<ProfileSummary>,
    pub state: ConnState,
    pub prompt: Option<CredentialsPrompt>,
    pub log: Vec<LogEntry>,
    pub stats: Vec<StatsSample>,
    pub socket: String,
}

/// Cheap to clone; every method is one round trip to the actor.
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::Sender<Msg>,
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
            secrets,
            sink,
            client: None,
            generation: 0,
            state: ConnState::Disconnected,
            session: None,
            prompt: None,
            next_prompt: 0,
            log: VecDeque::new(),
            stats: VecDeque::new(),
            used_saved: false,
            server: None,
            pending_cipher: None,
            typed: None,
        };
        tokio::spawn(actor.run(rx));
        Self { tx }
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
    pub async fn import(&self, path: PathBuf) -> Result<ImportReport, AppError> {
        self.ask(|r| Msg::Import(path, r)).await
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
    pub async fn connect(&self, id: String) -> Result<(), AppError> {
        self.ask(|r| Msg::Connect(id, r)).await
    }
    pub async fn disconnect(&self) -> Result<(), AppError> {
        self.ask(Msg::Disconnect).await
    }
    pub async fn submit_credentials(&self, answer: CredentialsAnswer) -> Result<(), AppError> {
        self.ask(|r| Msg::Submit(answer, r)).await
    }
    pub async fn cancel_prompt(&self) -> Result<(), AppError> {
        self.ask(Msg::CancelPrompt).await
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
    /// Reaches the helper and takes over a tunnel of ours that is still up (the app
    /// was restarted while connected). Called once at start.
    pub async fn attach(&self) -> Result<(), AppError> {
        self.ask(Msg::Attach).await
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the open prompt is for.
#[derive(Debug)]
enum Purpose {
    Connect {
        profile: StoredProfile,
        needs: AuthNeeds,
    },
    Challenge {
        session: ipc::SessionId,
    },
}

#[derive(Debug)]
struct Pending {
    prompt: CredentialsPrompt,
    purpose: Purpose,
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
    state: ConnState,
    session: Option<ipc::SessionId>,
    prompt: Option<Pending>,
    next_prompt: u32,
    log: VecDeque<LogEntry>,
    stats: VecDeque<StatsSample>,
    /// The running attempt used credentials from the keyring.
    used_saved: bool,
    /// "udp 198.18.0.1:1194" of the running attempt.
    server: Option<String>,
    /// Cipher seen in the log before the tunnel was up.
    pending_cipher: Option<String>,
    /// What the user typed for the running attempt, and whether to remember it: saved
    /// only once the server accepted it, and offered again when it did not.
    typed: Option<Typed>,
}

struct Typed {
    profile_id: String,
    creds: SavedCredentials,
    remember: bool,
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
            Msg::Import(path, r) => {
                let res = self.import(&path);
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
            Msg::Connect(id, r) => {
                let res = self.connect(&id).await;
                let _ = r.send(res);
            }
            Msg::Disconnect(r) => {
                let res = self.disconnect().await;
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
            Msg::Forget(id, r) => {
                let res = self.secrets.forget(&id);
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
            Msg::Attach(r) => {
                let res = self.attach().await;
                let _ = r.send(res);
            }
            Msg::Helper(generation, ev) if generation == self.generation => {
                let connected =
                    matches!(ev.body, ipc::EventBody::Stage(ipc::Stage::Connected { .. }));
                self.on_event(ev);
                if connected {
                    self.learn_connection().await;
                }
            }
            Msg::Helper(..) => {}
            Msg::HelperClosed(generation) if generation == self.generation => {
                self.client = None;
                if self.state.is_active() {
                    let err = from_client_error(ipc::ClientError::Closed, &self.socket_str());
                    self.fail(err);
                }
                self.session = None;
            }
            Msg::HelperClosed(_) => {}
        }
    }

    fn socket_str(&self) -> String {
        self.socket.display().to_string()
    }

    fn snapshot(&self) -> ControllerSnapshot {
        ControllerSnapshot {
            profiles: self.summaries(),
            state: self.state.clone(),
            prompt: self.prompt.as_ref().map(|p| p.prompt.clone()),
            log: self.log.iter().cloned().collect(),
            stats: self.stats.iter().copied().collect(),
            socket: self.socket_str(),
        }
    }

    fn summaries(&self) -> Vec<ProfileSummary> {
        match self.repo.list() {
            Ok(list) => {
                let mut v: Vec<ProfileSummary> = list.iter().map(|p| facts(p).summary).collect();
                v.sort_by_key(|s| s.name.to_lowercase());
                v
            }
            Err(e) => {
                tracing::warn!(error = %e.details, "listing profiles failed");
                Vec::new()
            }
        }
    }

    fn after_profiles_changed(&mut self, changed: bool) {
        if changed {
            self.sink.emit(AppEvent::Profiles(self.summaries()));
        }
    }

    fn import(&mut self, path: &Path) -> Result<ImportReport, AppError> {
        let imported = self.repo.import_file(path)?;
        let (stored, report) = (imported.stored, imported.report);
        if let (Some(p), Some(c)) = (&stored, &imported.credentials) {
            if let Err(e) = self.secrets.save(&p.id, c) {
                self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details));
            }
        }
        match &stored {
            Some(p) => self.app_log(LogLevel::Info, format!("Imported profile \"{}\".", p.name)),
            None => self.app_log(
                LogLevel::Warn,
                format!(
                    "Could not import {}: {}",
                    report.file_name,
                    report.reason.clone().unwrap_or_default()
                ),
            ),
        }
        self.after_profiles_changed(stored.is_some());
        self.sink.emit(AppEvent::Imported(report.clone()));
        Ok(report)
    }

    fn rename(&mut self, id: &str, name: &str) -> Result<ProfileSummary, AppError> {
        if self.state.is_active() && self.state.profile_id() == Some(id) {
            return Err(AppError::busy("Disconnect before renaming this profile."));
        }
        let p = self.repo.rename(id, name)?;
        if p.id != id {
            // Saved credentials follow the profile.
            if let Ok(Some(saved)) = self.secrets.load(id) {
                let moved = self
                    .secrets
                    .save(&p.id, &saved)
                    .and_then(|()| self.secrets.forget(id));
                if let Err(e) = moved {
                    self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details));
                }
            }
        }
        Ok(facts(&p).summary)
    }

    fn delete(&mut self, id: &str) -> Result<(), AppError> {
        if self.state.is_active() && self.state.profile_id() == Some(id) {
            return Err(AppError::busy("Disconnect before deleting this profile."));
        }
        self.repo.delete(id)?;
        if let Err(e) = self.secrets.forget(id) {
            self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details));
        }
        Ok(())
    }

    fn details(&self, id: &str) -> Result<ProfileDetails, AppError> {
        let p = self.repo.load(id)?;
        let mut d = facts(&p).details;
        d.saved_credentials = matches!(self.secrets.load(id), Ok(Some(_)));
        Ok(d)
    }

    fn app_log(&mut self, level: LogLevel, message: String) {
        self.push_log(LogEntry {
            at_ms: now_ms(),
            level,
            source: "app".into(),
            message,
        });
    }

    fn push_log(&mut self, entry: LogEntry) {
        if self.log.len() >= LOG_KEEP {
            self.log.pop_front();
        }
        self.log.push_back(entry.clone());
        self.sink.emit(AppEvent::Log(entry));
    }

    fn set_state(&mut self, state: ConnState) {
        if self.state != state {
            self.state = state.clone();
            self.sink.emit(AppEvent::State(state));
        }
    }

    fn set_prompt(&mut self, pending: Option<Pending>) {
        let view = pending.as_ref().map(|p| p.prompt.clone());
        self.prompt = pending;
        self.sink.emit(AppEvent::Prompt(view));
    }

    fn fail(&mut self, error: AppError) {
        let (profile_id, profile_name) = match &self.state {
            ConnState::Connecting {
                profile_id,
                profile_name,
                ..
            }
            | ConnState::Disconnecting {
                profile_id,
                profile_name,
            } => (Some(profile_id.clone()), Some(profile_name.clone())),
            ConnState::Connected { session } => (
                Some(session.profile_id.clone()),
                Some(session.profile_name.clone()),
            ),
            ConnState::Failed {
                profile_id,
                profile_name,
                ..
            } => (profile_id.clone(), profile_name.clone()),
            ConnState::Disconnected => (None, None),
        };
        self.app_log(
            LogLevel::Error,
            format!("{} ({})", error.message, error.details),
        );
        let title = match &profile_name {
            Some(n) => format!("{n}: connection failed"),
            None => "OxiVPN".to_string(),
        };
        self.sink.notify(&title, &error.message);
        self.set_state(ConnState::Failed {
            profile_id,
            profile_name,
            error,
        });
    }

    async fn ensure_client(&mut self) -> Result<&ipc::Client, AppError> {
        if self.client.is_none() {
            let socket = self.socket_str();
            let mut c = ipc::Client::connect(&self.socket, CLIENT_NAME)
                .await
                .map_err(|e| from_client_error(e, &socket))?;
            c.set_request_timeout(REQUEST_TIMEOUT);
            self.generation += 1;
            let generation = self.generation;
            if let Some(mut events) = c.take_events() {
                let me = self.me.clone();
                tokio::spawn(async move {
                    while let Some(ev) = events.recv().await {
                        let Some(tx) = me.upgrade() else { return };
                        if tx.send(Msg::Helper(generation, ev)).await.is_err() {
                            return;
                        }
                    }
                    if let Some(tx) = me.upgrade() {
                        let _ = tx.send(Msg::HelperClosed(generation)).await;
                    }
                });
            }
            c.subscribe(ipc::Subscription::all())
                .await
                .map_err(|e| from_client_error(e, &socket))?;
            self.client = Some(c);
        }
        self.client
            .as_ref()
            .ok_or_else(|| AppError::internal("helper client vanished"))
    }

    async fn attach(&mut self) -> Result<(), AppError> {
        if self.state.is_active() {
            return Ok(());
        }
        let socket = self.socket_str();
        let sessions = match self.ensure_client().await?.list_sessions().await {
            Ok(s) => s,
            // An older helper without the listing: nothing to take over.
            Err(ipc::ClientError::Helper(_)) => return Ok(()),
            Err(e) => return Err(from_client_error(e, &socket)),
        };
        let profiles = self.repo.list()?;
        let found = sessions.into_iter().find_map(|s| {
            if matches!(s.stage, ipc::Stage::Disconnected { .. }) {
                return None;
            }
            let name = s.profile_name.as_ref()?.as_str().to_string();
            let p = profiles.iter().find(|p| helper_name(&p.name) == name)?;
            Some((p.clone(), s))
        });
        let Some((profile, info)) = found else {
            return Ok(());
        };
        self.app_log(
            LogLevel::Info,
            format!("Took over the running connection of \"{}\".", profile.name),
        );
        self.session = Some(info.id);
        self.set_state(ConnState::Connecting {
            profile_id: profile.id,
            profile_name: profile.name,
            stage: StageView::new(StageKind::Starting, None),
        });
        if info.stats.since_unix_ms > 0 {
            self.on_event(ipc::Event {
                session: info.id,
                unix_ms: now_ms(),
                body: ipc::EventBody::Stats(info.stats),
            });
        }
        self.on_stage(info.stage, info.started_unix_ms);
        Ok(())
    }

    async fn connect(&mut self, id: &str) -> Result<(), AppError> {
        if self.state.is_active() {
            if self.state.profile_id() == Some(id) {
                return Ok(());
            }
            self.disconnect().await?;
        }
        let profile = self.repo.load(id)?;
        let needs = facts(&profile).needs;
        self.used_saved = false;
        // Reach the helper first: asking for a password it cannot use would be rude.
        if let Err(e) = self.ensure_client().await {
            self.set_state(ConnState::Failed {
                profile_id: Some(profile.id.clone()),
                profile_name: Some(profile.name.clone()),
                error: e.clone(),
            });
            self.app_log(LogLevel::Error, format!("{} ({})", e.message, e.details));
            return Err(e);
        }
        let mut creds = ipc::Credentials::default();
        if needs.user_pass && needs.static_challenge.is_none() && !needs.key_passphrase {
            match self.secrets.load(id) {
                Ok(Some(saved)) => {
                    creds.username = Some(to_field(&saved.username, "user name")?);
                    creds.password = Some(to_secret(&saved.password, "password")?);
                    self.used_saved = true;
                }
                Ok(None) => {}
                Err(e) => self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details)),
            }
        }
        if needs.any() && !self.used_saved {
            self.ask_credentials(profile, needs, None);
            return Ok(());
        }
        self.start(profile, creds).await
    }

    fn ask_credentials(&mut self, profile: StoredProfile, needs: AuthNeeds, error: Option<String>) {
        // What the user just typed beats what the keyring holds.
        let typed = self
            .typed
            .take()
            .filter(|t| t.profile_id == profile.id)
            .map(|t| t.creds.username);
        let username = typed.or_else(|| {
            self.secrets
                .load(&profile.id)
                .ok()
                .flatten()
                .map(|s| s.username)
        });
        let kind = if needs.user_pass {
            PromptKind::Password {
                username,
                challenge: needs.static_challenge.clone(),
                key_passphrase: needs.key_passphrase,
            }
        } else {
            PromptKind::KeyPassphrase
        };
        self.next_prompt += 1;
        let prompt = CredentialsPrompt {
            id: self.next_prompt,
            profile_id: profile.id.clone(),
            profile_name: profile.name.clone(),
            kind,
            error,
        };
        self.set_state(ConnState::Connecting {
            profile_id: profile.id.clone(),
            profile_name: profile.name.clone(),
            stage: StageView::new(StageKind::Credentials, None),
        });
        self.set_prompt(Some(Pending {
            prompt,
            purpose: Purpose::Connect { profile, needs },
        }));
    }

    async fn start(
        &mut self,
        profile: StoredProfile,
        creds: ipc::Credentials,
    ) -> Result<(), AppError> {
        let name = ipc::ProfileName::try_from(helper_name(&profile.name))
            .map_err(|e| AppError::invalid(format!("The profile name cannot be used: {e}.")))?;
        let text = ipc::ProfileText::try_from(profile.text.as_str()).map_err(|e| {
            AppError::new(
                ErrorKind::ProfileRejected,
                "This profile cannot be sent to the helper.",
                format!("profile text {e}"),
            )
        })?;
        self.set_state(ConnState::Connecting {
            profile_id: profile.id.clone(),
            profile_name: profile.name.clone(),
            stage: StageView::new(StageKind::Starting, None),
        });
        self.stats.clear();
        self.app_log(
            LogLevel::Info,
            format!("Connecting with \"{}\".", profile.name),
        );
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        let res = client
            .connect_profile(ipc::ConnectRequest {
                profile_name: name,
                profile_text: text,
                credentials: creds,
                options: ipc::ConnectOptions::default(),
            })
            .await;
        match res {
            Ok(info) => {
                self.session = Some(info.id);
                Ok(())
            }
            Err(e) => {
                let err = from_client_error(e, &socket);
                self.fail(err.clone());
                Err(err)
            }
        }
    }

    async fn disconnect(&mut self) -> Result<(), AppError> {
        if self.prompt.is_some() {
            self.set_prompt(None);
        }
        let Some(session) = self.session else {
            // Nothing runs at the helper (waiting for credentials, or failed).
            self.set_state(ConnState::Disconnected);
            return Ok(());
        };
        let (profile_id, profile_name) = self.current_profile();
        self.set_state(ConnState::Disconnecting {
            profile_id,
            profile_name,
        });
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        match client.disconnect(session).await {
            Ok(()) => Ok(()),
            Err(ipc::ClientError::Helper(ipc::IpcError::NoSuchSession { .. })) => {
                self.session = None;
                self.set_state(ConnState::Disconnected);
                Ok(())
            }
            Err(e) => Err(from_client_error(e, &socket)),
        }
    }

    fn current_profile(&self) -> (String, String) {
        match &self.state {
            ConnState::Connecting {
                profile_id,
                profile_name,
                ..
            }
            | ConnState::Disconnecting {
                profile_id,
                profile_name,
            } => (profile_id.clone(), profile_name.clone()),
            ConnState::Connected { session } => {
                (session.profile_id.clone(), session.profile_name.clone())
            }
            ConnState::Failed {
                profile_id,
                profile_name,
                ..
            } => (
                profile_id.clone().unwrap_or_default(),
                profile_name.clone().unwrap_or_default(),
            ),
            ConnState::Disconnected => (String::new(), String::new()),
        }
    }

    async fn submit(&mut self, answer: CredentialsAnswer) -> Result<(), AppError> {
        let Some(pending) = self.prompt.take() else {
            return Err(AppError::invalid("Nothing is waiting for credentials."));
        };
        if pending.prompt.id != answer.prompt_id {
            self.prompt = Some(pending);
            return Err(AppError::invalid(
                "This dialog is out of date; answer the newer one.",
            ));
        }
        match pending.purpose {
            Purpose::Challenge { session } => {
                let Some(resp) = answer
                    .challenge_response
                    .as_deref()
                    .filter(|s| !s.is_empty())
                else {
                    self.prompt = Some(pending);
                    return Err(AppError::invalid("Please enter the answer."));
                };
                let secret = to_secret(resp, "answer")?;
                self.sink.emit(AppEvent::Prompt(None));
                let socket = self.socket_str();
                let client = self.ensure_client().await?;
                client
                    .answer_challenge(session, secret)
                    .await
                    .map_err(|e| from_client_error(e, &socket))
            }
            Purpose::Connect { profile, needs } => {
                let creds = match build_credentials(&answer, &needs) {
                    Ok(c) => c,
                    Err(e) => {
                        self.prompt = Some(Pending {
                            prompt: pending.prompt,
                            purpose: Purpose::Connect { profile, needs },
                        });
                        return Err(e);
                    }
                };
                self.sink.emit(AppEvent::Prompt(None));
                self.typed = None;
                if needs.user_pass {
                    if !answer.remember {
                        if let Err(e) = self.secrets.forget(&profile.id) {
                            self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details));
                        }
                    }
                    self.typed = Some(Typed {
                        profile_id: profile.id.clone(),
                        creds: SavedCredentials {
                            username: answer.username.clone().unwrap_or_default(),
                            password: answer.password.clone().unwrap_or_default(),
                        },
                        remember: answer.remember && needs.static_challenge.is_none(),
                    });
                }
                self.used_saved = false;
                self.start(profile, creds).await
            }
        }
    }

    async fn cancel_prompt(&mut self) -> Result<(), AppError> {
        let Some(pending) = self.prompt.take() else {
            return Ok(());
        };
        self.sink.emit(AppEvent::Prompt(None));
        match pending.purpose {
            Purpose::Connect { .. } => {
                self.app_log(LogLevel::Info, "Connecting cancelled.".into());
                self.set_state(ConnState::Disconnected);
                Ok(())
            }
            Purpose::Challenge { .. } => self.disconnect().await,
        }
    }

    fn on_event(&mut self, ev: ipc::Event) {
        if Some(ev.session) != self.session {
            return;
        }
        match ev.body {
            ipc::EventBody::Stage(stage) => self.on_stage(stage, ev.unix_ms),
            ipc::EventBody::Stats(s) => {
                let sample = StatsSample {
                    at_ms: ev.unix_ms,
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                };
                if self.stats.len() >= STATS_KEEP {
                    self.stats.pop_front();
                }
                self.stats.push_back(sample);
                self.sink.emit(AppEvent::Stats(sample));
            }
            ipc::EventBody::Log(line) => {
                let message = line.message.as_str().to_string();
                self.learn_cipher(&message);
                self.push_log(LogEntry {
                    at_ms: ev.unix_ms,
                    level: match line.level {
                        ipc::LogLevel::Error => LogLevel::Error,
                        ipc::LogLevel::Warn => LogLevel::Warn,
                        ipc::LogLevel::Info => LogLevel::Info,
                        ipc::LogLevel::Debug => LogLevel::Debug,
                    },
                    source: "helper".into(),
                    message,
                });
            }
            ipc::EventBody::Challenge(c) => {
                let (profile_id, profile_name) = self.current_profile();
                self.next_prompt += 1;
                let prompt = CredentialsPrompt {
                    id: self.next_prompt,
                    profile_id,
                    profile_name,
                    kind: PromptKind::Challenge {
                        challenge: ChallengeView {
                            text: c.prompt.as_str().to_string(),
                            echo: c.echo,
                        },
                    },
                    error: None,
                };
                self.set_prompt(Some(Pending {
                    prompt,
                    purpose: Purpose::Challenge {
                        session: ev.session,
                    },
                }));
            }
            ipc::EventBody::Error(e) => {
                let err = AppError::from(e);
                self.app_log(
                    LogLevel::Error,
                    format!("{} ({})", err.message, err.details),
                );
            }
            ipc::EventBody::Lagged { dropped } => {
                self.app_log(
                    LogLevel::Warn,
                    format!("{dropped} helper events were missed."),
                );
            }
            // The sign-in step of the UI is not built yet (issue 15 item 2): say where to go.
            ipc::EventBody::SignIn(req) => self.app_log(
                LogLevel::Warn,
                format!(
                    "The server asks you to sign in with a browser at {}.",
                    req.host
                ),
            ),
        }
    }

    /// What the session got (server address, cipher, TLS, kill switch), which the helper
    /// knows once connected; older helpers do not say, and the log-derived cipher stays.
    async fn learn_connection(&mut self) {
        let Some(id) = self.session else { return };
        let socket = self.socket_str();
        let sessions = match self.ensure_client().await {
            Ok(client) => client.list_sessions().await,
            Err(_) => return,
        };
        let info = match sessions {
            Ok(list) => list
                .into_iter()
                .find(|s| s.id == id)
                .and_then(|s| s.connection),
            Err(e) => {
                let e = from_client_error(e, &socket);
                tracing::debug!(error = %e.details, "session details");
                None
            }
        };
        let (Some(info), ConnState::Connected { session }) = (info, &self.state) else {
            return;
        };
        let mut session = session.clone();
        apply_connection(&mut session, &info);
        self.set_state(ConnState::Connected { session });
    }

    fn learn_cipher(&mut self, message: &str) {
        const KNOWN: [&str; 6] = [
            "AES-256-GCM",
            "AES-128-GCM",
            "AES-192-GCM",
            "CHACHA20-POLY1305",
            "AES-256-CBC",
            "AES-128-CBC",
        ];
        if !message.to_ascii_lowercase().contains("cipher") {
            return;
        }
        let upper = message.to_ascii_uppercase();
        if let Some(c) = KNOWN.iter().find(|c| upper.contains(*c)) {
            if let ConnState::Connected { session } = &self.state {
                let mut session = session.clone();
                session.cipher = Some((*c).to_string());
                self.set_state(ConnState::Connected { session });
            } else {
                self.pending_cipher = Some((*c).to_string());
            }
        }
    }

    fn on_stage(&mut self, stage: ipc::Stage, at_ms: u64) {
        let (profile_id, profile_name) = self.current_profile();
        let connecting = |kind, detail| ConnState::Connecting {
            profile_id: profile_id.clone(),
            profile_name: profile_name.clone(),
            stage: StageView::new(kind, detail),
        };
        match stage {
            ipc::Stage::Starting => self.set_state(connecting(StageKind::Starting, None)),
            ipc::Stage::Resolving => self.set_state(connecting(StageKind::Resolving, None)),
            ipc::Stage::Connecting { remote } => {
                self.server = Some(remote.as_str().to_string());
                self.set_state(connecting(
                    StageKind::Connecting,
                    Some(remote.as_str().to_string()),
                ))
            }
            ipc::Stage::Tls => self.set_state(connecting(StageKind::Tls, None)),
            ipc::Stage::Authenticating => {
                self.set_state(connecting(StageKind::Authenticating, None))
            }
            ipc::Stage::Configuring => self.set_state(connecting(StageKind::Configuring, None)),
            ipc::Stage::Reconnecting {
                reason,
                attempt,
                delay_ms,
            } => {
                let detail = format!(
                    "{}; attempt {attempt}, next try in {} s",
                    reason.as_str(),
                    delay_ms.div_ceil(1000)
                );
                self.set_state(connecting(StageKind::Reconnecting, Some(detail)))
            }
            ipc::Stage::Connected {
                tunnel_ipv4,
                tunnel_ipv6,
                interface,
            } => {
                let session = SessionView {
                    profile_id,
                    profile_name: profile_name.clone(),
                    server: self.server.clone(),
                    cipher: self.pending_cipher.take(),
                    tls: None,
                    kill_switch: None,
                    tunnel_ipv4: tunnel_ipv4.map(|a| a.to_string()),
                    tunnel_ipv6: tunnel_ipv6.map(|a| a.to_string()),
                    interface: interface.map(|i| i.as_str().to_string()),
                    connected_since_ms: at_ms,
                };
                if let Some(t) = self.typed.take().filter(|t| t.remember) {
                    if let Err(e) = self.secrets.save(&t.profile_id, &t.creds) {
                        self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details));
                    }
                }
                let addr = session.tunnel_ipv4.clone().or(session.tunnel_ipv6.clone());
                self.app_log(
                    LogLevel::Info,
                    format!("Connected with \"{profile_name}\"."),
                );
                self.sink.notify(
                    &format!("Connected: {profile_name}"),
                    &match addr {
                        Some(a) => format!("Your address in the VPN is {a}."),
                        None => "The VPN is up.".to_string(),
                    },
                );
                self.set_state(ConnState::Connected { session });
            }
            ipc::Stage::Disconnected { reason } => {
                self.session = None;
                self.server = None;
                self.pending_cipher = None;
                match reason {
                    ipc::DisconnectReason::Requested { .. }
                    | ipc::DisconnectReason::HelperShutdown => {
                        let was_connected = matches!(
                            self.state,
                            ConnState::Connected { .. } | ConnState::Disconnecting { .. }
                        );
                        self.app_log(
                            LogLevel::Info,
                            format!("Disconnected from \"{profile_name}\"."),
                        );
                        if was_connected {
                            self.sink.notify(
                                &format!("Disconnected: {profile_name}"),
                                "The VPN is off.",
                            );
                        }
                        self.set_state(ConnState::Disconnected);
                    }
                    ipc::DisconnectReason::AuthFailed { message } => {
                        let err = AppError::auth_failed(message.as_str());
                        self.fail(err.clone());
                        if self.used_saved {
                            if let Err(e) = self.secrets.forget(&profile_id) {
                                self.app_log(
                                    LogLevel::Warn,
                                    format!("{} ({})", e.message, e.details),
                                );
                            }
                        }
                        // Ask again right away, saying why.
                        if let Ok(profile) = self.repo.load(&profile_id) {
                            let needs = facts(&profile).needs;
                            if needs.user_pass {
                                self.ask_credentials(profile, needs, Some(err.message.clone()));
                            }
                        }
                    }
                    ipc::DisconnectReason::ServerExit { message } => {
                        self.fail(AppError::new(
                            ErrorKind::Tunnel,
                            "The server ended the connection.",
                            message.as_str(),
                        ));
                    }
                    ipc::DisconnectReason::Failed { error } => self.fail(error.into()),
                }
            }
        }
    }

    async fn route_check(
        &mut self,
        addr: IpAddr,
        label: String,
    ) -> Result<RouteCheckView, AppError> {
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        let r = client
            .route_check(addr)
            .await
            .map_err(|e| from_client_error(e, &socket))?;
        Ok(RouteCheckView {
            address: r.addr.to_string(),
            label,
            via_tunnel: r.via_tunnel,
            interface: r.interface.map(|s| s.as_str().to_string()),
            gateway: r.gateway.map(|g| g.to_string()),
            route: r.route.map(|s| s.as_str().to_string()),
            explanation: r.explanation.as_str().to_string(),
        })
    }

    async fn route_check_text(&mut self, text: &str) -> Result<RouteCheckView, AppError> {
        let addr = parse_address(text)?;
        self.route_check(addr, text.trim().to_string()).await
    }

    async fn routes(&mut self) -> Result<RoutesView, AppError> {
        let (profile_id, _) = self.current_profile();
        let details = if profile_id.is_empty() {
            None
        } else {
            self.details(&profile_id).ok()
        };
        let mut tunnel_networks = Vec::new();
        if let Some(d) = &details {
            if d.redirect_gateway {
                tunnel_networks.push("All traffic (0.0.0.0/1 and 128.0.0.0/1)".to_string());
            }
            tunnel_networks.extend(d.routes.iter().cloned());
        }
        let mut probes: Vec<(IpAddr, String)> = vec![(
            IpAddr::from([1, 1, 1, 1]),
            "The internet (1.1.1.1)".to_string(),
        )];
        if let Some(server) = self.server.as_deref().and_then(server_ip) {
            probes.push((server, "The VPN server".to_string()));
        }
        if let ConnState::Connected { session } = &self.state {
            if let Some(a) = session.tunnel_ipv4.as_deref().and_then(|a| a.parse().ok()) {
                probes.push((a, "Your VPN address".to_string()));
            }
        }
        if let Some(d) = &details {
            for r in &d.routes {
                if let Some(net) = r.split('/').next().and_then(|n| n.parse().ok()) {
                    probes.push((net, format!("Network {r} from the profile")));
                }
            }
        }
        let (plan, notes) = self.session_plan().await;
        let mut checks = Vec::new();
        for (addr, label) in probes {
            checks.push(self.route_check(addr, label).await?);
        }
        Ok(RoutesView {
            tunnel_networks,
            plan,
            notes,
            checks,
        })
    }

    /// The connected session's route plan from the helper; empty when not connected
    /// or when the helper cannot tell (an older helper).
    async fn session_plan(&mut self) -> (Vec<RoutePlanEntry>, Vec<String>) {
        let (Some(id), ConnState::Connected { .. }) = (self.session, &self.state) else {
            return (Vec::new(), Vec::new());
        };
        let socket = self.socket_str();
        let res = match self.ensure_client().await {
            Ok(client) => client.session_routes(id).await,
            Err(_) => return (Vec::new(), Vec::new()),
        };
        match res {
            Ok(r) => (
                r.routes.iter().map(plan_entry).collect(),
                r.notes.iter().map(|n| n.as_str().to_string()).collect(),
            ),
            Err(e) => {
                let e = from_client_error(e, &socket);
                tracing::debug!(error = %e.details, "session routes");
                (Vec::new(), Vec::new())
            }
        }
    }
}

/// Fills a connected session's view from what the helper says it got.
pub fn apply_connection(session: &mut SessionView, info: &ipc::ConnectionInfo) {
    let transport = match info.transport {
        ipc::Transport::Udp => "udp",
        ipc::Transport::Tcp => "tcp",
    };
    let addr = std::net::SocketAddr::new(info.server_addr, info.server_port);
    session.server = Some(if info.remote.as_str() == info.server_addr.to_string() {
        format!("{transport} {addr}")
    } else {
        format!("{transport} {addr} ({})", info.remote.as_str())
    });
    if let Some(c) = &info.cipher {
        session.cipher = Some(c.as_str().to_string());
    }
    session.tls = info.tls.as_ref().map(|t| t.as_str().to_string());
    session.kill_switch = Some(info.kill_switch);
    if let Some(i) = &info.interface {
        session.interface = Some(i.as_str().to_string());
    }
}

/// One route of the helper's plan, in the window's words.
pub fn plan_entry(r: &ipc::RouteEntry) -> RoutePlanEntry {
    use ipc::RouteKind as K;
    let (side, what) = match r.kind {
        K::IntoTunnel => (RouteSide::Tunnel, "Everything else"),
        K::Pushed => (RouteSide::Tunnel, "Network from the server"),
        K::ServerBypass => (RouteSide::Outside, "The VPN server"),
        K::DhcpServerBypass => (RouteSide::Outside, "Your DHCP server"),
        K::DnsBypass => (RouteSide::Outside, "Your DNS server"),
        K::Lan => (RouteSide::Outside, "Your local network"),
        K::Blocked => (RouteSide::Blocked, "Blocked"),
        K::Removed => (RouteSide::Outside, "Replaced for the session"),
    };
    RoutePlanEntry {
        destination: r.destination.as_str().to_string(),
        side,
        what: what.to_string(),
        gateway: r.gateway.map(|g| g.to_string()),
        device: r.device.as_ref().map(|d| d.as_str().to_string()),
        reason: r.reason.as_str().to_string(),
    }
}

/// "udp 198.18.0.1:1194" / "tcp [fd00::1]:443" -> the address.
fn server_ip(remote: &str) -> Option<IpAddr> {
    let hostport = remote.split_whitespace().last()?;
    if let Ok(sa) = hostport.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    hostport.parse().ok()
}

pub fn parse_address(text: &str) -> Result<IpAddr, AppError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AppError::invalid(
            "Type an IP address, for example 10.0.0.3.",
        ));
    }
    t.parse::<IpAddr>().map_err(|_| {
        AppError::invalid(format!(
            "\"{t}\" is not an IP address. Type one like 10.0.0.3 or fd00::1."
        ))
    })
}

/// The helper's profile-name rules are strict; keep what is allowed.
fn helper_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut s = cleaned.trim().to_string();
    while s.len() > 64 {
        s.pop();
    }
    if s.is_empty() {
        "profile".into()
    } else {
        s.trim_end().to_string()
    }
}

fn to_field(s: &str, what: &str) -> Result<ipc::Username, AppError> {
    ipc::Username::try_from(s).map_err(|e| AppError::invalid(format!("The {what} {e}.")))
}

fn to_secret(s: &str, what: &str) -> Result<ipc::Secret, AppError> {
    ipc::Secret::try_from(s).map_err(|e| AppError::invalid(format!("The {what} {e}.")))
}

fn build_credentials(
    a: &CredentialsAnswer,
    needs: &AuthNeeds,
) -> Result<ipc::Credentials, AppError> {
    let mut c = ipc::Credentials::default();
    if needs.user_pass {
        let user = a.username.as_deref().map(str::trim).unwrap_or_default();
        if user.is_empty() {
            return Err(AppError::invalid("Please enter your user name."));
        }
        let pass = a.password.as_deref().unwrap_or_default();
        if pass.is_empty() {
            return Err(AppError::invalid("Please enter your password."));
        }
        c.username = Some(to_field(user, "user name")?);
        c.password = Some(to_secret(pass, "password")?);
        if needs.static_challenge.is_some() {
            let resp = a.challenge_response.as_deref().unwrap_or_default();
            if resp.is_empty() {
                return Err(AppError::invalid("Please answer the challenge."));
            }
            c.challenge_response = Some(to_secret(resp, "answer")?);
        }
    }
    if needs.key_passphrase {
        let p = a.key_passphrase.as_deref().unwrap_or_default();
        if p.is_empty() {
            return Err(AppError::invalid(
                "Please enter the passphrase of your private key.",
            ));
        }
        c.key_passphrase = Some(to_secret(p, "passphrase")?);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_server_ips() {
        assert_eq!(
            parse_address(" 10.0.0.3 ").unwrap(),
            IpAddr::from([10, 0, 0, 3])
        );
        assert_eq!(
            parse_address("x").unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        assert_eq!(parse_address("").unwrap_err().kind, ErrorKind::InvalidInput);
        assert_eq!(
            server_ip("udp 198.18.0.1:1194"),
            Some(IpAddr::from([198, 18, 0, 1]))
        );
        assert_eq!(server_ip("tcp [fd00::1]:443"), "fd00::1".parse().ok());
        assert_eq!(server_ip("udp vpn.example.com:1194"), None);
    }

    #[test]
    fn helper_names_follow_the_helpers_rules() {
        assert_eq!(helper_name("a/b"), "a_b");
        assert_eq!(helper_name("  "), "profile");
        assert!(helper_name(&"x".repeat(80)).len() <= 64);
        assert!(ipc::ProfileName::try_from(helper_name(" w/\u{7}x ")).is_ok());
    }

    #[test]
    fn credentials_need_every_asked_field() {
        let needs = AuthNeeds {
            user_pass: true,
            static_challenge: Some(ChallengeView {
                text: "PIN".into(),
                echo: false,
            }),
            key_passphrase: false,
        };
        let mut a = CredentialsAnswer {
            username: Some("ann".into()),
            password: Some("pw".into()),
            ..Default::default()
        };
        assert!(build_credentials(&a, &needs)
            .unwrap_err()
            .message
            .contains("challenge"));
        a.challenge_response = Some("1234".into());
        let c = build_credentials(&a, &needs).unwrap();
        assert_eq!(c.password.unwrap().expose(), "pw");
        assert_eq!(c.challenge_response.unwrap().expose(), "1234");
        a.username = Some("  ".into());
        assert!(build_credentials(&a, &needs)
            .unwrap_err()
            .message
            .contains("user name"));
    }
}
