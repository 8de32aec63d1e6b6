//! The OpenVPN 2.7 epoch data channel format (`IV_PROTO_DATA_EPOCH`, pushed
//! as `protocol-flags ... aead-epoch`), as OpenVPN defines it in
//! `crypto_epoch.c`, `crypto.c` and `packet_id.c`. AEAD ciphers only, and
//! only with `P_DATA_V2` (a pushed `peer-id`).
//!
//! Packet: `[hdr 4][packet-id 8][ciphertext][tag 16]`: the tag is at the
//! end, and the 64-bit packet-id carries the epoch in its top 16 bits and a
//! per-epoch counter (starting at 1) in the low 48. AD = `hdr || packet-id`;
//! nonce = `packet-id XOR implicit-IV[0..8] || implicit-IV[8..12]`.
//!
//! Keys: the first 32 bytes of each direction's cipher key of the negotiated
//! key material (TLS-EKM `EXPORTER-OpenVPN-datakeys`) are that direction's
//! epoch-1 secret `E1`. Then, with OpenVPN's HKDF-Expand-Label variant
//! ([`expand_label`], SHA-256, label prefix `"ovpn "`):
//!
//! ```text
//! E(n+1)      = expand_label(E(n), "datakey upd", "", 32)
//! key(n)      = expand_label(E(n), "data_key",    "", cipher key length)
//! implicit(n) = expand_label(E(n), "data_iv",     "", 12)
//! ```
//!
//! Send side: a new epoch once the AEAD usage limit (`2^36 - 1` blocks plus
//! packets, AES-GCM; none for ChaCha20-Poly1305) or the 48-bit counter is
//! used up, or when the peer's receive key reached its limit. Receive side:
//! the current epoch, the retiring one, and [`FUTURE_KEY_COUNT`] epochs ahead;
//! an authenticated packet of a future epoch makes it current (and moves the
//! send epoch up to it). One replay window per epoch key.

use crate::data::{aead_key, Aead, Cipher, DataError, AEAD_TAG_LEN};
use crate::keys::KeyError;
use crate::replay::ReplayWindow;
use hkdf::Hkdf;
use sha2::Sha256;
use std::ops::Range;
use std::time::Instant;
use thiserror::Error;
use zeroize::Zeroizing;

/// Length of an epoch secret (`SHA256_DIGEST_LENGTH`).
pub const EPOCH_SECRET_LEN: usize = 32;
/// Future receive keys kept ahead of the current one (OpenVPN's software data
/// channel: 4, `init_epoch_keys()`).
pub const FUTURE_KEY_COUNT: u16 = 4;
/// Highest per-epoch packet counter (48 bits).
pub const PACKET_ID_EPOCH_MAX: u64 = 0x0000_FFFF_FFFF_FFFF;
/// A send epoch at or above this asks for a TLS renegotiation (`ssl.c`).
pub const EPOCH_RENEGOTIATE_AT: u16 = 0xF000;
/// AES-GCM usage limit, `q + s <= 2^36 - 1` (`cipher_get_aead_limits()`).
pub const AEAD_USAGE_LIMIT: u64 = (1 << 36) - 1;
/// Failed verifications after which a key is no longer used to decrypt.
const FAIL_LIMIT: u64 = 1 << 36;
/// Failed verifications after which we move our send epoch to ask the
/// peer for a new key.
const FAIL_WARN: u64 = 1 << 35;
/// Bytes of the epoch packet-id.
pub const EPOCH_PID_LEN: usize = 8;
/// Block size used for the usage-limit accounting (`AEAD_LIMIT_BLOCKSIZE`).
const LIMIT_BLOCK: u64 = 16;
/// Implicit IV length (the AEAD nonce length).
const IV_LEN: usize = 12;

/// [`expand_label`] input out of range (OpenVPN's implementation is not a
/// general purpose one either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ExpandLabelError {
    /// The secret is not 32 bytes.
    #[error("expand-label secret must be 32 bytes, got {0}")]
    SecretLength(usize),
    /// Label empty or longer than 250 bytes.
    #[error("expand-label label length {0} not in 1..=250")]
    LabelLength(usize),
    /// Context longer than 255 bytes.
    #[error("expand-label context length {0} exceeds 255")]
    ContextLength(usize),
    /// More output than HKDF-SHA256 can give (255 * 32 bytes).
    #[error("expand-label output of {0} bytes is too long")]
    OutputLength(usize),
}

/// OpenVPN's `ovpn_expand_label()`: HKDF-Expand (SHA-256, `secret` as PRK)
/// with info = `u16 length || u8 (5 + label len) || "ovpn " || label || u8
/// context len || context`, filling `out`.
pub fn expand_label(
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), ExpandLabelError> {
    const PREFIX: &[u8] = b"ovpn ";
    if secret.len() != EPOCH_SECRET_LEN {
        return Err(ExpandLabelError::SecretLength(secret.len()));
    }
    if label.is_empty() || label.len() > 250 {
        return Err(ExpandLabelError::LabelLength(label.len()));
    }
    let ctx_len =
        u8::try_from(context.len()).map_err(|_| ExpandLabelError::ContextLength(context.len()))?;
    let out_len =
        u16::try_from(out.len()).map_err(|_| ExpandLabelError::OutputLength(out.len()))?;
    let label_len = u8::try_from(PREFIX.len() + label.len())
        .map_err(|_| ExpandLabelError::LabelLength(label.len()))?;
    let mut info = Vec::with_capacity(2 + 1 + PREFIX.len() + label.len() + 1 + context.len());
    info.extend_from_slice(&out_len.to_be_bytes());
    info.push(label_len);
    info.extend_from_slice(PREFIX);
    info.extend_from_slice(label);
    info.push(ctx_len);
    info.extend_from_slice(context);
    let hk = Hkdf::<Sha256>::from_prk(secret)
        .map_err(|_| ExpandLabelError::SecretLength(secret.len()))?;
    hk.expand(&info, out)
        .map_err(|_| ExpandLabelError::OutputLength(out.len()))
}

/// A pushed `aead-epoch` the session cannot honour (OpenVPN refuses the
/// same: `init.c`, `ssl.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PushedEpochError {
    /// The format needs `P_DATA_V2`.
    #[error("the server pushed the OpenVPN 2.7 data format (protocol-flags aead-epoch) without a peer-id, which that format requires")]
    NoPeerId,
    /// The format needs an AEAD cipher.
    #[error("the server pushed the OpenVPN 2.7 data format (protocol-flags aead-epoch) with {0}, which is not an AEAD cipher")]
    NotAead(&'static str),
}

/// Checks a pushed `protocol-flags aead-epoch` against the negotiated
/// cipher and `peer-id`; `Ok` when `aead_epoch` is false.
pub fn check_pushed(
    aead_epoch: bool,
    cipher: Cipher,
    peer_id: Option<u32>,
) -> Result<(), PushedEpochError> {
    if !aead_epoch {
        return Ok(());
    }
    if !cipher.is_aead() {
        return Err(PushedEpochError::NotAead(cipher.name()));
    }
    if peer_id.is_none() {
        return Err(PushedEpochError::NoPeerId);
    }
    Ok(())
}

/// Epoch secret `E(n)` of one direction.
struct EpochSecret {
    secret: Zeroizing<[u8; EPOCH_SECRET_LEN]>,
    epoch: u16,
}

impl EpochSecret {
    fn first(e1: &[u8]) -> Result<Self, KeyError> {
        let mut secret = Zeroizing::new([0u8; EPOCH_SECRET_LEN]);
        let src = e1.get(..EPOCH_SECRET_LEN).ok_or(KeyError::BadLength {
            what: "epoch secret",
            got: e1.len(),
            expected: EPOCH_SECRET_LEN,
        })?;
        secret.copy_from_slice(src);
        Ok(Self { secret, epoch: 1 })
    }

    /// `E(n) -> E(n+1)` (`epoch_key_iterate()`). Never repeats an epoch:
    /// a new key with a reset counter would reuse nonces.
    fn iterate(&mut self) -> Result<(), KeyError> {
        let exhausted = KeyError::BadLength {
            what: "epoch counter (16 bits)",
            got: usize::from(self.epoch) + 1,
            expected: usize::from(u16::MAX),
        };
        let epoch = self.epoch.checked_add(1).ok_or(exhausted)?;
        let mut next = Zeroizing::new([0u8; EPOCH_SECRET_LEN]);
        expand_label(&self.secret[..], b"datakey upd", b"", &mut next[..]).map_err(|_| {
            KeyError::BadLength {
                what: "epoch secret",
                got: self.secret.len(),
                expected: EPOCH_SECRET_LEN,
            }
        })?;
        self.secret = next;
        self.epoch = epoch;
        Ok(())
    }

    /// Data key and implicit IV of this epoch (`epoch_data_key_derive()`).
    fn derive(&self, cipher: Cipher) -> Result<EpochDataKey, KeyError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let kl = cipher.key_len();
        let bad = |_| KeyError::BadLength {
            what: "epoch data key",
            got: kl,
            expected: 32,
        };
        expand_label(&self.secret[..], b"data_key", b"", &mut key[..kl]).map_err(bad)?;
        let mut iv = [0u8; IV_LEN];
        expand_label(&self.secret[..], b"data_iv", b"", &mut iv).map_err(bad)?;
        Ok(EpochDataKey {
            epoch: self.epoch,
            aead: aead_key(cipher, &key[..kl])?,
            iv,
            blocks: 0,
            failed: 0,
        })
    }
}

/// The AEAD key of one epoch and its usage counters.
struct EpochDataKey {
    epoch: u16,
    aead: Aead,
    iv: [u8; IV_LEN],
    /// Plaintext blocks processed (usage limit).
    blocks: u64,
    /// Failed verifications.
    failed: u64,
}

impl EpochDataKey {
    fn nonce(&self, pid: [u8; EPOCH_PID_LEN]) -> [u8; IV_LEN] {
        let mut n = self.iv;
        for (b, p) in n.iter_mut().zip(pid) {
            *b ^= p;
        }
        n
    }
}

/// A receive key with its own replay window.
struct RecvKey {
    key: EpochDataKey,
    replay: ReplayWindow,
}

impl RecvKey {
    fn new(key: EpochDataKey) -> Self {
        Self {
            key,
            replay: ReplayWindow::default(),
        }
    }
}

/// Where the key of a received epoch lives.
enum Slot {
    Current,
    Retiring,
    Future(usize),
}

/// Epoch keys of one key_id (both directions).
pub struct EpochKeys {
    cipher: Cipher,
    usage_limit: u64,
    future_count: u16,
    send_secret: EpochSecret,
    send: EpochDataKey,
    /// Last per-epoch counter sent (0 = none yet in this epoch).
    send_pid: u64,
    /// Secret of the highest receive epoch generated so far.
    recv_secret: EpochSecret,
    recv: RecvKey,
    retiring: Option<RecvKey>,
    /// Keys of epochs `recv.epoch + 1 ..= recv_secret.epoch`, ascending.
    future: Vec<EpochDataKey>,
}

impl std::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochKeys")
            .field("cipher", &self.cipher)
            .field("send_epoch", &self.send.epoch)
            .field("send_pid", &self.send_pid)
            .field("recv_epoch", &self.recv.key.epoch)
            .field("retiring", &self.retiring.as_ref().map(|r| r.key.epoch))
            .finish_non_exhaustive()
    }
}

impl EpochKeys {
    /// Keys from the epoch-1 secrets of each direction (the first 32 bytes
    /// of the send and receive cipher keys). AEAD ciphers only; refuses
    /// all-zero secrets.
    pub fn new(
        cipher: Cipher,
        send_e1: &[u8],
        recv_e1: &[u8],
        future_count: u16,
    ) -> Result<Self, KeyError> {
        if !cipher.is_aead() {
            return Err(KeyError::NotAead(cipher.name()));
        }
        for (what, s) in [
            ("epoch send secret", send_e1),
            ("epoch receive secret", recv_e1),
        ] {
            if s.get(..EPOCH_SECRET_LEN)
                .is_some_and(|s| s.iter().all(|b| *b == 0))
            {
                return Err(KeyError::ZeroKey(what));
            }
        }
        let send_secret = EpochSecret::first(send_e1)?;
        let recv_secret = EpochSecret::first(recv_e1)?;
        let send = send_secret.derive(cipher)?;
        let recv = RecvKey::new(recv_secret.derive(cipher)?);
        let mut k = Self {
            cipher,
            usage_limit: if cipher == Cipher::ChaCha20Poly1305 {
                0
            } else {
                AEAD_USAGE_LIMIT
            },
            future_count: future_count.max(1),
            send_secret,
            send,
            send_pid: 0,
            recv_secret,
            recv,
            retiring: None,
            future: Vec::new(),
        };
        k.generate_future()?;
        Ok(k)
    }

    /// Epoch used for sending.
    pub fn send_epoch(&self) -> u16 {
        self.send.epoch
    }

    /// Epoch of the current receive key.
    pub fn recv_epoch(&self) -> u16 {
        self.recv.key.epoch
    }

    /// Per-epoch counter of the last packet sent.
    pub fn last_sent_counter(&self) -> u64 {
        self.send_pid
    }

    /// For tests: pretend `pid` packets were sent in the current epoch.
    pub fn set_last_sent_counter(&mut self, pid: u64) {
        self.send_pid = pid.min(PACKET_ID_EPOCH_MAX);
    }

    /// True once the send epoch reached [`EPOCH_RENEGOTIATE_AT`].
    pub fn should_renegotiate(&self) -> bool {
        self.send_secret.epoch >= EPOCH_RENEGOTIATE_AT
    }

    /// Moves the send side to the next epoch (`epoch_iterate_send_key()`).
    pub fn iterate_send(&mut self) -> Result<(), KeyError> {
        if self.send_secret.epoch == u16::MAX {
            return Ok(());
        }
        self.send_secret.iterate()?;
        self.install_send()
    }

    fn install_send(&mut self) -> Result<(), KeyError> {
        self.send = self.send_secret.derive(self.cipher)?;
        self.send_pid = 0;
        tracing::debug!(
            epoch = self.send.epoch,
            "data channel send key moved to a new epoch"
        );
        Ok(())
    }

    /// `epoch_check_send_iterate()`: before each packet sent.
    fn check_send_iterate(&mut self) -> Result<(), KeyError> {
        if self.send_secret.epoch == u16::MAX {
            return Ok(());
        }
        let limit = self.usage_limit;
        let reached =
            |k: &EpochDataKey, pid: u64| limit > 0 && k.blocks.saturating_add(pid) > limit;
        if limit > 0 {
            if reached(&self.send, self.send_pid) {
                return self.iterate_send();
            }
            if self.send.epoch == self.recv.key.epoch
                && (reached(&self.recv.key, self.recv.replay.highest_id())
                    || self.recv.key.failed > FAIL_WARN)
            {
                return self.iterate_send();
            }
        }
        if self.send_pid == PACKET_ID_EPOCH_MAX {
            return self.iterate_send();
        }
        Ok(())
    }

    /// Bytes placed before the payload (after the header).
    pub const PREFIX_LEN: usize = EPOCH_PID_LEN;

    /// Encrypts `buf[start..]` in place behind `hdr`; appends the tag.
    /// Returns the offset of the wire packet.
    pub fn encrypt(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        hdr: &[u8],
    ) -> Result<usize, DataError> {
        let need = hdr.len() + EPOCH_PID_LEN;
        if start < need || start > buf.len() {
            return Err(DataError::NoHeadroom {
                need,
                have: start.min(buf.len()),
            });
        }
        self.check_send_iterate()
            .map_err(|_| DataError::PacketIdExhausted)?;
        if self.send_pid >= PACKET_ID_EPOCH_MAX {
            return Err(DataError::PacketIdExhausted);
        }
        let counter = self.send_pid + 1;
        let pid = ((u64::from(self.send.epoch) << 48) | counter).to_be_bytes();
        let wire = start - need;
        let pid_at = wire + hdr.len();
        buf[wire..pid_at].copy_from_slice(hdr);
        buf[pid_at..start].copy_from_slice(&pid);
        let mut ad = [0u8; 4 + EPOCH_PID_LEN];
        let ad = if hdr.len() == 4 {
            ad[..4].copy_from_slice(hdr);
            ad[4..].copy_from_slice(&pid);
            &ad[..]
        } else {
            ad[..EPOCH_PID_LEN].copy_from_slice(&pid);
            &ad[..EPOCH_PID_LEN]
        };
        let nonce = self.send.nonce(pid);
        let payload_len = buf.len() - start;
        let tag = self.send.aead.seal(nonce, ad, &mut buf[start..])?;
        buf.extend_from_slice(&tag);
        self.send_pid = counter;
        let work = (need + payload_len) as u64;
        self.send.blocks = self.send.blocks.saturating_add(work.div_ceil(LIMIT_BLOCK));
        Ok(wire)
    }

    fn lookup(&self, epoch: u16) -> Option<Slot> {
        let cur = self.recv.key.epoch;
        if epoch == cur {
            return Some(Slot::Current);
        }
        if self.retiring.as_ref().is_some_and(|r| r.key.epoch == epoch) {
            return Some(Slot::Retiring);
        }
        let fc = u32::from(self.future_count);
        if epoch > cur && u32::from(epoch) <= u32::from(cur) + fc {
            // Past the edge the window could not be refilled: refuse, as OpenVPN.
            if u32::from(epoch) > u32::from(u16::MAX) - fc - 1 {
                return None;
            }
            return self
                .future
                .iter()
                .position(|k| k.epoch == epoch)
                .map(Slot::Future);
        }
        None
    }

    fn key(&self, slot: &Slot) -> Option<&EpochDataKey> {
        match slot {
            Slot::Current => Some(&self.recv.key),
            Slot::Retiring => self.retiring.as_ref().map(|r| &r.key),
            Slot::Future(i) => self.future.get(*i),
        }
    }

    fn key_mut(&mut self, slot: &Slot) -> Option<&mut EpochDataKey> {
        match slot {
            Slot::Current => Some(&mut self.recv.key),
            Slot::Retiring => self.retiring.as_mut().map(|r| &mut r.key),
            Slot::Future(i) => self.future.get_mut(*i),
        }
    }

    /// Authenticates, decrypts (in place) and replay-checks `buf`, whose
    /// header is `hlen` bytes. Returns the plaintext range.
    pub fn decrypt(
        &mut self,
        buf: &mut [u8],
        hlen: usize,
        now: Instant,
    ) -> Result<Range<usize>, DataError> {
        // OpenVPN: packet-id, tag and at least one byte of payload.
        let ct_at = hlen + EPOCH_PID_LEN;
        if buf.len() < ct_at + AEAD_TAG_LEN + 1 {
            return Err(DataError::TooShort(buf.len()));
        }
        let mut pid = [0u8; EPOCH_PID_LEN];
        pid.copy_from_slice(&buf[hlen..ct_at]);
        let id = u64::from_be_bytes(pid);
        let epoch = (id >> 48) as u16;
        let counter = id & PACKET_ID_EPOCH_MAX;
        if epoch == 0 {
            return Err(DataError::ZeroEpoch);
        }
        let slot = self.lookup(epoch).ok_or(DataError::UnknownEpoch {
            got: epoch,
            current: self.recv.key.epoch,
        })?;
        let key = self.key(&slot).ok_or(DataError::UnknownEpoch {
            got: epoch,
            current: self.recv.key.epoch,
        })?;
        if key.failed > FAIL_LIMIT {
            return Err(DataError::DecryptFailLimit(epoch));
        }
        let mut ad = [0u8; 4 + EPOCH_PID_LEN];
        let ad: &[u8] = if hlen == 4 {
            ad.copy_from_slice(&buf[..ct_at]);
            &ad[..]
        } else {
            ad[..EPOCH_PID_LEN].copy_from_slice(&pid);
            &ad[..EPOCH_PID_LEN]
        };
        let tag_at = buf.len() - AEAD_TAG_LEN;
        let mut tag = [0u8; AEAD_TAG_LEN];
        tag.copy_from_slice(&buf[tag_at..]);
        let nonce = key.nonce(pid);
        if let Err(e) = key.aead.open(nonce, ad, &mut buf[ct_at..tag_at], tag) {
            if let Some(k) = self.key_mut(&slot) {
                k.failed = k.failed.saturating_add(1);
            }
            return Err(e);
        }
        let replay = match slot {
            Slot::Current => &mut self.recv.replay,
            Slot::Retiring => match self.retiring.as_mut() {
                Some(r) => &mut r.replay,
                None => {
                    return Err(DataError::UnknownEpoch {
                        got: epoch,
                        current: self.recv.key.epoch,
                    })
                }
            },
            Slot::Future(i) => {
                self.promote(i).map_err(|_| DataError::UnknownEpoch {
                    got: epoch,
                    current: self.recv.key.epoch,
                })?;
                &mut self.recv.replay
            }
        };
        replay.check_and_add_wide(counter, 0, now)?;
        let pt = (tag_at - ct_at) as u64;
        self.recv.key.blocks = self
            .recv
            .key
            .blocks
            .saturating_add(pt.div_ceil(LIMIT_BLOCK));
        Ok(ct_at..tag_at)
    }

    /// An authenticated packet of the future key at `idx` arrived: it becomes
    /// the current receive key, the current one retires, the send side moves
    /// up to at least that epoch (`epoch_replace_update_recv_key()`).
    fn promote(&mut self, idx: usize) -> Result<(), KeyError> {
        if idx >= self.future.len() {
            return Ok(());
        }
        let key = self.future.remove(idx);
        let epoch = key.epoch;
        tracing::debug!(epoch, "data packet with a new epoch: receive key updated");
        if self.send.epoch < epoch {
            while self.send_secret.epoch < epoch {
                self.send_secret.iterate()?;
            }
            self.install_send()?;
        }
        let old = std::mem::replace(&mut self.recv, RecvKey::new(key));
        self.retiring = Some(old);
        self.generate_future()
    }

    /// Drops future keys at or below the current epoch and derives keys up
    /// to `current + future_count` (`epoch_generate_future_receive_keys()`).
    fn generate_future(&mut self) -> Result<(), KeyError> {
        let cur = self.recv.key.epoch;
        self.future.retain(|k| k.epoch > cur);
        let want = (u32::from(cur) + u32::from(self.future_count)).min(u32::from(u16::MAX));
        while u32::from(self.recv_secret.epoch) < want {
            self.recv_secret.iterate()?;
            self.future.push(self.recv_secret.derive(self.cipher)?);
        }
        Ok(())
    }

    #[cfg(test)]
    fn future_epochs(&self) -> Vec<u16> {
        self.future.iter().map(|k| k.epoch).collect()
    }
}

#[cfg(test)]
#[path = "epoch_tests.rs"]
mod tests;
