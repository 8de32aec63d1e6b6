//! Lockdown ("block all traffic while disconnected") as the window shows it: the helper's
//! machine-wide setting, whether it blocks now, and whether this helper offers it.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LockdownView {
    /// The helper has lockdown (false: an older helper, Windows, the test stand-in).
    pub offered: bool,
    pub enabled: bool,
    pub allow_lan: bool,
    /// All traffic is blocked now: lockdown on and no VPN session's kill switch in force.
    pub blocking: bool,
    /// An administrator (root) turned it on: only root may turn it off.
    pub set_by_admin: bool,
    /// This user may turn it off or change it (an administrator's lockdown: only root).
    pub may_change: bool,
    /// Why the helper could not do what the setting says (English, from the helper).
    pub problem: Option<String>,
}

impl From<&ipc::LockdownState> for LockdownView {
    fn from(s: &ipc::LockdownState) -> Self {
        Self {
            offered: true,
            enabled: s.enabled,
            allow_lan: s.allow_lan,
            blocking: s.blocking,
            set_by_admin: s.set_by_admin,
            may_change: s.may_change,
            problem: s.problem.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

impl LockdownView {
    /// What the window shows when the helper has no lockdown.
    pub fn not_offered() -> Self {
        Self::default()
    }
}
