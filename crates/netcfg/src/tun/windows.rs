//! Windows TUN through the `tun` crate over wintun (layer 3, bare IP packets). `wintun.dll`
//! is loaded from the DLL search path (next to the helper's executable): packaging ships it.
//! The adapter disappears when the device is dropped (its wintun session closes).
//!
//! Compiled (`cargo build --target x86_64-pc-windows-gnu`), never run here.

use super::TunConfig;

pub(super) const DEVICE: &str = "wintun adapter";

/// The adapter's name when the caller gives none (or a Linux pattern such as `oxi%d`).
const DEFAULT_ADAPTER_NAME: &str = "OxiVPN";

pub(super) fn configure(c: &mut tun::Configuration, cfg: &TunConfig) {
    let name = cfg
        .name
        .as_deref()
        .filter(|n| !n.contains('%'))
        .unwrap_or(DEFAULT_ADAPTER_NAME);
    c.tun_name(name);
}
