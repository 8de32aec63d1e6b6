//! The Linux file tree every package carries, and the list the checks compare against.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::{output, Build};
use crate::sys;

/// PNG sizes of the icon theme (hicolor); the SVG goes to `scalable` as well.
pub const ICON_SIZES: &[u32] = &[16, 24, 32, 48, 64, 128, 256, 512];

/// The helper's real place: the unit runs it from here (and allows exec of this path
/// only); `/usr/sbin/oxivpn-helper` is a symlink for people who run it by hand.
pub const HELPER: &str = "usr/libexec/oxivpn/oxivpn-helper";
pub const HELPER_LINK: &str = "usr/sbin/oxivpn-helper";
pub const HELPER_LINK_TARGET: &str = "../libexec/oxivpn/oxivpn-helper";
pub const UNIT_NAME: &str = "oxivpn-helper.service";

/// Rendered icons: the SVG and one PNG per size.
#[derive(Debug, Clone)]
pub struct Icons {
    pub svg: PathBuf,
    pub pngs: Vec<(u32, PathBuf)>,
}

pub fn packaging_dir() -> PathBuf {
    sys::root().join("packaging")
}

pub fn render_icons(dir: &Path) -> anyhow::Result<Icons> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg = packaging_dir().join("icons/oxivpn.svg");
    let mut pngs = Vec::new();
    for &size in ICON_SIZES {
        let png = dir.join(format!("oxivpn-{size}.png"));
        output(
            Command::new("rsvg-convert")
                .args(["-w", &size.to_string(), "-h", &size.to_string(), "-o"])
                .arg(&png)
                .arg(&svg),
        )
        .context("rendering the icon (Debian package librsvg2-bin)")?;
        pngs.push((size, png));
    }
    Ok(Icons { svg, pngs })
}

/// Every file and symlink a package installs, relative to `/`, for the given unit
/// directory (`lib/systemd/system` on Debian, `usr/lib/systemd/system` for RPM).
pub fn expected_files(unit_dir: &str, with_app: bool) -> Vec<String> {
    let mut v: Vec<String> = [
        HELPER,
        HELPER_LINK,
        "usr/bin/oxivpnctl",
        "usr/share/applications/oxivpn.desktop",
        "usr/share/mime/packages/oxivpn.xml",
        "usr/share/icons/hicolor/scalable/apps/oxivpn.svg",
        "usr/share/doc/oxivpn/copyright",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("{unit_dir}/{UNIT_NAME}"));
    if with_app {
        v.push("usr/bin/oxivpn".into());
    }
    for s in ICON_SIZES {
        v.push(format!("usr/share/icons/hicolor/{s}x{s}/apps/oxivpn.png"));
    }
    v.sort();
    v
}

/// Writes the tree under `root`; modes are set explicitly so the umask does not matter.
pub fn stage(root: &Path, unit_dir: &str, build: &Build, icons: &Icons) -> anyhow::Result<()> {
    let pk = packaging_dir();
    let b = build.bins()?;
    install(&b.helper, &root.join(HELPER), 0o755)?;
    strip(&root.join(HELPER))?;
    mkdirs(&root.join("usr/sbin"))?;
    std::os::unix::fs::symlink(HELPER_LINK_TARGET, root.join(HELPER_LINK))
        .with_context(|| format!("symlink {}", root.join(HELPER_LINK).display()))?;
    install(&b.ctl, &root.join("usr/bin/oxivpnctl"), 0o755)?;
    strip(&root.join("usr/bin/oxivpnctl"))?;
    if let Some(app) = &b.app {
        install(app, &root.join("usr/bin/oxivpn"), 0o755)?;
        strip(&root.join("usr/bin/oxivpn"))?;
    }
    install(
        &pk.join("linux").join(UNIT_NAME),
        &root.join(unit_dir).join(UNIT_NAME),
        0o644,
    )?;
    install(
        &pk.join("linux/oxivpn.desktop"),
        &root.join("usr/share/applications/oxivpn.desktop"),
        0o644,
    )?;
    install(
        &pk.join("linux/oxivpn-mime.xml"),
        &root.join("usr/share/mime/packages/oxivpn.xml"),
        0o644,
    )?;
    install(
        &pk.join("linux/copyright"),
        &root.join("usr/share/doc/oxivpn/copyright"),
        0o644,
    )?;
    install(
        &icons.svg,
        &root.join("usr/share/icons/hicolor/scalable/apps/oxivpn.svg"),
        0o644,
    )?;
    for (s, png) in &icons.pngs {
        install(
            png,
            &root.join(format!("usr/share/icons/hicolor/{s}x{s}/apps/oxivpn.png")),
            0o644,
        )?;
    }
    Ok(())
}

fn mkdirs(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Every directory up to the tree's root: 0755 whatever the umask.
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.file_name().is_none() {
            break;
        }
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).ok();
        d = p.parent();
    }
    Ok(())
}

pub fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", to.display()))
}

/// Debug info stays in target/ (smoke packages too: it is 90% of a debug binary).
fn strip(bin: &Path) -> anyhow::Result<()> {
    output(Command::new("strip").arg("--strip-debug").arg(bin))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_files_follow_the_unit_dir_and_the_app() {
        let deb = expected_files("lib/systemd/system", false);
        assert!(deb.contains(&"lib/systemd/system/oxivpn-helper.service".to_string()));
        assert!(!deb.iter().any(|f| f == "usr/bin/oxivpn"));
        let rpm = expected_files("usr/lib/systemd/system", true);
        assert!(rpm.contains(&"usr/lib/systemd/system/oxivpn-helper.service".to_string()));
        assert!(rpm.contains(&"usr/bin/oxivpn".to_string()));
        assert_eq!(rpm.len(), deb.len() + 1);
        // The symlink resolves to the helper's real place.
        let link_dir = Path::new(HELPER_LINK).parent().unwrap_or(Path::new(""));
        let resolved = link_dir.join(HELPER_LINK_TARGET);
        let normal: Vec<_> = resolved.components().fold(Vec::new(), |mut acc, c| {
            match c {
                std::path::Component::ParentDir => {
                    acc.pop();
                }
                other => acc.push(other),
            }
            acc
        });
        assert_eq!(normal.iter().collect::<PathBuf>(), PathBuf::from(HELPER));
    }
}
