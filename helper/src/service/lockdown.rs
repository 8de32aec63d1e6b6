//! Lockdown ("block all traffic while disconnected", Mullvad's lockdown mode): while the
//! setting is on and no session's kill switch is on, the helper keeps a block-all firewall
//! ([`netcfg::FirewallPolicy::block_all`] in its own table `inet oxivpn_lockdown`), so the
//! machine reaches nothing but loopback, DHCP, IPv6 neighbour discovery and (if allowed)
//! its LAN. The setting lives in `<state dir>/lockdown.json` and the service applies it
//! at start before it accepts anyone, so a reboot or a crash never opens a window.
//!
//! Hand-over without a leak (both tables are in force between the two steps; a drop in
//! either is final, so during the overlap less passes, never more):
//! - a session connects: its kill switch is applied FIRST, then the block-all is lifted
//!   ([`session_guarded`], called by the kill switch right after its apply);
//! - the session ends: the block-all is applied FIRST, then its kill switch is removed
//!   ([`session_released`], called by the kill switch right before its removal).
//!
//! The block-all is journalled like every firewall change of the helper (its own
//! firewall journal beside the setting): a crashed helper leaves it in place, and the next
//! start applies it again (setting on) or removes exactly it (setting off).
//!
//! Who may change it: see `docs/security.md` ("Lockdown"). In short, every member of the
//! group may turn it on, and may turn off a lockdown a member turned on; one root turned
//! on only root may turn off or change.
// Windows: the service does not start a lockdown yet (see `OsBlock`); the code still
// compiles there (and its unit tests run under Wine) so it cannot rot.
#![cfg_attr(windows, allow(dead_code))]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ipc::{IpcError, LockdownChange, LockdownState, ShortText};
use serde::{Deserialize, Serialize};

/// The setting's file in the helper's state directory.
pub const SETTING_FILE: &str = "lockdown.json";
/// The block-all's firewall journal in the helper's state directory.
pub const JOURNAL_FILE: &str = "lockdown.firewall.json";
const SETTING_VERSION: u32 = 1;

/// The setting as kept on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub enabled: bool,
    #[serde(default)]
    pub allow_lan: bool,
    /// Turned on by root: only root may turn it off or change it.
    #[serde(default)]
    pub set_by_admin: bool,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    #[serde(flatten)]
    setting: Setting,
}

/// Reads the setting; a missing file is "off". A file that cannot be read or parsed is an
/// error naming it (the caller fails closed: see [`Lockdown::start`]).
pub fn load_setting(path: &Path) -> Result<Setting, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Setting::default()),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let disk: OnDisk = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a lockdown setting: {e}", path.display()))?;
    if disk.version != SETTING_VERSION {
        return Err(format!(
            "{}: version {} (this helper knows {SETTING_VERSION})",
            path.display(),
            disk.version
        ));
    }
    Ok(disk.setting)
}

/// Writes the setting atomically (temporary file, fsync, rename, fsync the directory).
pub fn save_setting(path: &Path, setting: Setting) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", path.display());
    let bytes = serde_json::to_vec_pretty(&OnDisk {
        version: SETTING_VERSION,
        setting,
    })
    .map_err(|e| format!("{}: serialize: {e}", path.display()))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| fail("create", e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("write", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| fail("rename into place", e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(|e| fail("fsync its directory", e))?;
        }
    }
    Ok(())
}

/// What puts the block-all in and takes it out: the OS firewall ([`OsBlock`]), or a
/// recorder in the unit tests.
pub trait Block: Send {
    /// Installs (or atomically replaces) the block-all rules.
    fn apply(&mut self, allow_lan: bool) -> Result<(), String>;
    /// Removes exactly what `apply` installed; nothing there is fine.
    fn lift(&mut self) -> Result<(), String>;
    /// Whether the block-all rules are in the system now.
    fn in_force(&self) -> bool;
}

/// The block-all in the OS firewall: table `inet oxivpn_lockdown` (Linux), pf anchor
/// `com.apple/250.oxivpn_lockdown` (macOS). Not on Windows: its WFP back end has one
/// sublayer that the kill switch's filters share, so a second rule set there would
/// replace (and on removal take away) the kill switch's.
pub struct OsBlock {
    opts: netcfg::FirewallOptions,
    fw: Option<netcfg::Firewall>,
}

impl OsBlock {
    /// Takes over what a previous run left (journal or table), still in force.
    pub fn recover(state_dir: &Path) -> Result<Self, String> {
        let opts = netcfg::FirewallOptions {
            journal_path: state_dir.join(JOURNAL_FILE),
            table: netcfg::firewall::LOCKDOWN_TABLE.into(),
        };
        if cfg!(windows) {
            return Err(unsupported_here());
        }
        let fw = netcfg::Firewall::recover(&opts).map_err(|e| format!("lockdown: {e}"))?;
        Ok(Self { opts, fw })
    }
}

fn unsupported_here() -> String {
    "lockdown is not supported on this OS yet (Windows: the WFP filters of the kill switch \
     and of a block-all would share one sublayer)"
        .into()
}

impl Block for OsBlock {
    fn apply(&mut self, allow_lan: bool) -> Result<(), String> {
        let lan = if allow_lan {
            netcfg::firewall::lan_prefixes(&[]).map_err(|e| format!("lockdown: {e}"))?
        } else {
            Vec::new()
        };
        let policy = netcfg::FirewallPolicy::block_all(allow_lan, lan);
        if self.fw.is_none() {
            self.fw =
                Some(netcfg::Firewall::new(&self.opts).map_err(|e| format!("lockdown: {e}"))?);
        }
        match self.fw.as_mut() {
            Some(fw) => fw.apply(&policy).map_err(|e| format!("lockdown: {e}")),
            None => Ok(()),
        }
    }

    fn lift(&mut self) -> Result<(), String> {
        if let Some(mut fw) = self.fw.take() {
            if let Err(e) = fw.remove() {
                self.fw = Some(fw);
                return Err(format!("lifting the lockdown: {e}"));
            }
        }
        Ok(())
    }

    fn in_force(&self) -> bool {
        self.fw
            .as_ref()
            .is_some_and(|fw| fw.is_active().unwrap_or(true))
    }
}

/// The firewall could not be reached at start: every apply says why (the setting's
/// "on" is then reported with this problem instead of silently doing nothing).
pub struct Unavailable(pub String);

impl Block for Unavailable {
    fn apply(&mut self, _allow_lan: bool) -> Result<(), String> {
        Err(self.0.clone())
    }
    fn lift(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn in_force(&self) -> bool {
        false
    }
}

struct Inner {
    setting: Setting,
    /// A session's kill switch is on: it blocks instead of us.
    session_guarded: bool,
    problem: Option<String>,
    block: Box<dyn Block>,
}

/// The helper's lockdown (one per service).
pub struct Lockdown {
    setting_path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Lockdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockdown")
            .field("setting_path", &self.setting_path)
            .finish_non_exhaustive()
    }
}

impl Lockdown {
    /// At service start, before clients are accepted (and before a crashed run's kill
    /// switch is removed, so no window opens): reads the setting and makes the firewall
    /// match it. A setting file that cannot be read fails CLOSED (on, set by an
    /// administrator, problem reported) and is left as it is for root to look at.
    pub fn start(state_dir: &Path, block: Box<dyn Block>) -> Self {
        let setting_path = state_dir.join(SETTING_FILE);
        let (setting, mut problem) = match load_setting(&setting_path) {
            Ok(s) => (s, None),
            Err(e) => {
                tracing::error!(error = %e, "lockdown setting unreadable: blocking all traffic until root decides");
                (
                    Setting {
                        enabled: true,
                        allow_lan: false,
                        set_by_admin: true,
                    },
                    Some(e),
                )
            }
        };
        let mut inner = Inner {
            setting,
            session_guarded: false,
            problem: None,
            block,
        };
        let r = if setting.enabled {
            inner.block.apply(setting.allow_lan)
        } else {
            inner.block.lift()
        };
        if let Err(e) = r {
            tracing::error!(error = %e, enabled = setting.enabled, "lockdown at start");
            problem.get_or_insert(e);
        } else if setting.enabled {
            tracing::info!(
                allow_lan = setting.allow_lan,
                "lockdown on: all traffic blocked until a VPN connects"
            );
        }
        inner.problem = problem;
        Self {
            setting_path,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state as the client asking sees it (`privileged`: root / administrator).
    pub fn state(&self, privileged: bool) -> LockdownState {
        let g = self.lock();
        LockdownState {
            enabled: g.setting.enabled,
            allow_lan: g.setting.allow_lan,
            blocking: g.block.in_force(),
            set_by_admin: g.setting.set_by_admin,
            may_change: privileged || !(g.setting.enabled && g.setting.set_by_admin),
            problem: g.problem.as_deref().map(ShortText::sanitized),
        }
    }

    /// Whether sessions must be guarded by a kill switch (so nothing leaves outside a VPN
    /// while lockdown is on, split tunnels included).
    pub fn enabled(&self) -> bool {
        self.lock().setting.enabled
    }

    /// Turns lockdown on or off for a client (`privileged`: root / administrator).
    pub fn set(&self, privileged: bool, change: LockdownChange) -> Result<LockdownState, IpcError> {
        {
            let mut g = self.lock();
            let old = g.setting;
            let same = old.enabled == change.enabled
                && (!change.enabled || old.allow_lan == change.allow_lan);
            if old.enabled && old.set_by_admin && !privileged && !same {
                return Err(IpcError::LockdownAdminOnly);
            }
            let new = Setting {
                enabled: change.enabled,
                allow_lan: change.enabled && change.allow_lan,
                set_by_admin: change.enabled && (privileged || (same && old.set_by_admin)),
            };
            // Firewall first when turning on (a setting that says "on" is only written
            // once the block is in), setting first when turning off (a failed removal
            // leaves the block in and the setting on).
            if new.enabled {
                if !g.session_guarded {
                    g.block.apply(new.allow_lan).map_err(IpcError::internal)?;
                }
                if let Err(e) = save_setting(&self.setting_path, new) {
                    if !old.enabled && !g.session_guarded {
                        let _ = g.block.lift();
                    }
                    return Err(IpcError::internal(e));
                }
            } else {
                g.block.lift().map_err(IpcError::internal)?;
                save_setting(&self.setting_path, new).map_err(IpcError::internal)?;
            }
            g.setting = new;
            g.problem = None;
            tracing::info!(
                enabled = new.enabled,
                allow_lan = new.allow_lan,
                by_admin = privileged,
                "lockdown changed"
            );
        }
        Ok(self.state(privileged))
    }

    /// A session's kill switch is in: lift the block-all (it would stop that session's
    /// server). Called right AFTER the kill switch's apply.
    pub fn session_guarded(&self) -> Result<(), String> {
        let mut g = self.lock();
        g.session_guarded = true;
        if g.block.in_force() {
            g.block.lift()?;
            tracing::info!("lockdown: a session's kill switch took over");
        }
        Ok(())
    }

    /// The session's kill switch is about to go: block all again first (setting on).
    /// Called right BEFORE the kill switch's removal; an error keeps it in place.
    pub fn session_released(&self) -> Result<(), String> {
        let mut g = self.lock();
        g.session_guarded = false;
        if g.setting.enabled {
            let allow_lan = g.setting.allow_lan;
            if let Err(e) = g.block.apply(allow_lan) {
                g.session_guarded = true;
                g.problem = Some(e.clone());
                return Err(e);
            }
            tracing::info!("lockdown: no VPN connected, all traffic blocked again");
        }
        Ok(())
    }
}

/// `oxivpn-helper remove-lockdown` (package removal): takes the block-all out (journal or
/// not) and forgets the setting, so a later install starts without it.
#[cfg(unix)]
pub fn remove_everything(state_dir: &Path) -> anyhow::Result<()> {
    let mut block = OsBlock::recover(state_dir).map_err(anyhow::Error::msg)?;
    block.lift().map_err(anyhow::Error::msg)?;
    netcfg::firewall::delete_table(netcfg::firewall::LOCKDOWN_TABLE)
        .map_err(|e| anyhow::anyhow!("lockdown: {e}"))?;
    for f in [SETTING_FILE, JOURNAL_FILE] {
        match std::fs::remove_file(state_dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", state_dir.join(f).display())),
        }
    }
    tracing::info!("lockdown removed");
    Ok(())
}

static ACTIVE: OnceLock<Arc<Lockdown>> = OnceLock::new();

/// Makes `l` the service's lockdown (once; the kill switch and the launcher find it here).
pub fn install(l: Arc<Lockdown>) {
    if ACTIVE.set(l).is_err() {
        tracing::warn!("lockdown installed twice; keeping the first");
    }
}

/// The service's lockdown; `None` in `connect` mode, with the stand-in tunnel, on Windows.
pub fn active() -> Option<Arc<Lockdown>> {
    ACTIVE.get().cloned()
}

/// Whether lockdown is on (sessions then always get a kill switch).
pub fn forces_kill_switch() -> bool {
    active().is_some_and(|l| l.enabled())
}

/// The answer for a helper without a lockdown.
pub fn not_offered() -> IpcError {
    IpcError::Unsupported {
        what: ShortText::sanitized(if cfg!(windows) {
            "lockdown on Windows (the WFP filters of the kill switch and of a block-all would share one sublayer)"
        } else {
            "lockdown with the stand-in tunnel (--stub-tunnel): it would block this machine, not a test"
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Records every apply / lift in order; `fail_apply` refuses applies.
    #[derive(Clone, Default)]
    struct Rec {
        log: Arc<Mutex<Vec<String>>>,
        on: Arc<Mutex<bool>>,
        fail_apply: Arc<Mutex<bool>>,
    }

    impl Block for Rec {
        fn apply(&mut self, allow_lan: bool) -> Result<(), String> {
            if *self.fail_apply.lock().unwrap() {
                return Err("nftables refused".into());
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("apply lan={allow_lan}"));
            *self.on.lock().unwrap() = true;
            Ok(())
        }
        fn lift(&mut self) -> Result<(), String> {
            self.log.lock().unwrap().push("lift".into());
            *self.on.lock().unwrap() = false;
            Ok(())
        }
        fn in_force(&self) -> bool {
            *self.on.lock().unwrap()
        }
    }

    fn change(enabled: bool, allow_lan: bool) -> LockdownChange {
        LockdownChange { enabled, allow_lan }
    }

    #[test]
    fn setting_survives_a_restart_and_the_block_follows_the_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Rec::default();
        let l = Lockdown::start(dir.path(), Box::new(rec.clone()));
        assert_eq!(*rec.log.lock().unwrap(), ["lift"]);
        assert!(!l.state(false).enabled && !l.state(false).blocking);

        let s = l.set(false, change(true, true)).unwrap();
        assert!(s.enabled && s.allow_lan && s.blocking && !s.set_by_admin);
        // A session's kill switch takes over, and gives back when it ends.
        l.session_guarded().unwrap();
        assert!(!l.state(false).blocking);
        l.session_released().unwrap();
        assert!(l.state(false).blocking);
        assert_eq!(
            *rec.log.lock().unwrap(),
            ["lift", "apply lan=true", "lift", "apply lan=true"]
        );

        // A new helper (restart, reboot) applies it before anything else.
        let rec2 = Rec::default();
        let l2 = Lockdown::start(dir.path(), Box::new(rec2.clone()));
        assert_eq!(*rec2.log.lock().unwrap(), ["apply lan=true"]);
        assert!(l2.state(false).blocking && l2.enabled());

        // Off removes the block and is kept too.
        let s = l2.set(false, change(false, false)).unwrap();
        assert!(!s.enabled && !s.blocking);
        let l3 = Lockdown::start(dir.path(), Box::new(Rec::default()));
        assert!(!l3.enabled());
    }

    #[test]
    fn while_a_session_is_guarded_turning_on_blocks_nothing_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Rec::default();
        let l = Lockdown::start(dir.path(), Box::new(rec.clone()));
        l.session_guarded().unwrap();
        let s = l.set(false, change(true, false)).unwrap();
        assert!(s.enabled && !s.blocking);
        l.session_released().unwrap();
        assert!(l.state(false).blocking);
        // Off with no lockdown block from a session-less state, then a session ending
        // blocks nothing.
        l.set(false, change(false, false)).unwrap();
        l.session_guarded().unwrap();
        l.session_released().unwrap();
        assert!(!l.state(false).blocking);
    }

    #[test]
    fn a_members_may_not_lift_an_administrators_lockdown() {
        let dir = tempfile::tempdir().unwrap();
        let l = Lockdown::start(dir.path(), Box::new(Rec::default()));
        let s = l.set(true, change(true, false)).unwrap();
        assert!(s.set_by_admin);
        assert_eq!(
            l.set(false, change(false, false)),
            Err(IpcError::LockdownAdminOnly)
        );
        // Nor weaken it with allow-LAN.
        assert_eq!(
            l.set(false, change(true, true)),
            Err(IpcError::LockdownAdminOnly)
        );
        // Asking for what is already in force is fine and keeps it the admin's.
        assert!(l.set(false, change(true, false)).unwrap().set_by_admin);
        assert!(l.state(false).blocking);
        // Each client is told whether the way out is theirs.
        assert!(!l.state(false).may_change);
        assert!(l.state(true).may_change);
        // Root may.
        assert!(!l.set(true, change(false, false)).unwrap().enabled);
        // A member's lockdown another member may turn off.
        assert!(l.set(false, change(true, false)).unwrap().may_change);
        assert!(!l.set(false, change(false, false)).unwrap().enabled);
    }

    #[test]
    fn a_corrupt_setting_fails_closed_and_a_refused_block_is_not_saved_as_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTING_FILE);
        std::fs::write(&path, b"{not json").unwrap();
        let rec = Rec::default();
        let l = Lockdown::start(dir.path(), Box::new(rec.clone()));
        let s = l.state(false);
        assert!(s.enabled && s.blocking && s.set_by_admin);
        assert!(s.problem.unwrap().as_str().contains("lockdown.json"));
        // The file is left for root to look at.
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
        l.set(true, change(false, false)).unwrap();
        assert_eq!(load_setting(&path).unwrap(), Setting::default());

        *rec.fail_apply.lock().unwrap() = true;
        assert!(matches!(
            l.set(false, change(true, false)),
            Err(IpcError::Internal { .. })
        ));
        assert!(!load_setting(&path).unwrap().enabled);
        assert!(!l.enabled());
    }
}
