//! The one program the kill switch still runs: `/sbin/pfctl` on macOS (pf has no stable
//! library interface). Arguments only, never secrets; rules go in on stdin.

#[cfg(target_os = "macos")]
use std::io::Write;
#[cfg(target_os = "macos")]
use std::process::{Command, Stdio};

#[cfg(target_os = "macos")]
use crate::Error;

/// What pfctl answered: whether it exited 0, and stdout + stderr (pfctl reports on stderr).
#[cfg(target_os = "macos")]
pub(super) fn run(args: &[&str], stdin: Option<&str>) -> Result<(bool, String), Error> {
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

/// Like [`run`], but a non-zero exit is an error carrying pfctl's words.
#[cfg(target_os = "macos")]
pub(super) fn must(args: &[&str], stdin: Option<&str>) -> Result<String, Error> {
    let (ok, text) = run(args, stdin)?;
    if !ok {
        return Err(Error::Firewall {
            what: format!("pfctl {} refused: {}", args.join(" "), text.trim()),
            source: std::io::Error::other("pfctl failed"),
        });
    }
    Ok(text)
}

/// The reference token in `pfctl -E`'s answer (`Token : 12345678`).
pub(super) fn parse_token(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        if key.trim() != "Token" {
            return None;
        }
        value.trim().parse().ok()
    })
}

/// Whether `pfctl -s info` says pf is enabled.
pub(super) fn is_enabled(info: &str) -> bool {
    info.lines()
        .any(|l| l.trim_start().starts_with("Status: Enabled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_read_from_what_pfctl_e_prints() {
        // pfctl -E on macOS 14 (stderr), pf already enabled by someone else.
        let text = "No ALTQ support in kernel\nALTQ related functions disabled\npf enabled\nToken : 13752863128301346835\n";
        assert_eq!(parse_token(text), Some(13_752_863_128_301_346_835));
        assert_eq!(parse_token("pf enabled\n"), None);
        assert_eq!(parse_token("Token : not-a-number\n"), None);
    }

    #[test]
    fn status_line_decides_enabled() {
        assert!(is_enabled(
            "No ALTQ support in kernel\nStatus: Enabled for 0 days 00:00:03           Debug: Urgent\n"
        ));
        assert!(!is_enabled("Status: Disabled for 0 days 00:01:00\n"));
    }
}
