//! Thin async driver: socket + TUN <-> ovpn-core.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
