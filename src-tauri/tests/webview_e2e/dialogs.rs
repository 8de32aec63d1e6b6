//! The dialogs the main scenario does not open: a profile whose files are missing
//! (opened with the app again, as a file manager's "Open with" does: the running
//! window gets it) and the import from a server. Each gets axe-core and is closed by
//! Escape, the focus going back where it was.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};

use crate::desktop::Screens;
use crate::driver::*;
use crate::keyboard::{focus, press};
use oxivpn_e2e::AS_USER;

/// A profile naming a CA file that is not next to it.
pub const MISSING_PROFILE: &str = "client\n\
dev tun\n\
proto udp\n\
remote 198.18.0.1 1194\n\
ca lab-ca.crt\n\
auth-user-pass\n";

/// Replaces the text of the field matching `css`.
async fn fill(c: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let el = wd(css, c.find(Locator::Css(css))).await?;
    wd("clear", el.clear()).await?;
    wd("type", el.send_keys(text)).await
}

async fn modal_gone(c: &Client) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + UI_WAIT;
    while wd("modal", c.find_all(Locator::Css(".modal")))
        .await?
        .into_iter()
        .next()
        .is_some()
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "Escape did not close the dialog"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

pub async fn other_dialogs(
    c: &Client,
    screens: &Screens,
    mut open_again: Command,
    access_server: &str,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    // The second launch hands its file to the running window and exits (bounded).
    let mut child = open_again
        .spawn()
        .context("starting the app a second time")?;
    let deadline = std::time::Instant::now() + UI_WAIT;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the second launch did not exit within {UI_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(status.success(), "the second launch failed: {status}");
    wait_text(c, ".modal h2", "the missing-files dialog", UI_WAIT, |t| {
        t == "Files the profile needs"
    })
    .await?;
    let body = wait_text(c, ".modal", "the missing file's name", UI_WAIT, |t| {
        t.contains("lab-ca.crt")
    })
    .await?;
    eprintln!(
        "webview e2e: missing-files dialog: {}",
        body.replace('\n', " | ")
    );
    ensure!(
        focus(c).await?.in_modal,
        "the dialog does not hold the focus"
    );
    screens.view(c, "25-missing-files").await?;
    press(c, Key::Escape, false).await?;
    modal_gone(c).await?;

    // Import from a server: opened from the sidebar, closed by Escape; the focus goes
    // back to the button that opened it.
    click_button(c, "Import from a URL…").await?;
    wait_text(c, ".modal h2", "the URL dialog", UI_WAIT, |t| {
        t == "Import from a server"
    })
    .await?;
    let f = focus(c).await?;
    ensure!(
        f.in_modal && f.tag == "INPUT",
        "the URL field is not focused: {f:?}"
    );
    screens.view(c, "26-import-url").await?;
    press(c, Key::Escape, false).await?;
    modal_gone(c).await?;
    let f = focus(c).await?;
    ensure!(
        f.text == "Import from a URL…",
        "after Escape the focus is on {f:?}, not the button that opened the dialog"
    );
    steps.done("10 missing-files and URL dialogs: axe, focus, Escape");

    // 10b. Import from an Access Server (the lab's stand-in, TLS verified against the
    // lab CA): a wrong password is named, the right one gives the usual report.
    click_button(c, "Import from a URL…").await?;
    click_input(c, "input[name=import-mode][value=server]").await?;
    fill(c, "input[name=as-server]", access_server).await?;
    fill(c, "input[name=as-username]", AS_USER.0).await?;
    fill(c, "input[name=as-password]", "wrong").await?;
    click_button(c, "Import").await?;
    let refused = wait_text(c, ".modal .error-box", "the refusal", UI_WAIT, |t| {
        !t.is_empty()
    })
    .await?;
    ensure!(
        refused.contains("did not accept your user name or password"),
        "a wrong Access Server password reads {refused:?}"
    );
    fill(c, "input[name=as-password]", AS_USER.1).await?;
    screens.view(c, "29-import-from-server").await?;
    click_button(c, "Import").await?;
    wait_text(
        c,
        ".modal h2",
        "the downloaded profile's report",
        UI_WAIT,
        |t| t.contains("localhost"),
    )
    .await?;
    press(c, Key::Escape, false).await?;
    modal_gone(c).await?;
    let snap = snapshot(c).await?;
    let names: Vec<&str> = snap["profiles"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names.contains(&"localhost"),
        "the downloaded profile is not stored: {names:?}"
    );
    steps.done("10b import from an Access Server: wrong password named, then imported");
    Ok(())
}
