//! Targets without a kill switch yet: everything says so.

use super::{FirewallOptions, FirewallPolicy};
use crate::Error;

#[derive(Debug)]
pub(super) struct Backend;

const WHAT: &str = "the kill switch";

impl super::Backend for Backend {
    fn open(_: &FirewallOptions) -> Result<Self, Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn apply(&mut self, _: &FirewallPolicy) -> Result<(), Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn remove(&mut self) -> Result<(), Error> {
        Err(Error::Unsupported(WHAT))
    }
    fn is_present(&self) -> Result<bool, Error> {
        Err(Error::Unsupported(WHAT))
    }
}
