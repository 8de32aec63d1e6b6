//! A fault-injecting userspace proxy between client and server (this machine has no
//! `tc netem`). It lives in its own namespace `<lab>prx` (192.168.3.2, hanging off the
//! router at 192.168.3.1), so the client's profile names the proxy as its remote and the
//! proxy relays to the real server. Faults are set per direction and can change while it
//! runs: loss, delay with jitter, duplication (optionally late: a replay), reordering,
//! truncation, bit flips; UDP datagram by datagram, TCP chunk by chunk (where any fault
//! but delay corrupts the stream, which the client must survive). It can also inject
//! datagrams at the client from the server's side.

use std::collections::BinaryHeap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::lab::{Lab, Role};
use crate::netns::Netns;
use crate::nsthread::spawn_in;

/// The proxy's address (as the client sees it).
pub const PROXY_ADDR: &str = "192.168.3.2";
const POLL: Duration = Duration::from_millis(50);

/// Faults applied to one direction. Probabilities are 0.0..=1.0 per packet (UDP) or chunk (TCP).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub loss: f64,
    pub delay: Duration,
    /// Extra random delay 0..jitter per packet (reorders packets when it exceeds their spacing).
    pub jitter: Duration,
    pub duplicate: f64,
    /// When the duplicate is sent after the original (zero = right after it).
    pub duplicate_after: Duration,
    /// Probability that a packet is held back 30 ms, so later ones overtake it.
    pub reorder: f64,
    /// Probability that a packet is cut to a random shorter length.
    pub truncate: f64,
    /// Probability that one random bit of the packet is flipped.
    pub bitflip: f64,
}

/// Faults of both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultConfig {
    /// Client -> server.
    pub up: Faults,
    /// Server -> client.
    pub down: Faults,
}

impl FaultConfig {
    /// The same faults both ways.
    pub fn both(f: Faults) -> Self {
        Self { up: f, down: f }
    }
}

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub truncated: AtomicU64,
    pub flipped: AtomicU64,
    pub injected: AtomicU64,
}

impl FaultStats {
    pub fn snapshot(&self) -> [(&'static str, u64); 7] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("forwarded", g(&self.forwarded)),
            ("dropped", g(&self.dropped)),
            ("duplicated", g(&self.duplicated)),
            ("reordered", g(&self.reordered)),
            ("truncated", g(&self.truncated)),
            ("flipped", g(&self.flipped)),
            ("injected", g(&self.injected)),
        ]
    }
}

/// Small deterministic PRNG (SplitMix64): fault decisions only, nothing secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// Uniform in 0..n (0 when n == 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

/// What happens to one packet: the copies to send, each with its delay.
pub fn apply_faults(
    f: &Faults,
    rng: &mut Rng,
    pkt: &[u8],
    stats: &FaultStats,
) -> Vec<(Duration, Vec<u8>)> {
    if rng.chance(f.loss) {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return Vec::new();
    }
    let mut p = pkt.to_vec();
    if rng.chance(f.truncate) && !p.is_empty() {
        let keep = rng.below(p.len());
        p.truncate(keep);
        stats.truncated.fetch_add(1, Ordering::Relaxed);
    }
    if rng.chance(f.bitflip) && !p.is_empty() {
        let bit = rng.below(p.len() * 8);
        p[bit / 8] ^= 1 << (bit % 8);
        stats.flipped.fetch_add(1, Ordering::Relaxed);
    }
    let mut delay = f.delay;
    if !f.jitter.is_zero() {
        let j = rng.below(f.jitter.as_micros() as usize);
        delay += Duration::from_micros(j as u64);
    }
    if rng.chance(f.reorder) {
        delay += Duration::from_millis(30);
        stats.reordered.fetch_add(1, Ordering::Relaxed);
    }
    let mut out = vec![(delay, p.clone())];
    if rng.chance(f.duplicate) {
        stats.duplicated.fetch_add(1, Ordering::Relaxed);
        out.push((delay + f.duplicate_after, p));
    }
    out
}

#[derive(Debug)]
struct Shared {
    cfg: Mutex<FaultConfig>,
    stats: FaultStats,
    stop: AtomicBool,
    /// The client's address as the proxy sees it (UDP: last source).
    client: Mutex<Option<SocketAddr>>,
    /// UDP: the current client and its upstream socket to the server.
    upstream: Mutex<Option<(SocketAddr, Arc<UdpSocket>)>>,
    /// Delayed UDP datagrams.
    queue: Mutex<BinaryHeap<Delayed>>,
    wake: Condvar,
}

#[derive(Debug, PartialEq, Eq)]
struct Delayed {
    due: Instant,
    seq: u64,
    up: bool,
    data: Vec<u8>,
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest due time (then the lowest seq) first.
        other.due.cmp(&self.due).then(other.seq.cmp(&self.seq))
    }
}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Transport the proxy relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyTransport {
    Udp,
    Tcp,
}

/// A running proxy; dropping it stops its threads and deletes its namespace.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<anyhow::Result<()>>>,
    /// The client-facing UDP socket (for injection), cloned.
    udp_listen: Option<UdpSocket>,
    pub port: u16,
    // Last: the namespace goes after the threads stopped.
    ns: Netns,
}

impl FaultProxy {
    /// Builds the proxy namespace off the lab's router and relays `PROXY_ADDR:port` to
    /// `server` (the lab's server address and port).
    pub fn start(
        lab: &Lab,
        transport: ProxyTransport,
        port: u16,
        server: SocketAddr,
        cfg: FaultConfig,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let cli = lab.cli();
        let prefix = cli.strip_suffix("cli").unwrap_or(cli);
        let ns = Netns::create(&format!("{prefix}prx"))?;
        let lan = lab.ns(Role::Lan)?;
        lan.ip(&[
            "link",
            "add",
            "prx0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ])?;
        lan.ip(&["addr", "add", "192.168.3.1/24", "dev", "prx0"])?;
        lan.ip(&["link", "set", "prx0", "up"])?;
        ns.ip(&["addr", "add", &format!("{PROXY_ADDR}/24"), "dev", "eth0"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
        ns.ip(&["route", "add", "default", "via", "192.168.3.1"])?;
        let shared = Arc::new(Shared {
            cfg: Mutex::new(cfg),
            stats: FaultStats::default(),
            stop: AtomicBool::new(false),
            client: Mutex::new(None),
            upstream: Mutex::new(None),
            queue: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
        });
        let mut proxy = Self {
            shared,
            threads: Vec::new(),
            udp_listen: None,
            port,
            ns,
        };
        match transport {
            ProxyTransport::Udp => proxy.start_udp(server, seed)?,
            ProxyTransport::Tcp => proxy.start_tcp(server, seed)?,
        }
        Ok(proxy)
    }

    fn start_udp(&mut self, server: SocketAddr, seed: u64) -> anyhow::Result<()> {
        let port = self.port;
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = self.ns.name().to_owned();
        let opener = spawn_in(&ns, "proxy-open", move || {
            let listen = UdpSocket::bind(("0.0.0.0", port)).context("proxy bind")?;
            listen.set_read_timeout(Some(POLL))?;
            let _ = tx.send(listen);
            Ok(())
        })?;
        opener
            .join()
            .map_err(|_| anyhow::anyhow!("proxy opener panicked"))??;
        let listen = rx.recv().context("proxy socket")?;
        self.udp_listen = Some(listen.try_clone()?);

        let sender = {
            let (s, l) = (self.shared.clone(), listen.try_clone()?);
            std::thread::spawn(move || scheduler(&s, &l))
        };
        // Client -> server. Runs inside the namespace: like a NAT, every new client
        // address (a new client process) gets its own upstream socket, so the server
        // never mistakes a new session for the previous one's.
        let up = {
            let (s, l) = (self.shared.clone(), listen.try_clone()?);
            spawn_in(&ns, "proxy-up", move || {
                let mut rng = Rng::new(seed);
                let mut buf = vec![0u8; 65536];
                while !s.stop.load(Ordering::Relaxed) {
                    let (n, from) = match l.recv_from(&mut buf) {
                        Ok(x) => x,
                        Err(e) if is_timeout(&e) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let known = s
                        .upstream
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .map(|(c, _)| *c);
                    if known != Some(from) {
                        let u = UdpSocket::bind("0.0.0.0:0").context("proxy upstream bind")?;
                        u.connect(server).context("proxy upstream connect")?;
                        u.set_read_timeout(Some(POLL))?;
                        *s.upstream.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((from, Arc::new(u)));
                        *s.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(from);
                    }
                    let f = s.cfg.lock().unwrap_or_else(|p| p.into_inner()).up;
                    for (d, p) in apply_faults(&f, &mut rng, &buf[..n], &s.stats) {
                        dispatch(&s, d, true, p, &l);
                    }
                }
                Ok(())
            })?
        };
        // Server -> client, from whichever upstream socket is current.
        let down = {
            let (s, l) = (self.shared.clone(), listen);
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut rng = Rng::new(seed ^ 0x5555);
                let mut buf = vec![0u8; 65536];
                while !s.stop.load(Ordering::Relaxed) {
                    let cur = s.upstream.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let Some((_, u)) = cur else {
                        std::thread::sleep(POLL);
                        continue;
                    };
                    let n = match u.recv(&mut buf) {
                        Ok(n) => n,
                        // The server is gone (ICMP unreachable): keep relaying when it returns.
                        Err(e) if is_timeout(&e) || e.kind() == ErrorKind::ConnectionRefused => {
                            continue
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let f = s.cfg.lock().unwrap_or_else(|p| p.into_inner()).down;
                    for (d, p) in apply_faults(&f, &mut rng, &buf[..n], &s.stats) {
                        dispatch(&s, d, false, p, &l);
                    }
                }
                Ok(())
            })
        };
        self.threads.extend([sender, up, down]);
        Ok(())
    }

    fn start_tcp(&mut self, server: SocketAddr, seed: u64) -> anyhow::Result<()> {
        let port = self.port;
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = self.ns.name().to_owned();
        spawn_in(&ns, "proxy-open", move || {
            let l = TcpListener::bind(("0.0.0.0", port)).context("proxy bind")?;
            l.set_nonblocking(true)?;
            let _ = tx.send(l);
            Ok(())
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("proxy opener panicked"))??;
        let listener = rx.recv().context("proxy listener")?;
        let s = self.shared.clone();
        // Upstream connections must be opened inside the namespace: the acceptor lives there.
        let acceptor = spawn_in(&ns, "proxy-accept", move || {
            let mut n = 0u64;
            while !s.stop.load(Ordering::Relaxed) {
                let (client, from) = match listener.accept() {
                    Ok(x) => x,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(POLL);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                *s.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(from);
                client.set_nonblocking(false)?;
                let Ok(upstream) = TcpStream::connect_timeout(&server, Duration::from_secs(5))
                else {
                    continue; // the server is down: the client sees its connection close
                };
                n += 1;
                for (a, b, up) in [
                    (client.try_clone()?, upstream.try_clone()?, true),
                    (upstream.try_clone()?, client.try_clone()?, false),
                ] {
                    let s = s.clone();
                    let seed = seed ^ n ^ u64::from(up);
                    std::thread::spawn(move || pump(&s, a, b, up, seed));
                }
            }
            Ok(())
        })?;
        self.threads.push(acceptor);
        Ok(())
    }

    /// Changes the faults while the proxy runs.
    pub fn set(&self, cfg: FaultConfig) {
        *self.shared.cfg.lock().unwrap_or_else(|p| p.into_inner()) = cfg;
    }

    pub fn stats(&self) -> &FaultStats {
        &self.shared.stats
    }

    /// The client's address as last seen (UDP: the source of its latest datagram).
    pub fn client(&self) -> Option<SocketAddr> {
        *self.shared.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `count` datagrams made by `make` to the client from the proxy's (= the
    /// server's, as the client sees it) address and port. UDP only.
    pub fn inject_to_client(
        &self,
        count: usize,
        mut make: impl FnMut(usize) -> Vec<u8>,
    ) -> anyhow::Result<()> {
        let sock = self
            .udp_listen
            .as_ref()
            .context("injection needs the UDP proxy")?;
        let client = self
            .client()
            .context("no client has talked to the proxy yet")?;
        for i in 0..count {
            let d = make(i);
            sock.send_to(&d, client).context("injecting")?;
            self.shared.stats.injected.fetch_add(1, Ordering::Relaxed);
            if i % 200 == 199 {
                // Let the client drain its socket buffer rather than overflow it.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn send_udp(s: &Shared, up: bool, p: &[u8], listen: &UdpSocket) {
    let cur = s.upstream.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some((client, upstream)) = cur else {
        return;
    };
    let r = if up {
        upstream.send(p).map(|_| ())
    } else {
        listen.send_to(p, client).map(|_| ())
    };
    if r.is_ok() {
        s.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    }
}

fn dispatch(s: &Shared, delay: Duration, up: bool, p: Vec<u8>, l: &UdpSocket) {
    if delay.is_zero() {
        send_udp(s, up, &p, l);
        return;
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut q = s.queue.lock().unwrap_or_else(|p| p.into_inner());
    q.push(Delayed {
        due: Instant::now() + delay,
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        up,
        data: p,
    });
    s.wake.notify_all();
}

fn scheduler(s: &Shared, listen: &UdpSocket) -> anyhow::Result<()> {
    let mut q = s.queue.lock().unwrap_or_else(|p| p.into_inner());
    while !s.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match q.peek() {
            Some(d) if d.due <= now => {
                if let Some(d) = q.pop() {
                    drop(q);
                    send_udp(s, d.up, &d.data, listen);
                    q = s.queue.lock().unwrap_or_else(|p| p.into_inner());
                }
            }
            Some(d) => {
                let wait = d.due - now;
                q = s
                    .wake
                    .wait_timeout(q, wait.min(POLL))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            None => {
                q = s
                    .wake
                    .wait_timeout(q, POLL)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        }
    }
    Ok(())
}

/// Copies one direction of a TCP connection chunk by chunk through the faults; a chunk
/// fault other than delay corrupts the stream (the point: the client must cope).
fn pump(s: &Shared, mut from: TcpStream, mut to: TcpStream, up: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; 16384];
    let _ = from.set_read_timeout(Some(POLL));
    while !s.stop.load(Ordering::Relaxed) {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        };
        let cfg = *s.cfg.lock().unwrap_or_else(|p| p.into_inner());
        let f = if up { cfg.up } else { cfg.down };
        let mut failed = false;
        for (d, p) in apply_faults(&f, &mut rng, &buf[..n], &s.stats) {
            if !d.is_zero() {
                std::thread::sleep(d);
            }
            if to.write_all(&p).is_err() {
                failed = true;
                break;
            }
            s.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_forward_one_copy_untouched() {
        let st = FaultStats::default();
        let mut rng = Rng::new(1);
        let out = apply_faults(&Faults::default(), &mut rng, b"hello", &st);
        assert_eq!(out, vec![(Duration::ZERO, b"hello".to_vec())]);
    }

    #[test]
    fn fault_rates_match_their_probabilities() {
        let st = FaultStats::default();
        let mut rng = Rng::new(7);
        let f = Faults {
            loss: 0.3,
            duplicate: 0.2,
            bitflip: 1.0,
            ..Faults::default()
        };
        let mut sent = 0;
        for _ in 0..10_000 {
            for (_, p) in apply_faults(&f, &mut rng, &[0u8; 100], &st) {
                assert_eq!(
                    p.iter().map(|b| b.count_ones()).sum::<u32>(),
                    1,
                    "one bit flipped"
                );
                sent += 1;
            }
        }
        let dropped = st.dropped.load(Ordering::Relaxed);
        let dup = st.duplicated.load(Ordering::Relaxed);
        assert!((2_700..3_300).contains(&dropped), "{dropped}");
        assert!((1_200..1_600).contains(&dup), "{dup}");
        assert_eq!(sent, 10_000 - dropped + dup);
    }

    #[test]
    fn truncation_shortens_and_reorder_delays() {
        let st = FaultStats::default();
        let mut rng = Rng::new(3);
        let f = Faults {
            truncate: 1.0,
            reorder: 1.0,
            duplicate: 1.0,
            duplicate_after: Duration::from_millis(100),
            ..Faults::default()
        };
        let out = apply_faults(&f, &mut rng, &[1u8; 50], &st);
        assert_eq!(out.len(), 2);
        assert!(out[0].1.len() < 50);
        assert_eq!(out[0].0, Duration::from_millis(30));
        assert_eq!(out[1].0, Duration::from_millis(130));
    }

    #[test]
    fn delayed_queue_pops_earliest_first() {
        let now = Instant::now();
        let mut h = BinaryHeap::new();
        for (i, ms) in [30u64, 10, 20].into_iter().enumerate() {
            h.push(Delayed {
                due: now + Duration::from_millis(ms),
                seq: i as u64,
                up: true,
                data: vec![],
            });
        }
        let order: Vec<u64> = std::iter::from_fn(|| h.pop()).map(|d| d.seq).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }
}
