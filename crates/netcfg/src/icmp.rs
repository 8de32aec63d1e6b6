//! ICMPv4 echo on a raw socket: the one place that builds an echo request, recognises
//! its reply and waits for it. Used by the helper's leak check (through the tunnel, to
//! the VPN's gateway) and by the bench's connect probe.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::time::Instant;

use socket2::Socket;

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// An ICMP echo request (type 8) for `id`/`seq` carrying `payload`, checksummed.
pub fn echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![ECHO_REQUEST, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let sum = internet_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// RFC 1071 one's-complement sum (a message that carries its checksum sums to 0).
pub fn internet_checksum(data: &[u8]) -> u16 {
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

/// The sequence number of `packet` (an IPv4 datagram as a raw socket hands it over) if
/// it is an echo reply from `from` to our `id`; `None` for anything else, including our
/// own request looped back and truncated packets.
pub fn echo_reply_seq(packet: &[u8], from: Ipv4Addr, id: u16) -> Option<u16> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.get(9) != Some(&1) {
        return None;
    }
    if packet.get(12..16)? != from.octets() {
        return None;
    }
    let icmp = packet.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[4..6] != id.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Reads `sock` until an echo reply from `from` to `id` whose sequence number `wanted`
/// accepts arrives (its sequence number), or `until` passes (`None`). Other packets the
/// raw socket sees are skipped; a read interrupted by a signal is retried.
pub fn wait_echo_reply(
    sock: &Socket,
    from: Ipv4Addr,
    id: u16,
    until: Instant,
    wanted: impl Fn(u16) -> bool,
) -> io::Result<Option<u16>> {
    let mut buf = [0u8; 1500];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sock.set_read_timeout(Some(left))?;
        match (&*sock).read(&mut buf) {
            Ok(n) => {
                let seq = buf.get(..n).and_then(|p| echo_reply_seq(p, from, id));
                if let Some(s) = seq.filter(|s| wanted(*s)) {
                    return Ok(Some(s));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header from 10.8.0.1 to 10.8.0.2, protocol ICMP, then `icmp`.
    fn ipv4(icmp: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 8, 0, 1, 10, 8, 0, 2,
        ];
        p.extend_from_slice(icmp);
        p
    }

    #[test]
    fn echo_request_carries_its_fields_and_a_valid_checksum() {
        let m = echo_request(0x1234, 7, b"oxivpn");
        assert_eq!(internet_checksum(&m), 0, "a valid checksum sums to zero");
        assert_eq!(&m[..2], &[8, 0]);
        assert_eq!(&m[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&m[8..], b"oxivpn");
        // Odd length: the last byte is padded with zero for the sum.
        assert_eq!(internet_checksum(&echo_request(1, 1, b"abc")), 0);
    }

    #[test]
    fn only_our_echo_reply_from_the_peer_counts() {
        let from = Ipv4Addr::new(10, 8, 0, 1);
        let mut icmp = echo_request(0x1234, 9, b"x");
        icmp[0] = ECHO_REPLY;
        let reply = ipv4(&icmp);
        assert_eq!(echo_reply_seq(&reply, from, 0x1234), Some(9));
        assert_eq!(echo_reply_seq(&reply, from, 0x4321), None, "another id");
        assert_eq!(
            echo_reply_seq(&reply, Ipv4Addr::new(10, 8, 0, 9), 0x1234),
            None,
            "another source"
        );
        assert_eq!(
            echo_reply_seq(&ipv4(&echo_request(0x1234, 9, b"x")), from, 0x1234),
            None,
            "our own request looped back"
        );
        assert_eq!(
            echo_reply_seq(&reply[..22], from, 0x1234),
            None,
            "truncated"
        );
        let mut udp = reply.clone();
        udp[9] = 17;
        assert_eq!(echo_reply_seq(&udp, from, 0x1234), None, "not ICMP");
        assert_eq!(echo_reply_seq(&[], from, 0x1234), None);
    }
}
