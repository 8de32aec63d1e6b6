//! Compression framing of data payloads (§7.5). We never compress: these
//! are the stub framings a 2.6 server expects when a profile says
//! `comp-lzo no`, `compress`/`compress stub` or `compress stub-v2`, applied
//! to every data payload (pings and OCC included). A compressed packet from
//! the server yields [`CompressError::Compressed`], so the caller can drop
//! and count it.
//!
//! Both directions work in place on the caller's buffer: `frame` may write
//! up to [`MAX_PREFIX`] bytes before the payload (reserve that headroom) or
//! one byte after it; `deframe` returns the payload range.

use crate::codec::Blame;
use std::ops::Range;
use thiserror::Error;

/// Bytes `frame` may need before the payload.
pub const MAX_PREFIX: usize = 2;
/// Bytes `frame` may add after the payload (swap moves one byte to the end).
pub const MAX_SUFFIX: usize = 1;

const LZO_NO_COMPRESS: u8 = 0xFA;
const LZO_COMPRESSED: u8 = 0x66;
const SWAP_NO_COMPRESS: u8 = 0xFB;
const LZ4_COMPRESSED: u8 = 0x69;
const V2_ESCAPE: u8 = 0x50;
const V2_UNCOMPRESSED: u8 = 0x00;
/// 2.6 writes this instead of 0x00 (`COMP_ALGV2_UNCOMPRESSED`); tolerated.
const V2_UNCOMPRESSED_26: u8 = 0x0A;

/// The negotiated compression framing (client and server must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression option at all: raw payloads.
    #[default]
    None,
    /// `comp-lzo no` (or pushed `comp-lzo no`): `0xFA` prefix.
    LzoNo,
    /// `compress` / `compress stub`: swap format, `0xFB` first, old first byte last.
    StubSwap,
    /// `compress stub-v2`: raw, payloads starting with `0x50` get `0x50 0x00`.
    StubV2,
}

/// Errors deframing a received payload (or framing without headroom).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CompressError {
    /// The peer sent a compressed payload (marker byte given); we cannot
    /// decompress. Drop and count.
    #[error("compressed payload (marker {0:#04x}) but decompression is not supported")]
    Compressed(u8),
    /// The header byte is not valid for the configured framing.
    #[error("bad compression header byte {0:#04x}")]
    BadHeader(u8),
    /// The v2 escape byte without a following algorithm byte.
    #[error("truncated compression v2 header")]
    Truncated,
    /// Caller error: not enough headroom before the payload.
    #[error("compression framing needs {need} bytes of headroom, {have} available")]
    NoHeadroom {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

impl CompressError {
    /// Blame classification.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Compressed(_) => Blame::Unsupported,
            Self::BadHeader(_) | Self::Truncated => Blame::Malformed,
            Self::NoHeadroom { .. } => Blame::LocalMisuse,
        }
    }
}

impl Compression {
    /// Frames the payload `buf[start..]` in place; returns the new start.
    /// `start` must leave [`MAX_PREFIX`] bytes of headroom for `LzoNo`/`StubV2`.
    /// Empty payloads stay empty (as in OpenVPN).
    pub fn frame(self, buf: &mut Vec<u8>, start: usize) -> Result<usize, CompressError> {
        if start > buf.len() {
            return Err(CompressError::NoHeadroom {
                need: start,
                have: buf.len(),
            });
        }
        if buf.len() == start {
            return Ok(start);
        }
        match self {
            Self::None => Ok(start),
            Self::LzoNo => {
                let s = start.checked_sub(1).ok_or(CompressError::NoHeadroom {
                    need: 1,
                    have: start,
                })?;
                buf[s] = LZO_NO_COMPRESS;
                Ok(s)
            }
            Self::StubSwap => {
                let first = buf[start];
                buf.push(first);
                buf[start] = SWAP_NO_COMPRESS;
                Ok(start)
            }
            Self::StubV2 => {
                if buf[start] != V2_ESCAPE {
                    return Ok(start);
                }
                let s = start.checked_sub(2).ok_or(CompressError::NoHeadroom {
                    need: 2,
                    have: start,
                })?;
                buf[s] = V2_ESCAPE;
                buf[s + 1] = V2_UNCOMPRESSED;
                Ok(s)
            }
        }
    }

    /// Removes the framing of the received payload `buf[range]` (may rewrite
    /// bytes in place) and returns the range of the original payload.
    pub fn deframe(
        self,
        buf: &mut [u8],
        range: Range<usize>,
    ) -> Result<Range<usize>, CompressError> {
        let Some(p) = buf.get_mut(range.clone()) else {
            return Err(CompressError::NoHeadroom {
                need: range.end,
                have: 0,
            });
        };
        let Some(&first) = p.first() else {
            return Ok(range);
        };
        match self {
            Self::None => Ok(range),
            Self::LzoNo => match first {
                LZO_NO_COMPRESS => Ok(range.start + 1..range.end),
                LZO_COMPRESSED => Err(CompressError::Compressed(first)),
                b => Err(CompressError::BadHeader(b)),
            },
            Self::StubSwap => match first {
                SWAP_NO_COMPRESS => {
                    let n = p.len();
                    p[0] = p[n - 1];
                    Ok(range.start..range.end - 1)
                }
                LZ4_COMPRESSED | LZO_COMPRESSED => Err(CompressError::Compressed(first)),
                b => Err(CompressError::BadHeader(b)),
            },
            Self::StubV2 => {
                if first != V2_ESCAPE {
                    return Ok(range);
                }
                match p.get(1) {
                    None => Err(CompressError::Truncated),
                    Some(&V2_UNCOMPRESSED) | Some(&V2_UNCOMPRESSED_26) => {
                        Ok(range.start + 2..range.end)
                    }
                    Some(&alg) => Err(CompressError::Compressed(alg)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ping::PING_MAGIC;

    fn framed(c: Compression, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(payload);
        let s = c.frame(&mut buf, 4).unwrap();
        buf[s..].to_vec()
    }

    fn round_trip(c: Compression, payload: &[u8]) {
        let mut wire = framed(c, payload);
        let n = wire.len();
        let r = c.deframe(&mut wire, 0..n).unwrap();
        assert_eq!(&wire[r], payload, "{c:?}");
    }

    #[test]
    fn none_is_identity() {
        assert_eq!(framed(Compression::None, &[0x45, 1, 2]), vec![0x45, 1, 2]);
        round_trip(Compression::None, &[0x45, 1, 2]);
    }

    #[test]
    fn lzo_no_prefixes_fa() {
        assert_eq!(
            framed(Compression::LzoNo, &[0x45, 1, 2]),
            vec![0xFA, 0x45, 1, 2]
        );
        let mut ping = vec![0xFA];
        ping.extend_from_slice(&PING_MAGIC);
        assert_eq!(framed(Compression::LzoNo, &PING_MAGIC), ping);
        round_trip(Compression::LzoNo, &PING_MAGIC);
        let mut lzo = vec![0x66, 1, 2];
        assert_eq!(
            Compression::LzoNo.deframe(&mut lzo, 0..3),
            Err(CompressError::Compressed(0x66))
        );
        let mut bad = vec![0x45, 1];
        assert_eq!(
            Compression::LzoNo.deframe(&mut bad, 0..2),
            Err(CompressError::BadHeader(0x45))
        );
    }

    #[test]
    fn stub_swap_moves_first_byte_to_end() {
        assert_eq!(
            framed(Compression::StubSwap, &[0x45, 1, 2]),
            vec![0xFB, 1, 2, 0x45]
        );
        assert_eq!(framed(Compression::StubSwap, &[0x60]), vec![0xFB, 0x60]);
        let mut ping = vec![0xFB];
        ping.extend_from_slice(&PING_MAGIC[1..]);
        ping.push(PING_MAGIC[0]);
        assert_eq!(framed(Compression::StubSwap, &PING_MAGIC), ping);
        round_trip(Compression::StubSwap, &PING_MAGIC);
        round_trip(Compression::StubSwap, &[0x60]);
        let mut lz4 = vec![0x69, 1, 2];
        assert_eq!(
            Compression::StubSwap.deframe(&mut lz4, 0..3),
            Err(CompressError::Compressed(0x69))
        );
        let mut bad = vec![0xFA, 1];
        assert_eq!(
            Compression::StubSwap.deframe(&mut bad, 0..2),
            Err(CompressError::BadHeader(0xFA))
        );
    }

    #[test]
    fn stub_v2_escapes_0x50_only() {
        assert_eq!(framed(Compression::StubV2, &[0x45, 1]), vec![0x45, 1]);
        assert_eq!(
            framed(Compression::StubV2, &[0x50, 1]),
            vec![0x50, 0x00, 0x50, 1]
        );
        round_trip(Compression::StubV2, &[0x50, 1]);
        round_trip(Compression::StubV2, &PING_MAGIC);
        // 2.6 escapes with 0x0A
        let mut w = vec![0x50, 0x0A, 0x50, 7];
        assert_eq!(Compression::StubV2.deframe(&mut w, 0..4), Ok(2..4));
        let mut lz4 = vec![0x50, 0x01, 9];
        assert_eq!(
            Compression::StubV2.deframe(&mut lz4, 0..3),
            Err(CompressError::Compressed(1))
        );
        let mut t = vec![0x50];
        assert_eq!(
            Compression::StubV2.deframe(&mut t, 0..1),
            Err(CompressError::Truncated)
        );
    }

    #[test]
    fn headroom_and_empty() {
        let mut b = vec![0x50, 1];
        assert_eq!(
            Compression::StubV2.frame(&mut b, 0),
            Err(CompressError::NoHeadroom { need: 2, have: 0 })
        );
        let mut b = vec![1, 2];
        assert_eq!(Compression::LzoNo.frame(&mut b, 2), Ok(2));
        for c in [
            Compression::None,
            Compression::LzoNo,
            Compression::StubSwap,
            Compression::StubV2,
        ] {
            let mut e: Vec<u8> = vec![];
            assert_eq!(c.deframe(&mut e, 0..0), Ok(0..0));
        }
        assert_eq!(CompressError::Compressed(1).blame(), Blame::Unsupported);
    }
}
