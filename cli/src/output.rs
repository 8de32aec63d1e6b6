//! Everything `oxivpnctl` prints: human lines, or one JSON value per result with
//! `--json`. Errors go to stderr (human) or stdout as `{"error": ...}` (json).
#![allow(clippy::print_stdout)]

use std::time::{Duration, UNIX_EPOCH};

use ipc::{Event, EventBody, SessionInfo, Stage};
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// A result: `human` unless `--json`, then `value`.
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string(value) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("oxivpnctl: cannot encode output: {e}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end_matches('\n'));
            }
        }
    }

    /// Progress for humans (stderr, so stdout stays clean for scripts).
    pub fn progress(&self, line: &str) {
        if !self.json {
            eprintln!("{line}");
        }
    }

    pub fn error(&self, e: &anyhow::Error) {
        if self.json {
            println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
        } else {
            eprintln!("oxivpnctl: {e:#}");
        }
    }
}

pub fn clock(unix_ms: u64) -> String {
    let secs = (UNIX_EPOCH + Duration::from_millis(unix_ms))
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // UTC wall clock; enough for a log view without pulling in a time zone crate.
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, (day % 3600) / 60, day % 60)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn stage(s: &Stage) -> String {
    match s {
        Stage::Connecting { remote } => format!("connecting to {remote}"),
        Stage::Connected {
            tunnel_ipv4,
            tunnel_ipv6,
            interface,
        } => {
            let mut parts = vec!["connected".to_owned()];
            if let Some(i) = interface {
                parts.push(format!("on {i}"));
            }
            for ip in [tunnel_ipv4, tunnel_ipv6].into_iter().flatten() {
                parts.push(format!("as {ip}"));
            }
            parts.join(" ")
        }
        Stage::Reconnecting {
            reason,
            attempt,
            delay_ms,
        } => format!("reconnecting (attempt {attempt}, in {delay_ms} ms): {reason}"),
        Stage::Disconnected { reason } => format!("disconnected: {reason}"),
        other => other.name().to_owned(),
    }
}

pub fn session_line(s: &SessionInfo, my_uid: u32) -> String {
    let name = s
        .profile_name
        .as_ref()
        .map_or_else(|| "(another user's)".to_owned(), |n| n.to_string());
    let mut line = format!("{:<6}{:<24}{}", s.id.to_string(), name, stage(&s.stage));
    if s.stats.since_unix_ms > 0 {
        line.push_str(&format!(
            "  in {} / out {}",
            bytes(s.stats.bytes_in),
            bytes(s.stats.bytes_out)
        ));
    }
    if s.owner_uid != my_uid {
        line.push_str(&format!("  (uid {})", s.owner_uid));
    }
    line
}

pub fn event_line(e: &Event) -> Option<String> {
    let body = match &e.body {
        EventBody::Stage(s) => format!("[{}] {}", s.name(), stage(s)),
        EventBody::Log(l) => format!("{}: {}", level(l.level), l.message),
        EventBody::Challenge(c) => format!("challenge: {}", c.prompt),
        EventBody::Error(err) => format!("error: {err}"),
        EventBody::Lagged { dropped } => format!("({dropped} events missed: reading too slowly)"),
        EventBody::Stats(_) => return None,
    };
    Some(format!("{} {} {body}", clock(e.unix_ms), e.session))
}

fn level(l: ipc::LogLevel) -> &'static str {
    match l {
        ipc::LogLevel::Error => "error",
        ipc::LogLevel::Warn => "warn",
        ipc::LogLevel::Info => "info",
        ipc::LogLevel::Debug => "debug",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(bytes(2_000_000), "2.0 MB");
        assert_eq!(clock(3_723_000), "01:02:03");
    }
}
