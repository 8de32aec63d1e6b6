//! `oxivpnctl connect` when the server wants a browser sign-in or a CR_TEXT answer:
//! print the link (and, with `--json`, an event scripts can act on), open it with the
//! desktop's opener (honouring `$BROWSER`) unless `--no-browser`, and read challenge
//! answers from the terminal, or from stdin when a script pipes them in.

use std::io::{BufRead, IsTerminal};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use ipc::{Secret, SessionId, SignInRequest};
use serde_json::json;

use crate::output::Out;

/// Shows the sign-in link and opens it unless `no_browser`.
pub fn show(out: Out, id: SessionId, req: &SignInRequest, no_browser: bool) {
    let url = req.url.as_str();
    out.result(
        &json!({
            "event": "sign_in",
            "session": id,
            "url": url,
            "host": req.host,
            "timeout_secs": req.timeout_secs,
            "external": req.external,
            "kill_switch_exception": req.kill_switch_exception,
        }),
        || format!("{id}: sign in with your browser: {url}"),
    );
    let mut about = format!("{id}: the link goes to {}", req.host);
    if let Some(t) = req.timeout_secs {
        about.push_str(&format!("; the server waits {t} s for you"));
    }
    out.progress(&about);
    if req.kill_switch_exception {
        out.progress(&format!(
            "{id}: the kill switch lets {} through until the server decides",
            req.host
        ));
    }
    if no_browser {
        return;
    }
    match open(url) {
        Ok(with) => out.progress(&format!("{id}: opened the link with {with}")),
        Err(e) => out.progress(&format!(
            "{id}: could not open a browser ({e:#}); open the link yourself"
        )),
    }
}

/// Starts the browser on `url` (never through a shell: the URL is one argument) and
/// returns what was started. `$BROWSER` is a `:`-separated list of commands, each
/// tried in turn; `%s` in a command stands for the URL, else the URL is appended.
pub fn open(url: &str) -> anyhow::Result<String> {
    // ipc already checked it on decode; check the scheme again right before exec.
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        bail!("only http(s) links are opened");
    }
    let candidates = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => b
            .split(':')
            .filter(|c| !c.trim().is_empty())
            .map(|c| argv_for(c, url))
            .collect::<Vec<_>>(),
        _ => vec![default_opener(url)],
    };
    let mut last = anyhow::anyhow!("no browser command");
    for argv in candidates {
        let Some((prog, args)) = argv.split_first() else {
            continue;
        };
        match Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(mut child) => {
                // Reap it whenever it ends; a browser may outlive us.
                std::thread::spawn(move || child.wait());
                return Ok(prog.clone());
            }
            Err(e) => last = anyhow::Error::new(e).context(format!("starting {prog}")),
        }
    }
    Err(last)
}

fn argv_for(command: &str, url: &str) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    let mut used = false;
    for word in command.split_whitespace() {
        if word.contains("%s") {
            used = true;
            argv.push(word.replace("%s", url));
        } else {
            argv.push(word.to_owned());
        }
    }
    if !used {
        argv.push(url.to_owned());
    }
    argv
}

fn default_opener(url: &str) -> Vec<String> {
    let u = url.to_owned();
    if cfg!(target_os = "macos") {
        vec!["open".into(), u]
    } else if cfg!(windows) {
        vec!["rundll32".into(), "url.dll,FileProtocolHandler".into(), u]
    } else {
        vec!["xdg-open".into(), u]
    }
}

/// A challenge answer: typed on the terminal, or one line from stdin when it is not
/// a terminal (a script answering CR_TEXT).
pub fn challenge_answer(prompt: &str, echo: bool) -> anyhow::Result<Secret> {
    if std::io::stdin().is_terminal() {
        return crate::credentials::challenge_answer(prompt, echo);
    }
    eprintln!("{prompt} (reading the answer from stdin)");
    // Wiped after use (the answer is copied into the Secret); room for a long line up
    // front, so growing leaves no copy behind in the usual case.
    let mut line = zeroize::Zeroizing::new(String::with_capacity(1024));
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the challenge answer from stdin")?;
    if n == 0 {
        bail!("the server asks {prompt:?}, and stdin has no answer (it is not a terminal)");
    }
    Secret::try_from(line.trim_end_matches(['\r', '\n']))
        .map_err(|e| anyhow::anyhow!("the challenge answer {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_command_forms() {
        assert_eq!(
            argv_for("firefox --new-window", "https://a.example/x"),
            ["firefox", "--new-window", "https://a.example/x"]
        );
        assert_eq!(
            argv_for("curl -s %s -o /dev/null", "https://a.example/?q=1&r=2"),
            [
                "curl",
                "-s",
                "https://a.example/?q=1&r=2",
                "-o",
                "/dev/null"
            ]
        );
    }

    #[test]
    fn only_http_links_are_opened() {
        assert!(open("file:///etc/passwd").is_err());
        assert!(open("javascript:alert(1)").is_err());
    }
}
