//! `cargo xtask dist`: installers built from the workspace's binaries.
//!
//! Linux: a .deb (file tree staged here, `dpkg-deb --build --root-owner-group`) and an
//! .rpm with the same content (`rpmbuild` from Debian's `rpm`), both checked after the
//! build. Windows: x86_64-pc-windows-gnu binaries, the app included, and an NSIS
//! installer (`makensis`). macOS: universal helper and oxivpnctl linked with zig; the app
//! and the .pkg need Apple's SDK (`--macos-app`, on a Mac: `packaging/macos/build-pkg.sh`).
//!
//! `--smoke` (run by `cargo xtask test`) does the same from debug binaries without
//! compression, the Windows installer included (cross-built debug binaries, file list
//! checked with 7z). `--install-test` installs the .deb into a fresh Debian 12 root.

mod boot_test;
mod checks;
mod deb;
mod install_test;
mod macos;
mod payload;
mod rpm;
mod windows;

pub use macos::check as macos_check;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::{deps, sys};

#[derive(clap::Args, Debug)]
pub struct DistArgs {
    /// Fast check: debug binaries, uncompressed .deb, .rpm and Windows installer, inspected.
    #[arg(long)]
    pub smoke: bool,
    /// Also install the .deb into a fresh Debian 12 root (debootstrap + chroot; root and
    /// the Debian mirror needed), check it, purge it and check that nothing is left.
    #[arg(long)]
    pub install_test: bool,
    /// Skip the Windows cross build and installer.
    #[arg(long)]
    pub no_windows: bool,
    /// Leave the desktop app out even if it builds.
    #[arg(long)]
    pub no_app: bool,
    /// Skip the macOS universal binaries (zig).
    #[arg(long)]
    pub no_macos: bool,
    /// Skip the Linux packages (.deb, .rpm, their tests): only the Windows installer
    /// and the macOS binaries, e.g. `cargo xtask dist --no-linux --no-macos`.
    #[arg(long)]
    pub no_linux: bool,
    /// Also build OxiVPN.app and the .pkg: on a Mac only (Apple's SDK).
    #[arg(long)]
    pub macos_app: bool,
    /// Where the packages go (default: <target dir>/dist, or dist-smoke with --smoke).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl DistArgs {
    /// What `cargo xtask test` runs (~30 s once the debug binaries exist).
    pub fn smoke() -> Self {
        DistArgs {
            smoke: true,
            install_test: false,
            no_windows: false,
            no_app: false,
            // Linking both macOS targets costs two more full builds of the helper and
            // oxivpnctl: `cargo xtask test` checks them with zig instead (cross_check),
            // `cargo xtask dist` links and inspects the universal binaries.
            no_macos: true,
            no_linux: false,
            macos_app: false,
            out: None,
        }
    }
}

/// What every Linux package carries; `app` is the Tauri binary when it could be built.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub helper: PathBuf,
    pub ctl: PathBuf,
    pub app: Option<PathBuf>,
}

/// Facts shared by every package format.
#[derive(Debug, Clone)]
pub struct Build {
    pub version: String,
    /// The Linux binaries (none with `--no-linux`; Windows and macOS build their own).
    pub linux: Option<Binaries>,
    /// Release packages are compressed; smoke packages are not (speed).
    pub release: bool,
    pub out: PathBuf,
    /// Scratch space, emptied at the start of every run.
    pub work: PathBuf,
    /// Whether the desktop app goes in (no `--no-app`); each OS builds its own.
    pub want_app: bool,
}

impl Build {
    /// The Linux binaries, for the Linux packages.
    pub fn bins(&self) -> anyhow::Result<&Binaries> {
        self.linux
            .as_ref()
            .context("the Linux binaries were not built (--no-linux)")
    }
}

/// Debian packages the packaging needs (kept here, not in deps::ALL, because only
/// `dist` uses them; `--smoke` needs all but the i686 half of mingw-w64 and debootstrap).
const TOOLS: &[&str] = &[
    "dpkg-dev",
    "fakeroot",
    "gcc-mingw-w64-x86-64", // Windows cross build (linker, strip; ring's C code)
    "file",                 // names what the macOS binaries are
    "librsvg2-bin",
    "nsis",
    "p7zip-full",   // lists the Windows installer's files
    "python3-venv", // zig and cargo-zigbuild from PyPI, for the macOS binaries
    "rpm",
    "systemd",
];
const FULL_TOOLS: &[&str] = &["debootstrap", "mingw-w64"];

pub fn run(args: &DistArgs) -> anyhow::Result<()> {
    if args.macos_app {
        // On a Mac, nothing of the Linux or Windows packaging applies.
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| target_dir().join("dist"));
        let pkg = macos::app_and_pkg(&workspace_version()?, &out)?;
        eprintln!("xtask dist: {}", pkg.display());
        return Ok(());
    }
    deps::ensure(TOOLS)?;
    if !args.smoke {
        deps::ensure(FULL_TOOLS)?;
    }
    let target = target_dir();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target.join(if args.smoke { "dist-smoke" } else { "dist" }));
    let work = target.join(if args.smoke {
        "dist-smoke-work"
    } else {
        "dist-work"
    });
    fresh_dir(&work)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let build = Build {
        version: workspace_version()?,
        linux: if args.no_linux {
            None
        } else {
            Some(build_linux_binaries(&target, args)?)
        },
        release: !args.smoke,
        out,
        work,
        want_app: !args.no_app,
    };
    eprintln!(
        "xtask dist: version {}, Linux app {}",
        build.version,
        match &build.linux {
            None => "not built (--no-linux)",
            Some(b) if b.app.is_some() => "included",
            Some(_) => "not included",
        }
    );

    let icons = payload::render_icons(&build.work.join("icons"))?;
    let mut artifacts = Vec::new();
    let mut deb = None;
    if args.no_linux {
        eprintln!("xtask dist: Linux packages skipped (--no-linux)");
    } else {
        let d = deb::build(&build, &icons)?;
        checks::deb(&d, &build)?;
        checks::unit(&build.work.join("deb/root"))?;
        let rpm = rpm::build(&build, &icons)?;
        checks::rpm(&rpm, &build)?;
        artifacts.extend([d.clone(), rpm]);
        deb = Some(d);
    }
    if args.no_windows {
        eprintln!("xtask dist: Windows installer skipped (--no-windows)");
    } else if args.smoke {
        windows::smoke(&build)?;
    } else {
        artifacts.push(windows::build(&build, &icons)?);
    }
    if args.no_macos {
        eprintln!("xtask dist: macOS binaries skipped (--no-macos)");
    } else if let Some(tarball) = macos::build(&build)? {
        artifacts.push(tarball);
    }
    if let (true, Some(deb)) = (args.install_test, &deb) {
        install_test::run(deb, &build, &target)?;
    }
    // The .deb installed and booted under systemd, its service used by a non-root member
    // of oxivpn against the e2e lab's server (~1 min once the Debian root is cached).
    if let (true, Some(deb)) = (sys::is_root(), &deb) {
        boot_test::run(deb, &build)?;
    } else if deb.is_some() {
        eprintln!(
            "xtask dist: NOTICE: not root; skipping the installed-package test under systemd"
        );
    }

    for a in &artifacts {
        let size = std::fs::metadata(a).map(|m| m.len()).unwrap_or(0);
        eprintln!("xtask dist: {} ({})", a.display(), human_size(size));
    }
    Ok(())
}

fn build_linux_binaries(target: &Path, args: &DistArgs) -> anyhow::Result<Binaries> {
    let profile = if args.smoke { "debug" } else { "release" };
    let mut cargo = sys::cargo();
    cargo.args(["build", "-p", "oxivpn-helper", "-p", "oxivpnctl"]);
    if !args.smoke {
        cargo.args(["--release", "--locked"]);
    }
    sys::run(&mut cargo)?;
    let dir = target.join(profile);
    let app_bin = dir.join("oxivpn");
    let app = if args.no_app {
        None
    } else if args.smoke {
        // Building the app only for a smoke would cost minutes; ship it when the test
        // run already built it.
        app_bin.is_file().then_some(app_bin)
    } else {
        let mut c = sys::cargo();
        c.args([
            "build",
            "--release",
            "--locked",
            "-p",
            "oxivpn-app",
            "--bin",
            "oxivpn",
        ]);
        match sys::run(&mut c) {
            Ok(()) => Some(app_bin),
            Err(e) => {
                eprintln!(
                    "xtask dist: WARNING: the app does not build ({e:#}); packaging without it"
                );
                None
            }
        }
    };
    let bins = Binaries {
        helper: dir.join("oxivpn-helper"),
        ctl: dir.join("oxivpnctl"),
        app,
    };
    for b in [&bins.helper, &bins.ctl] {
        if !b.is_file() {
            bail!("{} missing after cargo build", b.display());
        }
    }
    Ok(bins)
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sys::root().join("target"))
}

/// `[workspace.package] version` of the root Cargo.toml.
fn workspace_version() -> anyhow::Result<String> {
    let path = sys::root().join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_workspace_version(&text)
        .with_context(|| format!("{}: no [workspace.package] version", path.display()))
}

fn parse_workspace_version(toml: &str) -> Option<String> {
    let mut in_section = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section {
            if let Some(rest) = line.strip_prefix("version") {
                let v = rest
                    .trim_start()
                    .strip_prefix('=')?
                    .trim()
                    .trim_matches('"');
                return (!v.is_empty()).then(|| v.to_owned());
            }
        }
    }
    None
}

fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        install_test::ensure_unmounted(dir)?;
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Runs a command and returns its stdout; fails with its stderr when it exits non-zero.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{shown} printed non-UTF-8"))
}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{}.{} MiB", bytes / MIB, (bytes % MIB) * 10 / MIB)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_workspace_package_section() {
        let toml = "[package]\nversion = \"9.9.9\"\n[workspace.package]\nedition = \"2021\"\nversion = \"0.3.1\"\n";
        assert_eq!(parse_workspace_version(toml).as_deref(), Some("0.3.1"));
        assert_eq!(
            parse_workspace_version("[package]\nversion = \"1.0.0\"\n"),
            None
        );
        assert_eq!(
            parse_workspace_version("[workspace.package]\nversion = \"\"\n"),
            None
        );
    }

    #[test]
    fn sizes_read_as_kib_or_mib() {
        assert_eq!(human_size(1), "1 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }
}
