//! Tests of `epoch.rs` (kept apart so that module stays small).
use super::*;
use hex_literal::hex;

#[test]
fn expand_label_matches_openvpn_unit_test() {
    // tests/unit_tests/openvpn/test_crypto.c: crypto_test_ovpn_label_expand
    let secret = hex!("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    let mut out = [0u8; 16];
    expand_label(&secret, b"unit test", b"", &mut out).unwrap();
    assert_eq!(out, hex!("185eaa1c7f228ab8eb29773214d92046"));
}

#[test]
fn expand_label_info_is_openvpns_hkdf_label() {
    // test_crypto.c: crypto_test_hkdf_expand_test_ovpn gives the raw HKDF
    // with OpenVPN's info for ("unit test", 27 bytes): our label must
    // produce the same info and so the same output.
    let secret = hex!("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    let mut out = [0u8; 27];
    expand_label(&secret, b"unit test", b"", &mut out).unwrap();
    assert_eq!(
        out,
        hex!("875a8eec18556380b8d933ed323c2df8e8eccf4972e683f06a83ac")
    );
}

#[test]
fn expand_label_refuses_bad_input() {
    let s = [1u8; 32];
    let mut o = [0u8; 16];
    assert_eq!(
        expand_label(&s[..31], b"x", b"", &mut o),
        Err(ExpandLabelError::SecretLength(31))
    );
    assert_eq!(
        expand_label(&s, b"", b"", &mut o),
        Err(ExpandLabelError::LabelLength(0))
    );
    assert_eq!(
        expand_label(&s, &[b'a'; 251], b"", &mut o),
        Err(ExpandLabelError::LabelLength(251))
    );
    assert_eq!(
        expand_label(&s, b"x", &[0; 256], &mut o),
        Err(ExpandLabelError::ContextLength(256))
    );
    let mut big = vec![0u8; 255 * 32 + 1];
    assert!(expand_label(&s, b"x", b"", &mut big).is_err());
}

/// test_crypto.c: crypto_test_epoch_setup (0x23.. / 0x27.., 16 future keys).
fn setup(future: u16) -> EpochKeys {
    let mut send = [0u8; 32];
    send[0] = 0x23;
    let mut recv = [0u8; 32];
    recv[0] = 0x27;
    EpochKeys::new(Cipher::Aes256Gcm, &send, &recv, future).unwrap()
}

#[test]
fn future_key_generation_as_openvpn() {
    // crypto_test_epoch_key_generation
    let k = setup(16);
    assert_eq!(k.future_epochs(), (2..=17).collect::<Vec<_>>());
    assert_eq!(k.send_secret.epoch, 1);
    assert_eq!(k.recv_secret.epoch, 17);
}

#[test]
fn rotation_as_openvpn() {
    // crypto_test_epoch_key_rotation
    let mut k = setup(16);
    let i = k.future.iter().position(|f| f.epoch == 9).unwrap();
    k.promote(i).unwrap();
    assert_eq!(k.recv_epoch(), 9);
    assert_eq!(k.send_epoch(), 9);
    assert_eq!(k.retiring.as_ref().unwrap().key.epoch, 1);
    for _ in 0..4 {
        k.iterate_send().unwrap();
    }
    assert_eq!(k.send_epoch(), 13);
    let i = k.future.iter().position(|f| f.epoch == 10).unwrap();
    k.promote(i).unwrap();
    assert_eq!((k.recv_epoch(), k.send_epoch()), (10, 13));
    assert_eq!(k.retiring.as_ref().unwrap().key.epoch, 9);
    let i = k.future.iter().position(|f| f.epoch == 12).unwrap();
    k.promote(i).unwrap();
    assert_eq!((k.recv_epoch(), k.send_epoch()), (12, 13));
    assert_eq!(k.retiring.as_ref().unwrap().key.epoch, 10);
    k.iterate_send().unwrap();
    assert_eq!(k.send_epoch(), 14);
}

#[test]
fn receive_lookup_window_as_openvpn() {
    // crypto_test_epoch_key_receive_lookup (future count 13 there)
    let mut k = setup(13);
    let found = |k: &EpochKeys, e: u16| k.lookup(e).and_then(|s| k.key(&s).map(|x| x.epoch));
    for e in [2000, u16::MAX, 0xefff, 0, 15] {
        assert_eq!(found(&k, e), None, "{e}");
    }
    for e in [1, 2, 13, 14] {
        assert_eq!(found(&k, e), Some(e));
    }
    let i = k.future.iter().position(|f| f.epoch == 7).unwrap();
    k.promote(i).unwrap();
    assert_eq!(found(&k, 1), Some(1));
    assert!(matches!(k.lookup(1), Some(Slot::Retiring)));
    for e in [0, 2, 3, 4, 5, 6, 21, 22] {
        assert_eq!(found(&k, e), None, "{e}");
    }
    for e in [7, 8, 20] {
        assert_eq!(found(&k, e), Some(e));
    }
    let i = k.future.iter().position(|f| f.epoch == 8).unwrap();
    k.promote(i).unwrap();
    for e in [0, 1, 6, 22, 23] {
        assert_eq!(found(&k, e), None, "{e}");
    }
    assert!(matches!(k.lookup(7), Some(Slot::Retiring)));
    for e in [8, 20, 21] {
        assert_eq!(found(&k, e), Some(e));
    }
}

#[test]
fn edge_of_the_epoch_space() {
    // crypto_test_epoch_key_overflow, without iterating 65k hashes: the
    // window refuses epochs whose refill would pass u16::MAX.
    let mut k = setup(32);
    k.recv.key.epoch = u16::MAX - 40;
    for (i, f) in k.future.iter_mut().enumerate() {
        f.epoch = u16::MAX - 39 + i as u16;
    }
    let found = |k: &EpochKeys, e: u16| k.lookup(e).is_some();
    assert!(found(&k, u16::MAX - 34));
    assert!(found(&k, u16::MAX - 33));
    assert!(!found(&k, u16::MAX - 32));
    assert!(!found(&k, u16::MAX));
}

fn pair(cipher: Cipher) -> (EpochKeys, EpochKeys) {
    let a: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(7) ^ 0x5a).collect();
    let b: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(13) ^ 0xa5).collect();
    (
        EpochKeys::new(cipher, &a, &b, FUTURE_KEY_COUNT).unwrap(),
        EpochKeys::new(cipher, &b, &a, FUTURE_KEY_COUNT).unwrap(),
    )
}

const HDR: [u8; 4] = [0x48, 0, 0, 7];

fn seal(k: &mut EpochKeys, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12];
    buf.extend_from_slice(payload);
    let at = k.encrypt(&mut buf, 12, &HDR).unwrap();
    buf[at..].to_vec()
}

#[test]
fn round_trip_layout_and_per_epoch_replay() {
    let now = Instant::now();
    for cipher in [
        Cipher::Aes128Gcm,
        Cipher::Aes192Gcm,
        Cipher::Aes256Gcm,
        Cipher::ChaCha20Poly1305,
    ] {
        let (mut c, mut s) = pair(cipher);
        let w = seal(&mut c, b"hello");
        assert_eq!(w.len(), 4 + 8 + 5 + 16);
        assert_eq!(&w[4..12], &hex!("0001000000000001"));
        let mut r = w.clone();
        let range = s.decrypt(&mut r, 4, now).unwrap();
        assert_eq!(&r[range], b"hello");
        assert!(matches!(
            s.decrypt(&mut w.clone(), 4, now),
            Err(DataError::Replay(_))
        ));
        // a new epoch restarts the counter at 1 and has its own window
        c.iterate_send().unwrap();
        let w2 = seal(&mut c, b"again");
        assert_eq!(&w2[4..12], &hex!("0002000000000001"));
        let mut r2 = w2.clone();
        let range = s.decrypt(&mut r2, 4, now).unwrap();
        assert_eq!(&r2[range], b"again");
        assert_eq!(s.recv_epoch(), 2);
        // the receiver moved its send side up to epoch 2 too
        assert_eq!(s.send_epoch(), 2);
        // a late packet of the retiring epoch is still accepted once
        let mut late = seal_with_epoch1_counter(cipher, 2);
        assert!(s.decrypt(&mut late, 4, now).is_ok());
        assert!(s.decrypt(&mut w2.clone(), 4, now).is_err());
    }
}

/// Packet of epoch 1, counter `n`, from a fresh sender of `pair()`.
fn seal_with_epoch1_counter(cipher: Cipher, n: u64) -> Vec<u8> {
    let (mut c, _) = pair(cipher);
    c.set_last_sent_counter(n - 1);
    seal(&mut c, b"late")
}

#[test]
fn unknown_and_old_epochs_are_refused() {
    let now = Instant::now();
    let (mut c, mut s) = pair(Cipher::Aes256Gcm);
    for _ in 0..FUTURE_KEY_COUNT + 1 {
        c.iterate_send().unwrap();
    }
    let mut w = seal(&mut c, b"too far ahead");
    assert_eq!(
        s.decrypt(&mut w, 4, now),
        Err(DataError::UnknownEpoch { got: 6, current: 1 })
    );
    // epoch 3 then 5: epoch 1 and 2 are no longer accepted (3 retires at 5)
    let (mut c, mut s) = pair(Cipher::Aes256Gcm);
    let e1 = seal(&mut c, b"one");
    c.iterate_send().unwrap();
    c.iterate_send().unwrap();
    assert!(s.decrypt(&mut seal(&mut c, b"three"), 4, now).is_ok());
    c.iterate_send().unwrap();
    c.iterate_send().unwrap();
    assert!(s.decrypt(&mut seal(&mut c, b"five"), 4, now).is_ok());
    let old = s.decrypt(&mut e1.clone(), 4, now);
    assert_eq!(old, Err(DataError::UnknownEpoch { got: 1, current: 5 }));
    // Both are counted under their own drop reason, not as an unknown key id.
    if let Err(e) = &old {
        assert_eq!(
            crate::drops::DropReason::of(e),
            crate::drops::DropReason::Epoch
        );
    }
    assert_eq!(
        crate::drops::DropReason::of(&DataError::UnknownEpoch { got: 6, current: 1 }),
        crate::drops::DropReason::Epoch
    );
    let mut zero = e1.clone();
    zero[4] = 0;
    zero[5] = 0;
    assert_eq!(s.decrypt(&mut zero, 4, now), Err(DataError::ZeroEpoch));
}

#[test]
fn forged_future_epoch_does_not_move_keys() {
    let now = Instant::now();
    let (mut c, mut s) = pair(Cipher::Aes256Gcm);
    let mut w = seal(&mut c, b"payload");
    w[5] = 3; // claim epoch 3: authentication fails, nothing changes
    assert_eq!(s.decrypt(&mut w, 4, now), Err(DataError::AuthFailed));
    assert_eq!((s.recv_epoch(), s.send_epoch()), (1, 1));
    for i in 0..w.len() {
        let mut t = seal(&mut c, b"payload");
        t[i] ^= 0x80;
        assert!(s.decrypt(&mut t, 4, now).is_err(), "byte {i}");
    }
    for n in 0..25 {
        let mut t = seal(&mut c, b"p")[..n].to_vec();
        assert!(s.decrypt(&mut t, 4, now).is_err(), "len {n}");
    }
}

#[test]
fn send_epoch_moves_at_counter_end_and_usage_limit() {
    // the 48-bit counter end (ChaCha20-Poly1305: no usage limit before it)
    let (mut c, _) = pair(Cipher::ChaCha20Poly1305);
    c.set_last_sent_counter(PACKET_ID_EPOCH_MAX - 1);
    let w = seal(&mut c, b"last");
    assert_eq!(&w[4..12], &hex!("0001ffffffffffff"));
    let w = seal(&mut c, b"next");
    assert_eq!(&w[4..12], &hex!("0002000000000001"));
    // AES-GCM: the packet count alone passes the usage limit first
    let (mut c, mut s) = pair(Cipher::Aes256Gcm);
    c.set_last_sent_counter(AEAD_USAGE_LIMIT + 1);
    let w = seal(&mut c, b"next");
    assert_eq!(&w[4..12], &hex!("0002000000000001"));
    // usage limit: blocks + packets > 2^36 - 1 moves the epoch
    c.send.blocks = AEAD_USAGE_LIMIT - 1;
    c.send_pid = 1;
    let w = seal(&mut c, b"x");
    assert_eq!(&w[4..12], &hex!("0002000000000002"));
    let w = seal(&mut c, b"x");
    assert_eq!(&w[4..12], &hex!("0003000000000001"));
    assert!(s.decrypt(&mut w.clone(), 4, Instant::now()).is_ok());
    // ChaCha20-Poly1305 has no usage limit
    let (mut c, _) = pair(Cipher::ChaCha20Poly1305);
    c.send.blocks = u64::MAX - 10;
    let w = seal(&mut c, b"x");
    assert_eq!(&w[4..12], &hex!("0001000000000001"));
    // renegotiate before the epoch space runs out
    let (mut c, _) = pair(Cipher::Aes128Gcm);
    assert!(!c.should_renegotiate());
    c.send_secret.epoch = EPOCH_RENEGOTIATE_AT;
    assert!(c.should_renegotiate());
}

#[test]
fn pushed_flag_checks() {
    assert_eq!(check_pushed(false, Cipher::Aes256Cbc, None), Ok(()));
    assert_eq!(check_pushed(true, Cipher::Aes256Gcm, Some(0)), Ok(()));
    assert_eq!(
        check_pushed(true, Cipher::Aes256Gcm, None),
        Err(PushedEpochError::NoPeerId)
    );
    assert_eq!(
        check_pushed(true, Cipher::Aes128Cbc, Some(1)),
        Err(PushedEpochError::NotAead("AES-128-CBC"))
    );
}

#[test]
fn refuses_cbc_and_zero_secrets() {
    assert!(EpochKeys::new(Cipher::Aes256Cbc, &[1; 32], &[2; 32], 4).is_err());
    assert!(matches!(
        EpochKeys::new(Cipher::Aes256Gcm, &[0; 32], &[2; 32], 4),
        Err(KeyError::ZeroKey(_))
    ));
    assert!(EpochKeys::new(Cipher::Aes256Gcm, &[1; 16], &[2; 32], 4).is_err());
}
