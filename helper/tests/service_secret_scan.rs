//! After a session ends, none of its secrets is left in the helper's memory (root only).
//!
//! The lab's OpenVPN 2.6 server wants a client certificate (inline `<key>` in the
//! profile), a user name and password with a static-challenge answer (`SCRV1`), and
//! pushes an `auth-gen-token` token. The password and the answer carry random markers;
//! the token's session id is read on the server side (the verify script's
//! `$session_id`, the 16 characters after `SESS_ID_AT_` of every token of the session).
//! The test is the app: it connects over IPC, disconnects, waits until the helper has
//! forgotten the session, then reads every private writable mapping of the helper
//! (heap, thread stacks, anonymous maps) through `/proc/PID/maps` + `/proc/PID/mem`.
//!
//! Not vacuous: while the session is up the same scan must find the password, the
//! answer, the token and the key (the helper keeps them for reconnects), and after it
//! ends it must still find a string the helper keeps for its whole life (its socket
//! path).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab_support;

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use base64::Engine;
use ipc::{ConnectOptions, ConnectRequest, Credentials, ProfileName, ProfileText, Secret};
use lab_support::{disconnect_and_wait, start_service, wait_stage, Events};
use oxivpn_e2e::{root_or_skip, ClientVariant, Lab, LabConfig, ServerVariant};

const VERIFY: &str = r#"#!/bin/sh
# via-file: $1 holds the user name and the password on two lines.
user=$(sed -n 1p "$1")
pass=$(sed -n 2p "$1")
b64() { printf %s "$1" | base64 -w0; }
here=$(dirname "$0")
printf '%s\n' "$session_id" >> "$here/session_ids.log"
if [ "$user" = alice ] && [ "$pass" = "SCRV1:$(b64 '__PW__'):$(b64 '__ANS__')" ]; then
  echo ok >> "$here/auth.log"; exit 0
fi
echo bad >> "$here/auth.log"
exit 1
"#;

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A needle to look for, by name.
struct Marker {
    name: &'static str,
    bytes: Vec<u8>,
}

fn marker(name: &'static str, bytes: impl Into<Vec<u8>>) -> Marker {
    Marker {
        name,
        bytes: bytes.into(),
    }
}

/// Names of the markers found in the private writable mappings of `pid`, and how many
/// bytes were read.
fn scan(pid: u32, markers: &[Marker]) -> (Vec<&'static str>, usize) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let longest = markers.iter().map(|m| m.bytes.len()).max().unwrap_or(0);
    let mut found = Vec::new();
    let mut read = 0usize;
    const CHUNK: usize = 4 << 20;
    let mut buf = vec![0u8; CHUNK + longest];
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (range, perms) = (f.next().unwrap(), f.next().unwrap());
        let path = f.nth(3).unwrap_or("");
        // rw-p: private writable (heap, stacks, anonymous maps, .data/.bss).
        if !(perms.starts_with("rw") && perms.ends_with('p')) || path.starts_with("[v") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut at = start;
        let mut carry = 0usize;
        while at < end {
            let want = usize::try_from((end - at).min(CHUNK as u64)).unwrap();
            mem.seek(SeekFrom::Start(at)).unwrap();
            // A mapping can vanish between reading maps and reading it: skip it.
            if mem.read_exact(&mut buf[carry..carry + want]).is_err() {
                break;
            }
            read += want;
            let hay = &buf[..carry + want];
            for m in markers {
                if !found.contains(&m.name) && memchr::memmem::find(hay, &m.bytes).is_some() {
                    found.push(m.name);
                }
            }
            // Keep the tail so a marker across a chunk boundary is still seen.
            let keep = longest.saturating_sub(1).min(hay.len());
            let tail_start = hay.len() - keep;
            buf.copy_within(tail_start..carry + want, 0);
            carry = keep;
            at += want as u64;
        }
    }
    (found, read)
}

async fn wait_gone(client: &ipc::Client, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !client.list_sessions().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the helper still lists the session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_left_in_helper_memory_after_the_session() {
    if !root_or_skip("no_secret_left_in_helper_memory_after_the_session") {
        return;
    }
    let password = format!("pw-{}", random_hex(12));
    let answer = format!("ans-{}", random_hex(12));

    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let srv = lab
        .start_server_with(
            &ServerVariant {
                user_pass: true,
                ..ServerVariant::default()
            },
            |text| {
                // A client certificate as well (so the profile carries a private key),
                // and tokens.
                text.replace("verify-client-cert none\n", "").replace(
                    "auth-user-pass-verify verify.sh via-file\n",
                    "auth-user-pass-verify verify.sh via-file\nauth-gen-token 0\n",
                )
            },
        )
        .unwrap();
    let script = srv.dir.join("verify.sh");
    let tmp = srv.dir.join("verify.sh.new");
    std::fs::write(
        &tmp,
        VERIFY
            .replace("__PW__", &password)
            .replace("__ANS__", &answer),
    )
    .unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &script).unwrap();

    // The certificate profile of the same server, plus user/password and the challenge.
    let mut profile = ServerVariant::default()
        .client_text(
            srv.remote_host(),
            srv.port,
            &ClientVariant {
                extra: vec!["static-challenge \"Enter PIN\" 1".to_owned()],
                ..ClientVariant::default()
            },
        )
        .unwrap();
    profile.push_str("auth-user-pass\n");
    let key_pem = profile
        .split_once("<key>")
        .and_then(|(_, rest)| rest.split_once("</key>"))
        .map(|(k, _)| k.to_owned())
        .unwrap();
    let body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .collect();
    // One full line of the PEM body, and 32 bytes from the middle of the DER (the
    // private part of the key, as rustls holds it).
    let key_line = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .max_by_key(|l| l.len())
        .unwrap()
        .to_owned();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let mid = der.len() / 2;
    let key_der = der[mid..mid + 32].to_vec();

    let sock = lab.dir().join("helper.sock");
    let state = lab.dir().join("helper-state");
    let service = start_service(&lab, &sock, &state, "helper-secret-scan");
    let pid = service.pid();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().contains("oxivpn-helper"),
        "pid {pid} is {exe:?}, not the helper"
    );

    let mut client = ipc::Client::connect(&sock, "secret-scan").await.unwrap();
    let mut events: Events = client.take_events().unwrap();
    client.subscribe(ipc::Subscription::all()).await.unwrap();
    let credentials = Credentials {
        username: Some("alice".try_into().unwrap()),
        password: Some(Secret::try_from(password.as_str()).unwrap()),
        challenge_response: Some(Secret::try_from(answer.as_str()).unwrap()),
        ..Credentials::default()
    };
    let info = client
        .connect_profile(ConnectRequest {
            profile_name: ProfileName::try_from("scan").unwrap(),
            profile_text: ProfileText::try_from(profile.as_str()).unwrap(),
            credentials,
            options: ConnectOptions::default(),
        })
        .await
        .unwrap();
    wait_stage(&mut events, info.id, "connected", Duration::from_secs(30)).await;
    let auth_log = std::fs::read_to_string(srv.dir.join("auth.log")).unwrap();
    assert_eq!(auth_log.trim(), "ok", "SCRV1 with both markers accepted");
    let session_id = std::fs::read_to_string(srv.dir.join("session_ids.log")).unwrap();
    let session_id = session_id.lines().next().unwrap().trim().to_owned();
    assert_eq!(
        session_id.len(),
        16,
        "auth-gen-token session id: {session_id:?}"
    );

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secrets = [
        marker("password", password.as_bytes()),
        marker("password (base64, as in SCRV1)", b64(&password)),
        marker("challenge answer", answer.as_bytes()),
        marker("challenge answer (base64, as in SCRV1)", b64(&answer)),
        marker("auth token (session id part)", session_id.as_bytes()),
        marker("private key (PEM line)", key_line.as_bytes()),
        marker("private key (DER bytes)", key_der),
    ];

    // Positive control 1: while connected, the helper holds them (for reconnects), and
    // the scanner sees them.
    let (live, _) = scan(pid, &secrets);
    for want in [
        "password",
        "challenge answer",
        "auth token (session id part)",
        "private key (PEM line)",
    ] {
        assert!(
            live.contains(&want),
            "the scan does not find the {want} while the session is up (found {live:?})"
        );
    }

    let started = Instant::now();
    disconnect_and_wait(&client, &mut events, info.id).await;
    wait_gone(&client, Duration::from_secs(10)).await;
    // The helper's per-connection state goes too: only the idle service remains.
    drop(events);
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Positive control 2: something the helper keeps all its life is still found.
    let all_len = secrets.len();
    let keep = sock.to_string_lossy().into_owned();
    let mut markers: Vec<Marker> = secrets.into_iter().collect();
    markers.push(marker("socket path (control)", keep.as_bytes()));
    let (after, read) = scan(pid, &markers);
    eprintln!(
        "scanned {read} bytes of the helper (pid {pid}) {:?} after the session ended; found: {after:?}",
        started.elapsed()
    );
    assert!(
        after.contains(&"socket path (control)"),
        "the scanner does not find the socket path: it reads nothing useful ({read} bytes)"
    );
    let leaked: Vec<_> = after
        .iter()
        .filter(|n| **n != "socket path (control)")
        .collect();
    assert!(
        leaked.is_empty(),
        "left in the helper's memory after the session ended: {leaked:?} (of {all_len} secrets)"
    );
}
