//! Data-channel key material (§5.5): the 256-byte block with the §3.1 layout,
//! obtained from the TLS exporter (EKM) or from OpenVPN's legacy TLS1-PRF key
//! expansion, plus the HMAC digests shared by tls-auth and CBC.
//!
//! For the client: key\[0\] (bytes 0..128) encrypts client→server, key\[1\]
//! (bytes 128..256) decrypts server→client. Within a key: cipher key =
//! prefix of the cipher slot; HMAC key = prefix of the hmac slot; AEAD
//! implicit IV = first 8 bytes of the hmac slot.

use crate::codec::Blame;
use crate::packet::SessionId;
use hmac::{Hmac, Mac};
use thiserror::Error;
use zeroize::Zeroize;

/// EKM label for data-channel keys (`EXPORT_KEY_DATA_LABEL`); no context.
pub const EKM_LABEL_DATA: &str = "EXPORTER-OpenVPN-datakeys";
/// EKM label for the dynamic tls-crypt key of renegotiations (§3.5); no context.
pub const EKM_LABEL_DYN_TLS_CRYPT: &str = "EXPORTER-OpenVPN-dynamic-tls-crypt";
/// Length of both EKM exports.
pub const EKM_LEN: usize = 256;

const MASTER_LABEL: &[u8] = b"OpenVPN master secret";
const EXPANSION_LABEL: &[u8] = b"OpenVPN key expansion";

/// Errors building keys.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Input of the wrong length.
    #[error("key material: {what} has {got} bytes, expected {expected}")]
    BadLength {
        /// Which input.
        what: &'static str,
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// A cipher key that is all zeros (`check_key()`).
    #[error("key material: {0} cipher key is all zeros")]
    ZeroKey(&'static str),
    /// The epoch data format with a non-AEAD cipher (OpenVPN refuses it too).
    #[error("the epoch data format needs an AEAD cipher, not {0}")]
    NotAead(&'static str),
}

impl KeyError {
    /// Blame classification.
    pub fn blame(&self) -> Blame {
        match self {
            Self::BadLength { .. } => Blame::LocalMisuse,
            Self::ZeroKey(_) => Blame::PeerMisbehaved,
            Self::NotAead(_) => Blame::LocalMisuse,
        }
    }
}

/// HMAC digest (`--auth`), used by tls-auth and by the CBC data channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA1 (20 bytes), the OpenVPN default.
    Sha1,
    /// SHA256 (32 bytes).
    Sha256,
    /// SHA512 (64 bytes).
    Sha512,
}

impl Digest {
    /// Output (and key) length in bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// Never zero; for clippy.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Parses an `auth` name (`SHA1`, `SHA256`, `SHA512`, case-insensitive,
    /// with or without dash). `None` for anything else (incl. `none`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// OpenVPN's name for the digest.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

/// A keyed HMAC ready to be cloned per message (keying is done once).
#[derive(Clone)]
pub(crate) enum HmacKey {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl HmacKey {
    /// Keys an HMAC with the first `digest.len()` bytes of `slot`.
    pub(crate) fn new(digest: Digest, slot: &[u8]) -> Self {
        let key = &slot[..digest.len().min(slot.len())];
        // new_from_slice never fails for HMAC (any key length is valid)
        match digest {
            Digest::Sha1 => Self::Sha1(
                <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac()),
            ),
            Digest::Sha256 => Self::Sha256(
                <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac()),
            ),
            Digest::Sha512 => Self::Sha512(
                <Hmac<sha2::Sha512> as hmac::digest::KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac()),
            ),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Sha1(_) => 20,
            Self::Sha256(_) => 32,
            Self::Sha512(_) => 64,
        }
    }

    /// HMAC over the concatenation of `parts`, written to `out[..len]`.
    pub(crate) fn compute(&self, parts: &[&[u8]], out: &mut [u8]) {
        macro_rules! run {
            ($m:expr) => {{
                let mut m = $m.clone();
                for p in parts {
                    m.update(p);
                }
                let tag = m.finalize().into_bytes();
                let n = out.len().min(tag.len());
                out[..n].copy_from_slice(&tag[..n]);
            }};
        }
        match self {
            Self::Sha1(m) => run!(m),
            Self::Sha256(m) => run!(m),
            Self::Sha512(m) => run!(m),
        }
    }

    /// Constant-time check of `tag` against the HMAC of `parts`.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let mut buf = [0u8; 64];
        let n = self.len();
        self.compute(parts, &mut buf[..n]);
        tag.len() == n && bool::from(buf[..n].ct_eq(tag))
    }
}

// HMAC accepts keys of any length; this exists only to avoid `unwrap`.
#[cold]
fn unreachable_hmac<T>() -> T {
    unreachable!("HMAC accepts any key length")
}

/// 256 bytes of key material with the §3.1 layout (zeroed on drop).
#[derive(Clone)]
pub struct KeyMaterial([u8; 256]);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(..)")
    }
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl KeyMaterial {
    /// Wraps 256 raw bytes.
    pub fn from_bytes(bytes: [u8; 256]) -> Self {
        Self(bytes)
    }

    /// From the 256-byte output of the TLS exporter with [`EKM_LABEL_DATA`].
    pub fn from_ekm(ekm: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 256] = ekm.try_into().map_err(|_| KeyError::BadLength {
            what: "EKM",
            got: ekm.len(),
            expected: EKM_LEN,
        })?;
        Ok(Self(arr))
    }

    /// OpenVPN's legacy key expansion (`generate_key_expansion_openvpn_prf()`),
    /// for servers that did not push `tls-ekm` (all 2.5 servers).
    ///
    /// `client_*` are the values the client sent in its key-method-2 message,
    /// `server_*` those of the server's reply; session ids are the
    /// control-channel ids (ours, and the server's).
    #[allow(clippy::too_many_arguments)]
    pub fn from_legacy_prf(
        client_pre_master: &[u8; 48],
        client_random1: &[u8; 32],
        server_random1: &[u8; 32],
        client_random2: &[u8; 32],
        server_random2: &[u8; 32],
        client_sid: &SessionId,
        server_sid: &SessionId,
    ) -> Self {
        let mut seed = Vec::with_capacity(EXPANSION_LABEL.len() + 64 + 16);
        seed.extend_from_slice(MASTER_LABEL);
        seed.extend_from_slice(client_random1);
        seed.extend_from_slice(server_random1);
        let mut master = [0u8; 48];
        tls1_prf(client_pre_master, &seed, &mut master);

        seed.clear();
        seed.extend_from_slice(EXPANSION_LABEL);
        seed.extend_from_slice(client_random2);
        seed.extend_from_slice(server_random2);
        seed.extend_from_slice(&client_sid.0);
        seed.extend_from_slice(&server_sid.0);
        let mut out = [0u8; 256];
        tls1_prf(&master, &seed, &mut out);
        master.zeroize();
        Self(out)
    }

    /// All 256 bytes.
    pub fn as_bytes(&self) -> &[u8; 256] {
        &self.0
    }

    /// Cipher slot (64 bytes) of key `idx` (0 or 1).
    pub fn cipher(&self, idx: usize) -> &[u8] {
        let b = if idx == 0 { 0 } else { 128 };
        &self.0[b..b + 64]
    }

    /// HMAC slot (64 bytes) of key `idx` (0 or 1).
    pub fn hmac(&self, idx: usize) -> &[u8] {
        let b = if idx == 0 { 64 } else { 192 };
        &self.0[b..b + 64]
    }

    /// The client's encrypt key index (key\[0\]).
    pub const CLIENT_ENCRYPT: usize = 0;
    /// The client's decrypt key index (key\[1\]).
    pub const CLIENT_DECRYPT: usize = 1;

    /// AEAD implicit IV (first 8 bytes of the hmac slot) of key `idx`.
    pub fn implicit_iv(&self, idx: usize) -> [u8; 8] {
        let mut iv = [0u8; 8];
        iv.copy_from_slice(&self.hmac(idx)[..8]);
        iv
    }

    /// Fails if the first `key_len` bytes of key `idx`'s cipher slot are zero.
    pub fn check_nonzero(&self, idx: usize, key_len: usize) -> Result<(), KeyError> {
        let n = key_len.min(64);
        if self.cipher(idx)[..n].iter().all(|b| *b == 0) {
            return Err(KeyError::ZeroKey(if idx == 0 {
                "encrypt"
            } else {
                "decrypt"
            }));
        }
        Ok(())
    }
}

/// TLS 1.0/1.1 PRF: `P_MD5(S1, seed) XOR P_SHA1(S2, seed)`, S1/S2 the two
/// halves of `secret` (overlapping by one byte for odd lengths); fills `out`.
pub fn tls1_prf(secret: &[u8], seed: &[u8], out: &mut [u8]) {
    let half = secret.len().div_ceil(2);
    let s1 = &secret[..half];
    let s2 = &secret[secret.len() - half..];
    p_hash::<Hmac<md5::Md5>>(s1, seed, out, false);
    p_hash::<Hmac<sha1::Sha1>>(s2, seed, out, true);
}

/// P_hash (RFC 2246 §5); writes into `out` or XORs into it.
fn p_hash<M>(secret: &[u8], seed: &[u8], out: &mut [u8], xor: bool)
where
    M: Mac + hmac::digest::KeyInit + Clone,
{
    let Ok(base) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return unreachable_hmac();
    };
    // A(1) = HMAC(secret, seed)
    let mut a = {
        let mut m = base.clone();
        m.update(seed);
        m.finalize().into_bytes()
    };
    let mut pos = 0;
    while pos < out.len() {
        let mut m = base.clone();
        m.update(&a);
        m.update(seed);
        let block = m.finalize().into_bytes();
        let n = (out.len() - pos).min(block.len());
        for (o, b) in out[pos..pos + n].iter_mut().zip(block.iter()) {
            if xor {
                *o ^= *b;
            } else {
                *o = *b;
            }
        }
        pos += n;
        let mut m = base.clone();
        m.update(&a);
        a = m.finalize().into_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn tls1_prf_vector() {
        // test_crypto.c: crypto_test_tls_prf
        let secret = b"Lorem ipsum dolor sit amet, consectetur adipisici elit, sed eiusmod tempor incidunt ut labore et dolore magna aliqua.";
        let seed = b"Quis aute iure reprehenderit in voluptate velit esse cillum dolore";
        assert_eq!(secret.len(), 117);
        let mut out = [0u8; 32];
        tls1_prf(secret, seed, &mut out);
        assert_eq!(
            out,
            hex!("d98c8518c85e946927916acfc2d592fbb1567e4b4b1459e6a904ac2ddab72d67")
        );
    }

    #[test]
    fn legacy_prf_depends_on_every_input() {
        let sid_c = SessionId([1; 8]);
        let sid_s = SessionId([2; 8]);
        let base = KeyMaterial::from_legacy_prf(
            &[3; 48], &[4; 32], &[5; 32], &[6; 32], &[7; 32], &sid_c, &sid_s,
        );
        let again = KeyMaterial::from_legacy_prf(
            &[3; 48], &[4; 32], &[5; 32], &[6; 32], &[7; 32], &sid_c, &sid_s,
        );
        assert_eq!(base.as_bytes(), again.as_bytes());
        let other_sid = KeyMaterial::from_legacy_prf(
            &[3; 48],
            &[4; 32],
            &[5; 32],
            &[6; 32],
            &[7; 32],
            &sid_c,
            &SessionId([9; 8]),
        );
        assert_ne!(base.as_bytes(), other_sid.as_bytes());
        let other_r1 = KeyMaterial::from_legacy_prf(
            &[3; 48], &[4; 32], &[0; 32], &[6; 32], &[7; 32], &sid_c, &sid_s,
        );
        assert_ne!(base.as_bytes(), other_r1.as_bytes());
    }

    #[test]
    fn legacy_prf_matches_two_step_definition() {
        // recompute by hand with tls1_prf to pin the seed layout (labels
        // without trailing space/NUL, session ids after the randoms)
        let (pm, c1, s1, c2, s2) = ([3u8; 48], [4u8; 32], [5u8; 32], [6u8; 32], [7u8; 32]);
        let (sc, ss) = (SessionId([1; 8]), SessionId([2; 8]));
        let mut seed = b"OpenVPN master secret".to_vec();
        seed.extend_from_slice(&c1);
        seed.extend_from_slice(&s1);
        let mut master = [0u8; 48];
        tls1_prf(&pm, &seed, &mut master);
        let mut seed = b"OpenVPN key expansion".to_vec();
        for p in [&c2[..], &s2[..], &sc.0[..], &ss.0[..]] {
            seed.extend_from_slice(p);
        }
        let mut keys = [0u8; 256];
        tls1_prf(&master, &seed, &mut keys);
        let km = KeyMaterial::from_legacy_prf(&pm, &c1, &s1, &c2, &s2, &sc, &ss);
        assert_eq!(km.as_bytes(), &keys);
    }

    #[test]
    fn slots_and_checks() {
        let mut b = [0u8; 256];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        let km = KeyMaterial::from_bytes(b);
        assert_eq!(km.cipher(0)[0], 0);
        assert_eq!(km.hmac(0)[0], 64);
        assert_eq!(km.cipher(1)[0], 128);
        assert_eq!(km.implicit_iv(1), [192, 193, 194, 195, 196, 197, 198, 199]);
        // cipher(0) starts with byte 0 but is not all zero
        assert!(km.check_nonzero(0, 32).is_ok());
        let zero = KeyMaterial::from_bytes([0; 256]);
        assert_eq!(zero.check_nonzero(1, 16), Err(KeyError::ZeroKey("decrypt")));
        assert!(matches!(
            KeyMaterial::from_ekm(&[1; 255]),
            Err(KeyError::BadLength { got: 255, .. })
        ));
        assert!(KeyMaterial::from_ekm(&[1; 256]).is_ok());
    }

    #[test]
    fn digest_names_and_hmac_verify() {
        assert_eq!(Digest::from_name("sha256"), Some(Digest::Sha256));
        assert_eq!(Digest::from_name("SHA-512"), Some(Digest::Sha512));
        assert_eq!(Digest::from_name("MD5"), None);
        for d in [Digest::Sha1, Digest::Sha256, Digest::Sha512] {
            let k = HmacKey::new(d, &[7u8; 64]);
            let mut tag = vec![0u8; d.len()];
            k.compute(&[b"ab", b"c"], &mut tag);
            assert!(k.verify(&[b"abc"], &tag));
            tag[0] ^= 1;
            assert!(!k.verify(&[b"abc"], &tag));
            assert!(!k.verify(&[b"abc"], &tag[1..]));
        }
    }
}
