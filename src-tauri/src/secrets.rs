//! Remembered user names and passwords: the OS keyring (Secret Service on Linux,
//! Keychain, Credential Manager), one entry per profile id, and for a profile whose
//! `http-proxy` / `socks-proxy` needs them, the proxy's user name and password in an
//! entry of their own (service [`PROXY_SERVICE`], same profile id).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{AppError, ErrorKind};

const SERVICE: &str = "org.oxivpn.app";
/// The keyring service of the proxy entries: apart from the VPN password's, so that
/// forgetting a refused proxy password keeps the VPN's and the other way round.
pub const PROXY_SERVICE: &str = "org.oxivpn.app.proxy";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCredentials {
    pub username: String,
    pub password: String,
    /// The private key's (or PKCS#12 archive's) passphrase; empty user name and
    /// password when the profile asks for nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase: Option<String>,
}

impl std::fmt::Debug for SavedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub trait SecretStore: Send + Sync + 'static {
    fn load(&self, profile_id: &str) -> Result<Option<SavedCredentials>, AppError>;
    fn save(&self, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError>;
    /// Removing what is not there is not an error.
    fn forget(&self, profile_id: &str) -> Result<(), AppError>;
    /// The profile's proxy user name and password (`key_passphrase` unused).
    fn load_proxy(&self, profile_id: &str) -> Result<Option<SavedCredentials>, AppError>;
    fn save_proxy(&self, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError>;
    /// Removing what is not there is not an error.
    fn forget_proxy(&self, profile_id: &str) -> Result<(), AppError>;
}

fn keyring_error(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::new(
        ErrorKind::Keyring,
        format!("The system keyring could not {what}."),
        e.to_string(),
    )
    .with_hint(
        "Make sure a keyring (GNOME Keyring, KWallet) is running and unlocked, \
         or connect without \"Remember\".",
    )
}

/// The real store.
#[derive(Debug, Default)]
pub struct Keyring;

impl Keyring {
    fn entry(service: &str, profile_id: &str) -> Result<keyring::Entry, AppError> {
        keyring::Entry::new(service, profile_id).map_err(|e| keyring_error("be opened", e))
    }

    fn load_from(service: &str, profile_id: &str) -> Result<Option<SavedCredentials>, AppError> {
        match Self::entry(service, profile_id)?.get_password() {
            Ok(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| keyring_error("read the saved password", e)),
            Err(keyring::Error::NoEntry) => Ok(None),
            // No keyring (or no collection in it) means nothing was saved: ask, don't warn.
            Err(e) => {
                tracing::debug!(error = %e, "keyring unavailable; nothing saved");
                Ok(None)
            }
        }
    }

    fn save_to(service: &str, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError> {
        let s = serde_json::to_string(creds).map_err(AppError::internal)?;
        Self::entry(service, profile_id)?
            .set_password(&s)
            .map_err(|e| keyring_error("save the password", e))
    }

    fn forget_in(service: &str, profile_id: &str) -> Result<(), AppError> {
        match Self::entry(service, profile_id)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            // Without a usable keyring there is nothing to remove.
            Err(e @ (keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_))) => {
                tracing::debug!(error = %e, "keyring unavailable; nothing to forget");
                Ok(())
            }
            Err(e) => Err(keyring_error("remove the saved password", e)),
        }
    }
}

impl SecretStore for Keyring {
    fn load(&self, profile_id: &str) -> Result<Option<SavedCredentials>, AppError> {
        Self::load_from(SERVICE, profile_id)
    }
    fn save(&self, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError> {
        Self::save_to(SERVICE, profile_id, creds)
    }
    fn forget(&self, profile_id: &str) -> Result<(), AppError> {
        Self::forget_in(SERVICE, profile_id)
    }
    fn load_proxy(&self, profile_id: &str) -> Result<Option<SavedCredentials>, AppError> {
        Self::load_from(PROXY_SERVICE, profile_id)
    }
    fn save_proxy(&self, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError> {
        Self::save_to(PROXY_SERVICE, profile_id, creds)
    }
    fn forget_proxy(&self, profile_id: &str) -> Result<(), AppError> {
        Self::forget_in(PROXY_SERVICE, profile_id)
    }
}

/// For tests, and when no keyring is wanted.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    map: Mutex<HashMap<String, SavedCredentials>>,
    proxy: Mutex<HashMap<String, SavedCredentials>>,
}

impl SecretStore for MemorySecrets {
    fn load(&self, profile_id: &str) -> Result<Option<SavedCredentials>, AppError> {
        let m = self.map.lock().map_err(AppError::internal)?;
        Ok(m.get(profile_id).cloned())
    }
    fn save(&self, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError> {
        let mut m = self.map.lock().map_err(AppError::internal)?;
        m.insert(profile_id.to_string(), creds.clone());
        Ok(())
    }
    fn forget(&self, profile_id: &str) -> Result<(), AppError> {
        let mut m = self.map.lock().map_err(AppError::internal)?;
        m.remove(profile_id);
        Ok(())
    }
    fn load_proxy(&self, profile_id: &str) -> Result<Option<SavedCredentials>, AppError> {
        let m = self.proxy.lock().map_err(AppError::internal)?;
        Ok(m.get(profile_id).cloned())
    }
    fn save_proxy(&self, profile_id: &str, creds: &SavedCredentials) -> Result<(), AppError> {
        let mut m = self.proxy.lock().map_err(AppError::internal)?;
        m.insert(profile_id.to_string(), creds.clone());
        Ok(())
    }
    fn forget_proxy(&self, profile_id: &str) -> Result<(), AppError> {
        let mut m = self.proxy.lock().map_err(AppError::internal)?;
        m.remove(profile_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_debug_hides_the_password() {
        let c = SavedCredentials {
            username: "ann".into(),
            password: "hunter2".into(),
            key_passphrase: Some("open sesame".into()),
        };
        let s = format!("{c:?}");
        assert!(s.contains("ann") && !s.contains("hunter2") && !s.contains("sesame"));
        // Entries saved before the passphrase existed still read.
        let old: SavedCredentials =
            serde_json::from_str(r#"{"username":"ann","password":"pw"}"#).unwrap();
        assert_eq!(old.key_passphrase, None);
    }

    #[test]
    fn memory_store_round_trip() {
        let m = MemorySecrets::default();
        assert_eq!(m.load("p").unwrap(), None);
        let c = SavedCredentials {
            username: "ann".into(),
            password: "pw".into(),
            key_passphrase: None,
        };
        m.save("p", &c).unwrap();
        assert_eq!(m.load("p").unwrap(), Some(c));
        m.forget("p").unwrap();
        m.forget("p").unwrap();
        assert_eq!(m.load("p").unwrap(), None);
    }

    #[test]
    fn proxy_entry_is_apart_from_the_vpn_password() {
        let m = MemorySecrets::default();
        let vpn = SavedCredentials {
            username: "ann".into(),
            password: "vpn".into(),
            key_passphrase: None,
        };
        let proxy = SavedCredentials {
            username: "squid".into(),
            password: "px".into(),
            key_passphrase: None,
        };
        m.save("p", &vpn).unwrap();
        m.save_proxy("p", &proxy).unwrap();
        assert_eq!(m.load("p").unwrap(), Some(vpn.clone()));
        assert_eq!(m.load_proxy("p").unwrap(), Some(proxy));
        m.forget_proxy("p").unwrap();
        m.forget_proxy("p").unwrap();
        assert_eq!(m.load_proxy("p").unwrap(), None);
        assert_eq!(m.load("p").unwrap(), Some(vpn), "the VPN password stays");
        assert_ne!(PROXY_SERVICE, SERVICE);
    }
}
