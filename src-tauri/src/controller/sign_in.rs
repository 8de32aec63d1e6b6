//! The browser sign-in step: the server answered the password with AUTH_PENDING and a
//! link (WEB_AUTH / OPEN_URL). The connection view shows where the link goes and how
//! long the server waits; the browser opens at once, and again on request. CR_TEXT
//! questions come as challenges (see [`super::prompts`]).

use super::Actor;
use crate::error::AppError;
use crate::model::{ConnState, LogLevel, SignInView, StageKind, StageView};
use crate::sign_in;

impl Actor {
    pub(super) fn on_sign_in(&mut self, pid: &str, at_ms: u64, req: &ipc::SignInRequest) {
        let Some(link) = self.link(pid) else { return };
        let profile_name = link.profile_name.clone();
        let mut view = sign_in::view(pid, req, at_ms);
        // The same link again (a server repeating AUTH_PENDING): new countdown, but the
        // browser is not opened a second time.
        if let ConnState::Connecting { stage, .. } = &link.state {
            if let Some(shown) = stage.sign_in.as_ref().filter(|v| v.url == view.url) {
                view.opened = shown.opened;
                self.show_sign_in(pid, &profile_name, view);
                return;
            }
        }
        self.app_log(
            LogLevel::Info,
            format!(
                "\"{profile_name}\": the server asks you to sign in with your browser at {}{}.",
                view.host,
                match view.timeout_secs {
                    Some(s) => format!(" (it waits {s} s)"),
                    None => String::new(),
                }
            ),
        );
        self.open_view(&mut view);
        self.sink.sign_in_needed(&profile_name, &view.host);
        if let Some(l) = self.link_mut(pid) {
            l.signing_in = true;
        }
        self.show_sign_in(pid, &profile_name, view);
    }

    /// "Open again": the link of this profile's waiting sign-in, never one from the window.
    pub(super) fn open_sign_in(&mut self, pid: &str) -> Result<(), AppError> {
        let Some((profile_name, mut view)) = self.link(pid).and_then(|l| match &l.state {
            ConnState::Connecting { stage, .. } => {
                stage.sign_in.clone().map(|v| (l.profile_name.clone(), v))
            }
            _ => None,
        }) else {
            return Err(AppError::invalid(
                "This connection is not waiting for a sign-in.",
            ));
        };
        let url = sign_in::openable(&view.url)?;
        self.sink
            .open_browser(&url)
            .map_err(|e| AppError::internal(format!("could not start a browser: {e}")))?;
        view.opened = true;
        self.show_sign_in(pid, &profile_name, view);
        Ok(())
    }

    /// Starts the browser unless the link is refused; the view says which.
    fn open_view(&mut self, view: &mut SignInView) {
        let url = match sign_in::openable(&view.url) {
            Ok(u) => u,
            Err(e) => {
                self.app_log(LogLevel::Warn, e.message.clone());
                view.refusal = Some(e.message);
                return;
            }
        };
        match self.sink.open_browser(&url) {
            Ok(()) => view.opened = true,
            Err(e) => self.app_log(
                LogLevel::Warn,
                format!(
                    "No browser could be started ({e}); open the link from the window yourself."
                ),
            ),
        }
    }

    fn show_sign_in(&mut self, pid: &str, profile_name: &str, view: SignInView) {
        let mut stage = StageView::new(StageKind::SignIn, Some(view.host.clone()));
        stage.sign_in = Some(view);
        self.set_state(
            pid,
            ConnState::Connecting {
                profile_id: pid.to_string(),
                profile_name: profile_name.to_string(),
                stage,
            },
        );
    }
}
