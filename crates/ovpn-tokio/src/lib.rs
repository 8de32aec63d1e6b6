//! Thin async driver: socket + TUN <-> ovpn-core.
//!
//! [`config`] turns a parsed profile into the core's configuration; the driver runs one
//! core `Client` over a UDP or TCP socket and a [`TunDevice`], on one task with one timer.
//! No OS configuration happens here (that is netcfg's, composed by the helper).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod driver;
pub mod link;
pub mod proxy;
pub mod tun;
pub mod udp_batch;

pub use driver::{os_seed, Command, Driver, DriverEnd, DriverHandle};
pub use link::{resolve, Family, Link, LinkError};
pub use tun::{MemTun, MemTunPeer, TunDevice};
