//! The link to the helper: reaching it, taking over running sessions, connecting and
//! disconnecting, and turning its typed events into each connection's state. The helper
//! runs several sessions; each profile that is connecting, connected or failed has one
//! [`Link`]. What a session got (server reached, transport, cipher, TLS, kill switch)
//! comes from the helper's typed session details, never from its log text.

use super::prompts::{to_field, to_secret, Typed};
use super::{now_ms, Actor, Msg, CLIENT_NAME, REQUEST_TIMEOUT};
use crate::error::{from_client_error, AppError, ErrorKind};
use crate::model::{AppEvent, ConnState, LogLevel, ProtectionView, StageKind, StageView};
use crate::profiles::{facts, StoredProfile};

/// One profile's connection as the app tracks it.
pub(super) struct Link {
    pub(super) profile_id: String,
    pub(super) profile_name: String,
    pub(super) state: ConnState,
    /// The helper's session, once it accepted the connect.
    pub(super) session: Option<ipc::SessionId>,
    /// "udp 198.18.0.1:1194" of the running attempt.
    pub(super) server: Option<String>,
    /// The running attempt used credentials from the keyring.
    pub(super) used_saved: bool,
    /// What the user typed for the running attempt, and whether to remember it: saved
    /// only once the server accepted it, and offered again when it did not.
    pub(super) typed: Option<Typed>,
    /// The protection the attempt asked the helper for (None for a session taken over
    /// at start: what it asked for is not known).
    pub(super) protection: Option<ProtectionView>,
    /// The server asked this attempt for a browser sign-in (until it connects).
    pub(super) signing_in: bool,
    /// The proxy user name and password typed for this attempt (see `proxy.rs`).
    pub(super) proxy_typed: Option<super::proxy::TypedProxy>,
    /// The running attempt sent the proxy credentials from the keyring.
    pub(super) used_saved_proxy: bool,
    /// It was connecting or connected when the helper went away: it connects again
    /// once the helper is back, unless the user cancels it first (which ends the link).
    pub(super) resume: bool,
}

impl Link {
    fn new(profile_id: &str, profile_name: &str) -> Self {
        Self {
            profile_id: profile_id.to_string(),
            profile_name: profile_name.to_string(),
            state: ConnState::Disconnected,
            session: None,
            server: None,
            used_saved: false,
            typed: None,
            protection: None,
            signing_in: false,
            proxy_typed: None,
            used_saved_proxy: false,
            resume: false,
        }
    }
}

impl Actor {
    pub(super) fn link(&self, profile_id: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.profile_id == profile_id)
    }

    pub(super) fn link_mut(&mut self, profile_id: &str) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.profile_id == profile_id)
    }

    /// The link for a profile, made when missing.
    pub(super) fn link_or_new(&mut self, profile_id: &str, profile_name: &str) -> &mut Link {
        if let Some(i) = self.links.iter().position(|l| l.profile_id == profile_id) {
            return &mut self.links[i];
        }
        self.links.push(Link::new(profile_id, profile_name));
        let last = self.links.len() - 1;
        &mut self.links[last]
    }

    pub(super) fn profile_of_session(&self, session: ipc::SessionId) -> Option<String> {
        self.links
            .iter()
            .find(|l| l.session == Some(session))
            .map(|l| l.profile_id.clone())
    }

    /// Whether this profile is connecting, connected or disconnecting.
    pub(super) fn is_active(&self, profile_id: &str) -> bool {
        self.link(profile_id).is_some_and(|l| l.state.is_active())
    }

    /// Every connection's state, in the order they were started.
    pub(super) fn connections(&self) -> Vec<ConnState> {
        self.links.iter().map(|l| l.state.clone()).collect()
    }

    /// The first active connection, else the first failed one, else disconnected.
    pub(super) fn primary_state(&self) -> ConnState {
        self.links
            .iter()
            .find(|l| l.state.is_active())
            .or_else(|| self.links.first())
            .map(|l| l.state.clone())
            .unwrap_or(ConnState::Disconnected)
    }

    /// A profile's connection changes; `Disconnected` ends its link.
    pub(super) fn set_state(&mut self, profile_id: &str, state: ConnState) {
        let changed = match self.links.iter().position(|l| l.profile_id == profile_id) {
            Some(i) if state == ConnState::Disconnected => {
                self.links.remove(i);
                true
            }
            Some(i) if self.links[i].state != state => {
                self.links[i].state = state.clone();
                true
            }
            Some(_) => false,
            None if state == ConnState::Disconnected => false,
            None => {
                let name = state.profile_name().unwrap_or_default().to_string();
                let link = self.link_or_new(profile_id, &name);
                link.state = state.clone();
                true
            }
        };
        if changed {
            self.sink.emit(AppEvent::State(state));
            self.sink.emit(AppEvent::Connections(self.connections()));
        }
    }

    pub(super) fn fail(&mut self, profile_id: &str, error: AppError) {
        let profile_name = self
            .link(profile_id)
            .map(|l| l.profile_name.clone())
            .unwrap_or_default();
        if let Some(l) = self.link_mut(profile_id) {
            l.session = None;
            l.server = None;
        }
        self.app_log(
            LogLevel::Error,
            format!("{} ({})", error.message, error.details),
        );
        self.sink.notify(
            &format!("{profile_name}: connection failed"),
            &error.message,
        );
        self.set_state(
            profile_id,
            ConnState::Failed {
                profile_id: Some(profile_id.to_string()),
                profile_name: Some(profile_name),
                error,
            },
        );
    }

    pub(super) async fn ensure_client(&mut self) -> Result<&ipc::Client, AppError> {
        if self.client.is_none() {
            let socket = self.socket_str();
            let c = ipc::Client::connect(&self.socket, CLIENT_NAME)
                .await
                .map_err(|e| from_client_error(e, &socket))?;
            self.adopt(c).await?;
        }
        self.client
            .as_ref()
            .ok_or_else(|| AppError::internal("helper client vanished"))
    }

    /// Makes a freshly reached helper ours: its events come to the actor, tagged with a
    /// new generation so the last connection's late events are told apart.
    pub(super) async fn adopt(&mut self, mut c: ipc::Client) -> Result<(), AppError> {
        let socket = self.socket_str();
        {
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
        Ok(())
    }

    /// Takes over the sessions of our profiles that are still up (the app was restarted).
    pub(super) async fn attach(&mut self) -> Result<(), AppError> {
        let socket = self.socket_str();
        let sessions = match self.ensure_client().await?.list_sessions().await {
            Ok(s) => s,
            // An older helper without the listing: nothing to take over.
            Err(ipc::ClientError::Helper(_)) => return Ok(()),
            Err(e) => return Err(from_client_error(e, &socket)),
        };
        let profiles = self.repo.list()?;
        for s in sessions {
            if matches!(s.stage, ipc::Stage::Disconnected { .. }) {
                continue;
            }
            let Some(name) = s.profile_name.as_ref().map(|n| n.as_str().to_string()) else {
                continue;
            };
            let Some(profile) = profiles.iter().find(|p| helper_name(&p.name) == name) else {
                continue;
            };
            // A connection waiting for the helper to come back is what it runs.
            let waiting = self.link(&profile.id).is_some_and(|l| l.resume);
            if (self.is_active(&profile.id) && !waiting) || self.profile_of_session(s.id).is_some()
            {
                continue;
            }
            self.app_log(
                LogLevel::Info,
                format!("Took over the running connection of \"{}\".", profile.name),
            );
            let link = self.link_or_new(&profile.id, &profile.name);
            link.session = Some(s.id);
            if !std::mem::take(&mut link.resume) {
                link.protection = None;
            }
            self.set_state(
                &profile.id,
                ConnState::Connecting {
                    profile_id: profile.id.clone(),
                    profile_name: profile.name.clone(),
                    stage: StageView::new(StageKind::Starting, None),
                },
            );
            if s.stats.since_unix_ms > 0 {
                self.push_stats(&profile.id, now_ms(), s.stats);
            }
            self.on_stage(&profile.id, s.stage, s.started_unix_ms);
            if let Some(info) = s.connection {
                self.apply_info(&profile.id, &info);
            }
        }
        Ok(())
    }

    /// Starts `id` next to any other running connection (the helper decides whether
    /// two can run: see its kill-switch rule).
    pub(super) async fn connect(
        &mut self,
        id: &str,
        protection: ProtectionView,
    ) -> Result<(), AppError> {
        // "Try again" (or any connect) while the helper is away looks for it at once.
        if self.reattach.waiting.is_some() {
            if let Err(e) = self.reattach_now().await {
                if self.is_active(id) {
                    return Err(e);
                }
            }
        }
        if self.is_active(id) {
            return Ok(());
        }
        if let Some(p) = &self.prompt {
            if p.prompt.profile_id != id {
                return Err(AppError::busy(&format!(
                    "Answer the sign-in for \"{}\" first.",
                    p.prompt.profile_name
                )));
            }
        }
        let profile = self.repo.load(id)?;
        {
            let link = self.link_or_new(id, &profile.name);
            link.used_saved = false;
            link.protection = Some(protection);
            link.proxy_typed = None;
            link.used_saved_proxy = false;
        }
        // Reach the helper first: asking for a password it cannot use would be rude.
        if let Err(e) = self.ensure_client().await {
            self.set_state(
                id,
                ConnState::Failed {
                    profile_id: Some(profile.id.clone()),
                    profile_name: Some(profile.name.clone()),
                    error: e.clone(),
                },
            );
            self.app_log(LogLevel::Error, format!("{} ({})", e.message, e.details));
            return Err(e);
        }
        self.gather_and_start(profile, false).await
    }

    /// The VPN credentials: from the keyring, else asked for; then the connect.
    /// `reuse_typed`: what the user typed in this attempt is sent again (the proxy
    /// dialog came after it) unless a one-time challenge answer was part of it.
    pub(super) async fn gather_and_start(
        &mut self,
        profile: StoredProfile,
        reuse_typed: bool,
    ) -> Result<(), AppError> {
        let id = profile.id.clone();
        let id = id.as_str();
        let needs = facts(&profile).needs;
        if reuse_typed && needs.static_challenge.is_none() {
            let typed = self
                .link(id)
                .and_then(|l| l.typed.as_ref())
                .map(|t| t.creds.clone());
            if let Some(t) = typed {
                let mut creds = ipc::Credentials::default();
                if needs.user_pass {
                    creds.username = Some(to_field(&t.username, "user name")?);
                    creds.password = Some(to_secret(&t.password, "password")?);
                }
                if let Some(k) = &t.key_passphrase {
                    creds.key_passphrase = Some(to_secret(k, "passphrase")?);
                }
                return self.start(profile, creds).await;
            }
        }
        let mut creds = ipc::Credentials::default();
        let mut used_saved = false;
        if needs.static_challenge.is_none() {
            match self.secrets.load(id) {
                // Saved answers are used only when they cover everything asked for.
                Ok(Some(saved))
                    if (!needs.key_passphrase || saved.key_passphrase.is_some())
                        && (!needs.user_pass || !saved.username.is_empty()) =>
                {
                    if needs.user_pass {
                        creds.username = Some(to_field(&saved.username, "user name")?);
                        creds.password = Some(to_secret(&saved.password, "password")?);
                    }
                    // Sent for a PKCS#12 archive too (`needs` cannot tell it has a password).
                    if let Some(k) = &saved.key_passphrase {
                        creds.key_passphrase = Some(to_secret(k, "passphrase")?);
                    }
                    used_saved = needs.any() || creds.key_passphrase.is_some();
                }
                Ok(_) => {}
                Err(e) => self.warn_error(&e),
            }
        }
        if let Some(l) = self.link_mut(id) {
            l.used_saved = used_saved;
        }
        if needs.any() && !used_saved {
            self.ask_credentials(profile, needs, None);
            return Ok(());
        }
        self.start(profile, creds).await
    }

    pub(super) async fn start(
        &mut self,
        profile: StoredProfile,
        mut creds: ipc::Credentials,
    ) -> Result<(), AppError> {
        // The proxy's user name and password, or its dialog (the connect waits for it).
        if !self.attach_proxy_credentials(&profile, &mut creds)? {
            return Ok(());
        }
        let name = ipc::ProfileName::try_from(helper_name(&profile.name))
            .map_err(|e| AppError::invalid(format!("The profile name cannot be used: {e}.")))?;
        let text = ipc::ProfileText::try_from(profile.text.as_str()).map_err(|e| {
            AppError::new(
                ErrorKind::ProfileRejected,
                "This profile cannot be sent to the helper.",
                format!("profile text {e}"),
            )
        })?;
        self.set_state(
            &profile.id,
            ConnState::Connecting {
                profile_id: profile.id.clone(),
                profile_name: profile.name.clone(),
                stage: StageView::new(StageKind::Starting, None),
            },
        );
        self.stats.retain(|s| s.profile_id != profile.id);
        if let Some(l) = self.link_mut(&profile.id) {
            l.signing_in = false;
        }
        self.app_log(
            LogLevel::Info,
            format!("Connecting with \"{}\".", profile.name),
        );
        let options = self
            .link(&profile.id)
            .and_then(|l| l.protection)
            .map(|p| p.requested)
            .unwrap_or_default()
            .to_ipc();
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        // Kept (without the proxy's) for a proxy dialog the helper's refusal may open.
        let vpn_creds = ipc::Credentials {
            proxy_username: None,
            proxy_password: None,
            ..creds.clone()
        };
        let res = client
            .connect_profile(ipc::ConnectRequest {
                profile_name: name,
                profile_text: text,
                credentials: creds,
                options,
            })
            .await;
        match res {
            Ok(info) => {
                if let Some(l) = self.link_mut(&profile.id) {
                    l.session = Some(info.id);
                }
                Ok(())
            }
            // The helper opened the key before starting anything: ask again, saying
            // why. `ask_credentials` takes what was typed (only the user name is shown
            // again), so nothing of this attempt is saved.
            Err(ipc::ClientError::Helper(e @ ipc::IpcError::KeyPassphrase { .. })) => {
                if self.link(&profile.id).is_some_and(|l| l.used_saved) {
                    self.forget_saved_passphrase(&profile.id);
                }
                let err = AppError::from(e);
                self.app_log(LogLevel::Warn, err.message.clone());
                let mut needs = facts(&profile).needs;
                // A PKCS#12 archive says it needs a password only when asked.
                needs.key_passphrase = true;
                self.ask_credentials(profile, needs, Some(err.message));
                Ok(())
            }
            // The profile's proxy needs credentials the helper was not sent.
            Err(ipc::ClientError::Helper(e)) if super::proxy::proxy_auth_failure(&e).is_some() => {
                let failure = super::proxy::proxy_auth_failure(&e)
                    .unwrap_or(super::proxy::ProxyAuthFailure::Missing);
                self.proxy_refused(&profile.id, failure, Some(vpn_creds));
                Ok(())
            }
            Err(e) => {
                let err = from_client_error(e, &socket);
                self.fail(&profile.id, err.clone());
                Err(err)
            }
        }
    }

    /// A saved passphrase that no longer opens the key is dropped (the rest is kept).
    fn forget_saved_passphrase(&mut self, id: &str) {
        let res = match self.secrets.load(id) {
            Ok(Some(s)) if s.key_passphrase.is_some() => {
                if s.username.is_empty() {
                    self.secrets.forget(id)
                } else {
                    let kept = crate::secrets::SavedCredentials {
                        key_passphrase: None,
                        ..s
                    };
                    self.secrets.save(id, &kept)
                }
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            self.warn_error(&e);
        }
    }

    /// Disconnects one profile, or (with `None`) every connection.
    pub(super) async fn disconnect(&mut self, which: Option<&str>) -> Result<(), AppError> {
        let ids: Vec<String> = match which {
            Some(id) => vec![id.to_string()],
            None => self.links.iter().map(|l| l.profile_id.clone()).collect(),
        };
        let mut first_err = None;
        for id in ids {
            if let Err(e) = self.disconnect_one(&id).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn disconnect_one(&mut self, id: &str) -> Result<(), AppError> {
        if self
            .prompt
            .as_ref()
            .is_some_and(|p| p.prompt.profile_id == id)
        {
            self.set_prompt(None);
        }
        let Some(link) = self.link(id) else {
            return Ok(());
        };
        let Some(session) = link.session else {
            // Nothing runs at the helper (waiting for credentials, or failed).
            self.set_state(id, ConnState::Disconnected);
            return Ok(());
        };
        let profile_name = link.profile_name.clone();
        self.set_state(
            id,
            ConnState::Disconnecting {
                profile_id: id.to_string(),
                profile_name,
            },
        );
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        match client.disconnect(session).await {
            Ok(()) => Ok(()),
            Err(ipc::ClientError::Helper(ipc::IpcError::NoSuchSession { .. })) => {
                self.set_state(id, ConnState::Disconnected);
                Ok(())
            }
            Err(e) => Err(from_client_error(e, &socket)),
        }
    }
}

/// The helper's profile-name rules are strict; keep what is allowed.
pub(super) fn helper_name(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_follow_the_helpers_rules() {
        assert_eq!(helper_name("a/b"), "a_b");
        assert_eq!(helper_name("  "), "profile");
        assert!(helper_name(&"x".repeat(80)).len() <= 64);
        assert!(ipc::ProfileName::try_from(helper_name(" w/\u{7}x ")).is_ok());
    }
}
