//! The user's side of profiles: resolve file references, inline them, store per user.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
