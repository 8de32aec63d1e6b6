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

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
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
