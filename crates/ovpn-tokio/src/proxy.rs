//! Reaching the server through a proxy, as OpenVPN's `http-proxy` and `socks-proxy` do:
//! an HTTP `CONNECT` tunnel (Basic authentication, RFC 7617) and SOCKS5 (RFC 1928) with
//! user name/password (RFC 1929): `CONNECT` for TCP, `UDP ASSOCIATE` plus the §7
//! encapsulation header for UDP.
//!
//! The caller opens the TCP connection to the proxy (the helper marks its sockets for
//! the kill switch) and hands it in; the handshakes here only read and write it. Replies
//! are read through bounds-checked parsers that name what was wrong, never indexing
//! blindly; a proxy that closes early or answers garbage gives a [`ProxyError`].
//!
//! `http` holds the HTTP side, `socks` the SOCKS5 side; what both share (credentials,
//! errors, the timeout) is here.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

mod http;
mod socks;

pub use http::{
    http_connect, http_exchange, http_request, parse_http_reply, HttpAuth, HttpProxyConfig,
    HttpReply,
};
pub use socks::{
    socks_address, socks_connect, socks_udp_associate, udp_header, udp_payload, SocksAddr,
    UdpRelayError,
};

/// User name and password for the proxy. Debug never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    pub username: String,
    pub password: ovpn_core::config::Secret,
}

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why the proxy did not give us a connection to the server.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the {proxy} proxy closed the connection {during}")]
    Closed {
        proxy: &'static str,
        during: &'static str,
    },
    #[error("reading from or writing to the {proxy} proxy failed {during}")]
    Io {
        proxy: &'static str,
        during: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the {proxy} proxy did not answer within {secs} s")]
    Timeout { proxy: &'static str, secs: u64 },
    #[error("the HTTP proxy answered something that is not HTTP: {0}")]
    HttpGarbage(String),
    #[error("the HTTP proxy refused to connect to the server: {code} {reason}")]
    HttpStatus { code: u16, reason: String },
    #[error("the HTTP proxy asks for a user name and password (407), and none was given")]
    HttpAuthRequired,
    #[error("the HTTP proxy refused the proxy user name or password (407 Proxy Authentication Required)")]
    HttpAuthRejected,
    #[error("the HTTP proxy wants {0} authentication; OxiVPN speaks only Basic")]
    HttpAuthScheme(String),
    #[error("the SOCKS proxy answered something that is not SOCKS5: {0}")]
    SocksGarbage(String),
    #[error("the SOCKS proxy asks for a user name and password, and none was given")]
    SocksAuthRequired,
    #[error("the SOCKS proxy accepts none of the offered authentication methods (no authentication, user name/password)")]
    SocksNoMethod,
    #[error("the SOCKS proxy refused the proxy user name or password")]
    SocksAuthRejected,
    #[error("the SOCKS proxy refused the request: {0}")]
    SocksReply(&'static str),
    #[error("the proxy user name or password is longer than 255 bytes (SOCKS5 limit)")]
    SocksCredentialsTooLong,
    #[error("the server name {0:?} is longer than 255 bytes (SOCKS5 limit)")]
    SocksNameTooLong(String),
    #[error("the proxy user name or password contains a line break or a NUL byte")]
    BadCredentials,
    #[error("an HTTP proxy carries only TCP, and this server is reached over UDP (use `proto tcp-client`)")]
    HttpNeedsTcp,
}

impl ProxyError {
    /// Retrying as is cannot help: the user must supply (other) proxy credentials, or
    /// the profile asks for something the proxy cannot carry.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProxyError::HttpAuthRequired
                | ProxyError::HttpAuthRejected
                | ProxyError::HttpAuthScheme(_)
                | ProxyError::SocksAuthRequired
                | ProxyError::SocksAuthRejected
                | ProxyError::SocksNoMethod
                | ProxyError::BadCredentials
                | ProxyError::HttpNeedsTcp
        )
    }
}

fn io_err(proxy: &'static str, during: &'static str) -> impl FnOnce(io::Error) -> ProxyError {
    move |source| {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            ProxyError::Closed { proxy, during }
        } else {
            ProxyError::Io {
                proxy,
                during,
                source,
            }
        }
    }
}

/// Runs `fut` with the handshake timeout.
async fn timed<T>(
    proxy: &'static str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ProxyError::Timeout {
            proxy,
            secs: timeout.as_secs(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::net::{TcpListener, TcpStream};

    /// The app reads a session's end by these words (src-tauri's
    /// `controller/proxy.rs::proxy_auth_failure`) to ask for the proxy password again:
    /// keep them, or change both together.
    #[test]
    fn auth_refusals_keep_the_words_the_app_reads() {
        for e in [ProxyError::HttpAuthRejected, ProxyError::SocksAuthRejected] {
            assert!(
                e.to_string()
                    .contains("refused the proxy user name or password"),
                "{e}"
            );
            assert!(e.is_fatal());
        }
        for e in [ProxyError::HttpAuthRequired, ProxyError::SocksAuthRequired] {
            assert!(
                e.to_string()
                    .contains("proxy asks for a user name and password"),
                "{e}"
            );
            assert!(e.is_fatal());
        }
    }

    pub(super) fn creds() -> ProxyCredentials {
        ProxyCredentials {
            username: "alice".into(),
            password: "s3cret".into(),
        }
    }

    /// A fake proxy: each accepted connection is handed to `serve` in turn.
    pub(super) async fn fake<F, Fut>(serve: F) -> SocketAddr
    where
        F: Fn(TcpStream, usize) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((s, _)) = l.accept().await {
                serve(s, n).await;
                n += 1;
            }
        });
        addr
    }

    pub(super) const T: Duration = Duration::from_secs(5);
}
