//! Windows TUN through the `tun` crate over wintun (layer 3, bare IP packets). `wintun.dll`
//! is loaded from the DLL search path (next to the helper's executable): packaging ships it.
//! The adapter disappears when the device is dropped (its wintun session closes).
//!
//! Compiled (`cargo check --target x86_64-pc-windows-gnu`), never run here.

use std::io;

use tun::AbstractDevice;

use super::TunConfig;
use crate::types::IfaceId;
use crate::Error;

/// The adapter's name when the caller gives none (or a Linux pattern such as `oxi%d`).
const DEFAULT_ADAPTER_NAME: &str = "OxiVPN";

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
        let name = cfg
            .name
            .as_deref()
            .filter(|n| !n.contains('%'))
            .unwrap_or(DEFAULT_ADAPTER_NAME);
        let mut c = tun::Configuration::default();
        c.tun_name(name).mtu(mtu).up();
        let dev = tun::create_as_async(&c).map_err(tun_err("create the wintun adapter"))?;
        let name = dev.tun_name().map_err(tun_err("read its name"))?;
        let index = dev.tun_index().map_err(tun_err("read its index"))?;
        let index = u32::try_from(index).map_err(|_| Error::Tun {
            what: format!("interface index {index} is invalid"),
            source: io::Error::from(io::ErrorKind::InvalidData),
        })?;
        tracing::debug!(name = %name, index, mtu, "wintun adapter created");
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
