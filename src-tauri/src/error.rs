//! The one error type that crosses to the window: a kind to branch on, a sentence for
//! people, an optional "how to fix it", and the technical details behind a toggle.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// The server refused the user name, password or challenge answer.
    AuthFailed,
    /// The server refused the browser sign-in (denied, or it timed out).
    SignInFailed,
    /// No answer from the server (DNS, routing, firewall, wrong port).
    ServerUnreachable,
    /// The server's certificate did not verify, or ours was refused.
    TlsCertificate,
    /// Nothing listens on the helper socket.
    HelperNotRunning,
    /// The helper socket exists but this user may not use it.
    HelperNotPermitted,
    /// App and helper speak different protocol versions.
    HelperVersion,
    /// The helper stopped answering or went away.
    HelperLost,
    /// The helper (or import) refused the profile.
    ProfileRejected,
    ProfileNotFound,
    /// Something the user typed is not acceptable.
    InvalidInput,
    /// Another operation is under way.
    Busy,
    /// The system keyring could not be used.
    Keyring,
    /// A file could not be read or written.
    File,
    /// The profile names files (certificates, keys) that were not found next to it:
    /// the window asks the user to pick each one (see `missing_files`).
    MissingFiles,
    /// The tunnel failed for another reason.
    Tunnel,
    /// An Access Server asks for a second sign-in step (the message is its question),
    /// or wants two-factor sign-in set up first.
    ChallengeRequired,
    /// The server needs two-factor sign-in that the user has not set up yet.
    TwoFactorNotSetUp,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    /// One sentence in plain words.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// Technical detail for the "details" view and bug reports.
    pub details: String,
    /// With [`ErrorKind::MissingFiles`]: the profile and each file it could not find.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub missing_files: Option<Box<crate::missing_files::MissingFilesView>>,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            details: details.into(),
            missing_files: None,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorKind::InvalidInput, message.clone(), message)
    }
    pub fn internal(details: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Internal,
            "Something went wrong inside OxiVPN.",
            details.to_string(),
        )
    }
    pub fn not_found(id: &str) -> Self {
        Self::new(
            ErrorKind::ProfileNotFound,
            "This profile no longer exists.",
            format!("no profile with id {id:?}"),
        )
    }
    pub fn busy(what: &str) -> Self {
        Self::new(ErrorKind::Busy, what.to_string(), what.to_string())
    }
    pub fn file(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::File, what.to_string(), e.to_string())
    }

    pub fn helper_not_running(socket: &str, e: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::HelperNotRunning,
            "The OxiVPN helper service is not running.",
            format!("cannot connect to {socket}: {e}"),
        )
        .with_hint(os_hint::START_HELPER)
    }

    pub fn helper_not_permitted(group: &str, details: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::HelperNotPermitted,
            "You are not allowed to use the OxiVPN helper.",
            details,
        )
        .with_hint(os_hint::join_group(group))
    }

    pub fn auth_failed(server_message: &str) -> Self {
        Self::new(
            ErrorKind::AuthFailed,
            "The server did not accept your user name or password.",
            if server_message.is_empty() {
                "AUTH_FAILED".to_string()
            } else {
                format!("AUTH_FAILED: {server_message}")
            },
        )
        .with_hint("Check them and try again. Saved credentials were not used again.")
    }

    /// The server refused the connection after asking for a browser sign-in: the sign-in
    /// was denied, not finished in time, or cancelled in the browser.
    pub fn sign_in_failed(server_message: &str) -> Self {
        Self::new(
            ErrorKind::SignInFailed,
            "The sign-in in your browser was not accepted.",
            if server_message.is_empty() {
                "AUTH_FAILED after the browser sign-in".to_string()
            } else {
                format!("AUTH_FAILED after the browser sign-in: {server_message}")
            },
        )
        .with_hint("Connect again and finish the sign-in in your browser before the time runs out.")
    }

    /// Sorts a tunnel failure reported in words into the kind people care about.
    pub fn from_tunnel_message(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
        // The helper's rule for several tunnels: one kill switch at a time, and while it
        // is on, no other server is reachable.
        if m.contains("kill switch of session") {
            return Self::new(
                ErrorKind::Busy,
                "Another VPN connection's kill switch blocks this one.",
                message,
            )
            .with_hint(
                "That connection sends all traffic through its VPN and blocks everything \
                 else, including this server. Disconnect it first, or set the kill switch of \
                 one of the two profiles to Off.",
            );
        }
        if has(&["auth_failed", "authentication failed", "auth failed"]) {
            return Self::auth_failed(message);
        }
        if has(&[
            "certificate",
            "x509",
            "x.509",
            "verify",
            "unknown ca",
            "bad cert",
        ]) {
            return Self::new(
                ErrorKind::TlsCertificate,
                "The server's certificate could not be trusted.",
                message,
            )
            .with_hint(
                "The profile's CA does not match the server, or a certificate has expired. \
                 Ask your VPN administrator for a current profile.",
            );
        }
        if has(&[
            "timed out",
            "timeout",
            "unreachable",
            "resolve",
            "no route",
            "refused",
            "dns",
            "no answer",
        ]) {
            return Self::new(
                ErrorKind::ServerUnreachable,
                "The VPN server could not be reached.",
                message,
            )
            .with_hint(
                "Check your internet connection. If it works, the server may be down or a \
                 firewall may block it.",
            );
        }
        Self::new(ErrorKind::Tunnel, "The connection failed.", message)
    }
}

impl From<ipc::IpcError> for AppError {
    fn from(e: ipc::IpcError) -> Self {
        use ipc::IpcError as E;
        let details = e.to_string();
        match &e {
            E::NotAuthorized { group, .. } => Self::helper_not_permitted(group.as_str(), details),
            E::VersionMismatch { .. } => Self::new(
                ErrorKind::HelperVersion,
                "The OxiVPN helper is a different version than this app.",
                details,
            )
            .with_hint("Install the app and the helper from the same OxiVPN release."),
            E::ProfileRefused {
                line,
                directive,
                reason,
            } => Self::new(
                ErrorKind::ProfileRejected,
                format!(
                    "The helper refused this profile: line {line} (\"{}\") {}.",
                    directive.as_str(),
                    reason.as_str()
                ),
                details,
            )
            .with_hint("Import the original file again; OxiVPN drops such lines on import."),
            E::InvalidProfile { message } => Self::new(
                ErrorKind::ProfileRejected,
                format!(
                    "The helper could not use this profile: {}",
                    message.as_str()
                ),
                details,
            ),
            E::Tunnel { message } => Self::from_tunnel_message(message.as_str()),
            E::KeyPassphrase { wrong } => Self::new(
                ErrorKind::AuthFailed,
                if *wrong {
                    "The private key's passphrase is wrong."
                } else {
                    "The private key is encrypted: its passphrase is needed."
                },
                details,
            )
            .with_hint("Enter the passphrase again. A wrong one is never saved."),
            // Same words as the helper's older text form (see from_tunnel_message).
            E::KillSwitchHeld { .. } => Self::from_tunnel_message(&details),
            E::LockdownAdminOnly => Self::new(
                ErrorKind::HelperNotPermitted,
                "An administrator turned lockdown on: only an administrator can turn it off.",
                details,
            )
            .with_hint("Ask an administrator, or run `sudo oxivpnctl lockdown off`."),
            E::LimitReached { .. } => Self::new(
                ErrorKind::Busy,
                "The helper runs as many connections as it allows.",
                details,
            ),
            E::InvalidRequest { .. }
            | E::NoSuchSession { .. }
            | E::NotYourSession { .. }
            | E::NoChallengePending { .. }
            | E::Unsupported { .. }
            | E::Internal { .. } => {
                Self::new(ErrorKind::Tunnel, "The helper could not do that.", details)
            }
        }
    }
}

/// Maps a client error, naming the socket for "not running".
pub fn from_client_error(e: ipc::ClientError, socket: &str) -> AppError {
    use ipc::ClientError as C;
    match e {
        C::Connect { source, .. } => match source.kind() {
            std::io::ErrorKind::PermissionDenied => AppError::helper_not_permitted(
                os_hint::GROUP,
                format!("cannot connect to {socket}: {source}"),
            ),
            _ => AppError::helper_not_running(socket, source),
        },
        C::Refused(e) | C::Helper(e) => e.into(),
        C::VersionMismatch { helper, client } => {
            ipc::IpcError::VersionMismatch { helper, client }.into()
        }
        C::Timeout(d) => AppError::new(
            ErrorKind::HelperLost,
            "The OxiVPN helper did not answer.",
            format!("no answer within {d:?}"),
        )
        .with_hint(os_hint::RESTART_HELPER),
        C::Closed => AppError::new(
            ErrorKind::HelperLost,
            "The connection to the OxiVPN helper was lost.",
            "the helper closed the connection",
        )
        .with_hint(os_hint::HELPER_LOST),
        other @ (C::Frame(_) | C::Unexpected(_)) => AppError::new(
            ErrorKind::HelperLost,
            "The OxiVPN helper sent something this app does not understand.",
            other.to_string(),
        )
        .with_hint("Install the app and the helper from the same OxiVPN release."),
    }
}

/// What a user does about the helper, in the words of their OS (no systemctl on Windows
/// or macOS).
mod os_hint {
    #[cfg(target_os = "windows")]
    mod imp {
        pub const GROUP: &str = "OxiVPN Users";
        pub const START_HELPER: &str = "Start the \"OxiVPN Helper\" service (services.msc), \
             or reinstall OxiVPN if the service is missing.";
        pub const RESTART_HELPER: &str =
            "Restart the \"OxiVPN Helper\" service (services.msc, or \"Restart-Service OxiVPNHelper\" as administrator).";
        pub const HELPER_LOST: &str =
            "The helper may have been restarted; try again. If it stays away, \
             start the \"OxiVPN Helper\" service (services.msc).";
        pub fn join_group(group: &str) -> String {
            format!(
                "An administrator can add you to the \"{group}\" group \
                 (net localgroup \"{group}\" %USERNAME% /add); then sign out and back in."
            )
        }
    }
    #[cfg(target_os = "macos")]
    mod imp {
        pub const GROUP: &str = "oxivpn";
        pub const START_HELPER: &str =
            "Start it with \"sudo launchctl kickstart system/com.oxivpn.helper\", \
             or reinstall OxiVPN if the service is missing.";
        pub const RESTART_HELPER: &str =
            "Restart the helper (\"sudo launchctl kickstart -k system/com.oxivpn.helper\").";
        pub const HELPER_LOST: &str =
            "The helper may have been restarted; try again. If it stays away, \
             start it (\"sudo launchctl kickstart system/com.oxivpn.helper\").";
        pub fn join_group(group: &str) -> String {
            format!(
                "Add yourself to the {group} group \
                 (\"sudo dseditgroup -o edit -a $USER -t user {group}\"), then log out and back in."
            )
        }
    }
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    mod imp {
        pub const GROUP: &str = "oxivpn";
        pub const START_HELPER: &str =
            "Start it with \"sudo systemctl enable --now oxivpn-helper\", \
             or reinstall OxiVPN if the service is missing.";
        pub const RESTART_HELPER: &str =
            "Restart the helper service (\"sudo systemctl restart oxivpn-helper\").";
        pub const HELPER_LOST: &str =
            "The helper may have been restarted; try again. If it stays away, start it \
             (\"sudo systemctl start oxivpn-helper\").";
        pub fn join_group(group: &str) -> String {
            format!(
                "Add yourself to the {group} group (\"sudo usermod -aG {group} $USER\"), \
                 then log out and back in."
            )
        }
    }
    pub use imp::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_messages_are_sorted_by_what_people_can_do() {
        let k = |m: &str| AppError::from_tunnel_message(m).kind;
        assert_eq!(
            k("TLS handshake: certificate verify failed: unknown ca"),
            ErrorKind::TlsCertificate
        );
        assert_eq!(
            k("connect to udp 198.18.0.1:1194 timed out after 60 s"),
            ErrorKind::ServerUnreachable
        );
        assert_eq!(
            k("cannot resolve vpn.example.com"),
            ErrorKind::ServerUnreachable
        );
        assert_eq!(k("AUTH_FAILED,bad password"), ErrorKind::AuthFailed);
        assert_eq!(k("tun device busy"), ErrorKind::Tunnel);
        let two = AppError::from_tunnel_message(
            "the kill switch of session 7 is on and blocks every other server: disconnect 7 first",
        );
        assert_eq!(two.kind, ErrorKind::Busy);
        assert!(two.hint.unwrap().contains("Disconnect it first"));
    }

    #[test]
    fn not_authorized_says_which_group_to_join() {
        let e: AppError = ipc::IpcError::NotAuthorized {
            uid: 1000,
            group: ipc::ShortText::sanitized("vpnusers"),
        }
        .into();
        assert_eq!(e.kind, ErrorKind::HelperNotPermitted);
        assert!(e.hint.as_deref().unwrap().contains("usermod -aG vpnusers"));
        assert!(e.details.contains("1000"));
    }

    #[test]
    fn missing_socket_means_not_running() {
        let e = from_client_error(
            ipc::ClientError::Connect {
                path: "/run/x.sock".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            "/run/x.sock",
        );
        assert_eq!(e.kind, ErrorKind::HelperNotRunning);
        assert!(e.details.contains("/run/x.sock"));
        let e = from_client_error(
            ipc::ClientError::Connect {
                path: "/run/x.sock".into(),
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            },
            "/run/x.sock",
        );
        assert_eq!(e.kind, ErrorKind::HelperNotPermitted);
    }
}
