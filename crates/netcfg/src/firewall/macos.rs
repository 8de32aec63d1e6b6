//! The kill switch on macOS: the rules of [`super::macos_rules`] loaded into our pf
//! anchor with `pfctl`. Rules in an anchor stay when the helper dies (as on Linux);
//! pf is enabled with `pfctl -e` (already enabled is fine) and left enabled on removal
//! (with our anchor flushed the stock ruleset passes everything).
//! COMPILED for aarch64-apple-darwin only; not run here.

use std::io::Write;
use std::process::{Command, Stdio};

use super::macos_rules::anchor_name;
use crate::Error;

fn pfctl(args: &[&str], stdin: Option<&str>) -> Result<(bool, String), Error> {
    let fail = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Firewall { what, source }
    };
    let mut child = Command::new("/sbin/pfctl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail("run /sbin/pfctl"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(fail("write the rules to pfctl"))?;
    }
    let out = child.wait_with_output().map_err(fail("wait for pfctl"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

fn must(args: &[&str], stdin: Option<&str>) -> Result<String, Error> {
    let (ok, text) = pfctl(args, stdin)?;
    if !ok {
        return Err(Error::Firewall {
            what: format!("pfctl {} refused: {}", args.join(" "), text.trim()),
            source: std::io::Error::other("pfctl failed"),
        });
    }
    Ok(text)
}

/// Loads `rules` into our anchor (replacing what it held, atomically) and enables pf.
pub fn apply(table: &str, rules: &str) -> Result<(), Error> {
    let anchor = anchor_name(table);
    must(&["-a", &anchor, "-f", "-"], Some(rules))?;
    // "pf already enabled" exits non-zero on some releases: check the state instead.
    let _ = pfctl(&["-e"], None)?;
    let info = must(&["-s", "info"], None)?;
    if !info.contains("Status: Enabled") {
        return Err(Error::Firewall {
            what: "pf did not enable (pfctl -s info)".into(),
            source: std::io::Error::other(info),
        });
    }
    Ok(())
}

/// Flushes our anchor's rules.
pub fn remove(table: &str) -> Result<(), Error> {
    must(&["-a", &anchor_name(table), "-F", "rules"], None).map(|_| ())
}

/// Whether our anchor holds rules.
pub fn is_present(table: &str) -> Result<bool, Error> {
    let (ok, text) = pfctl(&["-a", &anchor_name(table), "-s", "rules"], None)?;
    Ok(ok
        && text
            .lines()
            .any(|l| l.starts_with("block") || l.starts_with("pass")))
}
