//! macOS utun through the `tun` crate. The kernel names the device (`utunN`); a requested
//! name is used only when it is a `utunN` name. The crate strips/adds utun's 4-byte
//! address-family header (`packet_information(false)`), so callers see bare IP packets,
//! and adds no routes of its own (`enable_routing(false)`): the plan does that.
//!
//! Compiled (`cargo check --target aarch64-apple-darwin`), never run here.

use super::TunConfig;

pub(super) const DEVICE: &str = "utun device";

pub(super) fn configure(c: &mut tun::Configuration, cfg: &TunConfig) {
    if let Some(name) = cfg.name.as_deref().filter(|n| n.starts_with("utun")) {
        c.tun_name(name);
    }
    c.platform_config(|p| {
        p.packet_information(false).enable_routing(false);
    });
}
