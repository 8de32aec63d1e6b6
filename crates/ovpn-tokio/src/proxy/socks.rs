//! SOCKS5 (RFC 1928) with user name/password (RFC 1929): `CONNECT` for TCP, `UDP
//! ASSOCIATE` plus the §7 encapsulation header for UDP, as OpenVPN's `socks-proxy` does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{io_err, timed, ProxyCredentials, ProxyError};

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
    use super::super::tests::{creds, fake, T};
    use super::*;

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
