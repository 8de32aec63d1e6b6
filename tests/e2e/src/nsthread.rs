//! Running Rust code inside a lab namespace: a fresh thread joins the namespace with
//! `setns(CLONE_NEWNET)` (a per-thread property), so sockets it opens live there. Used
//! for capture sync packets and the fault-injecting proxy.

use std::fs::File;
use std::thread::JoinHandle;

use anyhow::Context;
use nix::sched::{setns, CloneFlags};

/// Starts `f` on a new thread inside the network namespace `ns_name`.
pub fn spawn_in<F, T>(
    ns_name: &str,
    name: &str,
    f: F,
) -> anyhow::Result<JoinHandle<anyhow::Result<T>>>
where
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let path = format!("/var/run/netns/{ns_name}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    let ns = ns_name.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("joining network namespace {ns}"))?;
            drop(file);
            f()
        })
        .context("spawning a thread")
}
