//! Packet captures for leak tests: `tcpdump -w` on one interface of a lab namespace, read
//! back as pcap and sorted into the tunnel's own packets, link housekeeping (ARP, DHCP,
//! IPv6 neighbour discovery / MLD) and everything else — a leak.
//!
//! Reading the pcap ourselves (instead of tcpdump's text) lets a test tell a probe that
//! reuses the server's address and port (TunnelCrack ServerIP) from the tunnel's own
//! datagrams: probes carry [`PROBE_MARKER`] in their payload, the tunnel never does.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;

use crate::lab::{Lab, Role};
use crate::nsthread::spawn_in;
use crate::process::Proc;

/// Payload marker of plaintext probes; a packet carrying it is a leak wherever it goes.
pub const PROBE_MARKER: &str = "OXIVPN-PLAINTEXT-PROBE";

/// The tunnel's transport as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelEndpoint {
    pub addr: IpAddr,
    pub port: u16,
    pub tcp: bool,
}

/// A running capture.
#[derive(Debug)]
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

/// What a capture held.
#[derive(Debug, Default, Clone)]
pub struct CaptureSummary {
    pub total: usize,
    /// Packets of the tunnel itself (to or from an allowed endpoint, no probe marker).
    pub tunnel: usize,
    /// ARP, DHCP, ICMPv6 neighbour discovery and MLD.
    pub housekeeping: usize,
    /// DNS queries for the VPN server's own name (made before the tunnel exists).
    pub server_lookups: usize,
    /// One line per leaked packet.
    pub leaks: Vec<String>,
}

impl std::fmt::Display for CaptureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packets: {} tunnel, {} housekeeping, {} server-name lookups, {} leaked",
            self.total,
            self.tunnel,
            self.housekeeping,
            self.server_lookups,
            self.leaks.len()
        )?;
        for l in self.leaks.iter().take(20) {
            write!(f, "\n  leak: {l}")?;
        }
        Ok(())
    }
}

impl Capture {
    /// Captures what ENTERS `iface` of `role`'s namespace (`-Q in`): on the router's LAN
    /// interface, exactly what the client machine sent. Returns once tcpdump listens.
    pub fn start(lab: &Lab, role: Role, iface: &str, name: &str) -> anyhow::Result<Self> {
        let file = lab.dir().join(format!("{name}.pcap"));
        let mut cmd = lab.ns(role)?.cmd("tcpdump");
        cmd.args(["-n", "-U", "-Q", "in", "-i", iface, "-w"])
            .arg(&file);
        let mut proc = Proc::spawn(cmd, name, &lab.dir().join(format!("{name}.log")))?;
        proc.wait_for_log("listening on", Duration::from_secs(10))?;
        Ok(Self { proc, file })
    }

    /// Makes sure everything `from` sent so far is in the file: sends a DHCP-shaped
    /// datagram (udp 68 -> the router's 67, which the kill switch lets through) carrying a
    /// fresh token and polls the file until the token shows up (bounded). Packets on one
    /// link arrive in order, so whatever was sent before is in the file too.
    pub fn sync(&mut self, lab: &Lab, from: Role) -> anyhow::Result<()> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("OXIVPN-CAPTURE-SYNC-{}-{n}", std::process::id());
        let payload = token.clone();
        let ns = lab.ns(from)?.name().to_owned();
        spawn_in(&ns, "capture-sync", move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:68").context("binding udp 68")?;
            s.send_to(payload.as_bytes(), (crate::lab::addr::ROUTER_LAN, 67))
                .context("sending the capture sync datagram")?;
            Ok(())
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("capture sync thread panicked"))??;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let bytes = std::fs::read(&self.file).unwrap_or_default();
            if contains(&bytes, token.as_bytes()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the capture sync packet did not reach {} within 5 s",
                    self.file.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops tcpdump (SIGINT flushes the file) and sorts every packet.
    pub fn stop(self, tunnel: &[TunnelEndpoint]) -> anyhow::Result<CaptureSummary> {
        self.stop_allowing(tunnel, &[])
    }

    /// Like [`Capture::stop`], but DNS queries for `server_names` (the profile's remote
    /// host names, which the client must resolve before a tunnel exists) are allowed.
    pub fn stop_allowing(
        mut self,
        tunnel: &[TunnelEndpoint],
        server_names: &[&str],
    ) -> anyhow::Result<CaptureSummary> {
        self.proc.signal(Signal::SIGINT)?;
        self.proc.wait_exit(Duration::from_secs(10))?;
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        let frames = parse_pcap(&bytes)?;
        let mut s = CaptureSummary {
            total: frames.len(),
            ..CaptureSummary::default()
        };
        for f in &frames {
            match classify(f, tunnel) {
                Class::Leak(_) if server_names.iter().any(|n| is_lookup_of(f, n)) => {
                    s.server_lookups += 1
                }
                Class::Tunnel => s.tunnel += 1,
                Class::Housekeeping => s.housekeeping += 1,
                Class::Leak(d) => s.leaks.push(d),
            }
        }
        Ok(s)
    }
}

/// Plaintext traffic a test sends to see whether it leaves the machine.
#[derive(Debug, Clone)]
pub enum Probe {
    /// One ICMP (or ICMPv6) echo request.
    Ping(String),
    /// A datagram carrying [`PROBE_MARKER`] to `addr`:`port`.
    Udp(String, u16),
    /// A TCP connection attempt (the SYN is the leak) that sends the marker if it connects.
    Tcp(String, u16),
}

/// Sends every probe from `role`'s namespace at once and waits (bounded, ~2 s) for them.
/// Failures to send (the kill switch answers EPERM) are what a protected client shows;
/// they are not errors here — the capture decides.
pub fn send_probes(lab: &Lab, role: Role, probes: &[Probe]) -> anyhow::Result<()> {
    let mut script = String::new();
    for p in probes {
        let line = match p {
            Probe::Ping(a) => format!("ping -n -q -c 1 -W 1 {a} >/dev/null 2>&1 &\n"),
            Probe::Udp(a, port) => format!(
                "(printf '{PROBE_MARKER}' > /dev/udp/{a}/{port}) 2>/dev/null &\n"
            ),
            Probe::Tcp(a, port) => format!(
                "timeout 1 bash -c \"printf '{PROBE_MARKER}' > /dev/tcp/{a}/{port}\" 2>/dev/null &\n"
            ),
        };
        script.push_str(&line);
    }
    script.push_str("wait\n");
    let out = lab
        .ns(role)?
        .cmd("timeout")
        .args(["5", "bash", "-c", &script])
        .output()
        .context("running the probes")?;
    if out.status.code() == Some(124) {
        bail!("the probes did not finish within 5 s");
    }
    Ok(())
}

/// Frames of a classic pcap file (either byte order, Ethernet link type).
pub fn parse_pcap(b: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
    if b.len() < 24 {
        bail!("pcap file too short ({} bytes)", b.len());
    }
    let magic = [b[0], b[1], b[2], b[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => bail!("not a pcap file (magic {magic:02x?})"),
    };
    let u32_at = |i: usize| -> anyhow::Result<u32> {
        let s: [u8; 4] = b
            .get(i..i + 4)
            .context("truncated pcap")?
            .try_into()
            .context("truncated pcap")?;
        Ok(if le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    };
    let linktype = u32_at(20)?;
    if linktype != 1 {
        bail!("pcap link type {linktype}, expected Ethernet (1)");
    }
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let caplen = u32_at(i + 8)? as usize;
        let start = i + 16;
        let Some(frame) = b.get(start..start + caplen) else {
            break; // tcpdump killed mid-write: the last record may be partial
        };
        out.push(frame.to_vec());
        i = start + caplen;
    }
    Ok(out)
}

/// How a captured frame counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Tunnel,
    Housekeeping,
    Leak(String),
}

/// Sorts one Ethernet frame.
pub fn classify(frame: &[u8], tunnel: &[TunnelEndpoint]) -> Class {
    let leak = |what: String| Class::Leak(what);
    let Some(ethertype) = frame.get(12..14).map(|s| u16::from_be_bytes([s[0], s[1]])) else {
        return leak(format!("runt frame of {} bytes", frame.len()));
    };
    let ip = &frame[14..];
    let marked = contains(frame, PROBE_MARKER.as_bytes());
    match ethertype {
        0x0806 => Class::Housekeeping,
        0x0800 => {
            if ip.len() < 20 {
                return leak("truncated IPv4".into());
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let proto = ip[9];
            let src = IpAddr::from([ip[12], ip[13], ip[14], ip[15]]);
            let dst = IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
            let l4 = ip.get(ihl..).unwrap_or_default();
            transport(proto, src, dst, l4, marked, tunnel)
        }
        0x86dd => {
            if ip.len() < 40 {
                return leak("truncated IPv6".into());
            }
            let next = ip[6];
            let mut s = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            let mut d = [0u8; 16];
            d.copy_from_slice(&ip[24..40]);
            let (src, dst) = (IpAddr::from(s), IpAddr::from(d));
            let l4 = &ip[40..];
            // Hop-by-hop header (MLD reports carry router-alert): skip it once.
            let (next, l4) = if next == 0 && l4.len() >= 8 {
                let len = (usize::from(l4[1]) + 1) * 8;
                (l4[0], l4.get(len..).unwrap_or_default())
            } else {
                (next, l4)
            };
            if next == 58 && !marked {
                // RS 133, RA 134, NS 135, NA 136, redirect 137; MLD 130-132, MLDv2 143.
                if let Some(t) = l4.first() {
                    if matches!(t, 130..=137 | 143) {
                        return Class::Housekeeping;
                    }
                }
            }
            transport(next, src, dst, l4, marked, tunnel)
        }
        other => leak(format!("ethertype {other:#06x}")),
    }
}

fn transport(
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    l4: &[u8],
    marked: bool,
    tunnel: &[TunnelEndpoint],
) -> Class {
    let ports = l4.get(0..4).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    });
    let name = match proto {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmp6",
        _ => "ip",
    };
    if let (17, Some((68, 67)), false) = (proto, ports, marked) {
        return Class::Housekeeping;
    }
    if let (6 | 17, Some((_, dport)), false) = (proto, ports, marked) {
        let tcp = proto == 6;
        if tunnel
            .iter()
            .any(|t| t.addr == dst && t.port == dport && t.tcp == tcp)
        {
            return Class::Tunnel;
        }
    }
    let port_text = ports
        .map(|(s, d)| format!(" {s} > {d}"))
        .unwrap_or_default();
    let probe = if marked { " [probe]" } else { "" };
    Class::Leak(format!("{name} {src} > {dst}{port_text}{probe}"))
}

/// Whether `frame` is a DNS query (to port 53) whose question names `name`.
fn is_lookup_of(frame: &[u8], name: &str) -> bool {
    let mut wire = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        wire.push(u8::try_from(label.len()).unwrap_or(0));
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    let to_53 = |l4: &[u8]| l4.get(2..4) == Some(&53u16.to_be_bytes()[..]);
    let l4 = match frame.get(12..14) {
        Some([0x08, 0x00]) => frame
            .get(14..)
            .and_then(|ip| ip.get(usize::from(ip.first()? & 0x0f) * 4..)),
        Some([0x86, 0xdd]) => frame.get(54..),
        _ => None,
    };
    l4.is_some_and(to_53) && !contains(frame, PROBE_MARKER.as_bytes()) && contains(frame, &wire)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4_udp(dst: [u8; 4], sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 1, 2];
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&dport.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0]);
        ip.extend_from_slice(body);
        eth(0x0800, &ip)
    }

    fn server() -> Vec<TunnelEndpoint> {
        vec![TunnelEndpoint {
            addr: "198.18.0.1".parse().unwrap(),
            port: 1194,
            tcp: false,
        }]
    }

    #[test]
    fn tunnel_datagrams_pass_but_a_marked_probe_to_the_same_port_leaks() {
        let t = ipv4_udp([198, 18, 0, 1], 40000, 1194, &[0x48, 0, 0, 1]);
        assert_eq!(classify(&t, &server()), Class::Tunnel);
        let probe = ipv4_udp([198, 18, 0, 1], 40001, 1194, PROBE_MARKER.as_bytes());
        assert!(matches!(classify(&probe, &server()), Class::Leak(d) if d.contains("[probe]")));
        let other_port = ipv4_udp([198, 18, 0, 1], 40000, 1195, &[0x48]);
        assert!(matches!(classify(&other_port, &server()), Class::Leak(_)));
        let dns = ipv4_udp([192, 168, 1, 1], 5353, 53, b"x");
        assert!(matches!(classify(&dns, &server()), Class::Leak(d) if d.contains("> 53")));
    }

    #[test]
    fn only_queries_for_the_server_name_count_as_lookups() {
        let mut q = vec![0u8; 12];
        q.extend_from_slice(b"\x03vpn\x03lab\x07example\x00\x00\x01\x00\x01");
        let f = ipv4_udp([192, 168, 1, 1], 5000, 53, &q);
        assert!(is_lookup_of(&f, "vpn.lab.example"));
        assert!(!is_lookup_of(&f, "other.example"));
        let not_dns = ipv4_udp([192, 168, 1, 1], 5000, 54, &q);
        assert!(!is_lookup_of(&not_dns, "vpn.lab.example"));
    }

    #[test]
    fn arp_dhcp_and_neighbour_discovery_are_housekeeping() {
        assert_eq!(classify(&eth(0x0806, &[0; 28]), &[]), Class::Housekeeping);
        let dhcp = ipv4_udp([255, 255, 255, 255], 68, 67, &[1]);
        assert_eq!(classify(&dhcp, &[]), Class::Housekeeping);
        let mut ns = vec![0x60, 0, 0, 0, 0, 8, 58, 255];
        ns.extend_from_slice(&[0xfe; 16]);
        ns.extend_from_slice(&[0xff; 16]);
        ns.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(classify(&eth(0x86dd, &ns), &[]), Class::Housekeeping);
        // An echo request is not housekeeping.
        let n = ns.len();
        ns[n - 8] = 128;
        assert!(
            matches!(classify(&eth(0x86dd, &ns), &[]), Class::Leak(d) if d.starts_with("icmp6"))
        );
    }

    #[test]
    fn pcap_records_are_read_in_both_byte_orders_and_garbage_is_refused() {
        let frame = ipv4_udp([10, 0, 0, 3], 1, 2, b"abc");
        for le in [true, false] {
            let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let mut f = Vec::new();
            f.extend_from_slice(&w32(0xa1b2c3d4));
            f.extend_from_slice(&[0; 16]);
            f.extend_from_slice(&w32(1));
            for _ in 0..2 {
                f.extend_from_slice(&[0; 8]);
                f.extend_from_slice(&w32(frame.len() as u32));
                f.extend_from_slice(&w32(frame.len() as u32));
                f.extend_from_slice(&frame);
            }
            f.extend_from_slice(&[0; 5]); // partial trailing record
            let frames = parse_pcap(&f).unwrap();
            assert_eq!(frames, vec![frame.clone(), frame.clone()]);
        }
        assert!(parse_pcap(b"not a pcap file at all!!").is_err());
        assert!(parse_pcap(&[0; 3]).is_err());
    }
}
