//! The helper's access rules with real uids (root only): who may connect, who may
//! stop whose session, and that a profile sent straight over IPC cannot make the
//! helper run anything.
//!
//! Clients run as throwaway users: this test binary re-executes itself under
//! `setpriv --reuid/--regid/--init-groups`, and the `child_client` entry point
//! (inert unless `OXIVPN_TEST_CHILD` is set) speaks IPC and prints its results.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const CHILD_ENV: &str = "OXIVPN_TEST_CHILD";
const RESULT_PREFIX: &str = "CHILD-RESULT ";

/// Entry point for the re-executed client; does nothing in a normal test run.
#[test]
fn child_client() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let socket = Path::new(spec["socket"].as_str().unwrap());
        let mut client = match ipc::Client::connect(socket, "service-test").await {
            Ok(c) => c,
            Err(e) => {
                let v = match e {
                    ipc::ClientError::Refused(err) => json!({ "refused": err }),
                    ipc::ClientError::Connect { source, .. } => {
                        json!({ "connect_failed": format!("{:?}", source.kind()) })
                    }
                    other => json!({ "client": other.to_string() }),
                };
                println!("{RESULT_PREFIX}{v}");
                return;
            }
        };
        println!(
            "{RESULT_PREFIX}{}",
            json!({ "hello_uid": client.server_hello().peer_uid })
        );
        let mut events = client.take_events().unwrap();
        for op in spec["ops"].as_array().unwrap() {
            // Not a request: wait, then report the events this connection received.
            if let Some(ms) = op.get("collect_events_ms").and_then(Value::as_u64) {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                let mut got = Vec::new();
                while let Ok(e) = events.try_recv() {
                    got.push(e);
                }
                println!("{RESULT_PREFIX}{}", json!({ "events": got }));
                continue;
            }
            // Not a request: open (and hold) this many more connections.
            if let Some(n) = op.get("open_connections").and_then(Value::as_u64) {
                let (mut held, mut limited) = (Vec::new(), 0);
                for _ in 0..n {
                    match ipc::Client::connect(socket, "many").await {
                        Ok(c) => held.push(c),
                        Err(ipc::ClientError::Refused(ipc::IpcError::LimitReached { .. })) => {
                            limited += 1
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                println!(
                    "{RESULT_PREFIX}{}",
                    json!({ "opened": held.len(), "limited": limited })
                );
                continue;
            }
            // Not a request: connect, ask for the status, report how long it took.
            if op.get("timed_status").is_some() {
                let t = std::time::Instant::now();
                let r = tokio::time::timeout(Duration::from_secs(10), async {
                    let c = ipc::Client::connect(socket, "timed").await?;
                    c.status().await
                })
                .await;
                let ms = u64::try_from(t.elapsed().as_millis()).unwrap();
                let ok = matches!(r, Ok(Ok(_)));
                println!("{RESULT_PREFIX}{}", json!({ "status_ms": ms, "ok": ok }));
                continue;
            }
            // Not a request: a connect flood for `flood_secs`, holding up to `hold` raw
            // connections that never say hello (idle), counting what the kernel refused.
            if let Some(secs) = op.get("flood_secs").and_then(Value::as_u64) {
                let hold = usize::try_from(op["hold"].as_u64().unwrap()).unwrap();
                let end = std::time::Instant::now() + Duration::from_secs(secs);
                let (mut held, mut attempts) = (Vec::new(), 0u64);
                let mut errors = std::collections::BTreeMap::<String, u64>::new();
                println!("{RESULT_PREFIX}{}", json!({ "flooding": true }));
                while std::time::Instant::now() < end {
                    attempts += 1;
                    match tokio::net::UnixStream::connect(socket).await {
                        Ok(s) if held.len() < hold => held.push(s),
                        Ok(_) => {}
                        Err(e) => *errors.entry(format!("{:?}", e.kind())).or_default() += 1,
                    }
                    if attempts % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                println!(
                    "{RESULT_PREFIX}{}",
                    json!({ "attempts": attempts, "errors": errors })
                );
                continue;
            }
            let req: ipc::Request = serde_json::from_value(op.clone()).unwrap();
            let v = match client.request(req).await {
                Ok(r) => json!({ "ok": r }),
                Err(ipc::ClientError::Helper(e)) => json!({ "err": e }),
                Err(e) => json!({ "client": e.to_string() }),
            };
            println!("{RESULT_PREFIX}{v}");
        }
    });
}

/// Runs `ops` (ipc::Request values in their wire form) as `who` and returns one
/// JSON value per line the child printed.
fn as_user(exe: &Path, who: &str, socket: &Path, ops: Value) -> Vec<Value> {
    let spec = json!({ "socket": socket, "ops": ops });
    let out = Command::new("setpriv")
        .arg(format!("--reuid={}", user_name(who)))
        .arg(format!("--regid={}", user_name(who)))
        .arg("--init-groups")
        .arg(exe)
        .args(["child_client", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child as {who} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once(RESULT_PREFIX).map(|(_, v)| v))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn connect_op(name: &str, text: &str) -> Value {
    json!({ "connect": { "profile_name": name, "profile_text": text } })
}

/// A copy of this test binary that every user may execute (the build directory may
/// sit under a home directory others cannot enter).
fn exe_copy(dir: &Path) -> std::path::PathBuf {
    let dst = dir.join("service-test-client");
    std::fs::copy(std::env::current_exe().unwrap(), &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

async fn root_client(socket: &Path) -> ipc::Client {
    ipc::Client::connect(socket, "service-test-root")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_session_ownership() {
    if !is_root() {
        skip_notice("users_groups_and_session_ownership");
        return;
    }
    let dir = OpenDir::new();
    let accounts = Accounts::create("", &["a", "b"], &["n"]);
    let exe = exe_copy(dir.path());
    let mut helper = Helper::start(dir.path(), "main", &accounts.group, &[]);
    let sock = helper.socket.clone();
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");

    // Member a: hello carries a's uid; a starts a session.
    let r = as_user(
        &exe,
        "a",
        &sock,
        json!(["status", connect_op("work", PROFILE_OK), "list_sessions"]),
    );
    assert_eq!(r[0]["hello_uid"], uid_of("a"), "{r:?}");
    assert_eq!(r[1]["ok"]["status"]["peer_uid"], uid_of("a"), "{r:?}");
    let started = &r[2]["ok"]["started"];
    assert_eq!(started["owner_uid"], uid_of("a"), "{r:?}");
    assert_eq!(started["profile_name"], "work");
    let a_session = started["id"].as_u64().unwrap();
    assert_eq!(r[3]["ok"]["sessions"][0]["id"], a_session);

    // Member b does not see a's session at all, and cannot stop it.
    let r = as_user(
        &exe,
        "b",
        &sock,
        json!([
            "list_sessions",
            { "disconnect": { "session": a_session } },
            { "answer_challenge": { "session": a_session, "response": "x" } },
            "list_sessions"
        ]),
    );
    assert_eq!(
        r[1]["ok"]["sessions"],
        json!([]),
        "b must not see a's session: {r:?}"
    );
    assert_eq!(
        r[2]["err"]["not_your_session"]["session"], a_session,
        "{r:?}"
    );
    assert_eq!(
        r[3]["err"]["not_your_session"]["session"], a_session,
        "{r:?}"
    );
    assert_eq!(r[4]["ok"]["sessions"], json!([]), "{r:?}");
    // Root sees every session, with its name.
    let root = root_client(&sock).await;
    let all_sessions = root.list_sessions().await.unwrap();
    assert!(
        all_sessions
            .iter()
            .any(|s| s.id.0 == a_session
                && s.profile_name.as_ref().map(|n| n.as_str()) == Some("work")),
        "{all_sessions:?}"
    );
    drop(root);

    // Logs and stage events: b's subscription (history included) carries nothing of
    // a's session; a's own carries its stages and log lines.
    let all = json!({ "subscribe": { "events": true, "stats": true, "logs": true } });
    let r = as_user(
        &exe,
        "b",
        &sock,
        json!([all.clone(), { "collect_events_ms": 300 }]),
    );
    assert_eq!(r[1]["ok"], "subscribed", "{r:?}");
    assert_eq!(r[2]["events"], json!([]), "b saw a's events: {r:?}");
    let r = as_user(&exe, "a", &sock, json!([all, { "collect_events_ms": 300 }]));
    let evs = r[2]["events"].as_array().unwrap();
    assert!(
        evs.iter()
            .any(|e| e["session"] == a_session && e["body"].get("log").is_some()),
        "a must see its own log lines: {r:?}"
    );

    // One member cannot take every connection slot: 32 per uid (this child's first
    // connection included); the slots come back when the client goes.
    let r = as_user(&exe, "b", &sock, json!([{ "open_connections": 40 }]));
    assert_eq!(r[1], json!({ "opened": 31, "limited": 9 }), "{r:?}");
    let r = as_user(&exe, "b", &sock, json!(["status"]));
    assert_eq!(r[1]["ok"]["status"]["peer_uid"], uid_of("b"), "{r:?}");

    // A non-member cannot even open the 0660 socket.
    let r = as_user(&exe, "n", &sock, json!(["status"]));
    assert_eq!(r[0]["connect_failed"], "PermissionDenied", "{r:?}");

    // Scripts and plugins sent straight over IPC (no CLI in between) are refused
    // with their line; so is a file reference.
    let r = as_user(
        &exe,
        "a",
        &sock,
        json!([
            connect_op("evil", "client\nremote 127.0.0.1 1\nup /bin/sh\n"),
            connect_op(
                "evil2",
                "client\n# comment\nremote 127.0.0.1 1\nplugin /tmp/x.so\n"
            ),
            connect_op("evil3", "client\nca /etc/shadow\n"),
            connect_op("evil4", "client\nscript-security 2\n"),
        ]),
    );
    let refused = |v: &Value| {
        (
            v["err"]["profile_refused"]["line"].as_u64(),
            v["err"]["profile_refused"]["directive"]
                .as_str()
                .map(str::to_owned),
        )
    };
    assert_eq!(refused(&r[1]), (Some(3), Some("up".into())), "{r:?}");
    assert_eq!(refused(&r[2]), (Some(4), Some("plugin".into())), "{r:?}");
    assert_eq!(refused(&r[3]), (Some(2), Some("ca".into())), "{r:?}");
    assert_eq!(
        refused(&r[4]),
        (Some(2), Some("script-security".into())),
        "{r:?}"
    );

    // Root sees everything and may stop a's session.
    let root = root_client(&sock).await;
    let all = root.list_sessions().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].profile_name.as_ref().unwrap().as_str(), "work");
    root.disconnect(ipc::SessionId(a_session)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !root.list_sessions().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "session did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // With the file mode opened up, the peer-credential check alone keeps the
    // non-member out, and says why.
    let mut wide = Helper::start(
        dir.path(),
        "wide",
        &accounts.group,
        &["--socket-mode", "666"],
    );
    let r = as_user(&exe, "n", &wide.socket, json!(["status"]));
    assert_eq!(
        r[0]["refused"]["not_authorized"]["uid"],
        uid_of("n"),
        "{r:?}"
    );
    let r = as_user(&exe, "b", &wide.socket, json!(["status"]));
    assert_eq!(r[1]["ok"]["status"]["peer_uid"], uid_of("b"), "{r:?}");

    assert!(helper.alive() && wide.alive());
}

/// Fair admission (issue 17): one member holding every connection it may plus a connect
/// flood must not keep another member's `status` from answering within 1 s, nor root's
/// disconnect. The bound is a hang guard against starvation, not a benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_member_does_not_starve_the_others() {
    if !is_root() {
        skip_notice("a_flooding_member_does_not_starve_the_others");
        return;
    }
    let dir = OpenDir::new();
    let accounts = Accounts::create("f", &["fa", "fb"], &[]);
    let exe = exe_copy(dir.path());
    let mut helper = Helper::start(dir.path(), "fair", &accounts.group, &[]);
    let sock = helper.socket.clone();

    // a has a session root will stop during the flood.
    let r = as_user(&exe, "fa", &sock, json!([connect_op("work", PROFILE_OK)]));
    let a_session = r[1]["ok"]["started"]["id"].as_u64().unwrap();

    // b floods for 8 s in the background, holding up to 900 idle connections.
    let spec = json!({ "socket": sock, "ops": [{ "flood_secs": 8, "hold": 900 }] });
    let mut flood = Command::new("setpriv")
        .arg(format!("--reuid={}", user_name("fb")))
        .arg(format!("--regid={}", user_name("fb")))
        .arg("--init-groups")
        .arg(&exe)
        .args(["child_client", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(flood.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("flooding") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "flood child ended early"
        );
    }
    // Let the flood fill what it can.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let r = as_user(
        &exe,
        "fa",
        &sock,
        json!([{ "timed_status": 1 }, { "timed_status": 1 }, { "timed_status": 1 }]),
    );
    for v in &r[1..] {
        assert_eq!(v["ok"], true, "{r:?}");
        assert!(v["status_ms"].as_u64().unwrap() < 1000, "a starved: {r:?}");
    }
    let t = Instant::now();
    let root = root_client(&sock).await;
    root.disconnect(ipc::SessionId(a_session)).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "root's disconnect took {:?}",
        t.elapsed()
    );
    drop(root);

    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(flood.wait().unwrap().success(), "{rest}");
    let result: Value = rest
        .lines()
        .filter_map(|l| l.split_once(RESULT_PREFIX).map(|(_, v)| v))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v.get("attempts").is_some())
        .unwrap_or_else(|| panic!("no flood result: {rest}"));
    eprintln!("flood by one member: {result}; the other member's status: {r:?}");
    assert!(result["attempts"].as_u64().unwrap() > 900, "{result}");
    assert!(helper.alive(), "helper died");
}

/// Kill switch ownership (issue 17): the kill switch belongs to the session that turned it
/// on; another user's connect is refused naming that session; the owner or root lifts it
/// by disconnecting that session, and then others may connect. (The stand-in tunnel keeps
/// the one-holder rule without touching the firewall; the firewall itself is
/// service_killswitch.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_belongs_to_its_session() {
    if !is_root() {
        skip_notice("the_kill_switch_belongs_to_its_session");
        return;
    }
    let dir = OpenDir::new();
    let accounts = Accounts::create("k", &["ka", "kb"], &[]);
    let exe = exe_copy(dir.path());
    let mut helper = Helper::start(dir.path(), "ks", &accounts.group, &[]);
    let sock = helper.socket.clone();
    let guarded = format!("{PROFILE_OK}redirect-gateway def1\n");

    let r = as_user(&exe, "ka", &sock, json!([connect_op("full", &guarded)]));
    let a_session = r[1]["ok"]["started"]["id"].as_u64().unwrap();
    // The switch is claimed at the session's first attempt.
    let root = root_client(&sock).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        let r = as_user(&exe, "kb", &sock, json!([connect_op("mine", PROFILE_OK)]));
        if let Some(e) = r[1].get("err") {
            break e.clone();
        }
        // Too early: that session started before a's claimed the switch; stop it.
        let id = r[1]["ok"]["started"]["id"].as_u64().unwrap();
        root.disconnect(ipc::SessionId(id)).await.unwrap();
        assert!(
            Instant::now() < deadline,
            "a's kill switch never held: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        refusal["kill_switch_held"]["session"], a_session,
        "{refusal}"
    );
    let message: ipc::IpcError = serde_json::from_value(refusal.clone()).unwrap();
    assert!(
        message
            .to_string()
            .contains(&format!("disconnect session s{a_session} first")),
        "{message}"
    );

    // b cannot lift it: a's session is not b's to stop.
    let r = as_user(
        &exe,
        "kb",
        &sock,
        json!([{ "disconnect": { "session": a_session } }]),
    );
    assert_eq!(
        r[1]["err"]["not_your_session"]["session"], a_session,
        "{r:?}"
    );

    // Root can; then b connects.
    root.disconnect(ipc::SessionId(a_session)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = as_user(&exe, "kb", &sock, json!([connect_op("mine", PROFILE_OK)]));
        if r[1].get("ok").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after root's disconnect: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The owner lifts its own: a's next guarded session, stopped by a, frees it for b.
    for s in root.list_sessions().await.unwrap() {
        root.disconnect(s.id).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !root.list_sessions().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "sessions did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = as_user(&exe, "ka", &sock, json!([connect_op("full", &guarded)]));
    let a2 = r[1]["ok"]["started"]["id"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = as_user(&exe, "kb", &sock, json!([connect_op("mine", PROFILE_OK)]));
    assert_eq!(r[1]["err"]["kill_switch_held"]["session"], a2, "{r:?}");
    let r = as_user(
        &exe,
        "ka",
        &sock,
        json!([{ "disconnect": { "session": a2 } }]),
    );
    assert!(r[1].get("ok").is_some(), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = as_user(&exe, "kb", &sock, json!([connect_op("mine", PROFILE_OK)]));
        if r[1].get("ok").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after a's disconnect: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(helper.alive());
}
