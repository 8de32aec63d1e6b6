//! Tauri commands: validate, ask the controller, return a typed error. Each command is a
//! one-line wrapper around a plain async function in [`ops`] so tests can call them
//! without a window.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Manager as _, State};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_dialog::DialogExt as _;

use crate::controller::Controller;
use crate::error::AppError;
use crate::missing_files::SuppliedFile;
use crate::model::{
    AutoConnect, CredentialsAnswer, ImportReport, NetworkStatus, ProfileDetails, ProfileSummary,
    Protection, RouteCheckView, RoutesView, Settings, Snapshot,
};
use crate::settings::SettingsStore;

/// Shared by every command.
pub struct AppState {
    pub controller: Controller,
    /// Roots that downloads are verified against (the system's).
    pub roots: Arc<rustls::RootCertStore>,
    pub settings: Arc<SettingsStore>,
    /// The trusted-networks rule as the watcher last saw it.
    pub network: crate::autoconnect::SharedStatus,
    /// Reports of imports that happened before the window asked (command line, second launch).
    pub pending_reports: Mutex<Vec<ImportReport>>,
}

pub mod ops {
    use super::*;

    fn check_id(id: &str) -> Result<(), AppError> {
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()) {
            return Err(AppError::invalid("That is not a profile id."));
        }
        Ok(())
    }

    pub async fn get_snapshot(s: &AppState) -> Result<Snapshot, AppError> {
        let c = s.controller.snapshot().await?;
        let pending_reports = s
            .pending_reports
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        Ok(Snapshot {
            profiles: c.profiles,
            state: c.state,
            connections: c.connections,
            prompt: c.prompt,
            log: c.log,
            stats: c.stats,
            settings: s.settings.get(),
            helper_socket: c.socket,
            pending_reports,
            service: c.service,
        })
    }

    pub async fn import_profile(
        s: &AppState,
        path: String,
        files: Vec<SuppliedFile>,
    ) -> Result<ImportReport, AppError> {
        let p = PathBuf::from(path.trim());
        if path.trim().is_empty() {
            return Err(AppError::invalid("No file was given."));
        }
        if !p.is_file() {
            return Err(AppError::file(
                &format!("{} is not a file that can be read.", p.display()),
                "not a regular file",
            ));
        }
        let supplied = files.iter().map(SuppliedFile::to_store).collect();
        s.controller.import(p, supplied).await
    }

    fn fetch_config(s: &AppState) -> profile_store::fetch::FetchConfig {
        profile_store::fetch::FetchConfig {
            roots: s.roots.clone(),
            timeout: std::time::Duration::from_secs(20),
        }
    }

    /// Downloads a profile over https and imports it (the same report as files).
    pub async fn import_profile_url(s: &AppState, url: String) -> Result<ImportReport, AppError> {
        let fetched = crate::download::fetch_url(&url, &fetch_config(s)).await?;
        s.controller
            .import_bytes(fetched.file_name, fetched.bytes)
            .await
    }

    /// Downloads the user's profile from an OpenVPN Access Server and imports it (the
    /// same report as files). An empty password uses the remembered one.
    pub async fn import_access_server(
        s: &AppState,
        request: crate::download::AccessServerRequest,
    ) -> Result<ImportReport, AppError> {
        let secrets = s.controller.secrets();
        let fetched =
            crate::download::fetch_access_server(request, &fetch_config(s), secrets.as_ref())
                .await?;
        s.controller
            .import_bytes(fetched.file_name, fetched.bytes)
            .await
    }

    pub async fn rename_profile(
        s: &AppState,
        id: String,
        name: String,
    ) -> Result<ProfileSummary, AppError> {
        check_id(&id)?;
        let name = crate::profiles::validate_name(&name)?;
        let renamed = s.controller.rename(id.clone(), name).await?;
        // A profile's own settings follow its new id.
        let mut settings = s.settings.get();
        if renamed.id != id {
            let mut changed = false;
            if let Some(p) = settings.profile_protection.remove(&id) {
                settings.profile_protection.insert(renamed.id.clone(), p);
                changed = true;
            }
            if let Some(a) = settings.auto_connect.remove(&id) {
                settings.auto_connect.insert(renamed.id.clone(), a);
                changed = true;
            }
            if settings.untrusted_profile.as_deref() == Some(id.as_str()) {
                settings.untrusted_profile = Some(renamed.id.clone());
                changed = true;
            }
            if changed {
                s.settings.set(settings)?;
            }
        }
        Ok(renamed)
    }

    pub async fn duplicate_profile(s: &AppState, id: String) -> Result<ProfileSummary, AppError> {
        check_id(&id)?;
        s.controller.duplicate(id).await
    }

    pub async fn delete_profile(s: &AppState, id: String) -> Result<(), AppError> {
        check_id(&id)?;
        s.controller.delete(id.clone()).await?;
        let mut settings = s.settings.get();
        let a = settings.profile_protection.remove(&id).is_some();
        let b = settings.auto_connect.remove(&id).is_some();
        // The rule keeps naming it: the window then says the profile is gone.
        if a || b {
            s.settings.set(settings)?;
        }
        Ok(())
    }

    pub async fn profile_details(s: &AppState, id: String) -> Result<ProfileDetails, AppError> {
        check_id(&id)?;
        s.controller.details(id).await
    }

    pub async fn connect(s: &AppState, id: String) -> Result<(), AppError> {
        check_id(&id)?;
        let (protection, source) = s.settings.get().protection_for(&id);
        s.controller.connect_with(id, protection, source).await
    }

    /// When a profile connects by itself.
    pub async fn set_profile_auto_connect(
        s: &AppState,
        id: String,
        auto: AutoConnect,
    ) -> Result<Settings, AppError> {
        check_id(&id)?;
        let mut settings = s.settings.get();
        if auto == AutoConnect::default() {
            settings.auto_connect.remove(&id);
        } else {
            settings.auto_connect.insert(id, auto);
        }
        s.settings.set(settings)
    }

    pub async fn network_status(s: &AppState) -> Result<NetworkStatus, AppError> {
        s.network
            .lock()
            .map(|n| n.clone())
            .map_err(|_| AppError::internal("network status lock"))
    }

    /// Gives a profile its own protection setting, or (with `None`) makes it follow
    /// the global one again.
    pub async fn set_profile_protection(
        s: &AppState,
        id: String,
        protection: Option<Protection>,
    ) -> Result<Settings, AppError> {
        check_id(&id)?;
        let mut settings = s.settings.get();
        match protection {
            Some(p) => settings.profile_protection.insert(id, p),
            None => settings.profile_protection.remove(&id),
        };
        s.settings.set(settings)
    }

    /// Disconnects every connection.
    pub async fn disconnect(s: &AppState) -> Result<(), AppError> {
        s.controller.disconnect().await
    }

    pub async fn disconnect_profile(s: &AppState, id: String) -> Result<(), AppError> {
        check_id(&id)?;
        s.controller.disconnect_profile(id).await
    }

    /// "Try again" in the banner while the helper service is away.
    pub async fn reattach_helper(s: &AppState) -> Result<(), AppError> {
        s.controller.reattach().await
    }

    pub async fn submit_credentials(
        s: &AppState,
        answer: CredentialsAnswer,
    ) -> Result<(), AppError> {
        s.controller.submit_credentials(answer).await
    }

    pub async fn open_sign_in(s: &AppState, id: String) -> Result<(), AppError> {
        check_id(&id)?;
        s.controller.open_sign_in(id).await
    }

    pub async fn cancel_prompt(s: &AppState) -> Result<(), AppError> {
        s.controller.cancel_prompt().await
    }

    pub async fn forget_credentials(s: &AppState, id: String) -> Result<(), AppError> {
        check_id(&id)?;
        s.controller.forget_credentials(id).await
    }

    pub async fn routes(s: &AppState) -> Result<RoutesView, AppError> {
        s.controller.routes().await
    }

    pub async fn route_check(s: &AppState, address: String) -> Result<RouteCheckView, AppError> {
        // Parse here too: a typo should not need the helper.
        crate::controller::parse_address(&address)?;
        s.controller.route_check(address).await
    }

    pub async fn leak_check(
        s: &AppState,
        id: Option<String>,
    ) -> Result<crate::leak::LeakReportView, AppError> {
        if let Some(id) = &id {
            check_id(id)?;
        }
        s.controller.leak_check(id).await
    }

    /// The helper's lockdown ("block all traffic while disconnected").
    pub async fn lockdown_status(s: &AppState) -> Result<crate::lockdown::LockdownView, AppError> {
        s.controller.lockdown(None).await
    }

    /// Turns the helper's lockdown on or off (machine wide).
    pub async fn set_lockdown(
        s: &AppState,
        enabled: bool,
        allow_lan: bool,
    ) -> Result<crate::lockdown::LockdownView, AppError> {
        s.controller
            .lockdown(Some(ipc::LockdownChange { enabled, allow_lan }))
            .await
    }
}

#[tauri::command]
pub async fn get_snapshot(state: State<'_, AppState>) -> Result<Snapshot, AppError> {
    ops::get_snapshot(&state).await
}

#[tauri::command]
pub async fn import_profile(
    state: State<'_, AppState>,
    path: String,
) -> Result<ImportReport, AppError> {
    ops::import_profile(&state, path, Vec::new()).await
}

/// Imports a profile again with the files the user picked for the names it writes.
#[tauri::command]
pub async fn import_profile_with_files(
    state: State<'_, AppState>,
    path: String,
    files: Vec<SuppliedFile>,
) -> Result<ImportReport, AppError> {
    ops::import_profile(&state, path, files).await
}

/// Asks the user for the file a profile names `name` (`None`: cancelled).
#[tauri::command]
pub async fn pick_missing_file(app: AppHandle, name: String) -> Result<Option<String>, AppError> {
    let picked = app
        .dialog()
        .file()
        .set_title(format!("Choose the file the profile calls {name}"))
        .blocking_pick_file();
    let Some(file) = picked else { return Ok(None) };
    let path = file
        .into_path()
        .map_err(|e| AppError::file("That file cannot be opened.", e))?;
    Ok(Some(path.display().to_string()))
}

/// Opens the file dialog; `None` when the user cancels.
#[tauri::command]
pub async fn import_profile_dialog(
    app: AppHandle,
    state: State<'_, AppState>,
) -> Result<Option<ImportReport>, AppError> {
    let picked = app
        .dialog()
        .file()
        .set_title("Import an OpenVPN profile")
        .add_filter("OpenVPN profile", &["ovpn", "conf"])
        .blocking_pick_file();
    let Some(file) = picked else { return Ok(None) };
    let path = file
        .into_path()
        .map_err(|e| AppError::file("That file cannot be opened.", e))?;
    ops::import_profile(&state, path.display().to_string(), Vec::new())
        .await
        .map(Some)
}

#[tauri::command]
pub async fn import_profile_url(
    state: State<'_, AppState>,
    url: String,
) -> Result<ImportReport, AppError> {
    ops::import_profile_url(&state, url).await
}

/// Import from an OpenVPN Access Server with the user's credentials; the password is
/// kept only in the keyring, and only with `remember`.
#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn import_access_server(
    state: State<'_, AppState>,
    server: String,
    username: String,
    password: String,
    autologin: bool,
    remember: bool,
    challenge_response: Option<String>,
) -> Result<ImportReport, AppError> {
    let request = crate::download::AccessServerRequest {
        server,
        username,
        password: profile_store::fetch::Zeroizing::new(password),
        autologin,
        remember,
        challenge_response: challenge_response.map(profile_store::fetch::Zeroizing::new),
    };
    ops::import_access_server(&state, request).await
}

#[tauri::command]
pub async fn rename_profile(
    state: State<'_, AppState>,
    id: String,
    name: String,
) -> Result<ProfileSummary, AppError> {
    ops::rename_profile(&state, id, name).await
}

#[tauri::command]
pub async fn duplicate_profile(
    state: State<'_, AppState>,
    id: String,
) -> Result<ProfileSummary, AppError> {
    ops::duplicate_profile(&state, id).await
}

#[tauri::command]
pub async fn delete_profile(state: State<'_, AppState>, id: String) -> Result<(), AppError> {
    ops::delete_profile(&state, id).await
}

#[tauri::command]
pub async fn profile_details(
    state: State<'_, AppState>,
    id: String,
) -> Result<ProfileDetails, AppError> {
    ops::profile_details(&state, id).await
}

#[tauri::command]
pub async fn connect(state: State<'_, AppState>, id: String) -> Result<(), AppError> {
    ops::connect(&state, id).await
}

#[tauri::command]
pub async fn set_profile_auto_connect(
    state: State<'_, AppState>,
    id: String,
    auto: AutoConnect,
) -> Result<Settings, AppError> {
    ops::set_profile_auto_connect(&state, id, auto).await
}

#[tauri::command]
pub async fn network_status(state: State<'_, AppState>) -> Result<NetworkStatus, AppError> {
    ops::network_status(&state).await
}

#[tauri::command]
pub async fn set_profile_protection(
    state: State<'_, AppState>,
    id: String,
    protection: Option<Protection>,
) -> Result<Settings, AppError> {
    ops::set_profile_protection(&state, id, protection).await
}

#[tauri::command]
pub async fn disconnect(state: State<'_, AppState>) -> Result<(), AppError> {
    ops::disconnect(&state).await
}

#[tauri::command]
pub async fn disconnect_profile(state: State<'_, AppState>, id: String) -> Result<(), AppError> {
    ops::disconnect_profile(&state, id).await
}

#[tauri::command]
pub async fn reattach_helper(state: State<'_, AppState>) -> Result<(), AppError> {
    ops::reattach_helper(&state).await
}

#[tauri::command]
pub async fn submit_credentials(
    state: State<'_, AppState>,
    answer: CredentialsAnswer,
) -> Result<(), AppError> {
    ops::submit_credentials(&state, answer).await
}

/// "Open again" in the sign-in step: the link the helper relayed for this profile.
#[tauri::command]
pub async fn open_sign_in(state: State<'_, AppState>, id: String) -> Result<(), AppError> {
    ops::open_sign_in(&state, id).await
}

#[tauri::command]
pub async fn cancel_prompt(state: State<'_, AppState>) -> Result<(), AppError> {
    ops::cancel_prompt(&state).await
}

#[tauri::command]
pub async fn forget_credentials(state: State<'_, AppState>, id: String) -> Result<(), AppError> {
    ops::forget_credentials(&state, id).await
}

#[tauri::command]
pub async fn routes(state: State<'_, AppState>) -> Result<RoutesView, AppError> {
    ops::routes(&state).await
}

#[tauri::command]
pub async fn route_check(
    state: State<'_, AppState>,
    address: String,
) -> Result<RouteCheckView, AppError> {
    ops::route_check(&state, address).await
}

/// "Check for leaks" for the session of profile `id` (default: the connected one).
#[tauri::command]
pub async fn leak_check(
    state: State<'_, AppState>,
    id: Option<String>,
) -> Result<crate::leak::LeakReportView, AppError> {
    ops::leak_check(&state, id).await
}

/// The helper's lockdown ("block all traffic while disconnected").
#[tauri::command]
pub async fn lockdown_status(
    state: State<'_, AppState>,
) -> Result<crate::lockdown::LockdownView, AppError> {
    ops::lockdown_status(&state).await
}

/// Turns the helper's lockdown on or off.
#[tauri::command]
pub async fn set_lockdown(
    state: State<'_, AppState>,
    enabled: bool,
    allow_lan: bool,
) -> Result<crate::lockdown::LockdownView, AppError> {
    ops::set_lockdown(&state, enabled, allow_lan).await
}

/// Saves `text` (the log as the window filters it) where the user picks; the path, or
/// `None` when cancelled.
#[tauri::command]
pub async fn save_log(app: AppHandle, text: String) -> Result<Option<String>, AppError> {
    let picked = app
        .dialog()
        .file()
        .set_title("Save the log")
        .set_file_name("oxivpn-log.txt")
        .add_filter("Text", &["txt", "log"])
        .blocking_save_file();
    let Some(file) = picked else { return Ok(None) };
    let path = file
        .into_path()
        .map_err(|e| AppError::file("That location cannot be used.", e))?;
    std::fs::write(&path, text)
        .map_err(|e| AppError::file(&format!("Could not write {}.", path.display()), e))?;
    Ok(Some(path.display().to_string()))
}

#[tauri::command]
pub async fn set_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, AppError> {
    let before = state.settings.get();
    if before.start_at_login != settings.start_at_login {
        let al = app.autolaunch();
        let res = if settings.start_at_login {
            al.enable()
        } else {
            al.disable()
        };
        res.map_err(|e| {
            AppError::new(
                crate::error::ErrorKind::File,
                "Could not change whether OxiVPN starts at login.",
                e.to_string(),
            )
        })?;
    }
    let language_changed = before.language != settings.language;
    let saved = state.settings.set(settings)?;
    if language_changed {
        if let Some(r) = app.try_state::<crate::TrayRefresh>() {
            (r.0)();
        }
    }
    Ok(saved)
}

/// A command's name, its arguments (name, TypeScript type) and its result's TypeScript type.
pub type CommandSig = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// Name, argument names and types (TypeScript), result type: the source of
/// `ui/src/lib/bindings.ts`. A test checks every entry is registered in `lib.rs`.
pub const COMMANDS: &[CommandSig] = &[
    ("get_snapshot", &[], "Snapshot"),
    ("import_profile", &[("path", "string")], "ImportReport"),
    ("import_profile_dialog", &[], "ImportReport | null"),
    (
        "import_profile_with_files",
        &[("path", "string"), ("files", "SuppliedFile[]")],
        "ImportReport",
    ),
    ("pick_missing_file", &[("name", "string")], "string | null"),
    ("import_profile_url", &[("url", "string")], "ImportReport"),
    (
        "import_access_server",
        &[
            ("server", "string"),
            ("username", "string"),
            ("password", "string"),
            ("autologin", "boolean"),
            ("remember", "boolean"),
            ("challenge_response", "string | null"),
        ],
        "ImportReport",
    ),
    (
        "rename_profile",
        &[("id", "string"), ("name", "string")],
        "ProfileSummary",
    ),
    ("duplicate_profile", &[("id", "string")], "ProfileSummary"),
    ("delete_profile", &[("id", "string")], "void"),
    ("profile_details", &[("id", "string")], "ProfileDetails"),
    ("connect", &[("id", "string")], "void"),
    (
        "set_profile_auto_connect",
        &[("id", "string"), ("auto", "AutoConnect")],
        "Settings",
    ),
    ("network_status", &[], "NetworkStatus"),
    (
        "set_profile_protection",
        &[("id", "string"), ("protection", "Protection | null")],
        "Settings",
    ),
    ("disconnect", &[], "void"),
    ("disconnect_profile", &[("id", "string")], "void"),
    ("reattach_helper", &[], "void"),
    (
        "submit_credentials",
        &[("answer", "CredentialsAnswer")],
        "void",
    ),
    ("cancel_prompt", &[], "void"),
    ("open_sign_in", &[("id", "string")], "void"),
    ("forget_credentials", &[("id", "string")], "void"),
    ("routes", &[], "RoutesView"),
    ("route_check", &[("address", "string")], "RouteCheckView"),
    ("leak_check", &[("id", "string | null")], "LeakReportView"),
    ("lockdown_status", &[], "LockdownView"),
    (
        "set_lockdown",
        &[("enabled", "boolean"), ("allow_lan", "boolean")],
        "LockdownView",
    ),
    ("save_log", &[("text", "string")], "string | null"),
    ("set_settings", &[("settings", "Settings")], "Settings"),
];
