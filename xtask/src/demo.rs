//! `cargo xtask demo`: the product against a local OpenVPN server in network namespaces.
//!
//! Builds the helper, starts the reference scenario of TESTBED.md (client, router with
//! DHCP, OpenVPN 2.6 server, target with DNS), writes the ready profile to
//! `target/demo/demo.ovpn`, connects the strongest client that exists from the client
//! namespace, pings the target through the tunnel, and stays up until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};
use oxivpn_e2e::{addr, Addressing, ClientVariant, Lab, LabConfig, Role, ServerVariant};

use crate::{deps, sys};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Connect with Debian's `openvpn` (the reference client) instead of ours.
    #[arg(long)]
    pub reference: bool,
    /// Connect, ping, tear down and exit instead of waiting for Ctrl-C (smoke test).
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    deps::ensure(deps::ALL)?;
    if !sys::is_root() {
        bail!("the demo needs root (network namespaces, TUN); run `sudo -E cargo xtask demo`");
    }
    sys::run(sys::cargo().args(["build", "-p", "oxivpn-helper"]))?;
    let helper = target_dir().join("debug").join("oxivpn-helper");

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
    std::fs::create_dir_all(&demo_dir)?;
    let demo_profile = demo_dir.join("demo.ovpn");
    std::fs::write(&demo_profile, &profile.text)?;
    if let Some(auth) = &profile.auth_file {
        std::fs::copy(auth, demo_dir.join("demo.auth"))?;
    }

    let ours = !args.reference && helper_can_connect(&helper);
    let cli = lab.cli().to_owned();
    let profile_arg = demo_profile.to_string_lossy().into_owned();
    let (argv, who): (Vec<String>, &str) = if ours {
        (
            vec![
                helper.to_string_lossy().into_owned(),
                "connect".into(),
                "--config".into(),
                profile_arg.clone(),
                // Journal and DHCP lease (for bypass-dhcp) live in the lab's directory.
                "--journal".into(),
                lab.dir()
                    .join("journal.json")
                    .to_string_lossy()
                    .into_owned(),
                "--dhcp-lease-dir".into(),
                lab.dir().to_string_lossy().into_owned(),
            ],
            "oxivpn-helper connect",
        )
    } else {
        (
            vec![
                "openvpn".into(),
                "--config".into(),
                profile_arg.clone(),
                "--disable-dco".into(),
            ],
            "openvpn (reference client; ours has no `connect` yet)",
        )
    };
    print_instructions(&cli, &demo_profile, &helper, lab.dir(), who);

    let mut client = lab.spawn(Role::Cli, &argv, "demo-client")?;
    client
        .wait_for_log("Initialization Sequence Completed", Duration::from_secs(30))
        .with_context(|| format!("{who} did not connect"))?;
    let stats = lab.ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))?;
    say(&format!(
        "connected with {who}: {}/{} pings to {} answered through the tunnel",
        stats.received,
        stats.transmitted,
        addr::TARGET
    ));
    if stats.received == 0 {
        bail!(
            "no ping reply through the tunnel; client log:\n{}",
            client.log_tail(30)
        );
    }
    if args.check {
        say("check done; tearing down");
        return Ok(());
    }
    say("the lab stays up; press Ctrl-C to tear it down");
    loop {
        match stop_rx.recv_timeout(Duration::from_millis(500)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(st) = client.try_status() {
                    say(&format!(
                        "the client exited ({st}); last log lines:\n{}",
                        client.log_tail(15)
                    ));
                    say("the lab stays up for manual use; press Ctrl-C to tear it down");
                    let _ = stop_rx.recv();
                    break;
                }
            }
        }
    }
    say("stopping the client and tearing the lab down...");
    let _ = client.stop();
    drop(lab);
    say("done: namespaces deleted, processes stopped");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sys::root().join("target"))
}

/// Whether the built helper already has the `connect` subcommand.
fn helper_can_connect(helper: &Path) -> bool {
    Command::new(helper)
        .args(["connect", "--help"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[allow(clippy::print_stdout)]
fn say(msg: &str) {
    println!("demo: {msg}");
}

#[allow(clippy::print_stdout)]
fn print_instructions(cli: &str, profile: &Path, helper: &Path, lab_dir: &Path, who: &str) {
    let p = profile.display();
    println!(
        "\n\
=== OxiVPN demo lab is up ===
  client namespace : {cli}   (eth0 leased from dnsmasq on the router)
  OpenVPN server   : {server} udp/1194 (tls-crypt, AES-256-GCM), pushes redirect-gateway + DNS 10.0.0.3
  target           : {target} (answers DNS for test.example), reachable only through the tunnel
  profile          : {p}
  logs             : {logs}

Connecting now with {who}. In another terminal, try:
  ip netns exec {cli} ping {target}
  ip netns exec {cli} ip route
Connect by hand (after Ctrl-C of this one, or alongside it with a second profile):
  ip netns exec {cli} {helper} connect --config {p}
  ip netns exec {cli} openvpn --config {p} --disable-dco
",
        server = addr::SERVER,
        target = addr::TARGET,
        logs = lab_dir.display(),
        helper = helper.display(),
    );
}
