//! Web sign-in on a plain OpenVPN 2.6 server (TESTBED.md "Web sign-in on a plain 2.6
//! server"): a deferred `auth-user-pass-verify ... via-file` script checks the password,
//! writes `$auth_pending_file` (timeout, method, `WEB_AUTH::URL` or `CR_TEXT:...`) and
//! exits 2; a small sign-in page (Python's http.server, in the server's namespace)
//! writes 1 or 0 into the session's `$auth_control_file` when visited with the right or
//! wrong answer; `client-crresponse` does the same for a CR_TEXT answer. The server
//! issues `auth-gen-token` tokens with a fixed secret, so they survive its restart.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::lab::{addr, write_executable, Lab, Role};
use crate::process::Proc;
use crate::server::{ClientProfile, ClientVariant, ServerHandle, ServerVariant};

/// The sign-in page's port on the server (198.18.0.1).
pub const SIGN_IN_PORT: u16 = 8080;
/// A second listener of the same page on the same host: nothing but the sign-in port
/// may get through the kill switch, so a visit here during sign-in is a leak.
pub const DECOY_PORT: u16 = 8081;
/// The answer the page (and the CR_TEXT check) accepts.
pub const RIGHT_ANSWER: &str = "4242";

/// What the deferred script asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoMethod {
    /// `WEB_AUTH::http://198.18.0.1:8080/signin?state=...`
    WebAuth,
    /// `OPEN_URL:http://...` (the older form).
    OpenUrl,
    /// `CR_TEXT:E,R:...`: the code comes back as CR_RESPONSE.
    CrText,
    /// A `file:` URL a client must refuse.
    FileUrl,
}

/// A running sign-in server: OpenVPN plus the page.
#[derive(Debug)]
pub struct SsoServer {
    pub server: ServerHandle,
    /// Where the page and the scripts keep state (and the page's visit log).
    pub state_dir: PathBuf,
    /// The sign-in page process (owned here; stopped on drop).
    pub page: Proc,
}

const VERIFY: &str = r#"#!/bin/sh
# Deferred auth: password first, then a browser sign-in or a CR_TEXT answer.
user=$(sed -n 1p "$1")
pass=$(sed -n 2p "$1")
[ "$user" = "__USER__" ] && [ "$pass" = "__PASS__" ] || exit 1
echo "IV_SSO=$IV_SSO" >> "__STATE__/iv_sso.log"
case ",$IV_SSO," in *",__IV__,"*) ;; *) exit 1 ;; esac
state=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$auth_control_file" > "__STATE__/$state.control"
printf '%s\n' "$auth_control_file" > "__STATE__/port-$untrusted_port.control"
case "__METHOD__" in
  webauth) extra="WEB_AUTH::http://__HOST__:__PORT__/signin?state=$state" ;;
  openurl) extra="OPEN_URL:http://__HOST__:__PORT__/signin?state=$state" ;;
  crtext) extra="CR_TEXT:E,R:Enter the code from your token" ;;
  fileurl) extra="WEB_AUTH::file:///etc/passwd" ;;
esac
printf '%s\n%s\n%s\n' "__TIMEOUT__" "__IV__" "$extra" > "$auth_pending_file"
echo "pending $state" >> "__STATE__/verify.log"
exit 2
"#;

const CRRESPONSE: &str = r#"#!/bin/sh
# client-crresponse: $1 holds the answer as the client sent it (base64).
raw=$(cat "$1")
answer=$(printf '%s' "$raw" | base64 -d 2>/dev/null) || answer="$raw"
control=$(cat "__STATE__/port-$untrusted_port.control" 2>/dev/null) ||
  control=$(cat "$(ls -t __STATE__/*.control | head -n 1)")
if [ "$answer" = "__ANSWER__" ]; then echo 1 > "$control"; else echo 0 > "$control"; fi
echo "crresponse $answer" >> "__STATE__/verify.log"
"#;

const PAGE: &str = r#"
import http.server, os, sys, urllib.parse
state_dir, answer, host = sys.argv[1], sys.argv[2], sys.argv[3]
ports = [int(p) for p in sys.argv[4:]]

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        port = self.server.server_address[1]
        with open(os.path.join(state_dir, "visits.log"), "a") as f:
            f.write("%d %s\n" % (port, u.path + ("?" + u.query if u.query else "")))
        state = q.get("state", [""])[0]
        given = q.get("answer", [None])[0]
        body = "<html><body><form>Code: <input name=answer><input type=hidden name=state value=%s></form></body></html>" % state
        if given is not None and state.isalnum():
            path = os.path.join(state_dir, state + ".control")
            try:
                control = open(path).read().strip()
                with open(control, "w") as f:
                    f.write("1" if given == answer else "0")
                body = "signed in" if given == answer else "denied"
            except OSError:
                body = "unknown session"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass

import threading
servers = [http.server.ThreadingHTTPServer((host, p), Page) for p in ports]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("sign-in page ready", flush=True)
servers[0].serve_forever()
"#;

/// Options of the sign-in server.
#[derive(Debug, Clone)]
pub struct SsoOptions {
    pub method: SsoMethod,
    /// The timeout written into the pending file (seconds).
    pub timeout_secs: u32,
    /// `auth-gen-token` lifetime in seconds (0 = as long as the session).
    pub token_lifetime: u32,
    /// The sign-in page's port ([`SIGN_IN_PORT`]; its decoy listens on the next one).
    /// Another port lets two sign-in servers run in one lab.
    pub page_port: u16,
}

impl Default for SsoOptions {
    fn default() -> Self {
        Self {
            method: SsoMethod::WebAuth,
            timeout_secs: 60,
            token_lifetime: 0,
            page_port: SIGN_IN_PORT,
        }
    }
}

impl Lab {
    /// Starts OpenVPN 2.6 with the deferred sign-in script and the sign-in page.
    pub fn start_sso_server(&mut self, opts: &SsoOptions) -> anyhow::Result<SsoServer> {
        let variant = ServerVariant {
            user_pass: true,
            ..ServerVariant::default()
        };
        let n = self.servers_started;
        let state_dir = self.dir().join(format!("sso{n}"));
        std::fs::create_dir_all(&state_dir)?;
        let (iv, method) = match opts.method {
            SsoMethod::WebAuth => ("webauth", "webauth"),
            SsoMethod::OpenUrl => ("openurl", "openurl"),
            SsoMethod::CrText => ("crtext", "crtext"),
            SsoMethod::FileUrl => ("webauth", "fileurl"),
        };
        let state = state_dir.to_string_lossy().into_owned();
        let verify = VERIFY
            .replace("__USER__", crate::server::USERNAME)
            .replace("__PASS__", crate::server::PASSWORD)
            .replace("__STATE__", &state)
            .replace("__IV__", iv)
            .replace("__METHOD__", method)
            .replace("__HOST__", addr::SERVER)
            .replace("__PORT__", &opts.page_port.to_string())
            .replace("__TIMEOUT__", &opts.timeout_secs.to_string());
        let crresponse = CRRESPONSE
            .replace("__STATE__", &state)
            .replace("__ANSWER__", RIGHT_ANSWER);
        let verify_path = state_dir.join("sso-verify.sh");
        let cr_path = state_dir.join("sso-crresponse.sh");
        write_executable(&verify_path, &verify)?;
        write_executable(&cr_path, &crresponse)?;
        let token_key = state_dir.join("auth-token.key");
        crate::cmd::run(
            std::process::Command::new("openvpn")
                .args(["--genkey", "auth-token"])
                .arg(&token_key),
        )
        .context("openvpn --genkey auth-token")?;
        let extra = format!(
            "auth-user-pass-verify {} via-file\nclient-crresponse {}\nauth-gen-token {}\nauth-gen-token-secret {}\n",
            verify_path.display(),
            cr_path.display(),
            opts.token_lifetime,
            token_key.display()
        );
        let server = self.start_server_with(&variant, |text| {
            // Our deferred script instead of the password-only one.
            text.replace("auth-user-pass-verify verify.sh via-file\n", &extra)
        })?;
        let page_path = state_dir.join("signin_page.py");
        std::fs::write(&page_path, PAGE)?;
        let argv = [
            "python3".to_owned(),
            page_path.to_string_lossy().into_owned(),
            state.clone(),
            RIGHT_ANSWER.to_owned(),
            addr::SERVER.to_owned(),
            opts.page_port.to_string(),
            (opts.page_port + 1).to_string(),
        ];
        let mut page = self.spawn(Role::Srv, &argv, &format!("signin-page{n}"))?;
        page.wait_for_log("sign-in page ready", Duration::from_secs(10))?;
        Ok(SsoServer {
            server,
            state_dir,
            page,
        })
    }

    /// The profile for a sign-in server: user name and password (from `--auth-file`),
    /// full tunnel in the profile itself, so the kill switch is on from the start.
    pub fn sso_profile(&self, sso: &SsoServer, name: &str) -> anyhow::Result<ClientProfile> {
        let client = ClientVariant {
            extra: vec!["redirect-gateway def1 bypass-dhcp".into()],
            ..ClientVariant::default()
        };
        self.write_client_profile(&sso.server, &client, name)
    }
}

impl SsoServer {
    /// Lines of the page's visit log: `<port> <path?query>`.
    pub fn visits(&self) -> Vec<String> {
        std::fs::read_to_string(self.state_dir.join("visits.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many times the deferred script asked for a sign-in.
    pub fn pending_count(&self) -> usize {
        std::fs::read_to_string(self.state_dir.join("verify.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("pending "))
            .count()
    }

    /// The IV_SSO values clients announced.
    pub fn announced_iv_sso(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("iv_sso.log")).unwrap_or_default()
    }

    /// CR_TEXT answers the server's crresponse script received.
    pub fn cr_answers(&self) -> Vec<String> {
        std::fs::read_to_string(self.state_dir.join("verify.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("crresponse ").map(str::to_owned))
            .collect()
    }

    /// Waits until the script has been asked `n` times for a sign-in.
    pub fn wait_pending(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.pending_count() < n {
            if Instant::now() >= deadline {
                bail!(
                    "the server asked for {} sign-ins, not {n}",
                    self.pending_count()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// A test "browser" for `$BROWSER`: records each URL it is given, checks that the
/// decoy port on the sign-in host stays blocked, then visits the URL with `answer`.
pub fn browser_script(dir: &std::path::Path, answer: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("browser-{answer}.sh"));
    let log = dir.join("browser.log");
    let text = format!(
        r#"#!/bin/sh
url="$1"
echo "open $url" >> "{log}"
if curl -s --max-time 2 -o /dev/null "http://{host}:{decoy}/leak-probe"; then
  echo "decoy reachable" >> "{log}"
else
  echo "decoy blocked" >> "{log}"
fi
if curl -s --max-time 5 "$url&answer={answer}" >> "{log}"; then echo >> "{log}"; else echo "visit failed" >> "{log}"; fi
"#,
        log = log.display(),
        host = addr::SERVER,
        decoy = DECOY_PORT,
    );
    write_executable(&path, &text)?;
    Ok(path)
}

/// What the test browsers wrote.
pub fn browser_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("browser.log")).unwrap_or_default()
}
