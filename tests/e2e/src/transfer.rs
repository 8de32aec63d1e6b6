//! Compressible traffic through the tunnel: large zero-filled pings and a TCP
//! transfer of repetitive text from the target namespace to the client. A server
//! with real compression shrinks exactly these packets, so a client that cannot
//! decompress loses them (short default pings pass either way).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::lab::{addr, Lab, Role};
use crate::ping::{parse_summary, PingStats};
use crate::spawn_in;

/// `ping -s SIZE -p 00` from `role` to `dest`: `count` zero-filled requests.
pub fn ping_sized(
    lab: &Lab,
    role: Role,
    dest: &str,
    count: u32,
    size: u32,
) -> anyhow::Result<PingStats> {
    let out = lab
        .ns(role)?
        .cmd("ping")
        .args(["-n", "-q", "-W", "2", "-i", "0.2", "-p", "00"])
        .args(["-c", &count.to_string(), "-s", &size.to_string()])
        .arg(dest)
        .output()
        .context("running ping")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_summary(&text).with_context(|| format!("ping printed no summary: {}", text.trim()))
}

/// The repeating text the transfer sends (an HTTP-log-like line compresses well).
fn pattern(i: usize) -> u8 {
    const LINE: &[u8] =
        b"10.0.0.3 - - [07/Dec/2026:00:00:00 +0000] \"GET /index.html HTTP/1.1\" 200 4096\n";
    LINE[i % LINE.len()]
}

/// Sends `bytes` of repetitive text over TCP from the target (10.0.0.3, port 5201)
/// to the client namespace through the tunnel; returns the bytes received intact.
/// Fails when the transfer stalls for `timeout` or a byte differs.
pub fn compressible_transfer(lab: &Lab, bytes: usize, timeout: Duration) -> anyhow::Result<usize> {
    let port = 5201;
    let listen: SocketAddr = format!("{}:{port}", addr::TARGET).parse()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in(lab.ns(Role::Tgt)?.name(), "transfer-server", move || {
        let l = TcpListener::bind(listen).context("binding the transfer server")?;
        let _ = ready_tx.send(());
        // Bounded wait for the client, so a failed connect never hangs the test.
        l.set_nonblocking(true)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        bail!("no transfer client within {timeout:?}");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e).context("accepting the transfer client"),
            }
        };
        s.set_nonblocking(false)?;
        s.set_write_timeout(Some(timeout))?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut sent = 0;
        while sent < bytes {
            let n = buf.len().min(bytes - sent);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + i);
            }
            s.write_all(&buf[..n]).context("sending")?;
            sent += n;
        }
        Ok(())
    })?;
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .context("the transfer server did not start")?;
    let client = spawn_in(lab.ns(Role::Cli)?.name(), "transfer-client", move || {
        let mut s = TcpStream::connect_timeout(&listen, timeout)
            .context("connecting through the tunnel")?;
        s.set_read_timeout(Some(timeout))?;
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => bail!("transfer stalled after {got} of {bytes} bytes: {e}"),
            };
            for (i, b) in buf[..n].iter().enumerate() {
                if *b != pattern(got + i) {
                    bail!("byte {} differs", got + i);
                }
            }
            got += n;
        }
        Ok(got)
    })?;
    let got = client
        .join()
        .map_err(|_| anyhow::anyhow!("transfer client panicked"))??;
    server
        .join()
        .map_err(|_| anyhow::anyhow!("transfer server panicked"))??;
    Ok(got)
}
