//! The TUN device, one public type over a private per-OS `imp`. Packet I/O is async
//! (tokio); the raw fd is there for a fast path of the caller's own.

use std::io;

use crate::types::IfaceId;
use crate::Error;

// Per OS only the `tun` crate configuration differs (`os::configure`); the device
// wrapper around it is shared (`imp` below).
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
#[path = "stub.rs"]
mod imp;
#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;
#[cfg(windows)]
#[path = "windows.rs"]
mod os;

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

/// The `tun` crate's async device with the identity the plan needs, for every OS the
/// crate serves (Linux /dev/net/tun, macOS utun, Windows wintun).
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
mod imp {
    use std::io;

    use tun::AbstractDevice;

    use super::{os, TunConfig};
    use crate::types::IfaceId;
    use crate::Error;

    pub(super) struct Backend {
        dev: tun::AsyncDevice,
        iface: IfaceId,
    }

    fn tun_err(what: &str) -> impl FnOnce(tun::Error) -> Error + '_ {
        move |e| Error::Tun {
            what: what.to_string(),
            source: io::Error::other(e),
        }
    }

    impl super::Backend for Backend {
        fn create(cfg: &TunConfig) -> Result<Self, Error> {
            let mtu = u16::try_from(cfg.mtu).map_err(|_| Error::Tun {
                what: format!("MTU {} is out of range", cfg.mtu),
                source: io::Error::from(io::ErrorKind::InvalidInput),
            })?;
            let mut c = tun::Configuration::default();
            os::configure(&mut c, cfg);
            c.mtu(mtu).up();
            let dev =
                tun::create_as_async(&c).map_err(tun_err(&format!("create the {}", os::DEVICE)))?;
            let name = dev.tun_name().map_err(tun_err("read its name"))?;
            let index = dev.tun_index().map_err(tun_err("read its index"))?;
            let index = u32::try_from(index).map_err(|_| Error::Tun {
                what: format!("interface index {index} is invalid"),
                source: io::Error::from(io::ErrorKind::InvalidData),
            })?;
            tracing::debug!(name = %name, index, mtu, device = os::DEVICE, "TUN device created");
            Ok(Self {
                dev,
                iface: IfaceId { index, name },
            })
        }

        fn iface(&self) -> &IfaceId {
            &self.iface
        }

        async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.dev.recv(buf).await
        }

        async fn send(&self, buf: &[u8]) -> io::Result<usize> {
            self.dev.send(buf).await
        }
    }

    #[cfg(unix)]
    impl std::os::fd::AsRawFd for Backend {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            self.dev.as_raw_fd()
        }
    }
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
