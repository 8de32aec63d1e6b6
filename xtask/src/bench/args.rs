//! `cargo xtask bench`'s command line.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Tiny run for CI: one connect each, 1 s transfers, no warm-up (< 1 minute).
    #[arg(long)]
    pub smoke: bool,
    /// A/A run: the reference client on both sides; every ratio should read about 1.0x.
    #[arg(long)]
    pub self_test: bool,
    /// Measured rounds (throughput, CPU, RSS, RTT) per client, after one warm-up round.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Connects per client and transport for the connect-time medians.
    #[arg(long, default_value_t = 10)]
    pub connects: usize,
    /// Seconds per iperf3 transfer.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// Skip the data-channel microbenchmark (criterion, short times).
    #[arg(long)]
    pub no_data_channel: bool,
    /// Use this oxivpn-helper binary instead of building one.
    #[arg(long)]
    pub helper: Option<PathBuf>,
    /// Record `perf` profiles of OxiVPN's client during the first measured round's
    /// transfers into target/bench/perf-{up,down}.data (`perf report -i ...`).
    #[arg(long)]
    pub perf: bool,
    /// Run OxiVPN with `--no-kill-switch` (like-for-like with openvpn, which has none).
    #[arg(long)]
    pub no_kill_switch: bool,
    /// A second reference client, OpenVPN 2.7 (built by `cargo xtask` into
    /// /var/cache/oxivpn; used from there when present, except in smoke and A/A runs).
    #[arg(long = "reference-2-7", value_name = "PATH")]
    pub reference_2_7: Option<PathBuf>,
    /// Do not look for OpenVPN 2.7 in its cache.
    #[arg(long, conflicts_with = "reference_2_7")]
    pub no_reference_2_7: bool,
    /// A second oxivpn-helper binary measured in the same run as "OxiVPN (before)",
    /// with its own ratios (OxiVPN / before): build the commit before a change,
    /// copy its helper aside, and compare in one run.
    #[arg(long, value_name = "PATH")]
    pub compare: Option<PathBuf>,
    /// Skip the compressed-session rounds (server compressing with lz4-v2).
    #[arg(long)]
    pub no_compressed: bool,
    /// Time connects with the earlier probe, a shell loop of `ping` (quantised to its
    /// ~4 ms fork/exec cycle; see bench/probe.rs), to compare figures across the change.
    #[arg(long)]
    pub ping_loop_probe: bool,
}

impl BenchArgs {
    /// The CI smoke run (`cargo xtask bench --smoke`), for `cargo xtask test`.
    pub fn smoke() -> Self {
        Self {
            smoke: true,
            self_test: false,
            runs: 1,
            connects: 1,
            seconds: 1,
            no_data_channel: true,
            helper: None,
            perf: false,
            no_kill_switch: false,
            reference_2_7: None,
            no_reference_2_7: false,
            compare: None,
            no_compressed: false,
            ping_loop_probe: false,
        }
    }

    /// The OpenVPN 2.7 binary to run as a second reference, if any.
    pub(super) fn reference_2_7(&self) -> Option<PathBuf> {
        if let Some(p) = &self.reference_2_7 {
            return Some(p.clone());
        }
        if self.no_reference_2_7 || self.smoke || self.self_test {
            return None;
        }
        // Where `cargo xtask` builds it (sbin/openvpn under the cache), as the
        // interop suite finds it.
        oxivpn_e2e::OpenvpnBuild::cached("2.7.6").map(|b| b.path)
    }
}
