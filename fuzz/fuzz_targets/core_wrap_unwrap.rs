//! Control-channel unwrap (none, tls-auth SHA1/SHA512, tls-crypt) on
//! arbitrary input: never panic, output untouched on error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ovpn_core::keys::Digest;
use ovpn_core::static_key::{KeyDirection, StaticKey};
use ovpn_core::wrap::ControlWrap;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let key = StaticKey::from_bytes([0x5a; 256]);
    let now = Instant::now();
    let wraps = [
        ControlWrap::none(),
        ControlWrap::tls_auth(&key, KeyDirection::Inverse, Digest::Sha1).expect("full key"),
        ControlWrap::tls_auth(&key, KeyDirection::Normal, Digest::Sha512).expect("full key"),
        ControlWrap::tls_crypt(&key),
    ];
    for mut w in wraps {
        let mut out = Vec::new();
        if w.unwrap(data, now, &mut out).is_err() {
            assert!(out.is_empty());
        }
    }
});
