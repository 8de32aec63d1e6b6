//! Network-namespace lab for end-to-end tests (root only).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
