//! Lockdown ("block all traffic while disconnected"): the helper keeps a block-all
//! firewall while no session's kill switch is on. The setting is the helper's (machine
//! wide, kept across restarts); these are the request and the state it reports.

use serde::{Deserialize, Serialize};

use crate::types::ShortText;

/// Turn lockdown on or off (`Request::SetLockdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockdownChange {
    pub enabled: bool,
    /// Let traffic to the directly attached private subnets through while blocked
    /// (printers, NAS). DNS to the LAN stays blocked.
    #[serde(default)]
    pub allow_lan: bool,
}

/// What the helper's lockdown is and does now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockdownState {
    /// The setting (kept in the helper's state directory).
    pub enabled: bool,
    pub allow_lan: bool,
    /// The block-all rules are in force now (enabled and no session's kill switch has
    /// taken over).
    pub blocking: bool,
    /// Turned on by root / an administrator: only root may turn it off or change it.
    #[serde(default)]
    pub set_by_admin: bool,
    /// The client that asked may turn it off or change it (false only for a lockdown
    /// root turned on, asked about by someone else): the window offers the way out
    /// only when it works.
    #[serde(default)]
    pub may_change: bool,
    /// Why the helper could not do what the setting says (firewall refused, unreadable
    /// settings file); `None` when all is well.
    #[serde(default)]
    pub problem: Option<ShortText>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HelperStatus, IpcError, Request, Response};

    #[test]
    fn lockdown_messages_round_trip_and_old_status_still_parses() {
        let r = Request::SetLockdown(LockdownChange {
            enabled: true,
            allow_lan: false,
        });
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"set_lockdown":{"enabled":true,"allow_lan":false}}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
        // allow_lan may be left out.
        let r: Request = serde_json::from_str(r#"{"set_lockdown":{"enabled":false}}"#).unwrap();
        assert_eq!(
            r,
            Request::SetLockdown(LockdownChange {
                enabled: false,
                allow_lan: false
            })
        );
        let state = LockdownState {
            enabled: true,
            allow_lan: true,
            blocking: true,
            set_by_admin: false,
            may_change: true,
            problem: None,
        };
        let json = serde_json::to_string(&Response::Lockdown(state.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Response>(&json).unwrap(),
            Response::Lockdown(state)
        );
        // A status from a helper without lockdown has no such field.
        let old = r#"{"helper_version":"0.1.0","protocol":1,"uptime_ms":5,"peer_uid":0,"sessions":0,"tunnel_wired":true}"#;
        let s: HelperStatus = serde_json::from_str(old).unwrap();
        assert_eq!(s.lockdown, None);
        let e = IpcError::LockdownAdminOnly;
        assert!(e.to_string().contains("root"), "{e}");
    }
}
