//! The import flow the app and `oxivpnctl` share: read a profile (and the files it
//! names), decide its stored name, store it when usable, and hand back the report and
//! the credentials it carried (for the keyring; they are never written to disk).

use std::path::{Path, PathBuf};

use ovpn_profile::Report;

use crate::resolve::{
    resolve_bytes, resolve_with, Credentials, MissingFile, ResolveError, Supplied,
};
use crate::store::{validate_name, Store, StoreError};

/// How the stored profile is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameChoice<'a> {
    /// Exactly this name; fails when it is taken or not allowed.
    Exact(&'a str),
    /// Derived from this text (a file stem, a URL's last segment): characters the store
    /// refuses become `_`, and a taken name gets " (2)", " (3)", ...
    Derived(&'a str),
}

/// What one import did.
#[derive(Debug, Clone)]
pub struct Import {
    /// The name it was stored under; `None` when the profile is not usable (see the report).
    pub name: Option<String>,
    pub report: Report,
    /// `auth-user-pass` user name and password that came with the profile.
    pub credentials: Option<Credentials>,
    /// Proxy user name and password that came with the profile.
    pub proxy_credentials: Option<Credentials>,
    /// The private key's passphrase from `askpass FILE` (for the keyring; only when
    /// the profile was stored).
    pub key_passphrase: Option<ovpn_profile::inline::KeyPassphrase>,
}

/// Why an import stopped before producing a report.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] ResolveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Files the profile names (certificates, keys, ...) were not found; nothing was
    /// stored. Credential files are not in this list: connect asks for those.
    #[error("{}", missing_files_text(.0))]
    MissingFiles(Vec<MissingFile>),
    /// A file was supplied for a name the profile never uses (a typo in `--file`).
    #[error("--file {name}={path}: the profile names no file {name:?}")]
    UnusedSupplied { name: String, path: String },
}

/// "N file(s) ... could not be found" with, per file, its line, directive, the name as
/// written and every path that was tried.
fn missing_files_text(missing: &[MissingFile]) -> String {
    let mut s = format!(
        "{} file(s) the profile names could not be found",
        missing.len()
    );
    for m in missing {
        let line = m
            .need
            .line
            .map(|l| format!("line {l}, "))
            .unwrap_or_default();
        let looked: Vec<String> = m.looked.iter().map(|p| p.display().to_string()).collect();
        s.push_str(&format!(
            "\n  {line}{} {:?}: looked at {}",
            m.need.kind.directive(),
            m.need.path,
            if looked.is_empty() {
                "nowhere (the profile did not come from a folder)".to_string()
            } else {
                looked.join(", ")
            }
        ));
    }
    s
}

/// Import the profile file at `path` (its references are read next to it).
pub fn import_path(
    store: &Store,
    path: &Path,
    name: NameChoice<'_>,
) -> Result<Import, ImportError> {
    import_path_with(store, path, &[], name)
}

/// [`import_path`], taking the files in `supplied` (`--file NAME=PATH`, or picked by the
/// user in the app) instead of looking for them next to the profile.
pub fn import_path_with(
    store: &Store,
    path: &Path,
    supplied: &[Supplied],
    name: NameChoice<'_>,
) -> Result<Import, ImportError> {
    let resolved = resolve_with(path, supplied)?;
    refuse_missing(resolved.report.usable, &resolved.missing)?;
    for s in supplied.iter().filter(|_| resolved.report.usable) {
        // A supplied file that was read is reported as honoured under its path.
        let used = resolved.report.findings.iter().any(|f| {
            f.severity == ovpn_profile::Severity::Honoured
                && f.message.starts_with(&s.path.display().to_string())
        });
        if !used {
            return Err(ImportError::UnusedSupplied {
                name: s.name.clone(),
                path: s.path.display().to_string(),
            });
        }
    }
    let key_passphrase = resolved.key_passphrase.clone();
    finish(
        store,
        name,
        resolved.profile.filter(|_| resolved.report.usable),
        resolved.report,
        resolved.credentials,
        resolved.proxy_credentials,
    )
    .map(|i| with_key_passphrase(i, key_passphrase))
}

/// Import profile text that did not come from a file (a download). Files it names are
/// looked for in `dir` when given; without one they are reported as missing.
pub fn import_bytes(
    store: &Store,
    bytes: &[u8],
    dir: Option<&Path>,
    name: NameChoice<'_>,
) -> Result<Import, ImportError> {
    // A folder that cannot exist: every reference is then reported as not found.
    let nowhere = PathBuf::from("/nonexistent/oxivpn-download");
    let resolved = resolve_bytes(bytes, dir.unwrap_or(&nowhere));
    refuse_missing(resolved.report.usable, &resolved.missing)?;
    let key_passphrase = resolved.key_passphrase.clone();
    finish(
        store,
        name,
        resolved.profile.filter(|_| resolved.report.usable),
        resolved.report,
        resolved.credentials,
        resolved.proxy_credentials,
    )
    .map(|i| with_key_passphrase(i, key_passphrase))
}

fn with_key_passphrase(mut i: Import, p: Option<ovpn_profile::inline::KeyPassphrase>) -> Import {
    if i.name.is_some() {
        i.key_passphrase = p;
    }
    i
}

/// A usable profile whose certificate/key files are missing is not stored: it would only
/// fail at connect. (An unusable one is reported by its report, which says why first.)
fn refuse_missing(usable: bool, missing: &[MissingFile]) -> Result<(), ImportError> {
    let missing: Vec<MissingFile> = missing
        .iter()
        .filter(|m| !m.need.kind.is_credentials())
        .cloned()
        .collect();
    if usable && !missing.is_empty() {
        return Err(ImportError::MissingFiles(missing));
    }
    Ok(())
}

fn finish(
    store: &Store,
    name: NameChoice<'_>,
    profile: Option<ovpn_profile::Profile>,
    report: Report,
    credentials: Option<Credentials>,
    proxy_credentials: Option<Credentials>,
) -> Result<Import, ImportError> {
    let Some(profile) = profile else {
        return Ok(Import {
            name: None,
            report,
            credentials: None,
            proxy_credentials: None,
            key_passphrase: None,
        });
    };
    let name = match name {
        NameChoice::Exact(n) => {
            validate_name(n)?;
            n.to_string()
        }
        NameChoice::Derived(text) => store.free_name(&name_from_text(text))?,
    };
    store.save_new(&name, &profile)?;
    Ok(Import {
        name: Some(name),
        report,
        credentials,
        proxy_credentials,
        key_passphrase: None,
    })
}

/// A file stem (or similar text) as a storable name: characters the store refuses
/// become "_", leading/trailing dots and spaces go, at most 64 characters; "Profile"
/// when nothing usable is left.
pub fn name_from_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '.' || c == ' ');
    let s: String = trimmed.chars().take(64).collect();
    let s = s.trim_end_matches(['.', ' ']).to_string();
    if validate_name(&s).is_err() {
        "Profile".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../../ovpn-profile/tests/fixtures/ca.crt");

    fn profile() -> String {
        format!("client\ndev tun\nremote vpn.example.com 1194\n<ca>\n{CA}</ca>\n")
    }

    #[test]
    fn derived_names_are_cleaned_and_made_unique() {
        assert_eq!(name_from_text("Work: main"), "Work_ main");
        assert_eq!(name_from_text(" .hidden. "), "hidden");
        assert_eq!(name_from_text("..."), "Profile");
        assert_eq!(name_from_text("CON"), "Profile");
        assert!(name_from_text(&"x".repeat(90)).len() <= 64);
    }

    #[test]
    fn files_and_bytes_are_stored_under_free_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let src = dir.path().join("Work.ovpn");
        std::fs::write(&src, profile()).unwrap();
        let a = import_path(&store, &src, NameChoice::Derived("Work")).unwrap();
        assert_eq!(a.name.as_deref(), Some("Work"));
        let b = import_path(&store, &src, NameChoice::Derived("Work")).unwrap();
        assert_eq!(b.name.as_deref(), Some("Work (2)"));
        assert!(matches!(
            import_path(&store, &src, NameChoice::Exact("Work")),
            Err(ImportError::Store(StoreError::AlreadyExists(_)))
        ));
        let c = import_bytes(
            &store,
            profile().as_bytes(),
            None,
            NameChoice::Derived("dl"),
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("dl"));
        assert_eq!(store.list().unwrap(), ["Work", "Work (2)", "dl"]);
    }

    #[test]
    fn an_unusable_profile_is_reported_and_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let html = b"<!DOCTYPE html><html><body>Sign in</body></html>";
        let r = import_bytes(&store, html, None, NameChoice::Derived("x")).unwrap();
        assert_eq!(r.name, None);
        assert!(!r.report.usable);
        assert!(store.list().unwrap().is_empty());
    }
}
