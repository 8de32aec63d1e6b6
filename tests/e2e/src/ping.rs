//! `ping` inside a namespace, with its summary parsed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::netns::Netns;

/// Result of one `ping` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
}

impl PingStats {
    pub fn lost(&self) -> u32 {
        self.transmitted.saturating_sub(self.received)
    }
}

/// Pings `dest` from `ns`: `count` requests `interval` apart, each waiting at most
/// 1 s. A run with no reply is not an error; one where ping cannot run is.
pub(crate) fn ping(
    ns: &Netns,
    dest: &str,
    count: u32,
    interval: Duration,
) -> anyhow::Result<PingStats> {
    let out = ns
        .cmd("ping")
        .args(["-n", "-q", "-W", "1", "-c", &count.to_string(), "-i"])
        .arg(format!("{:.3}", interval.as_secs_f64()))
        .arg(dest)
        .output()
        .context("running ping")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_summary(&text).with_context(|| {
        format!(
            "ping {dest} printed no summary: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

pub(crate) fn parse_summary(text: &str) -> Option<PingStats> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse::<u32>().ok());
    Some(PingStats {
        transmitted: nums.next()?,
        received: nums.next()?,
    })
}

/// Time of the earliest echo reply in `ping -D` output that came at or after `since`
/// (ping prints `[UNIX-SECONDS.MICROS] 64 bytes from ...` per reply).
pub fn first_reply_after(ping_output: &str, since: SystemTime) -> Option<Duration> {
    let since = since.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    ping_output
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            let ts = l.strip_prefix('[')?.split(']').next()?;
            ts.parse::<f64>().ok()
        })
        .filter(|&t| t >= since)
        // Concurrent probes may print out of order: the earliest reply counts.
        .min_by(f64::total_cmp)
        .map(|t| Duration::from_secs_f64(t - since))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ping_summaries() {
        let ok = "PING 10.0.0.3 (10.0.0.3) 56(84) bytes of data.\n\n--- 10.0.0.3 ping statistics ---\n5 packets transmitted, 4 received, 20% packet loss, time 803ms\n";
        assert_eq!(
            parse_summary(ok),
            Some(PingStats {
                transmitted: 5,
                received: 4
            })
        );
        let err = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2ms";
        assert_eq!(parse_summary(err).map(|s| s.lost()), Some(3));
        assert_eq!(parse_summary("ping: connect: Network is unreachable"), None);
    }

    #[test]
    fn finds_first_reply_time() {
        let since = UNIX_EPOCH + Duration::from_secs(1000);
        let out = "[999.5] 64 bytes from 10.0.0.3: icmp_seq=1 ttl=63 time=0.4 ms\n\
                   [1000.030000] From 192.168.1.1 icmp_seq=2 Destination Net Unreachable\n\
                   [1000.045000] 64 bytes from 10.0.0.3: icmp_seq=3 ttl=63 time=0.4 ms\n";
        let d = first_reply_after(out, since).unwrap();
        assert!((d.as_secs_f64() - 0.045).abs() < 1e-6, "{d:?}");
        assert_eq!(first_reply_after("no replies", since), None);
    }
}
