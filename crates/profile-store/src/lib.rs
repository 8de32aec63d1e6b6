//! The user's side of profiles: resolve file references, inline them, store per user.
//!
//! Runs as the user (app and CLI), never in the privileged helper: it is the only
//! place that opens the files a profile names. [`resolve`] turns a profile on disk
//! into a self-contained [`Profile`] plus the credentials to put in the keyring;
//! [`Store`] keeps profiles in `$XDG_DATA_HOME/oxivpn/profiles/<name>.ovpn`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "fetch")]
pub mod fetch;
mod import;
mod resolve;
mod store;

pub use import::{
    import_bytes, import_path, import_path_with, name_from_text, Import, ImportError, NameChoice,
};
pub use resolve::{
    resolve, resolve_bytes, resolve_with, Credentials, MissingFile, ResolveError, Resolved,
    Supplied,
};
pub use store::{validate_name, Store, StoreError};
