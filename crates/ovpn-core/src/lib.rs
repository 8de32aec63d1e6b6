//! Sans-IO OpenVPN client protocol.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
