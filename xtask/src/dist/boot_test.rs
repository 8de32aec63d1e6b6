//! The .deb as a user gets it, under real systemd: installed with dpkg into a Debian 12
//! root (debootstrap, cached outside the repo), booted with `systemd-nspawn -b` inside the
//! e2e lab's client namespace, and checked from inside by a oneshot unit that runs after
//! the helper, as `ann`, a real non-root member of group `oxivpn`:
//!
//! - the packaged `oxivpn-helper.service` is enabled by the postinst and active;
//! - `oxivpnctl import` + `connect` to the lab's OpenVPN server (kill switch on by default
//!   for a full tunnel, so the unit must let the helper run `nft`), a ping through the
//!   tunnel, the pushed DNS in resolv.conf, `disconnect`: routes, rules, resolv.conf, links
//!   and nftables tables equal the start state;
//! - the same after `systemctl restart` and after `kill -9` of the helper with a session up.
//!
//! The unit writes a transcript and its exit status into the root, then powers the
//! container off; the host prints the transcript. Boot to poweroff takes seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use oxivpn_e2e::{ClientVariant, Lab, LabConfig, Proc, Role, ServerVariant};

use super::install_test::ensure_unmounted;
use super::{output, Build};
use crate::deps;

const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// What the root needs besides minbase: systemd as PID 1 and a bus, what the helper and
/// the check script run (`ip`, `nft`, `ping`), and the .deb's own dependency (adduser).
/// The cache is keyed by this list: change it and the root is bootstrapped again.
const ROOT_PACKAGES: &[&str] = &[
    "adduser",
    "dbus",
    "iproute2",
    "iputils-ping",
    "nftables",
    "systemd",
    "systemd-sysv",
];
/// Host tools: debootstrap, systemd-nspawn, a system bus for nspawn, and the lab's.
const HOST_TOOLS: &[&str] = &[
    "dbus-daemon",
    "debootstrap",
    "iproute2",
    "openssl",
    "openvpn",
    "systemd-container",
];
/// Where the bootstrapped root is kept between runs (not in the repo, not in target/:
/// `cargo clean` should not cost a debootstrap).
const DEFAULT_CACHE: &str = "/var/cache/oxivpn";
/// A hang guard for the whole boot (the steps inside take ~15 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// The user inside; a member of `oxivpn`, not root.
const USER: &str = "ann";
const CHECK_DIR: &str = "var/lib/oxivpn-check";

pub fn run(deb_file: &Path, build: &Build) -> anyhow::Result<()> {
    let started = Instant::now();
    deps::ensure(HOST_TOOLS)?;
    let base = cached_root()?;
    let t_root = started.elapsed();
    let root = build.work.join("boot-root");
    if root.exists() {
        ensure_unmounted(&root)?;
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    // A copy per run: every run boots the same pristine root.
    output(Command::new("cp").arg("-a").arg(&base).arg(&root))?;
    let result = boot_and_check(deb_file, &root);
    let t_total = started.elapsed();
    // The root is kept on failure (its journal, the check's files) for a look.
    if result.is_ok() {
        ensure_unmounted(&root)?;
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    } else {
        eprintln!("xtask dist: boot test root kept at {}", root.display());
    }
    result?;
    eprintln!(
        "xtask dist: installed-package test under systemd passed ({:.0} s; root ready after {:.0} s)",
        t_total.as_secs_f64(),
        t_root.as_secs_f64()
    );
    Ok(())
}

fn boot_and_check(deb_file: &Path, root: &Path) -> anyhow::Result<()> {
    std::fs::copy(deb_file, root.join("tmp/oxivpn.deb"))
        .context("copying the .deb into the root")?;
    // With apt, as a user would: it fetches what the package depends on (the app's GTK and
    // WebKit when the app is in it) from the mirror; the archives are kept in the cache so
    // only the first run downloads them. The postinst creates the group, enables the unit.
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"))
        .context("resolv.conf for apt in the root")?;
    {
        let archives = cache_dir().join("apt-archives");
        std::fs::create_dir_all(archives.join("partial"))
            .with_context(|| format!("creating {}", archives.display()))?;
        let _mount = BindMount::new(&archives, &root.join("var/cache/apt/archives"))?;
        chroot(
            root,
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
             --no-install-recommends /tmp/oxivpn.deb && rm /tmp/oxivpn.deb",
        )?;
    }
    ensure!(
        root.join("etc/systemd/system/multi-user.target.wants/oxivpn-helper.service")
            .symlink_metadata()
            .is_ok(),
        "the postinst did not enable oxivpn-helper.service"
    );
    chroot(
        root,
        &format!("useradd --create-home --groups oxivpn {USER}"),
    )?;

    let mut lab = Lab::start(LabConfig::reference()).context("starting the e2e lab")?;
    let server = lab.start_server(&ServerVariant::default())?;
    let profile = lab.write_client_profile(&server, &ClientVariant::default(), "lab")?;
    let home_profile = root.join(format!("home/{USER}/lab.ovpn"));
    std::fs::write(&home_profile, &profile.text).context("writing the profile")?;
    chroot(
        root,
        &format!("chown {USER}:{USER} /home/{USER}/lab.ovpn && chmod 0600 /home/{USER}/lab.ovpn"),
    )?;
    // The client namespace's resolver before the tunnel; the helper rewrites this file
    // (the container's own, not the lab's /etc/netns copy) and must put it back.
    let resolv = root.join("etc/resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    std::fs::write(
        &resolv,
        format!("nameserver {}\n", oxivpn_e2e::addr::ROUTER_LAN),
    )
    .context("writing the root's resolv.conf")?;
    write_check_unit(root)?;

    let _bus = SystemBus::ensure()?;
    let ns = lab.ns(Role::Cli)?.name().to_owned();
    let log = lab.dir().join("nspawn.log");
    let mut cmd = Command::new("systemd-nspawn");
    cmd.args(["--quiet", "--boot", "--register=no", "--keep-unit"])
        .arg("--directory")
        .arg(root)
        .arg(format!("--network-namespace-path=/run/netns/{ns}"))
        .args([
            "--bind=/dev/net/tun",
            "--capability=CAP_NET_ADMIN",
            "--resolv-conf=off",
            "--timezone=off",
            "--console=pipe",
        ])
        .arg(format!("--machine=oxivpn-boot-{}", std::process::id()));
    eprintln!("xtask dist: booting the root under systemd-nspawn in {ns}");
    let booted = Instant::now();
    let mut nspawn = Proc::spawn(cmd, "systemd-nspawn", &log)?;
    let status = nspawn.wait_exit(BOOT_TIMEOUT);
    let elapsed = booted.elapsed();
    let transcript = std::fs::read_to_string(root.join(CHECK_DIR).join("transcript"))
        .unwrap_or_else(|e| format!("(no transcript: {e})"));
    let rc = std::fs::read_to_string(root.join(CHECK_DIR).join("rc")).unwrap_or_default();
    eprintln!(
        "xtask dist: ---- transcript of the check inside the booted root ----\n{}\n---- end ({:.1} s boot to poweroff) ----",
        transcript.trim_end(),
        elapsed.as_secs_f64()
    );
    if let Err(e) = status {
        nspawn.stop();
        bail!(
            "the booted root did not power off: {e:#}; console:\n{}",
            nspawn.log_tail(40)
        );
    }
    ensure!(
        rc.trim() == "0" && transcript.contains("ALL OK"),
        "the check inside the booted root failed (exit status {:?}); console:\n{}",
        rc.trim(),
        nspawn.log_tail(40)
    );
    drop(lab);
    Ok(())
}

/// The check script and the oneshot unit that runs it after the helper, then powers off.
fn write_check_unit(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let script = root.join("usr/local/sbin/oxivpn-check");
    std::fs::create_dir_all(root.join("usr/local/sbin")).context("creating usr/local/sbin")?;
    std::fs::write(&script, check_script()).context("writing the check script")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .context("chmod the check script")?;
    std::fs::create_dir_all(root.join(CHECK_DIR)).context("creating the check dir")?;
    let unit = format!(
        "[Unit]\n\
         Description=OxiVPN installed-package check (xtask dist)\n\
         After=oxivpn-helper.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart=/bin/sh -c '/usr/local/sbin/oxivpn-check > /{CHECK_DIR}/transcript 2>&1; echo $? > /{CHECK_DIR}/rc'\n\
         ExecStopPost=/bin/systemctl poweroff --no-block\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    );
    let dir = root.join("etc/systemd/system");
    std::fs::write(dir.join("oxivpn-check.service"), unit).context("writing the check unit")?;
    let wants = dir.join("multi-user.target.wants");
    std::fs::create_dir_all(&wants).context("creating multi-user.target.wants")?;
    std::os::unix::fs::symlink(
        "/etc/systemd/system/oxivpn-check.service",
        wants.join("oxivpn-check.service"),
    )
    .context("enabling the check unit")?;
    Ok(())
}

/// Runs inside the booted root. Every step prints what it saw; any failure exits 1.
fn check_script() -> String {
    let target = oxivpn_e2e::addr::TARGET;
    r#"#!/bin/sh
# OxiVPN installed-package check: runs as a oneshot unit after oxivpn-helper.service.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
UNIT=oxivpn-helper.service
step() { echo; echo "== $*"; }
fail() {
    echo "FAIL: $*"
    echo "-- systemctl status"; systemctl status "$UNIT" --no-pager -l 2>&1 | tail -n 20
    echo "-- helper log"; journalctl -u "$UNIT" --no-pager -o cat 2>&1 | tail -n 60
    exit 1
}
# As the user: a clean environment, so HOME and XDG dirs are hers; runuser sets her groups.
RUNUSER=$(command -v runuser) || fail "no runuser"
as_user() { env -i HOME=/home/__USER__ USER=__USER__ LOGNAME=__USER__ PATH=/usr/bin:/bin "$RUNUSER" -u __USER__ -- "$@"; }
# The client's network as the tunnel must leave it: routes, rules, resolver, links, firewall.
snap() {
    ip -4 route show table all; echo --; ip -6 route show table main; echo --; ip rule
    echo --; cat /etc/resolv.conf; echo --; ip -o link | awk -F': ' '{print $2}'
    echo --; nft list tables
}
wait_active() {
    i=0
    while [ $i -lt 150 ]; do
        if [ "$(systemctl is-active $UNIT)" = active ] && [ -S /run/oxivpn/helper.sock ] \
            && [ "$(systemctl show -p MainPID --value $UNIT)" != "${1:-0}" ]; then
            return 0
        fi
        sleep 0.2; i=$((i + 1))
    done
    return 1
}
wait_start_state() {
    i=0
    while [ $i -lt 100 ]; do
        snap > /tmp/now 2>&1
        cmp -s /tmp/start /tmp/now && return 0
        sleep 0.2; i=$((i + 1))
    done
    diff -u /tmp/start /tmp/now
    return 1
}
connect_and_ping() {
    as_user oxivpnctl connect lab --timeout 60 || fail "oxivpnctl connect"
    ping -c 3 -i 0.2 -W 2 __TARGET__ || fail "no ping reply from __TARGET__ through the tunnel"
}

step "the packaged service"
wait_active || fail "$UNIT is not active"
systemctl show $UNIT -p ActiveState -p SubState -p NRestarts -p ExecMainStatus -p FragmentPath
ls -l /run/oxivpn/helper.sock
ls -ld /var/lib/oxivpn
systemd-analyze security $UNIT --no-pager 2>&1 | tail -n 1
id __USER__
snap > /tmp/start 2>&1
cat /tmp/start

step "import and connect as __USER__ (member of oxivpn, not root)"
as_user oxivpnctl import /home/__USER__/lab.ovpn --name lab || fail "oxivpnctl import"
connect_and_ping
as_user oxivpnctl status || fail "oxivpnctl status"
echo "-- routes and DNS with the tunnel up"
ip -4 route show
cat /etc/resolv.conf
nft list tables
grep -q '^nameserver 10\.0\.0\.3' /etc/resolv.conf || fail "the pushed DNS server is not in resolv.conf"
nft list tables | grep -q 'inet oxivpn' || fail "no kill switch table while connected"

step "disconnect"
as_user oxivpnctl disconnect lab || fail "oxivpnctl disconnect"
wait_start_state || fail "start state not restored after disconnect"
echo "routes, rules, resolv.conf, links and nftables tables equal the start state"

step "systemctl restart with a session up"
connect_and_ping
pid=$(systemctl show -p MainPID --value $UNIT)
systemctl restart $UNIT || fail "systemctl restart"
wait_active "$pid" || fail "$UNIT not active again after restart"
wait_start_state || fail "start state not restored after systemctl restart"
echo "restarted (pid $pid -> $(systemctl show -p MainPID --value $UNIT)); start state restored"

step "kill -9 of the helper with a session up"
connect_and_ping
pid=$(systemctl show -p MainPID --value $UNIT)
kill -9 "$pid" || fail "kill -9 $pid"
wait_active "$pid" || fail "$UNIT not restarted after kill -9"
wait_start_state || fail "start state not restored after kill -9"
echo "killed pid $pid; systemd restarted it as $(systemctl show -p MainPID --value $UNIT) (NRestarts=$(systemctl show -p NRestarts --value $UNIT)); start state restored"

step "connect once more after the recovery"
connect_and_ping
as_user oxivpnctl disconnect lab || fail "oxivpnctl disconnect"
wait_start_state || fail "start state not restored after the last disconnect"

step "helper log (this boot)"
journalctl -u $UNIT --no-pager -o cat | tail -n 40
echo
echo "ALL OK"
"#
    .replace("__USER__", USER)
    .replace("__TARGET__", target)
}

/// The cached Debian 12 root with ROOT_PACKAGES, bootstrapped once; the list it was made
/// with is stored beside it, and a different list means a new bootstrap.
fn cached_root() -> anyhow::Result<PathBuf> {
    let cache = cache_dir();
    let base = cache.join(format!("{SUITE}-boot"));
    let stamp = cache.join(format!("{SUITE}-boot.packages"));
    let want = ROOT_PACKAGES.join(",");
    let have = std::fs::read_to_string(&stamp).unwrap_or_default();
    if have.trim() == want && base.is_dir() {
        eprintln!("xtask dist: cached Debian 12 root {}", base.display());
        return Ok(base);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let tmp = cache.join(format!("{SUITE}-boot.tmp"));
    for d in [&tmp, &base] {
        if d.exists() {
            ensure_unmounted(d)?;
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
    }
    let _ = std::fs::remove_file(&stamp);
    let mirror = std::env::var("OXIVPN_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.into());
    let started = Instant::now();
    crate::sys::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={want}"), SUITE])
            .arg(&tmp)
            .arg(&mirror),
    )
    .context("debootstrap of the boot test's root")?;
    // Downloaded archives are not needed to boot.
    let _ = output(Command::new("sh").arg("-c").arg(format!(
        "rm -f {}/var/cache/apt/archives/*.deb",
        tmp.display()
    )));
    std::fs::rename(&tmp, &base).context("moving the bootstrapped root into place")?;
    std::fs::write(&stamp, &want).context("writing the root's package stamp")?;
    eprintln!(
        "xtask dist: bootstrapped {} in {:.0} s",
        base.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(base)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("OXIVPN_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// A bind mount, undone (lazily) on every exit path.
struct BindMount(PathBuf);

impl BindMount {
    fn new(from: &Path, to: &Path) -> anyhow::Result<Self> {
        output(Command::new("mount").arg("--bind").arg(from).arg(to))?;
        Ok(Self(to.to_path_buf()))
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = output(Command::new("umount").arg("-l").arg(&self.0));
    }
}

/// Runs `sh -c script` inside the root (not booted); fails with its output on non-zero exit.
fn chroot(root: &Path, script: &str) -> anyhow::Result<String> {
    eprintln!("xtask dist: (boot root) $ {script}");
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
    ensure!(
        out.status.success(),
        "(boot root) {script} failed with {}:\n{}",
        out.status,
        text.trim()
    );
    Ok(text)
}

/// systemd-nspawn wants a system bus on the host. Where there is none (PID 1 here is
/// not systemd) one is started for the test and stopped again when this drops.
struct SystemBus {
    started: Option<u32>,
}

impl SystemBus {
    const SOCKET: &'static str = "/run/dbus/system_bus_socket";

    /// A bus answers on the socket (a socket file alone may be a dead daemon's).
    fn live() -> bool {
        std::os::unix::net::UnixStream::connect(Self::SOCKET).is_ok()
    }

    fn ensure() -> anyhow::Result<Self> {
        if Self::live() {
            return Ok(Self { started: None });
        }
        let _ = std::fs::remove_file(Self::SOCKET);
        let _ = std::fs::remove_file("/run/dbus/pid");
        std::fs::create_dir_all("/run/dbus").context("creating /run/dbus")?;
        let out = Command::new("dbus-daemon")
            .args(["--system", "--fork", "--print-pid"])
            .output()
            .context("starting dbus-daemon --system (Debian package dbus-daemon)")?;
        if !out.status.success() {
            // Another test may have started one at the same moment.
            ensure!(
                Self::live(),
                "dbus-daemon --system failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(Self { started: None });
        }
        let pid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .context("dbus-daemon printed no pid")?;
        Ok(Self { started: Some(pid) })
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        if let Some(pid) = self.started {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            // dbus-daemon leaves its pid file and socket; a later start would refuse.
            let _ = std::fs::remove_file("/run/dbus/pid");
            let _ = std::fs::remove_file(Self::SOCKET);
        }
    }
}
