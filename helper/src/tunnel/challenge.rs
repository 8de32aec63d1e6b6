//! Questions the server asks the user mid-connect (static and dynamic challenges,
//! `CRV1`): shown to whoever follows the session, answered within
//! [`CHALLENGE_TIMEOUT`], turned into the response the next attempt sends.

use std::time::Duration;

use ipc::{ChallengeRequest, Secret, ShortText};
use ovpn_core::config::ChallengeResponse;
use ovpn_core::session::Challenge;

use super::supervisor::Control;
use super::{Events, SessionEvent};

/// How long the user has to answer a challenge before the session gives up.
pub const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) enum Asked {
    Answer(Secret),
    Stopped,
    TimedOut,
    Unsupported(String),
}

/// Shows the challenge to whoever follows the session and waits for the answer.
pub(super) async fn ask(challenge: &Challenge, events: &Events, control: &mut Control) -> Asked {
    let (prompt, echo) = match challenge {
        Challenge::Static { text, echo } => (text.clone(), *echo),
        Challenge::Dynamic { text, echo, .. } => (text.clone(), *echo),
        other => {
            return Asked::Unsupported(format!(
                "the server asks for a challenge this helper cannot answer: {other:?}"
            ))
        }
    };
    let Some(rx) = control.answers.as_mut() else {
        return Asked::Unsupported(format!(
            "the server asks a question ({prompt:?}) and nobody can answer it here"
        ));
    };
    // An answer left over from an earlier prompt is stale.
    while rx.try_recv().is_ok() {}
    let _ = events.send(SessionEvent::Challenge(ChallengeRequest {
        prompt: ShortText::sanitized(&prompt),
        echo,
    }));
    tokio::select! {
        a = rx.recv() => match a {
            Some(a) => Asked::Answer(a),
            None => Asked::Stopped,
        },
        _ = control.stop.wait_for(|s| s.is_some()) => Asked::Stopped,
        () = tokio::time::sleep(CHALLENGE_TIMEOUT) => Asked::TimedOut,
    }
}

pub(super) fn response_for(challenge: &Challenge, answer: Secret) -> ChallengeResponse {
    match challenge {
        Challenge::Dynamic {
            state_id, username, ..
        } => ChallengeResponse::Dynamic {
            state_id: state_id.clone(),
            username: username.clone(),
            response: String::from(answer).into(),
        },
        _ => ChallengeResponse::Static {
            response: String::from(answer).into(),
        },
    }
}
