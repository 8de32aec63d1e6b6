//! Browser sign-in (issue 15) end to end, root only: a real OpenVPN 2.6 server with a
//! deferred auth script and a sign-in page in the lab, the helper service in the
//! client namespace with the kill switch on (full-tunnel profile), and `oxivpnctl
//! connect` with `$BROWSER` set to a test "browser" that visits the link with the
//! right or wrong answer. Transcripts are printed (`--nocapture`) for the issue note.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use oxivpn_e2e::{
    addr, browser_log, browser_script, root_or_skip, Lab, LabConfig, Proc, Role, Signal, SsoMethod,
    SsoOptions, SsoServer, RIGHT_ANSWER,
};

struct Bench {
    lab: Lab,
    sso: SsoServer,
    sock: PathBuf,
    data: PathBuf,
    auth: PathBuf,
}

fn helper_bin() -> Option<PathBuf> {
    let h = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    h.exists().then_some(h)
}

/// Lab + sign-in server + helper service + the imported profile `lab`.
fn bench(test: &str, opts: SsoOptions) -> Option<Bench> {
    if !root_or_skip(test) {
        return None;
    }
    let Some(helper) = helper_bin() else {
        eprintln!("SKIPPED {test}: oxivpn-helper not built next to oxivpnctl (cargo build -p oxivpn-helper)");
        return None;
    };
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let sso = lab.start_sso_server(&opts).unwrap();
    let profile = lab.sso_profile(&sso, "client").unwrap();
    let service = lab.start_helper_service(&helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    let b = Bench {
        auth: profile.auth_file.clone().unwrap(),
        lab,
        sso,
        sock,
        data,
    };
    ok(&b.ctl(
        &["import", profile.path.to_str().unwrap(), "--name", "lab"],
        None,
        None,
    ));
    Some(b)
}

impl Bench {
    /// `oxivpnctl` inside the client namespace (the browser it starts must reach the
    /// sign-in page from where the user is).
    fn ctl(&self, args: &[&str], browser: Option<&Path>, stdin: Option<&str>) -> Output {
        let mut cmd = self
            .lab
            .ns(Role::Cli)
            .unwrap()
            .cmd(env!("CARGO_BIN_EXE_oxivpnctl"));
        cmd.args(args)
            .env("OXIVPN_SOCKET", &self.sock)
            .env("XDG_DATA_HOME", &self.data)
            .env_remove("BROWSER")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(b) = browser {
            cmd.env("BROWSER", b);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn connect(&self, extra: &[&str], browser: Option<&Path>, stdin: Option<&str>) -> Output {
        let mut args = vec!["connect", "lab", "--auth-file", self.auth.to_str().unwrap()];
        args.extend(extra);
        self.ctl(&args, browser, stdin)
    }

    fn nft(&self) -> String {
        let out = self
            .lab
            .ns(Role::Cli)
            .unwrap()
            .cmd("nft")
            .args(["list", "tables"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn http_reachable(&self, port: u16) -> bool {
        self.lab
            .ns(Role::Cli)
            .unwrap()
            .cmd("curl")
            .args(["-s", "--max-time", "2", "-o", "/dev/null"])
            .arg(format!("http://{}:{port}/probe", addr::SERVER))
            .status()
            .unwrap()
            .success()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    text(o)
}

fn transcript(title: &str, o: &Output) {
    println!("==== {title} (exit {})\n{}", o.status, text(o));
}

fn opens(dir: &Path) -> usize {
    browser_log(dir)
        .lines()
        .filter(|l| l.starts_with("open "))
        .count()
}

/// Sign-in accepted -> connected with the kill switch on; only the sign-in host:port
/// got through while the server waited; the URL never reached another user; then the
/// server restarts and the client comes back with the auth-token, without a browser.
#[test]
fn sso_sign_in_connects_and_token_survives_server_restart() {
    let Some(mut b) = bench(
        "sso_sign_in_connects_and_token_survives_server_restart",
        SsoOptions::default(),
    ) else {
        return;
    };
    let dir = b.lab.dir().to_owned();
    let browser = browser_script(&dir, RIGHT_ANSWER).unwrap();

    // Another (non-root) user of the helper group follows every event it may see.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // (The socket is a path: no need to enter the client namespace.)
    let mut watch = Command::new(env!("CARGO_BIN_EXE_oxivpnctl"));
    {
        use std::os::unix::process::CommandExt;
        watch.uid(65534).gid(0);
    }
    watch
        .args(["--json", "logs", "--follow"])
        .env("OXIVPN_SOCKET", &b.sock)
        .env("XDG_DATA_HOME", dir.join("other-user"));
    let mut other =
        Proc::spawn(watch, "other-user-logs", &dir.join("other-user-logs.log")).unwrap();

    let t0 = Instant::now();
    let out = b.connect(&["--timeout", "60"], Some(&browser), None);
    let first_connect = t0.elapsed();
    transcript("oxivpnctl connect (sign-in accepted)", &out);
    let shown = ok(&out);
    assert!(
        shown.contains("sign in with your browser: http://198.18.0.1:8080/signin?state="),
        "{shown}"
    );
    assert!(shown.contains("connected"), "{shown}");
    assert!(
        shown.contains("kill switch lets 198.18.0.1 through"),
        "{shown}"
    );
    let log = browser_log(&dir);
    println!("==== test browser log\n{log}");
    assert_eq!(opens(&dir), 1, "{log}");
    assert!(log.contains("signed in"), "{log}");
    // While the server waited: the sign-in port was reachable, the same host's other
    // port was not (the exception is the URL's host:port only).
    assert!(log.contains("decoy blocked"), "{log}");
    assert!(
        b.sso.visits().iter().all(|v| !v.starts_with("8081 ")),
        "{:?}",
        b.sso.visits()
    );
    assert!(b
        .sso
        .announced_iv_sso()
        .contains("IV_SSO=webauth,openurl,crtext"));
    assert!(b.nft().contains("inet oxivpn"), "the kill switch is not on");
    assert!(b.lab.reachable(Role::Cli, addr::TARGET));
    // Connected: the exception is gone (the sign-in host is outside the tunnel).
    assert!(!b.http_reachable(oxivpn_e2e::SIGN_IN_PORT));

    // The other user never saw the link (and was really connected all along).
    std::thread::sleep(Duration::from_millis(300));
    assert!(other.try_status().is_none(), "{}", other.log());
    other.signal(Signal::SIGTERM).unwrap();
    let _ = other.wait_exit(Duration::from_secs(5));
    let seen = other.log();
    assert!(!seen.contains("signin?state"), "{seen}");
    assert!(!seen.contains("sign_in"), "{seen}");
    assert!(!seen.contains("error"), "{seen}");

    // Server restart (SIGHUP: it tells clients RESTART, reloads, keeps its token key).
    let pending_before = b.sso.pending_count();
    b.sso.server.signal(&mut b.lab, Signal::SIGHUP).unwrap();
    let restarted = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let deadline = restarted + Duration::from_secs(60);
    while !b.lab.reachable(Role::Cli, addr::TARGET) {
        assert!(Instant::now() < deadline, "no reconnect within 60 s");
    }
    let back = restarted.elapsed();
    assert_eq!(
        opens(&dir),
        1,
        "a browser was opened again: {}",
        browser_log(&dir)
    );
    assert_eq!(
        b.sso.pending_count(),
        pending_before,
        "the server asked for a sign-in again"
    );
    let server_log = b.sso.server.log(&b.lab);
    assert!(
        server_log.contains("auth-token") || server_log.contains("Auth-token"),
        "{server_log}"
    );
    println!(
        "SSO-FIGURE first connect with browser sign-in: {:.2} s; reconnect after server restart with the auth-token: {:.2} s, browsers opened: 0, sign-ins asked: 0",
        first_connect.as_secs_f64(),
        back.as_secs_f64()
    );
    ok(&b.ctl(&["disconnect", "lab"], None, None));
}

/// Sign-in denied (wrong answer on the page): a clear failure, and nothing remembered
/// (the next connect asks for a sign-in again).
#[test]
fn sso_sign_in_denied_fails_clearly() {
    let Some(b) = bench("sso_sign_in_denied_fails_clearly", SsoOptions::default()) else {
        return;
    };
    let dir = b.lab.dir().to_owned();
    let wrong = browser_script(&dir, "0000").unwrap();
    let out = b.connect(&["--timeout", "60"], Some(&wrong), None);
    transcript("oxivpnctl connect (sign-in denied)", &out);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("authentication failed"), "{t}");
    assert!(browser_log(&dir).contains("denied"));
    let status = ok(&b.ctl(&["status"], None, None));
    assert!(status.contains("no sessions"), "{status}");
    // Nothing kept: a new connect signs in again.
    let right = browser_script(&dir, RIGHT_ANSWER).unwrap();
    let out = b.connect(&["--timeout", "60"], Some(&right), None);
    ok(&out);
    assert_eq!(b.sso.pending_count(), 2);
    assert_eq!(opens(&dir), 2);
    ok(&b.ctl(&["disconnect", "lab"], None, None));
}

/// Nobody signs in: the server's timeout ends it with a clear message. `--no-browser`
/// opens nothing; `--json` gives scripts the link.
#[test]
fn sso_timeout_fails_clearly_and_json_has_the_link() {
    let Some(b) = bench(
        "sso_timeout_fails_clearly_and_json_has_the_link",
        SsoOptions {
            timeout_secs: 6,
            ..SsoOptions::default()
        },
    ) else {
        return;
    };
    let dir = b.lab.dir().to_owned();
    let browser = browser_script(&dir, RIGHT_ANSWER).unwrap();
    let t0 = Instant::now();
    let out = b.connect(&["--timeout", "60", "--no-browser"], Some(&browser), None);
    let took = t0.elapsed();
    transcript("oxivpnctl connect --no-browser (nobody signs in)", &out);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("did not confirm the sign-in within 6 s") || t.contains("authentication failed"),
        "{t}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(opens(&dir), 0, "--no-browser opened one");

    // --json: the sign-in event carries the link.
    let out = b.ctl(
        &[
            "--json",
            "connect",
            "lab",
            "--auth-file",
            b.auth.to_str().unwrap(),
            "--no-browser",
            "--timeout",
            "60",
        ],
        None,
        None,
    );
    transcript("oxivpnctl --json connect --no-browser", &out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ev: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "sign_in")
        .unwrap_or_else(|| panic!("no sign_in event in {stdout}"));
    assert!(ev["url"]
        .as_str()
        .unwrap()
        .starts_with("http://198.18.0.1:8080/signin?state="));
    assert_eq!(ev["host"], "198.18.0.1");
    assert_eq!(ev["timeout_secs"], 6);
}

/// CR_TEXT: the server's question is asked, the answer (piped in) goes back as
/// CR_RESPONSE on the same session and the server lets us in.
#[test]
fn sso_cr_text_answered() {
    let Some(b) = bench(
        "sso_cr_text_answered",
        SsoOptions {
            method: SsoMethod::CrText,
            ..SsoOptions::default()
        },
    ) else {
        return;
    };
    let out = b.connect(
        &["--timeout", "60"],
        None,
        Some(&format!("{RIGHT_ANSWER}\n")),
    );
    transcript("oxivpnctl connect (CR_TEXT)", &out);
    let t = ok(&out);
    assert!(t.contains("Enter the code from your token"), "{t}");
    assert_eq!(b.sso.cr_answers(), vec![RIGHT_ANSWER.to_owned()]);
    assert!(b.lab.reachable(Role::Cli, addr::TARGET));
    ok(&b.ctl(&["disconnect", "lab"], None, None));
}

/// A `file:` link from the server is refused with a message and never opened.
#[test]
fn sso_file_url_refused() {
    let Some(b) = bench(
        "sso_file_url_refused",
        SsoOptions {
            method: SsoMethod::FileUrl,
            timeout_secs: 5,
            ..SsoOptions::default()
        },
    ) else {
        return;
    };
    let dir = b.lab.dir().to_owned();
    let browser = browser_script(&dir, RIGHT_ANSWER).unwrap();
    let out = b.connect(&["--timeout", "60"], Some(&browser), None);
    transcript("oxivpnctl connect (server sends a file: URL)", &out);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("refused"), "{t}");
    assert!(t.contains("\"file\""), "{t}");
    assert_eq!(opens(&dir), 0);
}
