//! Compression of data payloads (§7.5), as OpenVPN 2.6 frames it
//! (`comp.h`, `compstub.c`, `lzo.c`, `comp-lz4.c`).
//!
//! Three framings, each with a stub (framing only) and a real algorithm:
//!
//! | framing | stub | real | uncompressed | compressed |
//! | --- | --- | --- | --- | --- |
//! | prefix | `comp-lzo no` | `comp-lzo [yes\|adaptive]`, `compress lzo` | `0xFA` + packet | `0x66` + LZO1X block |
//! | swap | `compress [stub]` | `compress lz4` | `0xFB`, old first byte moved to the end | `0x69` + LZ4 block, its first byte moved to the end |
//! | v2 | `compress stub-v2` | `compress lz4-v2` | raw; a packet starting `0x50` gets `0x50 0x00` | `0x50 0x01` + LZ4 block |
//!
//! Receiving: whatever the framing, a compressed payload the server sends
//! is decompressed (OpenVPN 2.6's `allow-compression asym`), unless the
//! profile says `allow-compression no`. Output is bounded by the buffer
//! given to [`Compressor::new`] (tunnel MTU plus headroom): a bomb or a
//! malformed block is an error for the caller to count, never an
//! allocation. Decoders are well-kept crates (`lzallright` for LZO1X,
//! `lz4_flex` for LZ4 blocks); nothing here decodes by hand.
//!
//! Sending: uncompressed framing only, unless the profile says
//! `allow-compression yes` and a real algorithm is configured or pushed;
//! then payloads of at least [`COMPRESS_THRESHOLD`] bytes are compressed
//! when that makes them smaller, as 2.6 does. With `comp-lzo adaptive` (and
//! bare `comp-lzo`) 2.6's adaptive heuristic ([`adaptive`]) also switches
//! compression off for a while when it does not pay.
//!
//! Framing works in place on the caller's buffer: `frame` may write up to
//! [`MAX_PREFIX`] bytes before the payload (reserve that headroom) and one
//! byte after it.

use crate::codec::Blame;
use std::ops::Range;
use std::time::Instant;
use thiserror::Error;

pub mod adaptive;
pub use adaptive::Adaptive;

/// Bytes `frame` may need before the payload.
pub const MAX_PREFIX: usize = 2;
/// Bytes `frame` may add after the payload (swap moves one byte to the end).
pub const MAX_SUFFIX: usize = 1;
/// OpenVPN compresses only payloads at least this long (`COMPRESS_THRESHOLD`).
pub const COMPRESS_THRESHOLD: usize = 100;
/// Headroom above the tunnel MTU a decompressed payload may use.
pub const DECOMPRESS_SLACK: usize = 128;

const LZO_NO_COMPRESS: u8 = 0xFA;
const LZO_COMPRESSED: u8 = 0x66;
const SWAP_NO_COMPRESS: u8 = 0xFB;
const LZ4_COMPRESSED: u8 = 0x69;
const V2_ESCAPE: u8 = 0x50;
const V2_UNCOMPRESSED: u8 = 0x00;
const V2_LZ4: u8 = 0x01;
/// 2.6 writes this instead of 0x00 (`COMP_ALGV2_UNCOMPRESSED`); tolerated.
const V2_UNCOMPRESSED_26: u8 = 0x0A;

/// The negotiated compression (client and server must agree on the framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression option at all: raw payloads.
    #[default]
    None,
    /// `comp-lzo no`: prefix framing, `0xFA`.
    LzoNo,
    /// `compress` / `compress stub`: swap framing, `0xFB`.
    StubSwap,
    /// `compress stub-v2`: v2 framing.
    StubV2,
    /// `comp-lzo yes`, `compress lzo`: prefix framing, LZO1X.
    Lzo,
    /// `comp-lzo`, `comp-lzo adaptive`: prefix framing, LZO1X; on send
    /// (with `allow-compression yes`) OpenVPN 2.6's adaptive heuristic.
    LzoAdaptive,
    /// `compress lz4`: swap framing, LZ4.
    Lz4,
    /// `compress lz4-v2`: v2 framing, LZ4.
    Lz4V2,
}

impl Compression {
    /// True for a real algorithm (not a stub and not none).
    pub fn is_real(self) -> bool {
        matches!(
            self,
            Self::Lzo | Self::LzoAdaptive | Self::Lz4 | Self::Lz4V2
        )
    }

    /// What the profile/push line looked like, for logs and status.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::LzoNo => "comp-lzo no",
            Self::StubSwap => "compress stub",
            Self::StubV2 => "compress stub-v2",
            Self::Lzo => "lzo",
            Self::LzoAdaptive => "lzo adaptive",
            Self::Lz4 => "lz4",
            Self::Lz4V2 => "lz4-v2",
        }
    }

    /// The `compress ALG` argument (`None` = bare `compress`), as OpenVPN
    /// 2.6 reads it; `Err` for an unknown algorithm.
    pub fn from_compress_arg(arg: Option<&str>) -> Result<Self, UnknownCompression> {
        Ok(match arg {
            None | Some("stub") => Self::StubSwap,
            Some("stub-v2") => Self::StubV2,
            // `compress lzo` is LZO without swap: the comp-lzo framing (options.c).
            Some("lzo") => Self::Lzo,
            Some("lz4") => Self::Lz4,
            Some("lz4-v2") => Self::Lz4V2,
            Some(other) => return Err(UnknownCompression(other.to_string())),
        })
    }

    /// The `comp-lzo [yes|no|adaptive]` argument (`None` = bare, adaptive).
    pub fn from_comp_lzo_arg(arg: Option<&str>) -> Result<Self, UnknownCompression> {
        match arg {
            Some("no") => Ok(Self::LzoNo),
            Some("yes") => Ok(Self::Lzo),
            None | Some("adaptive") => Ok(Self::LzoAdaptive),
            Some(other) => Err(UnknownCompression(other.to_string())),
        }
    }

    fn framing(self) -> Framing {
        match self {
            Self::None => Framing::None,
            Self::LzoNo | Self::Lzo | Self::LzoAdaptive => Framing::Prefix,
            Self::StubSwap | Self::Lz4 => Framing::Swap,
            Self::StubV2 | Self::Lz4V2 => Framing::V2,
        }
    }
}

/// A compression algorithm OpenVPN does not know (`compress snappy`, typos).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown compression algorithm {0:?} (known: lzo, lz4, lz4-v2, stub, stub-v2)")]
pub struct UnknownCompression(pub String);

/// The profile's `allow-compression` (OpenVPN 2.6 semantics; `asym` when
/// absent: receive compressed packets, never send them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllowCompression {
    /// `allow-compression no`: framing only; compressed packets are dropped.
    No,
    /// Decompress what arrives, send uncompressed.
    #[default]
    Asym,
    /// `allow-compression yes`: also compress what we send.
    Yes,
}

impl AllowCompression {
    /// Parses the directive's argument.
    pub fn from_arg(arg: &str) -> Option<Self> {
        match arg {
            "no" => Some(Self::No),
            "asym" => Some(Self::Asym),
            "yes" => Some(Self::Yes),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Prefix,
    Swap,
    V2,
}

/// Which algorithm a compressed payload used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// LZO1X.
    Lzo,
    /// LZ4 block.
    Lz4,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Lzo => "LZO",
            Self::Lz4 => "LZ4",
        })
    }
}

/// Errors deframing/decompressing a received payload (or framing without
/// headroom). All but `NoHeadroom` are a counted drop of that packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CompressError {
    /// The server compressed, but the profile says `allow-compression no`.
    #[error("{0} compressed packet refused (the profile says allow-compression no)")]
    Refused(Algorithm),
    /// The header byte is not valid for the framing the session agreed on.
    #[error("compression header byte {0:#04x} does not match the agreed compression")]
    BadHeader(u8),
    /// The v2 escape byte without a following algorithm byte.
    #[error("truncated compression v2 header")]
    Truncated,
    /// The compressed block does not decode.
    #[error("{0} compressed block does not decode")]
    Undecodable(Algorithm),
    /// The block decodes to more than the tunnel MTU allows (a bomb, or a
    /// server with a larger MTU).
    #[error("{alg} block decompresses to more than {limit} bytes")]
    TooLarge {
        /// Algorithm.
        alg: Algorithm,
        /// The bound.
        limit: usize,
    },
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
            Self::Refused(_) => Blame::Unsupported,
            Self::BadHeader(_) | Self::Truncated | Self::Undecodable(_) | Self::TooLarge { .. } => {
                Blame::Malformed
            }
            Self::NoHeadroom { .. } => Blame::LocalMisuse,
        }
    }
}

/// Where a deframed payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// In the caller's buffer, at this range.
    InPlace(Range<usize>),
    /// Decompressed: the first `n` bytes of [`Compressor::decompressed`].
    Decompressed(usize),
}

/// Byte counts of compressed traffic (OpenVPN's `pre/post-(de)compress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressStats {
    /// Compressed bytes received / what they decompressed to.
    pub pre_decompress: u64,
    pub post_decompress: u64,
    /// Bytes we compressed / what they compressed to.
    pub pre_compress: u64,
    pub post_compress: u64,
}

/// Compression state of a session: the agreed mode, the profile's policy
/// and the one output buffer, allocated once.
pub struct Compressor {
    mode: Compression,
    allow: AllowCompression,
    /// Decompression output; its length is the bound.
    out: Vec<u8>,
    /// Compression output (only with `allow-compression yes`).
    work: Vec<u8>,
    lzo_dict: Option<Box<lzallright::Dict>>,
    stats: CompressStats,
    /// `comp-lzo adaptive`'s on/off state (used only in that mode).
    adaptive: Adaptive,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("mode", &self.mode)
            .field("allow", &self.allow)
            .field("limit", &self.out.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// `max_payload`: the largest packet the tunnel carries (its MTU);
    /// decompressed payloads may use [`DECOMPRESS_SLACK`] more.
    pub fn new(mode: Compression, allow: AllowCompression, max_payload: usize) -> Self {
        Self {
            mode,
            allow,
            out: vec![0; max_payload.saturating_add(DECOMPRESS_SLACK)],
            work: Vec::new(),
            lzo_dict: None,
            stats: CompressStats::default(),
            adaptive: Adaptive::default(),
        }
    }

    /// The agreed mode.
    pub fn mode(&self) -> Compression {
        self.mode
    }

    /// The profile's policy.
    pub fn allow(&self) -> AllowCompression {
        self.allow
    }

    /// Changes the mode (a pushed `comp-lzo`/`compress`).
    pub fn set_mode(&mut self, mode: Compression) {
        self.mode = mode;
    }

    /// Byte counts so far.
    pub fn stats(&self) -> CompressStats {
        self.stats
    }

    /// Largest decompressed payload accepted.
    pub fn limit(&self) -> usize {
        self.out.len()
    }

    /// True when payloads we send may be compressed.
    pub fn compresses_on_send(&self) -> bool {
        self.allow == AllowCompression::Yes && self.mode.is_real()
    }

    /// The decompressed payload of the last [`Payload::Decompressed`].
    pub fn decompressed(&self, n: usize) -> &[u8] {
        self.out.get(..n).unwrap_or(&[])
    }

    /// The decompressed payload, writable (the MSS clamp edits it in place).
    pub fn decompressed_mut(&mut self, n: usize) -> Option<&mut [u8]> {
        self.out.get_mut(..n)
    }

    /// The adaptive heuristic's state (`comp-lzo adaptive` only).
    pub fn adaptive(&self) -> &Adaptive {
        &self.adaptive
    }

    /// Frames (and with `allow-compression yes`, compresses) the payload
    /// `buf[start..]` in place; returns the new start. `start` must leave
    /// [`MAX_PREFIX`] bytes of headroom. Empty payloads stay empty. Without
    /// a clock the adaptive heuristic does not run: every long enough payload
    /// is tried, as with `comp-lzo yes`; sessions use [`frame_at`](Self::frame_at).
    pub fn frame(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<usize, CompressError> {
        self.frame_inner(None, buf, start)
    }

    /// [`frame`](Self::frame) for a payload sent at `now`: with
    /// `comp-lzo adaptive`, the heuristic decides whether to try compressing.
    pub fn frame_at(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<usize, CompressError> {
        self.frame_inner(Some(now), buf, start)
    }

    fn frame_inner(
        &mut self,
        now: Option<Instant>,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<usize, CompressError> {
        if start > buf.len() {
            return Err(CompressError::NoHeadroom {
                need: start,
                have: buf.len(),
            });
        }
        if buf.len() == start {
            return Ok(start);
        }
        if self.compresses_on_send()
            && buf.len() - start >= COMPRESS_THRESHOLD
            && self.adaptive_allows(now)
        {
            if let Some(s) = self.try_compress(buf, start)? {
                return Ok(s);
            }
        }
        match self.mode.framing() {
            Framing::None => Ok(start),
            Framing::Prefix => {
                let s = headroom(start, 1)?;
                buf[s] = LZO_NO_COMPRESS;
                Ok(s)
            }
            Framing::Swap => {
                let first = buf[start];
                buf.push(first);
                buf[start] = SWAP_NO_COMPRESS;
                Ok(start)
            }
            Framing::V2 => {
                if buf[start] != V2_ESCAPE {
                    return Ok(start);
                }
                let s = headroom(start, 2)?;
                buf[s] = V2_ESCAPE;
                buf[s + 1] = V2_UNCOMPRESSED;
                Ok(s)
            }
        }
    }

    /// Whether the adaptive heuristic lets this payload be tried (always
    /// outside `comp-lzo adaptive`, and without a clock).
    fn adaptive_allows(&mut self, now: Option<Instant>) -> bool {
        match (self.mode, now) {
            (Compression::LzoAdaptive, Some(now)) => self.adaptive.should_compress(now),
            _ => true,
        }
    }

    /// Compresses `buf[start..]` when that saves bytes (as 2.6 decides);
    /// `None` means: send it uncompressed.
    fn try_compress(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<Option<usize>, CompressError> {
        let len = buf.len() - start;
        let (alg, hdr): (Algorithm, &[u8]) = match self.mode {
            Compression::Lzo | Compression::LzoAdaptive => (Algorithm::Lzo, &[LZO_COMPRESSED]),
            Compression::Lz4 => (Algorithm::Lz4, &[LZ4_COMPRESSED]),
            Compression::Lz4V2 => (Algorithm::Lz4, &[V2_ESCAPE, V2_LZ4]),
            _ => return Ok(None),
        };
        let zlen = match alg {
            Algorithm::Lzo => {
                self.work
                    .resize(lzallright::worst_case_len(len).max(len + 64), 0);
                let dict = self
                    .lzo_dict
                    .get_or_insert_with(|| Box::new(lzallright::Dict::new()));
                match lzallright::compress(&buf[start..], &mut self.work, dict) {
                    Ok(n) => n,
                    Err(_) => return Ok(None),
                }
            }
            Algorithm::Lz4 => {
                self.work
                    .resize(lz4_flex::block::get_maximum_output_size(len), 0);
                match lz4_flex::block::compress_into(&buf[start..], &mut self.work) {
                    Ok(n) => n,
                    Err(_) => return Ok(None),
                }
            }
        };
        if self.mode == Compression::LzoAdaptive {
            self.adaptive.record(len, zlen);
        }
        // Worth it only if it shrinks (v2 counts its two header bytes, 2.6's rule).
        let saves = match self.mode {
            Compression::Lz4V2 => zlen + 2 < len,
            _ => zlen < len,
        };
        if !saves || zlen == 0 {
            return Ok(None);
        }
        self.stats.pre_compress += len as u64;
        self.stats.post_compress += zlen as u64;
        let z = &self.work[..zlen];
        if self.mode == Compression::Lz4 {
            // Swap framing: marker first, the block's first byte moved to the end.
            buf.truncate(start);
            buf.push(LZ4_COMPRESSED);
            buf.extend_from_slice(&z[1..]);
            buf.push(z[0]);
            return Ok(Some(start));
        }
        let s = headroom(start, hdr.len())?;
        buf.truncate(s);
        buf.extend_from_slice(hdr);
        buf.extend_from_slice(z);
        Ok(Some(s))
    }

    /// Removes the framing of the received payload `buf[range]` (may rewrite
    /// bytes in place) and decompresses it if the server compressed it.
    pub fn deframe(
        &mut self,
        buf: &mut [u8],
        range: Range<usize>,
    ) -> Result<Payload, CompressError> {
        let Some(p) = buf.get_mut(range.clone()) else {
            return Err(CompressError::NoHeadroom {
                need: range.end,
                have: 0,
            });
        };
        let Some(&first) = p.first() else {
            return Ok(Payload::InPlace(range));
        };
        match self.mode.framing() {
            Framing::None => Ok(Payload::InPlace(range)),
            Framing::Prefix => match first {
                LZO_NO_COMPRESS => Ok(Payload::InPlace(range.start + 1..range.end)),
                LZO_COMPRESSED => self.decompress(Algorithm::Lzo, &p[1..]),
                b => Err(CompressError::BadHeader(b)),
            },
            Framing::Swap => {
                // Undo the swap first: the last byte goes back to the front.
                let n = p.len();
                p[0] = p[n - 1];
                let body = &p[..n - 1];
                match first {
                    SWAP_NO_COMPRESS => Ok(Payload::InPlace(range.start..range.end - 1)),
                    LZ4_COMPRESSED => self.decompress(Algorithm::Lz4, body),
                    b => Err(CompressError::BadHeader(b)),
                }
            }
            Framing::V2 => {
                if first != V2_ESCAPE {
                    return Ok(Payload::InPlace(range));
                }
                match p.get(1) {
                    None => Err(CompressError::Truncated),
                    Some(&V2_UNCOMPRESSED) | Some(&V2_UNCOMPRESSED_26) => {
                        Ok(Payload::InPlace(range.start + 2..range.end))
                    }
                    Some(&V2_LZ4) => self.decompress(Algorithm::Lz4, &p[2..]),
                    Some(&b) => Err(CompressError::BadHeader(b)),
                }
            }
        }
    }

    fn decompress(&mut self, alg: Algorithm, block: &[u8]) -> Result<Payload, CompressError> {
        if self.allow == AllowCompression::No {
            return Err(CompressError::Refused(alg));
        }
        let limit = self.out.len();
        let n = match alg {
            Algorithm::Lzo => decompress_lzo(block, &mut self.out)?,
            Algorithm::Lz4 => decompress_lz4(block, &mut self.out)?,
        };
        self.stats.pre_decompress += block.len() as u64;
        self.stats.post_decompress += n as u64;
        debug_assert!(n <= limit);
        Ok(Payload::Decompressed(n))
    }
}

fn headroom(start: usize, need: usize) -> Result<usize, CompressError> {
    start
        .checked_sub(need)
        .ok_or(CompressError::NoHeadroom { need, have: start })
}

/// One LZO1X block into `out` (never more than `out.len()` bytes).
pub fn decompress_lzo(block: &[u8], out: &mut [u8]) -> Result<usize, CompressError> {
    use lzallright::ErrorKind;
    lzallright::decompress(block, out).map_err(|e| match e.kind() {
        ErrorKind::OutputOverrun => CompressError::TooLarge {
            alg: Algorithm::Lzo,
            limit: out.len(),
        },
        _ => CompressError::Undecodable(Algorithm::Lzo),
    })
}

/// One LZ4 block into `out` (never more than `out.len()` bytes).
pub fn decompress_lz4(block: &[u8], out: &mut [u8]) -> Result<usize, CompressError> {
    use lz4_flex::block::DecompressError;
    let limit = out.len();
    match lz4_flex::block::decompress_into(block, out) {
        // An empty block is not something a compressor emits for a packet.
        Ok(0) => Err(CompressError::Undecodable(Algorithm::Lz4)),
        Ok(n) => Ok(n),
        Err(DecompressError::OutputTooSmall { .. }) => Err(CompressError::TooLarge {
            alg: Algorithm::Lz4,
            limit,
        }),
        Err(_) => Err(CompressError::Undecodable(Algorithm::Lz4)),
    }
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;
