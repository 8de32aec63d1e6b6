//! Two real tunnels at once, the split-tunnel server going down and coming back, and
//! the helper service restarted: what the fake helper covers, here against the real
//! helper and real OpenVPN servers.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use fantoccini::Client;
use oxivpn_e2e::{addr, Lab, Proc, Role, ServerHandle};

use crate::desktop::{tray_shots, Screens};
use crate::driver::*;
use crate::lab::start_helper;

/// The split-tunnel server's address pool (the full tunnel's is 10.8.0.0/24), and its
/// own address there.
pub const SPLIT_POOL: &str = "10.9.0.0";
const SPLIT_SERVER_TUN: &str = "10.9.0.1";

/// The interface the client namespace routes `dest` through (`ip route get`).
fn route_dev(lab: &Lab, dest: &str) -> anyhow::Result<String> {
    let out = lab.ns(Role::Cli)?.ip(&["-4", "route", "get", dest])?;
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "dev" {
            return words.next().map(str::to_owned).context("no device");
        }
    }
    anyhow::bail!("no device in `ip route get {dest}`: {out}")
}

/// Both profiles' states in the sidebar's list.
async fn list_states(c: &Client, want: impl Fn(&str) -> bool) -> anyhow::Result<String> {
    wait_text(
        c,
        "//ul[contains(@class,'profile-list')]",
        "the profiles' states in the list",
        Duration::from_secs(45),
        want,
    )
    .await
}

/// "Lab office" (all traffic, its kill switch off) is up: "Lab split" (only a route to
/// 10.0.0.0/24) connects beside it. Both show connected; each subnet goes through its
/// own tun. Then the split server stops: the window says it is reconnecting (or
/// failed), and it connects again once the server is back.
pub async fn two_tunnels_and_server_down(
    c: &Client,
    screens: &Screens,
    lab: &mut Lab,
    split: &ServerHandle,
    tray: bool,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    select_profile(c, "Lab split").await?;
    // Its last try (step 4b) was refused: the button says "Try again".
    click_button(c, "Try again").await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    let states = list_states(c, |t| t.matches("Connected").count() >= 2).await?;
    eprintln!("webview e2e: profile list: {}", states.replace('\n', " | "));
    // Each tunnel's subnet through its own tun: the split route is the more specific
    // one for 10.0.0.0/24; the full tunnel keeps its own server's subnet and the rest.
    let full_dev = route_dev(lab, addr::TUNNEL_SERVER)?;
    let split_dev = route_dev(lab, SPLIT_SERVER_TUN)?;
    let target_dev = route_dev(lab, addr::TARGET)?;
    let elsewhere = route_dev(lab, "10.200.0.1")?;
    eprintln!(
        "webview e2e: routes: {} via {full_dev}, {SPLIT_SERVER_TUN} and {} via {split_dev}, 10.200.0.1 via {elsewhere}",
        addr::TUNNEL_SERVER,
        addr::TARGET
    );
    ensure!(
        full_dev != split_dev,
        "both tunnels on one device {full_dev}"
    );
    ensure!(
        target_dev == split_dev,
        "{} goes via {target_dev}, not the split tunnel's {split_dev}",
        addr::TARGET
    );
    ensure!(
        elsewhere == full_dev,
        "the rest goes via {elsewhere}, not the full tunnel's {full_dev}"
    );
    for (dest, dev) in [
        (addr::TUNNEL_SERVER, &full_dev),
        (SPLIT_SERVER_TUN, &split_dev),
        (addr::TARGET, &split_dev),
    ] {
        let before = tun_rx_packets(lab, dev)?;
        let ping = lab.ping(Role::Cli, dest, 3, Duration::from_millis(100))?;
        ensure!(ping.received > 0, "no reply from {dest} through {dev}");
        let after = tun_rx_packets(lab, dev)?;
        ensure!(
            after >= before + u64::from(ping.received),
            "{dev} received {} packets while {} replies came from {dest}",
            after - before,
            ping.received
        );
    }
    scroll_to_status(c).await?;
    screens.view(c, "21-two-tunnels").await?;
    if tray {
        tray_shots(screens, "22-tray-two-sessions");
    }
    steps.done("8b two real tunnels: full + split, each subnet through its own tun");

    // The split server stops (SIGTERM: it tells its clients it is going).
    split.signal(lab, nix::sys::signal::Signal::SIGTERM)?;
    let stopped = Instant::now();
    let said = wait_text(
        c,
        ".status-card",
        "the window's word on the server gone",
        Duration::from_secs(45),
        |t| t.contains("Reconnecting") || t.contains("Failed"),
    )
    .await?;
    eprintln!(
        "webview e2e: split server stopped; {:.1} s later the window says: {}",
        stopped.elapsed().as_secs_f64(),
        said.replace('\n', " | ")
    );
    scroll_to_status(c).await?;
    screens.view(c, "23-server-down").await?;
    // It is gone once its tun (holding 10.9.0.1) is: OpenVPN lingers a moment to
    // tell its clients. Then it comes back (the same configuration and port).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !lab
        .ns(Role::Srv)?
        .ip(&["-o", "-4", "addr", "show", "to", SPLIT_SERVER_TUN])?
        .trim()
        .is_empty()
    {
        ensure!(
            Instant::now() < deadline,
            "the stopped split server still holds {SPLIT_SERVER_TUN}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "webview e2e: split server down {:.1} s after SIGTERM",
        stopped.elapsed().as_secs_f64()
    );
    let mut cmd = lab.ns(Role::Srv)?.cmd("openvpn");
    cmd.current_dir(&split.dir)
        .arg("--config")
        .arg(&split.config_path);
    let mut again = Proc::spawn(
        cmd,
        "openvpn-split-again",
        &lab.dir().join("split-again.log"),
    )?;
    again
        .wait_for_log("Initialization Sequence Completed", Duration::from_secs(15))
        .context("restarting the split server")?;
    let back = Instant::now();
    if said.contains("Failed") {
        click_button(c, "Try again").await?;
    }
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    eprintln!(
        "webview e2e: split server back; connected again {:.1} s later",
        back.elapsed().as_secs_f64()
    );
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    drop(again);
    steps.done("8c split server down -> said in the window -> back -> connected");
    select_profile(c, "Lab office").await?;
    wait_status(c, "Connected", UI_WAIT).await?;
    Ok(())
}

/// Packets `dev` received (its kernel counter).
fn tun_rx_packets(lab: &Lab, dev: &str) -> anyhow::Result<u64> {
    let path = format!("/sys/class/net/{dev}/statistics/rx_packets");
    let out = lab
        .ns(Role::Cli)?
        .cmd("cat")
        .arg(&path)
        .output()
        .context("reading the tun's counter")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("{path}: {:?}", String::from_utf8_lossy(&out.stderr)))
}

/// The helper service dies mid-session: the window says so and that it waits for the
/// service; once the service runs again, the app finds it by itself and connects again
/// (saved password) without a click.
pub async fn helper_restarted(
    c: &Client,
    screens: &Screens,
    lab: &Lab,
    helper: &mut Proc,
    socket: &Path,
    state: &Path,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    helper.kill();
    let message = wait_text(
        c,
        ".status-card .error-box, .banner .error-box",
        "the helper-stopped message",
        UI_WAIT,
        |t| t.to_lowercase().contains("helper") || t.to_lowercase().contains("service"),
    )
    .await?;
    eprintln!("webview e2e: after the helper died: {message}");
    let waiting = wait_text(
        c,
        ".status-card",
        "the connection waiting for the service",
        UI_WAIT,
        |t| t.contains("Waiting for the OxiVPN service"),
    )
    .await?;
    eprintln!(
        "webview e2e: the connection says: {}",
        waiting.replace('\n', " | ")
    );
    // The banner (waiting, tries so far, why, Try again) above the connection.
    wd(
        "scroll to the service banner",
        c.execute(
            "document.querySelector('.banner.service')?.scrollIntoView({ block: 'start' });",
            vec![],
        ),
    )
    .await?;
    screens.view(c, "08-helper-stopped").await?;
    steps.done("9 helper stopped mid-session is explained; the window waits for the service");
    // The service is started again (as systemd would): a stale socket file is replaced.
    let _ = std::fs::remove_file(socket);
    let spawned = Instant::now();
    *helper = start_helper(lab, socket, state)?;
    let listening = Instant::now();
    // No click: the app finds the service by itself (bounded: a hang fails here).
    wait_status(c, "Connected", Duration::from_secs(30))
        .await
        .context("connected again without a click within 30 s of the helper's start")?;
    let connected = Instant::now();
    let banner_gone = c
        .find_all(fantoccini::Locator::Css(".banner.service"))
        .await
        .map(|v| v.is_empty())
        .unwrap_or(false);
    ensure!(
        banner_gone,
        "the waiting banner is still shown once connected"
    );
    scroll_to_status(c).await?;
    screens.view(c, "24-helper-back").await?;
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    steps.done(&format!(
        "9b helper back -> connected again by itself, no click ({:.1} s after the helper started, {:.1} s after it listened)",
        (connected - spawned).as_secs_f64(),
        (connected - listening).as_secs_f64()
    ));
    Ok(())
}
