//! One task driving one core `Client`: link socket <-> client <-> TUN, one timer
//! re-armed after every drain.
//!
//! After a readiness event the driver drains up to [`BATCH`] packets with
//! non-blocking reads before it goes back to the reactor: parking in epoll per
//! packet cost far more CPU than the cipher (see the bench notes). On UDP the link
//! is read with `recvmmsg` and written with GSO runs ([`crate::udp_batch`]).

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ovpn_core::session::{
    Client, DisconnectReason, Event, SessionInfo, Stage, Stats, DATA_HEADROOM, DATA_TAILROOM,
};
use ovpn_core::transport::{frame_tcp, TcpFramer};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::udp_batch::{RecvBatch, SendQueue};
use tracing::{debug, trace, warn};

use crate::link::Link;
use crate::tun::TunDevice;

/// Largest IP packet read from the TUN device.
const MAX_TUN_PACKET: usize = 65535;
/// Largest link packet (a UDP datagram, or a TCP read).
const LINK_BUF: usize = 65536 + 2;
/// How often the published statistics are refreshed at most.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// Most packets handled per readiness event (per direction) before the driver
/// sends what is queued and looks at its other sources again.
const BATCH: usize = 64;
/// How far the core's deadline may move past the armed timer before it is re-armed.
const TIMER_SLACK: Duration = Duration::from_secs(1);
/// Queued TCP bytes that trigger a write before the batch ends.
const TCP_FLUSH_AT: usize = 32 * 1024;

/// Requests to a running driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Disconnect (explicit-exit-notify first when configured), then end.
    Close,
    /// Answer the server's CR_TEXT question on the live session (`CR_RESPONSE`).
    AnswerCrText(ovpn_core::config::Secret),
}

/// Why a driver stopped.
#[derive(Debug)]
pub enum DriverEnd {
    /// The core ended the session (including `ClosedByUser` after [`Command::Close`]).
    Disconnected(DisconnectReason),
    /// The TCP connection was closed or failed before the core ended the session.
    LinkClosed(io::Error),
    /// The TUN device failed.
    Tun(io::Error),
}

impl DriverEnd {
    /// Worth an automatic reconnect.
    pub fn should_reconnect(&self) -> bool {
        match self {
            DriverEnd::Disconnected(r) => r.should_reconnect(),
            DriverEnd::LinkClosed(_) => true,
            DriverEnd::Tun(_) => false,
        }
    }
}

impl std::fmt::Display for DriverEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverEnd::Disconnected(r) => write!(f, "{r}"),
            DriverEnd::LinkClosed(e) => write!(f, "connection to the server lost: {e}"),
            DriverEnd::Tun(e) => write!(f, "TUN device failed: {e}"),
        }
    }
}

/// The caller's side of a running driver.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    commands: mpsc::UnboundedSender<Command>,
    stats: watch::Receiver<Stats>,
    info: watch::Receiver<Option<SessionInfo>>,
}

impl DriverHandle {
    /// Asks the driver to disconnect; it ends with `Disconnected(ClosedByUser)`.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    pub fn send(&self, cmd: Command) {
        let _ = self.commands.send(cmd);
    }

    /// The latest counters (refreshed every 250 ms at most, and at the end).
    pub fn stats(&self) -> Stats {
        *self.stats.borrow()
    }

    /// A receiver that changes whenever the counters are refreshed.
    pub fn stats_watch(&self) -> watch::Receiver<Stats> {
        self.stats.clone()
    }

    /// Cipher and TLS details, refreshed when the configuration arrives and when keys
    /// are renewed (`None` before the data channel has keys).
    pub fn session_info(&self) -> Option<SessionInfo> {
        self.info.borrow().clone()
    }
}

enum Io {
    Udp {
        sock: UdpSocket,
        rx: Box<RecvBatch>,
        tx: SendQueue,
    },
    Tcp {
        rd: OwnedReadHalf,
        wr: OwnedWriteHalf,
        framer: TcpFramer,
        /// Raw reads from the stream.
        rbuf: Vec<u8>,
        frame: Vec<u8>,
        out: Vec<u8>,
    },
    /// UDP through a SOCKS5 relay: one datagram per packet (no GSO: each needs the
    /// header in front), the control connection watched for its end.
    SocksUdp {
        sock: UdpSocket,
        control: tokio::net::TcpStream,
        /// The RFC 1928 §7 header, then room for the packet being sent.
        out: Vec<u8>,
        header_len: usize,
        rbuf: Vec<u8>,
    },
}

impl Io {
    fn new(link: Link) -> Self {
        match link {
            Link::Udp(sock) => {
                let mut rx: Box<RecvBatch> = Box::default();
                // Where the kernel has no UDP GRO, one datagram per slot as before.
                rx.enable_gro(&sock);
                Io::Udp {
                    sock,
                    rx,
                    tx: SendQueue::default(),
                }
            }
            Link::Tcp(s) => {
                let (rd, wr) = s.into_split();
                Io::Tcp {
                    rd,
                    wr,
                    framer: TcpFramer::default(),
                    rbuf: vec![0u8; LINK_BUF],
                    frame: Vec::with_capacity(LINK_BUF),
                    out: Vec::with_capacity(LINK_BUF),
                }
            }
            Link::SocksUdp {
                sock,
                control,
                header,
            } => {
                let header_len = header.len();
                let mut out = header;
                out.reserve(LINK_BUF);
                Io::SocksUdp {
                    sock,
                    control,
                    out,
                    header_len,
                    rbuf: vec![0u8; LINK_BUF + 262],
                }
            }
        }
    }

    /// Waits until the link has something to read (cancel safe).
    async fn readable(&self) -> io::Result<()> {
        match self {
            Io::Udp { sock, .. } => sock.readable().await,
            Io::Tcp { rd, .. } => rd.readable().await,
            Io::SocksUdp { sock, control, .. } => {
                tokio::select! {
                    r = sock.readable() => r,
                    r = control.readable() => r,
                }
            }
        }
    }

    /// Queues one packet; UDP errors are logged and swallowed (the core's timers deal
    /// with loss), TCP errors end the link. Packets are written by
    /// [`flush`](Self::flush) (or once enough are queued), so a batch of packets
    /// costs one write (TCP) or one GSO send per run of equal sizes (UDP).
    async fn send(&mut self, pkt: &[u8]) -> io::Result<()> {
        match self {
            Io::Udp { sock, tx, .. } => {
                if tx.must_flush_before(pkt.len()) {
                    tx.flush(sock).await;
                }
                tx.push(pkt);
                Ok(())
            }
            Io::SocksUdp {
                sock,
                out,
                header_len,
                ..
            } => {
                out.truncate(*header_len);
                out.extend_from_slice(pkt);
                if let Err(e) = sock.send(out).await {
                    debug!(error = %e, "UDP send to the SOCKS relay failed");
                }
                Ok(())
            }
            Io::Tcp { out, .. } => {
                frame_tcp(pkt, out).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                if out.len() >= TCP_FLUSH_AT {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    /// Writes what is queued.
    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Udp { sock, tx, .. } => {
                tx.flush(sock).await;
                Ok(())
            }
            Io::SocksUdp { .. } => Ok(()),
            Io::Tcp { wr, out, .. } => {
                if out.is_empty() {
                    return Ok(());
                }
                let r = wr.write_all(out).await;
                out.clear();
                r
            }
        }
    }
}

/// Polls `fut` once: `Some` if it is ready now, `None` if it would have to wait.
/// Used to drain the TUN without a `try_recv` in [`TunDevice`]; a pending
/// readiness future is simply dropped (tokio deregisters its waker).
fn now_or_never<F: Future>(fut: F) -> Option<F::Output> {
    let fut = pin!(fut);
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Runs `client` over `link` and `tun` until the session ends.
///
/// Core events (stages, pushed configuration, auth tokens, ...) go to `events` as they
/// happen; the last one is `Event::Disconnected` unless the link or TUN failed first.
pub struct Driver<T: TunDevice> {
    client: Client,
    io: Io,
    tun: Arc<T>,
    events: mpsc::UnboundedSender<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    stats: watch::Sender<Stats>,
    stats_at: Instant,
    info: watch::Sender<Option<SessionInfo>>,
}

impl<T: TunDevice> Driver<T> {
    /// A driver and the handle to control it.
    pub fn new(
        client: Client,
        link: Link,
        tun: Arc<T>,
        events: mpsc::UnboundedSender<Event>,
    ) -> (Self, DriverHandle) {
        let (ctx, crx) = mpsc::unbounded_channel();
        let (stx, srx) = watch::channel(client.stats());
        let (itx, irx) = watch::channel(None);
        (
            Self {
                client,
                io: Io::new(link),
                tun,
                events,
                commands: crx,
                stats: stx,
                stats_at: Instant::now(),
                info: itx,
            },
            DriverHandle {
                commands: ctx,
                stats: srx,
                info: irx,
            },
        )
    }

    /// Sends what the core queued, forwards its events, publishes statistics.
    /// Returns the reason once the core has ended the session.
    async fn drain(&mut self) -> Result<Option<DisconnectReason>, DriverEnd> {
        let now = Instant::now();
        while let Some(pkt) = self.client.poll_transmit(now) {
            self.io.send(&pkt).await.map_err(DriverEnd::LinkClosed)?;
        }
        self.io.flush().await.map_err(DriverEnd::LinkClosed)?;
        let mut ended = None;
        while let Some(ev) = self.client.poll_event() {
            match &ev {
                Event::Disconnected(r) => ended = Some(r.clone()),
                // Before the event goes out, so its receiver can read the details.
                Event::ConfigReceived(_) | Event::KeysRenewed { .. } => {
                    self.info.send_replace(self.client.session_info());
                }
                _ => {}
            }
            let _ = self.events.send(ev);
        }
        if ended.is_some() || now.duration_since(self.stats_at) >= STATS_EVERY {
            self.stats.send_replace(self.client.stats());
            self.stats_at = now;
        }
        Ok(ended)
    }

    /// Runs until the session ends.
    pub async fn run(mut self) -> DriverEnd {
        let end = self.run_inner().await;
        self.stats.send_replace(self.client.stats());
        end
    }

    async fn run_inner(&mut self) -> DriverEnd {
        // The TUN is read into `tun_read` (zeroed once); each packet is then copied
        // behind the headroom in `tun_buf`, which the core encrypts in place and may
        // grow into its tailroom. Its capacity is reserved once, so per packet this
        // costs one copy of the packet, not a re-zeroing of 64 KiB.
        let mut tun_read = vec![0u8; MAX_TUN_PACKET];
        let mut tun_buf: Vec<u8> =
            Vec::with_capacity(DATA_HEADROOM + MAX_TUN_PACKET + DATA_TAILROOM);
        let tun = Arc::clone(&self.tun);
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut commands_open = true;
        // The deadline the timer is set to. The core's deadline moves with every packet
        // (keepalive = last packet + interval); re-arming tokio's timer each time locks
        // its wheel, so it is re-armed only when the deadline comes earlier or moved
        // well past the armed one. Waking early is harmless: handle_timeout is idempotent.
        let mut armed: Option<Instant> = None;
        loop {
            match self.drain().await {
                Ok(Some(reason)) => {
                    // The core may still have queued a last packet (exit notify).
                    let now = Instant::now();
                    while let Some(pkt) = self.client.poll_transmit(now) {
                        let _ = self.io.send(&pkt).await;
                    }
                    let _ = self.io.flush().await;
                    return DriverEnd::Disconnected(reason);
                }
                Ok(None) => {}
                Err(end) => return end,
            }
            let deadline = self.client.poll_timeout();
            if let Some(d) = deadline {
                if armed.is_none_or(|a| d < a || d > a + TIMER_SLACK) {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(d));
                    armed = Some(d);
                }
            }
            tokio::select! {
                r = self.io.readable() => {
                    let r = match r {
                        Ok(()) => self.on_link_readable().await,
                        Err(e) => Err(DriverEnd::LinkClosed(e)),
                    };
                    if let Err(end) = r {
                        return end;
                    }
                }
                r = tun.recv(&mut tun_read) => {
                    let mut r = Some(r);
                    for _ in 0..BATCH {
                        match r {
                            Some(Ok(n)) => {
                                if let Err(end) = self.on_tun_packet(&mut tun_buf, &tun_read[..n]).await {
                                    return end;
                                }
                            }
                            Some(Err(e)) => return DriverEnd::Tun(e),
                            None => break,
                        }
                        r = now_or_never(tun.recv(&mut tun_read));
                    }
                    if let Err(e) = self.io.flush().await {
                        return DriverEnd::LinkClosed(e);
                    }
                },
                () = &mut sleep, if deadline.is_some() => {
                    armed = None;
                    self.client.handle_timeout(Instant::now());
                }
                cmd = self.commands.recv(), if commands_open => match cmd {
                    Some(Command::Close) => self.client.close(Instant::now()),
                    Some(Command::AnswerCrText(answer)) => {
                        self.client.send_cr_response(Instant::now(), answer.expose());
                    }
                    None => {
                        // Every handle is gone: nobody can stop us any more, so stop now.
                        commands_open = false;
                        self.client.close(Instant::now());
                    }
                },
            }
        }
    }

    /// Encrypts one IP packet read from the TUN and sends (or queues) it.
    async fn on_tun_packet(&mut self, buf: &mut Vec<u8>, pkt: &[u8]) -> Result<(), DriverEnd> {
        buf.clear();
        buf.resize(DATA_HEADROOM, 0);
        buf.extend_from_slice(pkt);
        let now = Instant::now();
        if let Some(off) = self.client.handle_tun_packet(now, buf, DATA_HEADROOM) {
            self.io
                .send(&buf[off..])
                .await
                .map_err(DriverEnd::LinkClosed)?;
        }
        Ok(())
    }

    /// Reads and handles what the link has queued: up to [`BATCH`] reads, then back
    /// to the reactor (readiness is cleared only by a read that would block).
    async fn on_link_readable(&mut self) -> Result<(), DriverEnd> {
        let handshaking = self.client.stage() != Stage::Connected;
        for _ in 0..BATCH {
            let now = Instant::now();
            match &mut self.io {
                Io::Udp { sock, rx, .. } => {
                    let n = match rx.recv(sock) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => {
                            // e.g. ECONNREFUSED from an ICMP port unreachable: keep going,
                            // the core's timers decide when to give up.
                            debug!(error = %e, "UDP receive error");
                            return Ok(());
                        }
                    };
                    for i in 0..n {
                        let count = rx.count(i);
                        if count == 0 {
                            debug!("oversized UDP datagram dropped");
                        }
                        // A GRO slot holds a run of datagrams: each is its own packet.
                        for k in 0..count {
                            let Some(pkt) = rx.datagram(i, k) else { break };
                            if let Some(p) = self.client.handle_packet_payload(now, pkt) {
                                to_tun(&*self.tun, p).await?;
                            }
                        }
                    }
                    if n < rx.slots() {
                        return Ok(());
                    }
                }
                Io::SocksUdp {
                    sock,
                    control,
                    rbuf,
                    ..
                } => {
                    // The association lives as long as the control connection.
                    let mut probe = [0u8; 64];
                    match control.try_read(&mut probe) {
                        Ok(0) => {
                            return Err(DriverEnd::LinkClosed(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the SOCKS proxy closed the UDP association",
                            )))
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(DriverEnd::LinkClosed(e)),
                    }
                    let n = match sock.try_recv(rbuf) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => {
                            debug!(error = %e, "UDP receive error (SOCKS relay)");
                            return Ok(());
                        }
                    };
                    match crate::proxy::udp_payload(&rbuf[..n]) {
                        Ok((_, payload)) => {
                            let start = n - payload.len();
                            if let Some(p) =
                                self.client.handle_packet_payload(now, &mut rbuf[start..n])
                            {
                                to_tun(&*self.tun, p).await?;
                            }
                        }
                        Err(e) => debug!(error = %e, "datagram from the SOCKS relay dropped"),
                    }
                }
                Io::Tcp {
                    rd,
                    framer,
                    rbuf,
                    frame,
                    ..
                } => {
                    let n = match rd.try_read(rbuf) {
                        Ok(0) => {
                            return Err(DriverEnd::LinkClosed(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the server closed the TCP connection",
                            )))
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(DriverEnd::LinkClosed(e)),
                    };
                    if handshaking {
                        // The kernel clears it again after a while: re-armed after every
                        // read until the tunnel is up (see `Link::tcp`).
                        crate::link::quickack(rd.as_ref());
                    }
                    framer.push(&rbuf[..n]);
                    loop {
                        match framer.pop_into(frame) {
                            Ok(true) => {
                                if let Some(p) =
                                    self.client.handle_packet_payload(now, &mut frame[..])
                                {
                                    to_tun(&*self.tun, p).await?;
                                }
                            }
                            Ok(false) => break,
                            Err(e) => {
                                return Err(DriverEnd::LinkClosed(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    e,
                                )))
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

async fn to_tun<T: TunDevice>(tun: &T, pkt: &[u8]) -> Result<(), DriverEnd> {
    trace!(len = pkt.len(), "to TUN");
    match tun.send(pkt).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            warn!(error = %e, len = pkt.len(), "TUN refused a packet");
            Ok(())
        }
        Err(e) => Err(DriverEnd::Tun(e)),
    }
}

/// A fresh 32-byte seed for `Client::new` from the OS.
pub fn os_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tun::MemTun;
    use ovpn_core::config::ClientConfig;
    use std::time::SystemTime;
    use tokio::io::AsyncReadExt;

    /// A config the core accepts without any PKI: trust by (never matching) fingerprint.
    fn config(hand_window: Duration, tcp: bool) -> ClientConfig {
        let mut c = ClientConfig::default();
        c.verify.peer_fingerprints = vec![[0u8; 32]];
        c.timers.hand_window = hand_window;
        c.transport = if tcp {
            ovpn_core::config::Transport::Tcp
        } else {
            ovpn_core::config::Transport::Udp
        };
        c
    }

    fn client(c: ClientConfig) -> Client {
        let unix = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Client::new(c, os_seed().unwrap(), Instant::now(), unix).unwrap()
    }

    /// P_CONTROL_HARD_RESET_CLIENT_V2 is opcode 7 in the top five bits.
    fn is_hard_reset(first_byte: u8) -> bool {
        first_byte >> 3 == 7
    }

    #[tokio::test]
    async fn draining_the_tun_returns_each_queued_packet_once_then_stops() {
        let (tun, peer) = MemTun::pair();
        for i in 1..=3u8 {
            peer.to_driver.send(vec![i; usize::from(i)]).await.unwrap();
        }
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        while let Some(r) = now_or_never(tun.recv(&mut buf)) {
            let n = r.unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, vec![vec![1], vec![2, 2], vec![3, 3, 3]]);
        // The dropped pending poll lost nothing: a later packet still arrives.
        peer.to_driver.send(vec![9]).await.unwrap();
        let n = tun.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[9]);
    }

    #[tokio::test]
    async fn socks_udp_link_adds_the_header_and_ends_with_the_association() {
        // A relay that records datagrams, and the association's control connection.
        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (proxy_side, _) = listener.accept().await.unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.connect(relay.local_addr().unwrap()).await.unwrap();
        let header = crate::proxy::udp_header("192.0.2.7", 1194).unwrap();
        let link = Link::SocksUdp {
            sock,
            control,
            header: header.clone(),
        };
        let (tun, _peer) = MemTun::pair();
        let (ev_tx, _ev_rx) = mpsc::unbounded_channel();
        let (driver, _handle) = Driver::new(
            client(config(Duration::from_secs(30), false)),
            link,
            Arc::new(tun),
            ev_tx,
        );
        let task = tokio::spawn(driver.run());
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), relay.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > header.len(), "datagram of {n} bytes");
        assert_eq!(&buf[..header.len()], &header[..]);
        assert!(is_hard_reset(buf[header.len()]), "{:?}", &buf[..n.min(16)]);
        // The proxy ends the association: the link ends at once, saying why.
        drop(proxy_side);
        let end = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the driver must notice the closed association")
            .unwrap();
        match end {
            DriverEnd::LinkClosed(e) => {
                assert!(e.to_string().contains("SOCKS proxy closed"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn silent_udp_server_ends_with_no_server_reply_after_hand_window() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let link = Link::udp(server.local_addr().unwrap()).await.unwrap();
        let (tun, _peer) = MemTun::pair();
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (driver, _handle) = Driver::new(
            client(config(Duration::from_secs(1), false)),
            link,
            Arc::new(tun),
            ev_tx,
        );
        let started = Instant::now();
        let end = tokio::time::timeout(Duration::from_secs(5), driver.run())
            .await
            .expect("the driver must give up by itself");
        assert!(
            matches!(
                end,
                DriverEnd::Disconnected(DisconnectReason::NoServerReply { .. })
            ),
            "{end:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(900));
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).await.unwrap();
        assert!(
            n > 0 && is_hard_reset(buf[0]),
            "first datagram {:?}",
            &buf[..n.min(8)]
        );
        let mut last = None;
        while let Ok(ev) = ev_rx.try_recv() {
            last = Some(ev);
        }
        assert!(matches!(last, Some(Event::Disconnected(_))), "{last:?}");
    }

    #[tokio::test]
    async fn close_ends_the_session_at_once() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let link = Link::udp(server.local_addr().unwrap()).await.unwrap();
        let (tun, _peer) = MemTun::pair();
        let (ev_tx, _ev_rx) = mpsc::unbounded_channel();
        let (driver, handle) = Driver::new(
            client(config(Duration::from_secs(60), false)),
            link,
            Arc::new(tun),
            ev_tx,
        );
        let task = tokio::spawn(driver.run());
        handle.close();
        let end = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(end, DriverEnd::Disconnected(DisconnectReason::ClosedByUser)),
            "{end:?}"
        );
        assert!(handle.stats().control_packets_out >= 1 || handle.stats().link_bytes_out > 0);
    }

    #[tokio::test]
    async fn tcp_frames_with_a_length_prefix_and_reports_a_closed_link() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut pkt = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut pkt).await.unwrap();
            pkt
            // dropping `s` closes the connection
        });
        let link = Link::tcp(addr, Duration::from_secs(2)).await.unwrap();
        let (tun, _peer) = MemTun::pair();
        let (ev_tx, _ev_rx) = mpsc::unbounded_channel();
        let (driver, _handle) = Driver::new(
            client(config(Duration::from_secs(60), true)),
            link,
            Arc::new(tun),
            ev_tx,
        );
        let end = tokio::time::timeout(Duration::from_secs(5), driver.run())
            .await
            .unwrap();
        let pkt = server.await.unwrap();
        assert!(
            is_hard_reset(pkt[0]),
            "first frame {:?}",
            &pkt[..pkt.len().min(8)]
        );
        assert!(matches!(end, DriverEnd::LinkClosed(_)), "{end:?}");
        assert!(end.should_reconnect());
    }
}
