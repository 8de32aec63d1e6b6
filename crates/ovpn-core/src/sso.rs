//! Pending authentication (§6.4, OpenVPN `doc/management-notes.txt`,
//! "client-pending-auth"): the server answers the key exchange with
//! `AUTH_PENDING[,timeout N]` and then tells the client what the user must do in an
//! `INFO_PRE` (or `INFO`) message:
//!
//! * `WEB_AUTH:<flags>:<url>`: open `url` in a browser (flags `hidden`, `external`,
//!   `proxy=...`);
//! * `OPEN_URL:<url>`: the older form of the same, without flags;
//! * `CR_TEXT:<flags>:<text>`: show `text` and send the answer back as
//!   `CR_RESPONSE,<base64>` on the same session (flags `E` echo, `R` response
//!   required).
//!
//! The server only uses a method the client announced in `IV_SSO`
//! ([`IV_SSO_METHODS`]). Everything here is untrusted server text: URLs are
//! refused unless they are short, free of control characters and white space, and
//! http(s) with a host; a refused URL never reaches the caller as something to open.

use std::time::{Duration, Instant};

use base64::Engine;
use thiserror::Error;

/// What we announce as `IV_SSO`: only the methods this crate parses and the caller
/// is expected to relay (`proxy` is not: we never open a URL through a server-given
/// proxy).
pub const IV_SSO_METHODS: &str = "webauth,openurl,crtext";

/// Longest sign-in URL accepted. OpenVPN servers keep the whole control message
/// under 1024 bytes (management-notes: "The total length is limited to 1024 bytes");
/// twice that leaves room for other servers and still refuses giant URLs.
pub const MAX_URL_LEN: usize = 2048;
/// Longest CR_TEXT challenge text shown to the user.
pub const MAX_CR_TEXT_LEN: usize = 1024;

/// How the server asked for the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// `WEB_AUTH:flags:url`.
    WebAuth,
    /// `OPEN_URL:url` (deprecated form).
    OpenUrl,
}

/// `WEB_AUTH` flags (comma separated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebAuthFlags {
    /// `hidden`: an embedding webview may start hidden (openvpn3 webauth.md).
    pub hidden: bool,
    /// `external`: use the system browser, not an embedded webview.
    pub external: bool,
    /// `proxy=...`: the server wanted the URL opened through a proxy. We did not
    /// announce `proxy`, so this is only reported, never used.
    pub proxy: bool,
}

/// A sign-in URL that passed [`validate_url`].
#[derive(Clone, PartialEq, Eq)]
pub struct SignInUrl {
    url: String,
    host: String,
}

impl SignInUrl {
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host the browser is sent to (IDNs in punycode, IPv6 in brackets): what a
    /// UI shows so the user can judge where they sign in.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port the browser will connect to (scheme default when absent).
    pub fn port(&self) -> u16 {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(443)
    }
}

// The URL may carry a one-time session state: keep it out of `{:?}` (logs).
impl std::fmt::Debug for SignInUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInUrl")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Why a URL from the server is not opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    #[error("the sign-in URL is {len} bytes long; at most {MAX_URL_LEN} are accepted")]
    TooLong { len: usize },
    #[error("the sign-in URL is empty")]
    Empty,
    #[error("the sign-in URL contains a control character or white space at byte {at}")]
    ControlChar { at: usize },
    #[error("the sign-in URL uses the scheme {scheme:?}; only http and https URLs are opened")]
    Scheme { scheme: String },
    #[error("the sign-in URL is not a valid URL: {0}")]
    Malformed(String),
    #[error("the sign-in URL has no host")]
    NoHost,
    #[error("the sign-in URL carries a user name or password before its host")]
    Userinfo,
}

/// Checks an untrusted URL: length, characters, http(s) scheme, a host, no
/// `user@` part (it makes `https://good.example@evil.example` read like the wrong host).
pub fn validate_url(raw: &str) -> Result<SignInUrl, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong { len: raw.len() });
    }
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    // The WHATWG parser silently drops tabs and newlines; refuse them before it runs.
    if let Some((at, _)) = raw
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(UrlError::ControlChar { at });
    }
    // Scheme first, so `javascript:` and `file:` get a message naming the scheme.
    let scheme = raw
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        let shown: String = scheme.chars().take(32).collect();
        return Err(UrlError::Scheme { scheme: shown });
    }
    let parsed = url::Url::parse(raw).map_err(|e| UrlError::Malformed(e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::Userinfo);
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        _ => return Err(UrlError::NoHost),
    };
    Ok(SignInUrl {
        url: raw.to_owned(),
        host,
    })
}

/// The server wants the user in a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub method: SignInMethod,
    pub flags: WebAuthFlags,
    pub url: SignInUrl,
}

/// What an `INFO_PRE`/`INFO` text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingAuthInfo {
    SignIn(SignIn),
    CrText {
        text: String,
        echo: bool,
        response_required: bool,
    },
}

/// An `INFO_PRE`/`INFO` text that looked like a pending-auth request but is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InfoError {
    #[error("WEB_AUTH message without a URL")]
    WebAuthWithoutUrl,
    #[error("CR_TEXT message without flags and text")]
    CrTextMalformed,
    #[error("CR_TEXT challenge text is {len} bytes long; at most {MAX_CR_TEXT_LEN} are shown")]
    CrTextTooLong { len: usize },
    #[error("CR_TEXT challenge text is empty")]
    CrTextEmpty,
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// Reads an `INFO_PRE`/`INFO` text (without the `INFO_PRE,` prefix).
///
/// `Ok(None)`: not a pending-auth message (plain information for the user).
pub fn parse_info(text: &str) -> Result<Option<PendingAuthInfo>, InfoError> {
    if let Some(rest) = text.strip_prefix("WEB_AUTH:") {
        let (flags, url) = split_web_auth(rest).ok_or(InfoError::WebAuthWithoutUrl)?;
        let url = validate_url(url)?;
        return Ok(Some(PendingAuthInfo::SignIn(SignIn {
            method: SignInMethod::WebAuth,
            flags: parse_web_auth_flags(flags),
            url,
        })));
    }
    if let Some(url) = text.strip_prefix("OPEN_URL:") {
        let url = validate_url(url)?;
        return Ok(Some(PendingAuthInfo::SignIn(SignIn {
            method: SignInMethod::OpenUrl,
            flags: WebAuthFlags::default(),
            url,
        })));
    }
    if let Some(rest) = text.strip_prefix("CR_TEXT:") {
        let (flags, body) = rest.split_once(':').ok_or(InfoError::CrTextMalformed)?;
        if body.is_empty() {
            return Err(InfoError::CrTextEmpty);
        }
        if body.len() > MAX_CR_TEXT_LEN {
            return Err(InfoError::CrTextTooLong { len: body.len() });
        }
        let flags: Vec<&str> = flags.split(',').map(str::trim).collect();
        return Ok(Some(PendingAuthInfo::CrText {
            text: body.to_owned(),
            echo: flags.contains(&"E"),
            response_required: flags.contains(&"R"),
        }));
    }
    Ok(None)
}

/// Splits `flags:url` at the first `:` outside `[...]` (a `proxy=[v6]` flag holds colons).
fn split_web_auth(rest: &str) -> Option<(&str, &str)> {
    let mut depth = 0u32;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                let url = &rest[i + 1..];
                return (!url.is_empty()).then_some((&rest[..i], url));
            }
            _ => {}
        }
    }
    None
}

fn parse_web_auth_flags(flags: &str) -> WebAuthFlags {
    let mut f = WebAuthFlags::default();
    for flag in flags.split(',').map(str::trim) {
        match flag {
            "hidden" => f.hidden = true,
            "external" => f.external = true,
            p if p.starts_with("proxy") => f.proxy = true,
            _ => {}
        }
    }
    f
}

/// What the session tells its caller about a pending sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInEvent {
    /// Send the user to `sign_in.url`; the server decides within `seconds_left`
    /// (`None`: no AUTH_PENDING seen yet, the push deadline applies).
    Open {
        sign_in: SignIn,
        seconds_left: Option<u64>,
    },
    /// The server sent a pending-auth request we will not act on (bad URL, malformed
    /// message): shown to the user, counted, never opened.
    Refused(InfoError),
}

/// Adds `IV_SSO` (the methods in [`IV_SSO_METHODS`]) to the peer-info: for callers
/// that relay [`SignInEvent`]s and CR_TEXT challenges to the user.
pub fn announce(cfg: &mut crate::config::ClientConfig) {
    if !cfg.peer_info.extra.iter().any(|(k, _)| k == "IV_SSO") {
        cfg.peer_info
            .extra
            .push(("IV_SSO".to_owned(), IV_SSO_METHODS.to_owned()));
    }
}

/// The control message answering a CR_TEXT challenge.
pub fn cr_response_message(answer: &str) -> crate::config::Secret {
    // The answer is a secret: every buffer holding it is wiped.
    let b64 = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(answer.as_bytes()),
    );
    let mut msg = crate::config::Secret::with_capacity("CR_RESPONSE,".len() + b64.len());
    msg.push_str("CR_RESPONSE,");
    msg.push_str(&b64);
    msg
}

/// The wait for the server's decision after `AUTH_PENDING`, bounded like OpenVPN's
/// `receive_auth_pending()`: the server's timeout (hand-window when it names none),
/// capped at max(reneg-sec / 2, hand-window), counted from the first AUTH_PENDING so
/// a server repeating it cannot keep us waiting for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingWait {
    started: Instant,
    deadline: Instant,
}

impl PendingWait {
    /// The deadline after an `AUTH_PENDING[,timeout N]` at `now`; `previous` is the
    /// wait an earlier AUTH_PENDING of this session started.
    pub fn on_auth_pending(
        previous: Option<PendingWait>,
        now: Instant,
        timeout_secs: Option<u32>,
        hand_window: Duration,
        reneg: Option<Duration>,
    ) -> PendingWait {
        let started = previous.map_or(now, |p| p.started);
        let cap = reneg.map(|r| r / 2).unwrap_or(hand_window).max(hand_window);
        let wanted = timeout_secs
            .map(|t| Duration::from_secs(u64::from(t)))
            .unwrap_or(hand_window);
        PendingWait {
            started,
            deadline: started + wanted.min(cap),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The whole wait (first AUTH_PENDING to deadline).
    pub fn total(&self) -> Duration {
        self.deadline.saturating_duration_since(self.started)
    }

    /// Time the user has left at `now`.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// Whole seconds left at `now`, rounded up (for a countdown).
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        let r = self.remaining(now);
        r.as_secs() + u64::from(r.subsec_nanos() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_auth_with_flags() {
        let i = parse_info("WEB_AUTH:external,hidden:https://sso.example.com/auth?s=abc").unwrap();
        let Some(PendingAuthInfo::SignIn(s)) = i else {
            panic!("{i:?}")
        };
        assert_eq!(s.method, SignInMethod::WebAuth);
        assert!(s.flags.external && s.flags.hidden && !s.flags.proxy);
        assert_eq!(s.url.as_str(), "https://sso.example.com/auth?s=abc");
        assert_eq!(s.url.host(), "sso.example.com");
        assert_eq!(s.url.port(), 443);
    }

    #[test]
    fn web_auth_empty_flags_and_port() {
        let Some(PendingAuthInfo::SignIn(s)) =
            parse_info("WEB_AUTH::http://198.18.0.1:8080/signin?session=1").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.flags, WebAuthFlags::default());
        assert_eq!(s.url.host(), "198.18.0.1");
        assert_eq!(s.url.port(), 8080);
    }

    #[test]
    fn web_auth_proxy_flag_with_ipv6_colons() {
        let Some(PendingAuthInfo::SignIn(s)) =
            parse_info("WEB_AUTH:proxy=[fd00::1];3128;dTE=;cDE=,external:https://[fd00::2]/x")
                .unwrap()
        else {
            panic!()
        };
        assert!(s.flags.proxy && s.flags.external);
        assert_eq!(s.url.host(), "[fd00::2]");
    }

    #[test]
    fn open_url_form() {
        let Some(PendingAuthInfo::SignIn(s)) =
            parse_info("OPEN_URL:https://vpn.example.org/saml").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.method, SignInMethod::OpenUrl);
        assert_eq!(s.url.host(), "vpn.example.org");
    }

    #[test]
    fn idn_host_shown_in_punycode() {
        let u = validate_url("https://bücher.example/").unwrap();
        assert_eq!(u.host(), "xn--bcher-kva.example");
    }

    #[test]
    fn refused_urls() {
        assert_eq!(
            validate_url("file:///etc/passwd"),
            Err(UrlError::Scheme {
                scheme: "file".into()
            })
        );
        assert_eq!(
            validate_url("javascript:alert(1)"),
            Err(UrlError::Scheme {
                scheme: "javascript".into()
            })
        );
        assert_eq!(
            validate_url("JavaScript:alert(1)"),
            Err(UrlError::Scheme {
                scheme: "javascript".into()
            })
        );
        assert!(matches!(
            validate_url("no scheme at all"),
            Err(UrlError::ControlChar { at: 2 })
        ));
        assert!(matches!(
            validate_url("https://a.example/\nx"),
            Err(UrlError::ControlChar { .. })
        ));
        assert!(matches!(
            validate_url("https://a.example/\u{7f}"),
            Err(UrlError::ControlChar { .. })
        ));
        assert_eq!(validate_url(""), Err(UrlError::Empty));
        let giant = format!("https://a.example/{}", "x".repeat(MAX_URL_LEN));
        assert!(matches!(
            validate_url(&giant),
            Err(UrlError::TooLong { .. })
        ));
        assert_eq!(
            validate_url("https://good.example@evil.example/"),
            Err(UrlError::Userinfo)
        );
        assert!(matches!(
            validate_url("https:///nohost"),
            Err(UrlError::NoHost) | Err(UrlError::Malformed(_)) | Ok(_)
        ));
        assert!(matches!(
            validate_url("http://[::1"),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            parse_info("WEB_AUTH::file:///etc/shadow"),
            Err(InfoError::Url(UrlError::Scheme { .. }))
        ));
        assert!(matches!(
            parse_info("OPEN_URL:javascript:alert(document.cookie)"),
            Err(InfoError::Url(UrlError::Scheme { .. }))
        ));
    }

    #[test]
    fn https_without_host_is_refused() {
        // The WHATWG parser turns `https:///x` into host "x"; `https://` alone has none.
        assert!(validate_url("https://").is_err());
    }

    #[test]
    fn malformed_messages() {
        assert_eq!(parse_info("WEB_AUTH:"), Err(InfoError::WebAuthWithoutUrl));
        assert_eq!(
            parse_info("WEB_AUTH:external"),
            Err(InfoError::WebAuthWithoutUrl)
        );
        assert_eq!(
            parse_info("WEB_AUTH:external:"),
            Err(InfoError::WebAuthWithoutUrl)
        );
        assert_eq!(parse_info("CR_TEXT:R"), Err(InfoError::CrTextMalformed));
        assert_eq!(parse_info("CR_TEXT:R:"), Err(InfoError::CrTextEmpty));
        assert!(matches!(
            parse_info(&format!("CR_TEXT:R:{}", "a".repeat(MAX_CR_TEXT_LEN + 1))),
            Err(InfoError::CrTextTooLong { .. })
        ));
        assert_eq!(parse_info("Welcome to the VPN"), Ok(None));
        assert_eq!(parse_info(""), Ok(None));
    }

    #[test]
    fn cr_text_flags() {
        assert_eq!(
            parse_info("CR_TEXT:R,E:Enter the code: from your app"),
            Ok(Some(PendingAuthInfo::CrText {
                text: "Enter the code: from your app".into(),
                echo: true,
                response_required: true
            }))
        );
        assert_eq!(
            parse_info("CR_TEXT::Press OK"),
            Ok(Some(PendingAuthInfo::CrText {
                text: "Press OK".into(),
                echo: false,
                response_required: false
            }))
        );
    }

    #[test]
    fn cr_response_is_base64() {
        assert_eq!(
            cr_response_message("123456").expose(),
            "CR_RESPONSE,MTIzNDU2"
        );
    }

    #[test]
    fn debug_hides_the_url() {
        let u = validate_url("https://sso.example/cb?state=SECRET").unwrap();
        let d = format!("{u:?}");
        assert!(d.contains("sso.example") && !d.contains("SECRET"), "{d}");
    }

    #[test]
    fn pending_wait_bounds() {
        let t0 = Instant::now();
        let hw = Duration::from_secs(60);
        let reneg = Some(Duration::from_secs(3600));
        // Server timeout honoured (also when shorter than hand-window).
        let w = PendingWait::on_auth_pending(None, t0, Some(300), hw, reneg);
        assert_eq!(w.deadline(), t0 + Duration::from_secs(300));
        let w = PendingWait::on_auth_pending(None, t0, Some(20), hw, reneg);
        assert_eq!(w.deadline(), t0 + Duration::from_secs(20));
        // No timeout: hand-window.
        let w = PendingWait::on_auth_pending(None, t0, None, hw, reneg);
        assert_eq!(w.deadline(), t0 + hw);
        // Capped at max(reneg/2, hand-window).
        let w = PendingWait::on_auth_pending(None, t0, Some(100_000), hw, reneg);
        assert_eq!(w.deadline(), t0 + Duration::from_secs(1800));
        // A repeated AUTH_PENDING counts from the first one.
        let later = t0 + Duration::from_secs(250);
        let w2 = PendingWait::on_auth_pending(Some(w), later, Some(300), hw, reneg);
        assert_eq!(w2.deadline(), t0 + Duration::from_secs(300));
        assert_eq!(w2.remaining(later), Duration::from_secs(50));
    }
}
