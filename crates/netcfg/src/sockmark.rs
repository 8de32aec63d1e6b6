//! The mark on the tunnel's own socket. The server's address is reachable around the tunnel
//! (host route via the old gateway), so without it ANY program could send plain traffic to
//! that address and port — and an attacker who spoofs the server name's DNS answer chooses
//! that address (TunnelCrack ServerIP, CVE-2023-36673). With the mark, the kill switch
//! ([`crate::FirewallPolicy::endpoint_mark`]) lets only the tunnel's socket use the exception.

/// Linux `SO_MARK` value of the tunnel socket ("oxvp"); no routing rule uses it.
pub const TUNNEL_SOCKET_MARK: u32 = 0x6f78_7670;

/// Sets `SO_MARK` on `socket` (needs CAP_NET_ADMIN; the helper runs as root). Call it
/// before the socket sends anything (for TCP: before `connect`).
#[cfg(target_os = "linux")]
pub fn mark_socket(socket: std::os::fd::BorrowedFd<'_>, mark: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::socklen_t::try_from(std::mem::size_of::<u32>()).unwrap_or(4);
    // SAFETY: the fd is borrowed (valid for the call); setsockopt reads `len` bytes from a
    // live u32 and keeps no pointer.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&raw const mark).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The mark `socket` carries (Linux `SO_MARK`).
#[cfg(target_os = "linux")]
pub fn socket_mark(socket: std::os::fd::BorrowedFd<'_>) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut mark: u32 = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<u32>()).unwrap_or(4);
    // SAFETY: getsockopt writes at most `len` bytes into a live u32 and updates `len`.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&raw mut mark).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(mark)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn mark_round_trips_as_root_and_is_refused_otherwise() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = mark_socket(s.as_fd(), TUNNEL_SOCKET_MARK);
        if nix_is_root() {
            r.unwrap();
            assert_eq!(socket_mark(s.as_fd()).unwrap(), TUNNEL_SOCKET_MARK);
        } else {
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EPERM));
        }
    }

    fn nix_is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        #[allow(unsafe_code)]
        unsafe {
            libc::geteuid() == 0
        }
    }
}
