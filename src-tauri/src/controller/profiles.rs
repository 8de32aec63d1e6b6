//! Profiles through the controller: import (with the report the window shows), rename,
//! duplicate, delete and details. Saved credentials follow a profile's id.

use std::path::Path;

use super::{Actor, ControllerSnapshot};
use crate::error::AppError;
use crate::model::{AppEvent, ImportReport, LogLevel, ProfileDetails, ProfileSummary};
use crate::profiles::facts;

impl Actor {
    pub(super) fn snapshot(&self) -> ControllerSnapshot {
        ControllerSnapshot {
            profiles: self.summaries(),
            state: self.primary_state(),
            connections: self.connections(),
            prompt: self.prompt.as_ref().map(|p| p.prompt.clone()),
            log: self.log.iter().cloned().collect(),
            stats: self.stats.iter().cloned().collect(),
            socket: self.socket_str(),
            service: self.reattach.view(),
        }
    }

    pub(super) fn summaries(&self) -> Vec<ProfileSummary> {
        match self.repo.list() {
            Ok(list) => {
                let mut v: Vec<ProfileSummary> = list.iter().map(|p| facts(p).summary).collect();
                v.sort_by_key(|s| s.name.to_lowercase());
                v
            }
            Err(e) => {
                tracing::warn!(error = %e.details, "listing profiles failed");
                Vec::new()
            }
        }
    }

    pub(super) fn after_profiles_changed(&mut self, changed: bool) {
        if changed {
            self.sink.emit(AppEvent::Profiles(self.summaries()));
        }
    }

    pub(super) fn import(
        &mut self,
        path: &Path,
        supplied: &[profile_store::Supplied],
    ) -> Result<ImportReport, AppError> {
        let imported = self.repo.import_file(path, supplied)?;
        Ok(self.after_import(imported))
    }

    pub(super) fn import_bytes(
        &mut self,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<ImportReport, AppError> {
        let imported = self.repo.import_bytes(file_name, bytes)?;
        Ok(self.after_import(imported))
    }

    /// Credentials to the keyring, a log line, the list and the report to the window.
    fn after_import(&mut self, imported: crate::profiles::Imported) -> ImportReport {
        let (stored, report) = (imported.stored, imported.report);
        if let (Some(p), Some(c)) = (&stored, &imported.credentials) {
            if let Err(e) = self.secrets.save(&p.id, c) {
                self.warn_error(&e);
            }
        }
        // The proxy's pair goes to its own entry (asked for again if the proxy refuses it).
        if let (Some(p), Some(c)) = (&stored, &imported.proxy_credentials) {
            if let Err(e) = self.secrets.save_proxy(&p.id, c) {
                self.warn_error(&e);
            }
        }
        match &stored {
            Some(p) => self.app_log(LogLevel::Info, format!("Imported profile \"{}\".", p.name)),
            None => self.app_log(
                LogLevel::Warn,
                format!(
                    "Could not import {}: {}",
                    report.file_name,
                    report.reason.clone().unwrap_or_default()
                ),
            ),
        }
        self.after_profiles_changed(stored.is_some());
        self.sink.emit(AppEvent::Imported(report.clone()));
        report
    }

    pub(super) fn rename(&mut self, id: &str, name: &str) -> Result<ProfileSummary, AppError> {
        if self.is_active(id) {
            return Err(AppError::busy("Disconnect before renaming this profile."));
        }
        let p = self.repo.rename(id, name)?;
        if p.id != id {
            // Saved credentials follow the profile.
            if let Ok(Some(saved)) = self.secrets.load(id) {
                let moved = self
                    .secrets
                    .save(&p.id, &saved)
                    .and_then(|()| self.secrets.forget(id));
                if let Err(e) = moved {
                    self.warn_error(&e);
                }
            }
            if let Ok(Some(saved)) = self.secrets.load_proxy(id) {
                let moved = self
                    .secrets
                    .save_proxy(&p.id, &saved)
                    .and_then(|()| self.secrets.forget_proxy(id));
                if let Err(e) = moved {
                    self.warn_error(&e);
                }
            }
        }
        Ok(facts(&p).summary)
    }

    pub(super) fn delete(&mut self, id: &str) -> Result<(), AppError> {
        if self.is_active(id) {
            return Err(AppError::busy("Disconnect before deleting this profile."));
        }
        self.repo.delete(id)?;
        if let Err(e) = self
            .secrets
            .forget(id)
            .and_then(|()| self.secrets.forget_proxy(id))
        {
            self.warn_error(&e);
        }
        Ok(())
    }

    pub(super) fn details(&self, id: &str) -> Result<ProfileDetails, AppError> {
        let p = self.repo.load(id)?;
        let mut d = facts(&p).details;
        d.saved_credentials = matches!(self.secrets.load(id), Ok(Some(_)));
        Ok(d)
    }
}
