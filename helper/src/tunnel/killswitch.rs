//! The kill switch as the tunnel uses it: one [`Firewall`] shared by all attempts of a
//! connection (so a reconnect never opens a gap), applied before the first packet to the
//! server and again once the TUN exists. Removing it is the CALLER's decision (deliberate
//! disconnect, giving up); a crashed helper leaves it on and recovers it at the next start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use netcfg::firewall::{self, Endpoint, Firewall, FirewallOptions, FirewallPolicy, Transport};
use ovpn_tokio::{Family, Link, LinkError};

/// Packets to the servers must carry the tunnel socket's mark (Linux): only the tunnel may
/// use the server exception, so a spoofed server address (TunnelCrack ServerIP) gets
/// nothing but the tunnel's own encrypted packets.
const ENDPOINT_MARK: Option<u32> = if cfg!(target_os = "linux") {
    Some(netcfg::sockmark::TUNNEL_SOCKET_MARK)
} else {
    None
};

/// Leak protection for one connection (shared across its attempts).
#[derive(Debug, Clone)]
pub struct KillSwitch {
    pub opts: FirewallOptions,
    /// Let traffic to the directly attached subnets through (never DNS).
    pub allow_lan: bool,
    fw: Arc<Mutex<Option<Firewall>>>,
    /// What this connection's remotes resolved to: reused when a reconnect cannot
    /// resolve because the kill switch blocks DNS outside the tunnel.
    resolved: Arc<Mutex<BTreeMap<String, Vec<SocketAddr>>>>,
}

fn resolve_key(host: &str, port: u16, family: Family) -> String {
    format!("{host}|{port}|{family:?}")
}

/// The firewall journal that belongs to a network journal: one per journal, so helpers
/// running in parallel (tests, several network namespaces) never share it.
pub fn journal_for(net_journal: &Path) -> PathBuf {
    let mut s = net_journal.as_os_str().to_owned();
    s.push(".firewall.json");
    PathBuf::from(s)
}

impl KillSwitch {
    /// A kill switch whose firewall journal sits next to `net_journal`; `leftover` is what
    /// [`Firewall::recover`] handed back (kept on until the first apply replaces it).
    pub fn new(net_journal: &Path, allow_lan: bool, leftover: Option<Firewall>) -> Self {
        Self {
            opts: FirewallOptions {
                journal_path: journal_for(net_journal),
                ..FirewallOptions::default()
            },
            allow_lan,
            fw: Arc::new(Mutex::new(leftover)),
            resolved: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Records what `host`:`port` resolved to (for [`KillSwitch::resolved_before`]).
    pub fn remember(&self, host: &str, port: u16, family: Family, addrs: &[SocketAddr]) {
        let mut m = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(resolve_key(host, port, family), addrs.to_vec());
    }

    /// The addresses `host`:`port` resolved to earlier in this connection, if any.
    pub fn resolved_before(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> Option<Vec<SocketAddr>> {
        let m = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&resolve_key(host, port, family))
            .filter(|a| !a.is_empty())
            .cloned()
    }

    /// Replaces the rules: only `servers` (and, once it exists, `tun`) may be reached.
    pub async fn apply(
        &self,
        servers: &[(SocketAddr, bool)],
        tun: Option<(&str, u32)>,
        tunnel_ipv6: bool,
    ) -> Result<(), String> {
        self.apply_endpoints(servers, tun, tunnel_ipv6, ENDPOINT_MARK)
            .await
    }

    /// Before the tunnel is up: `servers` plus `extra` (the browser sign-in's host, see
    /// `tunnel/sso.rs`), reachable from any socket while the server waits for the
    /// sign-in. The next [`apply`](Self::apply) takes the exception back.
    pub async fn apply_with_exception(
        &self,
        servers: &[(SocketAddr, bool)],
        extra: &[(SocketAddr, bool)],
    ) -> Result<(), String> {
        let all: Vec<(SocketAddr, bool)> = servers.iter().chain(extra).copied().collect();
        // The browser's sockets carry no mark: the window's rules cannot ask for one.
        self.apply_endpoints(&all, None, false, None).await
    }

    async fn apply_endpoints(
        &self,
        servers: &[(SocketAddr, bool)],
        tun: Option<(&str, u32)>,
        tunnel_ipv6: bool,
        endpoint_mark: Option<u32>,
    ) -> Result<(), String> {
        let mut endpoints: Vec<Endpoint> = servers
            .iter()
            .map(|(a, tcp)| Endpoint {
                addr: a.ip(),
                port: a.port(),
                transport: if *tcp { Transport::Tcp } else { Transport::Udp },
            })
            .collect();
        endpoints.dedup();
        let tun_name = tun.map(|(n, _)| n.to_owned());
        let exclude: Vec<u32> = tun.map(|(_, i)| i).into_iter().collect();
        let this = self.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<(), netcfg::Error> {
            // Only the LAN toggle reads the LAN's prefixes; without it the rules need none,
            // and reading the links and addresses is a netlink round trip on the connect's
            // critical path (after PUSH_REPLY, before the routes).
            let lan_prefixes = if this.allow_lan {
                firewall::lan_prefixes(&exclude)?
            } else {
                Vec::new()
            };
            let policy = FirewallPolicy {
                endpoints,
                tunnel_iface: tun_name,
                allow_lan: this.allow_lan,
                lan_prefixes,
                tunnel_ipv6,
                endpoint_mark,
            };
            let mut guard = this.fw.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(Firewall::new(&this.opts)?);
            }
            match guard.as_mut() {
                Some(fw) => fw.apply(&policy)?,
                None => return Ok(()),
            }
            // Our rules are in: the lockdown's block-all (it would stop the server too)
            // may go now, not earlier. Done under our lock, so a removal cannot cross it.
            if let Some(l) = crate::service::lockdown::active() {
                l.session_guarded().map_err(|e| netcfg::Error::Firewall {
                    what: e,
                    source: std::io::Error::other("lockdown hand-over"),
                })?;
            }
            Ok(())
        })
        .await;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("kill switch: {e}")),
            Err(e) => Err(format!("kill switch task failed: {e}")),
        }
    }

    /// Deliberate disconnect: traffic flows again.
    pub async fn remove(&self) -> Result<(), String> {
        let this = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut guard = this.fw.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                return Ok(());
            }
            // Lockdown: its block-all goes in BEFORE our rules go out; if it cannot,
            // our rules stay (blocked rather than open).
            if let Some(l) = crate::service::lockdown::active() {
                l.session_released().map_err(|e| netcfg::Error::Firewall {
                    what: e,
                    source: std::io::Error::other("lockdown hand-back"),
                })?;
            }
            match guard.take() {
                Some(mut fw) => fw.remove(),
                None => Ok(()),
            }
        })
        .await;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("removing the kill switch: {e}")),
            Err(e) => Err(format!("kill switch task failed: {e}")),
        }
    }
}

/// The tunnel's UDP socket to `addr`, marked (see [`ENDPOINT_MARK`]) before it sends.
pub async fn udp_link(addr: SocketAddr) -> Result<Link, LinkError> {
    udp_socket(addr).await.map(Link::Udp)
}

/// [`udp_link`]'s socket itself (for a SOCKS5 relay).
pub async fn udp_socket(addr: SocketAddr) -> Result<tokio::net::UdpSocket, LinkError> {
    let err = |source| LinkError::Socket { addr, source };
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = tokio::net::UdpSocket::bind(local).await.map_err(err)?;
    mark(&s).map_err(err)?;
    s.connect(addr).await.map_err(err)?;
    Ok(s)
}

/// The tunnel's TCP connection to `addr` (`TCP_NODELAY`), marked before the SYN.
pub async fn tcp_link(addr: SocketAddr, timeout: std::time::Duration) -> Result<Link, LinkError> {
    tcp_stream(addr, timeout).await.map(Link::Tcp)
}

/// [`tcp_link`]'s stream itself (a proxy handshake runs on it first).
pub async fn tcp_stream(
    addr: SocketAddr,
    timeout: std::time::Duration,
) -> Result<tokio::net::TcpStream, LinkError> {
    let err = |source| LinkError::Socket { addr, source };
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(err)?;
    mark(&sock).map_err(err)?;
    let s = match tokio::time::timeout(timeout, sock.connect(addr)).await {
        Err(_) => {
            return Err(LinkError::TcpTimeout {
                addr,
                secs: timeout.as_secs(),
            })
        }
        Ok(r) => r.map_err(|source| LinkError::TcpConnect { addr, source })?,
    };
    s.set_nodelay(true).map_err(err)?;
    Ok(s)
}

#[cfg(target_os = "linux")]
fn mark(s: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    netcfg::sockmark::mark_socket(s.as_fd(), netcfg::sockmark::TUNNEL_SOCKET_MARK)
}

#[cfg(not(target_os = "linux"))]
fn mark<T>(_: &T) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn resolved_addresses_are_kept_per_host_port_and_family() {
        let ks = KillSwitch::new(Path::new("/tmp/x/j.json"), false, None);
        let a: SocketAddr = "198.18.0.1:1194".parse().unwrap();
        assert_eq!(ks.resolved_before("vpn.example", 1194, Family::Any), None);
        ks.remember("vpn.example", 1194, Family::Any, &[a]);
        let shared = ks.clone();
        assert_eq!(
            shared.resolved_before("vpn.example", 1194, Family::Any),
            Some(vec![a])
        );
        assert_eq!(
            shared.resolved_before("vpn.example", 1195, Family::Any),
            None
        );
        assert_eq!(
            shared.resolved_before("vpn.example", 1194, Family::V6),
            None
        );
    }

    #[test]
    fn firewall_journal_is_derived_from_the_network_journal() {
        let a = journal_for(Path::new("/tmp/x/connect-journal.json"));
        let b = journal_for(Path::new("/tmp/y/connect-journal.json"));
        assert_eq!(
            a,
            PathBuf::from("/tmp/x/connect-journal.json.firewall.json")
        );
        assert_ne!(a, b);
    }
}
