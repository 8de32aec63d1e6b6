//! `oxivpnctl lockdown on|off|status`: the helper's "block all traffic while
//! disconnected" (see docs/security.md, "Lockdown").

use std::path::Path;
use std::process::ExitCode;

use ipc::{LockdownChange, LockdownState};

use crate::output::Out;
use crate::session_cmds::link;

#[derive(clap::Subcommand, Debug)]
pub enum LockdownCommand {
    /// Block all traffic while no VPN is connected (kept across restarts and reboots).
    On {
        /// Still let traffic to the directly attached private subnets through
        /// (printers, NAS); DNS stays blocked.
        #[arg(long)]
        allow_lan: bool,
    },
    /// Let traffic flow again while disconnected.
    Off,
    /// Whether lockdown is on and blocks now.
    Status,
}

pub async fn run(socket: &Path, out: Out, cmd: LockdownCommand) -> anyhow::Result<ExitCode> {
    let client = link(socket).await?;
    let state = match cmd {
        LockdownCommand::On { allow_lan } => {
            client
                .set_lockdown(LockdownChange {
                    enabled: true,
                    allow_lan,
                })
                .await?
        }
        LockdownCommand::Off => {
            client
                .set_lockdown(LockdownChange {
                    enabled: false,
                    allow_lan: false,
                })
                .await?
        }
        LockdownCommand::Status => client.lockdown_status().await?,
    };
    out.result(&state, || describe(&state));
    Ok(ExitCode::SUCCESS)
}

/// One or two lines for humans.
pub fn describe(s: &LockdownState) -> String {
    let mut text = if !s.enabled {
        "lockdown: off (traffic flows while no VPN is connected)\n".to_owned()
    } else {
        let lan = if s.allow_lan { ", LAN allowed" } else { "" };
        let who = if s.set_by_admin {
            ", set by an administrator"
        } else {
            ""
        };
        let now = if s.blocking {
            "all traffic is blocked now (no VPN connected)"
        } else {
            "a VPN session's kill switch is in force now"
        };
        format!("lockdown: on{lan}{who}: {now}\n")
    };
    if let Some(p) = &s.problem {
        text.push_str(&format!("problem: {p}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines_say_what_is_in_force() {
        let mut s = LockdownState {
            enabled: true,
            allow_lan: true,
            blocking: true,
            set_by_admin: false,
            may_change: true,
            problem: None,
        };
        assert_eq!(
            describe(&s),
            "lockdown: on, LAN allowed: all traffic is blocked now (no VPN connected)\n"
        );
        s.blocking = false;
        assert!(describe(&s).contains("kill switch is in force"));
        s.enabled = false;
        assert!(describe(&s).starts_with("lockdown: off"));
    }
}
