//! Credentials and challenges: what to ask before connecting, the answers, and the
//! server's mid-login questions. Typed passwords are kept only until the server has
//! accepted them (then saved when the user asked) so a wrong one is never stored.

use super::Actor;
use crate::error::{from_client_error, AppError};
use crate::model::{
    AppEvent, ChallengeView, ConnState, CredentialsAnswer, CredentialsPrompt, LogLevel, PromptKind,
    StageKind, StageView,
};
use crate::profiles::{AuthNeeds, StoredProfile};
use crate::secrets::SavedCredentials;

/// What the open prompt is for.
#[derive(Debug)]
pub(super) enum Purpose {
    Connect {
        profile: StoredProfile,
        needs: AuthNeeds,
    },
    Challenge {
        session: ipc::SessionId,
    },
    /// The profile's proxy needs a user name and password; `creds` are the VPN
    /// credentials of the connect that waits for them (see `proxy.rs`).
    Proxy {
        profile: StoredProfile,
        creds: Option<ipc::Credentials>,
    },
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) prompt: CredentialsPrompt,
    pub(super) purpose: Purpose,
}

/// What the user typed for the running attempt, and whether to remember it.
pub(super) struct Typed {
    pub(super) profile_id: String,
    pub(super) creds: SavedCredentials,
    pub(super) remember: bool,
}

impl Actor {
    pub(super) fn ask_credentials(
        &mut self,
        profile: StoredProfile,
        needs: AuthNeeds,
        error: Option<String>,
    ) {
        // What the user just typed beats what the keyring holds.
        let typed = self
            .link_mut(&profile.id)
            .and_then(|l| l.typed.take())
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
            purpose: Purpose::Connect { profile, needs },
        }));
    }

    pub(super) async fn submit(&mut self, answer: CredentialsAnswer) -> Result<(), AppError> {
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
            Purpose::Proxy { profile, creds } => {
                self.submit_proxy(pending.prompt, profile, creds, answer)
                    .await
            }
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
                let mut typed = None;
                if needs.user_pass || needs.key_passphrase {
                    if !answer.remember {
                        if let Err(e) = self.secrets.forget(&profile.id) {
                            self.warn_error(&e);
                        }
                    }
                    typed = Some(Typed {
                        profile_id: profile.id.clone(),
                        creds: SavedCredentials {
                            username: answer.username.clone().unwrap_or_default(),
                            password: answer.password.clone().unwrap_or_default(),
                            key_passphrase: answer
                                .key_passphrase
                                .clone()
                                .filter(|_| needs.key_passphrase),
                        },
                        remember: answer.remember && needs.static_challenge.is_none(),
                    });
                }
                if let Some(l) = self.link_mut(&profile.id) {
                    l.typed = typed;
                    l.used_saved = false;
                }
                self.start(profile, creds).await
            }
        }
    }

    pub(super) async fn cancel_prompt(&mut self) -> Result<(), AppError> {
        let Some(pending) = self.prompt.take() else {
            return Ok(());
        };
        self.sink.emit(AppEvent::Prompt(None));
        let profile_id = pending.prompt.profile_id;
        match pending.purpose {
            Purpose::Connect { .. } | Purpose::Proxy { .. } => {
                self.app_log(LogLevel::Info, "Connecting cancelled.".into());
                self.set_state(&profile_id, ConnState::Disconnected);
                Ok(())
            }
            Purpose::Challenge { .. } => self.disconnect(Some(&profile_id)).await,
        }
    }

    pub(super) fn set_prompt(&mut self, pending: Option<Pending>) {
        let view = pending.as_ref().map(|p| p.prompt.clone());
        self.prompt = pending;
        self.sink.emit(AppEvent::Prompt(view));
    }

    /// The server asked a question mid-login (CRV1 dynamic challenge).
    pub(super) fn on_challenge(
        &mut self,
        profile_id: &str,
        session: ipc::SessionId,
        c: ipc::ChallengeRequest,
    ) {
        let profile_id = profile_id.to_string();
        let profile_name = self
            .link(&profile_id)
            .map(|l| l.profile_name.clone())
            .unwrap_or_default();
        // The server waits for the answer (CR_TEXT or CRV1): say so in the stage line.
        if matches!(
            self.link(&profile_id).map(|l| &l.state),
            Some(ConnState::Connecting { .. })
        ) {
            self.set_state(
                &profile_id,
                ConnState::Connecting {
                    profile_id: profile_id.clone(),
                    profile_name: profile_name.clone(),
                    stage: StageView::new(StageKind::SignIn, None),
                },
            );
        }
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
            purpose: Purpose::Challenge { session },
        }));
    }
}

pub(super) fn to_field(s: &str, what: &str) -> Result<ipc::Username, AppError> {
    ipc::Username::try_from(s).map_err(|e| AppError::invalid(format!("The {what} {e}.")))
}

pub(super) fn to_secret(s: &str, what: &str) -> Result<ipc::Secret, AppError> {
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
