//! The .rpm: the same tree as the .deb (unit under /usr/lib), packed by `rpmbuild -bb`
//! from `packaging/linux/rpm/oxivpn.spec`, which only copies the staged tree.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use super::payload::{self, Icons};
use super::{output, Build};

pub const UNIT_DIR: &str = "usr/lib/systemd/system";

pub fn build(build: &Build, icons: &Icons) -> anyhow::Result<PathBuf> {
    let top = build.work.join("rpm");
    let stage = top.join("stage");
    payload::stage(&stage, UNIT_DIR, build, icons)?;
    let arch = output(Command::new("uname").arg("-m"))?.trim().to_owned();
    let spec = payload::packaging_dir().join("linux/rpm/oxivpn.spec");
    let rpms = top.join("rpms");

    let define = |k: &str, v: &str| format!("{k} {v}");
    let mut cmd = Command::new("rpmbuild");
    cmd.arg("-bb")
        .arg("--quiet")
        .args(["--target", &arch])
        .args([
            "--define",
            &define("_topdir", &top.join("top").to_string_lossy()),
        ])
        .args(["--define", &define("_rpmdir", &rpms.to_string_lossy())])
        .args(["--define", &define("_stagedir", &stage.to_string_lossy())])
        .args(["--define", &define("_oxivpn_version", &build.version)])
        .args([
            "--define",
            &define(
                "_with_app",
                if build.bins()?.app.is_some() {
                    "1"
                } else {
                    "0"
                },
            ),
        ])
        // No /usr/lib/.build-id links: the package should hold exactly the staged files.
        .args(["--define", "_build_id_links none"])
        // Debian's rpm has no dependency database of its own to check build deps against.
        .arg("--nodeps");
    if !build.release {
        cmd.args(["--define", "_binary_payload w0.gzdio"]);
    }
    cmd.arg(&spec);
    output(&mut cmd).context("rpmbuild (Debian package rpm)")?;

    let built = rpms
        .join(&arch)
        .join(format!("oxivpn-{}-1.{arch}.rpm", build.version));
    if !built.is_file() {
        bail!("rpmbuild did not produce {}", built.display());
    }
    let dest = build.out.join(built.file_name().context("rpm file name")?);
    std::fs::copy(&built, &dest).with_context(|| format!("copying {}", built.display()))?;
    Ok(dest)
}
