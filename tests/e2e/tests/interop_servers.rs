//! Interop table across server versions: every compression mode a server may run,
//! with compressible traffic (zero-filled 1200-byte pings and a 2 MB TCP transfer of
//! repetitive text, which a compressing server shrinks), and a legacy server that
//! negotiates no cipher. Root only; one lab per case, cases in parallel.
//!
//! Servers: Debian's OpenVPN 2.6 always; OpenVPN 2.5.11 and 2.7.6 when `cargo xtask
//! openvpn-build` left them in /var/cache/oxivpn/openvpn-<version>/ (otherwise those
//! cases print a SKIPPED notice and pass).
//!
//! Each case: connect with `oxivpn-helper connect`, 5 zero-filled pings of 1200 bytes
//! to 10.8.0.1 and 10.0.0.3 all answered, the transfer complete and intact (with
//! `reneg-sec`: again after the new keys are in use), the OpenVPN 2.7 epoch data
//! format negotiated exactly with 2.7 servers and AEAD ciphers, then a
//! clean disconnect with the network as before and no WARN/ERROR in the helper's log:
//! a dropped packet logs a WARN (nothing is dropped silently), so a case whose
//! traffic passed only partly fails there too.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::time::Duration;

use nix::sys::signal::Signal;
use oxivpn_e2e::{
    addr, compressible_transfer, ping_sized, root_or_skip, ClientVariant, Compression, DataCipher,
    Lab, LabConfig, OpenvpnBuild, Role, ServerVariant, Transport,
};

const READY: &str = "Initialization Sequence Completed";
const TRANSFER_BYTES: usize = 2 * 1024 * 1024;

/// Which server runs a case.
#[derive(Clone, Copy, Debug)]
enum Server {
    Debian26,
    Built(&'static str),
}

impl Server {
    /// The variant's `openvpn` field, or `None` (skip) when the build is missing.
    fn openvpn(self, name: &str) -> Option<Option<OpenvpnBuild>> {
        match self {
            Server::Debian26 => Some(None),
            Server::Built(v) => match OpenvpnBuild::cached(v) {
                Some(b) => Some(Some(b)),
                None => {
                    eprintln!(
                        "SKIPPED {name}: no OpenVPN {v} build in /var/cache/oxivpn/openvpn-{v}/ \
                         (run `cargo xtask openvpn-build`; it needs the source tree, see \
                         xtask/src/openvpn_build.rs)"
                    );
                    None
                }
            },
        }
    }
}

/// Connects, runs the compressible traffic, disconnects and checks.
fn run_case(
    name: &str,
    server: Server,
    mut variant: ServerVariant,
    client: ClientVariant,
) -> anyhow::Result<()> {
    if !root_or_skip(name) {
        return Ok(());
    }
    let Some(openvpn) = server.openvpn(name) else {
        return Ok(());
    };
    variant.openvpn = openvpn;
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&variant)?;
    let profile = lab.write_client_profile(&srv, &client, "client")?;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    if let Err(e) = helper.wait_for_log(READY, Duration::from_secs(20)) {
        anyhow::bail!("{name}: {e:#}\nserver log:\n{}", srv.log(&lab));
    }
    for dest in [addr::TUNNEL_SERVER, addr::TARGET] {
        let stats = ping_sized(&lab, Role::Cli, dest, 5, 1200)?;
        assert_eq!(
            stats.received,
            5,
            "{name}: zero-filled 1200-byte pings to {dest}: {stats:?}\nhelper log:\n{}\nserver log:\n{}",
            helper.log_tail(40),
            srv.log(&lab)
        );
    }
    let got = compressible_transfer(&lab, TRANSFER_BYTES, Duration::from_secs(20))
        .map_err(|e| anyhow::anyhow!("{name}: {e:#}\nhelper log:\n{}", helper.log_tail(40)))?;
    assert_eq!(got, TRANSFER_BYTES, "{name}: transfer incomplete");
    // Renegotiation cases: wait for the new keys, then the same traffic again.
    if let Some(secs) = variant.reneg_sec.or(client.reneg_sec) {
        if let Err(e) = helper.wait_for_log(
            "new data channel keys",
            Duration::from_secs(u64::from(secs) + 20),
        ) {
            anyhow::bail!("{name}: no renegotiation: {e:#}\n{}", helper.log_tail(40));
        }
        for dest in [addr::TUNNEL_SERVER, addr::TARGET] {
            let stats = ping_sized(&lab, Role::Cli, dest, 5, 1200)?;
            assert_eq!(
                stats.received,
                5,
                "{name}: pings to {dest} after renegotiation: {stats:?}\n{}",
                helper.log_tail(40)
            );
        }
        let got = compressible_transfer(&lab, TRANSFER_BYTES, Duration::from_secs(20))
            .map_err(|e| anyhow::anyhow!("{name}: after renegotiation: {e:#}"))?;
        assert_eq!(got, TRANSFER_BYTES, "{name}: transfer after renegotiation");
    }
    helper.signal(Signal::SIGTERM)?;
    let st = helper.wait_exit(Duration::from_secs(10))?;
    assert!(
        st.success(),
        "{name}: helper exit {st}\n{}",
        helper.log_tail(30)
    );
    let after = lab.client_network_snapshot()?;
    assert!(before == after, "{name}: network not restored");
    let log = helper.log();
    assert!(!log.contains("panicked"), "{name}: {log}");
    // Proof the compressed path ran: 2.5/2.6 servers with real compression compress
    // what shrinks (2.7 never compresses on send); a compressing profile compresses.
    let total = |field: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("compression totals"))
            .filter_map(|l| l.split(&format!("{field}=")).nth(1))
            .filter_map(|v| {
                v.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let server_compresses = variant.compression.is_real()
        && !matches!(server, Server::Built(v) if v.starts_with("2.7"));
    if server_compresses {
        assert!(
            total("decompressed_to") > 1_000_000,
            "{name}: the server compressed nothing we saw (decompressed_to {}):\n{}",
            total("decompressed_to"),
            helper.log_tail(20)
        );
    }
    if client.extra.iter().any(|l| l == "allow-compression yes") {
        assert!(
            total("compressed_from") > 0,
            "{name}: we compressed nothing"
        );
    }
    // The OpenVPN 2.7 data format (epoch data keys): negotiated with 2.7 servers
    // for AEAD ciphers, never with 2.5 or 2.6 (which ignore IV_PROTO_DATA_EPOCH),
    // for every key of the session.
    let epoch_expected = matches!(server, Server::Built(v) if v.starts_with("2.7"))
        && variant.cipher != DataCipher::Aes256CbcSha256
        && !client.legacy_cipher_only;
    let ready: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("data channel ready"))
        .collect();
    assert!(
        !ready.is_empty()
            && ready
                .iter()
                .all(|l| l.contains(&format!("epoch_format={epoch_expected}"))),
        "{name}: expected epoch_format={epoch_expected}:\n{}",
        ready.join("\n")
    );
    if epoch_expected {
        // 2.7 logs the protocol flags in effect for the client.
        let srv_log = srv.log(&lab);
        assert!(
            srv_log
                .lines()
                .any(|l| l.contains("Protocol options:") && l.contains("aead-epoch")),
            "{name}: the server did not enable aead-epoch:\n{srv_log}"
        );
    }
    let unexpected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !l.contains("legacy cipher"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: unexpected warnings (a WARN here is usually a dropped packet):\n{}",
        unexpected.join("\n")
    );
    Ok(())
}

fn compressed(c: Compression, transport: Transport, in_profile: bool) -> ServerVariant {
    ServerVariant {
        compression: c,
        compression_in_profile: in_profile,
        transport,
        ..ServerVariant::default()
    }
}

/// One `#[test]` per (server, case), so cases run in parallel.
macro_rules! table {
    ($($name:ident: $server:expr, $variant:expr, $client:expr;)*) => {
        $(
            #[test]
            fn $name() -> anyhow::Result<()> {
                run_case(stringify!($name), $server, $variant, $client)
            }
        )*
    };
}

const V25: Server = Server::Built("2.5.11");
const V27: Server = Server::Built("2.7.6");
const D26: Server = Server::Debian26;

fn plain() -> ClientVariant {
    ClientVariant::default()
}

/// A profile that also compresses what it sends (`allow-compression yes`).
fn compressing_client() -> ClientVariant {
    ClientVariant {
        extra: vec!["allow-compression yes".into()],
        ..ClientVariant::default()
    }
}

/// 2.5 server with `ncp-disable` + `cipher AES-256-CBC`, profile naming only
/// `cipher AES-256-CBC` (+ `auth SHA256`), as old provider profiles do.
fn legacy_cbc() -> ServerVariant {
    ServerVariant {
        cipher: DataCipher::Aes256CbcSha256,
        ncp_disable: true,
        ..ServerVariant::default()
    }
}

fn legacy_profile() -> ClientVariant {
    ClientVariant {
        legacy_cipher_only: true,
        ..ClientVariant::default()
    }
}

table! {
    // Debian's 2.6 (CI)
    d26_udp_comp_lzo_yes_pushed: D26, compressed(Compression::CompLzoYes, Transport::Udp, false), plain();
    d26_udp_comp_lzo_bare_in_profile: D26, compressed(Compression::CompLzoBare, Transport::Udp, true), plain();
    d26_tcp_comp_lzo_yes_pushed: D26, compressed(Compression::CompLzoYes, Transport::Tcp, false), plain();
    d26_udp_compress_lzo_pushed: D26, compressed(Compression::Lzo, Transport::Udp, false), plain();
    d26_udp_compress_lz4_pushed: D26, compressed(Compression::Lz4, Transport::Udp, false), plain();
    d26_udp_compress_lz4_v2_pushed: D26, compressed(Compression::Lz4V2, Transport::Udp, false), plain();
    d26_tcp_compress_lz4_v2_in_profile: D26, compressed(Compression::Lz4V2, Transport::Tcp, true), plain();
    d26_udp_compress_stub_pushed: D26, compressed(Compression::Stub, Transport::Udp, false), plain();
    d26_udp_comp_lzo_yes_client_compresses: D26, compressed(Compression::CompLzoYes, Transport::Udp, true), compressing_client();
    d26_udp_compress_lz4_v2_client_compresses: D26, compressed(Compression::Lz4V2, Transport::Udp, true), compressing_client();
    // `comp-lzo adaptive` on both sides: we compress with 2.6's adaptive heuristic
    // (compressible traffic keeps it on, so `compressed_from` must grow).
    d26_udp_comp_lzo_adaptive_client_compresses: D26, compressed(Compression::CompLzoAdaptive, Transport::Udp, true), compressing_client();
    // OpenVPN 2.5.11 built from its tag (skipped without the build)
    v25_udp_plain: V25, ServerVariant::default(), plain();
    v25_udp_comp_lzo_yes_pushed: V25, compressed(Compression::CompLzoYes, Transport::Udp, false), plain();
    v25_tcp_comp_lzo_yes_in_profile: V25, compressed(Compression::CompLzoYes, Transport::Tcp, true), plain();
    v25_udp_compress_lz4_pushed: V25, compressed(Compression::Lz4, Transport::Udp, false), plain();
    v25_udp_compress_lz4_v2_pushed: V25, compressed(Compression::Lz4V2, Transport::Udp, false), plain();
    v25_udp_legacy_cbc_ncp_disable: V25, legacy_cbc(), legacy_profile();
    // OpenVPN 2.7.6 built from its tag (skipped without the build)
    v27_udp_plain: V27, ServerVariant::default(), plain();
    v27_tcp_plain: V27, ServerVariant { transport: Transport::Tcp, ..ServerVariant::default() }, plain();
    v27_udp_comp_lzo_yes_pushed: V27, compressed(Compression::CompLzoYes, Transport::Udp, false), plain();
    v27_udp_compress_lz4_v2_pushed: V27, compressed(Compression::Lz4V2, Transport::Udp, false), plain();
    v27_udp_compress_stub_v2_pushed: V27, compressed(Compression::StubV2, Transport::Udp, false), plain();
    // OpenVPN 2.7's epoch data format (every 2.7 row above asserts it was
    // negotiated; these add ChaCha20 and renegotiation, server- and client-side)
    v27_udp_epoch_chacha20: V27, ServerVariant { cipher: DataCipher::Chacha20Poly1305, ..ServerVariant::default() }, plain();
    v27_udp_epoch_server_reneg: V27, ServerVariant { reneg_sec: Some(8), ..ServerVariant::default() }, plain();
    v27_tcp_epoch_client_reneg: V27, ServerVariant { transport: Transport::Tcp, ..ServerVariant::default() }, ClientVariant { reneg_sec: Some(8), ..ClientVariant::default() };
    // 2.6 and 2.5 with renegotiation: the old format, unaffected
    d26_udp_server_reneg: D26, ServerVariant { reneg_sec: Some(8), ..ServerVariant::default() }, plain();
    v25_udp_server_reneg: V25, ServerVariant { reneg_sec: Some(8), ..ServerVariant::default() }, plain();
}
