//! The compressed session: the lab server runs `compress lz4-v2` with
//! `allow-compression yes`, so it compresses what it sends whenever that
//! shrinks it, and the client profile says `compress lz4-v2` too (a pushed
//! `compress` is refused by openvpn 2.6 clients whose profile names no
//! compression: "allow-compression is set to 'stub-only'"); the transfer is iperf3 server to client with
//! `--repeating-payload` (a repeating byte pattern instead of random bytes),
//! so the server does compress and every client decompresses. Measured per
//! client beside the plain rows: throughput and CPU per GB with decompression.

use std::time::Duration;

use oxivpn_e2e::{Compression, Role, ServerVariant, Transport};

use super::{say, Bench, Direction, Side, TUNNEL_PEER};

/// What the compressed rows measure, for the report's settings line.
pub(super) const DESCRIPTION: &str = "compressed rows: server and profile with compress lz4-v2, \
     the server with allow-compression yes, iperf3 -R --repeating-payload (server to client, compressible)";

impl Bench {
    /// A UDP server compressing with lz4-v2 (allow-compression yes) and an iperf3 server;
    /// interleaved rounds as in the throughput phase (the warm-up discarded).
    pub(super) fn compressed_phase(&mut self, sides: &mut [&mut Side]) -> anyhow::Result<()> {
        let server = self.start_server(ServerVariant {
            compression: Compression::Lz4V2,
            compression_in_profile: true,
            transport: Transport::Udp,
            ..ServerVariant::default()
        })?;
        let mut iperf = self.lab.spawn(
            Role::Srv,
            &["iperf3", "-s", "-B", TUNNEL_PEER, "--forceflush"],
            "bench-iperf3-server-compressed",
        )?;
        iperf.wait_for_log("Server listening", Duration::from_secs(10))?;
        say("compressed session: UDP server with compress lz4-v2 (allow-compression yes)");
        let first = usize::from(!self.plan.warmup);
        for round in first..=self.plan.runs {
            let n = sides.len();
            for k in 0..n {
                let side = &mut *sides[(k + round) % n];
                self.check_interrupted()?;
                if let Err(e) = self.compressed_round(side, &server.profile, round, round > 0) {
                    self.failed(side, "compressed round", e)?;
                }
            }
        }
        drop(iperf);
        self.stop_server(server);
        Ok(())
    }

    /// Connect, one compressible download with the client's CPU time around it.
    fn compressed_round(
        &self,
        side: &mut Side,
        profile: &std::path::Path,
        round: usize,
        record: bool,
    ) -> anyhow::Result<()> {
        let Some(kind) = side.kind.clone() else {
            return Ok(());
        };
        let name = format!("{}-compressed{round}", side.tag);
        let (client, _) = self.connect(side, &kind, profile, &name)?;
        let result = self
            .transfer(
                client.pid(),
                Direction::DownCompressible,
                &format!("{name}-down"),
                None,
            )
            .map(|(mbit, bytes, cpu)| {
                let cpu_per_gb = cpu / (bytes / 1e9);
                say(&format!(
                    "  {:<16} compressed round {round}{}: down {mbit:.0} Mbit/s, {cpu_per_gb:.2} CPU-s/GB",
                    side.run.label,
                    if record { "" } else { " (warm-up, discarded)" },
                ));
                if record {
                    side.run.down_compressed_mbit_s.push(mbit);
                    side.run.cpu_s_per_gb_compressed.push(cpu_per_gb);
                }
            });
        self.disconnect(client)?;
        result
    }
}
