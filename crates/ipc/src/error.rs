//! Errors: [`IpcError`] crosses the socket (typed, with a human message);
//! [`FrameError`] is about bytes on the socket; [`ClientError`] is what the client
//! library's caller sees.

use serde::{Deserialize, Serialize};

use crate::types::{SessionId, ShortText};

/// An error the helper reports to a client. Grouped by blame: the caller's request,
/// the caller's rights, the profile, the helper's limits, the tunnel, the helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum IpcError {
    #[error("protocol version mismatch: helper speaks {helper}, client speaks {client}")]
    VersionMismatch { helper: u32, client: u32 },
    #[error("uid {uid} may not use the OxiVPN helper (not root and not in group {group})")]
    NotAuthorized { uid: u32, group: ShortText },
    #[error("invalid request: {field}: {problem}")]
    InvalidRequest {
        field: ShortText,
        problem: ShortText,
    },
    #[error("no session {session}")]
    NoSuchSession { session: SessionId },
    #[error("session {session} belongs to another user")]
    NotYourSession { session: SessionId },
    #[error("profile refused at line {line}: `{directive}` {reason}")]
    ProfileRefused {
        line: u32,
        directive: ShortText,
        reason: ShortText,
    },
    #[error("invalid profile: {message}")]
    InvalidProfile { message: ShortText },
    #[error("limit reached: {what} (at most {limit})")]
    LimitReached { what: ShortText, limit: u32 },
    #[error("session {session} is not waiting for a challenge response")]
    NoChallengePending { session: SessionId },
    /// Another session's kill switch is on: it blocks every other server, so no second
    /// session can connect until that one is disconnected (by its owner or root).
    #[error("the kill switch of session {session} is on and blocks every other VPN server: disconnect session {session} first (its owner or root can)")]
    KillSwitchHeld { session: SessionId },
    #[error("not supported by this helper: {what}")]
    Unsupported { what: ShortText },
    #[error("tunnel failed: {message}")]
    Tunnel { message: ShortText },
    #[error("helper error: {message}")]
    Internal { message: ShortText },
    /// The profile's private key (PEM or PKCS#12) could not be opened: its passphrase
    /// is missing (`wrong: false`) or wrong. Nothing was started; ask the user again.
    #[error("{}", if *wrong { "the private key's passphrase is wrong" } else { "the private key is encrypted: its passphrase is needed" })]
    KeyPassphrase { wrong: bool },
    /// Lockdown was turned on by root (an administrator): a member of the group may not
    /// lift or weaken it.
    #[error("lockdown was turned on by an administrator: only root may turn it off or change it")]
    LockdownAdminOnly,
}

impl IpcError {
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::InvalidRequest {
            field: ShortText::sanitized(field),
            problem: ShortText::sanitized(&problem.to_string()),
        }
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal {
            message: ShortText::sanitized(&message.to_string()),
        }
    }
    pub fn tunnel(message: impl std::fmt::Display) -> Self {
        Self::Tunnel {
            message: ShortText::sanitized(&message.to_string()),
        }
    }
    pub fn limit(what: &str, limit: u32) -> Self {
        Self::LimitReached {
            what: ShortText::sanitized(what),
            limit,
        }
    }
}

/// A frame that could not be read, written or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Well-formed JSON whose field `field` failed validation, or JSON that does not
    /// match the message shape at `field` ("." = the whole frame).
    #[error("invalid frame at {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("frame i/o")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// The same error as the helper reports it to the client.
    pub fn to_ipc(&self) -> IpcError {
        match self {
            Self::Invalid { field, message } => IpcError::invalid(field, message),
            Self::TooLarge { max, .. } => IpcError::limit(
                "frame size in bytes",
                u32::try_from(*max).unwrap_or(u32::MAX),
            ),
            other => IpcError::invalid(".", other),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the OxiVPN helper at {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the helper refused: {0}")]
    Refused(IpcError),
    #[error("protocol version mismatch: helper speaks {helper}, client speaks {client}")]
    VersionMismatch { helper: u32, client: u32 },
    #[error("{0}")]
    Helper(IpcError),
    #[error("the helper sent an unexpected frame: {0}")]
    Unexpected(String),
    #[error("the connection to the helper closed")]
    Closed,
    #[error("the helper did not answer within {0:?}")]
    Timeout(std::time::Duration),
}
