//! `cargo xtask demo`: the product against a local OpenVPN server in network namespaces.
//!
//! Builds the helper, the CLI and the app, starts the reference scenario of TESTBED.md
//! (client, router with DHCP, OpenVPN 2.6 server, target with DNS), runs
//! `oxivpn-helper service` inside the client namespace on `target/demo/helper.sock`,
//! and opens the app (which runs outside the namespace and reaches the helper through
//! that socket) with the demo profile imported: click Connect. Stays up until Ctrl-C.
//!
//! `--check` (CI): the same lab and service, connected with `oxivpnctl` instead of the
//! window, a ping to the target through the tunnel, disconnect, tear down.
//! `--reference` connects Debian's `openvpn` instead (no helper, no app).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use oxivpn_e2e::{addr, Addressing, ClientVariant, Lab, LabConfig, Proc, Role, ServerVariant};

use crate::{deps, sys};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Connect with Debian's `openvpn` (the reference client) instead of ours.
    #[arg(long)]
    pub reference: bool,
    /// Connect with oxivpnctl, ping, tear down and exit instead of opening the app (smoke test).
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    deps::ensure(deps::ALL)?;
    if !sys::is_root() {
        bail!("the demo needs root (network namespaces, TUN); run `sudo -E cargo xtask demo`");
    }
    let with_app = !args.check && !args.reference;
    let mut build = sys::cargo();
    build.args(["build", "-p", "oxivpn-helper", "-p", "oxivpnctl"]);
    if with_app {
        // The app embeds ui/dist at compile time.
        if !sys::root().join("ui/dist/index.html").exists() {
            sys::run(Command::new("npm").args(["--prefix", "ui", "ci"]))?;
            sys::run(Command::new("npm").args(["--prefix", "ui", "run", "build"]))?;
        }
        build.args(["-p", "oxivpn-app"]);
    }
    sys::run(&mut build)?;
    let bin = target_dir().join("debug");

    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl-C handler")?;

    eprintln!("xtask: starting the lab (network namespaces, DHCP, OpenVPN server)...");
    let mut lab = Lab::start(LabConfig {
        addressing: Addressing::Dhcp,
        target_dns: true,
        ..LabConfig::reference()
    })?;
    let server = lab.start_server(&ServerVariant::default())?;
    let profile = lab.write_client_profile(&server, &ClientVariant::default(), "demo")?;
    let demo_dir = sys::root().join("target").join("demo");
    // A fresh app home each run: profiles and settings of the demo only.
    let _ = std::fs::remove_dir_all(demo_dir.join("home"));
    std::fs::create_dir_all(demo_dir.join("home"))?;
    let demo_profile = demo_dir.join("demo.ovpn");
    std::fs::write(&demo_profile, &profile.text)?;
    let cli = lab.cli().to_owned();

    if args.reference {
        let argv = [
            "openvpn",
            "--config",
            path_str(&demo_profile)?,
            "--disable-dco",
        ];
        let mut client = lab.spawn(Role::Cli, &argv, "demo-openvpn")?;
        client
            .wait_for_log("Initialization Sequence Completed", Duration::from_secs(30))
            .context("openvpn did not connect")?;
        ping_target(&lab, "openvpn")?;
        say("the lab stays up; press Ctrl-C to tear it down");
        let _ = stop_rx.recv();
        drop(client);
        drop(lab);
        return Ok(());
    }

    let socket = demo_dir.join("helper.sock");
    let helper = start_service(&lab, &bin.join("oxivpn-helper"), &socket)?;
    let ctl = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(bin.join("oxivpnctl"))
            .args(args)
            .env("OXIVPN_SOCKET", &socket)
            .env("XDG_DATA_HOME", demo_dir.join("home/ctl-data"))
            .stdin(std::process::Stdio::null())
            .output()
            .context("running oxivpnctl")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("oxivpnctl {} failed: {text}", args.join(" "));
        }
        Ok(text)
    };

    if args.check {
        ctl(&["import", path_str(&demo_profile)?, "--name", "demo"])?;
        ctl(&["connect", "demo", "--timeout", "30"])
            .with_context(|| format!("helper log:\n{}", helper.log_tail(30)))?;
        ping_target(&lab, "the helper service (oxivpnctl connect)")?;
        ctl(&["disconnect", "demo"])?;
        say("check done; tearing down");
        return Ok(());
    }

    print_instructions(&cli, &demo_profile, &socket, lab.dir());
    let mut app = start_app(&bin.join("oxivpn"), &demo_profile, &socket, &demo_dir)?;
    loop {
        match stop_rx.recv_timeout(Duration::from_millis(500)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(st) = app.as_mut().and_then(|a| a.try_status()) {
                    say(&format!(
                        "the app exited ({st}); the lab and the helper stay up for oxivpnctl; \
                         press Ctrl-C to tear them down"
                    ));
                    app = None;
                }
            }
        }
    }
    say("stopping the app and the helper, tearing the lab down...");
    drop(app);
    drop(helper);
    drop(lab);
    say("done: namespaces deleted, processes stopped");
    Ok(())
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

/// `oxivpn-helper service` in the client namespace, listening on `socket`.
fn start_service(lab: &Lab, helper: &Path, socket: &Path) -> anyhow::Result<Proc> {
    let _ = std::fs::remove_file(socket);
    let state = lab.dir().join("helper-state");
    let argv = [
        path_str(helper)?,
        "service",
        "--socket",
        path_str(socket)?,
        // The demo's user is root (sudo); a packaged helper uses the oxivpn group.
        "--group",
        "root",
        "--state-dir",
        path_str(&state)?,
        "--dhcp-lease-dir",
        path_str(lab.dir())?,
    ];
    let p = lab.spawn(Role::Cli, &argv, "helper-service")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if Instant::now() > deadline {
            bail!(
                "the helper service did not listen on {}; log:\n{}",
                socket.display(),
                p.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    say(&format!(
        "helper service up in the client namespace, socket {}",
        socket.display()
    ));
    Ok(p)
}

/// The app with the demo profile on its command line (imported at start), or None with
/// a notice when there is no display to show it on.
fn start_app(
    app: &Path,
    profile: &Path,
    socket: &Path,
    demo_dir: &Path,
) -> anyhow::Result<Option<Proc>> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        say("no DISPLAY: the app cannot open a window (use `sudo -E cargo xtask demo` from a desktop); \
             use oxivpnctl as shown above");
        return Ok(None);
    }
    let home = demo_dir.join("home");
    let mut cmd = Command::new(app);
    cmd.arg(profile)
        .env("OXIVPN_SOCKET", socket)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"));
    let p = Proc::spawn(cmd, "oxivpn-app", &demo_dir.join("app.log"))?;
    say(&format!(
        "the app is open with the demo profile imported: close the report and click Connect \
         (app log: {})",
        demo_dir.join("app.log").display()
    ));
    Ok(Some(p))
}

fn ping_target(lab: &Lab, who: &str) -> anyhow::Result<()> {
    let stats = lab.ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))?;
    say(&format!(
        "connected with {who}: {}/{} pings to {} answered through the tunnel",
        stats.received,
        stats.transmitted,
        addr::TARGET
    ));
    if stats.received == 0 {
        bail!("no ping reply through the tunnel");
    }
    Ok(())
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sys::root().join("target"))
}

#[allow(clippy::print_stdout)]
fn say(msg: &str) {
    println!("demo: {msg}");
}

#[allow(clippy::print_stdout)]
fn print_instructions(cli: &str, profile: &Path, socket: &Path, lab_dir: &Path) {
    let p = profile.display();
    let s = socket.display();
    println!(
        "\n\
=== OxiVPN demo lab is up ===
  client namespace : {cli}   (eth0 leased from dnsmasq on the router; the helper service runs here)
  OpenVPN server   : {server} udp/1194 (tls-crypt, AES-256-GCM), pushes redirect-gateway + DNS 10.0.0.3
  target           : {target} (answers DNS for test.example), reachable only through the tunnel
  profile          : {p}
  helper socket    : {s}
  logs             : {logs}

The app opens with the demo profile imported: click Connect. In another terminal, try:
  ip netns exec {cli} ping {target}
  ip netns exec {cli} ip route
  OXIVPN_SOCKET={s} oxivpnctl status
",
        server = addr::SERVER,
        target = addr::TARGET,
        logs = lab_dir.display(),
    );
}
