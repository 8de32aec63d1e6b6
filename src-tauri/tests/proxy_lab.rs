//! The app's controller against the real helper service and a real HTTP proxy in the
//! lab (root only; skipped without squid): a profile whose `http-proxy` asks for its
//! credentials (`stdin`) shows the proxy dialog, a wrong password comes back from
//! squid (407) as the dialog again saying why and nothing is saved, the right one
//! connects through squid, traffic crosses the tunnel, and "Remember" keeps the pair in
//! the proxy's keyring entry.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxivpn_app::commands::{ops, AppState};
use oxivpn_app::controller::{Controller, EventSink};
use oxivpn_app::model::{AppEvent, ConnState, CredentialsAnswer, CredentialsPrompt, PromptKind};
use oxivpn_app::profiles::MemoryRepo;
use oxivpn_app::secrets::{MemorySecrets, SecretStore};
use oxivpn_app::settings::SettingsStore;
use oxivpn_e2e::{
    addr, helper_binary, proxies_available, root_or_skip, ClientVariant, Lab, LabConfig, Role,
    ServerVariant, Transport,
};
use tokio::sync::Notify;

const PROXY_PASSWORD: &str = "pr0xy-pass";

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<AppEvent>>,
    changed: Notify,
}

impl EventSink for Recorder {
    fn emit(&self, event: AppEvent) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_waiters();
    }
    fn notify(&self, _title: &str, _body: &str) {}
    fn open_browser(&self, _url: &ipc::SignInUrl) -> Result<(), String> {
        Ok(())
    }
    fn sign_in_needed(&self, _profile_name: &str, _host: &str) {}
}

impl Recorder {
    /// Waits (at most `secs`) until an event satisfies `pred`, and clears the record.
    async fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&AppEvent) -> bool) -> AppEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.changed.notified();
            {
                let mut ev = self.events.lock().unwrap();
                if let Some(e) = ev.iter().find(|e| pred(e)).cloned() {
                    ev.clear();
                    return e;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; events: {:#?}",
                    self.events.lock().unwrap()
                );
            }
        }
    }

    async fn prompt(&self) -> CredentialsPrompt {
        match self
            .wait_for("a prompt", 30, |e| matches!(e, AppEvent::Prompt(Some(_))))
            .await
        {
            AppEvent::Prompt(Some(p)) => p,
            _ => unreachable!(),
        }
    }
}

fn answer(prompt_id: u32, password: &str) -> CredentialsAnswer {
    CredentialsAnswer {
        prompt_id,
        username: Some("alice".into()),
        password: Some(password.into()),
        remember: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_asks_for_the_proxy_password_and_connects_through_squid() {
    let name = "the_app_asks_for_the_proxy_password_and_connects_through_squid";
    if !root_or_skip(name) {
        return;
    }
    if !proxies_available() {
        eprintln!("SKIPPED {name}: squid/danted not installed (cargo xtask deps)");
        return;
    }
    let helper = match helper_binary() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("SKIPPED {name}: {e:#}");
            return;
        }
    };
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let port = lab.start_squid("alice", PROXY_PASSWORD).unwrap();
    let srv = lab
        .start_server(&ServerVariant {
            transport: Transport::Tcp,
            ..ServerVariant::default()
        })
        .unwrap();
    let variant = ClientVariant {
        extra: vec![format!("http-proxy {} {port} stdin basic", addr::SERVER)],
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &variant, "client").unwrap();
    let service = lab.start_helper_service(&helper).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut repo = MemoryRepo::default();
    let id = repo.insert("Hotel", &profile.text).id;
    let rec = Arc::new(Recorder::default());
    let secrets = Arc::new(MemorySecrets::default());
    let controller = Controller::spawn(
        service.socket.clone(),
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

    ops::connect(&state, id.clone()).await.unwrap();
    let first = rec.prompt().await;
    let PromptKind::Proxy { proxy, .. } = &first.kind else {
        panic!("the proxy dialog first, not {:?}", first.kind)
    };
    assert_eq!(proxy, &format!("{}:{port}", addr::SERVER));

    // squid refuses the wrong password (407): the dialog again, saying so; nothing kept.
    ops::submit_credentials(&state, answer(first.id, "not-the-password"))
        .await
        .unwrap();
    let again = rec.prompt().await;
    assert!(matches!(again.kind, PromptKind::Proxy { .. }), "{again:?}");
    assert_eq!(
        again.error.as_deref(),
        Some("The proxy did not accept the proxy user name or password.")
    );
    assert_eq!(secrets.load_proxy(&id).unwrap(), None);

    // The right one: through squid to the server, and traffic crosses the tunnel.
    ops::submit_credentials(&state, answer(again.id, PROXY_PASSWORD))
        .await
        .unwrap();
    rec.wait_for("connected", 40, |e| {
        matches!(e, AppEvent::State(ConnState::Connected { .. }))
    })
    .await;
    let stats = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 3, "ping through the tunnel");
    let saved = secrets.load_proxy(&id).unwrap().unwrap();
    assert_eq!(
        (saved.username.as_str(), saved.password.as_str()),
        ("alice", PROXY_PASSWORD)
    );
    ops::disconnect(&state).await.unwrap();
    rec.wait_for("disconnected", 20, |e| {
        matches!(e, AppEvent::State(ConnState::Disconnected))
    })
    .await;
    let access = std::fs::read_to_string(lab.dir().join("squid/access.log")).unwrap();
    assert!(
        access.contains("CONNECT") && access.contains("alice"),
        "squid logged no authenticated CONNECT:\n{access}"
    );
}
