//! The connect-time probe: `cargo xtask bench-probe DEST`, run by the bench inside the
//! client's namespace (`ip netns exec`), next to the client it times.
//!
//! Why not `ping` in a shell loop: before the tunnel is up `ping` exits at once
//! (no route, or the kill switch's EPERM), so the loop spent its time in fork/exec of
//! `ping` and `sleep` and tried again only every ~4 ms. Connect times were quantised to
//! that cycle, and because the loop starts together with the client its phase was
//! nearly the same in every run, so a change of a millisecond could show as nothing or
//! as a whole cycle. The probe also took a third of a CPU from the two being measured.
//!
//! This probe keeps one raw ICMP socket: it tries to send an echo request every
//! [`RETRY`] while sending fails, and once a request leaves, waits up to [`RESEND`] for
//! the reply before sending the next. The first echo reply from DEST is printed as
//! `ping -D` prints it (`[UNIX.MICROS] 64 bytes from DEST: icmp_seq=N`), which is what
//! the bench parses. Both clients get the same probe.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Pause after a send that failed (no route yet, or blocked by a kill switch).
const RETRY: Duration = Duration::from_micros(200);
/// How long one request that left waits for its reply before the next is sent.
const RESEND: Duration = Duration::from_millis(2);

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The IPv4 address to ping (the server's tunnel address).
    pub dest: Ipv4Addr,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
}

/// Internet checksum (RFC 1071) of an ICMP message.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(id: u16, seq: u16) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = ECHO_REQUEST;
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    m[8..16].copy_from_slice(b"oxivpnbp");
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// The sequence number of `packet` (an IPv4 datagram, as a raw socket hands it over)
/// if it is an echo reply from `dest` to our `id`.
fn reply_seq(packet: &[u8], dest: Ipv4Addr, id: u16) -> Option<u16> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    let src = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    let icmp = packet.get(ihl..)?;
    if src != dest || *icmp.first()? != ECHO_REPLY {
        return None;
    }
    if u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]) != id {
        return None;
    }
    Some(u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]))
}

pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .context("opening a raw ICMP socket (the probe runs as root)")?;
    let to = SockAddr::from(SocketAddrV4::new(args.dest, 0));
    // Low 16 bits of the pid: `ping` does the same; the lab runs one probe at a time.
    let id = (std::process::id() & 0xffff) as u16;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut seq: u16 = 0;
    let mut failed_sends: u64 = 0;
    let started = Instant::now();
    let mut first_sent: Option<Duration> = None;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        seq = seq.wrapping_add(1);
        if sock.send_to(&echo_request(id, seq), &to).is_err() {
            failed_sends += 1;
            std::thread::sleep(RETRY);
            continue;
        }
        first_sent.get_or_insert_with(|| started.elapsed());
        let wait_until = Instant::now() + RESEND;
        while let Some(left) = wait_until.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            let n = match (&sock).read(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e).context("reading from the ICMP socket"),
            };
            if let Some(s) = buf.get(..n).and_then(|p| reply_seq(p, args.dest, id)) {
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
                // After the reply line (which the bench parses): when the probe's first
                // request left, to tell a late route from a slow tunnel.
                // The probe's whole output is this line: stdout is its log file.
                writeln!(
                    std::io::stdout().lock(),
                    "[{}.{:06}] 64 bytes from {}: icmp_seq={s}\n\
                     probe: {failed_sends} sends failed before the first left at +{:.2} ms; reply at +{:.2} ms",
                    now.as_secs(),
                    now.subsec_micros(),
                    args.dest,
                    first_sent.unwrap_or_default().as_secs_f64() * 1e3,
                    started.elapsed().as_secs_f64() * 1e3,
                )?;
                return Ok(());
            }
        }
    }
    bail!(
        "no echo reply from {} within {} s ({failed_sends} sends failed, {seq} tried)",
        args.dest,
        args.timeout
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let m = echo_request(0x1234, 7);
        assert_eq!(
            checksum(&m),
            0,
            "a message with its checksum sums to 0xffff"
        );
        assert_eq!(&m[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn only_our_echo_reply_from_dest_counts() {
        let dest = Ipv4Addr::new(10, 8, 0, 1);
        let mut p = vec![
            0x45u8, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 10, 8, 0, 1, 10, 8, 0, 2,
        ];
        p.extend_from_slice(&[ECHO_REPLY, 0, 0, 0, 0x12, 0x34, 0, 9]);
        assert_eq!(reply_seq(&p, dest, 0x1234), Some(9));
        assert_eq!(reply_seq(&p, dest, 0x4321), None, "another process's echo");
        assert_eq!(reply_seq(&p, Ipv4Addr::new(10, 8, 0, 3), 0x1234), None);
        let mut req = p.clone();
        req[20] = ECHO_REQUEST;
        assert_eq!(
            reply_seq(&req, dest, 0x1234),
            None,
            "our own request looped back"
        );
        assert_eq!(reply_seq(&p[..22], dest, 0x1234), None, "truncated");
    }
}
