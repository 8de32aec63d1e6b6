//! `cargo xtask openvpn-build`: OpenVPN 2.5.11 and 2.7.6, built from the public
//! OpenVPN repository's release tags, as test servers for the interop table
//! (tests/e2e/tests/interop_servers.rs). Built once per machine into
//! `/var/cache/oxivpn/openvpn-<version>/` (outside the repo; `sbin/openvpn` there),
//! never committed, never shipped.
//!
//! Where the source comes from: no package registry this project can reach carries
//! the 2.5 or 2.7 source (Debian 12 has only 2.6, PyPI/npm/crates.io none), and CI has
//! no other network. So the build reads a source tree from
//! `/var/cache/oxivpn/openvpn-src/v<version>/` (an export of the tag, e.g.
//! `git archive v2.7.6 | tar -x -C /var/cache/oxivpn/openvpn-src/v2.7.6` in a clone of
//! the OpenVPN repository), or from `--source DIR`. Without a source tree and without a
//! cached build, the version is skipped with a notice, and the interop table's cases
//! for it print SKIPPED. `cargo xtask test` calls [`ensure_cached`]: a no-op once built
//! (seconds), about 3 minutes per version on 2 cores otherwise.
//!
//! Build: `autoreconf -fi && ./configure --disable-plugin-auth-pam
//! --disable-plugin-down-root [--disable-dco] && make && make install` (2.5 does not
//! know `--disable-dco`), with the Debian packages in [`BUILD_DEPS`].

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::{deps, sys};

/// The versions the interop table runs against besides Debian's 2.6.
pub const VERSIONS: &[&str] = &["2.5.11", "2.7.6"];

/// Debian packages an OpenVPN build from a git tag needs.
pub const BUILD_DEPS: &[&str] = &[
    "autoconf",
    "automake",
    "gcc",
    "libcap-ng-dev",
    "liblz4-dev",
    "liblzo2-dev",
    "libnl-genl-3-dev",
    "libssl-dev",
    "libtool",
    "make",
    "pkg-config",
    "python3-docutils", // man pages (rst2man), built from a git tree
];

#[derive(clap::Args, Debug)]
pub struct OpenvpnBuildArgs {
    /// Only this version (default: all of 2.5.11 and 2.7.6).
    #[arg(long)]
    pub version: Option<String>,
    /// Source tree of that version (default: /var/cache/oxivpn/openvpn-src/v<version>).
    #[arg(long, requires = "version")]
    pub source: Option<PathBuf>,
    /// Rebuild even when a build is cached.
    #[arg(long)]
    pub force: bool,
}

/// The cache root (`OXIVPN_OPENVPN_CACHE` overrides it; the e2e harness reads the same).
pub fn cache_root() -> PathBuf {
    std::env::var_os("OXIVPN_OPENVPN_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/oxivpn"), PathBuf::from)
}

/// Where the binary of `version` lives once built.
pub fn binary(version: &str) -> PathBuf {
    cache_root()
        .join(format!("openvpn-{version}"))
        .join("sbin")
        .join("openvpn")
}

fn default_source(version: &str) -> PathBuf {
    cache_root().join("openvpn-src").join(format!("v{version}"))
}

pub fn run(args: &OpenvpnBuildArgs) -> anyhow::Result<()> {
    let versions: Vec<String> = match &args.version {
        Some(v) => vec![v.clone()],
        None => VERSIONS.iter().map(|v| (*v).to_owned()).collect(),
    };
    for v in &versions {
        let src = args.source.clone().unwrap_or_else(|| default_source(v));
        if !args.force && binary(v).is_file() {
            eprintln!("xtask: OpenVPN {v} already built: {}", binary(v).display());
            continue;
        }
        if !src.join("configure.ac").is_file() {
            bail!(
                "no OpenVPN {v} source tree at {} (export the v{v} tag there, see xtask/src/openvpn_build.rs)",
                src.display()
            );
        }
        build(v, &src)?;
    }
    Ok(())
}

/// For `cargo xtask test`: builds each version whose source tree is present and
/// that is not built yet; prints a notice for the others (their cases skip).
pub fn ensure_cached() -> anyhow::Result<()> {
    for v in VERSIONS {
        if binary(v).is_file() {
            eprintln!("xtask: OpenVPN {v} test server: {}", binary(v).display());
            continue;
        }
        let src = default_source(v);
        if !src.join("configure.ac").is_file() {
            eprintln!(
                "xtask: NOTICE: no OpenVPN {v} build and no source at {}; its interop cases will be skipped",
                src.display()
            );
            continue;
        }
        if !sys::is_root() {
            eprintln!("xtask: NOTICE: not root; not building OpenVPN {v}");
            continue;
        }
        // A failed build only skips that version's cases (noted), it does not fail the run.
        if let Err(e) = build(v, &src) {
            eprintln!("xtask: NOTICE: building OpenVPN {v} failed, its interop cases will be skipped: {e:#}");
        }
    }
    Ok(())
}

fn build(version: &str, src: &Path) -> anyhow::Result<()> {
    deps::ensure(BUILD_DEPS)?;
    let t = std::time::Instant::now();
    let prefix = cache_root().join(format!("openvpn-{version}"));
    // Build in a scratch copy so the source tree stays pristine.
    let work = cache_root().join(format!("build-{version}"));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    sys::run(Command::new("cp").arg("-a").arg(src).arg(&work))?;
    let in_work = |program: &str| {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("cd '{}' && {program}", work.display()));
        c
    };
    sys::run(&mut in_work("autoreconf -fi"))?;
    let dco = if version.starts_with("2.5") {
        ""
    } else {
        " --disable-dco"
    };
    sys::run(&mut in_work(&format!(
        "./configure --prefix='{}' --disable-plugin-auth-pam --disable-plugin-down-root{dco}",
        prefix.display()
    )))?;
    sys::run(&mut in_work("make -j2"))?;
    sys::run(&mut in_work("make install"))?;
    let out = Command::new(binary(version))
        .arg("--version")
        .output()
        .context("running the built openvpn")?;
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if !first.contains(&format!("OpenVPN {version}")) {
        bail!("the build says {first:?}, expected OpenVPN {version}");
    }
    eprintln!(
        "xtask: built OpenVPN {version} in {:.0} s: {}",
        t.elapsed().as_secs_f64(),
        binary(version).display()
    );
    Ok(())
}
