//! Bench results: per-client samples, medians, ratios against the reference and the
//! project's targets, rendered as a markdown table and as JSON.

use std::fmt::Write as _;

use super::measure::DataChannelRow;

/// Every sample taken of one client in one bench run.
#[derive(Debug, Clone, Default)]
pub struct ClientRun {
    /// Column title, e.g. `OxiVPN` or `openvpn 2.6`.
    pub label: String,
    /// The binary that ran (path or name and version).
    pub binary: String,
    /// Why some or all of this client's figures are missing.
    pub notices: Vec<String>,
    pub connect_udp_ms: Vec<f64>,
    pub connect_tcp_ms: Vec<f64>,
    pub connect_tcp_nodelay_ms: Vec<f64>,
    pub up_mbit_s: Vec<f64>,
    pub down_mbit_s: Vec<f64>,
    pub cpu_s_per_gb: Vec<f64>,
    /// The compressed session: server to client, compressible payload, the
    /// server compressing with lz4-v2 (the client decompresses).
    pub down_compressed_mbit_s: Vec<f64>,
    pub cpu_s_per_gb_compressed: Vec<f64>,
    pub rss_mib: Vec<f64>,
    pub rtt_ms: Vec<f64>,
}

/// Whether a lower or a higher ratio is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    AtMost,
    AtLeast,
}

/// One row of the table: how to find its samples, and the project's target ratio.
struct Metric {
    key: &'static str,
    title: &'static str,
    samples: fn(&ClientRun) -> &Vec<f64>,
    target: Option<(Goal, f64)>,
    decimals: usize,
}

const METRICS: &[Metric] = &[
    Metric {
        key: "connect_udp_ms",
        title: "connect, UDP (ms)",
        samples: |c| &c.connect_udp_ms,
        target: Some((Goal::AtMost, 1.0)),
        decimals: 1,
    },
    Metric {
        key: "connect_tcp_ms",
        title: "connect, TCP, server without tcp-nodelay (ms)",
        samples: |c| &c.connect_tcp_ms,
        target: Some((Goal::AtMost, 0.5)),
        decimals: 1,
    },
    Metric {
        key: "connect_tcp_nodelay_ms",
        title: "connect, TCP, server with tcp-nodelay (ms)",
        samples: |c| &c.connect_tcp_nodelay_ms,
        target: None,
        decimals: 1,
    },
    Metric {
        key: "up_mbit_s",
        title: "iperf3 TCP up, client to server (Mbit/s)",
        samples: |c| &c.up_mbit_s,
        target: Some((Goal::AtLeast, 1.2)),
        decimals: 0,
    },
    Metric {
        key: "down_mbit_s",
        title: "iperf3 TCP down, server to client (Mbit/s)",
        samples: |c| &c.down_mbit_s,
        target: Some((Goal::AtLeast, 1.2)),
        decimals: 0,
    },
    Metric {
        key: "cpu_s_per_gb",
        title: "client CPU per GB moved (CPU-s/GB)",
        samples: |c| &c.cpu_s_per_gb,
        target: Some((Goal::AtMost, 0.33)),
        decimals: 2,
    },
    Metric {
        key: "down_compressed_mbit_s",
        title: "iperf3 TCP down, compressible, server compresses lz4-v2 (Mbit/s)",
        samples: |c| &c.down_compressed_mbit_s,
        target: None,
        decimals: 0,
    },
    Metric {
        key: "cpu_s_per_gb_compressed",
        title: "client CPU per GB moved, compressed down, with decompression (CPU-s/GB)",
        samples: |c| &c.cpu_s_per_gb_compressed,
        target: None,
        decimals: 2,
    },
    Metric {
        key: "rss_mib",
        title: "client peak RSS, VmHWM (MiB)",
        samples: |c| &c.rss_mib,
        target: Some((Goal::AtMost, 1.0)),
        decimals: 1,
    },
    Metric {
        key: "rtt_ms",
        title: "ping RTT through the tunnel (ms)",
        samples: |c| &c.rtt_ms,
        target: None,
        decimals: 3,
    },
];

/// A whole bench run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// UTC, e.g. `2026-11-25T08:30:00Z`.
    pub date: String,
    /// `full`, `smoke`, `self-test` or `smoke self-test`.
    pub mode: String,
    pub machine: String,
    /// Rounds, transfer length, connects: what the medians are over.
    pub settings: String,
    /// The client under test (OxiVPN, or the reference again in self-test mode).
    pub subject: ClientRun,
    pub reference: ClientRun,
    /// A second reference (OpenVPN 2.7), when one was given or found.
    pub reference_2_7: Option<ClientRun>,
    /// A second OxiVPN build (`--compare PATH`, "OxiVPN (before)"): its column's
    /// ratios are the subject over it, so a change reads against the commit before.
    pub compare: Option<ClientRun>,
    /// AES-256-GCM, 1400 B, ours vs the raw AEAD, from the criterion bench.
    pub data_channel: Option<DataChannelRow>,
}

pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

fn ratio(subject: Option<f64>, reference: Option<f64>) -> Option<f64> {
    match (subject, reference) {
        (Some(s), Some(r)) if r > 0.0 => Some(s / r),
        _ => None,
    }
}

fn met(goal: Goal, limit: f64, ratio: f64) -> bool {
    match goal {
        Goal::AtMost => ratio <= limit,
        Goal::AtLeast => ratio >= limit,
    }
}

fn target_text(t: Option<(Goal, f64)>) -> String {
    match t {
        Some((Goal::AtMost, l)) => format!("<= {l:.2}x"),
        Some((Goal::AtLeast, l)) => format!(">= {l:.2}x"),
        None => "-".into(),
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|x| format!("{x:.decimals$}"))
        .unwrap_or_else(|| "n/a".into())
}

impl Report {
    /// The markdown report: a header naming date, machine and settings, the table,
    /// and any notices.
    pub fn markdown(&self) -> String {
        let (s, r) = (&self.subject, &self.reference);
        let mut m = String::new();
        let _ = writeln!(m, "### Bench {} ({})\n", self.date, self.mode);
        let _ = writeln!(m, "- machine: {}", self.machine);
        let _ = writeln!(m, "- {}", self.settings);
        let _ = writeln!(m, "- {}: `{}`", s.label, s.binary);
        let _ = writeln!(m, "- {}: `{}`", r.label, r.binary);
        for x in self.extras() {
            let _ = writeln!(m, "- {}: `{}`", x.label, x.binary);
        }
        m.push('\n');
        let verdict = |target: Option<(Goal, f64)>, q: Option<f64>| match (target, q) {
            (Some((g, l)), Some(q)) if met(g, l, q) => "yes",
            (Some(_), Some(_)) => "**no**",
            _ => "-",
        };
        let ratio_text = |q: Option<f64>| {
            q.map(|q| format!("{q:.2}x"))
                .unwrap_or_else(|| "n/a".into())
        };
        let extras = self.extras();
        let mut head = format!(
            "| metric | {} | {} | ratio | target | met |",
            s.label, r.label
        );
        let mut rule = String::from("|---|---:|---:|---:|---|---|");
        for x in &extras {
            let _ = write!(head, " {} | ratio | met |", x.label);
            rule.push_str("---:|---:|---|");
        }
        let _ = writeln!(m, "{head} samples |");
        let _ = writeln!(m, "{rule}---|");
        for metric in METRICS {
            let (sv, rv) = ((metric.samples)(s), (metric.samples)(r));
            let (sm, rm) = (median(sv), median(rv));
            let q = ratio(sm, rm);
            let _ = write!(
                m,
                "| {} | {} | {} | {} | {} | {} |",
                metric.title,
                fmt_opt(sm, metric.decimals),
                fmt_opt(rm, metric.decimals),
                ratio_text(q),
                target_text(metric.target),
                verdict(metric.target, q),
            );
            let mut counts = vec![sv.len().to_string(), rv.len().to_string()];
            for x in &extras {
                let v2 = (metric.samples)(x);
                let m2 = median(v2);
                let q2 = ratio(sm, m2);
                let _ = write!(
                    m,
                    " {} | {} | {} |",
                    fmt_opt(m2, metric.decimals),
                    ratio_text(q2),
                    verdict(metric.target, q2),
                );
                counts.push(v2.len().to_string());
            }
            let _ = writeln!(m, " {} |", counts.join("+"));
        }
        if let Some(d) = &self.data_channel {
            let verdict = if d.ratio >= 0.8 { "yes" } else { "**no**" };
            let _ = writeln!(
                m,
                "| data channel AES-256-GCM 1400 B encrypt+decrypt vs raw AEAD (MB/s) | {:.0} | {:.0} (raw) | {:.2}x | >= 0.80x | {verdict} | criterion |",
                d.ours_mb_s, d.raw_mb_s, d.ratio
            );
        }
        let _ = writeln!(
            m,
            "\nMedians over the samples; ratio = {} / {} of the medians. CPU per GB = \
             (utime+stime of the client process) / bytes iperf3 moved, up and down together.",
            s.label, r.label
        );
        for c in [s, r].into_iter().chain(self.extras()) {
            let who = &c.label;
            for n in &c.notices {
                let _ = writeln!(m, "\n> NOTICE ({who}): {n}");
            }
        }
        m
    }

    /// The same figures as JSON (every sample, medians and ratios).
    pub fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"date\": {},", jstr(&self.date));
        let _ = writeln!(j, "  \"mode\": {},", jstr(&self.mode));
        let _ = writeln!(j, "  \"machine\": {},", jstr(&self.machine));
        let _ = writeln!(j, "  \"settings\": {},", jstr(&self.settings));
        let clients = [("subject", &self.subject), ("reference", &self.reference)]
            .into_iter()
            .chain(self.reference_2_7.as_ref().map(|c| ("reference_2_7", c)))
            .chain(self.compare.as_ref().map(|c| ("compare", c)));
        for (key, c) in clients {
            let _ = writeln!(j, "  \"{key}\": {{");
            let _ = writeln!(j, "    \"label\": {},", jstr(&c.label));
            let _ = writeln!(j, "    \"binary\": {},", jstr(&c.binary));
            let notices: Vec<String> = c.notices.iter().map(|n| jstr(n)).collect();
            let _ = writeln!(j, "    \"notices\": [{}],", notices.join(", "));
            let rows: Vec<String> = METRICS
                .iter()
                .map(|metric| {
                    let v = (metric.samples)(c);
                    format!(
                        "    \"{}\": {{\"median\": {}, \"samples\": [{}]}}",
                        metric.key,
                        jnum(median(v)),
                        v.iter()
                            .map(|x| jnum(Some(*x)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            let _ = writeln!(j, "{}", rows.join(",\n"));
            let _ = writeln!(j, "  }},");
        }
        let _ = writeln!(
            j,
            "  \"ratios\": {{\n{}\n  }},",
            self.ratios_json(&self.reference)
        );
        if let Some(r2) = &self.reference_2_7 {
            let _ = writeln!(j, "  \"ratios_2_7\": {{\n{}\n  }},", self.ratios_json(r2));
        }
        if let Some(c) = &self.compare {
            let _ = writeln!(
                j,
                "  \"ratios_compare\": {{\n{}\n  }},",
                self.ratios_json(c)
            );
        }
        let dc = match &self.data_channel {
            Some(d) => format!(
                "{{\"suite\": \"AES-256-GCM\", \"bytes\": 1400, \"ours_mb_s\": {}, \"raw_mb_s\": {}, \"ratio\": {}, \"target\": {{\"at_least\": 0.8}}}}",
                jnum(Some(d.ours_mb_s)),
                jnum(Some(d.raw_mb_s)),
                jnum(Some(d.ratio))
            ),
            None => "null".into(),
        };
        let _ = writeln!(j, "  \"data_channel\": {dc}");
        j.push_str("}\n");
        j
    }

    /// The columns after the reference: OpenVPN 2.7, then the compared OxiVPN build.
    fn extras(&self) -> Vec<&ClientRun> {
        self.reference_2_7
            .iter()
            .chain(self.compare.as_ref())
            .collect()
    }

    /// Subject / `reference` per metric, with the targets, as JSON members.
    fn ratios_json(&self, reference: &ClientRun) -> String {
        let ratios: Vec<String> = METRICS
            .iter()
            .map(|metric| {
                let q = ratio(
                    median((metric.samples)(&self.subject)),
                    median((metric.samples)(reference)),
                );
                let target = match metric.target {
                    Some((g, l)) => format!(
                        "{{\"{}\": {l}}}",
                        if g == Goal::AtMost {
                            "at_most"
                        } else {
                            "at_least"
                        }
                    ),
                    None => "null".into(),
                };
                format!(
                    "    \"{}\": {{\"ratio\": {}, \"target\": {target}}}",
                    metric.key,
                    jnum(q)
                )
            })
            .collect();
        ratios.join(",\n")
    }
}

fn jnum(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "null".into(),
    }
}

fn jstr(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn client(label: &str, connect: &[f64], up: &[f64], cpu: &[f64]) -> ClientRun {
        ClientRun {
            label: label.into(),
            binary: "bin".into(),
            connect_udp_ms: connect.to_vec(),
            up_mbit_s: up.to_vec(),
            cpu_s_per_gb: cpu.to_vec(),
            ..ClientRun::default()
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn table_has_ratios_and_verdicts() {
        let report = Report {
            date: "2026-11-25T08:00:00Z".into(),
            mode: "full".into(),
            subject: client("OxiVPN", &[20.0, 22.0, 30.0], &[700.0], &[3.0]),
            reference: client("openvpn 2.6", &[25.0, 27.0, 29.0], &[500.0], &[12.0]),
            ..Report::default()
        };
        let md = report.markdown();
        let row = |prefix: &str| {
            md.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap()
                .to_owned()
        };
        let connect = row("| connect, UDP");
        assert!(
            connect.contains("| 22.0 | 27.0 | 0.81x | <= 1.00x | yes | 3+3 |"),
            "{connect}"
        );
        let up = row("| iperf3 TCP up");
        assert!(
            up.contains("| 700 | 500 | 1.40x | >= 1.20x | yes |"),
            "{up}"
        );
        let cpu = row("| client CPU");
        assert!(cpu.contains("| 0.25x | <= 0.33x | yes |"), "{cpu}");
        let rss = row("| client peak RSS");
        assert!(rss.contains("| n/a | n/a | n/a |"), "{rss}");
        let json = report.json();
        assert!(
            json.contains("\"connect_udp_ms\": {\"median\": 22, \"samples\": [20, 22, 30]}"),
            "{json}"
        );
        assert!(
            json.contains("\"up_mbit_s\": {\"ratio\": 1.4, \"target\": {\"at_least\": 1.2}}"),
            "{json}"
        );
        assert!(json.contains("\"data_channel\": null"));
    }

    #[test]
    fn a_missed_target_is_marked() {
        let report = Report {
            subject: client("A", &[60.0], &[400.0], &[]),
            reference: client("B", &[30.0], &[500.0], &[]),
            ..Report::default()
        };
        let md = report.markdown();
        assert!(md.contains("| 2.00x | <= 1.00x | **no** |"), "{md}");
        assert!(md.contains("| 0.80x | >= 1.20x | **no** |"), "{md}");
    }

    #[test]
    fn a_second_reference_gets_its_own_columns_and_ratios() {
        let report = Report {
            subject: client("OxiVPN", &[20.0], &[600.0], &[3.0]),
            reference: client("openvpn 2.6", &[25.0], &[500.0], &[6.0]),
            reference_2_7: Some(client("openvpn 2.7", &[40.0], &[400.0], &[12.0])),
            ..Report::default()
        };
        let md = report.markdown();
        assert!(md.contains("| metric | OxiVPN | openvpn 2.6 | ratio | target | met | openvpn 2.7 | ratio | met | samples |"), "{md}");
        let connect = md
            .lines()
            .find(|l| l.starts_with("| connect, UDP"))
            .unwrap();
        assert!(
            connect
                .ends_with("| 20.0 | 25.0 | 0.80x | <= 1.00x | yes | 40.0 | 0.50x | yes | 1+1+1 |"),
            "{connect}"
        );
        let up = md
            .lines()
            .find(|l| l.starts_with("| iperf3 TCP up"))
            .unwrap();
        assert!(
            up.contains("| 600 | 500 | 1.20x | >= 1.20x | yes | 400 | 1.50x | yes |"),
            "{up}"
        );
        let json = report.json();
        assert!(json.contains("\"reference_2_7\": {"), "{json}");
        assert!(json.contains("\"ratios_2_7\": {"), "{json}");
        assert!(
            json.contains("\"cpu_s_per_gb\": {\"ratio\": 0.25, \"target\": {\"at_most\": 0.33}}"),
            "{json}"
        );
    }

    #[test]
    fn a_compared_build_and_the_compressed_rows_get_columns() {
        let mut subject = client("OxiVPN", &[20.0], &[600.0], &[3.0]);
        subject.cpu_s_per_gb_compressed = vec![4.0, 5.0, 6.0];
        let mut before = client("OxiVPN (before)", &[20.0], &[500.0], &[3.0]);
        before.cpu_s_per_gb_compressed = vec![10.0];
        let mut reference = client("openvpn 2.6", &[25.0], &[500.0], &[6.0]);
        reference.cpu_s_per_gb_compressed = vec![20.0];
        let report = Report {
            subject,
            reference,
            compare: Some(before),
            ..Report::default()
        };
        let md = report.markdown();
        assert!(
            md.contains("| metric | OxiVPN | openvpn 2.6 | ratio | target | met | OxiVPN (before) | ratio | met | samples |"),
            "{md}"
        );
        let row = md
            .lines()
            .find(|l| l.starts_with("| client CPU per GB moved, compressed down"))
            .unwrap();
        assert!(
            row.ends_with("| 5.00 | 20.00 | 0.25x | - | - | 10.00 | 0.50x | - | 3+1+1 |"),
            "{row}"
        );
        let json = report.json();
        assert!(json.contains("\"compare\": {"), "{json}");
        assert!(
            json.contains("\"cpu_s_per_gb_compressed\": {\"ratio\": 0.5, \"target\": null}"),
            "{json}"
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(jstr("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
