//! Readings taken during a bench run: a client's CPU time and peak memory from
//! `/proc`, iperf3's and ping's summaries, the data-channel ratio table.

use anyhow::{bail, Context};

/// CPU time (user + system, all threads) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32, clock_ticks: f64) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&text, clock_ticks).with_context(|| format!("{path}: no utime/stime fields"))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in seconds. The
/// command name (field 2) may hold spaces and parentheses, so fields are counted
/// after its last `)`.
fn parse_stat_cpu(stat: &str, clock_ticks: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks)
}

/// Peak resident set size (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_hwm(&text).with_context(|| format!("{path}: no VmHWM line"))
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status_kib(status, "VmHWM:")
}

/// A `Name:   123 kB` line of `/proc/PID/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where the resident memory is right now (`RssAnon`, `RssFile`, threads), for the
/// round's log line: heap vs mapped binary.
pub fn rss_breakdown(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |n| status_kib(&text, n).map_or("?".into(), |v| format!("{:.1}", v as f64 / 1024.0));
    format!(
        "anon {} MiB, file {} MiB, {} threads",
        kib("RssAnon:"),
        kib("RssFile:"),
        status_kib(&text, "Threads:").map_or("?".into(), |v| v.to_string())
    )
}

/// The short command name (`/proc/PID/comm`), to check that a pid is the client
/// itself and not a wrapper around it.
pub fn comm(pid: u32) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/comm");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_owned())
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// What one iperf3 run moved, as the receiving side counted it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transfer {
    pub bytes: f64,
    pub bits_per_second: f64,
}

/// Reads `end.sum_received` from iperf3's `--json` output. A small scanner instead of
/// a JSON library: the shape of that block has been stable since iperf 3.0.
pub fn parse_iperf_json(json: &str) -> anyhow::Result<Transfer> {
    if let Some(err) = field_after(json, "\"error\"", 0).filter(|e| !e.is_empty()) {
        bail!("iperf3 reported an error: {err}");
    }
    // Only the final summary has `sum_received` (intervals carry `sum`).
    let sum = json
        .rfind("\"sum_received\"")
        .context("iperf3 output has no end.sum_received")?;
    let num = |key: &str| -> anyhow::Result<f64> {
        field_after(json, key, sum)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("iperf3 end.sum_received has no numeric {key}"))
    };
    let t = Transfer {
        bytes: num("\"bytes\"")?,
        bits_per_second: num("\"bits_per_second\"")?,
    };
    if t.bytes <= 0.0 {
        bail!("iperf3 moved no data");
    }
    Ok(t)
}

/// The raw value after `"key":` at or after byte `from` (string quotes stripped).
fn field_after(json: &str, key: &str, from: usize) -> Option<String> {
    let at = from + json.get(from..)?.find(key)? + key.len();
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return Some(s[..s.find('"')?].to_owned());
    }
    let end = rest
        .find(|c: char| c == ',' || c == '}' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// The average RTT (ms) of ping's `rtt min/avg/max/mdev = a/b/c/d ms` summary.
pub fn parse_ping_avg_ms(out: &str) -> Option<f64> {
    let line = out
        .lines()
        .find(|l| l.starts_with("rtt ") || l.starts_with("round-trip"))?;
    let values = line.split('=').nth(1)?.trim();
    values.split('/').nth(1)?.trim().parse().ok()
}

/// `ours / raw` (as a fraction) for one suite and size from the ratio table that
/// `cargo bench -p ovpn-core --bench data_channel` prints, e.g.
/// `AES-256-GCM  1400  1234.5  1500.0  82.3%`.
pub fn parse_data_channel_ratio(out: &str, suite: &str, size: usize) -> Option<DataChannelRow> {
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() != 5 || w[0] != suite || w[1].parse::<usize>().ok()? != size {
            return None;
        }
        Some(DataChannelRow {
            ours_mb_s: w[2].parse().ok()?,
            raw_mb_s: w[3].parse().ok()?,
            ratio: w[4].strip_suffix('%')?.parse::<f64>().ok()? / 100.0,
        })
    })
}

/// One row of the data-channel ratio table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataChannelRow {
    pub ours_mb_s: f64,
    pub raw_mb_s: f64,
    pub ratio: f64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_counts_fields_after_the_command_name() {
        // comm with a space and a ')' inside, as the kernel prints it.
        let stat =
            "4242 (odd) name) S 1 4242 4242 0 -1 4194560 300 0 0 0 150 50 0 0 20 0 3 0 99 1000 200";
        assert_eq!(parse_stat_cpu(stat, 100.0), Some(2.0));
        assert_eq!(parse_stat_cpu("4242 (short) S 1", 100.0), None);
    }

    #[test]
    fn vm_hwm_in_kib() {
        let status =
            "Name:\topenvpn\nVmPeak:\t   12000 kB\nVmHWM:\t    9612 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(9612));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn iperf_json_end_sum_received() {
        let json = r#"{"start":{"connected":[]},"intervals":[{"sum":{"bytes":1,"bits_per_second":2}}],
            "end":{"streams":[],"sum_sent":{"start":0,"end":10.0,"bytes":625000000,"bits_per_second":500000000.5,"retransmits":3},
            "sum_received":{"start":0,"end":10.0,"bytes":624000000,"bits_per_second":499200000.25}}}"#;
        let t = parse_iperf_json(json).unwrap();
        assert_eq!(t.bytes, 624000000.0);
        assert_eq!(t.bits_per_second, 499200000.25);
        let failed = r#"{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}"#;
        let e = parse_iperf_json(failed).unwrap_err().to_string();
        assert!(e.contains("Connection refused"), "{e}");
        assert!(parse_iperf_json("{}").is_err());
    }

    #[test]
    fn ping_average() {
        let out = "--- 10.8.0.1 ping statistics ---\n20 packets transmitted, 20 received, 0% packet loss, time 969ms\nrtt min/avg/max/mdev = 0.301/0.392/0.520/0.051 ms\n";
        assert_eq!(parse_ping_avg_ms(out), Some(0.392));
        assert_eq!(parse_ping_avg_ms("3 packets transmitted, 0 received"), None);
    }

    #[test]
    fn data_channel_table_row() {
        let out = "encrypt+decrypt throughput, ours vs raw primitive (same run):\n\
                   suite                       bytes    ours MB/s     raw MB/s   ratio\n\
                   AES-256-GCM                   64        300.0        500.0   60.0%\n\
                   AES-256-GCM                 1400       1600.0       1900.0   84.2%\n\
                   CHACHA20-POLY1305           1400        900.0       1000.0   90.0%\n";
        let row = parse_data_channel_ratio(out, "AES-256-GCM", 1400).unwrap();
        assert_eq!(row.ours_mb_s, 1600.0);
        assert!((row.ratio - 0.842).abs() < 1e-9);
        assert_eq!(parse_data_channel_ratio(out, "AES-256-GCM", 512), None);
    }
}
