//! The helper under abuse (root only): malformed and oversized frames, a wrong
//! protocol version, a client that stalls mid-frame, many idle connections, a
//! thousand quick connections and a thousand connect requests. After each, the
//! helper must still be running and serving a well-behaved client.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use ipc::frame::{encode, read_message};
use ipc::{ClientFrame, ClientHello, IpcError, ServerFrame, ShortText};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

async fn raw_hello(socket: &Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).await.unwrap();
    let hello = ClientFrame::Hello(ClientHello {
        protocol: ipc::PROTOCOL_VERSION,
        client: ShortText::sanitized("raw"),
    });
    s.write_all(&encode(&hello).unwrap()).await.unwrap();
    match read_message::<_, ServerFrame>(&mut s).await.unwrap() {
        Some(ServerFrame::Hello(_)) => s,
        other => panic!("{other:?}"),
    }
}

/// The helper's last word on a connection it closes: a Refused frame, then EOF.
async fn refusal(s: &mut UnixStream) -> IpcError {
    let f = tokio::time::timeout(Duration::from_secs(15), read_message::<_, ServerFrame>(s))
        .await
        .expect("helper did not answer")
        .unwrap();
    let Some(ServerFrame::Refused(e)) = f else {
        panic!("expected a refusal, got {f:?}")
    };
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut rest))
        .await
        .expect("helper did not close")
        .unwrap_or(0);
    assert_eq!(n, 0, "bytes after the refusal");
    e
}

/// A well-behaved client gets an answer quickly.
async fn still_serving(socket: &Path) {
    let t = Instant::now();
    let c = tokio::time::timeout(Duration::from_secs(10), async {
        let c = ipc::Client::connect(socket, "probe").await.unwrap();
        c.status().await.unwrap()
    })
    .await
    .expect("helper stopped serving");
    assert_eq!(c.peer_uid, 0);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_survives_bad_clients() {
    if !is_root() {
        skip_notice("helper_survives_bad_clients");
        return;
    }
    let dir = OpenDir::new();
    let mut helper = Helper::start(dir.path(), "limits", "root", &[]);
    let sock = helper.socket.clone();

    // Garbage instead of JSON.
    let mut s = raw_hello(&sock).await;
    s.write_all(&[0, 0, 0, 5, b'{', 0xff, 0, 1, 2])
        .await
        .unwrap();
    assert!(matches!(
        refusal(&mut s).await,
        IpcError::InvalidRequest { .. }
    ));
    still_serving(&sock).await;

    // A field that fails validation: the refusal names it.
    let mut s = raw_hello(&sock).await;
    let bad = br#"{"request":{"id":1,"body":{"connect":{"profile_name":"../x","profile_text":"client"}}}}"#;
    s.write_all(&u32::try_from(bad.len()).unwrap().to_be_bytes())
        .await
        .unwrap();
    s.write_all(bad).await.unwrap();
    match refusal(&mut s).await {
        IpcError::InvalidRequest { field, .. } => {
            assert_eq!(field.as_str(), "request.body.connect.profile_name")
        }
        other => panic!("{other:?}"),
    }

    // Oversized frame: refused from its header, nothing allocated.
    let mut s = raw_hello(&sock).await;
    s.write_all(&(64u32 << 20).to_be_bytes()).await.unwrap();
    assert!(matches!(
        refusal(&mut s).await,
        IpcError::LimitReached { .. }
    ));
    still_serving(&sock).await;

    // Wrong protocol version.
    let mut s = UnixStream::connect(&sock).await.unwrap();
    let hello = ClientFrame::Hello(ClientHello {
        protocol: ipc::PROTOCOL_VERSION + 100,
        client: ShortText::sanitized("future"),
    });
    s.write_all(&encode(&hello).unwrap()).await.unwrap();
    assert_eq!(
        refusal(&mut s).await,
        IpcError::VersionMismatch {
            helper: ipc::PROTOCOL_VERSION,
            client: ipc::PROTOCOL_VERSION + 100
        }
    );

    // A request before the hello.
    let mut s = UnixStream::connect(&sock).await.unwrap();
    let req = ClientFrame::Request {
        id: ipc::RequestId(1),
        body: ipc::Request::Status,
    };
    s.write_all(&encode(&req).unwrap()).await.unwrap();
    assert!(matches!(
        refusal(&mut s).await,
        IpcError::InvalidRequest { .. }
    ));

    // A client that starts a frame and stalls is dropped; others are served meanwhile.
    let mut slow = raw_hello(&sock).await;
    slow.write_all(&[0, 0, 1, 0, b'{']).await.unwrap();
    // And one that never says hello (its deadline runs alongside).
    let mut silent = UnixStream::connect(&sock).await.unwrap();
    still_serving(&sock).await;
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut buf))
        .await
        .expect("stalled client was never dropped");
    assert!(t.elapsed() < Duration::from_secs(20));

    let _ = tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut buf))
        .await
        .expect("silent client was never dropped");

    // More idle connections than the helper serves at once: the helper stays up and,
    // once the hello deadline frees their slots, serves a new client.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(UnixStream::connect(&sock).await.unwrap());
    }
    let t = Instant::now();
    let probe = tokio::time::timeout(Duration::from_secs(30), async {
        let c = ipc::Client::connect(&sock, "probe").await.unwrap();
        c.status().await.unwrap()
    })
    .await
    .expect("no service after idle flood");
    assert_eq!(probe.peer_uid, 0);
    eprintln!("served after an idle flood of 300 in {:?}", t.elapsed());
    drop(idle);

    // A thousand quick connections, each a full hello + request.
    let t = Instant::now();
    for _ in 0..1000 {
        let c = ipc::Client::connect(&sock, "quick").await.unwrap();
        c.status().await.unwrap();
    }
    eprintln!("1000 connect+hello+status in {:?}", t.elapsed());

    // route-check answers from the helper's own (namespace) routing table.
    let c = ipc::Client::connect(&sock, "route").await.unwrap();
    let r = c.route_check("127.0.0.1".parse().unwrap()).await.unwrap();
    assert!(!r.via_tunnel);
    assert!(r.explanation.as_str().contains("this machine"), "{r:?}");
    let r = c.route_check("192.0.2.1".parse().unwrap()).await.unwrap();
    assert!(r.explanation.as_str().contains("unreachable"), "{r:?}");

    // A thousand connect requests on one connection: a few sessions, then a limit.
    let c = ipc::Client::connect(&sock, "greedy").await.unwrap();
    let text = PROFILE_OK;
    let mut started = 0;
    let mut limited = 0;
    for i in 0..1000 {
        let req = ipc::ConnectRequest {
            profile_name: ipc::ProfileName::try_from(format!("p{i}")).unwrap(),
            profile_text: ipc::ProfileText::try_from(text).unwrap(),
            credentials: ipc::Credentials::default(),
            options: ipc::ConnectOptions::default(),
        };
        match c.connect_profile(req).await {
            Ok(_) => started += 1,
            Err(ipc::ClientError::Helper(IpcError::LimitReached { .. })) => limited += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!((1..=32).contains(&started), "{started}");
    assert_eq!(started + limited, 1000);
    for s in c.list_sessions().await.unwrap() {
        c.disconnect(s.id).await.unwrap();
    }
    still_serving(&sock).await;
    assert!(helper.alive(), "helper died");
}
