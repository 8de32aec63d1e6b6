//! Per-user profile storage: one `<name>.ovpn` per profile, 0600 files in a 0700
//! folder, atomic writes, names that are safe as file names everywhere.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ovpn_profile::Profile;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid profile name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("no profile named {0:?}")]
    NotFound(String),
    #[error("a profile named {0:?} already exists")]
    AlreadyExists(String),
    #[error("cannot find the user's data folder (is $HOME set?)")]
    NoDataDir,
    #[error("stored profile {name:?} cannot be read: {source}")]
    Corrupt {
        name: String,
        #[source]
        source: ovpn_profile::ParseError,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const EXT: &str = "ovpn";
const MAX_NAME_BYTES: usize = 100;

/// Check a profile name: 1-100 bytes, no path separators, control characters or
/// characters Windows forbids, not starting with `.` or space, not ending with `.` or space.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad("it is longer than 100 bytes");
    }
    if name.chars().any(|c| {
        c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
    }) {
        return bad("it contains a control character or one of / \\ : * ? \" < > |");
    }
    if name.starts_with(['.', ' ']) || name.ends_with(['.', ' ']) {
        return bad("it starts or ends with a dot or a space");
    }
    let upper = name.to_ascii_uppercase();
    let stem = upper.split('.').next().unwrap_or("");
    let reserved = ["CON", "PRN", "AUX", "NUL"].contains(&stem)
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        return bad("it is a reserved device name on Windows");
    }
    Ok(())
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// The user's profile folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// `$XDG_DATA_HOME/oxivpn/profiles` (platform data folder elsewhere).
    pub fn open_default() -> Result<Store, StoreError> {
        let base = dirs::data_dir().ok_or(StoreError::NoDataDir)?;
        Store::open(base.join("oxivpn").join("profiles"))
    }

    /// A store in `dir` (created 0700 if missing; tightened to 0700 if looser).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        Ok(Store { dir })
    }

    /// The folder holding the profiles.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_name(name)?;
        Ok(self.dir.join(format!("{name}.{EXT}")))
    }

    /// Names of stored profiles, sorted.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io("cannot list", &self.dir))? {
            let e = e.map_err(io("cannot list", &self.dir))?;
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some(EXT) {
                continue;
            }
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                if validate_name(stem).is_ok() && e.file_type().is_ok_and(|t| t.is_file()) {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Whether a profile exists.
    pub fn exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.path(name)?.is_file())
    }

    /// Store a profile (canonical text: refused directives and credentials are not
    /// written). Replaces an existing profile of that name.
    pub fn save(&self, name: &str, profile: &Profile) -> Result<(), StoreError> {
        let path = self.path(name)?;
        let mut p = profile.clone();
        // Never write a password to disk.
        let _ = p.take_credentials();
        write_atomic(&self.dir, &path, p.to_ovpn_text().as_bytes())
    }

    /// Store only if no profile of that name exists.
    pub fn save_new(&self, name: &str, profile: &Profile) -> Result<(), StoreError> {
        if self.exists(name)? {
            return Err(StoreError::AlreadyExists(name.to_string()));
        }
        self.save(name, profile)
    }

    /// The stored text.
    pub fn read_text(&self, name: &str) -> Result<String, StoreError> {
        let path = self.path(name)?;
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(name.to_string()))
            }
            Err(e) => Err(io("cannot read", &path)(e)),
        }
    }

    /// The stored profile, parsed.
    pub fn load(&self, name: &str) -> Result<Profile, StoreError> {
        let text = self.read_text(name)?;
        ovpn_profile::parse(text.as_bytes())
            .map(|p| p.profile)
            .map_err(|source| StoreError::Corrupt {
                name: name.to_string(),
                source,
            })
    }

    /// Rename; fails if `to` exists.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let (a, b) = (self.path(from)?, self.path(to)?);
        if !a.is_file() {
            return Err(StoreError::NotFound(from.to_string()));
        }
        if a == b {
            return Ok(());
        }
        // hard_link refuses to replace an existing file, unlike rename.
        match std::fs::hard_link(&a, &b) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists(to.to_string()))
            }
            Err(e) => return Err(io("cannot rename to", &b)(e)),
        }
        std::fs::remove_file(&a).map_err(io("cannot remove", &a))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Copy a profile under a new name; fails if `to` exists.
    pub fn duplicate(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let text = self.read_text(from)?;
        let dest = self.path(to)?;
        if dest.exists() {
            return Err(StoreError::AlreadyExists(to.to_string()));
        }
        write_atomic(&self.dir, &dest, text.as_bytes())
    }

    /// Delete a profile.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(name.to_string()))
            }
            Err(e) => Err(io("cannot delete", &path)(e)),
        }
    }

    /// A name not used yet, derived from `base` ("Work", "Work (2)", ...).
    pub fn free_name(&self, base: &str) -> Result<String, StoreError> {
        validate_name(base)?;
        if !self.exists(base)? {
            return Ok(base.to_string());
        }
        for i in 2..10_000 {
            let n = format!("{base} ({i})");
            if validate_name(&n).is_ok() && !self.exists(&n)? {
                return Ok(n);
            }
        }
        Err(StoreError::AlreadyExists(base.to_string()))
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("cannot create", dir))?;
        let meta = std::fs::metadata(dir).map_err(io("cannot inspect", dir))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io("cannot restrict permissions of", dir))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    Ok(())
}

/// Write to a temporary file (0600) in the same folder, flush it, rename it over
/// the destination, then sync the folder: readers see the old or the new file.
fn write_atomic(dir: &Path, dest: &Path, data: &[u8]) -> Result<(), StoreError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}.part", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp).map_err(io("cannot create", &tmp))?;
        f.write_all(data).map_err(io("cannot write", &tmp))?;
        f.sync_all().map_err(io("cannot flush", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, dest).map_err(io("cannot replace", dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir);
    tracing::debug!(path = %dest.display(), "profile stored");
    Ok(())
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["Work", "NL Amsterdam #1", "café-vpn", "a.b"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a\\b",
            "x\0",
            "trailing.",
            " lead",
            "CON",
            "com1",
            "a:b",
            &"x".repeat(101),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
