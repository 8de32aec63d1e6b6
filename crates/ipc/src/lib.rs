//! Messages and framing between the app/CLI and the privileged helper.
//!
//! - [`types`]: validated field types (built only through `TryFrom` from the wire form).
//! - [`messages`]: hello, requests, responses, events.
//! - [`frame`]: u32 length + JSON frames, at most [`frame::MAX_FRAME`] bytes.
//! - [`client`]: the async client the CLI and the app share.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod error;
pub mod frame;
pub mod leak_check;
pub mod lockdown;
pub mod messages;
pub mod sign_in;
pub mod types;

pub use client::{default_socket_path, socket_path_from_env, Client, SOCKET_ENV};
pub use error::{ClientError, FrameError, IpcError};
pub use frame::MAX_FRAME;
pub use leak_check::{CheckKind, CheckOutcome, CheckVerdict, LeakCheck, LeakReport};
pub use lockdown::{LockdownChange, LockdownState};
pub use messages::*;
pub use sign_in::{SignInRequest, SignInUrl};
pub use types::*;
