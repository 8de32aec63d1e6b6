//! Processes the lab starts: output into a log file, stopped on drop.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd::describe;

const POLL: Duration = Duration::from_millis(20);
/// How long a process gets after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A running process whose standard output and error go to a log file.
///
/// Dropping it sends SIGTERM, waits a bounded time, then SIGKILL.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
    started: Instant,
}

impl Proc {
    /// Starts `cmd` in its own process group (so a terminal's Ctrl-C reaches only
    /// the lab's owner, which then stops everything in order), with standard input
    /// closed and output appended to `log`.
    pub fn spawn(mut cmd: Command, name: &str, log: &Path) -> anyhow::Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let line = describe(&cmd);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name}: `{line}`"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            status: None,
            started,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits until the log contains `needle`; fails early (with the log's tail) when
    /// the process exits first, and after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(self.started.elapsed());
            }
            if let Some(st) = self.try_status() {
                // It may have written the line just before exiting.
                if self.log().contains(needle) {
                    return Ok(self.started.elapsed());
                }
                bail!(
                    "{} exited ({st}) before logging {needle:?}; last log lines:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not log {needle:?} within {timeout:?}; last log lines:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `sig` to the process (no-op once it has ended).
    pub fn signal(&mut self, sig: Signal) -> anyhow::Result<()> {
        if self.try_status().is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), sig).with_context(|| format!("sending {sig} to {}", self.name))
    }

    /// Waits at most `timeout` for the process to end.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_status() {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                bail!("{} still runs after {timeout:?}", self.name);
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL without grace, then reap.
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// SIGTERM, a bounded wait, then SIGKILL; returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(st) = self.try_status() {
            return Some(st);
        }
        let _ = self.signal(Signal::SIGTERM);
        if let Ok(st) = self.wait_exit(GRACE) {
            return Some(st);
        }
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
        self.status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
