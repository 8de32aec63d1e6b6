//! Pending authentication as one attempt sees it: the core's sign-in requests
//! (WEB_AUTH / OPEN_URL) and CR_TEXT challenges become [`SessionEvent`]s (the
//! supervisor asks CR_TEXT like any challenge and its answers flow back into the live
//! session through [`CrTextPrompt::answer`]), and with the
//! kill switch on the sign-in URL's host is let through until the server decides
//! (docs/security.md, "Browser sign-in and the kill switch").
//!
//! Hooks elsewhere (kept to a few lines so they survive restructuring):
//! `attempt.rs` `attempt()` hands `Event::SignIn` and `Challenge::CrText` to
//! [`PendingAuth`], polls [`PendingAuth::next_answer`] in its select loop, and calls
//! [`PendingAuth::close`] when the server decided or the attempt ends.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ovpn_core::config::Secret;
use ovpn_core::sso::{SignInEvent, SignInUrl};
use ovpn_tokio::{Command, DriverHandle};
use tokio::sync::mpsc;

use super::attempt::Reporter;
use super::killswitch::KillSwitch;
use super::SessionEvent;
use ipc::LogLevel;

/// How long the helper waits for the sign-in host's name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A browser sign-in the user must do; the URL passed ovpn-core's checks.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInNotice {
    pub url: String,
    pub host: String,
    /// Seconds the server still waits.
    pub seconds_left: Option<u64>,
    /// The server asked for the system browser (`external` flag).
    pub external: bool,
    /// The kill switch lets the URL's host through until the server decides.
    pub kill_switch_exception: bool,
}

// The URL may carry one-time state: Debug (and so logs) show the host only.
impl std::fmt::Debug for SignInNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInNotice")
            .field("host", &self.host)
            .field("seconds_left", &self.seconds_left)
            .field("kill_switch_exception", &self.kill_switch_exception)
            .finish_non_exhaustive()
    }
}

/// A CR_TEXT challenge on the live session and where its answer goes.
#[derive(Debug, Clone)]
pub struct CrTextPrompt {
    pub text: String,
    pub echo: bool,
    pub answer: mpsc::UnboundedSender<Secret>,
}

/// The pending-auth state of one attempt.
pub struct PendingAuth {
    answers_tx: mpsc::UnboundedSender<Secret>,
    answers_rx: mpsc::UnboundedReceiver<Secret>,
    /// The kill switch carries a sign-in exception that must be taken back.
    exception_open: bool,
}

impl PendingAuth {
    pub fn new() -> Self {
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        Self {
            answers_tx,
            answers_rx,
            exception_open: false,
        }
    }

    /// `Event::SignIn` from the core: open the kill-switch exception (when one is
    /// on) and tell the caller.
    pub(super) async fn on_sign_in(
        &mut self,
        ev: SignInEvent,
        rep: &Reporter,
        kill_switch: Option<&KillSwitch>,
        servers: &[(SocketAddr, bool)],
        resolvers: &[IpAddr],
    ) {
        let (sign_in, seconds_left) = match ev {
            SignInEvent::Open {
                sign_in,
                seconds_left,
            } => (sign_in, seconds_left),
            SignInEvent::Refused(e) => {
                rep.log(
                    LogLevel::Warn,
                    format!("the server's sign-in request was refused: {e}"),
                );
                return;
            }
        };
        let mut exception = false;
        if let Some(ks) = kill_switch {
            match allow_sign_in(ks, servers, &sign_in.url, resolvers).await {
                Ok(addrs) => {
                    exception = true;
                    self.exception_open = true;
                    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                    rep.log(
                        LogLevel::Info,
                        format!(
                            "kill switch: {} ({}) reachable until the server decides",
                            sign_in.url.host(),
                            list.join(", ")
                        ),
                    );
                }
                Err(e) => rep.log(
                    LogLevel::Warn,
                    format!(
                        "kill switch: the sign-in host {} stays blocked: {e}",
                        sign_in.url.host()
                    ),
                ),
            }
        }
        rep.log(
            LogLevel::Info,
            format!(
                "the server asks you to sign in with a browser at {}",
                sign_in.url.host()
            ),
        );
        rep.send(to_ipc(&SignInNotice {
            url: sign_in.url.as_str().to_owned(),
            host: sign_in.url.host().to_owned(),
            seconds_left,
            external: sign_in.flags.external,
            kill_switch_exception: exception,
        }));
    }

    /// A CR_TEXT challenge from the core: ask the caller, answers come back through
    /// [`next_answer`](Self::next_answer).
    pub(super) fn on_cr_text(&self, rep: &Reporter, text: String, echo: bool) {
        rep.send(SessionEvent::CrText(CrTextPrompt {
            text,
            echo,
            answer: self.answers_tx.clone(),
        }));
    }

    /// The next CR_TEXT answer (pending for ever when none comes).
    pub async fn next_answer(&mut self) -> Option<Secret> {
        self.answers_rx.recv().await
    }

    /// Sends a CR_TEXT answer on the live session.
    pub fn answer(handle: &DriverHandle, answer: &Secret) {
        handle.send(Command::AnswerCrText(answer.clone()));
    }

    /// The server decided, or the attempt is over: take the exception back (the
    /// servers stay reachable, nothing else). `tun` and `v6` as for the next rules; a
    /// caller that applies its own rules right after passes `false` for `reapply`.
    pub(super) async fn close(
        &mut self,
        kill_switch: Option<&KillSwitch>,
        servers: &[(SocketAddr, bool)],
        rep: &Reporter,
        reapply: bool,
    ) {
        if !std::mem::take(&mut self.exception_open) || !reapply {
            return;
        }
        if let Some(ks) = kill_switch {
            if let Err(e) = ks.apply(servers, None, false).await {
                rep.log(LogLevel::Error, e);
            }
        }
    }
}

/// The service's event for the session's owner; the URL is checked again on the way
/// (ipc's `SignInUrl`), a refusal becomes a warning in the log.
pub fn to_ipc(n: &SignInNotice) -> SessionEvent {
    match ipc::SignInUrl::try_from(n.url.as_str()) {
        Ok(url) => SessionEvent::SignIn(ipc::SignInRequest {
            url,
            host: ipc::ShortText::sanitized(&n.host),
            timeout_secs: n.seconds_left,
            external: n.external,
            kill_switch_exception: n.kill_switch_exception,
        }),
        Err(e) => SessionEvent::Log(
            LogLevel::Warn,
            format!(
                "the server's sign-in link to {} was refused: it {e}",
                n.host
            ),
        ),
    }
}

/// The sign-in URL's host:port (and, for a host name, the system's resolvers on
/// port 53 so the name resolves) through the kill switch.
async fn allow_sign_in(
    ks: &KillSwitch,
    servers: &[(SocketAddr, bool)],
    url: &SignInUrl,
    resolvers: &[IpAddr],
) -> Result<Vec<SocketAddr>, String> {
    let port = url.port();
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        let addrs = vec![SocketAddr::new(ip, port)];
        ks.apply_with_exception(servers, &tcp(&addrs)).await?;
        return Ok(addrs);
    }
    let dns: Vec<(SocketAddr, bool)> = resolvers
        .iter()
        .flat_map(|r| {
            [
                (SocketAddr::new(*r, 53), false),
                (SocketAddr::new(*r, 53), true),
            ]
        })
        .collect();
    if dns.is_empty() {
        return Err("no resolver known to look the host up".into());
    }
    ks.apply_with_exception(servers, &dns).await?;
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return Err(format!("cannot resolve it: {e}")),
            Err(_) => return Err("its name did not resolve within 5 s".into()),
        };
    if addrs.is_empty() {
        return Err("its name resolved to no address".into());
    }
    let mut all = dns;
    all.extend(tcp(&addrs));
    ks.apply_with_exception(servers, &all).await?;
    Ok(addrs)
}

fn tcp(addrs: &[SocketAddr]) -> Vec<(SocketAddr, bool)> {
    addrs.iter().map(|a| (*a, true)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_debug_hides_the_url() {
        let n = SignInNotice {
            url: "https://sso.example/cb?state=SECRET".into(),
            host: "sso.example".into(),
            seconds_left: Some(60),
            external: false,
            kill_switch_exception: true,
        };
        let d = format!("{n:?}");
        assert!(d.contains("sso.example") && !d.contains("SECRET"), "{d}");
    }

    #[tokio::test]
    async fn cr_text_answers_come_back_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let rep = Reporter::new(tx);
        let mut p = PendingAuth::new();
        p.on_cr_text(&rep, "Code?".into(), true);
        let Some(SessionEvent::CrText(prompt)) = rx.recv().await else {
            panic!("no prompt")
        };
        assert_eq!(prompt.text, "Code?");
        assert!(prompt.echo);
        prompt.answer.send("123".into()).unwrap();
        assert_eq!(
            p.next_answer().await.as_ref().map(Secret::expose),
            Some("123")
        );
    }
}
