//! OpenVPN static key files (§3.1) and tls-crypt-v2 client keys (§3.4).
//!
//! A static key is 256 bytes = two 128-byte keys, each `cipher[64] || hmac[64]`:
//!
//! | bytes | 0..63 | 64..127 | 128..191 | 192..255 |
//! | --- | --- | --- | --- | --- |
//! | slot | key\[0\].cipher | key\[0\].hmac | key\[1\].cipher | key\[1\].hmac |
//!
//! [`KeyDirection`] picks which key is used to send and which to receive.

use crate::codec::Blame;
use base64::Engine;
use thiserror::Error;
use zeroize::Zeroize;

const STATIC_BEGIN: &str = "-----BEGIN OpenVPN Static key V1-----";
const STATIC_END: &str = "-----END OpenVPN Static key V1-----";
const V2_CLIENT_BEGIN: &str = "-----BEGIN OpenVPN tls-crypt-v2 client key-----";
const V2_CLIENT_END: &str = "-----END OpenVPN tls-crypt-v2 client key-----";

/// Maximum WKc length accepted (`TLS_CRYPT_V2_MAX_WKC_LEN`).
pub const MAX_WKC_LEN: usize = 1024;

/// Errors reading key files. Messages name the line when it is known.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyFileError {
    /// The BEGIN or END marker is missing.
    #[error("{kind}: missing {marker:?} marker")]
    MissingMarker {
        /// "static key" or "tls-crypt-v2 client key".
        kind: &'static str,
        /// The marker that was not found.
        marker: &'static str,
    },
    /// A character that is not hex (static key) or base64 (v2 key).
    #[error("{kind}: invalid character {ch:?} on line {line}")]
    BadChar {
        /// Key kind.
        kind: &'static str,
        /// The offending character.
        ch: char,
        /// 1-based line number within the given text.
        line: usize,
    },
    /// Base64 decoding failed.
    #[error("{kind}: invalid base64")]
    BadBase64 {
        /// Key kind.
        kind: &'static str,
    },
    /// Wrong number of key bytes.
    #[error("{kind}: {got} key bytes, expected {expected}")]
    BadLength {
        /// Key kind.
        kind: &'static str,
        /// Bytes found.
        got: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// A 128-byte static key was used with a key direction.
    #[error("static key: a 128-byte key cannot be used with key-direction")]
    HalfKeyWithDirection,
    /// The WKc trailer length does not match the blob.
    #[error("tls-crypt-v2 client key: WKc length field {field} does not match {actual} bytes")]
    WkcLength {
        /// Value of the trailing u16.
        field: usize,
        /// Actual WKc size.
        actual: usize,
    },
}

impl KeyFileError {
    /// Key file errors are configuration errors of the local user.
    pub fn blame(&self) -> Blame {
        Blame::LocalMisuse
    }
}

/// `key-direction` (or the direction argument of `tls-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyDirection {
    /// No direction: key\[0\] both ways.
    #[default]
    Bidirectional,
    /// `key-direction 0`: send with key\[0\], receive with key\[1\].
    Normal,
    /// `key-direction 1` (the usual client): send with key\[1\], receive with key\[0\].
    Inverse,
}

impl KeyDirection {
    /// `(send slot, receive slot)` indices into the two 128-byte keys.
    pub fn slots(self) -> (usize, usize) {
        match self {
            Self::Bidirectional => (0, 0),
            Self::Normal => (0, 1),
            Self::Inverse => (1, 0),
        }
    }
}

/// A 256-byte OpenVPN static key (zeroed on drop).
#[derive(Clone)]
pub struct StaticKey {
    bytes: [u8; 256],
    /// False for a 128-byte file (key\[1\] absent).
    full: bool,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("full", &self.full)
            .finish_non_exhaustive()
    }
}

impl Drop for StaticKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl StaticKey {
    /// Wraps 256 raw key bytes.
    pub fn from_bytes(bytes: [u8; 256]) -> Self {
        Self { bytes, full: true }
    }

    /// Parses the PEM-like hex block of a static key file (text before the
    /// BEGIN marker, e.g. `<tls-auth>`, is ignored; whitespace is ignored;
    /// any other character between the markers is an error).
    pub fn parse_pem(text: &str) -> Result<Self, KeyFileError> {
        const KIND: &str = "static key";
        let start = text.find(STATIC_BEGIN).ok_or(KeyFileError::MissingMarker {
            kind: KIND,
            marker: STATIC_BEGIN,
        })?;
        let body_start = start + STATIC_BEGIN.len();
        let end = text[body_start..]
            .find(STATIC_END)
            .ok_or(KeyFileError::MissingMarker {
                kind: KIND,
                marker: STATIC_END,
            })?
            + body_start;
        let first_line = text[..body_start].matches('\n').count() + 1;
        let mut nibbles: Vec<u8> = Vec::with_capacity(512);
        for (i, line) in text[body_start..end].split('\n').enumerate() {
            for ch in line.chars() {
                if ch.is_whitespace() {
                    continue;
                }
                let v = ch.to_digit(16).ok_or(KeyFileError::BadChar {
                    kind: KIND,
                    ch,
                    line: first_line + i,
                })?;
                nibbles.push(v as u8);
            }
        }
        if nibbles.len() % 2 != 0 {
            let got = nibbles.len() / 2;
            nibbles.zeroize();
            return Err(KeyFileError::BadLength {
                kind: KIND,
                got,
                expected: "256 (or 128) and an even number of hex digits",
            });
        }
        let mut raw: Vec<u8> = nibbles.chunks(2).map(|c| (c[0] << 4) | c[1]).collect();
        nibbles.zeroize();
        let out = Self::from_slice(&raw);
        raw.zeroize();
        out
    }

    /// Builds a key from 256 bytes, or 128 bytes (then only usable
    /// bidirectionally).
    pub fn from_slice(raw: &[u8]) -> Result<Self, KeyFileError> {
        let mut bytes = [0u8; 256];
        match raw.len() {
            256 => {
                bytes.copy_from_slice(raw);
                Ok(Self { bytes, full: true })
            }
            128 => {
                bytes[..128].copy_from_slice(raw);
                Ok(Self { bytes, full: false })
            }
            got => Err(KeyFileError::BadLength {
                kind: "static key",
                got,
                expected: "256 (or 128)",
            }),
        }
    }

    /// All 256 bytes (the upper half is zero for a 128-byte key).
    pub fn as_bytes(&self) -> &[u8; 256] {
        &self.bytes
    }

    /// True if the key has both halves.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The 64-byte cipher slot of key `idx` (0 or 1; other values clamp to 1).
    pub fn cipher(&self, idx: usize) -> &[u8; 64] {
        self.slot(idx, 0)
    }

    /// The 64-byte HMAC slot of key `idx` (0 or 1; other values clamp to 1).
    pub fn hmac(&self, idx: usize) -> &[u8; 64] {
        self.slot(idx, 64)
    }

    fn slot(&self, idx: usize, off: usize) -> &[u8; 64] {
        let base = if idx == 0 { 0 } else { 128 } + off;
        let mut out: &[u8; 64] = &[0; 64];
        if let Some(s) = self.bytes.get(base..base + 64) {
            if let Ok(a) = <&[u8; 64]>::try_from(s) {
                out = a;
            }
        }
        out
    }

    /// Checks that `dir` can be used with this key (a 128-byte key only
    /// works bidirectionally) and returns `(send, recv)` slot indices.
    pub fn slots_for(&self, dir: KeyDirection) -> Result<(usize, usize), KeyFileError> {
        if !self.full && dir != KeyDirection::Bidirectional {
            return Err(KeyFileError::HalfKeyWithDirection);
        }
        Ok(dir.slots())
    }
}

/// A tls-crypt-v2 client key: `Kc` (a 256-byte static key used like a
/// tls-crypt key) and the opaque wrapped key `WKc` that the client appends
/// to `P_CONTROL_HARD_RESET_CLIENT_V3` and `P_CONTROL_WKC_V1` packets.
#[derive(Clone, Debug)]
pub struct TlsCryptV2ClientKey {
    /// Kc.
    pub key: StaticKey,
    /// WKc, appended verbatim (ends in its own u16 length).
    pub wkc: Vec<u8>,
}

impl TlsCryptV2ClientKey {
    /// Parses `-----BEGIN OpenVPN tls-crypt-v2 client key-----` PEM.
    pub fn parse_pem(text: &str) -> Result<Self, KeyFileError> {
        const KIND: &str = "tls-crypt-v2 client key";
        let start = text
            .find(V2_CLIENT_BEGIN)
            .ok_or(KeyFileError::MissingMarker {
                kind: KIND,
                marker: V2_CLIENT_BEGIN,
            })?;
        let body_start = start + V2_CLIENT_BEGIN.len();
        let end = text[body_start..]
            .find(V2_CLIENT_END)
            .ok_or(KeyFileError::MissingMarker {
                kind: KIND,
                marker: V2_CLIENT_END,
            })?
            + body_start;
        let first_line = text[..body_start].matches('\n').count() + 1;
        let mut b64 = String::with_capacity(end - body_start);
        for (i, line) in text[body_start..end].split('\n').enumerate() {
            for ch in line.chars() {
                if ch.is_whitespace() {
                    continue;
                }
                if !(ch.is_ascii_alphanumeric() || ch == '+' || ch == '/' || ch == '=') {
                    return Err(KeyFileError::BadChar {
                        kind: KIND,
                        ch,
                        line: first_line + i,
                    });
                }
                b64.push(ch);
            }
        }
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| KeyFileError::BadBase64 { kind: KIND })?;
        b64.zeroize();
        let out = Self::from_blob(&raw);
        raw.zeroize();
        out
    }

    /// Splits a decoded blob `Kc(256) || WKc`.
    pub fn from_blob(raw: &[u8]) -> Result<Self, KeyFileError> {
        const KIND: &str = "tls-crypt-v2 client key";
        // WKc holds at least tag(32) + Kc(256) + len(2)
        let min = 256 + 32 + 256 + 2;
        if raw.len() < min || raw.len() > 256 + MAX_WKC_LEN {
            return Err(KeyFileError::BadLength {
                kind: KIND,
                got: raw.len(),
                expected: "256 + WKc (290..=1024)",
            });
        }
        let (kc, wkc) = raw.split_at(256);
        let field = match wkc {
            [.., a, b] => u16::from_be_bytes([*a, *b]) as usize,
            _ => 0,
        };
        if field != wkc.len() {
            return Err(KeyFileError::WkcLength {
                field,
                actual: wkc.len(),
            });
        }
        Ok(Self {
            key: StaticKey::from_slice(kc)?,
            wkc: wkc.to_vec(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hex_literal::hex;

    /// `tests/unit_tests/openvpn/test_pkt.c: static_key`.
    pub(crate) const TEST_STATIC_KEY: &str = "<tls-auth>\n\
-----BEGIN OpenVPN Static key V1-----\n\
37268ea8f95d7f71f9fb8fc03770c460\n\
daf714a483d815c013ce0a537efc18f2\n\
8f4f172669d9e6a413bac6741d8ea054\n\
00f49b7fd6326470f23798c606bf53d4\n\
de63ebc64ec59d57ce5d04d5b62e68b5\n\
3ca6e5354351097fa370446c4d269f18\n\
7bb6ae54af2dc70ff7317fe2f8754b82\n\
82aad4202f9fa42c8640245d883e2c54\n\
a0c1c489a036cf3a8964d8d289c1583b\n\
9447c262b1da5fd167a5d27bd5ac5143\n\
17bc2343a31a2efc38dd920d910375f5\n\
1c2e27f3afd36c49269da079f7ce466e\n\
bb0f9ad13e9bbb4665974e6bc24b513c\n\
5700393bf4a3e7f967e2f384069ac8a8\n\
e78b18b15604993fd16515cce9c0f3e4\n\
2b4126b999005ade802797b0eeb8b9e6\n\
-----END OpenVPN Static key V1-----\n\
</tls-auth>\n";

    /// `test_tls_crypt.c: test_client_key`.
    pub(crate) const TEST_V2_CLIENT_KEY: &str = "-----BEGIN OpenVPN tls-crypt-v2 client key-----
AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v
MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f
YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6P
kJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/
wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v
8PHy8/T19vf4+fr7/P3+/xd9pcB0qUYZsWvkrLcfGmzPJPM8a7r0mEWdXwbDadSV
LHg5bv2TwlmPR3HgaMr8o9LTh9hxUTkrH3S0PfKRNwcso86ua/dBFTyXsM9tg4aw
3dS6ogH9AkaT+kRRDgNcKWkQCbwmJK2JlfkXHBwbAtmn78AkNuho6QCFqCdqGab3
zh2vheFqGMPdGpukbFrT3rcO3VLxUeG+RdzXiMTCpJSovFBP1lDkYwYJPnz6daEh
j0TzJ3BVru9W3CpotdNt7u09knxAfpCxjtrP3semsDew/gTBtcfQ/OoTFyFHnN5k
RZ+q17SC4nba3Pp8/Fs0+hSbv2tJozoD8SElFq7SIWJsciTYh8q8f5yQxjdt4Wxu
/Z5wtPCAZ0tOzj4ItTI77fBOYRTfEayzHgEr
-----END OpenVPN tls-crypt-v2 client key-----
";

    /// `test_tls_crypt.c: test_server_key` (base64 of bytes 0..127).
    pub(crate) const TEST_V2_SERVER_KEY_B64: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\
MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\
YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=";

    #[test]
    fn parses_test_static_key_slots() {
        let k = StaticKey::parse_pem(TEST_STATIC_KEY).unwrap();
        assert!(k.is_full());
        assert_eq!(&k.cipher(0)[..4], &hex!("37268ea8"));
        assert_eq!(&k.hmac(0)[..4], &hex!("de63ebc6"));
        assert_eq!(&k.cipher(1)[..4], &hex!("a0c1c489"));
        assert_eq!(&k.hmac(1)[..4], &hex!("bb0f9ad1"));
        assert_eq!(&k.hmac(1)[60..], &hex!("eeb8b9e6"));
    }

    #[test]
    fn key_direction_slots() {
        assert_eq!(KeyDirection::Inverse.slots(), (1, 0));
        assert_eq!(KeyDirection::Normal.slots(), (0, 1));
        assert_eq!(KeyDirection::Bidirectional.slots(), (0, 0));
        let half = StaticKey::from_slice(&[1u8; 128]).unwrap();
        assert_eq!(
            half.slots_for(KeyDirection::Inverse),
            Err(KeyFileError::HalfKeyWithDirection)
        );
        assert_eq!(half.slots_for(KeyDirection::Bidirectional), Ok((0, 0)));
    }

    #[test]
    fn static_key_errors() {
        assert!(matches!(
            StaticKey::parse_pem("nothing"),
            Err(KeyFileError::MissingMarker { .. })
        ));
        let bad = TEST_STATIC_KEY.replace("37268ea8", "37268eZ8");
        let err = StaticKey::parse_pem(&bad).unwrap_err();
        assert_eq!(
            err,
            KeyFileError::BadChar {
                kind: "static key",
                ch: 'Z',
                line: 3
            }
        );
        let short = TEST_STATIC_KEY.replace("2b4126b999005ade802797b0eeb8b9e6\n", "");
        assert!(matches!(
            StaticKey::parse_pem(&short),
            Err(KeyFileError::BadLength { got: 240, .. })
        ));
        let no_end = TEST_STATIC_KEY.replace(STATIC_END, "");
        assert!(matches!(
            StaticKey::parse_pem(&no_end),
            Err(KeyFileError::MissingMarker { .. })
        ));
    }

    #[test]
    fn parses_tls_crypt_v2_client_key() {
        let k = TlsCryptV2ClientKey::parse_pem(TEST_V2_CLIENT_KEY).unwrap();
        assert_eq!(k.wkc.len(), 299);
        assert_eq!(256 + k.wkc.len(), 555);
        // Kc of the test key is simply 0..=255
        let expect: Vec<u8> = (0..=255u8).collect();
        assert_eq!(&k.key.as_bytes()[..], &expect[..]);
        assert_eq!(&k.wkc[297..], &[0x01, 0x2b]);
    }

    #[test]
    fn v2_key_errors() {
        assert!(matches!(
            TlsCryptV2ClientKey::parse_pem(TEST_STATIC_KEY),
            Err(KeyFileError::MissingMarker { .. })
        ));
        let bad = TEST_V2_CLIENT_KEY.replace("AAECAwQF", "AAEC*wQF");
        assert!(matches!(
            TlsCryptV2ClientKey::parse_pem(&bad),
            Err(KeyFileError::BadChar { ch: '*', .. })
        ));
        let k = TlsCryptV2ClientKey::parse_pem(TEST_V2_CLIENT_KEY).unwrap();
        let mut blob = k.key.as_bytes().to_vec();
        blob.extend_from_slice(&k.wkc);
        let n = blob.len();
        blob[n - 1] ^= 1;
        assert_eq!(
            TlsCryptV2ClientKey::from_blob(&blob).unwrap_err(),
            KeyFileError::WkcLength {
                field: 298,
                actual: 299
            }
        );
        assert!(TlsCryptV2ClientKey::from_blob(&blob[..300]).is_err());
    }
}
