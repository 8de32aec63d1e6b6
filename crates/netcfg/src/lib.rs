//! TUN, routes and DNS per OS, with an undo journal.
//!
//! - [`plan()`] is pure and shared by every OS: tunnel wishes + the machine's state -> an
//!   ordered [`Plan`] whose every change says why it exists.
//! - [`NetSession::apply`] carries a plan out, journaling (fsync) each change before making
//!   it; [`NetSession::undo_all`] puts everything back, [`recover`] does the same after a crash.
//! - [`Tun`], [`Routes`] and [`Dns`] wrap one private per-OS `imp` each (Linux: netlink,
//!   systemd-resolved over D-Bus or resolv.conf; other targets: a stub that says so).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod dns;
mod error;
pub mod firewall;
pub mod icmp;
pub mod journal;
pub mod lease;
#[cfg(target_os = "linux")]
mod netlink;
pub mod plan;
pub mod routes;
mod session;
pub mod sockmark;
pub mod tun;
pub mod types;

pub use dns::{Dns, DnsBackend, DnsBackendChoice, DnsOptions};
pub use error::Error;
pub use firewall::{Endpoint, Firewall, FirewallOptions, FirewallPolicy, Transport};
pub use ipnet::IpNet;
pub use journal::{JournalEntry, JournalTrust, UndoAction, DEFAULT_JOURNAL_PATH};
pub use lease::LeaseSources;
pub use plan::{
    plan, Change, Dev, DnsChange, Plan, PlannedChange, PlannedRoute, Reason, RefusedRoute,
    TunAddress,
};
pub use routes::{AddOutcome, IfaceAddress, RouteRecord, Routes, ROUTE_PROTO_OXIVPN};
pub use session::{
    discover_state, explain_route, recover, recover_trusting, DiscoverOptions, Explanation,
    NetSession, RecoverReport, SessionOptions, Verdict,
};
pub use tun::{Tun, TunConfig};
pub use types::{
    DefaultRoute, DnsConfig, IfaceId, NetworkState, OnLinkPrefix, PushedRoute, RedirectGateway,
    RouteGateway, TunV4, TunV6, TunnelNetworkConfig,
};

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    /// The helper moves these into `spawn_blocking` and shares the TUN between tasks.
    #[test]
    fn handles_cross_threads() {
        send_sync::<crate::Tun>();
        send::<crate::NetSession>();
        send::<crate::Routes>();
        send::<crate::Dns>();
        send_sync::<crate::Plan>();
        send_sync::<crate::Error>();
    }

    #[cfg(target_os = "linux")]
    #[allow(dead_code)]
    fn tun_futures_are_send(t: &crate::Tun, buf: &mut [u8]) {
        fn is_send<F: std::future::Future + Send>(_: F) {}
        is_send(t.recv(buf));
        is_send(t.send(&[]));
    }
}
