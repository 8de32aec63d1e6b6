//! TUN, routes and DNS per OS, with an undo journal.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
