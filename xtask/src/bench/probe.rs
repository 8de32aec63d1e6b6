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

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use netcfg::icmp;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Pause after a send that failed (no route yet, or blocked by a kill switch).
const RETRY: Duration = Duration::from_micros(200);
/// How long one request that left waits for its reply before the next is sent.
const RESEND: Duration = Duration::from_millis(2);
/// The echo request's payload (8 bytes, as `ping -s 8` would send).
const PAYLOAD: &[u8] = b"oxivpnbp";

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The IPv4 address to ping (the server's tunnel address).
    pub dest: Ipv4Addr,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
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
    while Instant::now() < deadline {
        seq = seq.wrapping_add(1);
        if sock
            .send_to(&icmp::echo_request(id, seq, PAYLOAD), &to)
            .is_err()
        {
            failed_sends += 1;
            std::thread::sleep(RETRY);
            continue;
        }
        first_sent.get_or_insert_with(|| started.elapsed());
        // Any of our requests answered means the tunnel is up.
        let reply = icmp::wait_echo_reply(&sock, args.dest, id, Instant::now() + RESEND, |_| true)
            .context("reading from the ICMP socket")?;
        if let Some(s) = reply {
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
    bail!(
        "no echo reply from {} within {} s ({failed_sends} sends failed, {seq} tried)",
        args.dest,
        args.timeout
    )
}
