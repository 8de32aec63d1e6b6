//! What the oxivpnctl lab tests share: running the built `oxivpnctl` against a test
//! helper's socket and data dir, and reading its output.
// Each test binary uses part of this.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `oxivpnctl ARGS` against the helper at `sock`, profiles under `data`.
pub fn ctl(sock: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxivpnctl"))
        .args(args)
        .env("OXIVPN_SOCKET", sock)
        .env("XDG_DATA_HOME", data)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Standard output and standard error, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Standard output of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
