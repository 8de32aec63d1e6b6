//! A small synchronous rtnetlink client: one request, its answers until DONE or ACK.
//! Synchronous on purpose: undo must also run from `Drop` and at start-up without a runtime,
//! and every request here takes microseconds. The socket belongs to the network namespace
//! of the thread that opened it.

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::Error;

pub(crate) struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// How long one answer may take before we call the kernel unresponsive.
const RECV_TIMEOUT_SECS: libc::time_t = 5;

impl Netlink {
    pub(crate) fn open() -> Result<Self, Error> {
        let op = |e| Error::netlink("open a netlink socket", e);
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(op)?;
        sock.bind_auto().map_err(op)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(op)?;
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT_SECS,
            tv_usec: 0,
        };
        // SAFETY: valid fd, pointer to a live timeval of the size passed.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(op(io::Error::last_os_error()));
        }
        Ok(Self {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends `msg` with `flags` (plus REQUEST and ACK) and collects every answer message.
    /// An error answer becomes `Err` with the kernel's errno as the `io::Error`.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0)?;

        // A dump ends with DONE, any other request with its ACK (after its reply, if any).
        let mut answers = Vec::new();
        loop {
            let n = self.recv()?;
            let mut off = 0usize;
            while off < n {
                let Some(chunk) = self.buf.get(off..n) else {
                    break;
                };
                let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = parsed.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink message of length 0",
                    ));
                }
                off = off.saturating_add((len + 3) & !3);
                if parsed.header.sequence_number != seq {
                    continue;
                }
                match parsed.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(_) => Err(e.to_io()),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
    }

    fn recv(&mut self) -> io::Result<usize> {
        loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the kernel did not answer the netlink request",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

pub(crate) fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ESRCH) | Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::EADDRNOTAVAIL)
    )
}

pub(crate) fn is_exists(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EEXIST)
}
