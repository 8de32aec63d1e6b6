//! A profile that names files which are not next to it (the `ca`, `cert` or `key` the
//! user was sent separately): import stores nothing and the window asks for each file
//! by name; the user's picks go back to profile-store as supplied files, the same
//! rule `oxivpnctl import --file NAME=PATH` follows.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{AppError, ErrorKind};

/// One file the profile names that was not found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MissingFileView {
    /// The directive naming it (`ca`, `cert`, `key`, `tls-auth`, ...).
    pub directive: String,
    /// The name as the profile writes it (what the user supplies a file for).
    pub name: String,
    pub line: Option<u32>,
    /// Where import looked for it.
    pub looked: Vec<String>,
}

/// The profile being imported and what it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MissingFilesView {
    /// The profile's path, for importing it again with the picked files.
    pub profile_path: String,
    pub files: Vec<MissingFileView>,
}

/// A file the user picked for a name the profile writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SuppliedFile {
    pub name: String,
    pub path: String,
}

impl SuppliedFile {
    pub fn to_store(&self) -> profile_store::Supplied {
        profile_store::Supplied {
            name: self.name.clone(),
            path: PathBuf::from(&self.path),
        }
    }
}

/// The window's error for profile-store's `MissingFiles`.
pub fn missing_files_error(
    file_name: &str,
    profile: &Path,
    missing: &[profile_store::MissingFile],
    details: String,
) -> AppError {
    let files: Vec<MissingFileView> = missing
        .iter()
        .map(|m| MissingFileView {
            directive: m.need.kind.directive().to_owned(),
            name: m.need.path.clone(),
            line: m.need.line,
            looked: m.looked.iter().map(|p| p.display().to_string()).collect(),
        })
        .collect();
    let mut e = AppError::new(
        ErrorKind::MissingFiles,
        format!(
            "{file_name} names {} file(s) that were not found next to it; choose each one to import it.",
            files.len()
        ),
        details,
    );
    e.missing_files = Some(Box::new(MissingFilesView {
        profile_path: profile.display().to_string(),
        files,
    }));
    e
}
