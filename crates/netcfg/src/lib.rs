//! TUN, routes and DNS per OS, with an undo journal.
//!
//! - [`plan()`] is pure and shared by every OS: tunnel wishes + the machine's state -> an
//!   ordered [`Plan`] whose every change says why it exists.
//! - [`NetSession::apply`] carries a plan out, journaling (fsync) each change before making
//!   it; [`NetSession::undo_all`] puts everything back, [`recover`] does the same after a crash.
//! - [`Tun`], [`Routes`] and [`Dns`] wrap one private per-OS `imp` each (Linux: netlink,
//!   systemd-resolved over D-Bus or resolv.conf; other targets: a stub that says so).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod lease;
#[cfg(target_os = "linux")]
#[allow(dead_code)] // the Linux back ends land next
mod netlink;
pub mod plan;
pub mod types;

pub use error::Error;
pub use ipnet::IpNet;
pub use plan::{
    plan, Change, Dev, DnsChange, Plan, PlannedChange, PlannedRoute, Reason, RefusedRoute,
    TunAddress,
};
pub use types::{
    DefaultRoute, DnsConfig, IfaceId, NetworkState, OnLinkPrefix, PushedRoute, RedirectGateway,
    RouteGateway, TunV4, TunV6, TunnelNetworkConfig,
};
