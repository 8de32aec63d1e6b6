//! Linux TUN through the `tun` crate (TUNSETIFF on /dev/net/tun, no packet info header).

use super::{TunConfig, DEFAULT_NAME_PATTERN};

pub(super) const DEVICE: &str = "TUN device";

pub(super) fn configure(c: &mut tun::Configuration, cfg: &TunConfig) {
    c.tun_name(cfg.name.as_deref().unwrap_or(DEFAULT_NAME_PATTERN));
}
