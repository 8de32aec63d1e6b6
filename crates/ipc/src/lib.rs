//! Messages and framing between the app/CLI and the privileged helper.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
