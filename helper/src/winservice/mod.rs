//! The helper as a Windows service: registration (`install-service`), the SCM life cycle
//! (`service`), and the named pipe with its ACL and per-connection identity check. The
//! sessions themselves are the shared service and tunnel engine (`crate::service`,
//! `crate::tunnel`): this module only supplies the pipe as its listener, the client's
//! token as its gate, and the SCM as its stop signal.
//! The pure parts (registration values, SDDL, authorization, control mapping) build on
//! every OS so their unit tests run in Linux CI; the glue to Windows APIs is
//! `cfg(windows)` and only cross-compiled here.

// On other OSes only the unit tests use the pure parts.
#![cfg_attr(not(windows), allow(dead_code))]

pub mod config;
pub mod control;
pub mod pipe_acl;

#[cfg(test)]
mod bad_input_tests;

#[cfg(windows)]
mod pipe_server;
#[cfg(windows)]
mod runtime;
#[cfg(windows)]
mod scm;

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Named pipe to serve.
    #[arg(long, default_value = config::PIPE_NAME)]
    pub pipe: String,
    /// Local group whose members may use the helper (SYSTEM and elevated
    /// administrators always may).
    #[arg(long, default_value = config::USERS_GROUP)]
    pub group: String,
    /// Where the helper keeps its undo journals (default %ProgramData%\OxiVPN\helper).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Sessions use a stand-in tunnel that changes nothing on the machine (tests under
    /// Wine, which has no wintun, WFP or DNS settings): `hold` stays in `connecting`,
    /// `connect` reaches `connected`. Also read from OXIVPN_STUB_TUNNEL.
    #[arg(
        long,
        hide = true,
        value_enum,
        num_args = 0..=1,
        default_missing_value = "hold",
        env = "OXIVPN_STUB_TUNNEL"
    )]
    pub stub_tunnel: Option<crate::tunnel::stub::StubMode>,
}

impl Default for ServiceArgs {
    fn default() -> Self {
        Self {
            pipe: config::PIPE_NAME.to_owned(),
            group: config::USERS_GROUP.to_owned(),
            state_dir: None,
            stub_tunnel: None,
        }
    }
}

impl ServiceArgs {
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            default_state_dir(std::env::var_os("ProgramData").map(PathBuf::from))
        })
    }
}

/// `%ProgramData%\OxiVPN\helper` (what the uninstaller removes).
fn default_state_dir(program_data: Option<PathBuf>) -> PathBuf {
    program_data
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("OxiVPN")
        .join("helper")
}

/// `<state dir>\helper.log`, appended to (the service has no console). `None` (stderr)
/// when it cannot be opened.
pub fn open_log(args: &ServiceArgs) -> Option<std::fs::File> {
    let dir = args.state_dir();
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("helper.log"))
        .ok()
}

#[derive(clap::Args, Debug, Clone)]
pub struct InstallArgs {
    /// State directory to pass to the service (default: decided by the service).
    #[arg(long)]
    pub state_dir: Option<String>,
    /// Start the service once registered.
    #[arg(long)]
    pub start: bool,
}

#[cfg(windows)]
pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    runtime::run(args)
}

#[cfg(windows)]
pub fn install(args: InstallArgs) -> anyhow::Result<()> {
    scm::install(args.state_dir.as_deref(), args.start)
}

#[cfg(windows)]
pub fn uninstall() -> anyhow::Result<()> {
    scm::uninstall()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServiceArgs,
    }

    #[test]
    fn defaults_name_the_pipe_and_group_the_installer_creates() {
        let c = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(c.args.pipe, r"\\.\pipe\oxivpn-helper");
        assert_eq!(c.args.group, "OxiVPN Users");
        let c = Cli::try_parse_from(["x", "--group", "VPN", "--pipe", r"\\.\pipe\t"]).unwrap();
        assert_eq!(
            (c.args.group.as_str(), c.args.pipe.as_str()),
            ("VPN", r"\\.\pipe\t")
        );
    }

    #[test]
    fn log_file_is_appended_in_the_state_dir() {
        let dir = std::env::temp_dir().join(format!("oxivpn-winlog-{}", std::process::id()));
        let args = ServiceArgs {
            state_dir: Some(dir.clone()),
            ..ServiceArgs::default()
        };
        for line in ["one\n", "two\n"] {
            use std::io::Write;
            open_log(&args).unwrap().write_all(line.as_bytes()).unwrap();
        }
        let text = std::fs::read_to_string(dir.join("helper.log")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(text, "one\ntwo\n");
    }

    #[test]
    fn state_dir_defaults_under_program_data() {
        let d = default_state_dir(Some(PathBuf::from("/pd")));
        assert!(d.ends_with("OxiVPN/helper"), "{}", d.display());
        let c = Cli::try_parse_from(["x", "--state-dir", "/s"]).unwrap();
        assert_eq!(c.args.state_dir(), PathBuf::from("/s"));
    }
}
