//! macOS utun through the `tun` crate. The kernel names the device (`utunN`); a requested
//! name is used only when it is a `utunN` name. The crate strips/adds utun's 4-byte
//! address-family header (`packet_information(false)`), so callers see bare IP packets,
//! and adds no routes of its own (`enable_routing(false)`): the plan does that.
//!
//! Compiled (`cargo check --target aarch64-apple-darwin`), never run here.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tun::AbstractDevice;

use super::TunConfig;
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
        if let Some(name) = cfg.name.as_deref().filter(|n| n.starts_with("utun")) {
            c.tun_name(name);
        }
        c.mtu(mtu).up().platform_config(|p| {
            p.packet_information(false).enable_routing(false);
        });
        let dev = tun::create_as_async(&c).map_err(tun_err("create the utun device"))?;
        let name = dev.tun_name().map_err(tun_err("read its name"))?;
        let index = dev.tun_index().map_err(tun_err("read its index"))?;
        let index = u32::try_from(index).map_err(|_| Error::Tun {
            what: format!("interface index {index} is invalid"),
            source: io::Error::from(io::ErrorKind::InvalidData),
        })?;
        tracing::debug!(name = %name, index, mtu, "utun device created");
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
