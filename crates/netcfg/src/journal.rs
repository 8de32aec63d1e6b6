//! The undo journal: every system change is recorded as the action that reverses it
//! BEFORE the change is made, so a crash at any point leaves enough on disk for
//! `recover()` to put the machine back.
//!
//! Durability (issue 18: one journal write with its two fsyncs cost most of a netlink
//! apply, on the connect's critical path). Every write goes to a temporary file that is
//! renamed over the journal, so the journal is always the old or the new list, and a
//! helper that crashes (the case the journal exists for) finds the new list at its next
//! start: the page cache outlives the process. `fsync` only adds survival of a MACHINE
//! crash (power loss, kernel panic), and on Linux that matters only for entries whose
//! change itself survives a reboot ([`UndoAction::survives_reboot`]: a rewritten
//! resolv.conf). Routes, addresses, the TUN, systemd-resolved's per-link settings and the
//! nftables table all live in the kernel or in resolved's memory; after a reboot they are
//! gone, and so is anything to undo. So a write is fsync'ed (file, then directory) when it
//! or the previous write holds such an entry, exactly as before; otherwise it is not. The
//! kill switch's journal and a route-only session therefore write no fsync at all, while
//! a session that rewrites resolv.conf still has its entry on disk before the file changes.
//! On Windows and macOS every entry counts as surviving a reboot (WFP filters are
//! persistent), so nothing changes there.
//!
//! A session's apply goes one step further ([`Journal::push_all_deferred`] +
//! [`Journal::make_durable`]): its whole list is written (visible to a crashed helper's
//! recovery) before the first change, and fsync'ed just before the first change that
//! survives a reboot, so the address and the routes (gone after a reboot) no longer wait
//! for the disk; the resolv.conf rewrite still finds its entry on disk first.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Reason, TunAddress};
use crate::routes::{RouteRecord, ROUTE_PROTO_OXIVPN, TABLE_MAIN};
use crate::types::IfaceId;
use crate::Error;

pub const DEFAULT_JOURNAL_PATH: &str = "/var/lib/oxivpn/journal.json";
const VERSION: u32 = 1;

/// What reverses one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UndoAction {
    /// Remove a route we added (matching our route protocol, so nobody else's).
    DeleteRoute(RouteRecord),
    /// Put back a route we deleted, exactly as the kernel had it.
    RestoreRoute(RouteRecord),
    DeleteAddress {
        iface: IfaceId,
        addr: TunAddress,
    },
    /// The tunnel interface; only `recover()` removes it (in a live session its owner does).
    DeleteLink {
        iface: IfaceId,
    },
    /// systemd-resolved: forget everything set on the link.
    RevertResolvedLink {
        iface: IfaceId,
        dbus_address: Option<String>,
    },
    /// Write the file's previous bytes back in place (`None`: it did not exist).
    RestoreFile {
        path: PathBuf,
        previous: Option<Vec<u8>>,
    },
    /// The kill switch's nftables table (kept in its own journal, see `crate::firewall`).
    DeleteFirewallTable {
        family: String,
        table: String,
    },
}

impl UndoAction {
    /// Whether the change this action reverses is still there after the machine reboots
    /// (then its journal entry must be fsync'ed before the change; see the module docs).
    pub fn survives_reboot(&self) -> bool {
        if !cfg!(target_os = "linux") {
            return true;
        }
        match self {
            UndoAction::RestoreFile { .. } => true,
            UndoAction::DeleteRoute(_)
            | UndoAction::RestoreRoute(_)
            | UndoAction::DeleteAddress { .. }
            | UndoAction::DeleteLink { .. }
            | UndoAction::RevertResolvedLink { .. }
            | UndoAction::DeleteFirewallTable { .. } => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub action: UndoAction,
    pub kind: Option<Reason>,
    pub why: String,
    /// The change found its target already in place (not ours): nothing to undo.
    pub skipped: bool,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    entries: Vec<JournalEntry>,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    entries: Vec<JournalEntry>,
    /// The last write held an entry that survives a reboot (so it was fsync'ed, and the
    /// next write must be too, or a machine crash could bring that list back).
    durable: bool,
    /// The last write skipped the fsyncs it needed ([`Journal::push_all_deferred`]):
    /// [`Journal::make_durable`] (or the next write) still owes them.
    unsynced: bool,
}

impl Journal {
    /// Starts an empty journal; refuses when a previous session's journal is still there.
    pub fn create(path: &Path) -> Result<Self, Error> {
        if let Some(old) = Self::load(path)? {
            if !old.entries.is_empty() {
                return Err(Error::JournalExists {
                    path: path.to_path_buf(),
                });
            }
        }
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                // Journals say what root will undo: their directory is nobody else's.
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(dir).map_err(|source| Error::Journal {
                    path: path.to_path_buf(),
                    what: "create its directory",
                    source,
                })?;
            }
        }
        // Nothing is written until there is something to undo.
        Ok(Self {
            path: path.to_path_buf(),
            entries: Vec::new(),
            durable: false,
            unsynced: false,
        })
    }

    /// Reads a journal; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, Error> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Journal {
                    path: path.to_path_buf(),
                    what: "read",
                    source,
                })
            }
        };
        let disk: OnDisk =
            serde_json::from_slice(&bytes).map_err(|source| Error::JournalFormat {
                path: path.to_path_buf(),
                source,
            })?;
        if disk.version != VERSION {
            return Err(Error::JournalFormat {
                path: path.to_path_buf(),
                source: serde::de::Error::custom(format!("version {}", disk.version)),
            });
        }
        // What is on disk may have been fsync'ed: the next write keeps it that way.
        Ok(Some(Self {
            path: path.to_path_buf(),
            entries: disk.entries,
            durable: true,
            unsynced: false,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[JournalEntry] {
        &self.entries
    }

    /// Records entries durably with one write.
    pub fn push_all(&mut self, entries: Vec<JournalEntry>) -> Result<(), Error> {
        self.entries.extend(entries);
        self.write()
    }

    /// Records entries with one write that a crashed PROCESS's recovery finds, leaving its
    /// fsyncs (if the list needs them) to [`Journal::make_durable`], which the caller must
    /// call before making any change that [`UndoAction::survives_reboot`].
    pub fn push_all_deferred(&mut self, entries: Vec<JournalEntry>) -> Result<(), Error> {
        self.entries.extend(entries);
        self.write_with(false)
    }

    /// The fsyncs a [`Journal::push_all_deferred`] skipped (file, then directory); nothing
    /// when none are owed.
    pub fn make_durable(&mut self) -> Result<(), Error> {
        if !self.unsynced {
            return Ok(());
        }
        let err = |what: &'static str| {
            let path = self.path.clone();
            move |source| Error::Journal { path, what, source }
        };
        // Opened for writing: Windows flushes (FlushFileBuffers) only a handle with write
        // access, and refuses a read-only one with "Access denied".
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(err("fsync"))?;
        self.sync_dir()?;
        self.unsynced = false;
        Ok(())
    }

    /// Records an entry durably; returns its index.
    pub fn push(&mut self, entry: JournalEntry) -> Result<usize, Error> {
        self.entries.push(entry);
        self.write()?;
        Ok(self.entries.len() - 1)
    }

    pub fn mark_skipped(&mut self, index: usize) -> Result<(), Error> {
        if let Some(e) = self.entries.get_mut(index) {
            e.skipped = true;
        }
        self.write()
    }

    /// Keeps only `keep` (what could not be undone) on disk.
    pub(crate) fn replace(&mut self, keep: Vec<JournalEntry>) -> Result<(), Error> {
        self.entries = keep;
        self.write()
    }

    /// Deletes the journal file (everything was undone).
    pub fn remove(&mut self) -> Result<(), Error> {
        self.entries.clear();
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Journal {
                path: self.path.clone(),
                what: "remove",
                source,
            }),
        }
    }

    /// Write to a temporary file, fsync, rename over the journal, fsync the directory:
    /// the journal on disk is always either the old or the new list, never half of one.
    /// The two fsyncs only when this or the previous list holds an entry that survives a
    /// reboot (see the module docs).
    fn write(&mut self) -> Result<(), Error> {
        self.write_with(true)
    }

    /// [`Journal::write`]; with `may_sync` false the fsyncs it needs are owed instead.
    fn write_with(&mut self, may_sync: bool) -> Result<(), Error> {
        let durable = self.entries.iter().any(|e| e.action.survives_reboot());
        let needed = durable || self.durable || self.unsynced;
        let sync = needed && may_sync;
        let err = |what: &'static str| {
            let path = self.path.clone();
            move |source| Error::Journal { path, what, source }
        };
        let disk = OnDisk {
            version: VERSION,
            entries: self.entries.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&disk).map_err(|e| Error::Journal {
            path: self.path.clone(),
            what: "serialize",
            source: std::io::Error::other(e),
        })?;
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(err("create"))?;
        f.write_all(&bytes).map_err(err("write"))?;
        if sync {
            f.sync_all().map_err(err("fsync"))?;
        }
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(err("rename into place"))?;
        self.durable = durable;
        self.unsynced = needed && !sync;
        if !sync {
            return Ok(());
        }
        self.sync_dir()
    }

    /// fsync of the journal's directory (makes the rename durable).
    fn sync_dir(&self) -> Result<(), Error> {
        let err = |what: &'static str| {
            let path = self.path.clone();
            move |source| Error::Journal { path, what, source }
        };
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                d.sync_all().map_err(err("fsync its directory"))?;
            }
        }
        Ok(())
    }
}

/// What a journal may ask the helper (root) to undo: only what OxiVPN itself makes. A
/// journal is a file on disk, so a forged one must not make us delete someone else's file,
/// route, interface or firewall table, nor dial a D-Bus address of its choosing. Every
/// entry is checked here before it is undone; a refused entry is logged and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalTrust {
    /// The one file DNS changes write (the configured resolv.conf; its backup is the
    /// journal entry's own `previous` bytes, never a second file).
    pub resolv_conf: PathBuf,
    /// The bus systemd-resolved is reached on (`None`: the system bus).
    pub dbus_address: Option<String>,
    /// Names of the TUNs we create start with this: `oxi` on Linux (`oxi%d` makes `oxi0`,
    /// `oxi1`, ...), our wintun adapter `OxiVPN` on Windows, the kernel's `utun` on macOS
    /// (there the index, name and TUN-ness found at undo time carry the weight).
    pub tun_prefix: String,
    /// Our nftables table (family `inet`); on Windows / macOS the back end removes only
    /// our WFP provider / pf anchor whatever the name, but the name must still be ours.
    pub firewall_table: String,
}

impl Default for JournalTrust {
    fn default() -> Self {
        Self {
            resolv_conf: "/etc/resolv.conf".into(),
            dbus_address: None,
            tun_prefix: if cfg!(windows) {
                "OxiVPN".to_owned()
            } else if cfg!(target_os = "macos") {
                "utun".to_owned()
            } else {
                crate::tun::DEFAULT_NAME_PATTERN
                    .trim_end_matches("%d")
                    .to_owned()
            },
            firewall_table: crate::firewall::DEFAULT_TABLE.to_owned(),
        }
    }
}

/// The firewall family our table lives in (see `crate::firewall`).
const FIREWALL_FAMILY: &str = "inet";

/// Why a journal entry was not undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal entry not ours, left alone: {0}")]
pub struct Refused(pub String);

impl JournalTrust {
    /// The interfaces `entries` may touch: the TUNs the journal itself records creating
    /// (`DeleteLink`) whose names carry our prefix, plus `own` (a live session's TUN,
    /// which it created whatever its name).
    pub fn created_links(&self, entries: &[JournalEntry], own: Option<&IfaceId>) -> Vec<IfaceId> {
        let mut links: Vec<IfaceId> = entries
            .iter()
            .filter_map(|e| match &e.action {
                UndoAction::DeleteLink { iface } if self.is_our_tun_name(&iface.name) => {
                    Some(iface.clone())
                }
                _ => None,
            })
            .collect();
        if let Some(own) = own {
            if !links.contains(own) {
                links.push(own.clone());
            }
        }
        links
    }

    fn is_our_tun_name(&self, name: &str) -> bool {
        !self.tun_prefix.is_empty() && name.starts_with(&self.tun_prefix)
    }

    /// Whether `entry` is something OxiVPN makes; `links` from [`Self::created_links`].
    /// What the kernel holds now (is that index still our TUN?) is checked where the
    /// entry is undone.
    pub fn check(&self, entry: &JournalEntry, links: &[IfaceId]) -> Result<(), Refused> {
        let refuse = |why: String| Err(Refused(why));
        match &entry.action {
            UndoAction::DeleteRoute(r) => {
                if r.protocol != ROUTE_PROTO_OXIVPN {
                    return refuse(format!(
                        "route {r} has protocol {}, ours is {ROUTE_PROTO_OXIVPN}",
                        r.protocol
                    ));
                }
            }
            UndoAction::RestoreRoute(r) => {
                // The planner deletes exactly one kind of route: the IPv4 default route of
                // the main table, replaced by redirect-gateway without def1.
                let planned = entry.kind == Some(Reason::ReplaceDefault)
                    && r.dst.prefix_len() == 0
                    && r.dst.addr().is_ipv4()
                    && r.table == TABLE_MAIN
                    && r.kind == RouteRecord::KIND_UNICAST;
                if !planned {
                    return refuse(format!(
                        "re-adding route {r} matches no change the planner makes"
                    ));
                }
            }
            UndoAction::DeleteAddress { iface, .. } => {
                if !links.contains(iface) {
                    return refuse(format!(
                        "address on {iface}, not a TUN this journal created"
                    ));
                }
            }
            UndoAction::DeleteLink { iface } => {
                if !links.contains(iface) {
                    return refuse(format!(
                        "interface {iface} is not named {}N",
                        self.tun_prefix
                    ));
                }
            }
            UndoAction::RevertResolvedLink {
                iface,
                dbus_address,
            } => {
                if *dbus_address != self.dbus_address {
                    return refuse(format!(
                        "D-Bus address {:?} is not the configured bus ({:?})",
                        dbus_address.as_deref().unwrap_or("system bus"),
                        self.dbus_address.as_deref().unwrap_or("system bus")
                    ));
                }
                if !links.contains(iface) {
                    return refuse(format!("DNS of {iface}, not a TUN this journal created"));
                }
            }
            UndoAction::RestoreFile { path, .. } => {
                if *path != self.resolv_conf {
                    return refuse(format!(
                        "file {} is not the configured resolv.conf ({})",
                        path.display(),
                        self.resolv_conf.display()
                    ));
                }
            }
            UndoAction::DeleteFirewallTable { family, table } => {
                if family != FIREWALL_FAMILY || *table != self.firewall_table {
                    return refuse(format!(
                        "firewall table {family} {table} is not ours ({FIREWALL_FAMILY} {})",
                        self.firewall_table
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The helper's state directory (undo journals): created `0700` owned by us (root for
/// the service); an existing one owned by anyone else, not a directory (a symlink is
/// refused too), or writable by group or others is refused: whoever can write there can
/// forge what the helper undoes as root.
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub fn ensure_state_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let err = |what: &'static str| {
        let path = dir.to_path_buf();
        move |source| Error::Journal { path, what, source }
    };
    let refuse = |why: String| Error::StateDir {
        path: dir.to_path_buf(),
        why: format!("refused: {why}"),
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(err("create its parent"))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(err("create"))?;
            // The umask can only take bits away; set the mode exactly.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(err("set mode 0700 on"))?;
            Ok(())
        }
        Err(source) => Err(Error::Journal {
            path: dir.to_path_buf(),
            what: "inspect",
            source,
        }),
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(refuse(
                    "it is not a directory (symlinks are refused)".into(),
                ));
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            #[allow(unsafe_code)]
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return Err(refuse(format!(
                    "it is owned by uid {owner}, not by uid {me} (the helper); fix with: chown {me}:{me} {d} && chmod 0700 {d}",
                    owner = meta.uid(),
                    d = dir.display()
                )));
            }
            let mode = meta.mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(refuse(format!(
                    "its mode {mode:04o} lets group or others write there; fix with: chmod 0700 {}",
                    dir.display()
                )));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
