//! Batched UDP I/O for the link: on Linux `recvmmsg` reads many datagrams per system
//! call, UDP GRO (`UDP_GRO`, see [`RecvBatch::enable_gro`]) lets the stack hand a run of
//! equal-sized datagrams of one flow to us as one buffer, and UDP GSO (`UDP_SEGMENT`)
//! sends a run of equal-sized datagrams as one `sendmsg` (the stack then carries one
//! large buffer as far as it can). All three cut the per-packet system-call and
//! network-stack cost, which dominates the client's CPU time (the cipher is a few per
//! cent of it). Elsewhere: one datagram per call.
//!
//! Only the system calls and the control-message walk are unsafe; what they touch is
//! owned by [`RecvBatch`] or borrowed from [`SendQueue`] for the duration of the call.

use std::io;

use tokio::net::UdpSocket;
use tracing::debug;

/// Datagrams read per `recvmmsg`.
#[cfg(target_os = "linux")]
pub const RECV_SLOTS: usize = 32;
#[cfg(not(target_os = "linux"))]
pub const RECV_SLOTS: usize = 1;
/// Slots asked for per `recvmmsg` once GRO is on: a slot may then hold up to 64 KiB
/// (dozens of datagrams), and every byte the kernel writes becomes resident; 8 slots
/// bound that to 512 KiB while still moving hundreds of datagrams per system call.
#[cfg(target_os = "linux")]
pub const GRO_SLOTS: usize = 8;
/// Room per datagram: the largest UDP payload (and the largest GRO run). The buffers
/// are zero-allocated (fresh pages from the OS), so only the bytes the kernel writes
/// become resident.
pub const SLOT_LEN: usize = 65536;
/// Most datagrams in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (one IP packet of at most 64 KiB including headers).
pub const GSO_MAX_BYTES: usize = 65000;
/// Control-message room per slot (u64 words, for `cmsghdr` alignment): one
/// `CMSG_SPACE(sizeof(int))` (24 bytes on 64-bit Linux) for the GRO segment size.
#[cfg(target_os = "linux")]
const CTRL_WORDS: usize = 4;

/// Receive slots for [`RecvBatch::recv`].
pub struct RecvBatch {
    bufs: Vec<u8>,
    lens: [usize; RECV_SLOTS],
    truncated: [bool; RECV_SLOTS],
    /// The GRO segment size of each slot's run (0: the slot is one datagram).
    segs: [usize; RECV_SLOTS],
    /// Slots asked for per receive ([`RECV_SLOTS`], or [`GRO_SLOTS`] with GRO on).
    slots: usize,
    #[cfg(target_os = "linux")]
    ctrl: Vec<u64>,
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
            segs: [0; RECV_SLOTS],
            slots: RECV_SLOTS,
            #[cfg(target_os = "linux")]
            ctrl: vec![0u64; RECV_SLOTS * CTRL_WORDS],
        }
    }
}

impl RecvBatch {
    /// Turns on UDP GRO for `sock` (Linux 5.0 or later): runs of equal-sized datagrams
    /// then arrive as one buffer with their segment size in a control message, which
    /// [`recv`](Self::recv) splits again. Returns whether it is on; where the kernel
    /// refuses, nothing changes (one datagram per slot, as before).
    pub fn enable_gro(&mut self, sock: &UdpSocket) -> bool {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let on: libc::c_int = 1;
            // SAFETY: valid fd; pointer to a live c_int of the size passed.
            #[allow(unsafe_code)]
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_UDP,
                    libc::UDP_GRO,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                debug!(error = %io::Error::last_os_error(), "UDP GRO not available");
                return false;
            }
            self.slots = GRO_SLOTS;
            true
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = sock;
            false
        }
    }

    /// Slots asked for per [`recv`](Self::recv): fewer came back, nothing more is queued.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// How many datagrams slot `i` of the last [`recv`](Self::recv) holds (more than
    /// one only for a GRO run; 0 if it did not fit its slot, `MSG_TRUNC`).
    pub fn count(&self, i: usize) -> usize {
        if i >= RECV_SLOTS || self.truncated[i] {
            return 0;
        }
        match self.segs[i] {
            0 => 1,
            seg => self.lens[i].div_ceil(seg).max(1),
        }
    }

    /// The `k`-th datagram of slot `i` of the last [`recv`](Self::recv) (mutable: the
    /// core decrypts in place), or `None` if there is no such datagram.
    pub fn datagram(&mut self, i: usize, k: usize) -> Option<&mut [u8]> {
        if k >= self.count(i) {
            return None;
        }
        let (off, len) = match self.segs[i] {
            0 => (0, self.lens[i]),
            seg => (k * seg, seg.min(self.lens[i] - k * seg)),
        };
        let start = i * SLOT_LEN + off;
        self.bufs.get_mut(start..start + len)
    }

    /// Reads up to [`slots`](Self::slots) queued buffers without waiting; returns how
    /// many (`ErrorKind::WouldBlock` when none is queued; the socket's readiness is then
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
            self.segs[0] = 0;
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
        let ctrl_len = CTRL_WORDS * std::mem::size_of::<u64>();
        for (((h, iov), slot), ctrl) in hdrs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(self.bufs.chunks_exact_mut(SLOT_LEN))
            .zip(self.ctrl.chunks_exact_mut(CTRL_WORDS))
        {
            iov.iov_base = slot.as_mut_ptr().cast();
            iov.iov_len = slot.len();
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = ctrl.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = ctrl_len as _;
        }
        let want = self.slots.min(RECV_SLOTS);
        // SAFETY: each msg_iov points at its own SLOT_LEN-byte slot of `self.bufs` and
        // each msg_control at its own 8-aligned CTRL_WORDS words of `self.ctrl`
        // (disjoint, exclusively borrowed for the call); no name buffers.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                want as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0).min(want);
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = (h.msg_len as usize).min(SLOT_LEN);
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.segs[i] = gro_segment(&h.msg_hdr).unwrap_or(0);
        }
        Ok(n)
    }
}

/// The `UDP_GRO` segment size in a received message's control data, if any.
#[cfg(target_os = "linux")]
fn gro_segment(msg: &libc::msghdr) -> Option<usize> {
    // SAFETY: `msg` was filled by recvmmsg: msg_control/msg_controllen describe our own
    // buffer and the kernel's control messages in it; CMSG_FIRSTHDR/NXTHDR stay inside
    // it (they return null past its end) and the data is read unaligned.
    #[allow(unsafe_code)]
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let data_len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if (*c).cmsg_level == libc::SOL_UDP
                && (*c).cmsg_type == libc::UDP_GRO
                && data_len >= std::mem::size_of::<libc::c_int>()
            {
                let seg = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(seg).ok().filter(|s| *s > 0);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
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
        read_with(&mut RecvBatch::default(), sock, n).await.0
    }

    /// [`read_n`] through `batch`; also the most datagrams one slot held.
    async fn read_with(batch: &mut RecvBatch, sock: &UdpSocket, n: usize) -> (Vec<Vec<u8>>, usize) {
        let mut most = 0;
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
                        most = most.max(batch.count(i));
                        for j in 0..batch.count(i) {
                            got.push(batch.datagram(i, j).unwrap().to_vec());
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        (got, most)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn with_gro_a_gso_run_arrives_as_one_buffer_and_is_split_into_its_datagrams() {
        let (a, b) = pair().await;
        let mut batch = RecvBatch::default();
        assert!(batch.enable_gro(&b), "Linux 5.0 or later has UDP_GRO");
        assert_eq!(batch.slots(), GRO_SLOTS);
        let mut q = SendQueue::default();
        let mut sent = Vec::new();
        for i in 0..30u8 {
            // A shorter last datagram: the run's tail segment.
            let pkt = vec![i; if i == 29 { 77 } else { 1200 }];
            q.push(&pkt);
            sent.push(pkt);
        }
        q.flush(&a).await;
        // Plain datagrams after the run keep their own boundaries.
        for len in [5usize, 1400] {
            let pkt = vec![0xee; len];
            a.send(&pkt).await.unwrap();
            sent.push(pkt);
        }
        let (got, most) = read_with(&mut batch, &b, sent.len()).await;
        assert_eq!(got, sent);
        // Over loopback the GSO send stays one buffer up to a GRO socket.
        assert_eq!(most, 30, "the run came as one slot");
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
        assert!(batch.datagram(RECV_SLOTS, 0).is_none());
        assert_eq!(batch.count(RECV_SLOTS), 0);
        let (a, b) = pair().await;
        a.send(&[5; 10]).await.unwrap();
        let got = read_n(&b, 1).await;
        assert_eq!(got, vec![vec![5; 10]]);
    }
}
