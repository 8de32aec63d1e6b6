//! The kill switch on macOS: the rules of [`super::pf_rules`] loaded into our pf anchor
//! with `pfctl` ([`super::pfctl`]). Rules in an anchor stay when the helper dies (as on
//! Linux). pf is enabled with a REFERENCE (`pfctl -E` hands back a token): pf stays on
//! while anyone holds one, and our removal releases ours (`pfctl -X`), so OxiVPN never
//! leaves pf on that it did not turn on, nor turns it off under another program. The
//! token is written (fsync) beside the firewall journal, so recovery after a crash
//! releases it too. COMPILED for aarch64-apple-darwin only; not run here.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::pf_rules::{anchor_name, pf_rules};
use super::{pfctl, FirewallOptions, FirewallPolicy};
use crate::Error;

#[derive(Debug)]
pub(super) struct Backend {
    table: String,
    /// Where our pf enable token is kept while we hold it.
    token_path: PathBuf,
}

/// The token file that belongs to a firewall journal.
pub(super) fn token_path(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".pf-token");
    PathBuf::from(s)
}

fn io_fail(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Firewall {
        what: what.to_owned(),
        source,
    }
}

impl Backend {
    fn token(&self) -> Result<Option<u64>, Error> {
        match std::fs::read_to_string(&self.token_path) {
            Ok(t) => Ok(t.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_fail("read the pf token file")(e)),
        }
    }

    fn write_token(&self, token: u64) -> Result<(), Error> {
        if let Some(dir) = self.token_path.parent() {
            std::fs::create_dir_all(dir).map_err(io_fail("create the state directory"))?;
        }
        let mut f =
            std::fs::File::create(&self.token_path).map_err(io_fail("write the pf token file"))?;
        f.write_all(token.to_string().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_fail("write the pf token file"))
    }
}

impl super::Backend for Backend {
    fn open(opts: &FirewallOptions) -> Result<Self, Error> {
        Ok(Self {
            table: opts.table.clone(),
            token_path: token_path(&opts.journal_path),
        })
    }

    /// Loads the rules into our anchor (replacing what it held, atomically), then takes a
    /// pf enable reference unless we already hold one.
    fn apply(&mut self, policy: &FirewallPolicy) -> Result<(), Error> {
        let anchor = anchor_name(&self.table);
        pfctl::must(&["-a", &anchor, "-f", "-"], Some(&pf_rules(policy)))?;
        if self.token()?.is_none() {
            let text = pfctl::must(&["-E"], None)?;
            let token = pfctl::parse_token(&text).ok_or_else(|| Error::Firewall {
                what: "pfctl -E gave no reference token".into(),
                source: std::io::Error::other(text.trim().to_owned()),
            })?;
            self.write_token(token)?;
        }
        let info = pfctl::must(&["-s", "info"], None)?;
        if !pfctl::is_enabled(&info) {
            return Err(Error::Firewall {
                what: "pf did not enable (pfctl -s info)".into(),
                source: std::io::Error::other(info),
            });
        }
        Ok(())
    }

    /// Flushes our anchor, then releases our pf reference (pf turns off only if nobody
    /// else holds one). A token the kernel no longer knows (a reboot came between) is
    /// logged and forgotten.
    fn remove(&mut self) -> Result<(), Error> {
        pfctl::must(&["-a", &anchor_name(&self.table), "-F", "rules"], None)?;
        if let Some(token) = self.token()? {
            let (ok, text) = pfctl::run(&["-X", &token.to_string()], None)?;
            if !ok {
                tracing::warn!(answer = %text.trim(), "pfctl -X: our pf reference was already gone");
            }
            match std::fs::remove_file(&self.token_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_fail("remove the pf token file")(e)),
            }
        }
        Ok(())
    }

    /// Our anchor holds rules, or we still hold a pf reference.
    fn is_present(&self) -> Result<bool, Error> {
        let (ok, text) = pfctl::run(&["-a", &anchor_name(&self.table), "-s", "rules"], None)?;
        let rules = ok
            && text
                .lines()
                .any(|l| l.starts_with("block") || l.starts_with("pass"));
        Ok(rules || self.token()?.is_some())
    }
}
