//! Import from a server, the app's side: profile-store's `fetch` (shared with
//! oxivpnctl) does the download; this maps its errors to the window's [`AppError`]s,
//! keeps an Access Server's pending second-factor question between two calls, and keeps
//! the Access Server password in the keyring only when the user asked to remember it.

use std::sync::Mutex;

use profile_store::fetch::{
    self, AccessServerLogin, Challenge, FetchConfig, FetchError, Fetched, Zeroizing,
};

use crate::error::{AppError, ErrorKind};
use crate::secrets::{SavedCredentials, SecretStore};

pub use profile_store::fetch::system_roots;

/// The window's error for a failed download; the English text names the step.
pub fn app_error(e: FetchError) -> AppError {
    let details = e.to_string();
    let sentence = |s: &str| -> String {
        let mut c = s.chars();
        match c.next() {
            Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
            None => String::new(),
        }
    };
    match &e {
        FetchError::BadAddress { .. } | FetchError::NotHttps { .. } => {
            AppError::new(ErrorKind::InvalidInput, sentence(&details), details)
        }
        FetchError::Dns { .. } | FetchError::Connect { .. } | FetchError::Timeout { .. } => {
            let full = error_chain(&e);
            AppError::new(
                ErrorKind::ServerUnreachable,
                format!("Could not download the profile: {}.", details),
                full,
            )
            .with_hint("Check the address and your internet connection.")
        }
        FetchError::Certificate { .. } | FetchError::Tls { .. } => AppError::new(
            ErrorKind::TlsCertificate,
            sentence(&details),
            error_chain(&e),
        )
        .with_hint(
            "Check the address. If it is right, this computer does not trust the server's certificate.",
        ),
        FetchError::AuthFailed { server_message } => AppError::new(
            ErrorKind::AuthFailed,
            "The server did not accept your user name or password.",
            if server_message.is_empty() {
                details.clone()
            } else {
                format!("{details}: {server_message}")
            },
        )
        .with_hint("Use the user name and password of the Access Server's web page."),
        FetchError::ChallengeRequired(c) => AppError::new(
            ErrorKind::ChallengeRequired,
            c.text.clone(),
            "CRV1 challenge from the Access Server",
        )
        .with_hint("Enter the answer (for example the code from your authenticator app) and import again."),
        FetchError::NotEnrolled { .. } => AppError::new(
            ErrorKind::TwoFactorNotSetUp,
            "This server needs two-factor sign-in that is not set up yet.",
            details,
        )
        .with_hint(
            "Sign in once on the Access Server's web page to set it up, then try again, or import the profile file instead.",
        ),
        FetchError::NoAutologin { .. } => AppError::new(
            ErrorKind::ProfileRejected,
            "This user may not download an autologin profile.",
            details,
        )
        .with_hint("Turn off \"Connect without a password\" and import again."),
        FetchError::Html => AppError::new(
            ErrorKind::ProfileRejected,
            "The server sent a web page, not an OpenVPN profile.",
            details,
        )
        .with_hint(
            "The address may lead to a sign-in page. Download the .ovpn file in a browser, or ask for the profile's direct address.",
        ),
        FetchError::NotAProfile { .. } | FetchError::TooLarge { .. } => {
            AppError::new(ErrorKind::ProfileRejected, sentence(&details), details)
        }
        FetchError::Http { status, .. } => AppError::new(
            ErrorKind::File,
            format!("The server answered {status} instead of a profile."),
            details,
        ),
        FetchError::Protocol { .. } | FetchError::Redirect { .. } => AppError::new(
            ErrorKind::ServerUnreachable,
            format!("Could not download the profile: {details}."),
            error_chain(&e),
        ),
        FetchError::AccessServer { .. } => AppError::new(
            ErrorKind::ProfileRejected,
            sentence(&details),
            details,
        ),
        FetchError::Setup(_) => AppError::internal(details),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// Downloads the profile at `url`.
pub async fn fetch_url(url: &str, cfg: &FetchConfig) -> Result<Fetched, AppError> {
    fetch::fetch_url(url, cfg).await.map_err(app_error)
}

/// What the window sends for an Access Server import.
pub struct AccessServerRequest {
    pub server: String,
    pub username: String,
    /// Empty: use the one remembered in the keyring for this server and user.
    pub password: Zeroizing<String>,
    pub autologin: bool,
    /// Keep the password in the keyring (only there) for the next import.
    pub remember: bool,
    /// The answer to the second-factor question the last attempt returned.
    pub challenge_response: Option<Zeroizing<String>>,
}

/// The question an Access Server asked, per server and user, until answered.
static PENDING: Mutex<Vec<(String, String, Challenge)>> = Mutex::new(Vec::new());

/// The keyring entry for an Access Server login (not a profile id: profile ids are
/// stored file names, which never hold "://").
fn keyring_id(server: &str, user: &str) -> String {
    format!(
        "access-server://{}/{user}",
        server.trim().trim_end_matches('/')
    )
}

/// Downloads the user's profile from an Access Server; a second-factor question comes
/// back as [`ErrorKind::ChallengeRequired`] with the server's text, and the next call
/// with `challenge_response` answers it.
pub async fn fetch_access_server(
    req: AccessServerRequest,
    cfg: &FetchConfig,
    secrets: &dyn SecretStore,
) -> Result<Fetched, AppError> {
    let server = req.server.trim().to_string();
    let user = req.username.trim().to_string();
    if server.is_empty() {
        return Err(AppError::invalid("Enter the Access Server's address."));
    }
    if user.is_empty() {
        return Err(AppError::invalid("Enter your user name."));
    }
    let id = keyring_id(&server, &user);
    let password = if req.password.is_empty() {
        match secrets.load(&id)? {
            Some(saved) => Zeroizing::new(saved.password),
            None => return Err(AppError::invalid("Enter your password.")),
        }
    } else {
        req.password
    };
    let login = AccessServerLogin {
        server: server.clone(),
        user: user.clone(),
        password,
        autologin: req.autologin,
    };
    let pending = PENDING.lock().ok().and_then(|mut p| {
        let i = p.iter().position(|(s, u, _)| *s == server && *u == user)?;
        Some(p.remove(i).2)
    });
    let attempt = match (&req.challenge_response, pending) {
        (Some(answer), Some(ch)) => ch.answer(&login, answer),
        (Some(_), None) => {
            return Err(AppError::invalid(
                "The server's question has expired. Import again to get a new one.",
            ))
        }
        (None, _) => AccessServerLogin {
            server: login.server.clone(),
            user: login.user.clone(),
            password: login.password.clone(),
            autologin: login.autologin,
        },
    };
    match fetch::fetch_access_server(&attempt, cfg).await {
        Ok(f) => {
            if req.remember {
                secrets.save(
                    &id,
                    &SavedCredentials {
                        username: user,
                        password: login.password.to_string(),
                        key_passphrase: None,
                    },
                )?;
            }
            Ok(f)
        }
        Err(FetchError::ChallengeRequired(ch)) => {
            if let Ok(mut p) = PENDING.lock() {
                p.retain(|(s, u, _)| !(*s == server && *u == user));
                p.push((server, user, ch.clone()));
            }
            Err(app_error(FetchError::ChallengeRequired(ch)))
        }
        Err(e) => Err(app_error(e)),
    }
}
