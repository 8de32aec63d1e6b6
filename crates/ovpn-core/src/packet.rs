//! OpenVPN packet framing: opcodes, key ids, session ids, the plain control
//! packet (protocol notes §1.4) and the data packet header (§1.7).
//!
//! "Plain" means after control-channel unwrapping (see [`crate::wrap`]):
//! `[op|kid][own sid 8][n][acks 4n][peer sid 8 if n>0][msg id 4 unless ACK][payload]`.
//! Received packets are unwrapped first, then parsed with
//! [`ControlPacket::decode`]; outgoing ones are built with
//! [`ControlPacket::encode`] and then wrapped at send time.

use crate::codec::{Blame, CodecError, Reader, Writer};
use thiserror::Error;

/// Maximum number of ACKs one control packet may carry (`RELIABLE_ACK_SIZE`).
pub const MAX_ACKS: usize = 8;

/// Opcodes (high 5 bits of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// `P_CONTROL_HARD_RESET_CLIENT_V1` (key-method 1, unsupported).
    HardResetClientV1 = 1,
    /// `P_CONTROL_HARD_RESET_SERVER_V1` (key-method 1, unsupported).
    HardResetServerV1 = 2,
    /// `P_CONTROL_SOFT_RESET_V1`: starts a new key_id.
    SoftResetV1 = 3,
    /// `P_CONTROL_V1`: reliable TLS bytes.
    ControlV1 = 4,
    /// `P_ACK_V1`: ACKs only.
    AckV1 = 5,
    /// `P_DATA_V1`: data, 1-byte header.
    DataV1 = 6,
    /// `P_CONTROL_HARD_RESET_CLIENT_V2`: first client packet.
    HardResetClientV2 = 7,
    /// `P_CONTROL_HARD_RESET_SERVER_V2`: server answer.
    HardResetServerV2 = 8,
    /// `P_DATA_V2`: data, 4-byte header with peer-id.
    DataV2 = 9,
    /// `P_CONTROL_HARD_RESET_CLIENT_V3`: client reset with tls-crypt-v2 WKc.
    HardResetClientV3 = 10,
    /// `P_CONTROL_WKC_V1`: `P_CONTROL_V1` plus WKc.
    ControlWkcV1 = 11,
}

impl Opcode {
    /// Maps the 5-bit opcode value; `None` for unknown values.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::HardResetClientV1,
            2 => Self::HardResetServerV1,
            3 => Self::SoftResetV1,
            4 => Self::ControlV1,
            5 => Self::AckV1,
            6 => Self::DataV1,
            7 => Self::HardResetClientV2,
            8 => Self::HardResetServerV2,
            9 => Self::DataV2,
            10 => Self::HardResetClientV3,
            11 => Self::ControlWkcV1,
            _ => return None,
        })
    }

    /// True for the two data opcodes.
    pub fn is_data(self) -> bool {
        matches!(self, Self::DataV1 | Self::DataV2)
    }

    /// True for control-channel opcodes (everything but data).
    pub fn is_control(self) -> bool {
        !self.is_data()
    }

    /// True for opcodes that carry a message packet-id (all control but ACK).
    pub fn has_message_id(self) -> bool {
        self.is_control() && self != Self::AckV1
    }

    /// True for opcodes whose wrapped form carries the tls-crypt-v2 WKc.
    pub fn carries_wkc(self) -> bool {
        matches!(self, Self::HardResetClientV3 | Self::ControlWkcV1)
    }
}

/// Key id (0..=7), low 3 bits of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyId(u8);

impl KeyId {
    /// Key id 0, used by the first key of a session.
    pub const ZERO: KeyId = KeyId(0);

    /// Returns `None` for values above 7.
    pub fn new(v: u8) -> Option<Self> {
        (v <= 7).then_some(Self(v))
    }

    /// The numeric value.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Key id of the next renegotiation: 0,1..7,1.. (0 is never reused).
    pub fn next(self) -> Self {
        if self.0 >= 7 {
            Self(1)
        } else {
            Self(self.0 + 1)
        }
    }
}

/// An 8-byte control-channel session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub [u8; 8]);

impl SessionId {
    /// True if all bytes are zero (never valid for a live session).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

/// The first byte of a packet, split into opcode and key id.
pub fn encode_first_byte(op: Opcode, key_id: KeyId) -> u8 {
    ((op as u8) << 3) | key_id.0
}

/// Splits the first byte of any received packet. Works on wrapped packets
/// too (the first byte is never encrypted), so the caller can route data
/// vs. control before unwrapping.
pub fn peek_header(pkt: &[u8]) -> Result<(Opcode, KeyId), PacketError> {
    let b = *pkt
        .first()
        .ok_or(PacketError::Codec(CodecError::Truncated {
            field: "opcode",
            need: 1,
            have: 0,
        }))?;
    let op = Opcode::from_u8(b >> 3).ok_or(PacketError::UnknownOpcode(b >> 3))?;
    Ok((op, KeyId(b & 7)))
}

/// Errors decoding a packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Truncated, trailing bytes, or a bad field.
    #[error("malformed packet: {0}")]
    Codec(#[from] CodecError),
    /// The opcode value is not one OpenVPN defines.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    /// A data opcode where a control packet was expected (or vice versa).
    #[error("opcode {0:?} not allowed here")]
    WrongOpcode(Opcode),
    /// More than [`MAX_ACKS`] ACKs.
    #[error("ACK list of {0} entries exceeds {MAX_ACKS}")]
    TooManyAcks(usize),
    /// A `P_ACK_V1` with an empty ACK list (it would carry nothing).
    #[error("P_ACK_V1 without ACKs")]
    EmptyAck,
    /// Encode-time misuse: payload on ACK, ACKs without peer session id, ...
    #[error("cannot encode control packet: {0}")]
    Encode(&'static str),
}

impl PacketError {
    /// Blame classification for counting drops.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Encode(_) => Blame::LocalMisuse,
            Self::WrongOpcode(_) => Blame::PeerMisbehaved,
            _ => Blame::Malformed,
        }
    }
}

/// A plain (unwrapped) control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPacket {
    /// A control opcode (never DataV1/DataV2).
    pub opcode: Opcode,
    /// Key id of the key_state this belongs to.
    pub key_id: KeyId,
    /// Sender's session id.
    pub session_id: SessionId,
    /// ACKed message packet-ids (at most [`MAX_ACKS`]).
    pub acks: Vec<u32>,
    /// Receiver's session id; present exactly when `acks` is non-empty.
    pub remote_session_id: Option<SessionId>,
    /// Message packet-id; `None` only for `P_ACK_V1`.
    pub message_id: Option<u32>,
    /// TLS bytes (empty for resets, ACKs).
    pub payload: Vec<u8>,
}

impl ControlPacket {
    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        1 + 8
            + ack_block_len(self.acks.len())
            + if self.message_id.is_some() { 4 } else { 0 }
            + self.payload.len()
    }

    /// Appends the plain encoding to `out`.
    ///
    /// Fails if the packet is inconsistent: data opcode, too many ACKs,
    /// ACKs without `remote_session_id` (or the reverse), message id
    /// present/absent contrary to the opcode, payload on an ACK.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PacketError> {
        if self.opcode.is_data() {
            return Err(PacketError::WrongOpcode(self.opcode));
        }
        if self.acks.len() > MAX_ACKS {
            return Err(PacketError::TooManyAcks(self.acks.len()));
        }
        if self.acks.is_empty() != self.remote_session_id.is_none() {
            return Err(PacketError::Encode(
                "remote session id must be present exactly when ACKs are",
            ));
        }
        if self.opcode.has_message_id() != self.message_id.is_some() {
            return Err(PacketError::Encode(
                "message id must be present for all control opcodes except P_ACK_V1",
            ));
        }
        if self.opcode == Opcode::AckV1 && (!self.payload.is_empty() || self.acks.is_empty()) {
            return Err(PacketError::Encode(
                "P_ACK_V1 needs at least one ACK and no payload",
            ));
        }
        out.reserve(self.encoded_len());
        let mut w = Writer::new(out);
        w.u8(encode_first_byte(self.opcode, self.key_id))
            .bytes(&self.session_id.0)
            .u8(self.acks.len() as u8);
        for a in &self.acks {
            w.u32(*a);
        }
        if let Some(r) = &self.remote_session_id {
            w.bytes(&r.0);
        }
        if let Some(id) = self.message_id {
            w.u32(id);
        }
        w.bytes(&self.payload);
        Ok(())
    }

    /// Parses a plain control packet (the whole buffer).
    pub fn decode(buf: &[u8]) -> Result<Self, PacketError> {
        let (opcode, key_id) = peek_header(buf)?;
        if opcode.is_data() {
            return Err(PacketError::WrongOpcode(opcode));
        }
        let mut r = Reader::new(buf);
        r.u8("opcode")?;
        let session_id = SessionId(r.array("session id")?);
        let n = r.u8("ack count")? as usize;
        if n > MAX_ACKS {
            return Err(PacketError::TooManyAcks(n));
        }
        let mut acks = Vec::with_capacity(n);
        for _ in 0..n {
            acks.push(r.u32("ack id")?);
        }
        let remote_session_id = if n > 0 {
            Some(SessionId(r.array("remote session id")?))
        } else {
            None
        };
        let message_id = if opcode.has_message_id() {
            Some(r.u32("message packet id")?)
        } else {
            None
        };
        let payload = r.rest().to_vec();
        if opcode == Opcode::AckV1 {
            if n == 0 {
                return Err(PacketError::EmptyAck);
            }
            if !payload.is_empty() {
                return Err(PacketError::Codec(CodecError::Trailing {
                    after: "P_ACK_V1",
                    extra: payload.len(),
                }));
            }
        }
        Ok(Self {
            opcode,
            key_id,
            session_id,
            acks,
            remote_session_id,
            message_id,
            payload,
        })
    }
}

/// Size of an ACK block with `n` ACKs: count byte, ids, peer session id.
pub fn ack_block_len(n: usize) -> usize {
    1 + if n > 0 { 8 } else { 0 } + 4 * n
}

/// Data packet header (§1.7): `P_DATA_V1` (1 byte) or `P_DATA_V2` (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataHeader {
    /// `[0x30|kid]`.
    V1 {
        /// Key id.
        key_id: KeyId,
    },
    /// `[0x48|kid][peer-id u24]`.
    V2 {
        /// Key id.
        key_id: KeyId,
        /// Peer id (24 bits) pushed by the server.
        peer_id: u32,
    },
}

/// The peer-id value meaning "unset" in `P_DATA_V2`.
pub const PEER_ID_UNDEF: u32 = 0x00FF_FFFF;

impl DataHeader {
    /// Header length on the wire (1 or 4).
    pub fn len(&self) -> usize {
        match self {
            Self::V1 { .. } => 1,
            Self::V2 { .. } => 4,
        }
    }

    /// Never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Key id carried by the header.
    pub fn key_id(&self) -> KeyId {
        match self {
            Self::V1 { key_id } | Self::V2 { key_id, .. } => *key_id,
        }
    }

    /// Writes the header into the first `self.len()` bytes of `out`.
    /// Panics never: returns an error if `out` is too short.
    pub fn write(&self, out: &mut [u8]) -> Result<(), PacketError> {
        let need = self.len();
        let Some(dst) = out.get_mut(..need) else {
            return Err(PacketError::Encode("buffer too short for data header"));
        };
        match *self {
            Self::V1 { key_id } => dst[0] = encode_first_byte(Opcode::DataV1, key_id),
            Self::V2 { key_id, peer_id } => {
                let p = (peer_id & 0x00FF_FFFF).to_be_bytes();
                dst[0] = encode_first_byte(Opcode::DataV2, key_id);
                dst[1..4].copy_from_slice(&p[1..]);
            }
        }
        Ok(())
    }

    /// Parses the header at the start of a data packet.
    pub fn parse(pkt: &[u8]) -> Result<Self, PacketError> {
        let (op, key_id) = peek_header(pkt)?;
        let mut r = Reader::new(pkt);
        r.u8("opcode")?;
        match op {
            Opcode::DataV1 => Ok(Self::V1 { key_id }),
            Opcode::DataV2 => Ok(Self::V2 {
                key_id,
                peer_id: r.u24("peer id")?,
            }),
            other => Err(PacketError::WrongOpcode(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const CLIENT_RESET_V2_NONE: [u8; 14] = hex!("38 6891923fa3103437 00 00000000");
    const CLIENT_CONTROL_WITH_ACK: [u8; 29] =
        hex!("20 7819bf2ebcd19a45 01 00000000 eafebfa4418ae31b 00000001 160301");
    const CLIENT_ACK_123: [u8; 30] =
        hex!("28 aeb9afe1f01d79c8 03 00000000 00000001 00000002 dd85db535623b02e");

    #[test]
    fn client_reset_v2_none_round_trip() {
        let p = ControlPacket::decode(&CLIENT_RESET_V2_NONE).unwrap();
        assert_eq!(p.opcode, Opcode::HardResetClientV2);
        assert_eq!(p.key_id, KeyId::ZERO);
        assert_eq!(p.session_id, SessionId(hex!("6891923fa3103437")));
        assert!(p.acks.is_empty());
        assert_eq!(p.remote_session_id, None);
        assert_eq!(p.message_id, Some(0));
        assert!(p.payload.is_empty());
        let mut out = Vec::new();
        p.encode(&mut out).unwrap();
        assert_eq!(out, CLIENT_RESET_V2_NONE);
        assert_eq!(p.encoded_len(), 14);
    }

    #[test]
    fn control_with_ack_round_trip() {
        let p = ControlPacket::decode(&CLIENT_CONTROL_WITH_ACK).unwrap();
        assert_eq!(p.opcode, Opcode::ControlV1);
        assert_eq!(p.acks, vec![0]);
        assert_eq!(
            p.remote_session_id,
            Some(SessionId(hex!("eafebfa4418ae31b")))
        );
        assert_eq!(p.message_id, Some(1));
        assert_eq!(p.payload, hex!("160301"));
        let mut out = Vec::new();
        p.encode(&mut out).unwrap();
        assert_eq!(out, CLIENT_CONTROL_WITH_ACK);
    }

    #[test]
    fn ack_packet_parses_three_acks() {
        let p = ControlPacket::decode(&CLIENT_ACK_123).unwrap();
        assert_eq!(p.opcode, Opcode::AckV1);
        assert_eq!(p.acks, vec![0, 1, 2]);
        assert_eq!(p.message_id, None);
        let mut out = Vec::new();
        p.encode(&mut out).unwrap();
        assert_eq!(out, CLIENT_ACK_123);
    }

    #[test]
    fn rejects_bad_control_packets() {
        // truncated in the session id
        assert!(matches!(
            ControlPacket::decode(&CLIENT_RESET_V2_NONE[..5]),
            Err(PacketError::Codec(CodecError::Truncated { .. }))
        ));
        // 9 ACKs
        let mut p = CLIENT_RESET_V2_NONE.to_vec();
        p[9] = 9;
        assert_eq!(ControlPacket::decode(&p), Err(PacketError::TooManyAcks(9)));
        // ACK with trailing payload
        let mut p = CLIENT_ACK_123.to_vec();
        p.push(0);
        assert!(ControlPacket::decode(&p).is_err());
        // ACK without acks
        assert_eq!(
            ControlPacket::decode(&hex!("28 aeb9afe1f01d79c8 00")),
            Err(PacketError::EmptyAck)
        );
        // unknown opcode 0 and 12
        assert_eq!(
            ControlPacket::decode(&hex!("00 0000")),
            Err(PacketError::UnknownOpcode(0))
        );
        assert_eq!(
            ControlPacket::decode(&[12 << 3]),
            Err(PacketError::UnknownOpcode(12))
        );
        // data opcode
        assert_eq!(
            ControlPacket::decode(&[0x48, 0, 0, 0]),
            Err(PacketError::WrongOpcode(Opcode::DataV2))
        );
        assert!(ControlPacket::decode(&[]).is_err());
    }

    #[test]
    fn encode_rejects_inconsistent_packets() {
        let mut p = ControlPacket::decode(&CLIENT_CONTROL_WITH_ACK).unwrap();
        p.remote_session_id = None;
        assert!(matches!(
            p.encode(&mut Vec::new()),
            Err(PacketError::Encode(_))
        ));
        let mut p = ControlPacket::decode(&CLIENT_CONTROL_WITH_ACK).unwrap();
        p.acks = vec![0; 9];
        assert_eq!(p.encode(&mut Vec::new()), Err(PacketError::TooManyAcks(9)));
        let mut p = ControlPacket::decode(&CLIENT_ACK_123).unwrap();
        p.payload = vec![1];
        assert!(p.encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn first_byte_and_key_ids() {
        assert_eq!(
            encode_first_byte(Opcode::HardResetClientV2, KeyId::ZERO),
            0x38
        );
        assert_eq!(encode_first_byte(Opcode::ControlV1, KeyId::ZERO), 0x20);
        assert_eq!(encode_first_byte(Opcode::AckV1, KeyId::ZERO), 0x28);
        assert_eq!(encode_first_byte(Opcode::DataV1, KeyId::ZERO), 0x30);
        assert_eq!(encode_first_byte(Opcode::DataV2, KeyId::ZERO), 0x48);
        assert_eq!(
            encode_first_byte(Opcode::HardResetClientV3, KeyId::ZERO),
            0x50
        );
        assert_eq!(encode_first_byte(Opcode::ControlWkcV1, KeyId::ZERO), 0x58);
        assert_eq!(
            peek_header(&[0x22]).unwrap(),
            (Opcode::ControlV1, KeyId::new(2).unwrap())
        );
        let mut k = KeyId::ZERO;
        let seq: Vec<u8> = (0..9)
            .map(|_| {
                k = k.next();
                k.get()
            })
            .collect();
        assert_eq!(seq, vec![1, 2, 3, 4, 5, 6, 7, 1, 2]);
        assert_eq!(KeyId::new(8), None);
    }

    #[test]
    fn data_headers() {
        let h = DataHeader::V2 {
            key_id: KeyId::new(1).unwrap(),
            peer_id: 0x17,
        };
        let mut b = [0u8; 4];
        h.write(&mut b).unwrap();
        assert_eq!(b, hex!("49 000017"));
        assert_eq!(DataHeader::parse(&b).unwrap(), h);
        assert_eq!(
            DataHeader::parse(&[0x30]).unwrap(),
            DataHeader::V1 {
                key_id: KeyId::ZERO
            }
        );
        assert!(DataHeader::parse(&[0x48, 0]).is_err());
        assert!(DataHeader::parse(&[0x20]).is_err());
        assert!(h.write(&mut [0u8; 3]).is_err());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
            #[test]
            fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = ControlPacket::decode(&data);
                let _ = DataHeader::parse(&data);
                let _ = peek_header(&data);
            }

            #[test]
            fn decoded_packets_re_encode_identically(
                data in proptest::collection::vec(any::<u8>(), 0..120),
                first in prop_oneof![Just(0x38u8), Just(0x20), Just(0x28), Just(0x40), Just(0x19)],
                n in 0u8..=9,
            ) {
                let mut pkt = vec![first];
                pkt.extend_from_slice(&[1; 8]);
                pkt.push(n);
                pkt.extend_from_slice(&data);
                if let Ok(p) = ControlPacket::decode(&pkt) {
                    let mut out = Vec::new();
                    p.encode(&mut out).unwrap();
                    prop_assert_eq!(out, pkt);
                }
            }
        }
    }
}
