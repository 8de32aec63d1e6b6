//! Data-channel decrypt (GCM, ChaCha20-Poly1305, CBC+HMAC) on arbitrary
//! input: never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ovpn_core::data::{Cipher, DataKey};
use ovpn_core::keys::{Digest, KeyMaterial};
use ovpn_core::packet::KeyId;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let km = KeyMaterial::from_bytes([0x33; 256]);
    let now = Instant::now();
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305, Cipher::Aes128Cbc] {
        let mut k = DataKey::new_client(KeyId::ZERO, cipher, Digest::Sha1, &km, [0; 32])
            .expect("non-zero key");
        let mut buf = data.to_vec();
        if let Ok(r) = k.decrypt(&mut buf, now) {
            assert!(r.end <= buf.len());
        }
    }
});
