//! A fake helper for trying the app without root (and for its screenshots):
//! `cargo run -p oxivpn-app --example fake_helper -- /tmp/oxivpn-fake.sock`, then start
//! the app with `OXIVPN_SOCKET=/tmp/oxivpn-fake.sock`. Every connect succeeds and
//! shows made-up traffic; the password "wrong" is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[cfg(unix)]
#[path = "../tests/support/fake_helper.rs"]
mod fake_helper;

#[cfg(unix)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/oxivpn-fake.sock".to_string());
    let _ = std::fs::remove_file(&path);
    let helper = fake_helper::FakeHelper::start_at(path.into(), fake_helper::Script::Demo);
    println!("fake helper listening on {}", helper.socket.display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The fake listens on a Unix socket; on Windows the app talks to the real service.
#[cfg(not(unix))]
fn main() -> anyhow::Result<()> {
    anyhow::bail!("the fake helper listens on a Unix socket, which this OS's app does not use")
}
