//! TCP MSS clamping (`mssfix`), as OpenVPN 2.6 does it.
//!
//! A tunnelled TCP segment grows by the data channel's overhead and the
//! outer IP/UDP headers. When the result is larger than a link on the way,
//! it is fragmented or, with DF set, answered by ICMP "fragmentation needed";
//! many networks drop one or the other, and the connection stalls after its
//! handshake. Lowering the MSS option of SYN and SYN-ACK packets through the
//! tunnel (both directions) makes both TCP ends send segments that fit.
//!
//! The size follows OpenVPN 2.6 (`options.c`, `mss.c`): the default is
//! `mssfix 1492 mtu` (the outer IP packet fits 1492 bytes) when `tun-mtu` is
//! the default 1500, otherwise `tun-mtu` with `fixed`; `mssfix N` bounds the
//! OpenVPN packet itself (the UDP/TCP payload), `mssfix N mtu` the outer IP
//! packet, `mssfix N fixed` is the MSS plus 40; `mssfix 0` turns it off.

use crate::compress::Compression;
use crate::data::Cipher;
use crate::keys::Digest;

/// OpenVPN 2.6's default `mssfix` size (with `mtu` semantics).
pub const MSSFIX_DEFAULT: u16 = 1492;
/// OpenVPN's default `tun-mtu`.
const TUN_MTU_DEFAULT: u16 = 1500;

/// IPv4 and TCP headers without options (RFC 879): MSS = MTU - 40.
const IPV4_TCP_HEADERS: u16 = 20 + 20;
/// An IPv6 header is 20 bytes longer than an IPv4 one.
const IPV6_EXTRA: u16 = 20;

/// What `mssfix` bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MssfixUnit {
    /// `mssfix N`: the OpenVPN packet (UDP payload, or TCP frame with its
    /// length prefix).
    #[default]
    Packet,
    /// `mssfix N mtu`: the outer IP packet, IP and UDP/TCP headers included.
    Mtu,
    /// `mssfix N fixed`: the tunnelled IP packet; the MSS is N - 40.
    Fixed,
}

/// The `mssfix` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mssfix {
    /// No `mssfix` line, or a bare `mssfix`: OpenVPN 2.6's default.
    #[default]
    Default,
    /// `mssfix 0`: no clamping.
    Off,
    /// `mssfix N [mtu|fixed]`.
    Max { size: u16, unit: MssfixUnit },
}

impl Mssfix {
    /// The setting with OpenVPN 2.6's default resolved for `tun_mtu`.
    pub fn resolve(self, tun_mtu: u16) -> Option<(u16, MssfixUnit)> {
        match self {
            Mssfix::Off | Mssfix::Max { size: 0, .. } => None,
            Mssfix::Max { size, unit } => Some((size, unit)),
            Mssfix::Default if tun_mtu == TUN_MTU_DEFAULT => {
                Some((MSSFIX_DEFAULT, MssfixUnit::Mtu))
            }
            Mssfix::Default => Some((tun_mtu, MssfixUnit::Fixed)),
        }
    }
}

/// What the data channel wraps around a tunnelled packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub cipher: Cipher,
    /// `auth` (the HMAC of CBC ciphers).
    pub digest: Digest,
    /// The server pushed a peer-id (DATA_V2 header, 4 bytes instead of 1).
    pub peer_id: bool,
    pub compression: Compression,
    /// The link is TCP (2-byte length prefix, 20-byte TCP header).
    pub tcp: bool,
    /// The link is IPv6 (40-byte IP header).
    pub ipv6_link: bool,
    /// OpenVPN 2.7's epoch data format (a longer packet id).
    pub epoch: bool,
}

impl Framing {
    /// Bytes in front of the encrypted payload and after it that do not
    /// depend on its length: length prefix, opcode/peer-id, and the crypto
    /// overhead (AEAD: packet id and tag; CBC: IV and HMAC).
    fn protocol_header(&self) -> u16 {
        let prefix = if self.tcp { 2 } else { 0 };
        let opcode = if self.peer_id { 4 } else { 1 };
        let crypto = if self.cipher.is_aead() {
            // The 2.7 epoch format sends a 64-bit packet id (epoch + counter).
            let packet_id = if self.epoch { 8 } else { 4 };
            packet_id + crate::data::AEAD_TAG_LEN as u16
        } else {
            16 + self.digest.len() as u16
        };
        prefix + opcode + crypto
    }

    /// Bytes added inside the encrypted payload: the compression byte of the
    /// v1 framings, and the packet id of CBC ciphers (encrypted with it).
    fn payload_overhead(&self) -> u16 {
        let comp = match self.compression {
            Compression::LzoNo
            | Compression::Lzo
            | Compression::LzoAdaptive
            | Compression::StubSwap
            | Compression::Lz4 => 1,
            Compression::None | Compression::StubV2 | Compression::Lz4V2 => 0,
        };
        let packet_id = if self.cipher.is_aead() { 0 } else { 4 };
        comp + packet_id
    }

    /// Outer IP and UDP/TCP headers.
    fn encapsulation(&self) -> u16 {
        let ip = if self.ipv6_link { 40 } else { 20 };
        let transport = if self.tcp { 20 } else { 8 };
        ip + transport
    }
}

/// The largest MSS of a tunnelled IPv4 TCP segment (IPv6 gets 20 less), or
/// `None` when clamping is off or the setting leaves no room at all.
pub fn max_mss(setting: Mssfix, tun_mtu: u16, framing: &Framing) -> Option<u16> {
    let (size, unit) = setting.resolve(tun_mtu)?;
    let mss = match unit {
        MssfixUnit::Fixed => size.checked_sub(IPV4_TCP_HEADERS)?,
        MssfixUnit::Packet | MssfixUnit::Mtu => {
            let mut overhead = framing.protocol_header();
            if unit == MssfixUnit::Mtu {
                overhead += framing.encapsulation();
            }
            let mut target = size.checked_sub(overhead)?;
            if !framing.cipher.is_aead() {
                // CBC: the ciphertext is whole blocks and needs at least one
                // padding byte.
                target = (target / 16 * 16).checked_sub(1)?;
            }
            target.checked_sub(framing.payload_overhead() + IPV4_TCP_HEADERS)?
        }
    };
    // An IPv6 segment must still have room.
    (mss > IPV6_EXTRA).then_some(mss)
}

/// A clamped MSS option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    pub from: u16,
    pub to: u16,
}

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in the IP packet `pkt`
/// to `max_mss_v4` (IPv6: 20 less), fixing the TCP checksum. Anything else
/// (not TCP, not SYN, fragments, truncated or inconsistent headers) is left
/// as it is; so is an MSS already small enough.
pub fn clamp(pkt: &mut [u8], max_mss_v4: u16) -> Option<Clamped> {
    let version = pkt.first()? >> 4;
    let (tcp_start, max) = match version {
        4 => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*pkt.get(2)?, *pkt.get(3)?]));
            let frag = u16::from_be_bytes([*pkt.get(6)?, *pkt.get(7)?]) & 0x1fff;
            if ihl < 20 || total != pkt.len() || frag != 0 || *pkt.get(9)? != 6 {
                return None;
            }
            (ihl, max_mss_v4)
        }
        6 => {
            let payload = usize::from(u16::from_be_bytes([*pkt.get(4)?, *pkt.get(5)?]));
            // Only a TCP header right after the IPv6 header, as OpenVPN.
            if payload + 40 != pkt.len() || *pkt.get(6)? != 6 {
                return None;
            }
            (40, max_mss_v4.checked_sub(IPV6_EXTRA)?)
        }
        _ => return None,
    };
    clamp_tcp(pkt.get_mut(tcp_start..)?, max)
}

/// TCP flag SYN.
const SYN: u8 = 0x02;
/// TCP option kinds.
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

fn clamp_tcp(tcp: &mut [u8], max: u16) -> Option<Clamped> {
    if tcp.len() < 20 || tcp[13] & SYN == 0 {
        return None;
    }
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len <= 20 || header_len > tcp.len() {
        return None;
    }
    let mut i = 20;
    while i + 1 < header_len {
        match tcp[i] {
            OPT_EOL => return None,
            OPT_NOP => i += 1,
            kind => {
                let len = usize::from(tcp[i + 1]);
                if len < 2 || i + len > header_len {
                    return None;
                }
                if kind == OPT_MSS && len == 4 {
                    let from = u16::from_be_bytes([tcp[i + 2], tcp[i + 3]]);
                    if from <= max {
                        return None;
                    }
                    tcp[i + 2..i + 4].copy_from_slice(&max.to_be_bytes());
                    let check = u16::from_be_bytes([tcp[16], tcp[17]]);
                    let check = checksum_replace(check, from, max);
                    tcp[16..18].copy_from_slice(&check.to_be_bytes());
                    return Some(Clamped { from, to: max });
                }
                i += len;
            }
        }
    }
    None
}

/// Incremental update of a ones'-complement checksum when one 16-bit word
/// changes from `old` to `new` (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
fn checksum_replace(check: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcm() -> Framing {
        Framing {
            cipher: Cipher::Aes256Gcm,
            digest: Digest::Sha1,
            peer_id: true,
            compression: Compression::None,
            tcp: false,
            ipv6_link: false,
            epoch: false,
        }
    }

    #[test]
    fn default_is_1492_mtu_for_the_default_tun_mtu() {
        // 1492 - 28 (IPv4+UDP) - 24 (peer-id, packet id, GCM tag) - 40 = 1400.
        assert_eq!(max_mss(Mssfix::Default, 1500, &gcm()), Some(1400));
        // Another tun-mtu: the tun MTU itself, fixed.
        assert_eq!(max_mss(Mssfix::Default, 1400, &gcm()), Some(1360));
        assert_eq!(max_mss(Mssfix::Off, 1500, &gcm()), None);
        let zero = Mssfix::Max {
            size: 0,
            unit: MssfixUnit::Mtu,
        };
        assert_eq!(max_mss(zero, 1500, &gcm()), None);
    }

    #[test]
    fn the_epoch_format_s_longer_packet_id_is_counted() {
        let epoch = Framing {
            epoch: true,
            ..gcm()
        };
        // 4 more bytes of packet id than the 2.6 format: a 4-byte smaller MSS.
        assert_eq!(max_mss(Mssfix::Default, 1500, &epoch), Some(1396));
    }

    #[test]
    fn units_and_framings() {
        let m = |size, unit| Mssfix::Max { size, unit };
        // Without `mtu` the outer headers are not counted.
        assert_eq!(
            max_mss(m(1400, MssfixUnit::Packet), 1500, &gcm()),
            Some(1336)
        );
        assert_eq!(max_mss(m(1400, MssfixUnit::Mtu), 1500, &gcm()), Some(1308));
        assert_eq!(
            max_mss(m(1400, MssfixUnit::Fixed), 1500, &gcm()),
            Some(1360)
        );
        // TCP over IPv6, no peer-id, lzo framing: 2 + 1 + 20 + 40 + 20 + 1 more.
        let f = Framing {
            tcp: true,
            ipv6_link: true,
            peer_id: false,
            compression: Compression::Lzo,
            ..gcm()
        };
        assert_eq!(
            max_mss(m(1492, MssfixUnit::Mtu), 1500, &f),
            Some(1492 - 2 - 1 - 20 - 60 - 1 - 40)
        );
        // CBC with SHA256: IV 16 + HMAC 32 + opcode 4; whole blocks minus a
        // padding byte; packet id inside.
        let cbc = Framing {
            cipher: Cipher::Aes256Cbc,
            digest: Digest::Sha256,
            ..gcm()
        };
        let target = (1492u16 - 28 - 52) / 16 * 16 - 1;
        assert_eq!(max_mss(Mssfix::Default, 1500, &cbc), Some(target - 4 - 40));
        // Nothing left: no clamping rather than an absurd MSS.
        assert_eq!(max_mss(m(60, MssfixUnit::Mtu), 1500, &gcm()), None);
    }

    /// Ones'-complement sum over `data` (odd length padded with zero).
    fn sum16(mut acc: u32, data: &[u8]) -> u32 {
        for c in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        acc
    }

    fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// The TCP checksum of an IPv4 packet computed from scratch.
    fn tcp_checksum_v4(pkt: &[u8]) -> u16 {
        let tcp = &pkt[20..];
        let mut s = sum16(0, &pkt[12..20]);
        s += 6 + tcp.len() as u32;
        let mut t = tcp.to_vec();
        t[16] = 0;
        t[17] = 0;
        fold(sum16(s, &t))
    }

    fn tcp_checksum_v6(pkt: &[u8]) -> u16 {
        let tcp = &pkt[40..];
        let mut s = sum16(0, &pkt[8..40]);
        s += 6 + tcp.len() as u32;
        let mut t = tcp.to_vec();
        t[16] = 0;
        t[17] = 0;
        fold(sum16(s, &t))
    }

    /// A SYN as Linux sends it: MSS, SACK permitted, timestamps, NOP, window scale.
    fn syn_v4(mss: u16, flags: u8) -> Vec<u8> {
        let mut tcp = vec![
            0xc3, 0x50, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, flags, 0xfa, 0xf0, 0, 0, 0, 0,
        ];
        tcp.extend_from_slice(&[2, 4]);
        tcp.extend_from_slice(&mss.to_be_bytes());
        tcp.extend_from_slice(&[4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
        let total = (20 + tcp.len()) as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 8, 0, 2, 10, 0, 0, 3,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&tcp);
        let c = tcp_checksum_v4(&p);
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn syn_v6(mss: u16) -> Vec<u8> {
        let v4 = syn_v4(mss, SYN);
        let tcp = &v4[20..];
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
        p[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0xfd, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[0xfd, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        p.extend_from_slice(tcp);
        let c = tcp_checksum_v6(&p);
        p[56..58].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn clamps_syn_and_syn_ack_with_a_valid_checksum() {
        for flags in [SYN, SYN | 0x10] {
            let mut p = syn_v4(1460, flags);
            assert_eq!(
                clamp(&mut p, 1308),
                Some(Clamped {
                    from: 1460,
                    to: 1308
                })
            );
            assert_eq!(u16::from_be_bytes([p[42], p[43]]), 1308);
            let stored = u16::from_be_bytes([p[36], p[37]]);
            assert_eq!(stored, tcp_checksum_v4(&p), "checksum after clamping");
        }
        // Many values, to exercise the carry of the incremental update.
        for mss in [0xffff, 0x8000, 1461, 9000] {
            let mut p = syn_v4(mss, SYN);
            clamp(&mut p, 1200).unwrap();
            assert_eq!(u16::from_be_bytes([p[36], p[37]]), tcp_checksum_v4(&p));
        }
    }

    #[test]
    fn ipv6_gets_20_less() {
        let mut p = syn_v6(1440);
        assert_eq!(
            clamp(&mut p, 1308),
            Some(Clamped {
                from: 1440,
                to: 1288
            })
        );
        assert_eq!(u16::from_be_bytes([p[56], p[57]]), tcp_checksum_v6(&p));
    }

    #[test]
    fn leaves_everything_else_alone() {
        // Small enough already.
        let mut p = syn_v4(1200, SYN);
        let orig = p.clone();
        assert_eq!(clamp(&mut p, 1308), None);
        assert_eq!(p, orig);
        // Not a SYN.
        let mut p = syn_v4(1460, 0x10);
        assert_eq!(clamp(&mut p, 1308), None);
        // A fragment (offset set), a length that disagrees, UDP, truncated.
        let mut p = syn_v4(1460, SYN);
        p[7] = 1;
        assert_eq!(clamp(&mut p, 1308), None);
        let mut p = syn_v4(1460, SYN);
        p.push(0);
        assert_eq!(clamp(&mut p, 1308), None);
        let mut p = syn_v4(1460, SYN);
        p[9] = 17;
        assert_eq!(clamp(&mut p, 1308), None);
        for n in 0..syn_v4(1460, SYN).len() {
            let mut p = syn_v4(1460, SYN);
            p.truncate(n);
            assert_eq!(clamp(&mut p, 1308), None, "truncated to {n}");
        }
        // An option length running past the header.
        let mut p = syn_v4(1460, SYN);
        p[41] = 40;
        assert_eq!(clamp(&mut p, 1308), None);
        assert_eq!(clamp(&mut [], 1308), None);
    }
}
