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

use anyhow::bail;

use super::{say, Bench, ClientKind, Direction, Side, TUNNEL_PEER};

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
        let measured = self.transfer(
            client.pid(),
            Direction::DownCompressible,
            &format!("{name}-down"),
            None,
        );
        let log = self.lab.dir().join(format!("{name}.log"));
        self.disconnect(client)?;
        let (mbit, bytes, cpu) = measured?;
        // OxiVPN logs its compression totals when the session ends: the row means
        // what it says only if the server did compress what it sent.
        if matches!(kind, ClientKind::OxiVpn { .. }) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let decompressed = decompressed_bytes(&text);
            if decompressed < (bytes as u64) / 2 {
                bail!(
                    "{name}: the server compressed too little of the transfer ({decompressed} of {bytes:.0} bytes decompressed)"
                );
            }
        }
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
        Ok(())
    }
}

/// `decompressed_to` of the helper's "compression totals" log line (0 without one).
fn decompressed_bytes(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("compression totals"))
        .filter_map(|l| l.split("decompressed_to=").nth(1))
        .filter_map(|v| {
            v.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decompressed_bytes_come_from_the_totals_line() {
        let log = "x INFO session ended\n\
                   x INFO decompressed_from=100 decompressed_to=4000 compressed_from=0 compression totals\n";
        assert_eq!(super::decompressed_bytes(log), 4000);
        assert_eq!(super::decompressed_bytes("nothing"), 0);
    }
}
