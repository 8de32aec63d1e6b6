//! The dark theme under axe. The app follows `prefers-color-scheme` (ui/src/app.css);
//! WebKitGTK answers that query from GTK: a `GTK_THEME` ending in ":dark" makes it
//! dark. So the app is started once more (a third WebDriver session) through a tiny
//! wrapper that sets `GTK_THEME=Adwaita:dark`, the page is asked whether the query
//! matches (the pass fails if it does not, so a silent light pass cannot hide), and the
//! main views are checked by axe, contrast included, like the light ones.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use fantoccini::Client;
use serde_json::json;

use crate::desktop::Screens;
use crate::driver::*;

/// Starts the app in the dark theme, checks its main views, and quits it.
pub async fn dark_pass(screens: &Screens, port: u16, dir: &Path) -> anyhow::Result<()> {
    let wrapper = dir.join("oxivpn-dark");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nGTK_THEME=Adwaita:dark exec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_oxivpn")
        ),
    )?;
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".into(),
        json!({ "application": wrapper.to_str().context("wrapper path")?, "args": [] }),
    );
    let c = crate::new_session(caps, port).await?;
    let result = views(&c, screens).await;
    if result.is_err() {
        let _ = screens.shot(&c, "failure").await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
    result
}

async fn views(c: &Client, screens: &Screens) -> anyhow::Result<()> {
    let mut steps = Steps::new();
    let dark = wd(
        "prefers-color-scheme",
        c.execute(
            "return window.matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        ),
    )
    .await?;
    ensure!(
        dark == serde_json::Value::Bool(true),
        "GTK_THEME=Adwaita:dark did not make the page dark (prefers-color-scheme: {dark})"
    );
    // "Lab office" still connects at start (step 11): the connected view, in dark.
    select_profile(c, "Lab office").await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    scroll_to_status(c).await?;
    screens.view(c, "31-dark-connected").await?;
    click_button(c, "Routes").await?;
    wait_text(c, ".content", "the routes view", UI_WAIT, |t| !t.is_empty()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screens.view(c, "32-dark-routes").await?;
    click_button(c, "Log").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screens.view(c, "33-dark-log").await?;
    click_button(c, "Settings").await?;
    wait_text(
        c,
        "#protection-title",
        "the protection settings",
        UI_WAIT,
        |t| t.eq_ignore_ascii_case("Protection"),
    )
    .await?;
    screens.view(c, "34-dark-settings").await?;
    click_button(c, "Connection").await?;
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    screens.view(c, "35-dark-main").await?;
    steps.done("12 dark theme (GTK_THEME=Adwaita:dark): connected, routes, log, settings, main checked by axe");
    Ok(())
}
