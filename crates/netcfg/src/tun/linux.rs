//! Linux TUN through the `tun` crate (TUNSETIFF on /dev/net/tun, no packet info header).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tun::AbstractDevice;

use super::{TunConfig, DEFAULT_NAME_PATTERN};
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
        c.tun_name(cfg.name.as_deref().unwrap_or(DEFAULT_NAME_PATTERN))
            .mtu(mtu)
            .up();
        let dev = tun::create_as_async(&c).map_err(tun_err("create the device"))?;
        let name = dev.tun_name().map_err(tun_err("read its name"))?;
        let index = dev.tun_index().map_err(tun_err("read its index"))?;
        let index = u32::try_from(index).map_err(|_| Error::Tun {
            what: format!("interface index {index} is invalid"),
            source: io::Error::from(io::ErrorKind::InvalidData),
        })?;
        tracing::debug!(name = %name, index, mtu, "TUN device created");
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

impl AsRawFd for Backend {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}
