//! Windows: x86_64-pc-windows-gnu binaries (mingw-w64) and the NSIS installer from
//! `packaging/windows/oxivpn.nsi`, built with Debian's makensis. wintun.dll comes from
//! the wintun-bindings crate in the cargo registry, WebView2Loader.dll (the app's) from
//! webview2-com-sys (no other download). The desktop app (`oxivpn.exe`, Tauri) is
//! cross-built too; its icon is `src-tauri/icons/icon.ico` (committed; rewritten from
//! packaging/icons/oxivpn.svg by the release build when missing).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::payload::{self, Icons};
use super::{output, Build};
use crate::sys;

pub const TARGET: &str = "x86_64-pc-windows-gnu";
const ICO_SIZES: &[u32] = &[16, 32, 48, 256];

/// Files every installer must carry (7z's listing of the setup .exe is checked against
/// this); [`APP_FILES`] come in addition when the app is built.
pub const EXPECTED_FILES: &[&str] = &[
    "oxivpn-helper.exe",
    "oxivpnctl.exe",
    "wintun.dll",
    "wintun-LICENSE.txt",
];
/// The desktop app and the loader its WebView2 window needs next to it.
pub const APP_FILES: &[&str] = &["oxivpn.exe", "WebView2Loader.dll"];

/// CI smoke: the real helper and oxivpnctl cross-built (debug) for Windows, wintun.dll
/// from the cargo registry, an uncompressed installer, and its file list checked.
pub fn smoke(build: &Build) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let bins = cross_build(false)?;
    // Cross-building the app (Tauri, WebView2) costs many minutes cold: the smoke ships
    // it when it was built already (`cargo xtask dist` builds it), like the Linux smoke.
    let app = build.want_app && bins.join("oxivpn.exe").is_file();
    if !app {
        eprintln!("xtask dist: smoke Windows installer without the app (not built; `cargo xtask dist` builds it)");
    }
    let bindir = stage(build, &bins, app)?;
    let out = build.work.join("oxivpn-smoke-setup.exe");
    makensis(build, &bindir, &out, None, true)?;
    check_listing(&out, app)?;
    eprintln!(
        "xtask dist: Windows installer from cross-built binaries: {} ({:.0} s)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn build(build: &Build, icons: &Icons) -> anyhow::Result<PathBuf> {
    let ico = build.work.join("oxivpn.ico");
    let pngs: Vec<&Path> = icons
        .pngs
        .iter()
        .filter(|(s, _)| ICO_SIZES.contains(s))
        .map(|(_, p)| p.as_path())
        .collect();
    write_ico(&pngs, &ico)?;
    // tauri-build embeds this one into oxivpn.exe (and the window uses it).
    let app_ico = sys::root().join("src-tauri/icons/icon.ico");
    if !app_ico.is_file() {
        std::fs::copy(&ico, &app_ico).with_context(|| format!("writing {}", app_ico.display()))?;
    }
    let rel = cross_build(true)?;
    let app = build.want_app && cross_build_app(true)?;
    let bindir = stage(build, &rel, app)?;
    let setup = build
        .out
        .join(format!("oxivpn-{}-x86_64-setup.exe", build.version));
    makensis(build, &bindir, &setup, Some(&ico), false)?;
    check_listing(&setup, app)?;
    Ok(setup)
}

/// Builds oxivpn-helper.exe and oxivpnctl.exe; returns the directory holding them.
fn cross_build(release: bool) -> anyhow::Result<PathBuf> {
    sys::run(Command::new("rustup").args(["target", "add", TARGET]))?;
    let mut cargo = sys::cargo();
    cargo.args([
        "build",
        "--locked",
        "--target",
        TARGET,
        "-p",
        "oxivpnctl",
        "-p",
        "oxivpn-helper",
    ]);
    if release {
        cargo.arg("--release");
    }
    sys::run(&mut cargo)
        .context("cross-building for Windows (Debian package gcc-mingw-w64-x86-64)")?;
    Ok(super::target_dir()
        .join(TARGET)
        .join(if release { "release" } else { "debug" }))
}

/// Cross-builds the desktop app (`oxivpn.exe`); false (with a warning) when it does not
/// build, so the installer is made without it, as on Linux.
fn cross_build_app(release: bool) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let mut cargo = sys::cargo();
    cargo.args([
        "build",
        "--locked",
        "--target",
        TARGET,
        "-p",
        "oxivpn-app",
        "--bin",
        "oxivpn",
    ]);
    if release {
        cargo.arg("--release");
    }
    match sys::run(&mut cargo) {
        Ok(()) => {
            eprintln!(
                "xtask dist: the app for Windows built in {:.0} s",
                started.elapsed().as_secs_f64()
            );
            Ok(true)
        }
        Err(e) => {
            eprintln!(
                "xtask dist: WARNING: the app does not build for Windows ({e:#}); packaging without it"
            );
            Ok(false)
        }
    }
}

/// The installer's input directory: stripped executables plus the vendored DLLs.
fn stage(build: &Build, bin: &Path, app: bool) -> anyhow::Result<PathBuf> {
    let bindir = build.work.join("windows-bin");
    std::fs::create_dir_all(&bindir).with_context(|| format!("creating {}", bindir.display()))?;
    let mut exes = vec!["oxivpn-helper.exe", "oxivpnctl.exe"];
    if app {
        exes.push("oxivpn.exe");
        let loader = vendored_dir("webview2-com-sys")?.join("x64/WebView2Loader.dll");
        payload::install(&loader, &bindir.join("WebView2Loader.dll"), 0o644)
            .context("WebView2Loader.dll from the webview2-com-sys crate")?;
    }
    for exe in exes {
        payload::install(&bin.join(exe), &bindir.join(exe), 0o755)?;
        output(
            Command::new("x86_64-w64-mingw32-strip")
                .arg("--strip-debug")
                .arg(bindir.join(exe)),
        )?;
    }
    let wintun = vendored_dir("wintun-bindings")?.join("wintun");
    payload::install(
        &wintun.join("bin/amd64/wintun.dll"),
        &bindir.join("wintun.dll"),
        0o644,
    )
    .context("wintun.dll from the wintun-bindings crate")?;
    payload::install(
        &wintun.join("LICENSE.txt"),
        &bindir.join("wintun-LICENSE.txt"),
        0o644,
    )?;
    Ok(bindir)
}

/// The source directory of a crate in the lock file (downloaded by the build above):
/// wintun-bindings ships WireGuard's signed wintun.dll, webview2-com-sys the WebView2
/// loader. Nothing is fetched from anywhere but the cargo registry.
fn vendored_dir(krate: &str) -> anyhow::Result<PathBuf> {
    let meta = output(sys::cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--filter-platform",
        TARGET,
    ]))?;
    manifest_dir(&meta, krate)
        .with_context(|| format!("crate {krate} not in `cargo metadata` (Cargo.lock)"))
}

/// Finds `".../<krate>-<version>/Cargo.toml"` in `cargo metadata` JSON.
fn manifest_dir(meta: &str, krate: &str) -> Option<PathBuf> {
    meta.split("\"manifest_path\":\"").skip(1).find_map(|rest| {
        let path = &rest[..rest.find('"')?];
        let dir = path.strip_suffix("/Cargo.toml")?;
        let name = dir.rsplit('/').next()?;
        let version = name.strip_prefix(krate)?.strip_prefix('-')?;
        version
            .starts_with(|c: char| c.is_ascii_digit())
            .then(|| PathBuf::from(dir))
    })
}

/// The file names inside the installer, from `7z l` (7-Zip reads NSIS installers).
fn check_listing(setup: &Path, app: bool) -> anyhow::Result<()> {
    let listing = output(Command::new("7z").arg("l").arg(setup))
        .context("listing the installer (Debian package p7zip-full)")?;
    let names = listed_names(&listing);
    let app_files: &[&str] = if app { APP_FILES } else { &[] };
    let missing: Vec<&&str> = EXPECTED_FILES
        .iter()
        .chain(app_files)
        .filter(|f| !names.iter().any(|n| n == *f))
        .collect();
    if !missing.is_empty() {
        bail!("{} lacks {missing:?}; it holds {names:?}", setup.display());
    }
    eprintln!("xtask dist: {} holds {}", setup.display(), names.join(", "));
    Ok(())
}

/// Base names of the entries in `7z l` output (the table between the dashed lines).
fn listed_names(listing: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_table = false;
    for line in listing.lines() {
        if line.starts_with("-------------------") {
            if in_table {
                break;
            }
            in_table = true;
            continue;
        }
        if in_table {
            // Date Time Attr Size Compressed Name: the name is column 53 on.
            if let Some(name) = line.get(53..) {
                let base = name.trim().rsplit(['/', '\\']).next().unwrap_or("");
                if !base.is_empty() {
                    names.push(base.to_owned());
                }
            }
        }
    }
    names
}

fn makensis(
    build: &Build,
    bindir: &Path,
    out: &Path,
    icon: Option<&Path>,
    fast: bool,
) -> anyhow::Result<()> {
    let mut cmd = Command::new("makensis");
    cmd.args(["-V2", "-WX", "-NOCD"])
        .arg(format!("-DVERSION={}", build.version))
        .arg(format!("-DBINDIR={}", bindir.display()))
        .arg(format!("-DOUTFILE={}", out.display()));
    if let Some(icon) = icon {
        cmd.arg(format!("-DICON={}", icon.display()));
    }
    if fast {
        cmd.arg("-DFAST");
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
    fn manifest_dir_finds_the_crate_not_a_prefix_namesake() {
        let meta = r#"{"packages":[{"name":"wintun-bindings-extra","manifest_path":"/r/wintun-bindings-extra-1.0.0/Cargo.toml"},{"name":"wintun-bindings","manifest_path":"/r/wintun-bindings-0.7.40/Cargo.toml"}]}"#;
        assert_eq!(
            manifest_dir(meta, "wintun-bindings"),
            Some(PathBuf::from("/r/wintun-bindings-0.7.40"))
        );
        assert_eq!(manifest_dir(meta, "webview2-com-sys"), None);
    }

    #[test]
    fn listing_names_are_the_table_entries() {
        let listing = "\
7-Zip [64] 16.02
Type = Nsis
   Date      Time    Attr         Size   Compressed  Name
------------------- ----- ------------ ------------  ------------------------
2026-11-25 10:00:00 .....      2255360               $INSTDIR/oxivpn-helper.exe
2026-11-25 10:00:00 .....       427552               $INSTDIR/wintun.dll
2026-11-25 10:00:00 .....        48234               $PLUGINSDIR/nsExec.dll
------------------- ----- ------------ ------------  ------------------------
2026-11-25 10:00:00            2731146       1400000  3 files
";
        assert_eq!(
            listed_names(listing),
            vec!["oxivpn-helper.exe", "wintun.dll", "nsExec.dll"]
        );
    }

    /// Every file the installer writes into $INSTDIR is deleted by the uninstaller (an
    /// uninstall that leaves files behind also leaves $INSTDIR behind: RMDir is not /r).
    #[test]
    fn uninstaller_deletes_every_installed_file() {
        let nsi =
            std::fs::read_to_string(payload::packaging_dir().join("windows/oxivpn.nsi")).unwrap();
        let quoted = |line: &str, prefix: &str| -> Option<String> {
            let rest = line.trim().strip_prefix(prefix)?;
            let name = rest.trim().trim_matches('"');
            Some(name.rsplit('\\').next()?.to_owned())
        };
        let mut installed: Vec<String> = nsi
            .lines()
            .filter_map(|l| quoted(l, "File \"${BINDIR}\\"))
            .chain(nsi.lines().filter_map(|l| {
                let rest = l.trim().strip_prefix("File \"/oname=")?;
                Some(rest.split('"').next()?.to_owned())
            }))
            .collect();
        installed.push("uninstall.exe".into());
        let deleted: Vec<String> = nsi
            .lines()
            .filter_map(|l| quoted(l, "Delete \"$INSTDIR\\"))
            .collect();
        assert!(installed.len() >= 7, "{installed:?}");
        for f in &installed {
            assert!(deleted.contains(f), "{f} is installed but never deleted");
        }
        for f in EXPECTED_FILES.iter().chain(APP_FILES) {
            assert!(installed.iter().any(|i| i == f), "{f} is not installed");
        }
    }

    /// The app's installer parts: a Start-menu entry, the .ovpn association opening the
    /// app, the uninstaller registered, and a clear word when WebView2 is missing.
    #[test]
    fn installer_gives_the_app_a_shortcut_an_association_and_an_uninstaller() {
        let nsi =
            std::fs::read_to_string(payload::packaging_dir().join("windows/oxivpn.nsi")).unwrap();
        for needle in [
            r#"CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\oxivpn.exe""#,
            r#"WriteRegStr HKLM "Software\Classes\.ovpn" "" "${PROGID}""#,
            r#"shell\open\command" "" '"$INSTDIR\oxivpn.exe" "%1"'"#,
            r#"WriteUninstaller "$INSTDIR\uninstall.exe""#,
            r#""UninstallString" '"$INSTDIR\uninstall.exe"'"#,
            r#"Delete "$SMPROGRAMS\${PRODUCT}.lnk""#,
            "WebView2 Runtime",
        ] {
            assert!(nsi.contains(needle), "oxivpn.nsi lacks {needle}");
        }
    }

    /// The committed app icon is an .ico tauri-build can embed: PNG entries at the sizes
    /// Windows asks for.
    #[test]
    fn app_icon_is_an_ico_with_the_windows_sizes() {
        let ico = std::fs::read(sys::root().join("src-tauri/icons/icon.ico")).unwrap();
        assert_eq!(&ico[..4], &[0, 0, 1, 0]);
        let n = usize::from(u16::from_le_bytes([ico[4], ico[5]]));
        let mut sizes = Vec::new();
        for i in 0..n {
            let e = &ico[6 + 16 * i..6 + 16 * (i + 1)];
            let off = u32::from_le_bytes(e[12..16].try_into().unwrap()) as usize;
            let len = u32::from_le_bytes(e[8..12].try_into().unwrap()) as usize;
            let (w, _) = png_size(&ico[off..off + len]).unwrap();
            sizes.push(w);
        }
        assert_eq!(sizes, ICO_SIZES);
    }

    #[test]
    fn non_png_input_is_refused() {
        assert!(ico_bytes(&[b"GIF89a".to_vec()]).is_err());
        assert_eq!(png_size(&fake_png(48, 32)), Some((48, 32)));
    }
}
