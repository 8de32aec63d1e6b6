//! The user's stored profiles, through profile-store (the only code that opens the
//! files a profile names; it runs as the user, never in the helper).

use std::path::Path;

use anyhow::{bail, Context};
use profile_store::{NameChoice, Store, StoreError};

pub fn store() -> anyhow::Result<Store> {
    Store::open_default().context("opening the profile folder")
}

pub struct Imported {
    pub name: String,
    pub report: ovpn_profile::Report,
    /// A user name/password came with the profile (file or inline) and was not stored.
    pub had_credentials: bool,
}

pub fn import(file: &Path, name: Option<&str>) -> anyhow::Result<Imported> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("the file name is not valid UTF-8; pass --name")?
            .to_owned(),
    };
    // Both rules apply: the store's file-name rules and the IPC's.
    profile_store::validate_name(&name)?;
    ipc::ProfileName::try_from(name.as_str())
        .map_err(|e| anyhow::anyhow!("invalid profile name {name:?}: {e}"))?;
    // The same flow as the app's import (profile-store owns it).
    let imported = profile_store::import_path(&store()?, file, NameChoice::Exact(&name))?;
    let Some(name) = imported.name else {
        bail!(
            "{} cannot be used: {}\n{}",
            file.display(),
            imported.report.reason.clone().unwrap_or_default(),
            imported.report.to_text().trim_end()
        );
    };
    Ok(Imported {
        name,
        report: imported.report,
        had_credentials: imported.credentials.is_some(),
    })
}

pub fn list() -> anyhow::Result<Vec<String>> {
    Ok(store()?.list()?)
}

pub struct Loaded {
    pub name: ipc::ProfileName,
    pub text: ipc::ProfileText,
    pub profile: ovpn_profile::Profile,
}

pub fn load(name: &str) -> anyhow::Result<Loaded> {
    let store = store()?;
    let text = store.read_text(name).map_err(|e| match e {
        StoreError::NotFound(_) => anyhow::anyhow!(
            "no profile named {name:?} (see `oxivpnctl list`, or `oxivpnctl import FILE`)"
        ),
        other => other.into(),
    })?;
    let profile = store.load(name)?;
    Ok(Loaded {
        name: ipc::ProfileName::try_from(name)
            .map_err(|e| anyhow::anyhow!("invalid profile name {name:?}: {e}"))?,
        text: ipc::ProfileText::try_from(text)
            .map_err(|e| anyhow::anyhow!("stored profile {name:?}: {e}"))?,
        profile,
    })
}
