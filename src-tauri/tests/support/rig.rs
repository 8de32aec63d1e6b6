//! The controller against the fake helper: an event recorder standing in for the
//! window, and a rig of controller, fake helper, profiles and keyring.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxivpn_app::commands::AppState;
use oxivpn_app::controller::{Controller, EventSink};
use oxivpn_app::model::{AppEvent, ConnState};
use oxivpn_app::profiles::MemoryRepo;
use oxivpn_app::secrets::MemorySecrets;
use oxivpn_app::settings::SettingsStore;
use tokio::sync::Notify;

use crate::support::fake_helper::{FakeHelper, Script};

pub const CA: &str = concat!("<ca>\n", include_str!("ca.pem"), "</ca>\n");

pub fn cert_profile() -> String {
    format!("client\ndev tun\nremote 127.0.0.1 1194 udp\n{CA}")
}
pub fn password_profile() -> String {
    format!("client\ndev tun\nremote 127.0.0.1 1194 udp\nauth-user-pass\n{CA}")
}

/// Records everything the controller says.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<AppEvent>>,
    pub notes: Mutex<Vec<String>>,
    /// Links given to the browser.
    pub opened: Mutex<Vec<String>>,
    /// Sign-in notices (profile, host).
    pub sign_ins: Mutex<Vec<(String, String)>>,
    pub changed: Notify,
}

impl EventSink for Recorder {
    fn emit(&self, event: AppEvent) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_waiters();
    }
    fn notify(&self, title: &str, _body: &str) {
        self.notes.lock().unwrap().push(title.to_string());
    }
    fn open_browser(&self, url: &ipc::SignInUrl) -> Result<(), String> {
        self.opened.lock().unwrap().push(url.as_str().to_string());
        Ok(())
    }
    fn sign_in_needed(&self, profile_name: &str, host: &str) {
        self.sign_ins
            .lock()
            .unwrap()
            .push((profile_name.to_string(), host.to_string()));
    }
}

impl Recorder {
    /// Waits (at most 5 s) until some event satisfies `pred`; returns it.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&AppEvent) -> bool) -> AppEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notified = self.changed.notified();
            if let Some(e) = self.events.lock().unwrap().iter().find(|e| pred(e)) {
                return e.clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; events: {:#?}",
                    self.events.lock().unwrap()
                );
            }
        }
    }
    pub fn clear(&self) {
        self.events.lock().unwrap().clear();
    }
    pub fn states(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                AppEvent::State(ConnState::Connecting { stage, .. }) => {
                    Some(format!("{:?}", stage.kind))
                }
                AppEvent::State(s) => Some(
                    format!("{s:?}")
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_string(),
                ),
                _ => None,
            })
            .fold(Vec::new(), |mut v: Vec<String>, s| {
                // The session's details complete a "Connected" state already shown.
                if v.last() != Some(&s) {
                    v.push(s);
                }
                v
            })
    }
}

pub struct Rig {
    pub _dir: tempfile::TempDir,
    pub helper: FakeHelper,
    pub rec: Arc<Recorder>,
    pub secrets: Arc<MemorySecrets>,
    pub state: AppState,
    pub ids: Vec<String>,
}

pub fn rig(script: Script, profiles: &[(&str, String)]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let helper = FakeHelper::start(dir.path(), script);
    let mut repo = MemoryRepo::default();
    let ids = profiles.iter().map(|(n, t)| repo.insert(n, t).id).collect();
    let rec = Arc::new(Recorder::default());
    let secrets = Arc::new(MemorySecrets::default());
    let controller = Controller::spawn(
        helper.socket.clone(),
        Box::new(repo),
        secrets.clone(),
        rec.clone(),
    );
    let state = AppState {
        controller,
        roots: Arc::new(rustls::RootCertStore::empty()),
        settings: Arc::new(SettingsStore::open(dir.path().join("settings.json"))),
        network: Arc::new(Mutex::new(oxivpn_app::autoconnect::unavailable("test"))),
        pending_reports: Mutex::new(Vec::new()),
    };
    Rig {
        _dir: dir,
        helper,
        rec,
        secrets,
        state,
        ids,
    }
}

pub fn is_connected(e: &AppEvent) -> bool {
    matches!(e, AppEvent::State(ConnState::Connected { .. }))
}

/// Connected, with what the helper's session listing says it got.
pub fn is_connected_in_detail(e: &AppEvent) -> bool {
    matches!(e, AppEvent::State(ConnState::Connected { session }) if session.cipher.is_some())
}

/// The next credentials dialog the controller opens; the recorder starts afresh after it.
pub async fn next_prompt(r: &Rig) -> oxivpn_app::model::CredentialsPrompt {
    let AppEvent::Prompt(Some(p)) = r
        .rec
        .wait_for("prompt", |e| matches!(e, AppEvent::Prompt(Some(_))))
        .await
    else {
        unreachable!()
    };
    r.rec.clear();
    p
}
