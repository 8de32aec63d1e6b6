//! The undo journal: every system change is recorded (and fsync'ed) as the action that
//! reverses it BEFORE the change is made, so a crash at any point leaves enough on disk for
//! `recover()` to put the machine back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Reason, TunAddress};
use crate::routes::RouteRecord;
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
                std::fs::create_dir_all(dir).map_err(|source| Error::Journal {
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
        Ok(Some(Self {
            path: path.to_path_buf(),
            entries: disk.entries,
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
    fn write(&self) -> Result<(), Error> {
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
        f.sync_all().map_err(err("fsync"))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(err("rename into place"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(why: &str) -> JournalEntry {
        JournalEntry {
            action: UndoAction::RestoreFile {
                path: "/x".into(),
                previous: Some(b"a\nb".to_vec()),
            },
            kind: Some(Reason::Dns),
            why: why.into(),
            skipped: false,
        }
    }

    #[test]
    fn entries_survive_on_disk_and_block_a_second_session() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/journal.json");
        let mut j = Journal::create(&path).unwrap();
        j.push(entry("one")).unwrap();
        let i = j.push(entry("two")).unwrap();
        j.mark_skipped(i).unwrap();
        let back = Journal::load(&path).unwrap().unwrap();
        assert_eq!(back.entries().len(), 2);
        assert_eq!(back.entries()[0], entry("one"));
        assert!(back.entries()[1].skipped);
        assert!(matches!(
            Journal::create(&path),
            Err(Error::JournalExists { .. })
        ));
        j.remove().unwrap();
        assert!(Journal::load(&path).unwrap().is_none());
        assert!(Journal::create(&path).is_ok());
    }

    #[test]
    fn the_kill_switch_entry_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firewall.json");
        let e = JournalEntry {
            action: UndoAction::DeleteFirewallTable {
                family: "inet".into(),
                table: "oxivpn".into(),
            },
            kind: None,
            why: "kill switch".into(),
            skipped: false,
        };
        Journal::create(&path).unwrap().push(e.clone()).unwrap();
        assert_eq!(Journal::load(&path).unwrap().unwrap().entries(), [e]);
    }

    #[test]
    fn a_corrupt_journal_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        std::fs::write(&path, b"{not json").unwrap();
        let e = Journal::load(&path).unwrap_err();
        assert!(matches!(e, Error::JournalFormat { .. }));
        assert!(e.to_string().contains("journal.json"));
    }
}
