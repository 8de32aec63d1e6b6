//! macOS: oxivpn-helper and oxivpnctl as universal binaries (arm64 + x86_64), linked on
//! Linux with zig through cargo-zigbuild (both from PyPI, in a venv under the target dir)
//! and checked by reading their Mach-O headers: both architectures, executables, and the
//! minimum macOS version we promise.
//!
//! The app and the .pkg need Apple's SDK (Cocoa, WebKit, pkgbuild): `--macos-app` builds
//! them on a Mac (`packaging/macos/build-pkg.sh`), and refuses elsewhere with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};

use super::{output, payload, Build};
use crate::sys;

pub const TARGETS: [&str; 2] = ["aarch64-apple-darwin", "x86_64-apple-darwin"];
/// cargo-zigbuild's name for "both, merged with lipo".
const UNIVERSAL: &str = "universal2-apple-darwin";
/// macOS 11 (Big Sur): the first with Apple silicon, so the oldest a universal binary needs.
pub const DEPLOYMENT_TARGET: &str = "11.0";
const DEPLOYMENT: (u32, u32) = (11, 0);
/// Known-good versions (measured here); a venv keeps them away from the system Python.
const PIP_PACKAGES: &[&str] = &["ziglang==0.17.1", "cargo-zigbuild==0.24.1"];
const BINARIES: &[&str] = &["oxivpn-helper", "oxivpnctl"];

/// Builds the universal binaries, checks them, and (release) packs them into `out`.
pub fn build(build: &Build) -> anyhow::Result<Option<PathBuf>> {
    let started = std::time::Instant::now();
    let venv = zig_venv()?;
    sys::run(Command::new("rustup").args(["target", "add", TARGETS[0], TARGETS[1]]))?;
    let mut cargo = Command::new(venv.join("bin/cargo-zigbuild"));
    cargo
        .args(["zigbuild", "--locked", "--target", UNIVERSAL])
        .args(BINARIES.iter().flat_map(|b| ["-p", b]))
        // cargo-zigbuild finds zig as `python3 -m ziglang`: the venv's python3 first.
        .env("PATH", path_with(&venv.join("bin")))
        .env("MACOSX_DEPLOYMENT_TARGET", DEPLOYMENT_TARGET);
    if build.release {
        cargo.arg("--release");
    } else {
        // The smoke's binaries are inspected, never run or debugged: no debug info
        // (less to write and link for two architectures).
        cargo.env("CARGO_PROFILE_DEV_DEBUG", "0");
    }
    sys::run(&mut cargo).context("cargo zigbuild for macOS (zig from PyPI)")?;
    let dir =
        super::target_dir()
            .join(UNIVERSAL)
            .join(if build.release { "release" } else { "debug" });
    let stage = build.work.join("macos");
    std::fs::create_dir_all(&stage).with_context(|| format!("creating {}", stage.display()))?;
    for bin in BINARIES {
        let path = dir.join(bin);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let slices = check_universal(&bytes).with_context(|| format!("{}", path.display()))?;
        let file = output(Command::new("file").arg("-b").arg(&path))?;
        eprintln!("xtask dist: macOS {bin}: {}", file.trim());
        for s in &slices {
            eprintln!(
                "xtask dist:   {}: minimum macOS {}.{}",
                s.arch, s.minos.0, s.minos.1
            );
        }
        payload::install(&path, &stage.join(bin), 0o755)?;
    }
    eprintln!(
        "xtask dist: macOS universal binaries in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !build.release {
        return Ok(None);
    }
    // The pieces build-pkg.sh puts into the .pkg on a Mac, for testers without one.
    let name = format!("oxivpn-{}-macos-universal", build.version);
    let tarball = build.out.join(format!("{name}.tar.gz"));
    let packaging = payload::packaging_dir().join("macos");
    for f in ["com.oxivpn.helper.plist", "acceptance.sh", "uninstall.sh"] {
        payload::install(&packaging.join(f), &stage.join(f), 0o644)?;
    }
    output(
        Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("--owner=0")
            .arg("--group=0")
            .arg(format!("--transform=s,^macos,{name},"))
            .arg("-C")
            .arg(&build.work)
            .arg("macos"),
    )?;
    Ok(Some(tarball))
}

/// What `cargo xtask test` runs for macOS (cheap): `cargo check` of the helper,
/// oxivpnctl and the crates under them for aarch64-apple-darwin, with zig as the C
/// compiler of ring's build script. Nothing is linked; `cargo xtask dist` links both
/// architectures and checks the universal binaries.
pub fn check() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let venv = zig_venv()?;
    sys::run(Command::new("rustup").args(["target", "add", TARGETS[0]]))?;
    sys::run(
        Command::new(venv.join("bin/cargo-zigbuild"))
            .args(["check", "--locked", "--target", TARGETS[0]])
            .args(
                BINARIES
                    .iter()
                    .chain(&["netcfg", "ipc", "ovpn-profile", "profile-store"])
                    .flat_map(|b| ["-p", b]),
            )
            .env("PATH", path_with(&venv.join("bin")))
            .env("MACOSX_DEPLOYMENT_TARGET", DEPLOYMENT_TARGET),
    )
    .context("cargo check for macOS (zig from PyPI)")?;
    eprintln!(
        "xtask: cross-check {} with zig (helper, oxivpnctl and their crates): {:.0} s",
        TARGETS[0],
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--macos-app`: the app bundle and the .pkg, on a Mac only.
pub fn app_and_pkg(version: &str, out: &Path) -> anyhow::Result<PathBuf> {
    if !cfg!(target_os = "macos") {
        bail!(
            "--macos-app needs macOS with the Xcode command line tools: the app links \
             Apple's Cocoa and WebKit frameworks and the .pkg needs pkgbuild/productbuild, \
             none of which exist on Linux. The helper and oxivpnctl are built here \
             (universal binaries with zig); run `cargo xtask dist --macos-app` on a Mac \
             for OxiVPN.app and the .pkg."
        );
    }
    // On a Mac: the Tauri CLI bundles the universal app, build-pkg.sh wraps it all.
    let tools = super::target_dir().join("tools");
    let tauri = tools.join("bin/cargo-tauri");
    if !tauri.is_file() {
        sys::run(
            sys::cargo()
                .args([
                    "install",
                    "--locked",
                    "tauri-cli",
                    "--version",
                    "^2",
                    "--root",
                ])
                .arg(&tools),
        )?;
    }
    for t in TARGETS {
        sys::run(Command::new("rustup").args(["target", "add", t]))?;
    }
    sys::run(
        Command::new(&tauri)
            .current_dir(sys::root().join("src-tauri"))
            .args([
                "build",
                "--bundles",
                "app",
                "--target",
                "universal-apple-darwin",
            ])
            .args(["--config", r#"{"bundle":{"active":true}}"#])
            .env("MACOSX_DEPLOYMENT_TARGET", DEPLOYMENT_TARGET),
    )?;
    let app = super::target_dir().join("universal-apple-darwin/release/bundle/macos/OxiVPN.app");
    ensure!(
        app.is_dir(),
        "{} missing after the Tauri build",
        app.display()
    );
    sys::run(
        Command::new(payload::packaging_dir().join("macos/build-pkg.sh"))
            .arg(out)
            .env("OXIVPN_APP", &app),
    )?;
    Ok(out.join(format!("OxiVPN-{version}.pkg")))
}

/// A venv under `<target>/tools/zig-venv` holding ziglang and cargo-zigbuild (once).
fn zig_venv() -> anyhow::Result<PathBuf> {
    let venv = super::target_dir().join("tools/zig-venv");
    let zigbuild = venv.join("bin/cargo-zigbuild");
    let stamp = venv.join("oxivpn-packages");
    let wanted = PIP_PACKAGES.join(" ");
    if zigbuild.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(venv);
    }
    sys::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("creating a Python venv (Debian package python3-venv)")?;
    sys::run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PIP_PACKAGES),
    )
    .context("installing zig and cargo-zigbuild from PyPI")?;
    std::fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(venv)
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// One architecture inside a universal binary.
#[derive(Debug, PartialEq, Eq)]
struct Slice {
    arch: &'static str,
    minos: (u32, u32),
}

const FAT_MAGIC: u32 = 0xcafe_babe;
const MH_MAGIC_64: u32 = 0xfeed_facf;
const MH_EXECUTE: u32 = 2;
const CPU_X86_64: u32 = 0x0100_0007;
const CPU_ARM64: u32 = 0x0100_000c;
const LC_VERSION_MIN_MACOSX: u32 = 0x24;
const LC_BUILD_VERSION: u32 = 0x32;
const PLATFORM_MACOS: u32 = 1;

/// A fat Mach-O with exactly an arm64 and an x86_64 executable, each for macOS with the
/// deployment target we promise.
fn check_universal(bytes: &[u8]) -> anyhow::Result<Vec<Slice>> {
    ensure!(
        be32(bytes, 0) == Some(FAT_MAGIC),
        "not a universal (fat) Mach-O binary"
    );
    let n = be32(bytes, 4).context("truncated fat header")?;
    ensure!(n <= 8, "{n} architectures in a fat header: corrupt");
    let mut slices = Vec::new();
    for i in 0..n as usize {
        let at = 8 + i * 20;
        let off = be32(bytes, at + 8).context("truncated fat_arch")? as usize;
        let size = be32(bytes, at + 12).context("truncated fat_arch")? as usize;
        let end = off.checked_add(size).context("fat_arch out of range")?;
        let thin = bytes.get(off..end).context("fat_arch beyond the file")?;
        slices.push(thin_slice(thin)?);
    }
    let mut archs: Vec<&str> = slices.iter().map(|s| s.arch).collect();
    archs.sort_unstable();
    ensure!(
        archs == ["arm64", "x86_64"],
        "architectures {archs:?}, want arm64 and x86_64"
    );
    for s in &slices {
        ensure!(
            s.minos == DEPLOYMENT,
            "{} slice targets macOS {}.{}, want {DEPLOYMENT_TARGET}",
            s.arch,
            s.minos.0,
            s.minos.1
        );
    }
    Ok(slices)
}

fn thin_slice(b: &[u8]) -> anyhow::Result<Slice> {
    ensure!(
        le32(b, 0) == Some(MH_MAGIC_64),
        "slice is not a 64-bit Mach-O"
    );
    let arch = match le32(b, 4) {
        Some(CPU_ARM64) => "arm64",
        Some(CPU_X86_64) => "x86_64",
        other => bail!("unexpected CPU type {other:x?}"),
    };
    ensure!(
        le32(b, 12) == Some(MH_EXECUTE),
        "{arch} slice is not an executable"
    );
    let ncmds = le32(b, 16).context("truncated Mach-O header")?;
    let mut at = 32usize;
    let mut minos = None;
    for _ in 0..ncmds {
        let cmd = le32(b, at).context("truncated load command")?;
        let size = le32(b, at + 4).context("truncated load command")? as usize;
        ensure!(size >= 8, "load command of size {size}");
        match cmd {
            LC_BUILD_VERSION => {
                ensure!(
                    le32(b, at + 8) == Some(PLATFORM_MACOS),
                    "{arch} slice is not built for macOS"
                );
                minos = le32(b, at + 12);
            }
            LC_VERSION_MIN_MACOSX => minos = le32(b, at + 8),
            _ => {}
        }
        at = at.checked_add(size).context("load commands overflow")?;
    }
    // xxxx.yy.zz in nibbles: major in the high 16 bits, minor in the next 8.
    let v = minos.with_context(|| format!("{arch} slice names no minimum macOS version"))?;
    Ok(Slice {
        arch,
        minos: (v >> 16, (v >> 8) & 0xff),
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit Mach-O executable with one LC_BUILD_VERSION.
    fn thin(cpu: u32, platform: u32, minos: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [MH_MAGIC_64, cpu, 0, MH_EXECUTE, 1, 24, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [LC_BUILD_VERSION, 24, platform, minos, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn fat(slices: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&FAT_MAGIC.to_be_bytes());
        b.extend_from_slice(&(slices.len() as u32).to_be_bytes());
        let mut off = 8 + 20 * slices.len();
        for s in slices {
            for v in [0, 0, off as u32, s.len() as u32, 0] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            off += s.len();
        }
        for s in slices {
            b.extend_from_slice(s);
        }
        b
    }

    const V11: u32 = 11 << 16;

    #[test]
    fn both_architectures_at_macos_11_pass() {
        let b = fat(&[
            thin(CPU_X86_64, PLATFORM_MACOS, V11),
            thin(CPU_ARM64, PLATFORM_MACOS, V11),
        ]);
        let s = check_universal(&b).unwrap();
        assert_eq!(
            s[1],
            Slice {
                arch: "arm64",
                minos: (11, 0)
            }
        );
    }

    #[test]
    fn a_missing_architecture_a_newer_minimum_or_ios_fail() {
        let one = fat(&[thin(CPU_ARM64, PLATFORM_MACOS, V11)]);
        assert!(format!("{:#}", check_universal(&one).unwrap_err()).contains("x86_64"));
        let newer = fat(&[
            thin(CPU_X86_64, PLATFORM_MACOS, V11),
            thin(CPU_ARM64, PLATFORM_MACOS, 14 << 16),
        ]);
        assert!(format!("{:#}", check_universal(&newer).unwrap_err()).contains("14.0"));
        let ios = fat(&[
            thin(CPU_X86_64, PLATFORM_MACOS, V11),
            thin(CPU_ARM64, 2, V11),
        ]);
        assert!(check_universal(&ios).is_err());
        assert!(check_universal(&thin(CPU_ARM64, PLATFORM_MACOS, V11)).is_err());
        assert!(check_universal(&fat(&[])[..6]).is_err());
    }
}
