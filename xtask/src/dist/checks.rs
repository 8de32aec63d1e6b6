//! Checks of the built packages: file lists, owners, modes, control fields, scripts,
//! and the systemd unit (verify + offline security score).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context};

use super::payload::{self, HELPER, HELPER_LINK, HELPER_LINK_TARGET, UNIT_NAME};
use super::{deb, output, rpm, Build};

/// One entry of a package's file list.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub perms: String,
    pub owner: String,
    pub link: Option<String>,
}

pub fn deb(path: &Path, build: &Build) -> anyhow::Result<()> {
    let fields = output(Command::new("dpkg-deb").arg("-f").arg(path).args([
        "Package",
        "Version",
        "Architecture",
        "Depends",
        "Installed-Size",
    ]))?;
    let fields = parse_fields(&fields);
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    ensure!(
        field("Package") == "oxivpn",
        "deb Package is {:?}",
        field("Package")
    );
    ensure!(
        field("Version") == build.version,
        "deb Version {:?} != {}",
        field("Version"),
        build.version
    );
    ensure!(
        field("Depends").contains("adduser"),
        "deb Depends lacks adduser: {:?}",
        field("Depends")
    );
    ensure!(
        field("Depends").contains("libc6"),
        "deb Depends lacks libc6: {:?}",
        field("Depends")
    );
    ensure!(
        !field("Installed-Size").is_empty(),
        "deb has no Installed-Size"
    );

    let info = output(Command::new("dpkg-deb").arg("-I").arg(path))?;
    for script in ["postinst", "prerm", "postrm", "md5sums"] {
        ensure!(
            info.lines()
                .any(|l| l.split_whitespace().any(|w| w == script)),
            "deb control area lacks {script}:\n{info}"
        );
    }
    let listing = output(Command::new("dpkg-deb").arg("-c").arg(path))?;
    let entries = parse_dpkg_listing(&listing)?;
    files_as_expected(
        &entries,
        &payload::expected_files(deb::UNIT_DIR, build.bins()?.app.is_some()),
        deb::UNIT_DIR,
    )
    .with_context(|| format!("contents of {}", path.display()))?;
    eprintln!(
        "xtask dist: {} checked ({} files)",
        path.display(),
        entries.len()
    );
    Ok(())
}

pub fn rpm(path: &Path, build: &Build) -> anyhow::Result<()> {
    let head = output(
        Command::new("rpm")
            .args(["-qp", "--qf", "%{NAME}|%{VERSION}|%{ARCH}\n"])
            .arg(path),
    )?;
    let head = head.trim();
    ensure!(
        head.starts_with(&format!("oxivpn|{}|", build.version)),
        "rpm header is {head:?}"
    );
    let listing = output(
        Command::new("rpm")
            .args(["-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} /%{FILENAMES} %{FILELINKTOS}\n]"])
            .arg(path),
    )?;
    let entries = parse_rpm_listing(&listing)?;
    files_as_expected(
        &entries,
        &payload::expected_files(rpm::UNIT_DIR, build.bins()?.app.is_some()),
        rpm::UNIT_DIR,
    )
    .with_context(|| format!("contents of {}", path.display()))?;
    let scripts = output(Command::new("rpm").args(["-qp", "--scripts"]).arg(path))?;
    for needle in [
        "groupadd --system oxivpn",
        "systemctl enable oxivpn-helper.service",
        "rm -rf /var/lib/oxivpn",
    ] {
        ensure!(scripts.contains(needle), "rpm scriptlets lack {needle:?}");
    }
    eprintln!(
        "xtask dist: {} checked ({} files)",
        path.display(),
        entries.len()
    );
    Ok(())
}

/// `systemd-analyze verify` on the staged unit, then the offline `security` exposure
/// score, which is only reported. verify looks for ExecStart's binary on this machine,
/// where the package is not installed: that one complaint is accepted when the staged
/// tree has the binary, executable, at that path.
pub fn unit(root: &Path) -> anyhow::Result<()> {
    let unit = root.join(deb::UNIT_DIR).join(UNIT_NAME);
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("xtask dist: NOTICE: systemd-analyze missing (Debian package systemd); unit not verified");
        return Ok(());
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .context("running systemd-analyze verify")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let staged_helper_ok = root
        .join(HELPER)
        .metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 == 0o111)
        .unwrap_or(false);
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !(staged_helper_ok && is_missing_helper_complaint(l)))
        .collect();
    if !complaints.is_empty() || (!out.status.success() && !staged_helper_ok) {
        bail!(
            "systemd-analyze verify {}:\n{}",
            unit.display(),
            text.trim()
        );
    }
    eprintln!("xtask dist: systemd-analyze verify {UNIT_NAME}: ok");

    let sec = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg(&unit)
        .output()
        .context("running systemd-analyze security")?;
    let text = String::from_utf8_lossy(&sec.stdout);
    match text.lines().find(|l| l.contains("Overall exposure level")) {
        Some(line) => eprintln!(
            "xtask dist: systemd-analyze security (offline): {}",
            line.trim()
        ),
        None => eprintln!(
            "xtask dist: NOTICE: no security score: {}",
            String::from_utf8_lossy(&sec.stderr).trim()
        ),
    }
    Ok(())
}

fn is_missing_helper_complaint(line: &str) -> bool {
    line.contains(&format!("Command /{HELPER} is not executable"))
}

fn files_as_expected(
    entries: &BTreeMap<String, Entry>,
    expected: &[String],
    unit_dir: &str,
) -> anyhow::Result<()> {
    let non_dirs: Vec<&String> = entries
        .iter()
        .filter(|(_, e)| !e.perms.starts_with('d'))
        .map(|(p, _)| p)
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|p| !entries.contains_key(p.as_str()))
        .collect();
    let extra: Vec<&&String> = non_dirs.iter().filter(|p| !expected.contains(p)).collect();
    ensure!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    for (path, e) in entries {
        ensure!(e.owner == "root/root", "{path} is owned by {}", e.owner);
    }
    let mode = |p: &str| entries.get(p).map(|e| e.perms.as_str()).unwrap_or("");
    for bin in expected
        .iter()
        .filter(|p| p.contains("bin/") || p.as_str() == HELPER)
    {
        if bin != HELPER_LINK {
            ensure!(mode(bin) == "-rwxr-xr-x", "{bin} has mode {}", mode(bin));
        }
    }
    let unit = format!("{unit_dir}/{UNIT_NAME}");
    ensure!(
        mode(&unit) == "-rw-r--r--",
        "{unit} has mode {}",
        mode(&unit)
    );
    let link = entries.get(HELPER_LINK).and_then(|e| e.link.as_deref());
    ensure!(
        link == Some(HELPER_LINK_TARGET),
        "{HELPER_LINK} points to {link:?}"
    );
    Ok(())
}

fn parse_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// `dpkg-deb -c`: `-rwxr-xr-x root/root 123 2026-01-01 00:00 ./usr/bin/x [-> target]`.
fn parse_dpkg_listing(text: &str) -> anyhow::Result<BTreeMap<String, Entry>> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(perms), Some(owner), Some(path)) = (f.first(), f.get(1), f.get(5)) else {
            bail!("unexpected dpkg-deb -c line {line:?}");
        };
        let path = path.trim_start_matches("./").trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        let link = (f.get(6) == Some(&"->"))
            .then(|| f.get(7).map(|s| s.to_string()))
            .flatten();
        map.insert(
            path.to_owned(),
            Entry {
                perms: perms.to_string(),
                owner: owner.to_string(),
                link,
            },
        );
    }
    Ok(map)
}

/// Our `rpm --qf` format: `-rwxr-xr-x root/root /usr/bin/x [target]`.
fn parse_rpm_listing(text: &str) -> anyhow::Result<BTreeMap<String, Entry>> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(perms), Some(owner), Some(path)) = (f.first(), f.get(1), f.get(2)) else {
            bail!("unexpected rpm listing line {line:?}");
        };
        let link = f.get(3).map(|s| s.to_string());
        map.insert(
            path.trim_start_matches('/').to_owned(),
            Entry {
                perms: perms.to_string(),
                owner: owner.to_string(),
                link,
            },
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB: &str = "\
drwxr-xr-x root/root         0 2026-11-25 07:50 ./
drwxr-xr-x root/root         0 2026-11-25 07:50 ./usr/
-rwxr-xr-x root/root   1234567 2026-11-25 07:50 ./usr/libexec/oxivpn/oxivpn-helper
lrwxrwxrwx root/root         0 2026-11-25 07:50 ./usr/sbin/oxivpn-helper -> ../libexec/oxivpn/oxivpn-helper
-rw-r--r-- root/root      2048 2026-11-25 07:50 ./lib/systemd/system/oxivpn-helper.service
";

    #[test]
    fn dpkg_listing_is_parsed_with_modes_owners_and_links() {
        let m = parse_dpkg_listing(DEB).unwrap();
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(
            m["usr/sbin/oxivpn-helper"].link.as_deref(),
            Some(HELPER_LINK_TARGET)
        );
        assert_eq!(m[HELPER].perms, "-rwxr-xr-x");
        assert!(m["usr"].perms.starts_with('d'));
        assert!(parse_dpkg_listing("garbage\n").is_err());
    }

    #[test]
    fn file_list_check_names_missing_and_unexpected_files() {
        let mut m = parse_dpkg_listing(DEB).unwrap();
        let expected: Vec<String> = [
            HELPER,
            HELPER_LINK,
            "lib/systemd/system/oxivpn-helper.service",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        files_as_expected(&m, &expected, "lib/systemd/system").unwrap();

        m.insert(
            "etc/stray".into(),
            Entry {
                perms: "-rw-r--r--".into(),
                owner: "root/root".into(),
                link: None,
            },
        );
        let err = format!(
            "{:#}",
            files_as_expected(&m, &expected, "lib/systemd/system").unwrap_err()
        );
        assert!(err.contains("etc/stray"), "{err}");
        m.remove("etc/stray");

        m.get_mut(HELPER).unwrap().owner = "builder/builder".into();
        let err = format!(
            "{:#}",
            files_as_expected(&m, &expected, "lib/systemd/system").unwrap_err()
        );
        assert!(err.contains("owned by builder/builder"), "{err}");
        m.get_mut(HELPER).unwrap().owner = "root/root".into();

        m.get_mut(HELPER).unwrap().perms = "-rw-r--r--".into();
        assert!(files_as_expected(&m, &expected, "lib/systemd/system").is_err());
    }

    #[test]
    fn rpm_listing_keeps_link_targets() {
        let m = parse_rpm_listing(
            "-rwxr-xr-x root/root /usr/bin/oxivpnctl \nlrwxrwxrwx root/root /usr/sbin/oxivpn-helper ../libexec/oxivpn/oxivpn-helper\n",
        )
        .unwrap();
        assert_eq!(m["usr/bin/oxivpnctl"].link, None);
        assert_eq!(m[HELPER_LINK].link.as_deref(), Some(HELPER_LINK_TARGET));
    }

    #[test]
    fn only_the_missing_helper_complaint_is_excused() {
        assert!(is_missing_helper_complaint(
            "oxivpn-helper.service: Command /usr/libexec/oxivpn/oxivpn-helper is not executable: No such file or directory"
        ));
        assert!(!is_missing_helper_complaint(
            "oxivpn-helper.service:12: Unknown key name 'ProtectSytem' in section 'Service', ignoring."
        ));
    }

    #[test]
    fn control_fields_are_split_at_the_first_colon() {
        let f = parse_fields("Package: oxivpn\nDepends: adduser, libc6 (>= 2.34)\n");
        assert_eq!(f["Depends"], "adduser, libc6 (>= 2.34)");
    }
}
