//! The OpenVPN Access Server's REST profile download (see the parent module for the
//! API): the URL, HTTP Basic credentials, its XML error bodies mapped to [`FetchError`]s,
//! and the CRV1 second-factor question and answer.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::parse_https_url;
use super::{check_profile, get, FetchConfig, FetchError, Fetched, Response};

/// An Access Server sign-in.
pub struct AccessServerLogin {
    /// "vpn.example.com", "vpn.example.com:943" or "https://vpn.example.com[:943][/...]".
    pub server: String,
    pub user: String,
    pub password: Zeroizing<String>,
    /// The autologin profile (connects without a password) instead of the user-locked one.
    pub autologin: bool,
}

impl std::fmt::Debug for AccessServerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessServerLogin")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("autologin", &self.autologin)
            .finish()
    }
}

/// A second sign-in step the Access Server asked for (CRV1 challenge/response).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// What to show the user, as the server wrote it (its trailing "(9007)" code removed).
    pub text: String,
    /// The answer may be shown while typed (flag `E`); otherwise it is hidden.
    pub echo: bool,
    /// An answer is expected (flag `R`); otherwise the text is only information.
    pub response_required: bool,
    /// The user name the server sent back (base64-decoded), used with the answer.
    pub user: String,
    state_id: String,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("text", &self.text)
            .field("echo", &self.echo)
            .field("response_required", &self.response_required)
            .finish_non_exhaustive()
    }
}

impl Challenge {
    /// Parses an Access Server `CRV1:<flags>:<state>:<user_b64>:<text>` message.
    pub fn parse(message: &str) -> Option<Challenge> {
        let rest = message.trim().strip_prefix("CRV1:")?;
        let mut parts = rest.splitn(4, ':');
        let flags = parts.next()?;
        let state_id = parts.next()?.to_string();
        let user_b64 = parts.next()?;
        let text = parts.next()?;
        let user = base64::engine::general_purpose::STANDARD
            .decode(user_b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let flags: Vec<&str> = flags.split(',').map(str::trim).collect();
        Some(Challenge {
            text: strip_code(text).to_string(),
            echo: flags.contains(&"E"),
            response_required: flags.contains(&"R"),
            user,
            state_id,
        })
    }

    /// The login that answers this challenge with `response`: the server's user name
    /// (or `user` when it sent none) and the password `CRV1::<state>::<response>`.
    pub fn answer(&self, login: &AccessServerLogin, response: &str) -> AccessServerLogin {
        AccessServerLogin {
            server: login.server.clone(),
            user: if self.user.is_empty() {
                login.user.clone()
            } else {
                self.user.clone()
            },
            password: Zeroizing::new(format!("CRV1::{}::{response}", self.state_id)),
            autologin: login.autologin,
        }
    }
}

/// "text (9007)" -> "text".
fn strip_code(text: &str) -> &str {
    let t = text.trim();
    if let Some(open) = t.rfind(" (") {
        let code = &t[open + 2..];
        if code.ends_with(')') && code[..code.len() - 1].chars().all(|c| c.is_ascii_digit()) {
            return t[..open].trim_end();
        }
    }
    t
}

/// The REST address for an Access Server given as "host", "host:port" or an https URL
/// (only its scheme, host and port are used).
pub fn access_server_url(server: &str, autologin: bool) -> Result<url::Url, FetchError> {
    let t = server.trim();
    let with_scheme = if t.contains("://") {
        t.to_string()
    } else {
        format!("https://{t}")
    };
    let base = parse_https_url(&with_scheme).map_err(|e| match e {
        FetchError::BadAddress { reason, .. } => FetchError::BadAddress {
            text: t.to_string(),
            reason,
        },
        other => other,
    })?;
    let method = if autologin {
        "GetAutologin"
    } else {
        "GetUserlogin"
    };
    let mut u = base;
    u.set_path(&format!("/rest/{method}"));
    u.set_query(Some("tls-cryptv2=1&action=import"));
    u.set_fragment(None);
    Ok(u)
}

/// Downloads the user's profile from an Access Server. A second sign-in step comes back
/// as [`FetchError::ChallengeRequired`]; answer it with [`Challenge::answer`] and call
/// again.
pub async fn fetch_access_server(
    login: &AccessServerLogin,
    cfg: &FetchConfig,
) -> Result<Fetched, FetchError> {
    let url = access_server_url(&login.server, login.autologin)?;
    if login.user.is_empty() || login.user.contains(':') {
        return Err(FetchError::BadAddress {
            text: login.user.clone(),
            reason: "a user name is needed, without \":\"".to_string(),
        });
    }
    let token =
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(
            Zeroizing::new(format!("{}:{}", login.user, login.password.as_str())).as_bytes(),
        ));
    let auth = Zeroizing::new(format!("Basic {}", token.as_str()));
    let host = url.host_str().unwrap_or_default().to_string();
    tracing::debug!(%url, user = %login.user, "Access Server profile download");
    let resp = get(url, Some(auth.as_str()), cfg).await?;
    if (200..300).contains(&resp.status) {
        check_profile(&resp)?;
        return Ok(Fetched {
            bytes: resp.body,
            file_name: format!("{host}.ovpn"),
        });
    }
    Err(access_server_error(&resp))
}

/// Maps an Access Server error answer (XML `<Error>`) to what went wrong.
fn access_server_error(resp: &Response) -> FetchError {
    let body = String::from_utf8_lossy(&resp.body);
    let kind = xml_text(&body, "Type");
    let message = xml_text(&body, "Message");
    let (Some(kind), Some(message)) = (kind, message) else {
        if resp.status == 401 {
            return FetchError::AuthFailed {
                server_message: String::new(),
            };
        }
        return FetchError::Http {
            status: resp.status,
            url: resp.url.to_string(),
        };
    };
    tracing::debug!(%kind, %message, status = resp.status, "Access Server error");
    if let Some(c) = Challenge::parse(&message) {
        return FetchError::ChallengeRequired(c);
    }
    if message.contains("NEED_AUTOLOGIN") {
        return FetchError::NoAutologin {
            server_message: message,
        };
    }
    if kind.eq_ignore_ascii_case("Authorization Required") || message.contains("AUTH_FAILED") {
        return FetchError::AuthFailed {
            server_message: message,
        };
    }
    if message.to_ascii_lowercase().contains("enroll") {
        return FetchError::NotEnrolled {
            server_message: strip_code(&message).to_string(),
        };
    }
    FetchError::AccessServer {
        kind,
        server_message: message,
    }
}

/// The text of the first `<tag>..</tag>` in `xml`, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let raw = xml[start..end].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_server_addresses_become_its_rest_urls() {
        assert_eq!(
            access_server_url("vpn.example.com", false)
                .unwrap()
                .as_str(),
            "https://vpn.example.com/rest/GetUserlogin?tls-cryptv2=1&action=import"
        );
        assert_eq!(
            access_server_url(" https://vpn.example.com:943/admin/ ", true)
                .unwrap()
                .as_str(),
            "https://vpn.example.com:943/rest/GetAutologin?tls-cryptv2=1&action=import"
        );
        assert!(matches!(
            access_server_url("http://vpn.example.com", false),
            Err(FetchError::NotHttps { .. })
        ));
        assert!(access_server_url("", false).is_err());
    }

    #[test]
    fn crv1_challenges_are_parsed_and_answered() {
        let c = Challenge::parse(
            "CRV1:R,E:miwN39AlF4k40Fd8X8r9j74FuOoaJKJM:dGVzdA==:Turing test: what is 1 x 3? (9007)",
        )
        .unwrap();
        assert_eq!(c.text, "Turing test: what is 1 x 3?");
        assert!(c.echo && c.response_required);
        assert_eq!(c.user, "test");
        let login = AccessServerLogin {
            server: "vpn.example.com".into(),
            user: "test".into(),
            password: Zeroizing::new("mypass".into()),
            autologin: false,
        };
        let next = c.answer(&login, "3");
        assert_eq!(next.user, "test");
        assert_eq!(
            next.password.as_str(),
            "CRV1::miwN39AlF4k40Fd8X8r9j74FuOoaJKJM::3"
        );
        assert!(!format!("{next:?}").contains("CRV1::"), "Debug hides it");
        assert!(Challenge::parse("AUTH_FAILED: nope").is_none());
        let hidden = Challenge::parse("CRV1:R:s1:YQ==:PIN").unwrap();
        assert!(!hidden.echo && hidden.response_required);
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("text/xml".into()),
            body: body.as_bytes().to_vec(),
            url: url::Url::parse("https://vpn.example.com/rest/GetUserlogin").unwrap(),
        }
    }

    fn xml(kind: &str, message: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Type>{kind}</Type>\n  <Synopsis>REST method failed</Synopsis>\n  <Message>{message}</Message>\n</Error>\n")
    }

    #[test]
    fn access_server_error_bodies_are_mapped() {
        let e = access_server_error(&answer(
            401,
            &xml(
                "Authorization Required",
                "AUTH_FAILED: Server Agent XML method requires authentication (9007)",
            ),
        ));
        assert!(matches!(e, FetchError::AuthFailed { .. }), "{e:?}");
        let e = access_server_error(&answer(
            500,
            &xml(
                "Internal Server Error",
                "NEED_AUTOLOGIN: User &apos;ann&apos; lacks autologin privilege (9000)",
            ),
        ));
        assert!(
            matches!(&e, FetchError::NoAutologin { server_message } if server_message.contains("'ann'")),
            "{e:?}"
        );
        let e = access_server_error(&answer(
            403,
            &xml("Access denied", "You must enroll this user in Authenticator first before you are allowed to retrieve a connection profile. (9008)"),
        ));
        assert!(matches!(e, FetchError::NotEnrolled { .. }), "{e:?}");
        let e = access_server_error(&answer(
            401,
            &xml("Authorization Required", "CRV1:R:s:YW5u:Code?"),
        ));
        assert!(
            matches!(e, FetchError::ChallengeRequired(ref c) if c.text == "Code?" && c.user == "ann")
        );
        let e = access_server_error(&answer(404, "not found"));
        assert!(matches!(e, FetchError::Http { status: 404, .. }), "{e:?}");
        let e = access_server_error(&answer(
            503,
            &xml("Service Unavailable", "down for maintenance"),
        ));
        assert!(e.to_string().contains("down for maintenance"), "{e}");
    }
}
