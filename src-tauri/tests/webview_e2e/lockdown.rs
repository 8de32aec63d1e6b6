//! Lockdown in the real window against the real helper: the Settings toggle reaches
//! the helper (our lockdown table appears in the client namespace), the banner says
//! the internet is blocked and offers the ways out, its Connect brings the tunnel up
//! with lockdown still in force, and "Turn off lockdown" removes exactly our table.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use fantoccini::{Client, Locator};
use oxivpn_e2e::{Lab, Role};

use crate::desktop::Screens;
use crate::driver::*;

const BANNER: &str = ".banner.lockdown";

/// The tables `nft list tables` shows in the client namespace (`inet oxivpn_lockdown`, ...).
fn client_tables(lab: &Lab) -> anyhow::Result<Vec<String>> {
    let out = lab
        .ns(Role::Cli)?
        .cmd("nft")
        .args(["list", "tables"])
        .output()
        .context("running nft list tables in the client namespace")?;
    ensure!(
        out.status.success(),
        "nft list tables: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("table "))
        .map(str::to_owned)
        .collect())
}

/// Waits (bounded) until the client namespace's tables satisfy `want`.
async fn wait_tables(
    lab: &Lab,
    what: &str,
    want: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let tables = client_tables(lab)?;
        if want(&tables) {
            return Ok(tables);
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: the client namespace holds {tables:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn banner_gone(c: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + UI_WAIT;
    // An error (a node going stale while the view re-renders) is asked again.
    while !matches!(c.find_all(Locator::Css(BANNER)).await, Ok(v) if v.is_empty()) {
        ensure!(
            Instant::now() < deadline,
            "the lockdown banner stayed; page:\n{}",
            page_text(c).await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(())
}

async fn click_css(c: &Client, css: &str) -> anyhow::Result<()> {
    let el = wd(
        css,
        c.wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css)),
    )
    .await?;
    eprintln!("webview e2e: click {css}");
    wd(&format!("click {css}"), el.click()).await
}

/// Step 6a. Starts and ends disconnected with "Lab office" chosen and its password saved.
pub async fn lockdown(
    c: &Client,
    screens: &Screens,
    lab: &Lab,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    let mine = |t: &String| t.ends_with("oxivpn_lockdown");
    ensure!(
        !client_tables(lab)?.iter().any(mine),
        "a lockdown table exists before the toggle"
    );
    click_button(c, "Settings").await?;
    click_input(c, "input[name=lockdown]").await?;
    let tables = wait_tables(lab, "lockdown on", |t| t.iter().any(mine)).await?;
    ensure!(
        tables.len() == 1,
        "while disconnected only our lockdown table may be in force: {tables:?}"
    );
    click_button(c, "Connection").await?;
    let banner = wait_text(c, BANNER, "the lockdown banner", UI_WAIT, |t| {
        t.contains("Internet blocked")
    })
    .await?;
    ensure!(
        banner.contains("Turn off lockdown"),
        "the banner offers no way out: {banner:?}"
    );
    // The picture shows the banner whole (the view may be scrolled from earlier steps).
    wd(
        "scroll to the banner",
        c.execute(
            "document.querySelector(arguments[0])?.scrollIntoView({block: 'start'})",
            vec![serde_json::json!(BANNER)],
        ),
    )
    .await?;
    screens.view(c, "27-lockdown-banner").await?;

    // The banner's Connect: the saved password, no dialog; lockdown stays in force.
    click_css(c, &format!("{BANNER} button.primary")).await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    banner_gone(c).await?;
    wait_text(c, "p.notice", "the lockdown note", UI_WAIT, |t| {
        t.contains("Lockdown is on")
    })
    .await?;
    let tables = client_tables(lab)?;
    ensure!(
        tables.iter().any(|t| t.ends_with("oxivpn")),
        "connected under lockdown without the session's kill switch: {tables:?}"
    );
    screens.view(c, "28-lockdown-connected").await?;

    // Disconnect: blocked again, our session's table gone, the banner back.
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    wait_text(c, BANNER, "the banner after disconnecting", UI_WAIT, |t| {
        t.contains("Internet blocked")
    })
    .await?;
    let tables = wait_tables(lab, "after disconnecting", |t| t.len() == 1).await?;
    ensure!(tables.iter().any(mine), "after disconnecting: {tables:?}");

    // The way out: nothing of ours left behind.
    click_css(c, &format!("{BANNER} button.secondary")).await?;
    banner_gone(c).await?;
    wait_tables(lab, "lockdown off", |t| !t.iter().any(mine)).await?;
    steps.done("6a lockdown: toggle, banner, connect under lockdown, turned off");
    Ok(())
}
