//! The TUN side of the driver, as a trait so the driver needs no OS code (netcfg's
//! `Tun` implements it in the helper; tests use an in-memory pair).

use std::future::Future;
use std::io;

/// A layer-3 device: one IP packet per call.
pub trait TunDevice: Send + Sync + 'static {
    /// Reads one IP packet into `buf`, returning its length. Must be cancel safe:
    /// the driver drops a pending `recv` when another source is ready, and polls it
    /// once without waiting to drain queued packets.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes one IP packet.
    fn send(&self, buf: &[u8]) -> impl Future<Output = io::Result<usize>> + Send;
}

/// An in-memory TUN for tests: packets written by the driver come out of
/// [`MemTunPeer::from_driver`], packets put into [`MemTunPeer::to_driver`] are read by it.
#[derive(Debug)]
pub struct MemTun {
    rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

/// The test's end of a [`MemTun`].
#[derive(Debug)]
pub struct MemTunPeer {
    pub to_driver: tokio::sync::mpsc::Sender<Vec<u8>>,
    pub from_driver: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

impl MemTun {
    pub fn pair() -> (MemTun, MemTunPeer) {
        let (to_driver, rx) = tokio::sync::mpsc::channel(256);
        let (tx, from_driver) = tokio::sync::mpsc::channel(256);
        (
            MemTun {
                rx: tokio::sync::Mutex::new(rx),
                tx,
            },
            MemTunPeer {
                to_driver,
                from_driver,
            },
        )
    }
}

impl TunDevice for MemTun {
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rx = self.rx.lock().await;
        match rx.recv().await {
            Some(p) => {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                Ok(n)
            }
            None => std::future::pending().await,
        }
    }

    async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(buf.to_vec())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "test TUN peer gone"))?;
        Ok(buf.len())
    }
}
