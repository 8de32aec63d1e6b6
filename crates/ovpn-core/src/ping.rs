//! Keepalive ping and OCC messages carried inside data packets (§7.7).
//!
//! After decryption and decompression, a payload equal to [`PING_MAGIC`] is
//! a keepalive (drop it), one starting with [`OCC_MAGIC`] is an OCC message
//! (only `OCC_EXIT` matters to a client); everything else goes to the tun.

/// The 16-byte keepalive payload.
pub const PING_MAGIC: [u8; 16] = [
    0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb, 0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48,
];

/// The 16-byte OCC prefix, followed by one op byte.
pub const OCC_MAGIC: [u8; 16] = [
    0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81, 0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c,
];

/// OCC op: the peer is exiting.
pub const OCC_EXIT: u8 = 6;
/// OCC op: request (ignored in TLS mode).
pub const OCC_REQUEST: u8 = 0;
/// OCC op: reply (ignored in TLS mode).
pub const OCC_REPLY: u8 = 1;

/// What a decrypted, decompressed data payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// Keepalive: drop (it already counted as received traffic).
    Ping,
    /// `OCC_EXIT`: the server is leaving; reconnect.
    OccExit,
    /// Another OCC op (request/reply/MTU tests) or an OCC without op: ignore.
    OccOther(Option<u8>),
    /// An IP packet for the tun device.
    Ip,
}

/// Classifies a data payload.
pub fn classify(payload: &[u8]) -> PayloadKind {
    if payload == PING_MAGIC {
        PayloadKind::Ping
    } else if let Some(rest) = payload.strip_prefix(&OCC_MAGIC[..]) {
        match rest.first() {
            Some(&OCC_EXIT) => PayloadKind::OccExit,
            op => PayloadKind::OccOther(op.copied()),
        }
    } else {
        PayloadKind::Ip
    }
}

/// The OCC_EXIT payload a client sends for `explicit-exit-notify` without `cc-exit`.
pub fn occ_exit_payload() -> [u8; 17] {
    let mut p = [0u8; 17];
    p[..16].copy_from_slice(&OCC_MAGIC);
    p[16] = OCC_EXIT;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_payloads() {
        assert_eq!(classify(&PING_MAGIC), PayloadKind::Ping);
        assert_eq!(classify(&occ_exit_payload()), PayloadKind::OccExit);
        let mut req = OCC_MAGIC.to_vec();
        req.push(OCC_REQUEST);
        assert_eq!(classify(&req), PayloadKind::OccOther(Some(0)));
        assert_eq!(classify(&OCC_MAGIC), PayloadKind::OccOther(None));
        // ping magic with an extra byte is not a ping
        let mut p = PING_MAGIC.to_vec();
        p.push(0);
        assert_eq!(classify(&p), PayloadKind::Ip);
        assert_eq!(classify(&[0x45, 0, 0, 20]), PayloadKind::Ip);
        assert_eq!(classify(&[]), PayloadKind::Ip);
    }
}
