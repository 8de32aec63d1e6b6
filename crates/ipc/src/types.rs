//! Validated field types. Every string that crosses the socket lands in one of these,
//! and each is built from its wire form (`String`) only through `TryFrom`, so a
//! message that decodes is a message whose fields are within bounds.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Why a field's wire value was refused. The field's name comes from the decoder's
/// path (see [`crate::FrameError::Invalid`]) or from the caller of `TryFrom`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("is empty")]
    Empty,
    #[error("is {len} bytes long, the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("contains a control character at byte {at}")]
    ControlChar { at: usize },
    #[error("contains {what}")]
    Forbidden { what: &'static str },
}

fn check_len(s: &str, max: usize) -> Result<(), FieldError> {
    if s.len() > max {
        return Err(FieldError::TooLong { len: s.len(), max });
    }
    Ok(())
}

/// Refuses every control character except the ones in `allowed`.
fn check_controls(s: &str, allowed: &[char]) -> Result<(), FieldError> {
    match s
        .char_indices()
        .find(|(_, c)| c.is_control() && !allowed.contains(c))
    {
        Some((at, _)) => Err(FieldError::ControlChar { at }),
        None => Ok(()),
    }
}

/// Replaces control characters and cuts at a char boundary at or below `max` bytes:
/// for text the helper produces from sources it does not control (server messages).
fn sanitize(s: &str, max: usize, allowed: &[char]) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control() && !allowed.contains(&c) {
            '\u{FFFD}'
        } else {
            c
        };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $validate:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, FieldError> {
                let validate: fn(&str) -> Result<(), FieldError> = $validate;
                validate(&s)?;
                Ok(Self(s))
            }
        }
        impl TryFrom<&str> for $name {
            type Error = FieldError;
            fn try_from(s: &str) -> Result<Self, FieldError> {
                Self::try_from(s.to_owned())
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Matches profile-store's name limit, so every stored profile can be named over IPC.
pub const PROFILE_NAME_MAX: usize = 100;
pub const PROFILE_TEXT_MAX: usize = 512 * 1024;
pub const USERNAME_MAX: usize = 256;
pub const SECRET_MAX: usize = 4096;
pub const SHORT_TEXT_MAX: usize = 1024;
pub const LOG_TEXT_MAX: usize = 4096;

string_newtype!(
    /// A profile's name as the user sees it: one line, no path separators.
    ProfileName,
    |s| {
        if s.is_empty() {
            return Err(FieldError::Empty);
        }
        check_len(s, PROFILE_NAME_MAX)?;
        check_controls(s, &[])?;
        if s.contains('/') || s.contains('\\') {
            return Err(FieldError::Forbidden { what: "a path separator" });
        }
        if s == "." || s == ".." {
            return Err(FieldError::Forbidden { what: "only dots" });
        }
        if s.trim() != s {
            return Err(FieldError::Forbidden { what: "leading or trailing white space" });
        }
        Ok(())
    }
);

string_newtype!(
    /// The full text of a .ovpn profile (inline blocks included). Only structure is
    /// checked here; the helper re-parses it and decides what it will run.
    ProfileText,
    |s| {
        if s.trim().is_empty() {
            return Err(FieldError::Empty);
        }
        check_len(s, PROFILE_TEXT_MAX)?;
        check_controls(s, &['\n', '\r', '\t'])
    }
);

string_newtype!(
    /// A user name for `auth-user-pass`.
    Username,
    |s| {
        if s.is_empty() {
            return Err(FieldError::Empty);
        }
        check_len(s, USERNAME_MAX)?;
        check_controls(s, &[])
    }
);

string_newtype!(
    /// One line of human text (reasons, prompts, remote descriptions).
    ShortText,
    |s| {
        check_len(s, SHORT_TEXT_MAX)?;
        check_controls(s, &['\t'])
    }
);

string_newtype!(
    /// One log line.
    LogText,
    |s| {
        check_len(s, LOG_TEXT_MAX)?;
        check_controls(s, &['\t'])
    }
);

impl ShortText {
    /// For text from sources the helper does not control: never fails.
    pub fn sanitized(s: &str) -> Self {
        Self(sanitize(s, SHORT_TEXT_MAX, &['\t']))
    }
}

impl LogText {
    /// For text from sources the helper does not control: never fails.
    pub fn sanitized(s: &str) -> Self {
        Self(sanitize(s, LOG_TEXT_MAX, &['\t']))
    }
}

/// A password, passphrase or challenge response. Debug never shows it, and the
/// memory is wiped on drop.
///
/// Serialized straight from its buffer (serde's `into` would serialize a clone that is
/// never wiped); deserialized into the one `String` serde builds, which it then owns.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Secret(String);

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl Secret {
    /// The secret's text; call only where it is handed to the tunnel.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Secret {
    type Error = FieldError;
    fn try_from(mut s: String) -> Result<Self, FieldError> {
        let check = check_len(&s, SECRET_MAX).and_then(|()| {
            if s.contains('\0') {
                Err(FieldError::Forbidden { what: "a NUL byte" })
            } else {
                Ok(())
            }
        });
        match check {
            Ok(()) => Ok(Self(s)),
            Err(e) => {
                s.zeroize();
                Err(e)
            }
        }
    }
}

impl TryFrom<&str> for Secret {
    type Error = FieldError;
    fn try_from(s: &str) -> Result<Self, FieldError> {
        Self::try_from(s.to_owned())
    }
}

impl From<Secret> for String {
    fn from(mut v: Secret) -> String {
        std::mem::take(&mut v.0)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Debug for ProfileText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Profiles carry private keys inline.
        write!(f, "ProfileText(<{} bytes>)", self.0.len())
    }
}

macro_rules! debug_as_str {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    )*};
}
debug_as_str!(ProfileName, Username, ShortText, LogText);

/// A session's id, unique for the helper's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_name_rules() {
        assert!(ProfileName::try_from("work vpn").is_ok());
        assert!(ProfileName::try_from("Büro-1").is_ok());
        assert_eq!(ProfileName::try_from(""), Err(FieldError::Empty));
        assert_eq!(
            ProfileName::try_from("a\u{7}b"),
            Err(FieldError::ControlChar { at: 1 })
        );
        assert!(matches!(
            ProfileName::try_from("../etc"),
            Err(FieldError::Forbidden { .. })
        ));
        assert!(matches!(
            ProfileName::try_from(" x"),
            Err(FieldError::Forbidden { .. })
        ));
        assert!(matches!(
            ProfileName::try_from("x".repeat(101)),
            Err(FieldError::TooLong { len: 101, max: 100 })
        ));
    }

    #[test]
    fn profile_text_allows_newlines_not_nul() {
        assert!(ProfileText::try_from("client\r\nremote a 1\n\tdev tun\n").is_ok());
        assert!(matches!(
            ProfileText::try_from("client\0"),
            Err(FieldError::ControlChar { at: 6 })
        ));
        assert_eq!(ProfileText::try_from(" \n"), Err(FieldError::Empty));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::try_from("hunter2").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
        assert!(Secret::try_from("a\0b").is_err());
        let t = ProfileText::try_from("<key>\nSECRETKEY\n</key>").unwrap();
        assert!(!format!("{t:?}").contains("SECRETKEY"));
    }

    #[test]
    fn sanitized_never_fails_and_fits() {
        let s = ShortText::sanitized(&format!("bad\u{1b}[31m{}", "é".repeat(2000)));
        assert!(s.as_str().len() <= SHORT_TEXT_MAX);
        assert!(!s.as_str().contains('\u{1b}'));
        assert!(ShortText::try_from(s.as_str()).is_ok());
    }
}
