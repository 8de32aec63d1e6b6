//! Transport framing (§1.1): over TCP every packet is preceded by a u16
//! big-endian length (excluding the prefix); over UDP a datagram is a packet.
//!
//! [`TcpFramer`] accumulates stream bytes ([`TcpFramer::push`]) and yields
//! whole packets ([`TcpFramer::pop`] / [`TcpFramer::pop_into`]). A zero
//! length or a length above the configured maximum is fatal to the
//! connection (OpenVPN's `stream_buf_added()`): after such an error the
//! framer stays failed and the caller must reconnect.

use crate::codec::Blame;
use thiserror::Error;

/// Default maximum packet length accepted over TCP (control packets are at
/// most ~2048 + overhead, data packets tun-mtu + overhead).
pub const DEFAULT_MAX_PACKET: usize = 4096;

/// Transport of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram = one packet.
    Udp,
    /// 2-byte length prefix per packet.
    Tcp,
}

/// TCP framing errors; all are fatal for the stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    /// A frame announced length 0.
    #[error("TCP frame with length 0")]
    ZeroLength,
    /// A frame announced more than the maximum.
    #[error("TCP frame length {len} exceeds maximum {max}")]
    TooLong {
        /// Announced length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// An outgoing packet does not fit a u16 length or is empty.
    #[error("cannot frame a packet of {0} bytes")]
    BadOutgoing(usize),
    /// A previous error left the stream unusable.
    #[error("TCP stream already failed")]
    Failed,
}

impl FramingError {
    /// Blame classification.
    pub fn blame(&self) -> Blame {
        match self {
            Self::BadOutgoing(_) => Blame::LocalMisuse,
            _ => Blame::Malformed,
        }
    }
}

/// Appends the TCP frame of `pkt` (length prefix + bytes) to `out`.
pub fn frame_tcp(pkt: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
    let len = u16::try_from(pkt.len()).map_err(|_| FramingError::BadOutgoing(pkt.len()))?;
    if len == 0 {
        return Err(FramingError::BadOutgoing(0));
    }
    out.reserve(2 + pkt.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(pkt);
    Ok(())
}

/// Reassembles packets from a TCP byte stream.
#[derive(Debug, Clone)]
pub struct TcpFramer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    failed: bool,
}

impl Default for TcpFramer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKET)
    }
}

impl TcpFramer {
    /// A framer accepting packets of 1..=`max_packet` bytes (capped at 65535).
    pub fn new(max_packet: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max: max_packet.min(u16::MAX as usize),
            failed: false,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            // compact lazily so steady-state pushes do not move data every time
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Returns the next whole packet as a slice valid until the next call,
    /// `Ok(None)` if more bytes are needed.
    pub fn pop(&mut self) -> Result<Option<&[u8]>, FramingError> {
        match self.next_range()? {
            Some((a, b)) => Ok(Some(&self.buf[a..b])),
            None => Ok(None),
        }
    }

    /// Like [`pop`](Self::pop) but copies the packet into `out` (cleared
    /// first). Returns `Ok(false)` if more bytes are needed.
    pub fn pop_into(&mut self, out: &mut Vec<u8>) -> Result<bool, FramingError> {
        match self.next_range()? {
            Some((a, b)) => {
                out.clear();
                out.extend_from_slice(&self.buf[a..b]);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn next_range(&mut self) -> Result<Option<(usize, usize)>, FramingError> {
        if self.failed {
            return Err(FramingError::Failed);
        }
        let avail = &self.buf[self.start..];
        let [h0, h1, ..] = *avail else {
            return Ok(None);
        };
        let len = u16::from_be_bytes([h0, h1]) as usize;
        if len == 0 {
            self.failed = true;
            return Err(FramingError::ZeroLength);
        }
        if len > self.max {
            self.failed = true;
            return Err(FramingError::TooLong { len, max: self.max });
        }
        if avail.len() < 2 + len {
            return Ok(None);
        }
        let a = self.start + 2;
        let b = a + len;
        self.start = b;
        Ok(Some((a, b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_split_and_joined_frames() {
        let mut stream = Vec::new();
        frame_tcp(b"hello", &mut stream).unwrap();
        frame_tcp(b"w", &mut stream).unwrap();
        frame_tcp(&[7u8; 300], &mut stream).unwrap();
        let mut f = TcpFramer::default();
        let mut got = Vec::new();
        for chunk in stream.chunks(3) {
            f.push(chunk);
            let mut out = Vec::new();
            while f.pop_into(&mut out).unwrap() {
                got.push(out.clone());
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"w".to_vec(), vec![7u8; 300]]);
        assert_eq!(f.buffered(), 0);
        assert_eq!(f.pop().unwrap(), None);
    }

    #[test]
    fn pop_returns_slices() {
        let mut stream = Vec::new();
        frame_tcp(b"ab", &mut stream).unwrap();
        frame_tcp(b"cde", &mut stream).unwrap();
        let mut f = TcpFramer::default();
        f.push(&stream);
        assert_eq!(f.pop().unwrap(), Some(&b"ab"[..]));
        assert_eq!(f.pop().unwrap(), Some(&b"cde"[..]));
        assert_eq!(f.pop().unwrap(), None);
    }

    #[test]
    fn zero_and_oversize_lengths_are_fatal() {
        let mut f = TcpFramer::default();
        f.push(&[0, 0, 1]);
        assert_eq!(f.pop(), Err(FramingError::ZeroLength));
        assert_eq!(f.pop(), Err(FramingError::Failed));

        let mut f = TcpFramer::new(100);
        f.push(&[0, 101]);
        assert_eq!(f.pop(), Err(FramingError::TooLong { len: 101, max: 100 }));
    }

    #[test]
    fn outgoing_bounds() {
        assert_eq!(
            frame_tcp(&[], &mut Vec::new()),
            Err(FramingError::BadOutgoing(0))
        );
        assert!(frame_tcp(&vec![0; 65536], &mut Vec::new()).is_err());
        let mut out = Vec::new();
        frame_tcp(&[9; 65535], &mut out).unwrap();
        assert_eq!(&out[..2], &[0xff, 0xff]);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn framer_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
                let mut f = TcpFramer::new(200);
                for c in &chunks {
                    f.push(c);
                    while let Ok(Some(p)) = f.pop() {
                        prop_assert!(!p.is_empty() && p.len() <= 200);
                    }
                }
            }

            #[test]
            fn framer_round_trips(pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..10), step in 1usize..50) {
                let mut stream = Vec::new();
                for p in &pkts { frame_tcp(p, &mut stream).unwrap(); }
                let mut f = TcpFramer::new(300);
                let mut got = Vec::new();
                for c in stream.chunks(step) {
                    f.push(c);
                    while let Some(p) = f.pop().unwrap() { got.push(p.to_vec()); }
                }
                prop_assert_eq!(got, pkts);
            }
        }
    }
}
