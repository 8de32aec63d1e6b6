//! Bounds-checked big-endian reader and writer for OpenVPN wire structures.
//!
//! Every read names the field it is reading, so a short packet yields an error
//! such as `truncated field "ack count": need 1 byte(s), 0 left` instead of a
//! panic. [`Reader::finish`] rejects trailing bytes.
//!
//! This module also holds [`Blame`], the shared classification of protocol
//! errors (who is at fault) used by the packet, wrap and data-channel errors.

use thiserror::Error;

/// Who is to blame for a protocol error. Lets callers count and log drops
/// without matching on every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The bytes do not parse (truncated, bad length, trailing garbage).
    Malformed,
    /// The bytes parse but the peer (or an attacker) misbehaved: failed
    /// authentication, replay, wrong session id.
    PeerMisbehaved,
    /// A valid feature we do not implement (e.g. real compression).
    Unsupported,
    /// The caller used the API wrongly (buffer without headroom, exhausted
    /// packet ids, wrong key length).
    LocalMisuse,
}

/// A decoding error of the wire codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// Fewer bytes left than the field needs.
    #[error("truncated field {field:?}: need {need} byte(s), {have} left")]
    Truncated {
        /// Name of the field being read.
        field: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// Bytes remain after the structure was fully read.
    #[error("{extra} trailing byte(s) after {after:?}")]
    Trailing {
        /// Name of the structure that should have ended.
        after: &'static str,
        /// Number of unread bytes.
        extra: usize,
    },
    /// A field has a value outside its allowed range.
    #[error("invalid field {field:?}: {reason}")]
    Invalid {
        /// Name of the field.
        field: &'static str,
        /// Why the value is wrong.
        reason: &'static str,
    },
}

impl CodecError {
    /// Codec errors are always the sender's fault: the bytes are malformed.
    pub fn blame(&self) -> Blame {
        Blame::Malformed
    }
}

/// Cursor over a byte slice; every accessor checks bounds.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Number of bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        let have = self.remaining();
        if n > have {
            return Err(CodecError::Truncated {
                field,
                need: n,
                have,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        let s = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian 24-bit integer (peer-id).
    pub fn u24(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let b: [u8; 3] = self.array(field)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Takes all remaining bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Fails if bytes remain; `after` names the structure that should end here.
    pub fn finish(&self, after: &'static str) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(CodecError::Trailing { after, extra }),
        }
    }
}

/// Appends big-endian fields to a `Vec<u8>`.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Appends to `buf` (existing content is kept).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends the low 24 bits of `v`, big-endian.
    pub fn u24(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes()[1..]);
        self
    }

    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Length of the underlying buffer.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if the underlying buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_trailing() {
        let data = [1u8, 0, 2, 0, 0, 3, 0, 0, 0, 4, 9];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 2);
        assert_eq!(r.u24("c").unwrap(), 3);
        assert_eq!(r.u32("d").unwrap(), 4);
        assert_eq!(
            r.finish("thing"),
            Err(CodecError::Trailing {
                after: "thing",
                extra: 1
            })
        );
        assert_eq!(r.rest(), &[9]);
        assert!(r.finish("thing").is_ok());
    }

    #[test]
    fn truncated_read_names_field() {
        let mut r = Reader::new(&[1, 2]);
        let err = r.u32("packet id").unwrap_err();
        assert_eq!(
            err,
            CodecError::Truncated {
                field: "packet id",
                need: 4,
                have: 2
            }
        );
        assert!(err.to_string().contains("packet id"));
        // a failed read consumes nothing
        assert_eq!(r.remaining(), 2);
    }

    #[test]
    fn writer_round_trips() {
        let mut v = Vec::new();
        Writer::new(&mut v)
            .u8(7)
            .u16(0x0102)
            .u24(0xabcdef)
            .u32(5)
            .bytes(b"xy");
        let mut r = Reader::new(&v);
        assert_eq!(r.u8("").unwrap(), 7);
        assert_eq!(r.u16("").unwrap(), 0x0102);
        assert_eq!(r.u24("").unwrap(), 0xabcdef);
        assert_eq!(r.u32("").unwrap(), 5);
        assert_eq!(r.rest(), b"xy");
    }
}
