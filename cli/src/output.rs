//! Everything `oxivpnctl` prints: human lines, or one JSON value per result with
//! `--json`. Errors go to stderr (human) or stdout as `{"error": ...}` (json).
#![allow(clippy::print_stdout)]

use std::time::{Duration, UNIX_EPOCH};

use ipc::{Event, EventBody, SessionInfo, SessionRoutes, Stage};
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
    if s.stats.since_unix_ms > 0 {
        line.push_str(&format!("\n      {}", drops_line(&s.stats.drops)));
        line.push_str(&format!("; {}", mss_line(s.stats.mss_clamped)));
    }
    if let Some(c) = &s.connection {
        let transport = match c.transport {
            ipc::Transport::Udp => "udp",
            ipc::Transport::Tcp => "tcp",
        };
        line.push_str(&format!(
            "\n      server {transport} {}:{} ({}), cipher {}, {}{}",
            c.server_addr,
            c.server_port,
            c.remote,
            c.cipher.as_ref().map_or("?", |x| x.as_str()),
            c.tls.as_ref().map_or("TLS ?", |x| x.as_str()),
            if c.kill_switch {
                ", kill switch on"
            } else {
                ""
            }
        ));
        if let Some(f) = &c.data_format {
            line.push_str(&format!("\n      data channel {f}"));
        }
    }
    line
}

/// "MSS clamped in 2 packets (mssfix)": TCP SYN/SYN-ACKs whose MSS the tunnel lowered.
pub fn mss_line(n: u64) -> String {
    let packets = if n == 1 { "packet" } else { "packets" };
    format!("MSS clamped in {n} {packets} (mssfix)")
}

/// "dropped 0" or "dropped 5: compression 3, replayed 2" (only the non-zero reasons).
pub fn drops_line(d: &ipc::DropCounts) -> String {
    let parts: Vec<String> = d
        .labelled()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    if parts.is_empty() {
        "dropped 0 packets".to_owned()
    } else {
        let packets = if d.total() == 1 { "packet" } else { "packets" };
        format!("dropped {} {packets}: {}", d.total(), parts.join(", "))
    }
}

/// `oxivpnctl routes`: one route per line, aligned.
pub fn routes_table(r: &SessionRoutes) -> String {
    if r.routes.is_empty() {
        return format!("{}: no routes (not connected yet?)", r.session);
    }
    let mut s = format!(
        "{:<22}{:<17}{:<10}{:<20}{}\n",
        "DESTINATION", "GATEWAY", "DEVICE", "KIND", "WHY"
    );
    for e in &r.routes {
        s.push_str(&format!(
            "{:<22}{:<17}{:<10}{:<20}{}\n",
            e.destination.as_str(),
            e.gateway.map_or_else(|| "-".to_owned(), |g| g.to_string()),
            e.device.as_ref().map_or("-", |d| d.as_str()),
            e.kind.name(),
            e.reason
        ));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

pub fn event_line(e: &Event) -> Option<String> {
    let body = match &e.body {
        EventBody::Stage(s) => format!("[{}] {}", s.name(), stage(s)),
        EventBody::Log(l) => format!("{}: {}", level(l.level), l.message),
        EventBody::Challenge(c) => format!("challenge: {}", c.prompt),
        EventBody::SignIn(s) => format!("sign in with your browser at {}", s.host),
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

    #[test]
    fn drops_line_names_each_nonzero_reason() {
        let mut d = ipc::DropCounts::default();
        assert_eq!(drops_line(&d), "dropped 0 packets");
        d.compression = 3;
        d.replayed = 2;
        assert_eq!(
            drops_line(&d),
            "dropped 5 packets: replayed 2, compression 3"
        );
    }

    #[test]
    fn session_line_shows_drops_mss_clamps_and_the_data_format() {
        let mut stats = ipc::Stats {
            since_unix_ms: 1,
            mss_clamped: 2,
            ..ipc::Stats::default()
        };
        stats.drops.epoch = 1;
        let s = SessionInfo {
            id: ipc::SessionId(1),
            owner_uid: 0,
            profile_name: Some(ipc::ProfileName::try_from("lab").unwrap()),
            stage: ipc::Stage::Starting,
            started_unix_ms: 1,
            stats,
            connection: Some(Box::new(ipc::ConnectionInfo {
                server_addr: "198.18.0.1".parse().unwrap(),
                server_port: 1194,
                transport: ipc::Transport::Udp,
                remote: ipc::ShortText::sanitized("198.18.0.1"),
                cipher: Some(ipc::ShortText::sanitized("AES-256-GCM")),
                tls: None,
                key_derivation: None,
                kill_switch: false,
                data_format: Some(ipc::ShortText::sanitized("AES-256-GCM, epoch keys (2.7)")),
                interface: None,
            })),
        };
        let line = session_line(&s, 0);
        assert!(
            line.contains(
                "dropped 1 packet: epoch out of window 1; MSS clamped in 2 packets (mssfix)"
            ),
            "{line}"
        );
        assert!(
            line.contains("\n      data channel AES-256-GCM, epoch keys (2.7)"),
            "{line}"
        );
        assert_eq!(mss_line(1), "MSS clamped in 1 packet (mssfix)");
    }

    #[test]
    fn routes_table_lists_every_entry() {
        let entry = |d: &str, kind| ipc::RouteEntry {
            destination: ipc::ShortText::sanitized(d),
            gateway: Some("192.168.1.1".parse().unwrap()),
            device: Some(ipc::ShortText::sanitized("eth0")),
            kind,
            reason: ipc::ShortText::sanitized("because"),
        };
        let r = SessionRoutes {
            session: ipc::SessionId(3),
            routes: vec![
                entry("198.18.0.1/32", ipc::RouteKind::ServerBypass),
                entry("192.168.2.2/32", ipc::RouteKind::DhcpServerBypass),
            ],
            notes: vec![],
        };
        let t = routes_table(&r);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(
            t.contains("198.18.0.1/32") && t.contains("server bypass"),
            "{t}"
        );
        assert!(t.contains("DHCP-server bypass"), "{t}");
        let empty = SessionRoutes {
            routes: vec![],
            ..r
        };
        assert!(routes_table(&empty).contains("no routes"));
    }
}
