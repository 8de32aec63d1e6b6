//! Data channel (§7.2–§7.4): AES-128/192/256-GCM, CHACHA20-POLY1305 and
//! AES-128/192/256-CBC + HMAC, in `P_DATA_V1` or `P_DATA_V2` packets.
//!
//! One [`DataKey`] per key_id. Everything happens **in place** in the
//! caller's buffer, without allocating per packet:
//!
//! ```text
//! encrypt:  buf = [ headroom (>= prefix_len) | payload ][ tailroom ]
//!                  ^0                          ^start
//!           -> Ok(wire_start): the wire packet is buf[wire_start..]
//! decrypt:  buf = whole wire packet  -> Ok(range): plaintext is buf[range]
//! ```
//!
//! Reserve [`HEADROOM`] bytes before the payload (plus
//! [`crate::compress::MAX_PREFIX`] if you frame compression in place first)
//! and [`TAILROOM`] bytes of spare capacity after it (CBC padding); then
//! `encrypt` never reallocates.
//!
//! AEAD packet: `[hdr 1|4][packet-id 4][tag 16][ciphertext]`, nonce =
//! `packet-id || implicit IV (8 bytes of the hmac slot)`, AD = V2: `hdr ||
//! packet-id`, V1: `packet-id`. CBC packet: `[hdr][HMAC(IV || ct)][IV 16][ct]`
//! with `ct = AES-CBC(packet-id || payload, PKCS#7)`.
//!
//! Epoch format (OpenVPN 2.7, [`crate::epoch`]): `[hdr 4][epoch 2 ||
//! counter 6][ciphertext][tag 16]`, keys per epoch ([`DataKey::new_client_epoch`]).
//!
//! Send packet-ids start at 1; [`DataKey::should_renegotiate`] turns true
//! at `0xFF000000`; after `0xFFFFFFFF` was used, `encrypt` refuses
//! ([`DataError::PacketIdExhausted`]).

use crate::codec::Blame;
use crate::epoch::EpochKeys;
use crate::keys::{Digest, HmacKey, KeyError, KeyMaterial};
use crate::packet::{encode_first_byte, peek_header, DataHeader, KeyId, Opcode, PacketError};
use crate::replay::{ReplayError, ReplayWindow};
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::ops::Range;
use std::time::Instant;
use thiserror::Error;

/// Maximum bytes any cipher needs before the payload: V2 header (4) +
/// HMAC-SHA512 (64) + IV (16) + packet-id (4).
pub const HEADROOM: usize = 4 + 64 + 16 + 4;
/// Maximum bytes any cipher appends after the payload (CBC padding, or the
/// tag of the epoch format).
pub const TAILROOM: usize = 16;
/// AEAD tag length.
pub const AEAD_TAG_LEN: usize = 16;
/// A send packet-id at or above this asks for a renegotiation.
pub const PACKET_ID_WRAP_TRIGGER: u32 = 0xFF00_0000;

/// Data-channel ciphers (`data-ciphers` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-192-GCM.
    Aes192Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// CHACHA20-POLY1305.
    ChaCha20Poly1305,
    /// AES-128-CBC with HMAC (`auth`).
    Aes128Cbc,
    /// AES-192-CBC with HMAC (`auth`).
    Aes192Cbc,
    /// AES-256-CBC with HMAC (`auth`).
    Aes256Cbc,
}

impl Cipher {
    /// All supported ciphers.
    pub const ALL: [Cipher; 7] = [
        Self::Aes128Gcm,
        Self::Aes192Gcm,
        Self::Aes256Gcm,
        Self::ChaCha20Poly1305,
        Self::Aes128Cbc,
        Self::Aes192Cbc,
        Self::Aes256Cbc,
    ];

    /// Parses an OpenVPN cipher name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// OpenVPN's canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm => "AES-128-GCM",
            Self::Aes192Gcm => "AES-192-GCM",
            Self::Aes256Gcm => "AES-256-GCM",
            Self::ChaCha20Poly1305 => "CHACHA20-POLY1305",
            Self::Aes128Cbc => "AES-128-CBC",
            Self::Aes192Cbc => "AES-192-CBC",
            Self::Aes256Cbc => "AES-256-CBC",
        }
    }

    /// Cipher key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes128Cbc => 16,
            Self::Aes192Gcm | Self::Aes192Cbc => 24,
            Self::Aes256Gcm | Self::Aes256Cbc | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// True for the AEAD ciphers (no `auth` digest used).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Self::Aes128Gcm | Self::Aes192Gcm | Self::Aes256Gcm | Self::ChaCha20Poly1305
        )
    }
}

/// Data-channel errors; each packet error is a counted drop, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataError {
    /// Too short, not a data packet, bad header.
    #[error("malformed data packet: {0}")]
    Packet(#[from] PacketError),
    /// Shorter than the cipher's fixed fields.
    #[error("data packet too short: {0} bytes")]
    TooShort(usize),
    /// CBC ciphertext not a whole number of blocks.
    #[error("CBC ciphertext length {0} is not a multiple of 16")]
    BadBlockLength(usize),
    /// AEAD tag or HMAC mismatch.
    #[error("data packet authentication failed")]
    AuthFailed,
    /// HMAC was fine but the CBC padding is not (a broken or hostile peer).
    #[error("bad CBC padding")]
    BadPadding,
    /// Replayed, too old, or packet-id 0.
    #[error("data packet replay: {0}")]
    Replay(#[from] ReplayError),
    /// Packet for another key id (caller routed it wrongly).
    #[error("packet for key id {got}, this key is {expected}")]
    WrongKeyId {
        /// Key id in the packet.
        got: u8,
        /// Key id of this key.
        expected: u8,
    },
    /// Caller buffer lacks headroom before the payload.
    #[error("encrypt needs {need} bytes of headroom, {have} given")]
    NoHeadroom {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// All 2^32-1 packet-ids were used; renegotiate before sending more.
    #[error("data packet-id space exhausted")]
    PacketIdExhausted,
    /// Epoch format: a packet of an epoch outside the accepted window (too
    /// old, or further ahead than the future keys).
    #[error(
        "data packet for epoch {got}, outside the window of the current receive epoch {current}"
    )]
    UnknownEpoch {
        /// Epoch in the packet.
        got: u16,
        /// Current receive epoch.
        current: u16,
    },
    /// Epoch format: epoch 0 is never sent.
    #[error("data packet with epoch 0")]
    ZeroEpoch,
    /// Epoch format: this epoch key failed verification too often (2^36).
    #[error("epoch {0} key failed verification too often; not used any more")]
    DecryptFailLimit(u16),
}

impl DataError {
    /// Blame classification, for counters.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Packet(e) => e.blame(),
            Self::TooShort(_) | Self::BadBlockLength(_) | Self::ZeroEpoch => Blame::Malformed,
            Self::AuthFailed
            | Self::BadPadding
            | Self::Replay(_)
            | Self::UnknownEpoch { .. }
            | Self::DecryptFailLimit(_) => Blame::PeerMisbehaved,
            Self::WrongKeyId { .. } | Self::NoHeadroom { .. } | Self::PacketIdExhausted => {
                Blame::LocalMisuse
            }
        }
    }
}

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

// keys stay inline: one indirection less on the per-packet path
#[allow(clippy::large_enum_variant)]
pub(crate) enum Aead {
    Ring(ring::aead::LessSafeKey),
    Aes192(Box<Aes192Gcm>),
}

impl Aead {
    /// Encrypts `payload` in place; returns the tag.
    pub(crate) fn seal(
        &self,
        nonce: [u8; 12],
        ad: &[u8],
        payload: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], DataError> {
        let mut out = [0u8; AEAD_TAG_LEN];
        match self {
            Aead::Ring(k) => {
                let tag = k
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(nonce),
                        ring::aead::Aad::from(ad),
                        payload,
                    )
                    .map_err(|_| DataError::TooShort(payload.len()))?;
                out.copy_from_slice(tag.as_ref());
            }
            Aead::Aes192(k) => {
                use aes_gcm::aead::AeadInPlace;
                let tag = k
                    .encrypt_in_place_detached(&nonce.into(), ad, payload)
                    .map_err(|_| DataError::TooShort(payload.len()))?;
                out.copy_from_slice(&tag);
            }
        }
        Ok(out)
    }

    /// Authenticates and decrypts `ct` in place.
    pub(crate) fn open(
        &self,
        nonce: [u8; 12],
        ad: &[u8],
        ct: &mut [u8],
        tag: [u8; AEAD_TAG_LEN],
    ) -> Result<(), DataError> {
        match self {
            Aead::Ring(k) => k
                .open_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::from(ad),
                    ring::aead::Tag::from(tag),
                    ct,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| DataError::AuthFailed),
            Aead::Aes192(k) => {
                use aes_gcm::aead::AeadInPlace;
                k.decrypt_in_place_detached(&nonce.into(), ad, ct, &tag.into())
                    .map_err(|_| DataError::AuthFailed)
            }
        }
    }
}

#[derive(Clone)]
enum CbcAes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

#[allow(clippy::large_enum_variant)]
enum Engine {
    Aead {
        enc: Aead,
        enc_iv: [u8; 8],
        dec: Aead,
        dec_iv: [u8; 8],
    },
    Cbc {
        enc: CbcAes,
        enc_mac: HmacKey,
        dec: CbcAes,
        dec_mac: HmacKey,
        rng: Box<ChaCha20Rng>,
    },
    /// OpenVPN 2.7 epoch data format (AEAD only), see [`crate::epoch`].
    Epoch(Box<EpochKeys>),
}

pub(crate) fn aead_key(cipher: Cipher, key: &[u8]) -> Result<Aead, KeyError> {
    let bad = || KeyError::BadLength {
        what: "AEAD key",
        got: key.len(),
        expected: cipher.key_len(),
    };
    let alg = match cipher {
        Cipher::Aes128Gcm => &ring::aead::AES_128_GCM,
        Cipher::Aes256Gcm => &ring::aead::AES_256_GCM,
        Cipher::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
        Cipher::Aes192Gcm => {
            return Aes192Gcm::new_from_slice(key)
                .map(|k| Aead::Aes192(Box::new(k)))
                .map_err(|_| bad());
        }
        _ => return Err(bad()),
    };
    let k = ring::aead::UnboundKey::new(alg, key).map_err(|_| bad())?;
    Ok(Aead::Ring(ring::aead::LessSafeKey::new(k)))
}

fn cbc_key(cipher: Cipher, key: &[u8]) -> Result<CbcAes, KeyError> {
    let bad = || KeyError::BadLength {
        what: "CBC key",
        got: key.len(),
        expected: cipher.key_len(),
    };
    Ok(match cipher {
        Cipher::Aes128Cbc => CbcAes::A128(aes::Aes128::new_from_slice(key).map_err(|_| bad())?),
        Cipher::Aes192Cbc => CbcAes::A192(aes::Aes192::new_from_slice(key).map_err(|_| bad())?),
        Cipher::Aes256Cbc => CbcAes::A256(aes::Aes256::new_from_slice(key).map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

fn nonce(pid: [u8; 4], iv: &[u8; 8]) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&pid);
    n[4..].copy_from_slice(iv);
    n
}

/// Data-channel state of one key_id: keys, send packet-id, replay window,
/// header format.
pub struct DataKey {
    key_id: KeyId,
    cipher: Cipher,
    digest: Digest,
    engine: Engine,
    /// Last packet-id sent (0 = none yet).
    send_pid: u32,
    replay: ReplayWindow,
    peer_id: Option<u32>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("key_id", &self.key_id)
            .field("cipher", &self.cipher)
            .field("send_pid", &self.send_pid)
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// Client keys: encrypt with key\[0\], decrypt with key\[1\] of `km`.
    /// `digest` is only used by CBC ciphers (the profile's `auth`).
    /// `rng_seed` seeds the CBC IV generator (caller-supplied randomness).
    /// Fails on zero cipher keys.
    pub fn new_client(
        key_id: KeyId,
        cipher: Cipher,
        digest: Digest,
        km: &KeyMaterial,
        rng_seed: [u8; 32],
    ) -> Result<Self, KeyError> {
        Self::with_slots(
            key_id,
            cipher,
            digest,
            km,
            KeyMaterial::CLIENT_ENCRYPT,
            KeyMaterial::CLIENT_DECRYPT,
            rng_seed,
        )
    }

    /// Like [`new_client`](Self::new_client) with explicit slots (servers
    /// and tests: `(1, 0)` is the server side, `(0, 0)` bidirectional).
    pub fn with_slots(
        key_id: KeyId,
        cipher: Cipher,
        digest: Digest,
        km: &KeyMaterial,
        enc_slot: usize,
        dec_slot: usize,
        rng_seed: [u8; 32],
    ) -> Result<Self, KeyError> {
        let kl = cipher.key_len();
        km.check_nonzero(enc_slot, kl)?;
        km.check_nonzero(dec_slot, kl)?;
        let engine = if cipher.is_aead() {
            Engine::Aead {
                enc: aead_key(cipher, &km.cipher(enc_slot)[..kl])?,
                enc_iv: km.implicit_iv(enc_slot),
                dec: aead_key(cipher, &km.cipher(dec_slot)[..kl])?,
                dec_iv: km.implicit_iv(dec_slot),
            }
        } else {
            Engine::Cbc {
                enc: cbc_key(cipher, &km.cipher(enc_slot)[..kl])?,
                enc_mac: HmacKey::new(digest, km.hmac(enc_slot)),
                dec: cbc_key(cipher, &km.cipher(dec_slot)[..kl])?,
                dec_mac: HmacKey::new(digest, km.hmac(dec_slot)),
                rng: Box::new(ChaCha20Rng::from_seed(rng_seed)),
            }
        };
        Ok(Self {
            key_id,
            cipher,
            digest,
            engine,
            send_pid: 0,
            replay: ReplayWindow::default(),
            peer_id: None,
        })
    }

    /// Client keys in the OpenVPN 2.7 epoch data format (pushed
    /// `protocol-flags aead-epoch`): the epoch-1 secrets are the first 32
    /// bytes of the client's encrypt and decrypt cipher keys of `km`.
    /// AEAD ciphers only.
    pub fn new_client_epoch(
        key_id: KeyId,
        cipher: Cipher,
        km: &KeyMaterial,
    ) -> Result<Self, KeyError> {
        Self::with_epoch_slots(
            key_id,
            cipher,
            km,
            KeyMaterial::CLIENT_ENCRYPT,
            KeyMaterial::CLIENT_DECRYPT,
            crate::epoch::FUTURE_KEY_COUNT,
        )
    }

    /// Like [`new_client_epoch`](Self::new_client_epoch) with explicit
    /// slots and future-key count (servers and tests).
    pub fn with_epoch_slots(
        key_id: KeyId,
        cipher: Cipher,
        km: &KeyMaterial,
        enc_slot: usize,
        dec_slot: usize,
        future_keys: u16,
    ) -> Result<Self, KeyError> {
        let n = crate::epoch::EPOCH_SECRET_LEN;
        km.check_nonzero(enc_slot, n)?;
        km.check_nonzero(dec_slot, n)?;
        let keys = EpochKeys::new(
            cipher,
            &km.cipher(enc_slot)[..n],
            &km.cipher(dec_slot)[..n],
            future_keys,
        )?;
        Ok(Self {
            key_id,
            cipher,
            digest: Digest::Sha1,
            engine: Engine::Epoch(Box::new(keys)),
            send_pid: 0,
            replay: ReplayWindow::default(),
            peer_id: None,
        })
    }

    /// The epoch state when this key uses the epoch data format.
    pub fn epoch(&self) -> Option<&EpochKeys> {
        match &self.engine {
            Engine::Epoch(e) => Some(e),
            _ => None,
        }
    }

    /// Mutable epoch state (tests, benches).
    pub fn epoch_mut(&mut self) -> Option<&mut EpochKeys> {
        match &mut self.engine {
            Engine::Epoch(e) => Some(e),
            _ => None,
        }
    }

    /// Key id of this key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Cipher of this key.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Sets the pushed `peer-id`: `Some` switches to `P_DATA_V2`.
    pub fn set_peer_id(&mut self, peer_id: Option<u32>) {
        self.peer_id = peer_id.map(|p| p & 0x00FF_FFFF);
    }

    /// Header used for sending.
    pub fn header(&self) -> DataHeader {
        match self.peer_id {
            Some(peer_id) => DataHeader::V2 {
                key_id: self.key_id,
                peer_id,
            },
            None => DataHeader::V1 {
                key_id: self.key_id,
            },
        }
    }

    /// Bytes placed before the payload by [`encrypt`](Self::encrypt).
    pub fn prefix_len(&self) -> usize {
        self.header().len()
            + match &self.engine {
                Engine::Aead { .. } => 4 + AEAD_TAG_LEN,
                Engine::Cbc { .. } => self.digest.len() + 16 + 4,
                Engine::Epoch(_) => EpochKeys::PREFIX_LEN,
            }
    }

    /// Total worst-case bytes added to a payload (prefix + padding).
    pub fn max_overhead(&self) -> usize {
        self.prefix_len()
            + match &self.engine {
                Engine::Aead { .. } => 0,
                Engine::Cbc { .. } => 16,
                Engine::Epoch(_) => AEAD_TAG_LEN,
            }
    }

    /// Packet-id of the last packet sent (0 if none).
    pub fn last_sent_packet_id(&self) -> u32 {
        self.send_pid
    }

    /// True once the send packet-id reached `0xFF000000`: start a
    /// renegotiation.
    pub fn should_renegotiate(&self) -> bool {
        match &self.engine {
            // epochs move the key inside the data channel; renegotiate only
            // when the 16-bit epoch space nears its end (as OpenVPN)
            Engine::Epoch(e) => e.should_renegotiate(),
            _ => self.send_pid >= PACKET_ID_WRAP_TRIGGER,
        }
    }

    /// For tests/benches: pretend `pid` packets were already sent.
    pub fn set_last_sent_packet_id(&mut self, pid: u32) {
        self.send_pid = pid;
    }

    /// Encrypts the payload `buf[start..]` in place. Returns the offset of
    /// the wire packet, which is `buf[offset..]`. Needs `start >=
    /// prefix_len()`; CBC grows `buf` by up to 16 bytes (reserve
    /// [`TAILROOM`] capacity to avoid reallocating).
    pub fn encrypt(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<usize, DataError> {
        let mut hdr = [0u8; 4];
        let h = self.header();
        h.write(&mut hdr)?;
        self.encrypt_with_header(buf, start, &hdr[..h.len()])
    }

    fn next_pid(&mut self) -> Result<[u8; 4], DataError> {
        if self.send_pid == u32::MAX {
            return Err(DataError::PacketIdExhausted);
        }
        Ok((self.send_pid + 1).to_be_bytes())
    }

    /// Encrypt with raw header bytes (also used by the known-vector test,
    /// whose header is not a valid opcode).
    fn encrypt_with_header(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        hdr: &[u8],
    ) -> Result<usize, DataError> {
        let need = self.prefix_len() - self.header().len() + hdr.len();
        if start < need || start > buf.len() {
            return Err(DataError::NoHeadroom {
                need,
                have: start.min(buf.len()),
            });
        }
        let pid = self.next_pid()?;
        match &mut self.engine {
            Engine::Epoch(e) => e.encrypt(buf, start, hdr),
            Engine::Aead { enc, enc_iv, .. } => {
                let wire = start - need;
                let pid_at = wire + hdr.len();
                buf[wire..pid_at].copy_from_slice(hdr);
                buf[pid_at..pid_at + 4].copy_from_slice(&pid);
                let mut ad = [0u8; 8];
                let ad_len = if hdr.len() > 1 {
                    // V2: header || packet-id
                    ad[..4].copy_from_slice(hdr.get(..4).unwrap_or(&[0; 4]));
                    ad[4..].copy_from_slice(&pid);
                    8
                } else {
                    ad[..4].copy_from_slice(&pid);
                    4
                };
                let n = nonce(pid, enc_iv);
                let (head, payload) = buf.split_at_mut(start);
                let tag_dst = &mut head[start - AEAD_TAG_LEN..];
                match enc {
                    Aead::Ring(k) => {
                        let tag = k
                            .seal_in_place_separate_tag(
                                ring::aead::Nonce::assume_unique_for_key(n),
                                ring::aead::Aad::from(&ad[..ad_len]),
                                payload,
                            )
                            .map_err(|_| DataError::TooShort(payload.len()))?;
                        tag_dst.copy_from_slice(tag.as_ref());
                    }
                    Aead::Aes192(k) => {
                        use aes_gcm::aead::AeadInPlace;
                        let tag = k
                            .encrypt_in_place_detached(&n.into(), &ad[..ad_len], payload)
                            .map_err(|_| DataError::TooShort(payload.len()))?;
                        tag_dst.copy_from_slice(&tag);
                    }
                }
                self.send_pid += 1;
                Ok(wire)
            }
            Engine::Cbc {
                enc, enc_mac, rng, ..
            } => {
                let h = enc_mac.len();
                let ct_start = start - 4;
                let wire = start - need;
                let msg_len = buf.len() - ct_start;
                let padded = (msg_len / 16 + 1) * 16;
                buf[ct_start..start].copy_from_slice(&pid);
                buf.resize(ct_start + padded, 0);
                let mut iv = [0u8; 16];
                rng.fill_bytes(&mut iv);
                let region = &mut buf[ct_start..];
                let res = match enc {
                    CbcAes::A128(c) => {
                        cbc::Encryptor::<aes::Aes128>::inner_iv_init(c.clone(), &iv.into())
                            .encrypt_padded_mut::<Pkcs7>(region, msg_len)
                            .map(|_| ())
                    }
                    CbcAes::A192(c) => {
                        cbc::Encryptor::<aes::Aes192>::inner_iv_init(c.clone(), &iv.into())
                            .encrypt_padded_mut::<Pkcs7>(region, msg_len)
                            .map(|_| ())
                    }
                    CbcAes::A256(c) => {
                        cbc::Encryptor::<aes::Aes256>::inner_iv_init(c.clone(), &iv.into())
                            .encrypt_padded_mut::<Pkcs7>(region, msg_len)
                            .map(|_| ())
                    }
                };
                res.map_err(|_| DataError::BadBlockLength(msg_len))?;
                let iv_at = ct_start - 16;
                buf[iv_at..ct_start].copy_from_slice(&iv);
                let mac_at = iv_at - h;
                let (front, back) = buf.split_at_mut(iv_at);
                enc_mac.compute(&[back], &mut front[mac_at..iv_at]);
                buf[wire..wire + hdr.len()].copy_from_slice(hdr);
                self.send_pid += 1;
                Ok(wire)
            }
        }
    }

    /// Authenticates, decrypts (in place) and replay-checks the wire packet
    /// `buf`; returns the range of the plaintext payload in `buf`.
    /// `now` is the caller's monotonic time for the replay window.
    pub fn decrypt(&mut self, buf: &mut [u8], now: Instant) -> Result<Range<usize>, DataError> {
        let (op, kid) = peek_header(buf)?;
        let hlen = match op {
            Opcode::DataV1 => 1,
            Opcode::DataV2 => 4,
            other => return Err(PacketError::WrongOpcode(other).into()),
        };
        if buf.len() < hlen {
            return Err(DataError::TooShort(buf.len()));
        }
        if kid != self.key_id {
            return Err(DataError::WrongKeyId {
                got: kid.get(),
                expected: self.key_id.get(),
            });
        }
        self.decrypt_with_header_len(buf, hlen, now)
    }

    fn decrypt_with_header_len(
        &mut self,
        buf: &mut [u8],
        hlen: usize,
        now: Instant,
    ) -> Result<Range<usize>, DataError> {
        match &mut self.engine {
            Engine::Epoch(e) => e.decrypt(buf, hlen, now),
            Engine::Aead { dec, dec_iv, .. } => {
                let ct_at = hlen + 4 + AEAD_TAG_LEN;
                if buf.len() < ct_at {
                    return Err(DataError::TooShort(buf.len()));
                }
                let mut pid = [0u8; 4];
                pid.copy_from_slice(&buf[hlen..hlen + 4]);
                let mut ad = [0u8; 8];
                let ad_len = if hlen == 4 {
                    ad.copy_from_slice(&buf[..8]);
                    8
                } else {
                    ad[..4].copy_from_slice(&pid);
                    4
                };
                let mut tag = [0u8; AEAD_TAG_LEN];
                tag.copy_from_slice(&buf[hlen + 4..ct_at]);
                let n = nonce(pid, dec_iv);
                let ct = &mut buf[ct_at..];
                match dec {
                    Aead::Ring(k) => {
                        k.open_in_place_separate_tag(
                            ring::aead::Nonce::assume_unique_for_key(n),
                            ring::aead::Aad::from(&ad[..ad_len]),
                            ring::aead::Tag::from(tag),
                            ct,
                            0..,
                        )
                        .map_err(|_| DataError::AuthFailed)?;
                    }
                    Aead::Aes192(k) => {
                        use aes_gcm::aead::AeadInPlace;
                        k.decrypt_in_place_detached(&n.into(), &ad[..ad_len], ct, &tag.into())
                            .map_err(|_| DataError::AuthFailed)?;
                    }
                }
                self.replay.check_and_add(u32::from_be_bytes(pid), 0, now)?;
                Ok(ct_at..buf.len())
            }
            Engine::Cbc { dec, dec_mac, .. } => {
                let h = dec_mac.len();
                let iv_at = hlen + h;
                let ct_at = iv_at + 16;
                if buf.len() < ct_at + 16 {
                    return Err(DataError::TooShort(buf.len()));
                }
                let ct_len = buf.len() - ct_at;
                if ct_len % 16 != 0 {
                    return Err(DataError::BadBlockLength(ct_len));
                }
                if !dec_mac.verify(&[&buf[iv_at..]], &buf[hlen..iv_at]) {
                    return Err(DataError::AuthFailed);
                }
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&buf[iv_at..ct_at]);
                let region = &mut buf[ct_at..];
                let pt_len = match dec {
                    CbcAes::A128(c) => {
                        cbc::Decryptor::<aes::Aes128>::inner_iv_init(c.clone(), &iv.into())
                            .decrypt_padded_mut::<Pkcs7>(region)
                            .map(|p| p.len())
                    }
                    CbcAes::A192(c) => {
                        cbc::Decryptor::<aes::Aes192>::inner_iv_init(c.clone(), &iv.into())
                            .decrypt_padded_mut::<Pkcs7>(region)
                            .map(|p| p.len())
                    }
                    CbcAes::A256(c) => {
                        cbc::Decryptor::<aes::Aes256>::inner_iv_init(c.clone(), &iv.into())
                            .decrypt_padded_mut::<Pkcs7>(region)
                            .map(|p| p.len())
                    }
                }
                .map_err(|_| DataError::BadPadding)?;
                if pt_len < 4 {
                    return Err(DataError::TooShort(pt_len));
                }
                let mut pid = [0u8; 4];
                pid.copy_from_slice(&buf[ct_at..ct_at + 4]);
                self.replay.check_and_add(u32::from_be_bytes(pid), 0, now)?;
                Ok(ct_at + 4..ct_at + pt_len)
            }
        }
    }
}

/// Convenience: first byte of a data packet for `key_id` and V1/V2.
pub fn data_opcode_byte(v2: bool, key_id: KeyId) -> u8 {
    encode_first_byte(if v2 { Opcode::DataV2 } else { Opcode::DataV1 }, key_id)
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
