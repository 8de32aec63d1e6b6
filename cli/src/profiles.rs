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
    /// `askpass FILE` held the private key's passphrase (read, not stored).
    pub had_key_passphrase: bool,
    /// Proxy credentials came with the profile (file or inline) and were not stored.
    pub had_proxy_credentials: bool,
}

/// `--file NAME=PATH`: NAME is the file as the profile writes it, or its bare name.
pub fn parse_supplied(arg: &str) -> Result<profile_store::Supplied, String> {
    let (name, path) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?}: expected NAME=PATH (e.g. ca.crt=/home/me/ca.crt)"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("{arg:?}: both NAME and PATH are needed"));
    }
    Ok(profile_store::Supplied {
        name: name.to_owned(),
        path: path.into(),
    })
}

/// Why an import stored nothing because files the profile names are missing:
/// profile-store's list (line, directive, every path tried) plus how to supply them here.
fn missing_files_message(file: &Path, err: &profile_store::ImportError) -> String {
    let example = match err {
        profile_store::ImportError::MissingFiles(missing) => missing
            .first()
            .and_then(|m| m.need.path.rsplit(['/', '\\']).next())
            .unwrap_or("ca.crt")
            .to_owned(),
        _ => "ca.crt".to_owned(),
    };
    format!(
        "{} was not imported: {err}\nput the files next to the profile, or name each one with --file NAME=PATH (e.g. --file {example:?}=/path/to/{example})",
        file.display()
    )
}

pub fn import(
    file: &Path,
    name: Option<&str>,
    supplied: &[profile_store::Supplied],
) -> anyhow::Result<Imported> {
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
    let imported = match profile_store::import_path_with(
        &store()?,
        file,
        supplied,
        NameChoice::Exact(&name),
    ) {
        Err(e @ profile_store::ImportError::MissingFiles(_)) => {
            bail!("{}", missing_files_message(file, &e))
        }
        other => other?,
    };
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
        had_key_passphrase: imported.key_passphrase.is_some(),
        had_proxy_credentials: imported.proxy_credentials.is_some(),
    })
}

/// Import a downloaded profile through the same flow as a file (`import_bytes`: no
/// folder next to it, so every file it names must be inline). Named `name`, else after
/// the download's file name (" (2)" when taken).
pub fn import_downloaded(
    fetched: &profile_store::fetch::Fetched,
    name: Option<&str>,
) -> anyhow::Result<Imported> {
    let stem = fetched
        .file_name
        .strip_suffix(".ovpn")
        .or_else(|| fetched.file_name.strip_suffix(".conf"))
        .unwrap_or(&fetched.file_name);
    let choice = match name {
        Some(n) => {
            ipc::ProfileName::try_from(n)
                .map_err(|e| anyhow::anyhow!("invalid profile name {n:?}: {e}"))?;
            NameChoice::Exact(n)
        }
        None => NameChoice::Derived(stem),
    };
    let imported = match profile_store::import_bytes(&store()?, &fetched.bytes, None, choice) {
        Err(e @ profile_store::ImportError::MissingFiles(_)) => bail!(
            "the downloaded profile {} was not imported: {e}\nit names files instead of holding them inline: ask for a profile with the keys inside",
            fetched.file_name
        ),
        other => other?,
    };
    let Some(name) = imported.name else {
        bail!(
            "the downloaded profile {} cannot be used: {}\n{}",
            fetched.file_name,
            imported.report.reason.clone().unwrap_or_default(),
            imported.report.to_text().trim_end()
        );
    };
    Ok(Imported {
        name,
        report: imported.report,
        had_credentials: imported.credentials.is_some(),
        had_key_passphrase: imported.key_passphrase.is_some(),
        had_proxy_credentials: imported.proxy_credentials.is_some(),
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
