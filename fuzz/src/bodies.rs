//! The body of every fuzz target, as plain functions over `&[u8]`: the cargo-fuzz targets
//! (fuzz/fuzz_targets/*.rs, libFuzzer, nightly) call them, and so does the stable
//! smoke test in the main workspace (tests/e2e/tests/fuzz_smoke.rs, which includes this
//! file by path), over the committed seeds in fuzz/seeds/<target>/ plus a few thousand
//! mutated inputs. A body may only panic on a real bug: a decoder that panics, or a
//! round trip that changes a value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: (name, body).
pub const TARGETS: &[(&str, Body)] = &[
    ("profile_parse", profile_parse),
    ("core_control_packet", core_control_packet),
    ("core_data_decrypt", core_data_decrypt),
    ("core_tcp_framer", core_tcp_framer),
    ("core_wrap_unwrap", core_wrap_unwrap),
    ("push_reply", push_reply),
    ("control_message", control_message),
    ("key_files", key_files),
    ("ipc_frames", ipc_frames),
    ("core_decompress_lzo", core_decompress_lzo),
    ("core_decompress_lz4", core_decompress_lz4),
];

/// Profile parser: never panic; a parsed profile re-serialises to text that parses to
/// the same profile; the helper's check agrees with the report.
pub fn profile_parse(data: &[u8]) {
    let Ok(parsed) = ovpn_profile::parse(data) else {
        return;
    };
    let _ = parsed.report.to_text();
    let p = &parsed.profile;
    if ovpn_profile::check_untrusted(data).is_ok() {
        assert!(parsed.report.usable && parsed.report.refused_count() == 0);
    }
    if p.file_refs().iter().any(|f| f.raw != f.path.as_bytes()) {
        return;
    }
    let text = p.to_ovpn_text();
    let again = ovpn_profile::parse(text.as_bytes()).expect("canonical text must parse");
    assert_eq!(&again.profile, p, "round trip changed the profile:\n{text}");
}

/// Plain control-packet decoder and data header parser: never panic; what decodes must
/// re-encode to the same bytes.
pub fn core_control_packet(data: &[u8]) {
    use ovpn_core::packet::{peek_header, ControlPacket, DataHeader};
    let _ = peek_header(data);
    let _ = DataHeader::parse(data);
    if let Ok(p) = ControlPacket::decode(data) {
        let mut out = Vec::new();
        p.encode(&mut out).expect("decoded packet must encode");
        assert_eq!(out, data);
    }
}

/// Data-channel decrypt (GCM, ChaCha20-Poly1305, CBC+HMAC, the 2.7 epoch format):
/// never panic.
pub fn core_data_decrypt(data: &[u8]) {
    use ovpn_core::data::{Cipher, DataKey};
    use ovpn_core::keys::{Digest, KeyMaterial};
    use ovpn_core::packet::KeyId;
    let km = KeyMaterial::from_bytes([0x33; 256]);
    let now = Instant::now();
    for cipher in [
        Cipher::Aes256Gcm,
        Cipher::ChaCha20Poly1305,
        Cipher::Aes128Cbc,
    ] {
        let mut k = DataKey::new_client(KeyId::ZERO, cipher, Digest::Sha1, &km, [0; 32])
            .expect("non-zero key");
        let mut buf = data.to_vec();
        if let Ok(r) = k.decrypt(&mut buf, now) {
            assert!(r.end <= buf.len());
        }
    }
    // the OpenVPN 2.7 epoch data format (64-bit packet-id, tag at the end)
    let mut k =
        DataKey::new_client_epoch(KeyId::ZERO, Cipher::Aes256Gcm, &km).expect("non-zero key");
    let mut buf = data.to_vec();
    if let Ok(r) = k.decrypt(&mut buf, now) {
        assert!(r.end <= buf.len());
    }
}

/// TCP framer on a byte stream cut at arbitrary points: never panic; every popped
/// packet is 1..=max bytes.
pub fn core_tcp_framer(data: &[u8]) {
    use ovpn_core::transport::TcpFramer;
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut f = TcpFramer::new(1500);
    for chunk in rest.chunks(usize::from(step.max(1))) {
        f.push(chunk);
        while let Ok(Some(p)) = f.pop() {
            assert!(!p.is_empty() && p.len() <= 1500);
        }
    }
}

/// Control-channel unwrap (none, tls-auth SHA1/SHA512, tls-crypt): never panic, output
/// untouched on error.
pub fn core_wrap_unwrap(data: &[u8]) {
    use ovpn_core::keys::Digest;
    use ovpn_core::static_key::{KeyDirection, StaticKey};
    use ovpn_core::wrap::ControlWrap;
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
}

/// PUSH_REPLY parts (one per line, `push-continuation` honoured) through the option
/// parser, plain and with route-nopull + pull-filters: never panic.
pub fn push_reply(data: &[u8]) {
    use ovpn_core::config::{ClientConfig, PullFilter, PullFilterAction};
    use ovpn_core::push::{parse_pushed, PushAccumulator};
    let text = String::from_utf8_lossy(data);
    let mut acc = PushAccumulator::new();
    let plain = ClientConfig::default();
    let filtered = ClientConfig {
        route_nopull: true,
        pull_filters: vec![
            PullFilter {
                action: PullFilterAction::Ignore,
                prefix: "route".into(),
            },
            PullFilter {
                action: PullFilterAction::Reject,
                prefix: "dhcp-option DNS 6".into(),
            },
        ],
        ..ClientConfig::default()
    };
    for part in text.split('\n') {
        let body = part.strip_prefix("PUSH_REPLY").unwrap_or(part);
        match acc.add(body) {
            Ok(Some(lines)) => {
                let _ = parse_pushed(&lines, &plain);
                let _ = parse_pushed(&lines, &filtered);
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

/// Control-channel text messages (AUTH_FAILED, RESTART, INFO, CR_TEXT, ...) and the
/// server's key-method 2 reply: never panic; a reply that parses consumed at most the input.
pub fn control_message(data: &[u8]) {
    let _ = ovpn_core::control_msg::parse(&String::from_utf8_lossy(data));
    if let Ok(Some((_, used))) = ovpn_core::keymethod::parse_server_reply(data) {
        assert!(used <= data.len());
    }
}

/// Static keys (tls-auth / tls-crypt) and tls-crypt-v2 client keys from PEM text: never panic.
pub fn key_files(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = ovpn_core::static_key::StaticKey::parse_pem(&text);
    let _ = ovpn_core::static_key::TlsCryptV2ClientKey::parse_pem(&text);
}

/// IPC frames as the helper and the clients read them: split from a byte stream cut at
/// arbitrary points (size limit before allocation), then decoded as client and server
/// frames; whatever decodes encodes and decodes again to the same value.
pub fn ipc_frames(data: &[u8]) {
    use ipc::frame::{decode, encode, FrameDecoder};
    use ipc::{ClientFrame, ServerFrame};
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut payloads = vec![rest.to_vec()];
    let mut dec = FrameDecoder::default();
    'outer: for chunk in rest.chunks(usize::from(step.max(1))) {
        dec.push(chunk);
        loop {
            match dec.next_payload() {
                Ok(Some(p)) => {
                    assert!(p.len() <= ipc::MAX_FRAME);
                    payloads.push(p);
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
    for p in &payloads {
        if let Ok(f) = decode::<ClientFrame>(p) {
            let bytes = encode(&f).expect("a decoded frame encodes");
            let again: ClientFrame = decode(&bytes[4..]).expect("re-decodes");
            assert_eq!(again, f);
        }
        if let Ok(f) = decode::<ServerFrame>(p) {
            let bytes = encode(&f).expect("a decoded frame encodes");
            let again: ServerFrame = decode(&bytes[4..]).expect("re-decodes");
            assert_eq!(again, f);
        }
    }
}

/// One compression mode over a received payload and a sent one: deframing never
/// panics and never yields more than the bound; what we frame (compressed with
/// `allow-compression yes`, or not) deframes to the same bytes.
fn compress_mode(mode: ovpn_core::compress::Compression, data: &[u8]) {
    use ovpn_core::compress::{AllowCompression, Compressor, Payload, MAX_PREFIX};
    let mut rx = Compressor::new(mode, AllowCompression::Asym, 1500);
    let mut wire = data.to_vec();
    let n = wire.len();
    match rx.deframe(&mut wire, 0..n) {
        Ok(Payload::InPlace(r)) => assert!(r.end <= n && r.start <= r.end),
        Ok(Payload::Decompressed(m)) => {
            assert!(m <= rx.limit());
            assert_eq!(rx.decompressed(m).len(), m);
        }
        Err(_) => {}
    }
    if data.len() > 1500 {
        return;
    }
    for allow in [AllowCompression::Asym, AllowCompression::Yes] {
        let mut tx = Compressor::new(mode, allow, 1500);
        let mut buf = vec![0u8; MAX_PREFIX];
        buf.extend_from_slice(data);
        let s = tx.frame(&mut buf, MAX_PREFIX).expect("frame with headroom");
        let mut w = buf[s..].to_vec();
        let n = w.len();
        let got = match rx.deframe(&mut w, 0..n).expect("our own framing deframes") {
            Payload::InPlace(r) => w[r].to_vec(),
            Payload::Decompressed(m) => rx.decompressed(m).to_vec(),
        };
        assert_eq!(got, data, "{mode:?} {allow:?} round trip");
    }
}

/// LZO1X decompression (`comp-lzo`, `compress lzo`, and `comp-lzo no`, which also
/// decodes what a server compresses), bounded output.
pub fn core_decompress_lzo(data: &[u8]) {
    use ovpn_core::compress::{decompress_lzo, Compression};
    let mut out = vec![0u8; 1628];
    if let Ok(n) = decompress_lzo(data, &mut out) {
        assert!(n <= out.len());
    }
    compress_mode(Compression::Lzo, data);
    compress_mode(Compression::LzoNo, data);
}

/// LZ4 decompression in the swap (`compress lz4`) and v2 (`compress lz4-v2`) framings,
/// bounded output.
pub fn core_decompress_lz4(data: &[u8]) {
    use ovpn_core::compress::{decompress_lz4, Compression};
    let mut out = vec![0u8; 1628];
    if let Ok(n) = decompress_lz4(data, &mut out) {
        assert!(n <= out.len());
    }
    compress_mode(Compression::Lz4, data);
    compress_mode(Compression::Lz4V2, data);
    compress_mode(Compression::StubSwap, data);
    compress_mode(Compression::StubV2, data);
}
