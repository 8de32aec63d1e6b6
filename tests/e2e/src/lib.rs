//! Network-namespace lab for end-to-end tests (root only).
//!
//! A [`Lab`] builds the reference scenario of `TESTBED.md` (client, router with DHCP,
//! OpenVPN server, target) or its direct variant out of network namespaces whose names
//! are unique per process and lab, so tests run in parallel. Everything it starts is
//! recorded and stopped, and every namespace deleted, when the `Lab` drops.
// Namespaces and nix: Linux only. Empty elsewhere, so crates that list it as a
// dev-dependency (the helper) still build their Windows unit tests (run under Wine).
#![cfg(unix)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod access_server;
mod capture;
mod cmd;
mod faultproxy;
mod helper;
mod lab;
mod netns;
mod nsthread;
mod ping;
mod pki;
mod process;
mod proxies;
mod server;
mod sso;
mod transfer;

pub use access_server::{
    AccessServer, CertKind, AS_AUTOLOGIN_USER, AS_CHALLENGE_TEXT, AS_MFA_USER, AS_OTP,
    AS_UNENROLLED_USER, AS_USER,
};
pub use capture::{
    classify, parse_pcap, send_probes, Capture, CaptureSummary, Class, Probe, TunnelEndpoint,
    PROBE_MARKER,
};
pub use cmd::run;
pub use faultproxy::{
    apply_faults, FaultConfig, FaultProxy, FaultStats, Faults, ProxyTransport, Rng, PROXY_ADDR,
};
pub use helper::helper_binary;
pub use lab::{addr, Addressing, HelperService, Lab, LabConfig, Role, Topology};
pub use netns::Netns;
/// Signals for [`Proc::signal`] (re-exported so users need no nix of their own).
pub use nix::sys::signal::Signal;
pub use nsthread::spawn_in;
pub use ping::{first_reply_after, PingStats};
pub use pki::{
    client_pkcs12, encrypted_client_key, keys, pki, revoked_server, KeyAlg, KeyProtection, Pki,
    Revoked, StaticKeys,
};
pub use process::Proc;
pub use proxies::{proxies_available, DANTE_PORT, DANTE_USER, SQUID_PORT};
pub use server::{
    ClientProfile, ClientVariant, Compression, Credentials, DataCipher, OpenvpnBuild, ServerHandle,
    ServerVariant, Topo, Transport, Wrap, PASSWORD, USERNAME,
};
pub use transfer::{compressible_transfer, ping_sized};

pub use sso::{
    browser_log, browser_script, SsoMethod, SsoOptions, SsoServer, DECOY_PORT, RIGHT_ANSWER,
    SIGN_IN_PORT,
};

/// Whether this process runs as root; prints a skip notice naming `test` when not.
///
/// Root-only tests start with `if !oxivpn_e2e::root_or_skip("name") { return Ok(()); }`.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: needs root (network namespaces, TUN); run `cargo xtask test` as root"
    );
    false
}
