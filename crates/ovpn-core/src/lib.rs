//! Sans-IO OpenVPN client protocol.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
// coresession
pub mod config;
pub mod control_msg;
pub mod identity;
pub mod keymethod;
pub mod push;
pub mod reliable;
pub mod session;
pub mod sso;
pub mod tls;
pub mod verify;
// corewire
pub mod cipher_choice;
pub mod codec;
pub mod compress;
pub mod data;
pub mod drops;
pub mod epoch;
pub mod keys;
pub mod mss;
pub mod packet;
pub mod ping;
pub mod replay;
pub mod static_key;
pub mod transport;
pub mod wrap;
