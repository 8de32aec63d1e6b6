//! `cargo xtask bench`: OxiVPN's foreground client (`oxivpn-helper connect`) against
//! the reference `openvpn` 2.6 client, both talking to the same openvpn 2.6 server in
//! the lab's direct topology (client on the server's link), measured in one run with
//! the two clients interleaved so that the machine's noise hits both alike.
//!
//! Per client: connect time (process start to the first ping reply from the server's
//! tunnel address; UDP, TCP, TCP with `tcp-nodelay`), iperf3 TCP throughput up and
//! down through the tunnel, client CPU seconds per GB moved, client peak RSS, ping RTT
//! through the tunnel; then the ratios to the reference. `--self-test` runs the
//! reference on both sides (an A/A run: every ratio should read about 1.0x).
//! A compressed session (bench/compressed.rs) adds CPU per GB with decompression;
//! `--compare PATH` measures a second OxiVPN build beside the first.
//! Results go to `target/bench/` (markdown + JSON) and to stdout.

mod args;
mod compressed;
mod host;
mod measure;
pub mod probe;
mod report;

pub use args::BenchArgs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use oxivpn_e2e::{
    addr, first_reply_after, keys, pki, ClientVariant, KeyAlg, Lab, LabConfig, Proc, Role,
    ServerVariant, Transport,
};

use crate::{deps, sys};
use host::{
    bench_dir, build_helper, data_channel, first_lines, helper_can_connect, machine, note,
    openvpn_version, print_report, say, utc_now, write_report,
};
use report::{ClientRun, Report};

/// Where the tunnel is proven: the server's own tunnel address, reachable only
/// through the tunnel (the direct topology's client has no route to 10/8).
const TUNNEL_PEER: &str = addr::TUNNEL_SERVER;
/// The earlier connect probe (`--ping-loop-probe`): retries ping until the tunnel route
/// exists (ping exits at once before that), then pings every 2 ms until the first reply;
/// `-D` prints each reply's time.
const PING_LOOP_PROBE: &str = "while :; do ping -D -n -c 1 -w 20 -i 0.002 -W 1 10.8.0.1 2>/dev/null && exit 0; sleep 0.002; done";
/// How long one connect may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Pings for the RTT figure (20 in a full run).
const RTT_PINGS_FULL: u32 = 20;
const RTT_PINGS_SMOKE: u32 = 5;

/// Which program a bench side runs.
#[derive(Debug, Clone)]
enum ClientKind {
    /// `oxivpn-helper connect`, with `--no-kill-switch` when the flag says so.
    OxiVpn {
        helper: PathBuf,
        no_kill_switch: bool,
    },
    /// An `openvpn` binary: `openvpn` from PATH (2.6, Debian's) or a given path (2.7).
    OpenVpn(PathBuf),
}

impl ClientKind {
    /// `/proc/PID/comm` of the client process: its file name, cut to 15 bytes.
    fn comm(&self) -> String {
        let path = match self {
            ClientKind::OxiVpn { helper, .. } => helper,
            ClientKind::OpenVpn(p) => p,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.bytes().take(15).map(char::from).collect()
    }
}

/// Which way an iperf3 transfer goes, and what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client to server, iperf3's random payload.
    Up,
    /// Server to client (`-R`), random payload.
    Down,
    /// Server to client with `--repeating-payload`: compressible.
    DownCompressible,
}

/// One side of the comparison: what it runs and what was measured.
struct Side {
    kind: Option<ClientKind>,
    run: ClientRun,
    /// Name prefix for its logs, unique per side.
    tag: &'static str,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    deps::ensure(&["iperf3", "iputils-ping", "openvpn", "openssl", "iproute2"])?;
    if !sys::is_root() && args.smoke {
        note("SKIPPED bench smoke: needs root (network namespaces, TUN)");
        return Ok(());
    }
    if !sys::is_root() {
        bail!("the bench needs root (network namespaces, TUN); run `sudo -E cargo xtask bench`");
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // A second handler is refused when another command already installed one; the
        // bench then simply cannot be interrupted between steps.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let started = Instant::now();
    let mode = match (args.smoke, args.self_test) {
        (false, false) => "full",
        (true, false) => "smoke",
        (false, true) => "self-test",
        (true, true) => "smoke self-test",
    };

    let mut report = Report {
        date: utc_now(),
        mode: mode.into(),
        machine: machine(),
        ..Report::default()
    };
    let version_2_6 = openvpn_version(Path::new("openvpn"));
    let mut reference = Side {
        kind: Some(ClientKind::OpenVpn("openvpn".into())),
        run: ClientRun {
            label: if args.self_test {
                "openvpn 2.6 (B)".into()
            } else {
                "openvpn 2.6".into()
            },
            binary: version_2_6.clone(),
            ..ClientRun::default()
        },
        tag: "ref",
    };
    let mut subject = if args.self_test {
        Side {
            kind: Some(ClientKind::OpenVpn("openvpn".into())),
            run: ClientRun {
                label: "openvpn 2.6 (A)".into(),
                binary: version_2_6,
                ..ClientRun::default()
            },
            tag: "refa",
        }
    } else {
        let helper = match &args.helper {
            Some(h) => Ok(h.clone()),
            None => build_helper(!args.smoke),
        };
        let label = if args.no_kill_switch {
            "OxiVPN (no kill switch)"
        } else {
            "OxiVPN"
        };
        oxivpn_side(label, helper, args.no_kill_switch, "oxi")
    };
    let mut compare = args.compare.as_ref().map(|h| {
        let label = if args.no_kill_switch {
            "OxiVPN (before, no kill switch)"
        } else {
            "OxiVPN (before)"
        };
        oxivpn_side(label, Ok(h.clone()), args.no_kill_switch, "oxib")
    });
    let mut reference_2_7 = args.reference_2_7().map(|bin| Side {
        run: ClientRun {
            label: "openvpn 2.7".into(),
            binary: format!("{} ({})", bin.display(), openvpn_version(&bin)),
            ..ClientRun::default()
        },
        kind: Some(ClientKind::OpenVpn(bin)),
        tag: "ref27",
    });

    if !args.smoke && !args.no_data_channel && !args.self_test {
        match data_channel() {
            Ok(row) => report.data_channel = Some(row),
            Err(e) => note(&format!("data-channel microbenchmark skipped: {e:#}")),
        }
    }

    let ticks = measure::clock_ticks();
    let plan = Plan::new(args);
    report.settings = plan.describe();
    if !args.no_compressed {
        report.settings.push_str("; ");
        report.settings.push_str(compressed::DESCRIPTION);
    }
    say(&format!("{mode} run: {}", report.settings));
    let mut bench = Bench {
        lab: Lab::start(LabConfig::direct()).context("starting the direct lab")?,
        plan,
        ticks,
        interrupted,
        servers: 0,
    };
    {
        let mut sides: Vec<&mut Side> = vec![&mut subject, &mut reference];
        if let Some(r) = reference_2_7.as_mut() {
            sides.push(r);
        }
        if let Some(c) = compare.as_mut() {
            sides.push(c);
        }
        bench.throughput_phase(&mut sides)?;
        if !args.no_compressed {
            bench.compressed_phase(&mut sides)?;
        }
        bench.connect_phase(Transport::Udp, &mut sides)?;
        bench.connect_phase(Transport::Tcp, &mut sides)?;
        if !args.smoke {
            bench.connect_phase(Transport::TcpNoDelay, &mut sides)?;
        }
    }
    drop(bench);

    report.subject = subject.run;
    report.reference = reference.run;
    report.reference_2_7 = reference_2_7.map(|s| s.run);
    report.compare = compare.map(|s| s.run);
    // A harness that measured nothing for the reference is broken, whatever OxiVPN did.
    let r = &report.reference;
    if r.connect_udp_ms.is_empty() || r.up_mbit_s.is_empty() || r.down_mbit_s.is_empty() {
        print_report(&report);
        bail!(
            "the reference client produced no figures; the bench harness is broken: {}",
            r.notices.join("; ")
        );
    }
    let files = write_report(&report)?;
    print_report(&report);
    say(&format!(
        "done in {:.0} s; written {}",
        started.elapsed().as_secs_f64(),
        files
    ));
    Ok(())
}

/// An OxiVPN side: the given or freshly built helper, or a side with a notice when
/// it cannot connect (the bench then still measures the others).
fn oxivpn_side(
    label: &str,
    helper: anyhow::Result<PathBuf>,
    no_kill_switch: bool,
    tag: &'static str,
) -> Side {
    let mut run = ClientRun {
        label: label.into(),
        ..ClientRun::default()
    };
    let kind = match helper {
        Ok(h) if helper_can_connect(&h) => {
            let flag = if no_kill_switch {
                " --no-kill-switch"
            } else {
                ""
            };
            run.binary = format!("{} connect{flag}", h.display());
            Some(ClientKind::OxiVpn {
                helper: h,
                no_kill_switch,
            })
        }
        Ok(h) => {
            run.binary = h.display().to_string();
            run.notices.push(format!(
                "{} has no working `connect` subcommand; not measured",
                h.display()
            ));
            None
        }
        Err(e) => {
            run.binary = "(not built)".into();
            run.notices.push(format!(
                "oxivpn-helper could not be built ({e:#}); not measured"
            ));
            None
        }
    };
    for n in &run.notices {
        note(n);
    }
    Side { kind, run, tag }
}

/// How much of everything to do.
struct Plan {
    smoke: bool,
    warmup: bool,
    runs: usize,
    connects: usize,
    seconds: u32,
    pings: u32,
    perf: bool,
    ping_loop_probe: bool,
}

impl Plan {
    fn new(args: &BenchArgs) -> Self {
        if args.smoke {
            Self {
                smoke: true,
                warmup: false,
                runs: 1,
                connects: 1,
                seconds: 1,
                pings: RTT_PINGS_SMOKE,
                perf: false,
                ping_loop_probe: args.ping_loop_probe,
            }
        } else {
            Self {
                smoke: false,
                warmup: true,
                runs: args.runs.max(1),
                connects: args.connects.max(1),
                seconds: args.seconds.max(1),
                pings: RTT_PINGS_FULL,
                perf: args.perf,
                ping_loop_probe: args.ping_loop_probe,
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "direct topology, openvpn 2.6 server (UDP and TCP, AES-256-GCM, tls-crypt); \
             {} measured round(s) of iperf3 {} s up + down{}; {} connect(s) per client and transport{}; \
             connect timed by {}; RTT = avg of {} pings; clients interleaved",
            self.runs,
            self.seconds,
            if self.warmup { " after a discarded warm-up round" } else { "" },
            self.connects,
            if self.warmup { " after a discarded warm-up connect" } else { "" },
            if self.ping_loop_probe { "a shell loop of ping (--ping-loop-probe)" } else { "a raw ICMP socket probe" },
            self.pings,
        )
    }
}

struct Bench {
    lab: Lab,
    plan: Plan,
    ticks: f64,
    interrupted: Arc<AtomicBool>,
    servers: u16,
}

/// A server of one transport with the matching client profile.
struct Server {
    proc: Proc,
    profile: PathBuf,
    transport: Transport,
}

impl Bench {
    fn check_interrupted(&self) -> anyhow::Result<()> {
        if self.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Starts an openvpn 2.6 server of `variant` in the server namespace (owned
    /// here, so it can be stopped before the next one takes the tunnel subnet).
    fn start_server(&mut self, variant: ServerVariant) -> anyhow::Result<Server> {
        let n = self.servers;
        self.servers += 1;
        let port = 1194 + n;
        let transport = variant.transport;
        let dir = self.lab.dir().join(format!("bench-server{n}"));
        std::fs::create_dir_all(&dir)?;
        let p = pki(KeyAlg::EcP256)?;
        let k = keys()?;
        for (f, t) in [
            ("ca.crt", &p.ca_cert),
            ("server.crt", &p.server_cert),
            ("server.key", &p.server_key),
            ("ta.key", &k.ta_key),
            ("v2-server.key", &k.v2_server),
        ] {
            std::fs::write(dir.join(f), t).with_context(|| format!("writing server {f}"))?;
        }
        let config = dir.join("server.conf");
        std::fs::write(&config, variant.config_text(port))?;
        let mut cmd = self.lab.ns(Role::Srv)?.cmd("openvpn");
        cmd.current_dir(&dir).arg("--config").arg(&config);
        let name = format!("bench-server{n}");
        let mut proc = Proc::spawn(cmd, &name, &self.lab.dir().join(format!("{name}.log")))?;
        proc.wait_for_log("Initialization Sequence Completed", Duration::from_secs(15))
            .with_context(|| format!("starting the openvpn server ({transport:?})"))?;
        let text = variant.client_text(addr::SERVER, port, &ClientVariant::default())?;
        let profile = self.lab.dir().join(format!("bench-{n}.ovpn"));
        std::fs::write(&profile, text)?;
        Ok(Server {
            proc,
            profile,
            transport,
        })
    }

    /// Starts `side`'s client with `profile` in the client namespace and measures the
    /// time from process start to the first ping reply from the server's tunnel
    /// address. Returns the running client.
    fn connect(
        &self,
        side: &Side,
        kind: &ClientKind,
        profile: &Path,
        name: &str,
    ) -> anyhow::Result<(Proc, Duration)> {
        let dir = self.lab.dir();
        let cli = self.lab.ns(Role::Cli)?;
        if cli.ip(&["route", "get", TUNNEL_PEER]).is_ok() {
            bail!("a route to {TUNNEL_PEER} exists before {name} started: a previous client left it behind");
        }
        // This program's own `bench-probe` (see probe.rs for why not a `ping` loop,
        // which stays available for comparisons).
        let probe_cmd = if self.plan.ping_loop_probe {
            let mut c = cli.cmd("sh");
            c.args(["-c", PING_LOOP_PROBE]);
            c
        } else {
            let mut c = cli.cmd(std::env::current_exe().context("the xtask binary's path")?);
            c.args(["bench-probe", TUNNEL_PEER]);
            c
        };
        let mut probe = Proc::spawn(
            probe_cmd,
            &format!("{name}-probe"),
            &dir.join(format!("{name}-probe.log")),
        )?;
        let mut cmd = match kind {
            ClientKind::OpenVpn(bin) => {
                let mut c = cli.cmd(bin);
                c.arg("--config").arg(profile).arg("--disable-dco");
                c
            }
            ClientKind::OxiVpn {
                helper,
                no_kill_switch,
            } => {
                let mut c = cli.cmd(helper);
                if *no_kill_switch {
                    c.arg("connect").arg("--no-kill-switch");
                } else {
                    c.arg("connect");
                }
                c.arg("--config")
                    .arg(profile)
                    .arg("--journal")
                    .arg(dir.join(format!("{}.journal.json", side.tag)))
                    .arg("--dhcp-lease-dir")
                    .arg(dir)
                    .env("NO_COLOR", "1");
                c
            }
        };
        cmd.env_remove("RUST_LOG");
        let t0 = SystemTime::now();
        let mut client = Proc::spawn(cmd, name, &dir.join(format!("{name}.log")))?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            if probe.try_status().is_some() {
                break;
            }
            if let Some(st) = client.try_status() {
                bail!(
                    "{name} exited ({st}) before the tunnel answered; last log lines:\n{}",
                    client.log_tail(25)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name}: no ping reply from {TUNNEL_PEER} through the tunnel within {CONNECT_TIMEOUT:?}; last log lines:\n{}",
                    client.log_tail(25)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let elapsed = first_reply_after(&probe.log(), t0).with_context(|| {
            format!(
                "{name}: the probe ended without a timed reply; probe output:\n{}",
                probe.log_tail(10)
            )
        })?;
        let comm = measure::comm(client.pid())?;
        if comm != kind.comm() {
            bail!(
                "pid {} is `{comm}`, not the client `{}`: the bench would measure the wrong process",
                client.pid(),
                kind.comm()
            );
        }
        client
            .wait_for_log("Initialization Sequence Completed", Duration::from_secs(10))
            .with_context(|| format!("{name} answered pings but never logged it was ready"))?;
        Ok((client, elapsed))
    }

    /// Stops a client and waits (bounded) until its tunnel route is gone.
    fn disconnect(&self, mut client: Proc) -> anyhow::Result<()> {
        let name = client.name().to_owned();
        client.stop();
        let cli = self.lab.ns(Role::Cli)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while cli.ip(&["route", "get", TUNNEL_PEER]).is_ok() {
            if Instant::now() >= deadline {
                bail!("{name} left its route to {TUNNEL_PEER} behind after it stopped");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// One iperf3 transfer through the tunnel with the client's CPU time around it;
    /// returns (Mbit/s, bytes, CPU seconds).
    fn transfer(
        &self,
        pid: u32,
        dir: Direction,
        name: &str,
        perf: Option<&Path>,
    ) -> anyhow::Result<(f64, f64, f64)> {
        let mut attempt = 1;
        loop {
            match self.transfer_once(pid, dir, name, perf) {
                Err(e) if attempt < 3 && format!("{e:#}").contains("server is busy") => {
                    say(&format!("  {name}: iperf3 server busy, retrying"));
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                r => return r,
            }
        }
    }

    fn transfer_once(
        &self,
        pid: u32,
        dir: Direction,
        name: &str,
        perf: Option<&Path>,
    ) -> anyhow::Result<(f64, f64, f64)> {
        let cli = self.lab.ns(Role::Cli)?;
        let mut cmd = cli.cmd("iperf3");
        cmd.args(["-c", TUNNEL_PEER, "-J", "--connect-timeout", "3000", "-t"])
            .arg(self.plan.seconds.to_string());
        match dir {
            Direction::Up => {}
            Direction::Down => {
                cmd.arg("-R");
            }
            Direction::DownCompressible => {
                // The iperf3 server then sends a repeating pattern (iperf3 passes
                // the flag to it), which lz4 shrinks, instead of random bytes.
                cmd.args(["-R", "--repeating-payload"]);
            }
        }
        let recorder = match perf {
            Some(file) => Some(self.perf_record(pid, file)?),
            None => None,
        };
        self.wait_iperf_server_idle()?;
        let cpu0 = measure::cpu_seconds(pid, self.ticks)?;
        let log = self.lab.dir().join(format!("{name}.json"));
        let mut p = Proc::spawn(cmd, name, &log)?;
        let status = p.wait_exit(Duration::from_secs(u64::from(self.plan.seconds) + 20))?;
        let cpu1 = measure::cpu_seconds(pid, self.ticks)?;
        if let Some(mut r) = recorder {
            r.wait_exit(Duration::from_secs(20))?;
            say(&format!(
                "  perf profile written: {}",
                r.log_tail(2).replace('\n', " ")
            ));
        }
        let out = p.log();
        let t = measure::parse_iperf_json(&out).with_context(|| {
            // The lab directory goes away with the lab: keep the evidence.
            let kept = std::env::temp_dir().join(format!("oxivpn-bench-{name}.json"));
            let _ = std::fs::write(&kept, &out);
            format!("{name} ({status}), output kept in {}", kept.display())
        })?;
        Ok((t.bits_per_second / 1e6, t.bytes, cpu1 - cpu0))
    }

    /// Waits (bounded) until the iperf3 server has no test connection left: it serves
    /// one test at a time and answers "the server is busy" while it still tears the
    /// last one down.
    fn wait_iperf_server_idle(&self) -> anyhow::Result<()> {
        let srv = self.lab.ns(Role::Srv)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = oxivpn_e2e::run(srv.cmd("ss").args([
                "-Htn",
                "state",
                "established",
                "( sport = :5201 )",
            ]))?;
            if out.trim().is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the iperf3 server still has a test connection after 10 s:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `perf record` of `pid` (call graphs) for the length of one transfer.
    fn perf_record(&self, pid: u32, file: &Path) -> anyhow::Result<Proc> {
        std::fs::create_dir_all(bench_dir())?;
        let mut cmd = Command::new("perf");
        cmd.args(["record", "-F", "499", "-g", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(file)
            .args(["--", "sleep"])
            .arg(self.plan.seconds.to_string());
        Proc::spawn(cmd, "perf", &self.lab.dir().join("perf.log"))
    }

    fn rtt_ms(&self) -> anyhow::Result<f64> {
        let out = self
            .lab
            .ns(Role::Cli)?
            .cmd("ping")
            .args(["-n", "-q", "-W", "1", "-i", "0.05", "-c"])
            .arg(self.plan.pings.to_string())
            .arg(TUNNEL_PEER)
            .output()
            .context("running ping")?;
        let text = String::from_utf8_lossy(&out.stdout);
        measure::parse_ping_avg_ms(&text)
            .with_context(|| format!("ping through the tunnel printed no RTT: {}", text.trim()))
    }

    /// One round for one client: connect, RTT, iperf up and down with CPU, peak RSS.
    fn round(
        &self,
        side: &mut Side,
        profile: &Path,
        round: usize,
        record: bool,
    ) -> anyhow::Result<()> {
        let Some(kind) = side.kind.clone() else {
            return Ok(());
        };
        let name = format!("{}-round{round}", side.tag);
        let (client, _) = self.connect(side, &kind, profile, &name)?;
        let pid = client.pid();
        let result = (|| -> anyhow::Result<()> {
            let rtt = self.rtt_ms()?;
            let profiling =
                self.plan.perf && round == 1 && matches!(kind, ClientKind::OxiVpn { .. });
            let perf_file = |dir: &str| bench_dir().join(format!("perf-{dir}.data"));
            let (up_file, down_file) = (perf_file("up"), perf_file("down"));
            let (up, up_bytes, up_cpu) = self.transfer(
                pid,
                Direction::Up,
                &format!("{name}-up"),
                profiling.then_some(&*up_file),
            )?;
            let (down, down_bytes, down_cpu) = self.transfer(
                pid,
                Direction::Down,
                &format!("{name}-down"),
                profiling.then_some(&*down_file),
            )?;
            let rss = measure::peak_rss_kib(pid)? as f64 / 1024.0;
            let cpu_per_gb = (up_cpu + down_cpu) / ((up_bytes + down_bytes) / 1e9);
            say(&format!(
                "  {:<16} round {round}{}: up {up:.0} Mbit/s, down {down:.0} Mbit/s, {cpu_per_gb:.2} CPU-s/GB (up {:.2}, down {:.2}), peak RSS {rss:.1} MiB ({}), RTT {rtt:.3} ms",
                side.run.label,
                if record { "" } else { " (warm-up, discarded)" },
                up_cpu / (up_bytes / 1e9),
                down_cpu / (down_bytes / 1e9),
                measure::rss_breakdown(pid),
            ));
            if record {
                side.run.rtt_ms.push(rtt);
                side.run.up_mbit_s.push(up);
                side.run.down_mbit_s.push(down);
                side.run.cpu_s_per_gb.push(cpu_per_gb);
                side.run.rss_mib.push(rss);
            }
            Ok(())
        })();
        self.disconnect(client)?;
        result
    }

    /// UDP server + iperf3 server; interleaved rounds (order rotating), the first
    /// one discarded as warm-up.
    fn throughput_phase(&mut self, sides: &mut [&mut Side]) -> anyhow::Result<()> {
        let server = self.start_server(ServerVariant::default())?;
        let mut iperf = self.lab.spawn(
            Role::Srv,
            &["iperf3", "-s", "-B", TUNNEL_PEER, "--forceflush"],
            "bench-iperf3-server",
        )?;
        iperf.wait_for_log("Server listening", Duration::from_secs(10))?;
        say(&format!(
            "throughput: UDP server, iperf3 server on {TUNNEL_PEER} (server namespace)"
        ));
        let first = usize::from(!self.plan.warmup);
        for round in first..=self.plan.runs {
            let record = round > 0;
            let n = sides.len();
            for k in 0..n {
                let side = &mut *sides[(k + round) % n];
                self.check_interrupted()?;
                if let Err(e) = self.round(side, &server.profile, round, record) {
                    self.failed(side, "throughput round", e)?;
                }
            }
        }
        drop(iperf);
        self.stop_server(server);
        Ok(())
    }

    /// Connect-time samples for `transport`: a discarded warm-up connect per client,
    /// then `connects` each, alternating which client goes first.
    fn connect_phase(
        &mut self,
        transport: Transport,
        sides: &mut [&mut Side],
    ) -> anyhow::Result<()> {
        let server = self.start_server(ServerVariant {
            transport,
            ..ServerVariant::default()
        })?;
        say(&format!("connect time: {transport:?} server"));
        let first = usize::from(!self.plan.warmup);
        for i in first..=self.plan.connects {
            let n = sides.len();
            for k in 0..n {
                let side = &mut *sides[(k + i) % n];
                self.check_interrupted()?;
                let Some(kind) = side.kind.clone() else {
                    continue;
                };
                let name = format!("{}-{transport:?}-connect{i}", side.tag).to_lowercase();
                let result = self
                    .connect(side, &kind, &server.profile, &name)
                    .and_then(|(client, t)| self.disconnect(client).map(|()| t));
                match result {
                    Ok(t) => {
                        let ms = t.as_secs_f64() * 1e3;
                        if i > 0 {
                            match server.transport {
                                Transport::Udp => side.run.connect_udp_ms.push(ms),
                                Transport::Tcp => side.run.connect_tcp_ms.push(ms),
                                _ => side.run.connect_tcp_nodelay_ms.push(ms),
                            }
                        }
                        if self.plan.smoke || i == 0 || i == self.plan.connects {
                            say(&format!(
                                "  {:<16} {transport:?} connect {i}: {ms:.1} ms{}",
                                side.run.label,
                                if i == 0 { " (warm-up, discarded)" } else { "" }
                            ));
                        }
                    }
                    Err(e) => self.failed(side, &format!("{transport:?} connect"), e)?,
                }
            }
        }
        self.stop_server(server);
        Ok(())
    }

    /// Records a failed measurement. OxiVPN's failures become notices (its column shows
    /// what it managed); the reference failing means the harness is broken.
    fn failed(&self, side: &mut Side, what: &str, e: anyhow::Error) -> anyhow::Result<()> {
        // The 2.6 reference failing means the harness is broken; OxiVPN's and the 2.7
        // build's failures are reported in their columns.
        if side.tag == "ref" || side.tag == "refa" {
            return Err(e.context(format!("{} {what} failed", side.run.label)));
        }
        let msg = format!("{what} failed: {e:#}");
        note(&format!("{}: {msg}", side.run.label));
        if side.run.notices.len() < 5 {
            side.run.notices.push(first_lines(&msg, 6));
        }
        // One failure to connect is enough to stop trying this side in a smoke run.
        if self.plan.smoke {
            side.kind = None;
        }
        Ok(())
    }

    fn stop_server(&self, mut server: Server) {
        server.proc.kill();
    }
}
