//! What the session hands back to its caller: stages, events, why it ended,
//! counters, negotiated parameters and setup errors.

use crate::config::Secret;
use crate::push::PushedOptions;
use crate::sso::SignInEvent;
use crate::tls::{TlsError, TlsSetupError};
use std::fmt;
use thiserror::Error;

/// Where the connection is, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Hard reset sent, waiting for the server.
    Connecting,
    /// Server answered; TLS handshake running.
    Tls,
    /// TLS done; key exchange / credentials being checked.
    Authenticating,
    /// Asking for the configuration (PUSH_REQUEST).
    GettingConfig,
    /// Data channel up.
    Connected,
    /// Finished (see the `Disconnected` event for why).
    Disconnected,
}

/// A challenge the user must answer: `Static`/`Dynamic` by reconnecting with
/// [`ClientConfig::challenge_response`](crate::config::ClientConfig::challenge_response) set, `CrText` on the live session with
/// [`Client::send_cr_response`](super::Client::send_cr_response).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Challenge {
    /// `INFO_PRE,CR_TEXT:<flags>:<text>` during AUTH_PENDING.
    CrText {
        text: String,
        echo: bool,
        response_required: bool,
    },
    /// `static-challenge` configured but no response given.
    Static { text: String, echo: bool },
    /// `AUTH_FAILED,CRV1`: answer with `ChallengeResponse::Dynamic`.
    Dynamic {
        state_id: String,
        username: String,
        text: String,
        echo: bool,
        response_required: bool,
    },
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DisconnectReason {
    #[error("no reply from the server within {secs} s: check the tls-crypt/tls-auth key and that the server is reachable")]
    NoServerReply { secs: u64 },
    #[error("the server answered but the TLS handshake/key exchange did not complete within {secs} s (hand-window): the server may refuse our TLS version or cipher suites (rustls: TLS 1.2/1.3 with ECDHE and AES-GCM/ChaCha20 only), our certificate or credentials; see the server log")]
    HandshakeTimeout { secs: u64 },
    #[error("{0}")]
    Tls(TlsError),
    #[error("authentication failed: {reason}")]
    AuthFailed { reason: String },
    #[error("authentication temporarily failed: {message}")]
    AuthFailedTemp {
        backoff_secs: Option<u32>,
        advance: Option<String>,
        message: String,
    },
    /// The server refused our auth-token: reconnect with the real credentials.
    #[error("the server rejected the session token; reconnect with the real credentials")]
    AuthTokenRejected,
    #[error("the server asks for a challenge response")]
    ChallengeRequired,
    #[error("no configuration (PUSH_REPLY) from the server within {secs} s")]
    PushTimeout { secs: u64 },
    /// AUTH_PENDING: the server did not decide (sign-in, CR_TEXT) within its timeout.
    #[error("the server did not confirm the sign-in within {secs} s (its AUTH_PENDING timeout): sign in again")]
    SignInTimeout { secs: u64 },
    #[error("server configuration refused: {0}")]
    PushRejected(String),
    #[error("no packet from the server for {secs} s (ping-restart)")]
    PingRestart { secs: u64 },
    #[error("the server asked us to reconnect{}", fmt_msg(.message))]
    ServerRestart { message: Option<String> },
    #[error("the server asked us to stop{}", fmt_msg(.message))]
    ServerHalt { message: Option<String> },
    #[error("the server is shutting down")]
    ServerExit,
    #[error("key renegotiation did not complete within {secs} s")]
    RenegotiationFailed { secs: u64 },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("disconnected by the user")]
    ClosedByUser,
}

fn fmt_msg(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

/// What the server asked for in `RESTART`/`HALT` (`[flags]` prefix) or
/// `AUTH_FAILED,TEMP[advance ...]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerHints {
    /// Try the next remote (`N` flag, `advance remote|addr`).
    pub next_remote: bool,
    /// Keep the user's password for the next attempt (`P` flag).
    pub keep_password: bool,
    /// Wait at least this long before reconnecting (`backoff N`).
    pub backoff_secs: Option<u32>,
}

impl DisconnectReason {
    /// Hints from the server for the next connection attempt.
    pub fn server_hints(&self) -> ServerHints {
        let flags = |m: &Option<String>| {
            m.as_deref()
                .and_then(|m| m.strip_prefix('['))
                .and_then(|m| m.split_once(']'))
                .map(|(f, _)| f.to_string())
                .unwrap_or_default()
        };
        match self {
            DisconnectReason::ServerRestart { message }
            | DisconnectReason::ServerHalt { message } => {
                let f = flags(message);
                ServerHints {
                    next_remote: f.contains('N'),
                    keep_password: f.contains('P'),
                    backoff_secs: None,
                }
            }
            DisconnectReason::AuthFailedTemp {
                backoff_secs,
                advance,
                ..
            } => ServerHints {
                next_remote: matches!(advance.as_deref(), Some("remote") | Some("addr")),
                keep_password: true,
                backoff_secs: *backoff_secs,
            },
            _ => ServerHints::default(),
        }
    }

    /// Worth reconnecting automatically (as opposed to a configuration or
    /// credential problem that needs the user).
    pub fn should_reconnect(&self) -> bool {
        use DisconnectReason::*;
        matches!(
            self,
            NoServerReply { .. }
                | HandshakeTimeout { .. }
                | PushTimeout { .. }
                | PingRestart { .. }
                | ServerRestart { .. }
                | ServerExit
                | RenegotiationFailed { .. }
                | AuthFailedTemp { .. }
                | AuthTokenRejected
                | Protocol(_)
        )
    }
}

/// Something the caller should know.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    Stage(Stage),
    /// The pushed configuration; apply it (TUN address, routes, DNS).
    ConfigReceived(Box<PushedOptions>),
    ChallengeNeeded(Challenge),
    /// `AUTH_PENDING`: keep waiting (e.g. for web authentication).
    AuthPending {
        timeout_secs: Option<u32>,
    },
    /// `INFO_PRE,...` (WEB_AUTH/OPEN_URL/CR_TEXT).
    InfoPre(String),
    /// `INFO,...`.
    Info(String),
    /// `WEB_AUTH`/`OPEN_URL` during AUTH_PENDING: send the user to a browser (or a
    /// refused request to show). CR_TEXT comes as `ChallengeNeeded(CrText)`.
    SignIn(SignInEvent),
    /// The server issued a session token; keep it (in memory only) for
    /// reconnects via [`ClientConfig::auth_token`](crate::config::ClientConfig::auth_token).
    AuthToken {
        token: Secret,
        username: Option<String>,
    },
    /// New data-channel keys are in use.
    KeysRenewed {
        key_id: u8,
    },
    Disconnected(DisconnectReason),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Stage(s) => f.debug_tuple("Stage").field(s).finish(),
            Event::ConfigReceived(o) => f.debug_tuple("ConfigReceived").field(o).finish(),
            Event::ChallengeNeeded(c) => f.debug_tuple("ChallengeNeeded").field(c).finish(),
            Event::AuthPending { timeout_secs } => f
                .debug_struct("AuthPending")
                .field("timeout_secs", timeout_secs)
                .finish(),
            Event::InfoPre(s) => f.debug_tuple("InfoPre").field(s).finish(),
            Event::Info(s) => f.debug_tuple("Info").field(s).finish(),
            Event::SignIn(s) => f.debug_tuple("SignIn").field(s).finish(),
            Event::AuthToken { .. } => f.write_str("AuthToken{..}"),
            Event::KeysRenewed { key_id } => f
                .debug_struct("KeysRenewed")
                .field("key_id", key_id)
                .finish(),
            Event::Disconnected(r) => f.debug_tuple("Disconnected").field(r).finish(),
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// IP payload bytes received from / sent to the tunnel.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Link bytes (all packets).
    pub link_bytes_in: u64,
    pub link_bytes_out: u64,
    pub control_packets_in: u64,
    pub control_packets_out: u64,
    pub retransmits: u64,
    pub dropped_malformed: u64,
    pub dropped_replayed: u64,
    pub dropped_auth_failed: u64,
    pub dropped_compressed: u64,
    pub dropped_unknown_key: u64,
    /// Epoch format: packets for an epoch outside the receive window.
    pub dropped_epoch: u64,
    pub dropped_not_connected: u64,
    pub dropped_other: u64,
    /// Pending-auth messages refused (bad URL, malformed WEB_AUTH/CR_TEXT).
    pub pending_auth_refused: u64,
    /// TCP SYN/SYN-ACK packets whose MSS option was lowered (`mssfix`).
    pub mss_clamped: u64,
}

/// Negotiated parameters of a connected session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Data-channel cipher (`AES-256-GCM` ...).
    pub cipher: &'static str,
    /// TLS version and suite of the newest key.
    pub tls: String,
    /// `tls-ekm` or `legacy PRF`.
    pub key_derivation: &'static str,
    pub peer_id: Option<u32>,
    pub dynamic_tls_crypt: bool,
    /// key_id of the newest key state.
    pub key_id: u8,
    /// The cipher was not negotiated: the server's own, named by the profile.
    pub legacy_cipher: bool,
    /// The OpenVPN 2.7 data format (epoch data keys) is in use.
    pub epoch_format: bool,
}

impl SessionInfo {
    /// The data channel's format in plain words: "AES-256-GCM, epoch keys
    /// (2.7)", "AES-256-GCM, per-session keys", "AES-256-CBC (legacy: not
    /// negotiated)".
    pub fn data_format(&self) -> String {
        let keys = if self.epoch_format {
            "epoch keys (2.7)"
        } else {
            "per-session keys"
        };
        if self.legacy_cipher {
            format!("{} (legacy: not negotiated), {keys}", self.cipher)
        } else {
            format!("{}, {keys}", self.cipher)
        }
    }
}

/// Configuration problems found when creating the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SetupError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("control channel key: {0}")]
    WrapKey(String),
    #[error("auth {0:?} is not supported (SHA1, SHA256, SHA512)")]
    Digest(String),
    #[error("data-ciphers: {0}")]
    Ciphers(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_hints() {
        let r = DisconnectReason::ServerRestart {
            message: Some("[NP]maintenance".into()),
        };
        assert_eq!(
            r.server_hints(),
            ServerHints {
                next_remote: true,
                keep_password: true,
                backoff_secs: None
            }
        );
        let r = DisconnectReason::AuthFailedTemp {
            backoff_secs: Some(30),
            advance: Some("remote".into()),
            message: String::new(),
        };
        assert!(r.server_hints().next_remote);
        assert_eq!(r.server_hints().backoff_secs, Some(30));
        assert_eq!(
            DisconnectReason::ServerRestart { message: None }.server_hints(),
            ServerHints::default()
        );
    }

    #[test]
    fn disconnect_reasons_read_well() {
        let r = DisconnectReason::NoServerReply { secs: 60 };
        assert_eq!(
            r.to_string(),
            "no reply from the server within 60 s: check the tls-crypt/tls-auth key and that the server is reachable"
        );
        assert!(r.should_reconnect());
        assert!(!DisconnectReason::AuthFailed { reason: "x".into() }.should_reconnect());
        assert_eq!(
            DisconnectReason::ServerRestart {
                message: Some("[N]bye".into())
            }
            .to_string(),
            "the server asked us to reconnect: [N]bye"
        );
    }
}
