//! Targets without a back end yet: everything says so.

use std::net::IpAddr;

use super::{AddOutcome, IfaceAddress, RouteRecord};
use crate::plan::TunAddress;
use crate::types::IfaceId;
use crate::Error;

pub(super) struct Backend;

const WHAT: &str = "routing configuration";

impl super::Backend for Backend {
    fn open() -> Result<Self, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn routes(&mut self) -> Result<Vec<RouteRecord>, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn add_route(&mut self, _: &RouteRecord) -> Result<AddOutcome, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn delete_route(&mut self, _: &RouteRecord) -> Result<bool, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn lookup(&mut self, _: IpAddr) -> Result<Option<RouteRecord>, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn links(&mut self) -> Result<Vec<IfaceId>, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn addresses(&mut self) -> Result<Vec<IfaceAddress>, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn add_address(&mut self, _: u32, _: &TunAddress) -> Result<AddOutcome, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn delete_address(&mut self, _: u32, _: &TunAddress) -> Result<bool, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn set_mtu(&mut self, _: u32, _: u32) -> Result<(), Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn set_up(&mut self, _: u32) -> Result<(), Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn delete_link(&mut self, _: u32) -> Result<bool, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn is_tun(&mut self, _: u32) -> Result<bool, Error> {
        Err(Error::Unsupported(WHAT))
    }
}
