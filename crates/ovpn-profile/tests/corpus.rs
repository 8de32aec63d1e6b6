//! Every profile of the shared corpus: no panic, a profile or a line-numbered error,
//! a reviewed snapshot of its report, and the verdict SOURCES.tsv expects.
//! Set `UPDATE_SNAPSHOTS=1` to rewrite the snapshots after a reviewed change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ovpn")
}

fn expectations(dir: &Path) -> Vec<(String, String)> {
    let tsv = std::fs::read_to_string(dir.join("SOURCES.tsv")).unwrap();
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let file_col = header.iter().position(|h| *h == "file").unwrap();
    let expect_col = header.iter().position(|h| *h == "expect").unwrap();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[file_col].to_string(),
                cols[expect_col].trim().to_string(),
            )
        })
        .collect()
}

/// The snapshot text of one file's report.
fn snapshot_text(bytes: &[u8]) -> String {
    match ovpn_profile::parse(bytes) {
        Ok(p) => {
            let mut s = p.report.to_text();
            s.push_str(&format!(
                "  endpoints: {}\n",
                p.profile
                    .endpoints()
                    .iter()
                    .map(|e| format!("{}:{}/{}", e.host, e.port, e.proto.as_str()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            for n in &p.report.needs_files {
                s.push_str(&format!("  needs {:?} {:?}\n", n.kind, n.path));
            }
            s
        }
        Err(e) => {
            assert!(e.line >= 1, "errors carry a line number");
            format!("  PARSE ERROR line {}: {}\n", e.line, e.kind)
        }
    }
}

/// Directives the profile carries but nothing in OxiVPN applies yet (issue 14): the
/// report must never call them honoured.
const NOT_APPLIED: &[&str] = &[
    "block-outside-dns",
    "inactive",
    "ping-exit",
    "float",
    "auth-nocache",
    "verify-hash",
    "tls-cert-profile",
    "push-peer-info",
    "auth-retry",
    "setenv",
    "redirect-private",
    "route-delay",
];

#[test]
fn corpus_reports_match_snapshots_and_expectations() {
    let dir = corpus_dir();
    if !dir.join("SOURCES.tsv").exists() {
        println!("notice: corpus not found at {}; skipping", dir.display());
        return;
    }
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let snap_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let expects = expectations(&dir);
    assert!(!expects.is_empty());
    let (mut agree, mut total) = (0usize, 0usize);
    let mut mismatched_snapshots = Vec::new();
    let mut disagreements = Vec::new();
    for (file, expect) in &expects {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let (_, report) = ovpn_profile::import(&bytes);
        for f in &report.findings {
            assert!(
                !(f.severity == ovpn_profile::Severity::Honoured
                    && NOT_APPLIED.contains(&f.directive.as_str())),
                "{file}: line {:?} says `{}` is honoured, but nothing applies it: {}",
                f.line,
                f.directive,
                f.message
            );
        }
        if !report.usable {
            let r = report.reason.as_deref().unwrap_or("");
            assert!(
                !r.is_empty() && !r.contains('\n'),
                "{file}: unusable needs a one-line reason"
            );
        }
        total += 1;
        let ok = match expect.as_str() {
            "usable" => report.usable,
            "unusable" => !report.usable,
            _ => true,
        };
        if ok {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{file}: expected {expect}, got usable={} ({:?})",
                report.usable, report.reason
            ));
        }
        let text = format!("# {file} (expect {expect})\n{}", snapshot_text(&bytes));
        let snap = snap_dir.join(format!("{file}.txt"));
        if update {
            std::fs::write(&snap, &text).unwrap();
        } else {
            match std::fs::read_to_string(&snap) {
                Ok(old) if old == text => {}
                Ok(_) => mismatched_snapshots.push(format!("{file} (changed)")),
                Err(_) => mismatched_snapshots.push(format!("{file} (no snapshot)")),
            }
        }
    }
    println!("corpus: {agree}/{total} files get the expected verdict");
    for d in &disagreements {
        println!("  disagree: {d}");
    }
    assert!(
        agree * 100 >= total * 95,
        "only {agree}/{total} match SOURCES.tsv: {disagreements:#?}"
    );
    assert!(
        mismatched_snapshots.is_empty(),
        "reports changed; review and rerun with UPDATE_SNAPSHOTS=1: {mismatched_snapshots:#?}"
    );
}
