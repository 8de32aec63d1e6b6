//! The user's settings, kept as JSON in the platform's config dir
//! (`~/.config/oxivpn/settings.json`, `%APPDATA%\oxivpn\settings.json`,
//! `~/Library/Application Support/oxivpn/settings.json`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::AppError;
use crate::model::Settings;

#[derive(Debug)]
pub struct SettingsStore {
    path: PathBuf,
    current: Mutex<Settings>,
}

impl SettingsStore {
    /// Reads `path`; a missing or unreadable file gives the defaults (logged, not fatal).
    /// A damaged file is first copied to `settings.json.damaged` so that saving the
    /// defaults later does not lose what the user had (it can be repaired by hand).
    pub fn open(path: PathBuf) -> Self {
        let current = match std::fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s).unwrap_or_else(|e| {
                let keep = path.with_extension("json.damaged");
                let kept = std::fs::copy(&path, &keep).is_ok();
                tracing::warn!(path = %path.display(), error = %e, kept_as = %keep.display(), kept,
                    "settings unreadable; using defaults");
                Settings::default()
            }),
            Err(_) => Settings::default(),
        };
        Self {
            path,
            current: Mutex::new(current),
        }
    }

    pub fn default_path() -> PathBuf {
        config_dir().join("oxivpn").join("settings.json")
    }

    pub fn get(&self) -> Settings {
        self.current.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set(&self, s: Settings) -> Result<Settings, AppError> {
        write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&s).map_err(AppError::internal)?,
        )?;
        let mut cur = self.current.lock().map_err(AppError::internal)?;
        *cur = s.clone();
        Ok(s)
    }
}

fn config_dir() -> PathBuf {
    // Windows and macOS: the platform's place (Roaming AppData, Application Support).
    #[cfg(not(target_os = "linux"))]
    {
        if let Some(d) = dirs::config_dir() {
            return d;
        }
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".config");
    }
    std::env::temp_dir()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let fail = |e: std::io::Error| {
        AppError::file(
            "Could not save the settings.",
            format!("{}: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_persist_and_bad_files_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.json");
        let s = SettingsStore::open(path.clone());
        assert_eq!(s.get(), Settings::default());
        let mut new = s.get();
        new.start_at_login = true;
        new.notifications = false;
        s.set(new.clone()).unwrap();
        assert_eq!(SettingsStore::open(path.clone()).get(), new);
        std::fs::write(&path, "{nope").unwrap();
        assert_eq!(SettingsStore::open(path.clone()).get(), Settings::default());
        assert_eq!(
            std::fs::read_to_string(path.with_extension("json.damaged")).unwrap(),
            "{nope",
            "the damaged file is kept"
        );
    }

    #[test]
    fn older_files_gain_the_new_settings_and_profiles_can_override() {
        use crate::model::{KillSwitchChoice, Protection, ProtectionSource};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(
            &path,
            r#"{"startAtLogin":true,"notifications":false,"closeToTray":true}"#,
        )
        .unwrap();
        let s = SettingsStore::open(path.clone());
        let mut got = s.get();
        assert!(got.start_at_login);
        assert_eq!(got.protection, Protection::default());
        let own = Protection {
            kill_switch: KillSwitchChoice::Always,
            allow_lan: true,
        };
        got.profile_protection.insert("Work".into(), own);
        got.protection.kill_switch = KillSwitchChoice::Off;
        s.set(got).unwrap();
        let again = SettingsStore::open(path).get();
        assert_eq!(
            again.protection_for("Work"),
            (own, ProtectionSource::Profile)
        );
        let (p, src) = again.protection_for("Home");
        assert_eq!(
            (p.kill_switch, src),
            (KillSwitchChoice::Off, ProtectionSource::Global)
        );
        assert_eq!(own.to_ipc().kill_switch, ipc::KillSwitchMode::On);
        assert!(own.to_ipc().allow_lan);
    }
}
