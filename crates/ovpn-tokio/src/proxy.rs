//! Reaching the server through a proxy, as OpenVPN's `http-proxy` and `socks-proxy` do:
//! an HTTP `CONNECT` tunnel (Basic authentication, RFC 7617) and SOCKS5 (RFC 1928) with
//! user name/password (RFC 1929): `CONNECT` for TCP, `UDP ASSOCIATE` plus the §7
//! encapsulation header for UDP.
//!
//! The caller opens the TCP connection to the proxy (the helper marks its sockets for
//! the kill switch) and hands it in; the handshakes here only read and write it. Replies
//! are read through bounds-checked parsers that name what was wrong, never indexing
//! blindly; a proxy that closes early or answers garbage gives a [`ProxyError`].

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest HTTP reply head (status line plus headers) we read.
const MAX_HTTP_HEAD: usize = 16 * 1024;

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

/// Host part of `host:port` in a request line: IPv6 literals in brackets.
fn authority(host: &str, port: u16) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
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

// ---------------------------------------------------------------------------------------
// HTTP CONNECT

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

// ---------------------------------------------------------------------------------------
// SOCKS5

const SOCKS_VERSION: u8 = 5;
const METHOD_NONE: u8 = 0;
const METHOD_USERPASS: u8 = 2;
const METHOD_REFUSED: u8 = 0xff;
const CMD_CONNECT: u8 = 1;
const CMD_UDP_ASSOCIATE: u8 = 3;
const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// RFC 1928 §6 reply codes.
fn socks_reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

/// The address part (ATYP, address, port) for `host:port`: an IP literal as such,
/// anything else as a name the proxy resolves.
pub fn socks_address(host: &str, port: u16) -> Result<Vec<u8>, ProxyError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let mut v = Vec::with_capacity(4 + bare.len() + 2);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            v.push(ATYP_V4);
            v.extend_from_slice(&a.octets());
        }
        Ok(IpAddr::V6(a)) => {
            v.push(ATYP_V6);
            v.extend_from_slice(&a.octets());
        }
        Err(_) => {
            let len = u8::try_from(bare.len())
                .map_err(|_| ProxyError::SocksNameTooLong(bare.to_owned()))?;
            v.push(ATYP_NAME);
            v.push(len);
            v.extend_from_slice(bare.as_bytes());
        }
    }
    v.extend_from_slice(&port.to_be_bytes());
    Ok(v)
}

/// A bounds-checked reader over a received buffer.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.at..).unwrap_or_default()
    }
}

/// A SOCKS address as the proxy sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksAddr {
    Ip(SocketAddr),
    Name(String, u16),
}

fn read_addr(r: &mut Reader<'_>) -> Option<SocksAddr> {
    let atyp = r.u8()?;
    Some(match atyp {
        ATYP_V4 => {
            let b = r.take(4)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            SocksAddr::Ip(SocketAddr::new(ip.into(), r.u16()?))
        }
        ATYP_V6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(r.take(16)?);
            SocksAddr::Ip(SocketAddr::new(Ipv6Addr::from(o).into(), r.u16()?))
        }
        ATYP_NAME => {
            let len = r.u8()?;
            let name = String::from_utf8_lossy(r.take(usize::from(len))?).into_owned();
            SocksAddr::Name(name, r.u16()?)
        }
        _ => return None,
    })
}

async fn read_exact<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
    during: &'static str,
) -> Result<(), ProxyError> {
    s.read_exact(buf)
        .await
        .map(|_| ())
        .map_err(io_err("SOCKS", during))
}

/// Method negotiation and, when the proxy picks it, RFC 1929 authentication.
async fn socks_greet<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    creds: Option<&ProxyCredentials>,
) -> Result<(), ProxyError> {
    let hello: &[u8] = if creds.is_some() {
        &[SOCKS_VERSION, 2, METHOD_NONE, METHOD_USERPASS]
    } else {
        &[SOCKS_VERSION, 1, METHOD_NONE]
    };
    s.write_all(hello)
        .await
        .map_err(io_err("SOCKS", "while greeting it"))?;
    let mut choice = [0u8; 2];
    read_exact(s, &mut choice, "before choosing an authentication method").await?;
    if choice[0] != SOCKS_VERSION {
        return Err(ProxyError::SocksGarbage(format!(
            "version byte {:#04x} in the method choice",
            choice[0]
        )));
    }
    match (choice[1], creds) {
        (METHOD_NONE, _) => Ok(()),
        (METHOD_USERPASS, Some(c)) => {
            let (u, p) = (c.username.as_bytes(), c.password.expose().as_bytes());
            let (Ok(ul), Ok(pl)) = (u8::try_from(u.len()), u8::try_from(p.len())) else {
                return Err(ProxyError::SocksCredentialsTooLong);
            };
            let mut msg = Vec::with_capacity(3 + u.len() + p.len());
            msg.push(1);
            msg.push(ul);
            msg.extend_from_slice(u);
            msg.push(pl);
            msg.extend_from_slice(p);
            let w = s.write_all(&msg).await;
            msg.fill(0);
            w.map_err(io_err("SOCKS", "while sending the user name and password"))?;
            let mut status = [0u8; 2];
            read_exact(s, &mut status, "while checking the user name and password").await?;
            if status[0] != 1 {
                return Err(ProxyError::SocksGarbage(format!(
                    "version byte {:#04x} in the authentication reply",
                    status[0]
                )));
            }
            if status[1] != 0 {
                return Err(ProxyError::SocksAuthRejected);
            }
            Ok(())
        }
        (METHOD_REFUSED, None) => Err(ProxyError::SocksAuthRequired),
        (METHOD_REFUSED, Some(_)) => Err(ProxyError::SocksNoMethod),
        (m, _) => Err(ProxyError::SocksGarbage(format!(
            "it chose method {m:#04x}, which was not offered"
        ))),
    }
}

/// One request (`cmd` to `addr`, encoded by [`socks_address`]); returns the bound address.
async fn socks_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cmd: u8,
    addr: &[u8],
) -> Result<SocksAddr, ProxyError> {
    let mut req = vec![SOCKS_VERSION, cmd, 0];
    req.extend_from_slice(addr);
    s.write_all(&req)
        .await
        .map_err(io_err("SOCKS", "while sending the request"))?;
    let mut head = [0u8; 4];
    read_exact(s, &mut head, "before answering the request").await?;
    if head[0] != SOCKS_VERSION || head[2] != 0 {
        return Err(ProxyError::SocksGarbage(format!(
            "reply header {:02x?}",
            head
        )));
    }
    if head[1] != 0 {
        return Err(ProxyError::SocksReply(socks_reply_text(head[1])));
    }
    // The bound address: its length depends on its type.
    let rest_len = match head[3] {
        ATYP_V4 => 4 + 2,
        ATYP_V6 => 16 + 2,
        ATYP_NAME => {
            let mut l = [0u8; 1];
            read_exact(s, &mut l, "in the middle of its reply").await?;
            let mut name = vec![0u8; usize::from(l[0]) + 2];
            read_exact(s, &mut name, "in the middle of its reply").await?;
            let mut all = vec![ATYP_NAME, l[0]];
            all.extend_from_slice(&name);
            return read_addr(&mut Reader::new(&all))
                .ok_or_else(|| ProxyError::SocksGarbage("bound address".into()));
        }
        t => {
            return Err(ProxyError::SocksGarbage(format!(
                "address type {t:#04x} in the reply"
            )))
        }
    };
    let mut rest = vec![0u8; rest_len];
    read_exact(s, &mut rest, "in the middle of its reply").await?;
    let mut all = vec![head[3]];
    all.extend_from_slice(&rest);
    read_addr(&mut Reader::new(&all))
        .ok_or_else(|| ProxyError::SocksGarbage("bound address".into()))
}

/// SOCKS5 `CONNECT` to `host:port` over `s` (a TCP connection to the proxy).
pub async fn socks_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    port: u16,
    creds: Option<&ProxyCredentials>,
    timeout: Duration,
) -> Result<(), ProxyError> {
    let addr = socks_address(host, port)?;
    timed("SOCKS", timeout, async {
        socks_greet(s, creds).await?;
        socks_request(s, CMD_CONNECT, &addr).await.map(|_| ())
    })
    .await
}

/// SOCKS5 `UDP ASSOCIATE` over `control` (a TCP connection to the proxy at `proxy`,
/// kept open for as long as the association is used). Returns the relay address to
/// send the encapsulated datagrams to.
pub async fn socks_udp_associate(
    control: &mut TcpStream,
    proxy: SocketAddr,
    creds: Option<&ProxyCredentials>,
    timeout: Duration,
) -> Result<SocketAddr, ProxyError> {
    // "0.0.0.0:0": we do not know our address as the proxy sees it (NAT).
    let unspecified = if proxy.is_ipv4() {
        socks_address("0.0.0.0", 0)?
    } else {
        socks_address("::", 0)?
    };
    let bound = timed("SOCKS", timeout, async {
        socks_greet(control, creds).await?;
        socks_request(control, CMD_UDP_ASSOCIATE, &unspecified).await
    })
    .await?;
    match bound {
        // An unspecified relay address means "the address you reached me at".
        SocksAddr::Ip(a) if a.ip().is_unspecified() => Ok(SocketAddr::new(proxy.ip(), a.port())),
        SocksAddr::Ip(a) => Ok(a),
        SocksAddr::Name(n, _) => Err(ProxyError::SocksGarbage(format!(
            "the UDP relay is named {n:?} instead of given by address"
        ))),
    }
}

/// The RFC 1928 §7 header for datagrams to `host:port` (RSV, FRAG 0, address).
pub fn udp_header(host: &str, port: u16) -> Result<Vec<u8>, ProxyError> {
    let mut h = vec![0, 0, 0];
    h.extend_from_slice(&socks_address(host, port)?);
    Ok(h)
}

/// Why a datagram from the relay was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdpRelayError {
    #[error("the datagram is too short for a SOCKS5 UDP header")]
    Truncated,
    #[error("the datagram is a fragment (FRAG {0}); fragments are not reassembled")]
    Fragment(u8),
    #[error("the datagram's reserved bytes are not zero")]
    Reserved,
}

/// The payload of a datagram from the relay, after its header (and the sender's address).
pub fn udp_payload(datagram: &[u8]) -> Result<(SocksAddr, &[u8]), UdpRelayError> {
    let mut r = Reader::new(datagram);
    let rsv = r.u16().ok_or(UdpRelayError::Truncated)?;
    if rsv != 0 {
        return Err(UdpRelayError::Reserved);
    }
    let frag = r.u8().ok_or(UdpRelayError::Truncated)?;
    if frag != 0 {
        return Err(UdpRelayError::Fragment(frag));
    }
    let from = read_addr(&mut r).ok_or(UdpRelayError::Truncated)?;
    Ok((from, r.rest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

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

    fn creds() -> ProxyCredentials {
        ProxyCredentials {
            username: "alice".into(),
            password: "s3cret".into(),
        }
    }

    fn cfg(auth: HttpAuth) -> HttpProxyConfig {
        HttpProxyConfig {
            auth,
            version: "1.0".into(),
            agent: None,
            custom_headers: Vec::new(),
        }
    }

    /// A fake proxy: each accepted connection is handed to `serve` in turn.
    async fn fake<F, Fut>(serve: F) -> SocketAddr
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

    async fn read_head(s: &mut TcpStream) -> String {
        String::from_utf8(read_http_head(s).await.unwrap()).unwrap()
    }

    async fn dial_ok(addr: SocketAddr) -> Result<TcpStream, ProxyError> {
        TcpStream::connect(addr)
            .await
            .map_err(io_err("HTTP", "while connecting"))
    }

    const T: Duration = Duration::from_secs(5);

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

    /// A SOCKS5 server following the RFCs, checking alice/s3cret; `reply` is the
    /// request's reply code.
    async fn socks_fake(require_auth: bool, reply: u8) -> SocketAddr {
        fake(move |mut s, _| async move {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).await.unwrap();
            let mut methods = vec![0u8; usize::from(h[1])];
            s.read_exact(&mut methods).await.unwrap();
            if require_auth {
                if !methods.contains(&2) {
                    s.write_all(&[5, 0xff]).await.unwrap();
                    return;
                }
                s.write_all(&[5, 2]).await.unwrap();
                let mut v = [0u8; 2];
                s.read_exact(&mut v).await.unwrap();
                let mut u = vec![0u8; usize::from(v[1])];
                s.read_exact(&mut u).await.unwrap();
                let mut pl = [0u8; 1];
                s.read_exact(&mut pl).await.unwrap();
                let mut p = vec![0u8; usize::from(pl[0])];
                s.read_exact(&mut p).await.unwrap();
                let ok = u == b"alice" && p == b"s3cret";
                s.write_all(&[1, if ok { 0 } else { 1 }]).await.unwrap();
                if !ok {
                    return;
                }
            } else {
                s.write_all(&[5, 0]).await.unwrap();
            }
            let mut req = [0u8; 4];
            s.read_exact(&mut req).await.unwrap();
            let alen = match req[3] {
                1 => 4,
                4 => 16,
                _ => {
                    let mut l = [0u8; 1];
                    s.read_exact(&mut l).await.unwrap();
                    usize::from(l[0])
                }
            };
            let mut rest = vec![0u8; alen + 2];
            s.read_exact(&mut rest).await.unwrap();
            // Bound address 0.0.0.0:4000 (the relay for UDP ASSOCIATE).
            s.write_all(&[5, reply, 0, 1, 0, 0, 0, 0, 0x0f, 0xa0])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        })
        .await
    }

    #[tokio::test]
    async fn socks_connect_and_associate_follow_the_rfcs() {
        let addr = socks_fake(true, 0).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        socks_connect(&mut s, "vpn.example", 1194, Some(&creds()), T)
            .await
            .unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let relay = socks_udp_associate(&mut c, addr, Some(&creds()), T)
            .await
            .unwrap();
        assert_eq!(relay, SocketAddr::new(addr.ip(), 4000));

        let open = socks_fake(false, 0).await;
        let mut s = TcpStream::connect(open).await.unwrap();
        socks_connect(&mut s, "10.0.0.1", 1194, None, T)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn socks_wrong_password_missing_credentials_refusal_and_garbage() {
        let addr = socks_fake(true, 0).await;
        let wrong = ProxyCredentials {
            username: "alice".into(),
            password: "nope".into(),
        };
        let mut s = TcpStream::connect(addr).await.unwrap();
        let e = socks_connect(&mut s, "vpn", 1194, Some(&wrong), T)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::SocksAuthRejected), "{e}");
        let mut s = TcpStream::connect(addr).await.unwrap();
        let e = socks_connect(&mut s, "vpn", 1194, None, T)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::SocksAuthRequired), "{e}");

        let refuses = socks_fake(false, 5).await;
        let mut s = TcpStream::connect(refuses).await.unwrap();
        let e = socks_connect(&mut s, "vpn", 1194, None, T)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the SOCKS proxy refused the request: connection refused"
        );

        let http = fake(|mut s, _| async move {
            let mut b = [0u8; 3];
            let _ = s.read_exact(&mut b).await;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        })
        .await;
        let mut s = TcpStream::connect(http).await.unwrap();
        let e = socks_connect(&mut s, "vpn", 1194, None, T)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::SocksGarbage(_)), "{e}");

        let closes = fake(|mut s, _| async move {
            let mut b = [0u8; 3];
            let _ = s.read_exact(&mut b).await;
            let _ = s.write_all(&[5]).await;
        })
        .await;
        let mut s = TcpStream::connect(closes).await.unwrap();
        let e = socks_connect(&mut s, "vpn", 1194, None, T)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::Closed { .. }), "{e}");
    }

    #[test]
    fn udp_header_round_trips_and_bad_datagrams_are_named() {
        let h = udp_header("192.0.2.7", 1194).unwrap();
        assert_eq!(h, [0, 0, 0, 1, 192, 0, 2, 7, 0x04, 0xaa]);
        let mut d = h.clone();
        d.extend_from_slice(b"payload");
        let (from, p) = udp_payload(&d).unwrap();
        assert_eq!(from, SocksAddr::Ip("192.0.2.7:1194".parse().unwrap()));
        assert_eq!(p, b"payload");
        let named = udp_header("vpn.example", 443).unwrap();
        assert_eq!(&named[..5], &[0, 0, 0, 3, 11]);
        assert_eq!(udp_payload(&named).unwrap().1, b"");
        assert_eq!(udp_payload(&d[..6]), Err(UdpRelayError::Truncated));
        let mut frag = d.clone();
        frag[2] = 1;
        assert_eq!(udp_payload(&frag), Err(UdpRelayError::Fragment(1)));
        let mut rsv = d;
        rsv[0] = 1;
        assert_eq!(udp_payload(&rsv), Err(UdpRelayError::Reserved));
        assert!(udp_header(&"x".repeat(300), 1).is_err());
    }
}
