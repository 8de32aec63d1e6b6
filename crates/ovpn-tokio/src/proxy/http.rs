//! HTTP `CONNECT` through a proxy (RFC 9110 §9.3.6), with Basic authentication
//! (RFC 7617) sent at once or after a 407, as OpenVPN's `http-proxy` does.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{io_err, timed, ProxyCredentials, ProxyError};

/// Longest HTTP reply head (status line plus headers) we read.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// When to send HTTP proxy credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAuth {
    /// Never (`http-proxy host port`).
    None,
    /// With the first request (`http-proxy host port file|stdin [basic]`).
    Basic,
    /// Only after the proxy answers 407 (`auto` / `auto-nct`), on a new connection.
    Auto,
}

/// What the `CONNECT` request says besides the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProxyConfig {
    pub auth: HttpAuth,
    /// `1.0` (OpenVPN's default) or `1.1` (adds a `Host` header).
    pub version: String,
    pub agent: Option<String>,
    pub custom_headers: Vec<(String, String)>,
}

impl HttpProxyConfig {
    /// The profile's `http-proxy` and `http-proxy-option` lines.
    pub fn from_profile(
        h: &ovpn_profile::HttpProxy,
        o: &ovpn_profile::HttpProxyOptions,
    ) -> HttpProxyConfig {
        use ovpn_profile::ProxyAuth;
        let auth = match &h.auth {
            None => HttpAuth::None,
            Some(ProxyAuth::Auto { .. }) => HttpAuth::Auto,
            Some(ProxyAuth::Prompt | ProxyAuth::Credentials(_)) => HttpAuth::Basic,
        };
        HttpProxyConfig {
            auth,
            version: o.version.clone().unwrap_or_else(|| "1.0".into()),
            agent: o.agent.clone(),
            custom_headers: o.custom_headers.clone(),
        }
    }
}

/// Host part of `host:port` in a request line: IPv6 literals in brackets.
fn authority(host: &str, port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    }
}

/// The `CONNECT` request for `host:port`.
pub fn http_request(
    host: &str,
    port: u16,
    cfg: &HttpProxyConfig,
    creds: Option<&ProxyCredentials>,
) -> Result<ovpn_core::config::Secret, ProxyError> {
    let target = authority(host, port);
    // A wiped buffer: with credentials the request carries the password (base64).
    let mut r = ovpn_core::config::Secret::with_capacity(512);
    r.push_str(&format!("CONNECT {target} HTTP/{}\r\n", cfg.version));
    if cfg.version == "1.1" {
        r.push_str(&format!("Host: {target}\r\n"));
    }
    if let Some(a) = &cfg.agent {
        r.push_str(&format!("User-Agent: {a}\r\n"));
    }
    if let Some(c) = creds {
        let bad = |s: &str| s.contains(['\r', '\n', '\0']);
        if bad(&c.username) || bad(c.password.expose()) {
            return Err(ProxyError::BadCredentials);
        }
        // Built in wiped buffers: the request carries the password (base64).
        let mut plain =
            ovpn_core::config::Secret::with_capacity(c.username.len() + 1 + c.password.len());
        plain.push_str(&c.username);
        plain.push_str(":");
        plain.push_str(c.password.expose());
        let token = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(plain.expose()),
        );
        r.push_str("Proxy-Authorization: Basic ");
        r.push_str(&token);
        r.push_str("\r\n");
    }
    for (name, value) in &cfg.custom_headers {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    r.push_str("\r\n");
    Ok(r)
}

/// A parsed reply head: status code, reason, and the `Proxy-Authenticate` schemes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub code: u16,
    pub reason: String,
    pub auth_schemes: Vec<String>,
}

/// Parses a reply head (without the final empty line).
pub fn parse_http_reply(head: &[u8]) -> Result<HttpReply, ProxyError> {
    let text = std::str::from_utf8(head)
        .map_err(|_| ProxyError::HttpGarbage("the reply is not text".into()))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let shown = || status.chars().take(80).collect::<String>();
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ProxyError::HttpGarbage(format!(
            "status line {:?}",
            shown()
        )));
    }
    let code = parts
        .next()
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| ProxyError::HttpGarbage(format!("status line {:?}", shown())))?;
    let reason = parts.next().unwrap_or_default().trim().to_owned();
    let mut auth_schemes = Vec::new();
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            if l.is_empty() {
                continue;
            }
            return Err(ProxyError::HttpGarbage(format!(
                "header line {:?}",
                l.chars().take(80).collect::<String>()
            )));
        };
        if name.trim().eq_ignore_ascii_case("proxy-authenticate") {
            if let Some(scheme) = value.split_whitespace().next() {
                auth_schemes.push(scheme.to_owned());
            }
        }
    }
    Ok(HttpReply {
        code,
        reason,
        auth_schemes,
    })
}

/// Reads the reply head byte by byte: nothing after the empty line is consumed (the
/// bytes after it belong to the tunnel).
async fn read_http_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, ProxyError> {
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    loop {
        let n = s
            .read(&mut b)
            .await
            .map_err(io_err("HTTP", "while it answered CONNECT"))?;
        if n == 0 {
            return Err(ProxyError::Closed {
                proxy: "HTTP",
                during: if head.is_empty() {
                    "before answering CONNECT"
                } else {
                    "in the middle of its answer to CONNECT"
                },
            });
        }
        head.push(b[0]);
        if head.ends_with(b"\r\n\r\n") {
            head.truncate(head.len() - 4);
            return Ok(head);
        }
        if head.len() > MAX_HTTP_HEAD {
            return Err(ProxyError::HttpGarbage(format!(
                "no end of the reply head within {MAX_HTTP_HEAD} bytes"
            )));
        }
    }
}

/// One `CONNECT` exchange on `s`. `Ok(None)`: the tunnel is open. `Ok(Some(reply))`: a
/// 407 (the caller decides whether to retry with credentials).
pub async fn http_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    port: u16,
    cfg: &HttpProxyConfig,
    creds: Option<&ProxyCredentials>,
) -> Result<Option<HttpReply>, ProxyError> {
    let req = http_request(host, port, cfg, creds)?;
    s.write_all(req.expose().as_bytes())
        .await
        .map_err(io_err("HTTP", "while sending CONNECT"))?;
    let head = read_http_head(s).await?;
    let reply = parse_http_reply(&head)?;
    match reply.code {
        200..=299 => Ok(None),
        407 => Ok(Some(reply)),
        code => Err(ProxyError::HttpStatus {
            code,
            reason: reply.reason,
        }),
    }
}

/// Opens a `CONNECT` tunnel to `host:port`. `dial` opens a new TCP connection to the
/// proxy; it is called again when `auto` authentication must answer a 407 (proxies
/// usually close the connection after it).
pub async fn http_connect<D, F, E>(
    mut dial: D,
    host: &str,
    port: u16,
    cfg: &HttpProxyConfig,
    creds: Option<&ProxyCredentials>,
    timeout: Duration,
) -> Result<TcpStream, E>
where
    D: FnMut() -> F,
    F: Future<Output = Result<TcpStream, E>>,
    E: From<ProxyError>,
{
    let first_creds = match cfg.auth {
        HttpAuth::Basic => match creds {
            Some(c) => Some(c),
            None => return Err(ProxyError::HttpAuthRequired.into()),
        },
        HttpAuth::None | HttpAuth::Auto => None,
    };
    let mut s = dial().await?;
    let r = timed(
        "HTTP",
        timeout,
        http_exchange(&mut s, host, port, cfg, first_creds),
    )
    .await?;
    let Some(reply) = r else { return Ok(s) };
    if first_creds.is_some() {
        return Err(ProxyError::HttpAuthRejected.into());
    }
    if cfg.auth != HttpAuth::Auto {
        return Err(ProxyError::HttpAuthRequired.into());
    }
    if !reply.auth_schemes.is_empty()
        && !reply
            .auth_schemes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("basic"))
    {
        return Err(ProxyError::HttpAuthScheme(reply.auth_schemes.join(", ")).into());
    }
    let Some(c) = creds else {
        return Err(ProxyError::HttpAuthRequired.into());
    };
    drop(s);
    let mut s = dial().await?;
    match timed(
        "HTTP",
        timeout,
        http_exchange(&mut s, host, port, cfg, Some(c)),
    )
    .await?
    {
        None => Ok(s),
        Some(_) => Err(ProxyError::HttpAuthRejected.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{creds, fake, T};
    use super::*;
    use std::net::SocketAddr;

    fn cfg(auth: HttpAuth) -> HttpProxyConfig {
        HttpProxyConfig {
            auth,
            version: "1.0".into(),
            agent: None,
            custom_headers: Vec::new(),
        }
    }

    async fn read_head(s: &mut TcpStream) -> String {
        String::from_utf8(read_http_head(s).await.unwrap()).unwrap()
    }

    async fn dial_ok(addr: SocketAddr) -> Result<TcpStream, ProxyError> {
        TcpStream::connect(addr)
            .await
            .map_err(io_err("HTTP", "while connecting"))
    }

    #[test]
    fn request_carries_basic_auth_version_agent_and_headers() {
        let c = HttpProxyConfig {
            auth: HttpAuth::Basic,
            version: "1.1".into(),
            agent: Some("OxiVPN".into()),
            custom_headers: vec![("X-Test".into(), "a b".into())],
        };
        let r = http_request("vpn.example", 443, &c, Some(&creds())).unwrap();
        assert_eq!(
            r.expose(),
            "CONNECT vpn.example:443 HTTP/1.1\r\nHost: vpn.example:443\r\nUser-Agent: OxiVPN\r\n\
             Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\nX-Test: a b\r\n\r\n"
        );
        let r6 = http_request("2001:db8::1", 1194, &cfg(HttpAuth::None), None).unwrap();
        assert!(r6
            .expose()
            .starts_with("CONNECT [2001:db8::1]:1194 HTTP/1.0\r\n"));
        let bad = ProxyCredentials {
            username: "a\r\nX: y".into(),
            password: "p".into(),
        };
        assert!(matches!(
            http_request("h", 1, &cfg(HttpAuth::Basic), Some(&bad)),
            Err(ProxyError::BadCredentials)
        ));
    }

    #[test]
    fn reply_parser_names_what_is_wrong() {
        let r = parse_http_reply(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"",
        )
        .unwrap();
        assert_eq!(r.code, 407);
        assert_eq!(r.auth_schemes, vec!["Basic".to_string()]);
        let e = parse_http_reply(b"SSH-2.0-OpenSSH_9.6").unwrap_err();
        assert!(e.to_string().contains("not HTTP"), "{e}");
        assert!(parse_http_reply(b"HTTP/1.1 2000 OK").is_err());
        assert!(parse_http_reply(b"HTTP/1.0 200 OK\r\nno colon here").is_err());
    }

    #[tokio::test]
    async fn connect_sends_credentials_and_returns_the_open_tunnel() {
        let addr = fake(|mut s, _| async move {
            let head = read_head(&mut s).await;
            assert!(head.contains("Proxy-Authorization: Basic YWxpY2U6czNjcmV0"));
            s.write_all(b"HTTP/1.0 200 Connection established\r\n\r\n")
                .await
                .unwrap();
            // Tunnel bytes right behind the reply must reach the caller.
            s.write_all(b"tunnel").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
        let mut s = http_connect(
            || dial_ok(addr),
            "vpn",
            1194,
            &cfg(HttpAuth::Basic),
            Some(&creds()),
            T,
        )
        .await
        .unwrap();
        let mut b = [0u8; 6];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"tunnel");
    }

    #[tokio::test]
    async fn auto_answers_a_407_on_a_new_connection() {
        let addr = fake(|mut s, n| async move {
            let head = read_head(&mut s).await;
            if n % 2 == 0 {
                assert!(!head.contains("Proxy-Authorization"));
                s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"lab\"\r\nContent-Length: 0\r\n\r\n").await.unwrap();
            } else {
                assert!(head.contains("Proxy-Authorization: Basic"));
                s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        http_connect(
            || dial_ok(addr),
            "vpn",
            1194,
            &cfg(HttpAuth::Auto),
            Some(&creds()),
            T,
        )
        .await
        .unwrap();
        // Without credentials the 407 becomes a clear error.
        let e = http_connect(|| dial_ok(addr), "vpn", 1194, &cfg(HttpAuth::Auto), None, T)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::HttpAuthRequired), "{e}");
    }

    #[tokio::test]
    async fn wrong_password_garbage_and_early_close_are_clear_errors() {
        let addr = fake(|mut s, _| async move {
            let _ = read_head(&mut s).await;
            let _ = s
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                .await;
        })
        .await;
        let e = http_connect(
            || dial_ok(addr),
            "vpn",
            1194,
            &cfg(HttpAuth::Basic),
            Some(&creds()),
            T,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ProxyError::HttpAuthRejected), "{e}");
        assert!(e.to_string().contains("user name or password"));

        let garbage = fake(|mut s, _| async move {
            let _ = read_head(&mut s).await;
            let _ = s.write_all(b"\x16\x03\x01 hello there\r\n\r\n").await;
        })
        .await;
        let e = http_connect(
            || dial_ok(garbage),
            "vpn",
            1194,
            &cfg(HttpAuth::None),
            None,
            T,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ProxyError::HttpGarbage(_)), "{e}");

        let closes = fake(|mut s, _| async move {
            let _ = read_head(&mut s).await;
            let _ = s.write_all(b"HTTP/1.1 200").await;
        })
        .await;
        let e = http_connect(
            || dial_ok(closes),
            "vpn",
            1194,
            &cfg(HttpAuth::None),
            None,
            T,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("closed the connection in the middle"),
            "{e}"
        );

        let refused = fake(|mut s, _| async move {
            let _ = read_head(&mut s).await;
            let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        })
        .await;
        let e = http_connect(
            || dial_ok(refused),
            "vpn",
            1194,
            &cfg(HttpAuth::None),
            None,
            T,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the HTTP proxy refused to connect to the server: 403 Forbidden"
        );

        let silent = fake(|s, _| async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(s);
        })
        .await;
        let e = http_connect(
            || dial_ok(silent),
            "vpn",
            1194,
            &cfg(HttpAuth::None),
            None,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ProxyError::Timeout { .. }), "{e}");
    }
}
