//! `--install-test`: the .deb in a fresh Debian 12 root (debootstrap, chroot):
//! install with apt, check files, group and `--version`, purge, check nothing is left
//! but the user's profiles.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};

use super::payload::{self, HELPER_LINK};
use super::{deb, output, Build};
use crate::sys;

const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// A user profile that purge must leave alone.
const USER_PROFILE: &str = "home/ann/.local/share/oxivpn/profiles/work.ovpn";

pub fn run(deb_file: &Path, build: &Build, target: &Path) -> anyhow::Result<()> {
    if !sys::is_root() {
        bail!("--install-test needs root (debootstrap, chroot)");
    }
    let base = base_root(target)?;
    let root = build.work.join("chroot");
    if root.exists() {
        ensure_unmounted(&root)?;
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    // A copy per run, so every run starts from the same pristine root.
    sys::run(Command::new("cp").arg("-a").arg(&base).arg(&root))?;
    let mounts = Mounts::new(&root)?;
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"))
        .context("resolv.conf for the chroot")?;
    std::fs::copy(deb_file, root.join("tmp/oxivpn.deb"))
        .context("copying the .deb into the chroot")?;
    let profile = root.join(USER_PROFILE);
    if let Some(p) = profile.parent() {
        std::fs::create_dir_all(p).context("creating the user profile dir")?;
    }
    std::fs::write(&profile, "client\nremote vpn.example.invalid 1194\n")
        .context("writing a user profile")?;

    chroot(&root, "apt-get update -qq")?;
    let log = chroot(
        &root,
        "SUDO_USER=ann DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/oxivpn.deb",
    )?;
    ensure!(
        log.contains("usermod -aG oxivpn ann"),
        "postinst did not tell how to join the group:\n{log}"
    );

    let expected = payload::expected_files(deb::UNIT_DIR, build.bins()?.app.is_some());
    let listed = chroot(&root, "dpkg -L oxivpn")?;
    for f in &expected {
        ensure!(
            listed.lines().any(|l| l == format!("/{f}")),
            "dpkg -L oxivpn lacks /{f}"
        );
        ensure!(
            root.join(f).symlink_metadata().is_ok(),
            "/{f} not on disk after install"
        );
    }
    chroot(&root, "getent group oxivpn")?;
    let version = chroot(
        &root,
        &format!("/{HELPER_LINK} --version && oxivpnctl --version"),
    )?;
    ensure!(
        version.contains(&format!("oxivpn-helper {}", build.version)),
        "unexpected --version output: {version:?}"
    );
    chroot(
        &root,
        "install -d -m 0700 /var/lib/oxivpn && echo undo > /var/lib/oxivpn/journal",
    )?;
    eprintln!("xtask dist: installed in a Debian 12 root: files, group and --version ok");

    chroot(
        &root,
        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q oxivpn",
    )?;
    let left: Vec<&String> = expected
        .iter()
        .filter(|f| root.join(f).symlink_metadata().is_ok())
        .collect();
    ensure!(left.is_empty(), "left after purge: {left:?}");
    ensure!(
        !root.join("var/lib/oxivpn").exists(),
        "/var/lib/oxivpn left after purge"
    );
    ensure!(
        !root.join("usr/libexec/oxivpn").exists(),
        "/usr/libexec/oxivpn left after purge"
    );
    ensure!(
        chroot(&root, "getent group oxivpn").is_err(),
        "group oxivpn left after purge"
    );
    let dpkg = chroot(&root, "dpkg-query -W -f='${Status}' oxivpn 2>&1 || true")?;
    ensure!(
        !dpkg.contains("installed") || dpkg.contains("not-installed"),
        "dpkg still knows oxivpn: {dpkg}"
    );
    ensure!(profile.is_file(), "purge removed the user's profile");
    eprintln!("xtask dist: purge left nothing behind (user profile kept)");
    drop(mounts);
    ensure_unmounted(&root)?;
    std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    Ok(())
}

/// A minbase Debian 12 root, bootstrapped once and kept under the target dir.
fn base_root(target: &Path) -> anyhow::Result<PathBuf> {
    let base = target.join("dist-cache").join(format!("{SUITE}-minbase"));
    let done = target
        .join("dist-cache")
        .join(format!("{SUITE}-minbase.done"));
    if done.is_file() && base.is_dir() {
        return Ok(base);
    }
    if base.exists() {
        std::fs::remove_dir_all(&base).with_context(|| format!("removing {}", base.display()))?;
    }
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let mirror = std::env::var("OXIVPN_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
    sys::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", SUITE])
            .arg(&base)
            .arg(&mirror),
    )
    .context("debootstrap (Debian package debootstrap)")?;
    std::fs::write(&done, "").context("marking the bootstrapped root complete")?;
    Ok(base)
}

/// Runs `sh -c script` inside the root; returns stdout+stderr, fails on non-zero exit.
fn chroot(root: &Path, script: &str) -> anyhow::Result<String> {
    eprintln!("xtask dist: (chroot) $ {script}");
    let out = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", script])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env_remove("SUDO_USER")
        .output()
        .context("running chroot")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!(
            "(chroot) {script} failed with {}:\n{}",
            out.status,
            text.trim()
        );
    }
    Ok(text)
}

/// /proc inside the root (debootstrap made /dev's nodes), unmounted on every exit path.
struct Mounts {
    points: Vec<PathBuf>,
}

impl Mounts {
    fn new(root: &Path) -> anyhow::Result<Self> {
        let mut m = Mounts { points: Vec::new() };
        let proc_ = root.join("proc");
        output(
            Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(&proc_),
        )?;
        m.points.push(proc_);
        Ok(m)
    }
}

/// Deleting a tree with something still mounted in it would delete through the mount.
pub(super) fn ensure_unmounted(root: &Path) -> anyhow::Result<()> {
    let mounts =
        std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let prefix = root.to_string_lossy().into_owned();
    if let Some(m) = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .find(|p| p.starts_with(&prefix))
    {
        bail!("{m} is still mounted; not deleting {}", root.display());
    }
    Ok(())
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for p in self.points.drain(..).rev() {
            let _ = output(Command::new("umount").arg("-l").arg(&p));
        }
    }
}
