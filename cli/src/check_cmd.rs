//! `oxivpnctl check`: the helper's leak check, one line per check in plain words.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use ipc::{CheckVerdict, LeakReport};

use crate::output::Out;
use crate::session_cmds::link;

/// Exit status when the check ran and at least one check failed (1: the check could not run).
pub const EXIT_FAILED_CHECK: u8 = 2;

pub async fn check(socket: &Path, out: Out, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let client = link(socket).await?;
    let session = match name {
        None => None,
        Some(n) => {
            let uid = client.server_hello().peer_uid;
            let sessions = client.list_sessions().await?;
            let found = sessions
                .iter()
                .filter(|s| s.owner_uid == uid || uid == 0)
                .filter(|s| s.profile_name.as_ref().is_some_and(|p| p.as_str() == n))
                .max_by_key(|s| s.started_unix_ms)
                .map(|s| s.id);
            match found {
                Some(id) => Some(id),
                None => bail!("no session of yours uses profile {n:?}"),
            }
        }
    };
    let report = client.leak_check(session).await.context("leak check")?;
    out.result(&report, || human(&report));
    Ok(if report.failed() {
        ExitCode::from(EXIT_FAILED_CHECK)
    } else {
        ExitCode::SUCCESS
    })
}

fn human(r: &LeakReport) -> String {
    let mut s = match (&r.profile_name, r.connected) {
        (Some(p), true) => format!("Leak check of {p} (connected)\n"),
        (Some(p), false) => format!("Leak check (session of {p} not connected)\n"),
        (None, _) => "Leak check (no VPN connected)\n".to_owned(),
    };
    for c in &r.checks {
        let mark = match c.verdict {
            CheckVerdict::Pass => "PASS",
            CheckVerdict::Fail => "FAIL",
            CheckVerdict::NotApplicable => "n/a ",
        };
        s.push_str(&format!(
            "  {mark}  {:<18} {}\n",
            c.kind.title(),
            c.explanation
        ));
    }
    let failed = r
        .checks
        .iter()
        .filter(|c| c.verdict == CheckVerdict::Fail)
        .count();
    if failed > 0 {
        s.push_str(&format!("{failed} check(s) failed\n"));
    } else {
        s.push_str("no check failed\n");
    }
    s
}
