//! `oxivpnctl import --url URL` and `oxivpnctl import --access-server HOST`: download a
//! profile with profile-store's `fetch` (the same code as the app), then import the
//! bytes through the same shared flow as a file, with the same report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use profile_store::fetch::{self, AccessServerLogin, FetchConfig, FetchError, Zeroizing};

use crate::output::Out;
use crate::{credentials, profile_cmds, profiles};

/// Where the profile comes from.
pub enum Source {
    Url(String),
    AccessServer {
        server: String,
        user: Option<String>,
        password_file: Option<PathBuf>,
        challenge_answer_file: Option<PathBuf>,
        autologin: bool,
    },
}

pub async fn import(out: Out, source: Source, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let cfg = FetchConfig::system();
    let fetched = match source {
        Source::Url(url) => fetch::fetch_url(&url, &cfg)
            .await
            .map_err(|e| explain(e, &url))?,
        Source::AccessServer {
            server,
            user,
            password_file,
            challenge_answer_file,
            autologin,
        } => {
            let login = AccessServerLogin {
                user: match user {
                    Some(u) => u,
                    None => ask_user()?,
                },
                password: match &password_file {
                    Some(f) => first_line(f, "password")?,
                    None => ask_password()?,
                },
                server,
                autologin,
            };
            from_access_server(login, challenge_answer_file.as_deref(), &cfg).await?
        }
    };
    let imported = profiles::import_downloaded(&fetched, name)?;
    profile_cmds::print_imported(out, &imported);
    Ok(ExitCode::SUCCESS)
}

async fn from_access_server(
    login: AccessServerLogin,
    answer_file: Option<&Path>,
    cfg: &FetchConfig,
) -> anyhow::Result<fetch::Fetched> {
    let server = login.server.clone();
    match fetch::fetch_access_server(&login, cfg).await {
        Ok(f) => Ok(f),
        Err(FetchError::ChallengeRequired(ch)) => {
            // A second factor: show the server's text, ask, and try once more.
            let answer: Zeroizing<String> = match answer_file {
                Some(f) => first_line(f, "challenge answer")?,
                None if ch.response_required => {
                    if !std::io::stdin().is_terminal() {
                        bail!(
                            "{server} asks for a second sign-in step (\"{}\"), and stdin is not a terminal: \
                             pass --challenge-answer-file FILE, or import the profile file instead",
                            ch.text
                        );
                    }
                    let a = credentials::challenge_answer(&ch.text, ch.echo)?;
                    Zeroizing::new(a.expose().to_owned())
                }
                None => {
                    eprintln!("{}", ch.text);
                    Zeroizing::new(String::new())
                }
            };
            let next = ch.answer(&login, &answer);
            fetch::fetch_access_server(&next, cfg)
                .await
                .map_err(|e| explain(e, &server))
        }
        Err(e) => Err(explain(e, &server)),
    }
}

/// The error with what to do about it.
fn explain(e: FetchError, what: &str) -> anyhow::Error {
    let hint = match &e {
        FetchError::AuthFailed { .. } => Some("check the user name and password (the ones for the Access Server's web page)"),
        FetchError::Certificate { .. } => Some("check the address; if it is right, this computer does not trust the server's certificate (SSL_CERT_FILE names extra trusted CAs)"),
        FetchError::Html => Some("the address may lead to a sign-in page: download the .ovpn file in a browser and import the file"),
        FetchError::NotEnrolled { .. } => Some("sign in to the Access Server's web page once to set up two-factor sign-in, then try again"),
        FetchError::NoAutologin { .. } => Some("leave out --autologin"),
        _ => None,
    };
    let err = anyhow::Error::new(e).context(format!("could not download a profile from {what}"));
    match hint {
        Some(h) => err.context(h.to_string()),
        None => err,
    }
}

fn ask_user() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("the Access Server user name is needed: pass --user NAME");
    }
    let u = credentials::prompt_line("Access Server user name: ")?;
    if u.is_empty() {
        bail!("no user name given");
    }
    Ok(u)
}

fn ask_password() -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("the Access Server password is needed, and stdin is not a terminal: pass --password-file FILE");
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password("Access Server password: ").context("reading the password")?,
    ))
}

/// The first line of `path` (a password or an answer), never printed.
fn first_line(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!("{}: the first line (the {what}) is empty", path.display());
    }
    Ok(Zeroizing::new(line.to_owned()))
}
