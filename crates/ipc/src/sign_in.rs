//! Browser sign-in relayed from the server (AUTH_PENDING with WEB_AUTH/OPEN_URL) to
//! the session's owner. The URL is server-controlled text: it is checked again here,
//! on every decode, so no client ever receives something it should not open.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{FieldError, ShortText};

/// Longest sign-in URL (ovpn-core's limit too).
pub const SIGN_IN_URL_MAX: usize = 2048;

/// An http(s) URL with a host, without control characters or white space, at most
/// [`SIGN_IN_URL_MAX`] bytes. Built only through `TryFrom`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SignInUrl(String);

impl SignInUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host part as written (between `//` and the first `/`, `?`, `#`, without the
    /// port), lower-cased.
    pub fn host(&self) -> String {
        let (_, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = if let Some(v6) = authority.strip_prefix('[') {
            format!("[{}]", v6.split(']').next().unwrap_or_default())
        } else {
            authority.split(':').next().unwrap_or_default().to_owned()
        };
        host.to_ascii_lowercase()
    }
}

fn check(s: &str) -> Result<(), FieldError> {
    if s.is_empty() {
        return Err(FieldError::Empty);
    }
    if s.len() > SIGN_IN_URL_MAX {
        return Err(FieldError::TooLong {
            len: s.len(),
            max: SIGN_IN_URL_MAX,
        });
    }
    if let Some((at, _)) = s
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(FieldError::ControlChar { at });
    }
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return Err(FieldError::Forbidden {
            what: "a scheme other than http:// or https://",
        });
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(FieldError::Forbidden {
            what: "a user name before the host",
        });
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(FieldError::Forbidden { what: "no host" });
    }
    Ok(())
}

impl TryFrom<String> for SignInUrl {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        check(&s)?;
        Ok(Self(s))
    }
}

impl TryFrom<&str> for SignInUrl {
    type Error = FieldError;
    fn try_from(s: &str) -> Result<Self, FieldError> {
        Self::try_from(s.to_owned())
    }
}

impl From<SignInUrl> for String {
    fn from(v: SignInUrl) -> String {
        v.0
    }
}

// The URL often carries a one-time state: keep it out of Debug output (logs).
impl fmt::Debug for SignInUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignInUrl(<{}>)", self.host())
    }
}

/// The server waits while the user signs in with a browser. Sent only to the
/// session's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRequest {
    pub url: SignInUrl,
    /// Where the browser goes, for the user to judge (punycode for IDNs).
    pub host: ShortText,
    /// Seconds the server still waits (for a countdown); `None` when it named none.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The server asked for the system browser rather than an embedded view.
    #[serde(default)]
    pub external: bool,
    /// With the kill switch on: the URL's host is let through until the server decides.
    #[serde(default)]
    pub kill_switch_exception: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https() {
        let u = SignInUrl::try_from("https://SSO.example.com:8443/a?b=c").unwrap();
        assert_eq!(u.host(), "sso.example.com");
        assert_eq!(
            SignInUrl::try_from("http://[fd00::1]:8080/x")
                .unwrap()
                .host(),
            "[fd00::1]"
        );
        assert!(SignInUrl::try_from("HTTP://a.example").is_ok());
    }

    #[test]
    fn refuses_other_schemes_and_bad_text() {
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://a.example/",
            "https://a.example/\nx",
            "https://a.example/ x",
            "https://good.example@evil.example/",
            "https://",
            "https://:80/",
            "",
        ] {
            assert!(SignInUrl::try_from(bad).is_err(), "{bad:?} accepted");
        }
        let giant = format!("https://a.example/{}", "x".repeat(SIGN_IN_URL_MAX));
        assert!(matches!(
            SignInUrl::try_from(giant),
            Err(FieldError::TooLong { .. })
        ));
    }

    #[test]
    fn decoding_checks_again() {
        let r: Result<SignInUrl, _> = serde_json::from_str("\"javascript:alert(1)\"");
        assert!(r.is_err());
        let ok: SignInUrl = serde_json::from_str("\"https://a.example/s?x=1\"").unwrap();
        assert!(!format!("{ok:?}").contains("x=1"));
    }
}
