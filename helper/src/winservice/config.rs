//! What the helper's Windows service looks like to the Service Control Manager: name,
//! start type, dependencies, arguments, recovery. Pure data, so it is unit-tested on
//! every OS; `scm.rs` turns it into `windows-service` calls on Windows.

use std::time::Duration;

/// The SCM key (`sc.exe query OxiVPNHelper`); the installer uses the same name.
pub const SERVICE_NAME: &str = "OxiVPNHelper";
pub const DISPLAY_NAME: &str = "OxiVPN helper";
pub const DESCRIPTION: &str =
    "Owns the OxiVPN tunnel, routes, DNS and kill switch for members of OxiVPN Users.";
/// Local group whose members may use the helper (the pipe's ACL and the per-connection
/// check both name it). The installer creates it.
pub const USERS_GROUP: &str = "OxiVPN Users";
/// Where the app and oxivpnctl connect (`ipc::default_socket_path()` on Windows).
pub const PIPE_NAME: &str = r"\\.\pipe\oxivpn-helper";
/// Services that must run first: the network store (routes, addresses), TCP/IP, and the
/// Base Filtering Engine the WFP kill switch talks to.
pub const DEPENDENCIES: &[&str] = &["nsi", "Tcpip", "BFE"];
/// Time Windows gives us at shutdown (preshutdown) to undo routes, DNS and filters.
pub const PRESHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// A failure count older than this is forgotten.
pub const FAILURE_RESET: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartType {
    /// At boot: the kill switch a crashed or rebooted session left must be enforced or
    /// lifted by the helper, and clients expect the pipe to be there.
    Automatic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryAction {
    Restart(Duration),
}

/// Everything registration sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    /// Absolute path of oxivpn-helper.exe (quoted by windows-service when it builds the
    /// command line, so "C:\Program Files\..." is not the unquoted-path hole).
    pub executable: String,
    /// What `main` receives after the executable: the `service` subcommand and options.
    pub arguments: Vec<String>,
    pub start: StartType,
    pub dependencies: &'static [&'static str],
    /// Runs as LocalSystem (None = no account name): routes, WFP and wintun need it.
    pub account: Option<String>,
    pub recovery: Vec<RecoveryAction>,
    pub failure_reset: Duration,
    /// Also apply the recovery actions when the service stops with an error code,
    /// not only when the process dies.
    pub recover_on_error_exit: bool,
    pub preshutdown_timeout: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "service executable {0:?} is not an absolute local path like C:\\...\\oxivpn-helper.exe"
    )]
    NotAbsolute(String),
    #[error("service executable {0:?} must be an .exe file")]
    NotExe(String),
    #[error("{what} {value:?} contains a double quote or control character")]
    BadCharacter { what: &'static str, value: String },
}

/// The registration for `executable`, with the state directory passed through when the
/// installer chose one (default: %ProgramData%\OxiVPN\helper, decided by the service).
pub fn service_spec(executable: &str, state_dir: Option<&str>) -> Result<ServiceSpec, ConfigError> {
    check_chars("service executable", executable)?;
    if !is_local_absolute(executable) {
        return Err(ConfigError::NotAbsolute(executable.to_owned()));
    }
    if !executable.to_ascii_lowercase().ends_with(".exe") {
        return Err(ConfigError::NotExe(executable.to_owned()));
    }
    let mut arguments = vec!["service".to_owned()];
    if let Some(dir) = state_dir {
        check_chars("state directory", dir)?;
        if !is_local_absolute(dir) {
            return Err(ConfigError::NotAbsolute(dir.to_owned()));
        }
        arguments.push("--state-dir".to_owned());
        arguments.push(dir.to_owned());
    }
    Ok(ServiceSpec {
        name: SERVICE_NAME,
        display_name: DISPLAY_NAME,
        description: DESCRIPTION,
        executable: executable.to_owned(),
        arguments,
        start: StartType::Automatic,
        dependencies: DEPENDENCIES,
        account: None,
        recovery: recovery_actions(),
        failure_reset: FAILURE_RESET,
        recover_on_error_exit: true,
        preshutdown_timeout: PRESHUTDOWN_TIMEOUT,
    })
}

/// Restart quickly twice, then back off: a helper that crashes in a loop must not spin,
/// but one crash must not leave the user without the service (or with a stale kill switch).
pub fn recovery_actions() -> Vec<RecoveryAction> {
    vec![
        RecoveryAction::Restart(Duration::from_secs(2)),
        RecoveryAction::Restart(Duration::from_secs(5)),
        RecoveryAction::Restart(Duration::from_secs(60)),
    ]
}

/// `C:\...` (drive + backslash). UNC and relative paths are refused: the SCM starts the
/// binary as LocalSystem, so it must live on a local disk the installer controls.
fn is_local_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

fn check_chars(what: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || value.chars().any(|c| c == '"' || c.is_control()) {
        return Err(ConfigError::BadCharacter {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = r"C:\Program Files\OxiVPN\oxivpn-helper.exe";

    #[test]
    fn spec_runs_service_subcommand_as_local_system_at_boot() {
        let s = service_spec(EXE, None).unwrap();
        assert_eq!(s.name, "OxiVPNHelper");
        assert_eq!(s.executable, EXE);
        assert_eq!(s.arguments, vec!["service"]);
        assert_eq!(s.start, StartType::Automatic);
        assert_eq!(s.account, None);
        assert!(s.dependencies.contains(&"BFE"), "WFP needs the BFE service");
        assert!(s.dependencies.contains(&"Tcpip"));
    }

    #[test]
    fn state_dir_is_passed_as_two_arguments() {
        let s = service_spec(EXE, Some(r"D:\OxiVPN state")).unwrap();
        assert_eq!(
            s.arguments,
            vec!["service", "--state-dir", r"D:\OxiVPN state"]
        );
    }

    #[test]
    fn recovery_restarts_with_growing_delays_and_covers_error_exits() {
        let s = service_spec(EXE, None).unwrap();
        let delays: Vec<u64> = s
            .recovery
            .iter()
            .map(|RecoveryAction::Restart(d)| d.as_secs())
            .collect();
        assert_eq!(delays.len(), 3);
        assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
        assert!(s.recover_on_error_exit);
        assert_eq!(s.failure_reset, Duration::from_secs(86_400));
        assert!(s.preshutdown_timeout >= Duration::from_secs(10));
    }

    #[test]
    fn relative_unc_and_non_exe_paths_are_refused() {
        assert_eq!(
            service_spec("oxivpn-helper.exe", None),
            Err(ConfigError::NotAbsolute("oxivpn-helper.exe".into()))
        );
        assert!(matches!(
            service_spec(r"\\server\share\oxivpn-helper.exe", None),
            Err(ConfigError::NotAbsolute(_))
        ));
        assert!(matches!(
            service_spec(r"C:\OxiVPN\oxivpn-helper.bat", None),
            Err(ConfigError::NotExe(_))
        ));
        assert!(matches!(
            service_spec(EXE, Some("relative\\dir")),
            Err(ConfigError::NotAbsolute(_))
        ));
    }

    #[test]
    fn quotes_and_control_characters_are_refused() {
        // A quote would let a path end early and smuggle arguments into the command line.
        let e = service_spec(r#"C:\x" --evil "y.exe"#, None).unwrap_err();
        assert!(matches!(e, ConfigError::BadCharacter { .. }), "{e}");
        assert!(service_spec(EXE, Some("C:\\a\nb")).is_err());
        assert!(service_spec("", None).is_err());
    }
}
