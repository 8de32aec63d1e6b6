//! Targets without a TUN back end yet.

use std::io;

use super::TunConfig;
use crate::types::IfaceId;
use crate::Error;

pub(super) struct Backend {
    iface: IfaceId,
}

impl super::Backend for Backend {
    fn create(_: &TunConfig) -> Result<Self, Error> {
        Err(Error::Unsupported("TUN devices"))
    }
    fn iface(&self) -> &IfaceId {
        &self.iface
    }
    async fn recv(&self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    async fn send(&self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Backend {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        -1
    }
}
