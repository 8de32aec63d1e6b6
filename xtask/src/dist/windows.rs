//! Windows: x86_64-pc-windows-gnu binaries (mingw-w64) and the NSIS installer from
//! `packaging/windows/oxivpn.nsi`, built with Debian's makensis.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::payload::{self, Icons};
use super::{output, Build};
use crate::sys;

pub const TARGET: &str = "x86_64-pc-windows-gnu";
const ICO_SIZES: &[u32] = &[16, 32, 48, 256];

/// Compiles the installer script against tiny stand-in files, treating warnings as
/// errors, so script mistakes show up without a Windows build.
pub fn smoke_script(build: &Build) -> anyhow::Result<()> {
    let dir = build.work.join("nsis-smoke");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for exe in ["oxivpn-helper.exe", "oxivpnctl.exe", "oxivpn.exe"] {
        std::fs::write(dir.join(exe), b"stand-in").with_context(|| format!("writing {exe}"))?;
    }
    let out = dir.join("oxivpn-smoke-installer.exe");
    makensis(build, &dir, &out, None)?;
    if !out.is_file() {
        bail!("makensis did not write {}", out.display());
    }
    eprintln!("xtask dist: NSIS script compiles (stand-in binaries)");
    Ok(())
}

pub fn build(build: &Build, icons: &Icons) -> anyhow::Result<PathBuf> {
    sys::run(Command::new("rustup").args(["target", "add", TARGET]))?;
    sys::run(sys::cargo().args([
        "build",
        "--release",
        "--locked",
        "--target",
        TARGET,
        "-p",
        "oxivpnctl",
        "-p",
        "oxivpn-helper",
    ]))
    .context("cross-building for Windows (Debian package mingw-w64)")?;
    let rel = super::target_dir().join(TARGET).join("release");
    let bindir = build.work.join("windows-bin");
    std::fs::create_dir_all(&bindir).with_context(|| format!("creating {}", bindir.display()))?;
    for exe in ["oxivpn-helper.exe", "oxivpnctl.exe"] {
        payload::install(&rel.join(exe), &bindir.join(exe), 0o755)?;
        output(
            Command::new("x86_64-w64-mingw32-strip")
                .arg("--strip-debug")
                .arg(bindir.join(exe)),
        )?;
    }
    let ico = build.work.join("oxivpn.ico");
    let pngs: Vec<&Path> = icons
        .pngs
        .iter()
        .filter(|(s, _)| ICO_SIZES.contains(s))
        .map(|(_, p)| p.as_path())
        .collect();
    write_ico(&pngs, &ico)?;
    let setup = build
        .out
        .join(format!("oxivpn-{}-x86_64-setup.exe", build.version));
    makensis(build, &bindir, &setup, Some(&ico))?;
    Ok(setup)
}

fn makensis(build: &Build, bindir: &Path, out: &Path, icon: Option<&Path>) -> anyhow::Result<()> {
    let mut cmd = Command::new("makensis");
    cmd.args(["-V2", "-WX", "-NOCD"])
        .arg(format!("-DVERSION={}", build.version))
        .arg(format!("-DBINDIR={}", bindir.display()))
        .arg(format!("-DOUTFILE={}", out.display()));
    if let Some(icon) = icon {
        cmd.arg(format!("-DICON={}", icon.display()));
    }
    cmd.arg(payload::packaging_dir().join("windows/oxivpn.nsi"));
    output(&mut cmd).context("makensis (Debian package nsis)")?;
    Ok(())
}

/// An .ico holding the given PNGs as they are (PNG entries: Windows Vista and later).
fn write_ico(pngs: &[&Path], to: &Path) -> anyhow::Result<()> {
    let images: Vec<Vec<u8>> = pngs
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect::<anyhow::Result<_>>()?;
    std::fs::write(to, ico_bytes(&images)?).with_context(|| format!("writing {}", to.display()))
}

fn ico_bytes(images: &[Vec<u8>]) -> anyhow::Result<Vec<u8>> {
    let count = u16::try_from(images.len()).context("too many icon images")?;
    let mut head = Vec::new();
    head.extend_from_slice(&0u16.to_le_bytes());
    head.extend_from_slice(&1u16.to_le_bytes()); // type: icon
    head.extend_from_slice(&count.to_le_bytes());
    let mut offset = 6 + 16 * u32::from(count);
    let mut data = Vec::new();
    for img in images {
        let (w, h) = png_size(img).context("icon image is not a PNG")?;
        let len = u32::try_from(img.len()).context("icon image too large")?;
        // 256 is written as 0 in the one-byte size fields.
        head.push(u8::try_from(w).unwrap_or(0));
        head.push(u8::try_from(h).unwrap_or(0));
        head.extend_from_slice(&[0, 0]); // no palette, reserved
        head.extend_from_slice(&1u16.to_le_bytes()); // planes
        head.extend_from_slice(&32u16.to_le_bytes()); // bits per pixel
        head.extend_from_slice(&len.to_le_bytes());
        head.extend_from_slice(&offset.to_le_bytes());
        offset = offset.checked_add(len).context("icon file too large")?;
        data.extend_from_slice(img);
    }
    head.extend_from_slice(&data);
    Ok(head)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.get(..8)? != b"\x89PNG\r\n\x1a\n" || png.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(png.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_png(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0]);
        v
    }

    #[test]
    fn ico_directory_points_at_each_png() {
        let imgs = vec![fake_png(16, 16), fake_png(256, 256)];
        let ico = ico_bytes(&imgs).unwrap();
        assert_eq!(&ico[..6], &[0, 0, 1, 0, 2, 0]);
        // First entry: 16x16 at offset 6 + 2*16.
        assert_eq!((ico[6], ico[7]), (16, 16));
        let off = u32::from_le_bytes(ico[18..22].try_into().unwrap()) as usize;
        assert_eq!(off, 38);
        assert_eq!(&ico[off..off + imgs[0].len()], &imgs[0][..]);
        // Second entry: 256 is written as 0.
        assert_eq!((ico[22], ico[23]), (0, 0));
        let off2 = u32::from_le_bytes(ico[34..38].try_into().unwrap()) as usize;
        assert_eq!(&ico[off2..], &imgs[1][..]);
    }

    #[test]
    fn non_png_input_is_refused() {
        assert!(ico_bytes(&[b"GIF89a".to_vec()]).is_err());
        assert_eq!(png_size(&fake_png(48, 32)), Some((48, 32)));
    }
}
