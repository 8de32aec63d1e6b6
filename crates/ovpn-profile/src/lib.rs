//! .ovpn text to a typed Profile and an import report; pure, no I/O.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
