//! Targets without a DNS back end yet.

use super::{DnsBackend, DnsOptions};
use crate::journal::UndoAction;
use crate::plan::DnsChange;
use crate::types::IfaceId;
use crate::Error;

pub(super) struct Backend;

impl super::Backend for Backend {
    fn new(opts: &DnsOptions) -> Result<Self, Error> {
        match opts.backend {
            super::DnsBackendChoice::Disabled => Ok(Self),
            _ => Err(Error::Unsupported("DNS configuration")),
        }
    }
    fn kind(&self) -> DnsBackend {
        DnsBackend::Disabled
    }
    fn prepare(&mut self, _: &IfaceId, _: &DnsChange) -> Result<UndoAction, Error> {
        Err(Error::Unsupported("DNS configuration"))
    }
    fn apply(&mut self, _: &IfaceId, _: &DnsChange) -> Result<(), Error> {
        Err(Error::Unsupported("DNS configuration"))
    }
}

pub fn resolved_servers(_: Option<&str>) -> Option<Vec<std::net::IpAddr>> {
    None
}

pub fn undo(_: &UndoAction) -> Result<(), Error> {
    Err(Error::Unsupported("DNS configuration"))
}
