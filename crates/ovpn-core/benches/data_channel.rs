//! Data-channel microbenchmarks: `DataKey` encrypt / decrypt / round trip
//! per payload size, next to the raw primitive (ring AEAD, or AES-CBC +
//! HMAC for the CBC suite) measured in the same run. At the end a ratio
//! table (ours / raw throughput for encrypt+decrypt) is printed.
//!
//! Run: `cargo bench -p ovpn-core --bench data_channel`
//! (quick: `... -- --warm-up-time 1 --measurement-time 2`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::large_enum_variant
)]

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use criterion::{black_box, criterion_group, BatchSize, Criterion, Throughput};
use hmac::{Hmac, Mac};
use ovpn_core::data::{Cipher, DataKey, HEADROOM, TAILROOM};
use ovpn_core::keys::{Digest, KeyMaterial};
use ovpn_core::packet::KeyId;
use std::time::{Duration, Instant};

const SIZES: [usize; 3] = [64, 512, 1400];
const SUITES: [(Cipher, &str); 3] = [
    (Cipher::Aes256Gcm, "AES-256-GCM"),
    (Cipher::ChaCha20Poly1305, "CHACHA20-POLY1305"),
    (Cipher::Aes256Cbc, "AES-256-CBC+HMAC-SHA256"),
];

/// The same AEAD ciphers in OpenVPN 2.7's epoch data format.
const EPOCH_SUITES: [(Cipher, &str); 2] = [
    (Cipher::Aes256Gcm, "AES-256-GCM epoch"),
    (Cipher::ChaCha20Poly1305, "CHACHA20-POLY1305 epoch"),
];

fn km() -> KeyMaterial {
    let mut b = [0u8; 256];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    KeyMaterial::from_bytes(b)
}

fn pair(cipher: Cipher) -> (DataKey, DataKey) {
    let km = km();
    let mut c = DataKey::new_client(KeyId::ZERO, cipher, Digest::Sha256, &km, [1; 32]).unwrap();
    c.set_peer_id(Some(1));
    let s = DataKey::with_slots(KeyId::ZERO, cipher, Digest::Sha256, &km, 1, 0, [2; 32]).unwrap();
    (c, s)
}

fn epoch_pair(cipher: Cipher) -> (DataKey, DataKey) {
    let km = km();
    let mut c = DataKey::new_client_epoch(KeyId::ZERO, cipher, &km).unwrap();
    c.set_peer_id(Some(1));
    let s = DataKey::with_epoch_slots(KeyId::ZERO, cipher, &km, 1, 0, 4).unwrap();
    (c, s)
}

/// Our data channel: one encrypt into `buf`, one decrypt of the result.
struct Ours {
    c: DataKey,
    s: DataKey,
    buf: Vec<u8>,
    size: usize,
    now: Instant,
}

impl Ours {
    fn new(cipher: Cipher, size: usize) -> Self {
        Self::with_keys(pair(cipher), size)
    }

    fn new_epoch(cipher: Cipher, size: usize) -> Self {
        Self::with_keys(epoch_pair(cipher), size)
    }

    fn with_keys((c, s): (DataKey, DataKey), size: usize) -> Self {
        Self {
            c,
            s,
            buf: Vec::with_capacity(HEADROOM + size + TAILROOM),
            size,
            now: Instant::now(),
        }
    }

    fn fill(&mut self) {
        self.buf.clear();
        self.buf.resize(HEADROOM + self.size, 0x45);
    }

    fn encrypt(&mut self) -> usize {
        self.fill();
        self.c.encrypt(&mut self.buf, HEADROOM).unwrap()
    }

    fn round_trip(&mut self) -> usize {
        let at = self.encrypt();
        let r = self.s.decrypt(&mut self.buf[at..], self.now).unwrap();
        r.len()
    }
}

/// The raw primitive doing the same cryptographic work, no framing.
enum Raw {
    Aead {
        key: ring::aead::LessSafeKey,
        ctr: u32,
        buf: Vec<u8>,
    },
    Cbc {
        key: [u8; 32],
        mac: Hmac<sha2::Sha256>,
        buf: Vec<u8>,
        size: usize,
    },
}

impl Raw {
    fn new(cipher: Cipher, size: usize) -> Self {
        let key = [7u8; 32];
        match cipher {
            Cipher::Aes256Cbc => Raw::Cbc {
                key,
                mac: <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap(),
                buf: vec![0u8; size + 4 + 16],
                size,
            },
            c => {
                let alg = if c == Cipher::Aes256Gcm {
                    &ring::aead::AES_256_GCM
                } else {
                    &ring::aead::CHACHA20_POLY1305
                };
                Raw::Aead {
                    key: ring::aead::LessSafeKey::new(
                        ring::aead::UnboundKey::new(alg, &key).unwrap(),
                    ),
                    ctr: 0,
                    buf: vec![0x45u8; size],
                }
            }
        }
    }

    fn encrypt(&mut self) -> usize {
        match self {
            Raw::Aead { key, ctr, buf } => {
                *ctr += 1;
                let mut n = [0u8; 12];
                n[..4].copy_from_slice(&ctr.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(n),
                        ring::aead::Aad::from(&n[..8]),
                        buf,
                    )
                    .unwrap();
                let _ = black_box(tag);
                buf.len()
            }
            Raw::Cbc {
                key,
                mac,
                buf,
                size,
            } => {
                let iv = [3u8; 16];
                let ct = cbc::Encryptor::<aes::Aes256>::new(&(*key).into(), &iv.into())
                    .encrypt_padded_mut::<Pkcs7>(buf, *size + 4)
                    .unwrap();
                let mut m = mac.clone();
                m.update(&iv);
                m.update(ct);
                let _ = black_box(m.finalize());
                ct.len()
            }
        }
    }

    fn round_trip(&mut self) -> usize {
        match self {
            Raw::Aead { key, ctr, buf } => {
                *ctr += 1;
                let mut n = [0u8; 12];
                n[..4].copy_from_slice(&ctr.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(n),
                        ring::aead::Aad::from(&n[..8]),
                        buf,
                    )
                    .unwrap();
                let pt = key
                    .open_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(n),
                        ring::aead::Aad::from(&n[..8]),
                        tag,
                        buf,
                        0..,
                    )
                    .unwrap();
                pt.len()
            }
            Raw::Cbc {
                key,
                mac,
                buf,
                size,
            } => {
                let iv = [3u8; 16];
                let ct_len = {
                    let ct = cbc::Encryptor::<aes::Aes256>::new(&(*key).into(), &iv.into())
                        .encrypt_padded_mut::<Pkcs7>(buf, *size + 4)
                        .unwrap();
                    let mut m = mac.clone();
                    m.update(&iv);
                    m.update(ct);
                    let _ = black_box(m.finalize());
                    ct.len()
                };
                let mut m = mac.clone();
                m.update(&iv);
                m.update(&buf[..ct_len]);
                let _ = black_box(m.finalize());
                let pt = cbc::Decryptor::<aes::Aes256>::new(&(*key).into(), &iv.into())
                    .decrypt_padded_mut::<Pkcs7>(&mut buf[..ct_len])
                    .unwrap();
                pt.len()
            }
        }
    }
}

fn benches(c: &mut Criterion) {
    for (cipher, name) in SUITES {
        let mut g = c.benchmark_group(name);
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let mut ours = Ours::new(cipher, size);
            g.bench_function(format!("ours_encrypt/{size}"), |b| {
                b.iter(|| black_box(ours.encrypt()))
            });
            // decrypt alone: a fresh packet per iteration, made outside the timing
            let (mut cl, mut sv) = pair(cipher);
            let now = Instant::now();
            g.bench_function(format!("ours_decrypt/{size}"), |b| {
                b.iter_batched(
                    || {
                        let mut buf = Vec::with_capacity(HEADROOM + size + TAILROOM);
                        buf.resize(HEADROOM + size, 0x45);
                        let at = cl.encrypt(&mut buf, HEADROOM).unwrap();
                        buf.drain(..at);
                        buf
                    },
                    |mut pkt| black_box(sv.decrypt(&mut pkt, now).unwrap().len()),
                    BatchSize::SmallInput,
                )
            });
            let mut ours = Ours::new(cipher, size);
            g.bench_function(format!("ours_roundtrip/{size}"), |b| {
                b.iter(|| black_box(ours.round_trip()))
            });
            let mut raw = Raw::new(cipher, size);
            g.bench_function(format!("raw_encrypt/{size}"), |b| {
                b.iter(|| black_box(raw.encrypt()))
            });
            let mut raw = Raw::new(cipher, size);
            g.bench_function(format!("raw_roundtrip/{size}"), |b| {
                b.iter(|| black_box(raw.round_trip()))
            });
        }
        g.finish();
    }
    for (cipher, name) in EPOCH_SUITES {
        let mut g = c.benchmark_group(name);
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let mut ours = Ours::new_epoch(cipher, size);
            g.bench_function(format!("ours_encrypt/{size}"), |b| {
                b.iter(|| black_box(ours.encrypt()))
            });
            let mut ours = Ours::new_epoch(cipher, size);
            g.bench_function(format!("ours_roundtrip/{size}"), |b| {
                b.iter(|| black_box(ours.round_trip()))
            });
        }
        g.finish();
    }
}

/// Interleaved timing of round trips, ours vs raw, for the ratio table.
fn ratio_table(budget: Duration) {
    println!();
    println!("encrypt+decrypt throughput, ours vs raw primitive (same run):");
    println!(
        "{:<26} {:>6} {:>12} {:>12} {:>7}",
        "suite", "bytes", "ours MB/s", "raw MB/s", "ratio"
    );
    let suites = SUITES
        .iter()
        .map(|&(c, n)| (c, n, false))
        .chain(EPOCH_SUITES.iter().map(|&(c, n)| (c, n, true)));
    for (cipher, name, epoch) in suites {
        for size in SIZES {
            let mut ours = if epoch {
                Ours::new_epoch(cipher, size)
            } else {
                Ours::new(cipher, size)
            };
            let mut raw = Raw::new(cipher, size);
            let (mut t_ours, mut t_raw) = (Duration::ZERO, Duration::ZERO);
            let mut n_ours = 0u64;
            let mut n_raw = 0u64;
            let end = Instant::now() + budget;
            while Instant::now() < end {
                let t = Instant::now();
                for _ in 0..200 {
                    black_box(ours.round_trip());
                }
                t_ours += t.elapsed();
                n_ours += 200;
                let t = Instant::now();
                for _ in 0..200 {
                    black_box(raw.round_trip());
                }
                t_raw += t.elapsed();
                n_raw += 200;
            }
            let mbps = |n: u64, t: Duration| (n as f64 * size as f64) / t.as_secs_f64() / 1e6;
            let (o, r) = (mbps(n_ours, t_ours), mbps(n_raw, t_raw));
            println!(
                "{name:<26} {size:>6} {o:>12.1} {r:>12.1} {:>6.1}%",
                100.0 * o / r
            );
        }
    }
}

criterion_group!(data_channel, benches);

fn main() {
    // `cargo test --benches` runs this binary with no `--bench` flag: stay quick then.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    data_channel();
    Criterion::default().configure_from_args().final_summary();
    let budget = if bench_mode {
        Duration::from_millis(1500)
    } else {
        Duration::from_millis(20)
    };
    if !bench_mode {
        println!("(smoke run under `cargo test`: unoptimised, 20 ms per cell; figures are not meaningful)");
    }
    ratio_table(budget);
}
