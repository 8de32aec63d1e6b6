//! Batched UDP I/O for the link: on Linux `recvmmsg` reads many datagrams per system
//! call, and UDP GSO (`UDP_SEGMENT`) sends a run of equal-sized datagrams as one
//! `sendmsg` (the stack then carries one large buffer as far as it can). Both cut
//! the per-packet system-call and network-stack cost, which dominates the client's
//! CPU time (the cipher is a few per cent of it). Elsewhere: one datagram per call.
//!
//! Only the two system calls are unsafe; what they touch is owned by [`RecvBatch`]
//! or borrowed from [`SendQueue`] for the duration of the call.

use std::io;

use tokio::net::UdpSocket;
use tracing::debug;

/// Datagrams read per `recvmmsg`.
#[cfg(target_os = "linux")]
pub const RECV_SLOTS: usize = 32;
#[cfg(not(target_os = "linux"))]
pub const RECV_SLOTS: usize = 1;
/// Room per datagram: the largest UDP payload. The buffers are zero-allocated (fresh
/// pages from the OS), so only the bytes the kernel writes become resident.
pub const SLOT_LEN: usize = 65536;
/// Most datagrams in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (one IP packet of at most 64 KiB including headers).
pub const GSO_MAX_BYTES: usize = 65000;

/// Receive slots for [`RecvBatch::recv`].
pub struct RecvBatch {
    bufs: Vec<u8>,
    lens: [usize; RECV_SLOTS],
    truncated: [bool; RECV_SLOTS],
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").finish_non_exhaustive()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            bufs: vec![0u8; RECV_SLOTS * SLOT_LEN],
            lens: [0; RECV_SLOTS],
            truncated: [false; RECV_SLOTS],
        }
    }
}

impl RecvBatch {
    /// The `i`-th datagram of the last [`recv`](Self::recv) (mutable: the core
    /// decrypts in place), or `None` if it did not fit its slot (`MSG_TRUNC`).
    pub fn datagram(&mut self, i: usize) -> Option<&mut [u8]> {
        if i >= RECV_SLOTS || self.truncated[i] {
            return None;
        }
        let start = i * SLOT_LEN;
        self.bufs.get_mut(start..start + self.lens[i])
    }

    /// Reads up to [`RECV_SLOTS`] queued datagrams without waiting; returns how many
    /// (`ErrorKind::WouldBlock` when none is queued; the socket's readiness is then
    /// cleared, so `sock.readable()` waits for the next one).
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = sock.as_raw_fd();
            sock.try_io(tokio::io::Interest::READABLE, || self.recvmmsg(fd))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let n = sock.try_recv(&mut self.bufs[..SLOT_LEN])?;
            self.lens[0] = n;
            self.truncated[0] = false;
            Ok(1)
        }
    }

    #[cfg(target_os = "linux")]
    fn recvmmsg(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        // SAFETY: all-zero mmsghdr/iovec are valid empty values (null pointers, 0 lengths).
        #[allow(unsafe_code)]
        let mut hdrs: [libc::mmsghdr; RECV_SLOTS] = unsafe { std::mem::zeroed() };
        #[allow(unsafe_code)]
        let mut iovs: [libc::iovec; RECV_SLOTS] = unsafe { std::mem::zeroed() };
        for ((h, iov), slot) in hdrs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(self.bufs.chunks_exact_mut(SLOT_LEN))
        {
            iov.iov_base = slot.as_mut_ptr().cast();
            iov.iov_len = slot.len();
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each msg_iov points at its own SLOT_LEN-byte slot of `self.bufs`
        // (disjoint, exclusively borrowed for the call); no name or control buffers.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                RECV_SLOTS as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0).min(RECV_SLOTS);
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = (h.msg_len as usize).min(SLOT_LEN);
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(n)
    }
}

/// Sends `data` as datagrams of `segment` bytes (the last may be shorter) in one
/// `sendmsg` with `UDP_SEGMENT`, on a connected socket, without blocking.
#[cfg(target_os = "linux")]
fn send_gso(fd: std::os::fd::RawFd, data: &[u8], segment: u16) -> io::Result<usize> {
    #[repr(C, align(8))]
    struct Control([u8; 32]);
    let mut control = Control([0u8; 32]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    #[allow(unsafe_code)]
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE(2) is 24 on 64-bit Linux (checked against the 32-byte,
    // 8-aligned buffer before use); CMSG_FIRSTHDR/CMSG_DATA point inside it; the
    // kernel only reads `data` (the iovec's mut pointer is the C API's type).
    #[allow(unsafe_code)]
    let n = unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
        if space > control.0.len() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT)
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Outgoing datagrams laid end to end, sent as GSO runs: every datagram of a run has
/// the run's size but the last, which may be shorter (what `UDP_SEGMENT` allows).
#[derive(Debug)]
pub struct SendQueue {
    buf: Vec<u8>,
    /// Size of the run's datagrams.
    segment: usize,
    /// Datagrams queued.
    count: usize,
    /// The last datagram was shorter than `segment`: the run is closed.
    closed: bool,
    /// Datagrams larger than this are never sent with GSO: lowered when the kernel
    /// refuses a size (e.g. a datagram that needs IP fragmentation); 0 = no GSO.
    gso_limit: usize,
}

impl Default for SendQueue {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(GSO_MAX_BYTES),
            segment: 0,
            count: 0,
            closed: false,
            gso_limit: if cfg!(target_os = "linux") {
                usize::from(u16::MAX)
            } else {
                0
            },
        }
    }
}

impl SendQueue {
    /// Whether a datagram of `len` bytes cannot join the queued run (flush first).
    pub fn must_flush_before(&self, len: usize) -> bool {
        self.count > 0
            && (self.closed
                || len > self.segment
                || len > self.gso_limit
                || self.count >= GSO_MAX_SEGMENTS
                || self.buf.len() + len > GSO_MAX_BYTES)
    }

    /// Queues one datagram; call [`must_flush_before`](Self::must_flush_before) first.
    pub fn push(&mut self, pkt: &[u8]) {
        if self.count == 0 {
            self.segment = pkt.len();
            self.closed = false;
        } else if pkt.len() < self.segment {
            self.closed = true;
        }
        self.buf.extend_from_slice(pkt);
        self.count += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sends what is queued: one GSO `sendmsg` for a run, or one `send` per datagram
    /// where GSO is unavailable or refused. Send errors are logged and swallowed (the
    /// core's timers deal with loss); only waiting for the socket is async.
    pub async fn flush(&mut self, sock: &UdpSocket) {
        if self.count == 0 {
            return;
        }
        if self.count > 1 && self.segment <= self.gso_limit {
            match self.send_run(sock).await {
                Ok(()) => {
                    self.clear();
                    return;
                }
                Err(e) => {
                    // EINVAL: this size needs IP fragmentation, or the kernel has no UDP
                    // GSO; EIO: the device cannot segment. Below this size GSO may work.
                    debug!(error = %e, segment = self.segment, "UDP GSO send refused; sending one by one");
                    self.gso_limit = self.segment.saturating_sub(1);
                }
            }
        }
        let seg = self.segment.max(1);
        for pkt in self.buf.chunks(seg) {
            if let Err(e) = sock.send(pkt).await {
                debug!(error = %e, len = pkt.len(), "UDP send failed");
            }
        }
        self.clear();
    }

    /// The queued run as one GSO send (waits while the socket buffer is full).
    #[cfg(target_os = "linux")]
    async fn send_run(&self, sock: &UdpSocket) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = sock.as_raw_fd();
        let seg = u16::try_from(self.segment)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        loop {
            match sock.try_io(tokio::io::Interest::WRITABLE, || {
                send_gso(fd, &self.buf, seg)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.writable().await?,
                r => return r.map(|_| ()),
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    async fn send_run(&self, _sock: &UdpSocket) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
        self.closed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        (a, b)
    }

    /// Reads datagrams from `sock` until `n` arrived (bounded wait).
    async fn read_n(sock: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < n {
            tokio::time::timeout_at(deadline, sock.readable())
                .await
                .expect("datagrams must arrive")
                .unwrap();
            match batch.recv(sock) {
                Ok(k) => {
                    for i in 0..k {
                        got.push(batch.datagram(i).unwrap().to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[tokio::test]
    async fn a_run_of_equal_datagrams_arrives_as_separate_datagrams_in_order() {
        let (a, b) = pair().await;
        let mut q = SendQueue::default();
        let mut sent = Vec::new();
        for i in 0..40u8 {
            let len = if i == 39 { 300 } else { 1000 };
            let pkt = vec![i; len];
            assert!(!q.must_flush_before(pkt.len()), "datagram {i}");
            q.push(&pkt);
            sent.push(pkt);
        }
        // After a shorter datagram the run is closed, whatever comes next.
        assert!(q.must_flush_before(100));
        q.flush(&a).await;
        assert!(q.is_empty());
        assert_eq!(read_n(&b, 40).await, sent);
    }

    #[tokio::test]
    async fn a_larger_datagram_or_a_full_run_needs_a_flush_first() {
        let mut q = SendQueue::default();
        assert!(!q.must_flush_before(1500), "an empty queue takes anything");
        q.push(&[1; 500]);
        assert!(q.must_flush_before(501));
        assert!(!q.must_flush_before(500));
        for _ in 1..GSO_MAX_SEGMENTS {
            q.push(&[1; 500]);
        }
        assert!(
            q.must_flush_before(500),
            "at most {GSO_MAX_SEGMENTS} per send"
        );
    }

    #[tokio::test]
    async fn datagrams_too_large_for_one_gso_send_go_out_one_by_one() {
        let (a, b) = pair().await;
        let mut q = SendQueue::default();
        // 3 x 30000 B exceeds GSO_MAX_BYTES: the third must wait for a flush.
        q.push(&[7; 30000]);
        q.push(&[8; 30000]);
        assert!(q.must_flush_before(30000));
        q.flush(&a).await;
        q.push(&[9; 30000]);
        q.flush(&a).await;
        let got = read_n(&b, 3).await;
        assert_eq!(got.len(), 3);
        assert!(got
            .iter()
            .zip([7u8, 8, 9])
            .all(|(d, v)| d.len() == 30000 && d[0] == v));
    }

    #[tokio::test]
    async fn out_of_range_slots_are_none_and_one_datagram_reads_back() {
        let mut batch = RecvBatch::default();
        assert!(batch.datagram(RECV_SLOTS).is_none());
        let (a, b) = pair().await;
        a.send(&[5; 10]).await.unwrap();
        let got = read_n(&b, 1).await;
        assert_eq!(got, vec![vec![5; 10]]);
    }
}
