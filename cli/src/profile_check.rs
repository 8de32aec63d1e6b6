//! `oxivpnctl profile check FILE... [--json]`: the import report of each file, with
//! the files it names looked up (and checked) next to it. Needs no helper.
//!
//! Exit code: 0 when every file is usable, 1 when any is not, 2 for usage errors
//! (clap's own). A referenced file that is missing is listed as "needs file" and
//! does not by itself make a profile unusable.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

/// `oxivpnctl profile ...`
#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Check .ovpn files: what OxiVPN honours, ignores, refuses, and whether each is usable.
    Check {
        /// Profiles to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Serialize)]
struct FileResult<'a> {
    file: String,
    usable: bool,
    reason: Option<&'a str>,
    refused: usize,
    findings: &'a [ovpn_profile::Finding],
    needs_files: &'a [ovpn_profile::FileNeed],
}

#[derive(Serialize)]
struct Summary {
    usable: usize,
    unusable: usize,
    refused: usize,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    files: Vec<FileResult<'a>>,
    summary: Summary,
}

/// Import report of one file; unreadable files become unusable reports.
fn report_for(path: &Path) -> ovpn_profile::Report {
    match profile_store::resolve(path) {
        Ok(r) => r.report,
        Err(e) => {
            let msg = format!("{e:#}");
            let src = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            ovpn_profile::Report {
                findings: vec![ovpn_profile::Finding {
                    line: None,
                    directive: String::new(),
                    severity: ovpn_profile::Severity::Error,
                    message: format!("{msg}{src}"),
                }],
                needs_files: Vec::new(),
                usable: false,
                reason: Some(format!("{msg}{src}")),
            }
        }
    }
}

/// The summary line printed after several files.
pub fn summary_line(usable: usize, unusable: usize, refused: usize) -> String {
    format!("{usable} usable, {unusable} unusable, {refused} refused directives")
}

pub fn run(cmd: ProfileCommand, json: bool) -> anyhow::Result<ExitCode> {
    let ProfileCommand::Check { files } = cmd;
    let reports: Vec<(String, ovpn_profile::Report)> = files
        .iter()
        .map(|f| (f.display().to_string(), report_for(f)))
        .collect();
    let usable = reports.iter().filter(|(_, r)| r.usable).count();
    let unusable = reports.len() - usable;
    let refused: usize = reports.iter().map(|(_, r)| r.refused_count()).sum();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = JsonOut {
            files: reports
                .iter()
                .map(|(f, r)| FileResult {
                    file: f.clone(),
                    usable: r.usable,
                    reason: r.reason.as_deref(),
                    refused: r.refused_count(),
                    findings: &r.findings,
                    needs_files: &r.needs_files,
                })
                .collect(),
            summary: Summary {
                usable,
                unusable,
                refused,
            },
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        for (f, r) in &reports {
            writeln!(out, "{f}")?;
            write!(out, "{}", r.to_text())?;
        }
        if reports.len() > 1 {
            writeln!(out, "{}", summary_line(usable, unusable, refused))?;
        }
    }
    Ok(if unusable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
