//! The leak check's one packet: ICMP echo requests through the tunnel, on a raw socket
//! bound to the TUN, to the VPN's own gateway (never to a third party).

use std::net::IpAddr;
use std::time::Duration;

/// Echo requests sent through the tunnel, each waited for this long.
pub(super) const PROBE_TRIES: u16 = 3;
pub(super) const PROBE_WAIT: Duration = Duration::from_secs(1);

/// Echo requests to `gateway` through `iface` only; the round trip of the first answer.
#[cfg(target_os = "linux")]
pub(super) fn probe(iface: &str, gateway: IpAddr) -> Result<Option<Duration>, String> {
    use std::io::Read;
    use std::time::Instant;

    use socket2::{Domain, Protocol, SockAddr, Socket, Type};

    let IpAddr::V4(gw) = gateway else {
        return Err("the probe speaks ICMP for IPv4 gateways only".into());
    };
    let op = |what: &'static str| move |e: std::io::Error| format!("{what}: {e}");
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(op("open an ICMP socket"))?;
    // Only through the tunnel: a route change cannot make it answer from elsewhere.
    sock.bind_device(Some(iface.as_bytes()))
        .map_err(op("bind the ICMP socket to the tunnel"))?;
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(0x4f58);
    let dest = SockAddr::from(std::net::SocketAddrV4::new(gw, 0));
    let mut buf = [0u8; 1500];
    for seq in 1..=PROBE_TRIES {
        let sent = Instant::now();
        sock.send_to(&echo_request(id, seq), &dest)
            .map_err(op("send the echo request"))?;
        let deadline = sent + PROBE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(op("set the read timeout"))?;
            match (&sock).read(&mut buf) {
                Ok(n) => {
                    if buf
                        .get(..n)
                        .is_some_and(|p| is_echo_reply(p, gw.octets(), id, seq))
                    {
                        return Ok(Some(sent.elapsed()));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read the echo reply: {e}")),
            }
        }
    }
    Ok(None)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn probe(_iface: &str, _gateway: IpAddr) -> Result<Option<Duration>, String> {
    Err("the tunnel probe is not available on this OS yet".into())
}

/// An ICMP echo request (type 8) with a short payload.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"oxivpn leak check");
    let sum = internet_checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// RFC 1071 one's-complement sum.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = match pair {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A raw IPv4 packet holding the echo reply from `from` to our request `id`/`seq`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn is_echo_reply(packet: &[u8], from: [u8; 4], id: u16, seq: u16) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.get(9) != Some(&1) {
        return false;
    }
    if packet.get(12..16) != Some(&from[..]) {
        return false;
    }
    let Some(icmp) = packet.get(ihl..) else {
        return false;
    };
    icmp.len() >= 8
        && icmp[0] == 0
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn echo_packets_round_trip() {
        let req = echo_request(0x1234, 2);
        assert_eq!(internet_checksum(&req), 0, "a valid checksum sums to zero");
        // The reply as the kernel hands it to a raw socket: IPv4 header + ICMP type 0.
        let mut reply = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 8, 0, 1, 10, 8, 0, 2,
        ];
        let mut icmp = req.clone();
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert!(is_echo_reply(&reply, [10, 8, 0, 1], 0x1234, 2));
        assert!(!is_echo_reply(&reply, [10, 8, 0, 9], 0x1234, 2));
        assert!(!is_echo_reply(&reply, [10, 8, 0, 1], 0x1234, 3));
        assert!(!is_echo_reply(&reply[..22], [10, 8, 0, 1], 0x1234, 2));
    }
}
