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
    use std::time::Instant;

    use netcfg::icmp;
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
    for seq in 1..=PROBE_TRIES {
        let sent = Instant::now();
        sock.send_to(&icmp::echo_request(id, seq, b"oxivpn leak check"), &dest)
            .map_err(op("send the echo request"))?;
        // Only this request's answer times the round trip.
        let reply = icmp::wait_echo_reply(&sock, gw, id, sent + PROBE_WAIT, |s| s == seq)
            .map_err(op("read the echo reply"))?;
        if reply.is_some() {
            return Ok(Some(sent.elapsed()));
        }
    }
    Ok(None)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn probe(_iface: &str, _gateway: IpAddr) -> Result<Option<Duration>, String> {
    Err("the tunnel probe is not available on this OS yet".into())
}
