//! Errors of this crate, grouped by what failed; the OS's own error is the `source`.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A routing/link/address request the kernel refused or that could not be sent.
    #[error("network configuration request failed: {op}")]
    Netlink {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("netlink answer could not be decoded: {0}")]
    NetlinkDecode(String),
    #[error("TUN device: {what}")]
    Tun {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("undo journal {}: {what}", path.display())]
    Journal {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("undo journal {} is not valid JSON of this version", path.display())]
    JournalFormat {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("undo journal {} still holds a previous session's changes; run recover() first", path.display())]
    JournalExists { path: PathBuf },
    #[error("DNS over D-Bus (systemd-resolved): {what}")]
    Resolved {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("DNS file {}: {what}", path.display())]
    ResolvConf {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the plan cannot be applied: {0}")]
    Plan(String),
    #[error(
        "undo left {failed} change(s) in place; the journal keeps them for recover(): {first}"
    )]
    UndoIncomplete { failed: usize, first: String },
    /// nftables (the kill switch) refused or could not be run.
    #[error("kill switch: {what}")]
    Firewall {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not supported on this platform yet")]
    Unsupported(&'static str),
    /// The helper's state directory is not safe to hold undo journals.
    #[error("state directory {}: {why}", path.display())]
    StateDir { path: PathBuf, why: String },
}

impl Error {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn netlink(op: impl Into<String>, source: io::Error) -> Self {
        Error::Netlink {
            op: op.into(),
            source,
        }
    }
}
