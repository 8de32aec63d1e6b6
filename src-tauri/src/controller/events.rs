//! The helper's events for each session: stages become the window's connection state,
//! stats and log lines go to their views, and once a session is up its typed details
//! (server reached, transport, cipher, TLS, kill switch) complete the view.

use super::Actor;
use crate::error::{from_client_error, AppError, ErrorKind};
use crate::model::{ConnState, LogLevel, SessionView, StageKind, StageView};
use crate::profiles::facts;

impl Actor {
    pub(super) fn on_event(&mut self, ev: ipc::Event) {
        let Some(pid) = self.profile_of_session(ev.session) else {
            return;
        };
        match ev.body {
            ipc::EventBody::Stage(stage) => self.on_stage(&pid, stage, ev.unix_ms),
            ipc::EventBody::Stats(s) => self.push_stats(&pid, ev.unix_ms, s),
            ipc::EventBody::Log(line) => self.helper_log(ev.unix_ms, line),
            ipc::EventBody::Challenge(c) => self.on_challenge(&pid, ev.session, c),
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
            ipc::EventBody::SignIn(req) => self.on_sign_in(&pid, ev.unix_ms, &req),
        }
    }

    /// What the session got (server address, cipher, TLS, kill switch), which the helper
    /// knows once connected; an older helper does not say.
    pub(super) async fn learn_connection(&mut self, session: ipc::SessionId) {
        let Some(pid) = self.profile_of_session(session) else {
            return;
        };
        let socket = self.socket_str();
        let sessions = match self.ensure_client().await {
            Ok(client) => client.list_sessions().await,
            Err(_) => return,
        };
        let info = match sessions {
            Ok(list) => list
                .into_iter()
                .find(|s| s.id == session)
                .and_then(|s| s.connection),
            Err(e) => {
                let e = from_client_error(e, &socket);
                tracing::debug!(error = %e.details, "session details");
                None
            }
        };
        if let Some(info) = info {
            self.apply_info(&pid, &info);
        }
    }

    pub(super) fn apply_info(&mut self, pid: &str, info: &ipc::ConnectionInfo) {
        let Some(ConnState::Connected { session }) = self.link(pid).map(|l| &l.state) else {
            return;
        };
        let mut session = session.clone();
        apply_connection(&mut session, info);
        self.set_state(pid, ConnState::Connected { session });
    }

    pub(super) fn on_stage(&mut self, pid: &str, stage: ipc::Stage, at_ms: u64) {
        let Some(link) = self.link(pid) else { return };
        let profile_id = pid.to_string();
        let profile_name = link.profile_name.clone();
        let connecting = |kind, detail| ConnState::Connecting {
            profile_id: profile_id.clone(),
            profile_name: profile_name.clone(),
            stage: StageView::new(kind, detail),
        };
        match stage {
            ipc::Stage::Starting => self.set_state(pid, connecting(StageKind::Starting, None)),
            ipc::Stage::Resolving => self.set_state(pid, connecting(StageKind::Resolving, None)),
            ipc::Stage::Connecting { remote } => {
                if let Some(l) = self.link_mut(pid) {
                    l.server = Some(remote.as_str().to_string());
                }
                self.set_state(
                    pid,
                    connecting(StageKind::Connecting, Some(remote.as_str().to_string())),
                )
            }
            ipc::Stage::Tls => self.set_state(pid, connecting(StageKind::Tls, None)),
            ipc::Stage::Authenticating => {
                self.set_state(pid, connecting(StageKind::Authenticating, None))
            }
            ipc::Stage::Configuring => {
                self.set_state(pid, connecting(StageKind::Configuring, None))
            }
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
                self.set_state(pid, connecting(StageKind::Reconnecting, Some(detail)))
            }
            ipc::Stage::Connected {
                tunnel_ipv4,
                tunnel_ipv6,
                interface,
            } => {
                let (server, protection, typed) = match self.link_mut(pid) {
                    Some(l) => {
                        l.signing_in = false;
                        (l.server.clone(), l.protection, l.typed.take())
                    }
                    None => (None, None, None),
                };
                let session = SessionView {
                    profile_id,
                    profile_name: profile_name.clone(),
                    server,
                    cipher: None,
                    tls: None,
                    kill_switch: None,
                    tunnel_ipv4: tunnel_ipv4.map(|a| a.to_string()),
                    tunnel_ipv6: tunnel_ipv6.map(|a| a.to_string()),
                    interface: interface.map(|i| i.as_str().to_string()),
                    connected_since_ms: at_ms,
                    protection,
                };
                if let Some(t) = typed.filter(|t| t.remember) {
                    if let Err(e) = self.secrets.save(&t.profile_id, &t.creds) {
                        self.warn_error(&e);
                    }
                }
                self.proxy_connected(pid);
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
                self.set_state(pid, ConnState::Connected { session });
            }
            ipc::Stage::Disconnected { reason } => {
                let used_saved = self.link(pid).is_some_and(|l| l.used_saved);
                if let Some(l) = self.link_mut(pid) {
                    l.session = None;
                    l.server = None;
                }
                match reason {
                    ipc::DisconnectReason::Requested { .. }
                    | ipc::DisconnectReason::HelperShutdown => {
                        let was_connected = self.link(pid).is_some_and(|l| {
                            matches!(
                                l.state,
                                ConnState::Connected { .. } | ConnState::Disconnecting { .. }
                            )
                        });
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
                        self.set_state(pid, ConnState::Disconnected);
                    }
                    ipc::DisconnectReason::AuthFailed { message }
                        if self.link(pid).is_some_and(|l| l.signing_in) =>
                    {
                        // The password passed (the server asks for the browser only
                        // after it): the sign-in was denied or not finished in time.
                        // Nothing typed is saved and the saved password stays.
                        if let Some(l) = self.link_mut(pid) {
                            l.typed = None;
                        }
                        self.fail(pid, AppError::sign_in_failed(message.as_str()));
                    }
                    ipc::DisconnectReason::AuthFailed { message } => {
                        let err = AppError::auth_failed(message.as_str());
                        self.fail(pid, err.clone());
                        if used_saved {
                            if let Err(e) = self.secrets.forget(pid) {
                                self.warn_error(&e);
                            }
                        }
                        // Ask again right away, saying why.
                        if let Ok(profile) = self.repo.load(pid) {
                            let needs = facts(&profile).needs;
                            if needs.user_pass {
                                self.ask_credentials(profile, needs, Some(err.message.clone()));
                            }
                        }
                    }
                    ipc::DisconnectReason::ServerExit { message } => {
                        self.fail(
                            pid,
                            AppError::new(
                                ErrorKind::Tunnel,
                                "The server ended the connection.",
                                message.as_str(),
                            ),
                        );
                    }
                    ipc::DisconnectReason::Failed { error } => {
                        let proxy = super::proxy::proxy_auth_failure(&error);
                        self.fail(pid, error.into());
                        // The proxy refused (or wanted) its user name and password: ask.
                        if let Some(failure) = proxy {
                            self.proxy_refused(pid, failure, None);
                        }
                    }
                }
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
    if let Some(c) = info.data_format.as_ref().or(info.cipher.as_ref()) {
        // "AES-256-GCM, epoch keys (2.7)" when the helper says the format.
        session.cipher = Some(c.as_str().to_string());
    }
    session.tls = info.tls.as_ref().map(|t| t.as_str().to_string());
    session.kill_switch = Some(info.kill_switch);
    if let Some(p) = session.protection.as_mut() {
        p.kill_switch_active = Some(info.kill_switch);
    }
    if let Some(i) = &info.interface {
        session.interface = Some(i.as_str().to_string());
    }
}
