//! Auto-connect at app start, in the real window: "Connect when OxiVPN starts" is ticked
//! for "Lab office", the app is quit and started again (a new WebDriver session, the
//! same home, keyring and helper), and it connects by itself with the saved password.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use fantoccini::Client;

use crate::desktop::Screens;
use crate::driver::*;

/// Polls the app's snapshot until `ok` holds for it (bounded by `timeout`).
async fn wait_snapshot(
    c: &Client,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let snap = snapshot(c).await?;
        if ok(&snap) {
            return Ok(snap);
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: waited {timeout:?}; the app's state: {} / settings {}",
            snap["connections"],
            snap["settings"]
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// In the first app run (disconnected): ticks "Connect when OxiVPN starts" for "Lab
/// office" and turns the untrusted-network rule of step 8 off, so that only the start
/// rule can bring it up in the next run. Returns the profile's id.
pub async fn tick_on_start(c: &Client, steps: &mut Steps) -> anyhow::Result<String> {
    click_button(c, "Settings").await?;
    click_input(c, "select[name=untrusted-profile] option[value='']").await?;
    click_button(c, "Connection").await?;
    select_profile(c, "Lab office").await?;
    click_input(c, "input[name=auto-on-start]").await?;
    let snap = wait_snapshot(c, "the start rule saved", UI_WAIT, |s| {
        let id = s["profiles"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "Lab office"))
            .and_then(|p| p["id"].as_str());
        id.is_some_and(|id| {
            s["settings"]["autoConnect"][id]["onStart"] == true
                && s["settings"]["untrustedProfile"].is_null()
        })
    })
    .await?;
    ensure!(
        snap["connections"]
            .as_array()
            .is_none_or(|cs| cs.iter().all(|c| c["state"] != "connected")),
        "a session is still up before the restart: {}",
        snap["connections"]
    );
    steps.done("11a 'Connect when OxiVPN starts' ticked, other rules off");
    let id = snap["profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Lab office"))
        .and_then(|p| p["id"].as_str())
        .context("no id for Lab office")?;
    Ok(id.to_owned())
}

/// In the second app run: "Lab office" connects by itself, no dialog; then disconnects.
pub async fn connects_on_start(
    c: &Client,
    screens: &Screens,
    id: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let snap = wait_snapshot(
        c,
        "the profile connecting by itself at start",
        Duration::from_secs(45),
        |s| {
            s["connections"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["state"] == "connected" && c["session"]["profileId"] == id)
            })
        },
    )
    .await?;
    ensure!(
        snap["prompt"].is_null(),
        "a dialog asked for something: {}",
        snap["prompt"]
    );
    eprintln!(
        "webview e2e: STEP 11b app started again -> Lab office connected by itself: {:.1} s after the launch",
        started.elapsed().as_secs_f64()
    );
    select_profile(c, "Lab office").await?;
    wait_status(c, "Connected", UI_WAIT).await?;
    scroll_to_status(c).await?;
    screens.view(c, "30-connected-at-start").await?;
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    Ok(())
}
