//! The TUN device, one public type over a private per-OS `imp`. Packet I/O is async
//! (tokio); the raw fd is there for a fast path of the caller's own.

use std::io;

use crate::types::IfaceId;
use crate::Error;

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
#[path = "stub.rs"]
mod imp;

/// How to create the device. Addresses and routes come from the plan, not from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunConfig {
    /// A name or a kernel pattern such as `oxi%d` (the default).
    pub name: Option<String>,
    pub mtu: u32,
}

impl Default for TunConfig {
    fn default() -> Self {
        Self {
            name: None,
            mtu: 1500,
        }
    }
}

pub const DEFAULT_NAME_PATTERN: &str = "oxi%d";

trait Backend: Sized {
    fn create(cfg: &TunConfig) -> Result<Self, Error>;
    fn iface(&self) -> &IfaceId;
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    async fn send(&self, buf: &[u8]) -> io::Result<usize>;
}

/// A layer-3 TUN device, up, with its MTU set. Closing it (drop) removes the interface.
pub struct Tun {
    imp: imp::Backend,
}

impl Tun {
    /// Creates the device in the calling thread's network namespace. Must run inside a tokio
    /// runtime (the fd is registered with its reactor).
    pub fn create(cfg: &TunConfig) -> Result<Self, Error> {
        Ok(Self {
            imp: Backend::create(cfg)?,
        })
    }

    pub fn iface(&self) -> &IfaceId {
        self.imp.iface()
    }

    /// Reads one IP packet.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.imp.recv(buf).await
    }

    /// Writes one IP packet.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.imp.send(buf).await
    }
}

#[cfg(unix)]
impl Tun {
    /// A duplicate of the device's fd for a fast path of the caller's own (a blocking
    /// reader thread, batched I/O). It shares the open file with `Tun`, so it is
    /// non-blocking too, and the interface lives until both are closed.
    pub fn try_clone_fd(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsRawFd;
        // SAFETY: the fd is open for as long as `self` is borrowed.
        #[allow(unsafe_code)]
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.imp.as_raw_fd()) };
        fd.try_clone_to_owned()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Tun {
    /// The device's fd (non-blocking), for a caller's own fast path; it stays owned by `Tun`.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.imp.as_raw_fd()
    }
}
