//! The proxy in front of the server (`http-proxy` / `socks-proxy`): its user name and
//! password are asked for in a dialog of their own, sent to the helper as IPC secrets
//! with the connect, and (with "Remember") kept in the keyring in an entry of their
//! own. A proxy that refuses them (the helper says so) drops the remembered ones and
//! asks again; nothing typed is saved before the tunnel is up.

use super::prompts::{to_field, to_secret, Pending, Purpose};
use super::Actor;
use crate::error::AppError;
use crate::model::{
    ConnState, CredentialsAnswer, CredentialsPrompt, LogLevel, PromptKind, StageKind, StageView,
};
use crate::profiles::StoredProfile;
use crate::secrets::SavedCredentials;

/// What the profile's proxies ask of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyNeed {
    /// No proxy, or one without authentication.
    None,
    /// `http-proxy HOST PORT auto|auto-nct`: only if the proxy answers 407.
    IfAsked,
    /// An auth file, `stdin`, or inline `<http-proxy-user-pass>` (which import takes out
    /// of the stored profile): the user name and password go with every connect.
    Always,
}

/// The first proxy the profile goes through, and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyFacts {
    pub need: ProxyNeed,
    /// "HTTP" or "SOCKS".
    pub kind: &'static str,
    /// "host:port".
    pub address: String,
}

/// `None` when no remote of the profile goes through a proxy.
pub fn proxy_facts(text: &str) -> Option<ProxyFacts> {
    use ovpn_profile::ProxyAuth;
    let profile = ovpn_profile::parse(text.as_bytes()).ok()?.profile;
    let mut first: Option<ProxyFacts> = None;
    for e in profile.endpoints() {
        let proxies = [
            e.options
                .http_proxy
                .as_ref()
                .map(|h| ("HTTP", &h.host, h.port, h.auth.as_ref())),
            e.options
                .socks_proxy
                .as_ref()
                .map(|s| ("SOCKS", &s.host, s.port, s.auth.as_ref())),
        ];
        for (kind, host, port, auth) in proxies.into_iter().flatten() {
            let need = match auth {
                None => ProxyNeed::None,
                Some(ProxyAuth::Auto { .. }) => ProxyNeed::IfAsked,
                Some(ProxyAuth::Prompt | ProxyAuth::Credentials(_)) => ProxyNeed::Always,
            };
            let address = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            match &mut first {
                None => {
                    first = Some(ProxyFacts {
                        need,
                        kind,
                        address,
                    })
                }
                // Asked once for all the profile's proxies: the strongest need wins.
                Some(f) => {
                    if need == ProxyNeed::Always
                        || (need == ProxyNeed::IfAsked && f.need == ProxyNeed::None)
                    {
                        f.need = need;
                    }
                }
            }
        }
    }
    first
}

/// What the helper said about the proxy's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuthFailure {
    /// The proxy (or the helper's guard) wants a user name and password; none was sent.
    Missing,
    /// The proxy refused the ones sent.
    Wrong,
}

/// Reads the helper's error: a session that ended on the proxy's refusal (the texts of
/// `ovpn_tokio::proxy::ProxyError`, which its tests keep in step with these), or a
/// connect the helper refused because the profile's proxy needs credentials.
pub fn proxy_auth_failure(e: &ipc::IpcError) -> Option<ProxyAuthFailure> {
    match e {
        ipc::IpcError::Tunnel { message } => {
            let m = message.as_str();
            if m.contains("refused the proxy user name or password") {
                Some(ProxyAuthFailure::Wrong)
            } else if m.contains("proxy asks for a user name and password") {
                Some(ProxyAuthFailure::Missing)
            } else {
                None
            }
        }
        ipc::IpcError::InvalidRequest { field, problem }
            if field.as_str() == "connect.credentials"
                && problem.as_str().contains("proxy user name and password") =>
        {
            Some(ProxyAuthFailure::Missing)
        }
        _ => None,
    }
}

/// What the user typed for the proxy in this attempt: sent with every connect of the
/// attempt (a VPN password asked again keeps it) and saved once the tunnel is up.
pub(super) struct TypedProxy {
    pub(super) username: String,
    pub(super) password: String,
    pub(super) remember: bool,
}

impl std::fmt::Debug for TypedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProxy")
            .field("username", &self.username)
            .field("remember", &self.remember)
            .finish_non_exhaustive()
    }
}

pub(super) const PROXY_WRONG: &str = "The proxy did not accept the proxy user name or password.";
pub(super) const PROXY_MISSING: &str = "The proxy asks for a user name and password.";

impl Actor {
    /// Adds the proxy's user name and password to `creds`: typed in this attempt, else
    /// from the keyring. `Ok(false)`: none is known and the proxy needs them, so the
    /// dialog is up and the connect waits for it.
    pub(super) fn attach_proxy_credentials(
        &mut self,
        profile: &StoredProfile,
        creds: &mut ipc::Credentials,
    ) -> Result<bool, AppError> {
        let Some(facts) = proxy_facts(&profile.text) else {
            return Ok(true);
        };
        if facts.need == ProxyNeed::None {
            return Ok(true);
        }
        let typed = self
            .link(&profile.id)
            .and_then(|l| l.proxy_typed.as_ref())
            .map(|t| (t.username.clone(), t.password.clone()));
        let (user, pass, saved) = match typed {
            Some((u, p)) => (u, p, false),
            None => match self.secrets.load_proxy(&profile.id) {
                Ok(Some(s)) if !s.username.is_empty() => (s.username, s.password, true),
                Ok(_) => {
                    if facts.need == ProxyNeed::Always {
                        self.ask_proxy(profile.clone(), Some(creds.clone()), None);
                        return Ok(false);
                    }
                    // `auto`: the proxy may not ask at all.
                    return Ok(true);
                }
                Err(e) => {
                    self.warn_error(&e);
                    if facts.need == ProxyNeed::Always {
                        self.ask_proxy(profile.clone(), Some(creds.clone()), None);
                        return Ok(false);
                    }
                    return Ok(true);
                }
            },
        };
        creds.proxy_username = Some(to_field(&user, "proxy user name")?);
        creds.proxy_password = Some(to_secret(&pass, "proxy password")?);
        if let Some(l) = self.link_mut(&profile.id) {
            l.used_saved_proxy = saved;
        }
        Ok(true)
    }

    /// Opens the proxy dialog. `creds`: the VPN credentials of the connect that waits
    /// (`None` when the session already ended: they are gathered again).
    pub(super) fn ask_proxy(
        &mut self,
        profile: StoredProfile,
        creds: Option<ipc::Credentials>,
        error: Option<String>,
    ) {
        let facts = proxy_facts(&profile.text);
        let typed = self
            .link_mut(&profile.id)
            .and_then(|l| l.proxy_typed.take())
            .map(|t| t.username);
        let username = typed.or_else(|| {
            self.secrets
                .load_proxy(&profile.id)
                .ok()
                .flatten()
                .map(|s| s.username)
                .filter(|u| !u.is_empty())
        });
        self.next_prompt += 1;
        let prompt = CredentialsPrompt {
            id: self.next_prompt,
            profile_id: profile.id.clone(),
            profile_name: profile.name.clone(),
            kind: PromptKind::Proxy {
                username,
                proxy_kind: facts.as_ref().map_or("HTTP", |f| f.kind).to_string(),
                proxy: facts.map(|f| f.address).unwrap_or_default(),
            },
            error,
        };
        self.set_state(
            &profile.id,
            ConnState::Connecting {
                profile_id: profile.id.clone(),
                profile_name: profile.name.clone(),
                stage: StageView::new(StageKind::Credentials, None),
            },
        );
        self.set_prompt(Some(Pending {
            prompt,
            purpose: Purpose::Proxy { profile, creds },
        }));
    }

    /// The answer to the proxy dialog: kept for this attempt, then the connect goes on.
    pub(super) async fn submit_proxy(
        &mut self,
        prompt: CredentialsPrompt,
        profile: StoredProfile,
        creds: Option<ipc::Credentials>,
        answer: CredentialsAnswer,
    ) -> Result<(), AppError> {
        let user = answer
            .username
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        let pass = answer.password.clone().unwrap_or_default();
        let problem = if user.is_empty() {
            Some(AppError::invalid("Please enter the proxy user name."))
        } else if pass.is_empty() {
            Some(AppError::invalid("Please enter the proxy password."))
        } else {
            to_field(&user, "proxy user name")
                .and_then(|_| to_secret(&pass, "proxy password"))
                .err()
        };
        if let Some(e) = problem {
            self.prompt = Some(Pending {
                prompt,
                purpose: Purpose::Proxy { profile, creds },
            });
            return Err(e);
        }
        self.sink.emit(crate::model::AppEvent::Prompt(None));
        if !answer.remember {
            if let Err(e) = self.secrets.forget_proxy(&profile.id) {
                self.warn_error(&e);
            }
        }
        if let Some(l) = self.link_mut(&profile.id) {
            l.proxy_typed = Some(TypedProxy {
                username: user,
                password: pass,
                remember: answer.remember,
            });
            l.used_saved_proxy = false;
        }
        match creds {
            Some(creds) => self.start(profile, creds).await,
            None => self.gather_and_start(profile, true).await,
        }
    }

    /// The tunnel is up: typed proxy credentials are saved when the user asked.
    pub(super) fn proxy_connected(&mut self, profile_id: &str) {
        let Some(t) = self.link_mut(profile_id).and_then(|l| l.proxy_typed.take()) else {
            return;
        };
        if t.remember {
            let saved = SavedCredentials {
                username: t.username,
                password: t.password,
                key_passphrase: None,
            };
            if let Err(e) = self.secrets.save_proxy(profile_id, &saved) {
                self.warn_error(&e);
            }
        }
    }

    /// The proxy refused (or wanted) credentials: a remembered pair is dropped, nothing
    /// typed is kept, and the dialog asks again saying why. `creds`: the VPN credentials
    /// of a connect the helper refused up front (`None` once a session ended).
    pub(super) fn proxy_refused(
        &mut self,
        profile_id: &str,
        failure: ProxyAuthFailure,
        creds: Option<ipc::Credentials>,
    ) {
        let used_saved = self.link(profile_id).is_some_and(|l| l.used_saved_proxy);
        if used_saved || failure == ProxyAuthFailure::Wrong {
            if let Err(e) = self.secrets.forget_proxy(profile_id) {
                self.warn_error(&e);
            }
        }
        if let Some(l) = self.link_mut(profile_id) {
            l.used_saved_proxy = false;
        }
        let why = match failure {
            ProxyAuthFailure::Wrong => PROXY_WRONG,
            ProxyAuthFailure::Missing => PROXY_MISSING,
        };
        self.app_log(LogLevel::Warn, why.to_string());
        match self.repo.load(profile_id) {
            Ok(profile) => self.ask_proxy(profile, creds, Some(why.to_string())),
            Err(e) => self.warn_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "<ca>\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n</ca>\n";

    fn facts(extra: &str) -> Option<ProxyFacts> {
        proxy_facts(&format!(
            "client\ndev tun\nremote vpn.example.com 1194 tcp-client\n{extra}\n{CA}"
        ))
    }

    #[test]
    fn the_profiles_proxy_says_what_it_needs() {
        assert_eq!(facts(""), None);
        let f = facts("http-proxy proxy.example.com 3128").unwrap();
        assert_eq!(
            (f.need, f.kind, f.address.as_str()),
            (ProxyNeed::None, "HTTP", "proxy.example.com:3128")
        );
        assert_eq!(
            facts("http-proxy proxy.example.com 3128 auto basic")
                .unwrap()
                .need,
            ProxyNeed::IfAsked
        );
        assert_eq!(
            facts("http-proxy proxy.example.com 3128 stdin basic")
                .unwrap()
                .need,
            ProxyNeed::Always
        );
        assert_eq!(
            facts("http-proxy proxy.example.com 3128 basic\n<http-proxy-user-pass>\nann\npw\n</http-proxy-user-pass>")
                .unwrap()
                .need,
            ProxyNeed::Always
        );
        let s = facts("socks-proxy 192.0.2.7 1080 stdin").unwrap();
        assert_eq!(
            (s.need, s.kind, s.address.as_str()),
            (ProxyNeed::Always, "SOCKS", "192.0.2.7:1080")
        );
    }

    #[test]
    fn the_helpers_proxy_refusals_are_recognised() {
        let tunnel = |m: &str| ipc::IpcError::tunnel(m);
        assert_eq!(
            proxy_auth_failure(&tunnel("proxy 10.0.0.1:3128: the HTTP proxy refused the proxy user name or password (407 Proxy Authentication Required)")),
            Some(ProxyAuthFailure::Wrong)
        );
        assert_eq!(
            proxy_auth_failure(&tunnel(
                "proxy 10.0.0.1:1080: the SOCKS proxy refused the proxy user name or password"
            )),
            Some(ProxyAuthFailure::Wrong)
        );
        assert_eq!(
            proxy_auth_failure(&tunnel("proxy 10.0.0.1:3128: the HTTP proxy asks for a user name and password (407), and none was given")),
            Some(ProxyAuthFailure::Missing)
        );
        assert_eq!(
            proxy_auth_failure(&ipc::IpcError::invalid(
                "connect.credentials",
                "the profile's proxy (http-proxy / socks-proxy) needs a proxy user name and password"
            )),
            Some(ProxyAuthFailure::Missing)
        );
        assert_eq!(
            proxy_auth_failure(&tunnel(
                "proxy 10.0.0.1:3128: the HTTP proxy did not answer within 5 s"
            )),
            None
        );
        assert_eq!(
            proxy_auth_failure(&ipc::IpcError::KeyPassphrase { wrong: true }),
            None
        );
    }
}
