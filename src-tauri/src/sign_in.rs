//! Browser sign-in (the server answered AUTH_PENDING with WEB_AUTH / OPEN_URL): which
//! links the app opens, the host the user is shown, and the server's deadline.
//!
//! The helper already refuses anything but http(s) links, and `ipc` checks again on
//! decode; the app checks a third time right before the opener runs, because what it
//! opens is decided here, never by the web view (which gets no opener permission).

use crate::error::AppError;
use crate::model::SignInView;

/// Longest countdown the window shows: a server naming days is shown as "no limit".
pub const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

/// The link as the opener may open it: http or https with a host, nothing else.
pub fn openable(url: &str) -> Result<ipc::SignInUrl, AppError> {
    let refused = |why: &str| {
        AppError::invalid(format!(
            "The server's sign-in link was not opened: {why}. Only http and https links are opened."
        ))
    };
    let checked = ipc::SignInUrl::try_from(url).map_err(|e| refused(&e.to_string()))?;
    let parsed = url::Url::parse(checked.as_str()).map_err(|e| refused(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refused("it is not an http or https link"));
    }
    if parsed.host().is_none() {
        return Err(refused("it names no host"));
    }
    Ok(checked)
}

/// Where the link sends the browser, as the user should judge it: the host (IDNs in
/// punycode, so look-alike letters show) and a port when it is not the scheme's own.
pub fn display_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => format!("[{a}]"),
    };
    Some(match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// When the server stops waiting (unix ms), from when the request was made and the
/// timeout it named; `None` when it named none (or an absurd one).
pub fn deadline_ms(requested_ms: u64, timeout_secs: Option<u64>) -> Option<u64> {
    let secs = timeout_secs.filter(|s| (1..=MAX_TIMEOUT_SECS).contains(s))?;
    Some(requested_ms.saturating_add(secs * 1000))
}

/// Whole seconds left until `deadline` (rounded up, 0 once passed).
pub fn remaining_secs(deadline_ms: u64, now_ms: u64) -> u64 {
    deadline_ms.saturating_sub(now_ms).div_ceil(1000)
}

/// The sign-in step the window shows for one request. `requested_ms` is when the
/// helper relayed it (the event's time), so a late window still counts down right.
pub fn view(profile_id: &str, req: &ipc::SignInRequest, requested_ms: u64) -> SignInView {
    let url = req.url.as_str().to_owned();
    let refusal = openable(&url).err().map(|e| e.message);
    SignInView {
        profile_id: profile_id.to_owned(),
        host: display_host(&url).unwrap_or_else(|| req.host.as_str().to_owned()),
        url,
        timeout_secs: req
            .timeout_secs
            .filter(|s| (1..=MAX_TIMEOUT_SECS).contains(s)),
        deadline_ms: deadline_ms(requested_ms, req.timeout_secs),
        kill_switch_exception: req.kill_switch_exception,
        opened: false,
        refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, timeout: Option<u64>) -> ipc::SignInRequest {
        ipc::SignInRequest {
            url: ipc::SignInUrl::try_from(url).unwrap(),
            host: ipc::ShortText::try_from("from-the-helper").unwrap(),
            timeout_secs: timeout,
            external: true,
            kill_switch_exception: true,
        }
    }

    #[test]
    fn only_http_and_https_are_opened() {
        assert!(openable("https://sso.example.com/auth?state=1").is_ok());
        assert!(openable("http://198.18.0.1:8080/signin?state=ab").is_ok());
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:text/html,<script>x</script>",
            "ftp://example.com/",
            "mailto:a@example.com",
            "smb://server/share",
            "https://user@evil.example/",
            "https://a.example/\u{7}",
            "https://",
            "",
        ] {
            let e = openable(bad).expect_err(bad);
            assert!(
                e.message.contains("was not opened") && e.message.contains("http"),
                "{bad:?}: {}",
                e.message
            );
        }
    }

    #[test]
    fn host_is_parsed_not_copied() {
        assert_eq!(
            display_host("https://SSO.Example.com/a?next=https://evil.example").as_deref(),
            Some("sso.example.com")
        );
        assert_eq!(
            display_host("http://198.18.0.1:8080/signin?state=ab").as_deref(),
            Some("198.18.0.1:8080")
        );
        // The scheme's own port is not shown.
        assert_eq!(
            display_host("https://a.example:443/").as_deref(),
            Some("a.example")
        );
        assert_eq!(
            display_host("http://[fd00::1]:8080/x").as_deref(),
            Some("[fd00::1]:8080")
        );
        // Look-alike letters show as punycode.
        let idn = display_host("https://p\u{430}ypal.example/").unwrap();
        assert!(
            idn.starts_with("xn--") && idn.ends_with(".example"),
            "{idn}"
        );
        assert_eq!(display_host("javascript:alert(1)"), None);
    }

    #[test]
    fn countdown_runs_from_the_request() {
        assert_eq!(deadline_ms(1_000, Some(60)), Some(61_000));
        assert_eq!(deadline_ms(1_000, None), None);
        assert_eq!(deadline_ms(1_000, Some(0)), None);
        assert_eq!(deadline_ms(1_000, Some(MAX_TIMEOUT_SECS + 1)), None);
        assert_eq!(remaining_secs(61_000, 1_000), 60);
        assert_eq!(remaining_secs(61_000, 60_001), 1);
        assert_eq!(remaining_secs(61_000, 61_000), 0);
        assert_eq!(remaining_secs(61_000, 99_000), 0);
    }

    #[test]
    fn the_view_shows_the_parsed_host_and_deadline() {
        let v = view(
            "p1",
            &request("http://198.18.0.1:8080/signin?state=ab", Some(90)),
            5_000,
        );
        assert_eq!(v.host, "198.18.0.1:8080");
        assert_eq!(v.timeout_secs, Some(90));
        assert_eq!(v.deadline_ms, Some(95_000));
        assert!(v.kill_switch_exception);
        assert!(v.refusal.is_none());
        assert!(!v.opened);
        let v = view("p1", &request("https://a.example/", None), 5_000);
        assert_eq!((v.timeout_secs, v.deadline_ms), (None, None));
    }
}
