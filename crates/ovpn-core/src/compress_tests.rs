//! Framing and decompression tests. The `.lzo`/`.lz4` vectors were produced
//! by liblzo2 (`lzo1x_1_15_compress`, OpenVPN's LZO_COMPRESS) and liblz4
//! (`LZ4_compress_default`, what comp-lz4.c calls) with
//! `tests/data/compress/gen_vectors.c`.

use super::*;
use crate::ping::PING_MAGIC;

const PING_RAW: &[u8] = include_bytes!("../tests/data/compress/ping1200_zero.raw");
const PING_LZO: &[u8] = include_bytes!("../tests/data/compress/ping1200_zero.lzo");
const PING_LZ4: &[u8] = include_bytes!("../tests/data/compress/ping1200_zero.lz4");
const TEXT_RAW: &[u8] = include_bytes!("../tests/data/compress/text1400.raw");
const TEXT_LZO: &[u8] = include_bytes!("../tests/data/compress/text1400.lzo");
const TEXT_LZ4: &[u8] = include_bytes!("../tests/data/compress/text1400.lz4");
const P50_RAW: &[u8] = include_bytes!("../tests/data/compress/starts50.raw");
const P50_LZ4: &[u8] = include_bytes!("../tests/data/compress/starts50.lz4");

fn comp(mode: Compression) -> Compressor {
    Compressor::new(mode, AllowCompression::Asym, 1500)
}

fn framed_with(c: &mut Compressor, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 4];
    buf.extend_from_slice(payload);
    let s = c.frame(&mut buf, 4).unwrap();
    buf[s..].to_vec()
}

fn framed(mode: Compression, payload: &[u8]) -> Vec<u8> {
    framed_with(&mut comp(mode), payload)
}

/// Deframes `wire` and returns the payload bytes.
fn received(c: &mut Compressor, wire: &[u8]) -> Result<Vec<u8>, CompressError> {
    let mut w = wire.to_vec();
    let n = w.len();
    Ok(match c.deframe(&mut w, 0..n)? {
        Payload::InPlace(r) => w[r].to_vec(),
        Payload::Decompressed(n) => c.decompressed(n).to_vec(),
    })
}

fn round_trip(mode: Compression, payload: &[u8]) {
    let wire = framed(mode, payload);
    assert_eq!(
        received(&mut comp(mode), &wire).unwrap(),
        payload,
        "{mode:?}"
    );
}

/// How OpenVPN's lz4_compress frames a block: marker, block minus its
/// first byte, that byte last.
fn swap_framed(marker: u8, block: &[u8]) -> Vec<u8> {
    let mut w = vec![marker];
    w.extend_from_slice(&block[1..]);
    w.push(block[0]);
    w
}

fn prefixed(prefix: &[u8], block: &[u8]) -> Vec<u8> {
    let mut w = prefix.to_vec();
    w.extend_from_slice(block);
    w
}

#[test]
fn none_is_identity() {
    assert_eq!(framed(Compression::None, &[0x45, 1, 2]), vec![0x45, 1, 2]);
    round_trip(Compression::None, &[0x45, 1, 2]);
}

#[test]
fn lzo_no_prefixes_fa() {
    assert_eq!(
        framed(Compression::LzoNo, &[0x45, 1, 2]),
        vec![0xFA, 0x45, 1, 2]
    );
    let mut ping = vec![0xFA];
    ping.extend_from_slice(&PING_MAGIC);
    assert_eq!(framed(Compression::LzoNo, &PING_MAGIC), ping);
    round_trip(Compression::LzoNo, &PING_MAGIC);
    assert_eq!(
        received(&mut comp(Compression::LzoNo), &[0x45, 1]),
        Err(CompressError::BadHeader(0x45))
    );
}

#[test]
fn stub_swap_moves_first_byte_to_end() {
    assert_eq!(
        framed(Compression::StubSwap, &[0x45, 1, 2]),
        vec![0xFB, 1, 2, 0x45]
    );
    assert_eq!(framed(Compression::StubSwap, &[0x60]), vec![0xFB, 0x60]);
    round_trip(Compression::StubSwap, &PING_MAGIC);
    round_trip(Compression::StubSwap, &[0x60]);
    assert_eq!(
        received(&mut comp(Compression::StubSwap), &[0xFA, 1]),
        Err(CompressError::BadHeader(0xFA))
    );
}

#[test]
fn stub_v2_escapes_0x50_only() {
    assert_eq!(framed(Compression::StubV2, &[0x45, 1]), vec![0x45, 1]);
    assert_eq!(
        framed(Compression::StubV2, &[0x50, 1]),
        vec![0x50, 0x00, 0x50, 1]
    );
    round_trip(Compression::StubV2, &[0x50, 1]);
    round_trip(Compression::StubV2, &PING_MAGIC);
    // 2.6 escapes with 0x0A
    assert_eq!(
        received(&mut comp(Compression::StubV2), &[0x50, 0x0A, 0x50, 7]).unwrap(),
        vec![0x50, 7]
    );
    assert_eq!(
        received(&mut comp(Compression::StubV2), &[0x50]),
        Err(CompressError::Truncated)
    );
    assert_eq!(
        received(&mut comp(Compression::StubV2), &[0x50, 0x07, 1]),
        Err(CompressError::BadHeader(7))
    );
}

#[test]
fn lzo_vectors_from_liblzo2_decompress_in_every_prefix_mode() {
    for mode in [Compression::Lzo, Compression::LzoNo] {
        let mut c = comp(mode);
        for (raw, z) in [(PING_RAW, PING_LZO), (TEXT_RAW, TEXT_LZO)] {
            assert_eq!(received(&mut c, &prefixed(&[0x66], z)).unwrap(), raw);
        }
        assert_eq!(
            c.stats().post_decompress,
            (PING_RAW.len() + TEXT_RAW.len()) as u64
        );
        // uncompressed packets of the same session still pass
        assert_eq!(received(&mut c, &[0xFA, 0x45, 9]).unwrap(), vec![0x45, 9]);
    }
}

#[test]
fn lz4_vectors_from_liblz4_decompress_in_swap_framing() {
    for mode in [Compression::Lz4, Compression::StubSwap] {
        let mut c = comp(mode);
        for (raw, z) in [(PING_RAW, PING_LZ4), (TEXT_RAW, TEXT_LZ4)] {
            assert_eq!(received(&mut c, &swap_framed(0x69, z)).unwrap(), raw);
        }
    }
}

#[test]
fn lz4_vectors_from_liblz4_decompress_in_v2_framing() {
    for mode in [Compression::Lz4V2, Compression::StubV2] {
        let mut c = comp(mode);
        for (raw, z) in [
            (PING_RAW, PING_LZ4),
            (TEXT_RAW, TEXT_LZ4),
            (P50_RAW, P50_LZ4),
        ] {
            assert_eq!(received(&mut c, &prefixed(&[0x50, 0x01], z)).unwrap(), raw);
        }
    }
}

#[test]
fn bombs_and_garbage_are_errors_within_the_bound() {
    // The 1228-byte ping into a 600-byte tunnel: too large, not a panic.
    let mut small = Compressor::new(Compression::Lzo, AllowCompression::Asym, 500);
    assert_eq!(small.limit(), 500 + DECOMPRESS_SLACK);
    assert_eq!(
        received(&mut small, &prefixed(&[0x66], PING_LZO)),
        Err(CompressError::TooLarge {
            alg: Algorithm::Lzo,
            limit: 628
        })
    );
    let mut small = Compressor::new(Compression::Lz4V2, AllowCompression::Asym, 500);
    assert!(matches!(
        received(&mut small, &prefixed(&[0x50, 0x01], PING_LZ4)),
        Err(CompressError::TooLarge {
            alg: Algorithm::Lz4,
            ..
        })
    ));
    // Truncated and corrupted blocks.
    let mut c = comp(Compression::Lzo);
    assert_eq!(
        received(&mut c, &prefixed(&[0x66], &PING_LZO[..PING_LZO.len() - 3])),
        Err(CompressError::Undecodable(Algorithm::Lzo))
    );
    assert_eq!(
        received(&mut c, &[0x66]),
        Err(CompressError::Undecodable(Algorithm::Lzo))
    );
    let mut c = comp(Compression::Lz4V2);
    assert!(received(&mut c, &prefixed(&[0x50, 0x01], &PING_LZ4[..10])).is_err());
    assert_eq!(
        received(&mut c, &[0x50, 0x01]),
        Err(CompressError::Undecodable(Algorithm::Lz4))
    );
    assert_eq!(
        received(&mut comp(Compression::Lz4), &[0x69]),
        Err(CompressError::Undecodable(Algorithm::Lz4))
    );
}

#[test]
fn allow_compression_no_refuses_compressed_packets() {
    let mut c = Compressor::new(Compression::Lzo, AllowCompression::No, 1500);
    assert_eq!(
        received(&mut c, &prefixed(&[0x66], PING_LZO)),
        Err(CompressError::Refused(Algorithm::Lzo))
    );
    assert_eq!(received(&mut c, &[0xFA, 1]).unwrap(), vec![1]);
    assert_eq!(
        CompressError::Refused(Algorithm::Lzo).blame(),
        Blame::Unsupported
    );
}

#[test]
fn asym_never_compresses_on_send() {
    for mode in [Compression::Lzo, Compression::Lz4, Compression::Lz4V2] {
        let mut c = comp(mode);
        assert!(!c.compresses_on_send());
        let wire = framed_with(&mut c, PING_RAW);
        assert!(wire.len() >= PING_RAW.len(), "{mode:?} sent compressed");
        assert_eq!(received(&mut comp(mode), &wire).unwrap(), PING_RAW);
    }
}

#[test]
fn allow_compression_yes_compresses_what_shrinks_and_decodes_back() {
    for mode in [Compression::Lzo, Compression::Lz4, Compression::Lz4V2] {
        let mut tx = Compressor::new(mode, AllowCompression::Yes, 1500);
        assert!(tx.compresses_on_send());
        let wire = framed_with(&mut tx, PING_RAW);
        assert!(wire.len() < 200, "{mode:?}: {} bytes", wire.len());
        let marker = match mode {
            Compression::Lzo => 0x66,
            Compression::Lz4 => 0x69,
            _ => 0x50,
        };
        assert_eq!(wire[0], marker);
        assert_eq!(received(&mut comp(mode), &wire).unwrap(), PING_RAW);
        assert_eq!(tx.stats().pre_compress, PING_RAW.len() as u64);
        // Short payloads (< 100 bytes) stay uncompressed, as in 2.6.
        let short = framed_with(&mut tx, &PING_MAGIC);
        assert_eq!(received(&mut comp(mode), &short).unwrap(), PING_MAGIC);
        assert!(short.len() >= PING_MAGIC.len());
        // Incompressible data goes out uncompressed.
        let noise: Vec<u8> = (0..400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let w = framed_with(&mut tx, &noise);
        assert_eq!(received(&mut comp(mode), &w).unwrap(), noise);
    }
}

#[test]
fn our_lzo_output_is_what_liblzo2_wrote_for_decoding() {
    // Our compressor's block must decode with the same decoder that reads
    // liblzo2's blocks (OpenVPN uses lzo1x_decompress_safe on it).
    let mut tx = Compressor::new(Compression::Lzo, AllowCompression::Yes, 1500);
    let wire = framed_with(&mut tx, TEXT_RAW);
    let mut out = vec![0u8; 2000];
    let n = decompress_lzo(&wire[1..], &mut out).unwrap();
    assert_eq!(&out[..n], TEXT_RAW);
}

#[test]
fn directive_arguments() {
    assert_eq!(
        Compression::from_compress_arg(None),
        Ok(Compression::StubSwap)
    );
    assert_eq!(
        Compression::from_compress_arg(Some("lzo")),
        Ok(Compression::Lzo)
    );
    assert_eq!(
        Compression::from_compress_arg(Some("lz4")),
        Ok(Compression::Lz4)
    );
    assert_eq!(
        Compression::from_compress_arg(Some("lz4-v2")),
        Ok(Compression::Lz4V2)
    );
    assert!(Compression::from_compress_arg(Some("snappy")).is_err());
    assert_eq!(
        Compression::from_comp_lzo_arg(None),
        Ok(Compression::LzoAdaptive)
    );
    assert_eq!(
        Compression::from_comp_lzo_arg(Some("yes")),
        Ok(Compression::Lzo)
    );
    assert_eq!(
        Compression::from_comp_lzo_arg(Some("no")),
        Ok(Compression::LzoNo)
    );
    assert_eq!(
        Compression::from_comp_lzo_arg(Some("adaptive")),
        Ok(Compression::LzoAdaptive)
    );
    assert!(Compression::from_comp_lzo_arg(Some("maybe")).is_err());
    assert_eq!(
        AllowCompression::from_arg("yes"),
        Some(AllowCompression::Yes)
    );
    assert_eq!(AllowCompression::from_arg("x"), None);
}

#[test]
fn headroom_and_empty() {
    let mut c = comp(Compression::StubV2);
    let mut b = vec![0x50, 1];
    assert_eq!(
        c.frame(&mut b, 0),
        Err(CompressError::NoHeadroom { need: 2, have: 0 })
    );
    let mut b = vec![1, 2];
    assert_eq!(comp(Compression::LzoNo).frame(&mut b, 2), Ok(2));
    for mode in [
        Compression::None,
        Compression::LzoNo,
        Compression::StubSwap,
        Compression::StubV2,
        Compression::Lzo,
        Compression::Lz4,
        Compression::Lz4V2,
    ] {
        let mut e: Vec<u8> = vec![];
        assert_eq!(comp(mode).deframe(&mut e, 0..0), Ok(Payload::InPlace(0..0)));
    }
}

/// Incompressible bytes (xorshift64*), the same every run.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Sends `n` copies of `payload` through `tx` at `now`; returns how many
/// went out compressed (LZO marker 0x66).
fn sent_compressed(
    tx: &mut Compressor,
    now: std::time::Instant,
    payload: &[u8],
    n: usize,
) -> usize {
    (0..n)
        .filter(|_| {
            let mut buf = vec![0u8; MAX_PREFIX];
            buf.extend_from_slice(payload);
            let s = tx.frame_at(now, &mut buf, MAX_PREFIX).unwrap();
            let wire = buf[s..].to_vec();
            assert_eq!(
                received(&mut comp(Compression::LzoAdaptive), &wire).unwrap(),
                payload
            );
            wire[0] == 0x66
        })
        .count()
}

#[test]
fn adaptive_turns_compression_off_for_incompressible_traffic_then_resamples() {
    use adaptive::{OFF_FOR, SAMPLE};
    use std::time::Duration;
    let noise = noise(1300);
    let mut tx = Compressor::new(Compression::LzoAdaptive, AllowCompression::Yes, 1500);
    let t0 = std::time::Instant::now();
    // First sample: every payload is tried (none shrinks, so none is sent compressed).
    assert_eq!(sent_compressed(&mut tx, t0, &noise, 5), 0);
    assert_eq!(tx.adaptive().sampled_bytes(), 5 * noise.len() as u64);
    assert_eq!(tx.stats().pre_compress, 0);
    // The sample ends: compression saved nothing, so it is switched off and
    // payloads are no longer even tried (nothing is sampled) ...
    let off_at = t0 + SAMPLE;
    assert_eq!(sent_compressed(&mut tx, off_at, &noise, 5), 0);
    assert!(tx.adaptive().is_off());
    assert_eq!(tx.adaptive().sampled_bytes(), 0);
    // ... compressible payloads included, for the whole off period ...
    let late = off_at + OFF_FOR - Duration::from_millis(1);
    assert_eq!(sent_compressed(&mut tx, late, PING_RAW, 3), 0);
    assert_eq!(tx.adaptive().sampled_bytes(), 0);
    assert_eq!(tx.stats().pre_compress, 0);
    // ... after which it samples again: compressible traffic is compressed.
    assert_eq!(sent_compressed(&mut tx, off_at + OFF_FOR, PING_RAW, 3), 3);
    assert!(!tx.adaptive().is_off());
    assert_eq!(tx.adaptive().sampled_bytes(), 3 * PING_RAW.len() as u64);
    assert_eq!(tx.adaptive().times_switched_off(), 1);
}

#[test]
fn adaptive_keeps_compressing_compressible_traffic() {
    let mut tx = Compressor::new(Compression::LzoAdaptive, AllowCompression::Yes, 1500);
    let t0 = std::time::Instant::now();
    for s in 0..100u32 {
        // 200 s of traffic, one burst every 2 s sample.
        let now = t0 + adaptive::SAMPLE * s;
        assert_eq!(
            sent_compressed(&mut tx, now, TEXT_RAW, 2),
            2,
            "at sample {s}"
        );
    }
    assert_eq!(tx.adaptive().times_switched_off(), 0);
}

#[test]
fn lzo_yes_and_lz4_ignore_the_adaptive_heuristic() {
    let noise = noise(1300);
    let t0 = std::time::Instant::now();
    let mut tx = Compressor::new(Compression::Lzo, AllowCompression::Yes, 1500);
    sent_compressed(&mut tx, t0, &noise, 5);
    sent_compressed(&mut tx, t0 + adaptive::SAMPLE * 2, &noise, 5);
    // comp-lzo yes: still tried and compressible traffic still compressed.
    assert_eq!(
        sent_compressed(&mut tx, t0 + adaptive::SAMPLE * 3, PING_RAW, 2),
        2
    );
    assert!(!tx.adaptive().is_off());
}
