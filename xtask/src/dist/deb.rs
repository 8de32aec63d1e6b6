//! The .deb: a staged tree plus DEBIAN/, built with `dpkg-deb --build --root-owner-group`
//! (no cargo-deb: nothing to compile, and the tree is the same one the .rpm gets).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::payload::{self, Icons};
use super::{output, Build};

pub const UNIT_DIR: &str = "lib/systemd/system";

pub fn build(build: &Build, icons: &Icons) -> anyhow::Result<PathBuf> {
    // dpkg-shlibdeps wants debian/control and the tree at debian/<package>.
    let top = build.work.join("deb");
    let root = top.join("root");
    payload::stage(&root, UNIT_DIR, build, icons)?;

    let arch = output(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned();
    let depends = depends(&top, &root, build)?;
    // The app loads the tray library at run time (dlopen), so shlibdeps cannot see it.
    let recommends = if build.bins()?.app.is_some() {
        "systemd, libayatana-appindicator3-1"
    } else {
        "systemd"
    };
    let control = control_text(
        &build.version,
        &arch,
        &depends,
        recommends,
        installed_size_kib(&root)?,
    );
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).with_context(|| format!("creating {}", debian.display()))?;
    std::fs::write(debian.join("control"), control).context("writing DEBIAN/control")?;
    let scripts = payload::packaging_dir().join("linux/debian");
    for s in ["postinst", "prerm", "postrm"] {
        payload::install(&scripts.join(s), &debian.join(s), 0o755)?;
    }
    let sums = output(
        Command::new("sh")
            .args([
                "-c",
                "find usr lib -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum",
            ])
            .current_dir(&root),
    )?;
    std::fs::write(debian.join("md5sums"), sums).context("writing DEBIAN/md5sums")?;

    let deb = build
        .out
        .join(format!("oxivpn_{}_{arch}.deb", build.version));
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--build").arg("--root-owner-group");
    if !build.release {
        cmd.arg("-Znone");
    }
    cmd.arg(&root).arg(&deb);
    output(&mut cmd)?;
    Ok(deb)
}

/// Shared-library dependencies from dpkg-shlibdeps, plus adduser for the postinst.
fn depends(top: &Path, root: &Path, build: &Build) -> anyhow::Result<String> {
    let ctl = top.join("debian/control");
    std::fs::create_dir_all(top.join("debian")).context("creating debian/")?;
    std::fs::write(
        &ctl,
        "Source: oxivpn\n\nPackage: oxivpn\nArchitecture: any\n",
    )
    .context("writing debian/control for dpkg-shlibdeps")?;
    // dpkg-shlibdeps expects the package's files under debian/<package>.
    let pkgdir = top.join("debian/oxivpn");
    if !pkgdir.exists() {
        std::os::unix::fs::symlink(root, &pkgdir).context("linking debian/oxivpn")?;
    }
    let mut cmd = Command::new("dpkg-shlibdeps");
    cmd.arg("-O").current_dir(top);
    for bin in [payload::HELPER, "usr/bin/oxivpnctl"] {
        cmd.arg(format!("-edebian/oxivpn/{bin}"));
    }
    if build.bins()?.app.is_some() {
        cmd.arg("-edebian/oxivpn/usr/bin/oxivpn");
    }
    let out = output(&mut cmd).context("dpkg-shlibdeps (Debian package dpkg-dev)")?;
    let shlibs = out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok(if shlibs.is_empty() {
        "adduser".into()
    } else {
        format!("adduser, {shlibs}")
    })
}

fn installed_size_kib(root: &Path) -> anyhow::Result<u64> {
    let du = output(
        Command::new("du")
            .args(["-sk", "--apparent-size"])
            .arg(root),
    )?;
    du.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected du output {du:?}"))
}

fn control_text(
    version: &str,
    arch: &str,
    depends: &str,
    recommends: &str,
    size_kib: u64,
) -> String {
    format!(
        "Package: oxivpn\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: OxiVPN developers <oxivpn@example.invalid>\n\
         Installed-Size: {size_kib}\n\
         Depends: {depends}\n\
         Recommends: {recommends}\n\
         Suggests: systemd-resolved\n\
         Section: net\n\
         Priority: optional\n\
         Homepage: https://example.invalid/oxivpn\n\
         Description: OpenVPN-compatible VPN client\n \
         OxiVPN connects to OpenVPN servers. A privileged helper service owns the\n \
         tunnel device, routes and DNS; members of the oxivpn group control it with\n \
         the desktop app or with oxivpnctl.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_has_the_fields_dpkg_needs_and_a_folded_description() {
        let c = control_text(
            "1.2.3",
            "amd64",
            "adduser, libc6 (>= 2.34)",
            "systemd",
            4242,
        );
        for field in [
            "Package: oxivpn\n",
            "Version: 1.2.3\n",
            "Architecture: amd64\n",
            "Installed-Size: 4242\n",
        ] {
            assert!(c.contains(field), "{field:?} missing from\n{c}");
        }
        assert!(c.contains("Depends: adduser, libc6 (>= 2.34)\n"));
        assert!(c.contains("Recommends: systemd\n"));
        // Continuation lines of the long description start with one space.
        let desc: Vec<&str> = c
            .lines()
            .skip_while(|l| !l.starts_with("Description:"))
            .skip(1)
            .collect();
        assert_eq!(desc.len(), 3);
        assert!(desc
            .iter()
            .all(|l| l.starts_with(' ') && !l.starts_with("  ")));
    }
}
