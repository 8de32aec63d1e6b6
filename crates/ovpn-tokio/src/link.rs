//! The link to the server: name resolution and a UDP or TCP socket.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};

/// Which address families a profile's `proto` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    pub fn of(proto: ovpn_profile::Proto) -> Self {
        use ovpn_profile::Proto::*;
        match proto {
            Udp | Tcp => Family::Any,
            Udp4 | Tcp4 => Family::V4,
            Udp6 | Tcp6 => Family::V6,
        }
    }

    fn allows(self, a: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        }
    }
}

/// Errors setting up the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve {host:?}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host:?} has no {family:?} address")]
    NoAddress { host: String, family: Family },
    #[error("cannot open a socket to {addr}")]
    Socket {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("TCP connection to {addr} failed")]
    TcpConnect {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("TCP connection to {addr} timed out after {secs} s")]
    TcpTimeout { addr: SocketAddr, secs: u64 },
}

/// Resolves `host` (a name or an address literal) to the addresses `family` allows,
/// in resolver order.
pub async fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>, LinkError> {
    // Literal IPv6 addresses may come bracketed.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|source| LinkError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .filter(|a| family.allows(a))
        .collect();
    if addrs.is_empty() {
        return Err(LinkError::NoAddress {
            host: host.to_owned(),
            family,
        });
    }
    Ok(addrs)
}

/// A connected socket to the server.
#[derive(Debug)]
pub enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
    /// UDP through a SOCKS5 proxy's relay (`socks-proxy` with a UDP remote): each
    /// datagram carries the RFC 1928 §7 `header`; `control` is the TCP connection that
    /// keeps the association alive (the link ends when the proxy closes it).
    SocksUdp {
        /// Connected to the relay address from `UDP ASSOCIATE`.
        sock: UdpSocket,
        control: TcpStream,
        header: Vec<u8>,
    },
}

impl Link {
    /// A UDP socket connected to `addr` (so only the server's datagrams arrive).
    pub async fn udp(addr: SocketAddr) -> Result<Self, LinkError> {
        let err = |source| LinkError::Socket { addr, source };
        let local: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let s = UdpSocket::bind(local).await.map_err(err)?;
        s.connect(addr).await.map_err(err)?;
        Ok(Link::Udp(s))
    }

    /// A TCP connection to `addr` with `TCP_NODELAY` set (and `TCP_QUICKACK` on Linux;
    /// the driver keeps re-arming it until the tunnel is up).
    pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<Self, LinkError> {
        let s = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(LinkError::TcpTimeout {
                    addr,
                    secs: timeout.as_secs(),
                })
            }
            Ok(r) => r.map_err(|source| LinkError::TcpConnect { addr, source })?,
        };
        s.set_nodelay(true)
            .map_err(|source| LinkError::Socket { addr, source })?;
        quickack(&s);
        Ok(Link::Tcp(s))
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self, Link::Tcp(_))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Link::Udp(s) => s.peer_addr(),
            Link::Tcp(s) => s.peer_addr(),
            Link::SocksUdp { sock, .. } => sock.peer_addr(),
        }
    }
}

/// Linux: ACK the server's segments at once instead of delaying the ACK (up to 40 ms)
/// in the hope of piggybacking it. During the handshake the server sends its TLS
/// records in several segments, and a server without `tcp-nodelay` (Nagle) holds
/// each next one until that ACK arrives: delayed ACKs alone cost tens of ms per
/// round trip. A failure only costs speed, so it is ignored.
pub(crate) fn quickack(s: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket fd, a c_int option value of the size passed.
        #[allow(unsafe_code)]
        let _ = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                std::ptr::addr_of!(on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = s;
}
