//! What the user must type before a connect: user name and password, a static
//! challenge answer. From `--auth-file` (tests, scripts) or the terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use ipc::{Credentials, Secret, Username};

fn secret(s: String, what: &str) -> anyhow::Result<Secret> {
    Secret::try_from(s).map_err(|e| anyhow::anyhow!("{what} {e}"))
}

/// Whether the profile's private key is an encrypted PEM key (PKCS#8 or OpenSSL's
/// traditional form). A PKCS#12 archive may or may not have a password: the helper
/// says so when it needs one.
pub fn key_is_encrypted(profile: &ovpn_profile::Profile) -> bool {
    matches!(&profile.key, Some(ovpn_profile::Material::Inline(k))
        if k.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || k.contains("Proc-Type: 4,ENCRYPTED"))
}

/// The private key's passphrase: the first line of `--key-passphrase-file`.
pub fn key_passphrase_from_file(path: &Path) -> anyhow::Result<Secret> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        bail!(
            "{}: the first line (the passphrase) is empty",
            path.display()
        );
    }
    secret(line.to_owned(), "passphrase")
}

/// Ask for the private key's passphrase on the terminal; `again` says why we ask again.
pub fn key_passphrase_from_terminal(again: Option<&str>) -> anyhow::Result<Secret> {
    if !std::io::stdin().is_terminal() {
        bail!("the private key's passphrase is needed, and stdin is not a terminal (use --key-passphrase-file FILE)");
    }
    if let Some(why) = again {
        eprintln!("{why}");
    }
    let p =
        rpassword::prompt_password("Private key passphrase: ").context("reading the passphrase")?;
    secret(p, "passphrase")
}

/// Credentials the profile asks for; empty when it asks for none.
pub fn gather(
    profile: &ovpn_profile::Profile,
    auth_file: Option<&Path>,
) -> anyhow::Result<Credentials> {
    let mut creds = Credentials::default();
    if profile.auth_user_pass.is_some() {
        let (user, pass) = match auth_file {
            Some(f) => from_file(f)?,
            None => from_terminal()?,
        };
        creds.username =
            Some(Username::try_from(user).map_err(|e| anyhow::anyhow!("user name {e}"))?);
        creds.password = Some(secret(pass, "password")?);
    }
    if let Some(ch) = &profile.static_challenge {
        require_terminal("the profile's static challenge")?;
        let answer = if ch.echo {
            prompt_line(&format!("{}: ", ch.text))?
        } else {
            rpassword::prompt_password(format!("{}: ", ch.text)).context("reading the answer")?
        };
        creds.challenge_response = Some(secret(answer, "challenge answer")?);
    }
    Ok(creds)
}

/// What the profile's proxies ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyNeed {
    None,
    /// `http-proxy ... auto`: only if the proxy answers 407.
    IfAsked,
    /// `http-proxy ... stdin|file` or `socks-proxy ... stdin|file`.
    Always,
}

pub fn proxy_need(profile: &ovpn_profile::Profile) -> ProxyNeed {
    use ovpn_profile::ProxyAuth;
    let mut need = ProxyNeed::None;
    for e in profile.endpoints() {
        let auths = [
            e.options.http_proxy.as_ref().and_then(|h| h.auth.as_ref()),
            e.options.socks_proxy.as_ref().and_then(|s| s.auth.as_ref()),
        ];
        for a in auths.into_iter().flatten() {
            match a {
                ProxyAuth::Auto { .. } if need == ProxyNeed::None => need = ProxyNeed::IfAsked,
                ProxyAuth::Auto { .. } => {}
                ProxyAuth::Prompt | ProxyAuth::Credentials(_) => return ProxyNeed::Always,
            }
        }
    }
    need
}

/// Adds the proxy user name and password the profile asks for: from `file`
/// (`--proxy-auth-file`), else from the terminal. An `auto` proxy gets them only from a
/// file (it may not ask at all).
pub fn gather_proxy(
    profile: &ovpn_profile::Profile,
    file: Option<&Path>,
    creds: &mut Credentials,
) -> anyhow::Result<()> {
    let need = proxy_need(profile);
    let (user, pass) = match (need, file) {
        (ProxyNeed::None, _) | (ProxyNeed::IfAsked, None) => return Ok(()),
        (_, Some(f)) => from_file(f)?,
        (ProxyNeed::Always, None) => {
            if !std::io::stdin().is_terminal() {
                bail!("the profile's proxy needs a user name and password, and stdin is not a terminal (use --proxy-auth-file)");
            }
            let user = prompt_line("Proxy username: ")?;
            let pass = rpassword::prompt_password("Proxy password: ")
                .context("reading the proxy password")?;
            (user, pass)
        }
    };
    creds.proxy_username =
        Some(Username::try_from(user).map_err(|e| anyhow::anyhow!("proxy user name {e}"))?);
    creds.proxy_password = Some(secret(pass, "proxy password")?);
    Ok(())
}

fn from_file(path: &Path) -> anyhow::Result<(String, String)> {
    // The file's text holds the password: wiped once parsed.
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let (user, pass) = ovpn_profile::parse_credentials(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some(pass) = pass else {
        bail!("{}: the second line (password) is missing", path.display());
    };
    Ok((user, pass))
}

fn require_terminal(what: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("{what} needs an answer, and stdin is not a terminal (use --auth-file for user name and password)");
    }
    Ok(())
}

fn from_terminal() -> anyhow::Result<(String, String)> {
    require_terminal("the profile's user name and password")?;
    let user = prompt_line("Username: ")?;
    let pass = rpassword::prompt_password("Password: ").context("reading the password")?;
    Ok((user, pass))
}

pub fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    // It may be an (echoed) challenge answer: wiped after the copy is taken, with room
    // for a long line up front so growing leaves no copy behind in the usual case.
    let mut line = zeroize::Zeroizing::new(String::with_capacity(1024));
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Answer for a challenge the server sends mid-connect.
pub fn challenge_answer(prompt: &str, echo: bool) -> anyhow::Result<Secret> {
    require_terminal("the server's challenge")?;
    let answer = if echo {
        prompt_line(&format!("{prompt}: "))?
    } else {
        rpassword::prompt_password(format!("{prompt}: ")).context("reading the answer")?
    };
    secret(answer, "challenge answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_needs_two_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth");
        std::fs::write(&f, "alice\nsecret\n").unwrap();
        assert_eq!(from_file(&f).unwrap(), ("alice".into(), "secret".into()));
        std::fs::write(&f, "alice\n").unwrap();
        assert!(from_file(&f).unwrap_err().to_string().contains("password"));
    }
}
