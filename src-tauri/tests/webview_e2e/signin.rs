//! Web sign-in and CR_TEXT against the real deferred-auth servers.

use std::time::Duration;

use anyhow::{ensure, Context};
use fantoccini::{Client, Locator};
use oxivpn_e2e::{addr, PASSWORD, RIGHT_ANSWER, SIGN_IN_PORT, USERNAME};

use crate::desktop::Screens;
use crate::driver::*;
use crate::lab::TestBrowser;
use crate::SECRET_SERVICE;

/// Connect → credentials dialog → the password is typed (and Remember ticked or not).
pub async fn connect_with_password(c: &Client, remember: bool) -> anyhow::Result<()> {
    click_button(c, "Connect").await?;
    wait_text(c, ".modal h2", "the credentials dialog", UI_WAIT, |t| {
        t.starts_with("Sign in to")
    })
    .await?;
    let user = wd("user field", c.find(Locator::Css("input[name=username]"))).await?;
    wd("clear user", user.clear()).await?;
    wd("type user", user.send_keys(USERNAME)).await?;
    let password = wd(
        "password field",
        c.find(Locator::Css("input[name=password]")),
    )
    .await?;
    wd("type password", password.send_keys(PASSWORD)).await?;
    let boxed = wd("remember box", c.find(Locator::Css("input[name=remember]"))).await?;
    if wd("remember state", boxed.is_selected()).await? != remember {
        wd("toggle remember", boxed.click()).await?;
    }
    click_button(c, "Connect").await
}

/// The sign-in step against the real server: the step names the page's host and counts
/// down, the browser got the link by itself; the right answer connects (the step goes),
/// a wrong one fails with words in the window and keeps no password.
pub async fn sign_in(
    c: &Client,
    screens: &Screens,
    browser: &TestBrowser,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    let host = format!("{}:{SIGN_IN_PORT}", addr::SERVER);
    select_profile(c, "Lab sign-in").await?;
    connect_with_password(c, false).await?;
    let shown = wait_text(
        c,
        "[data-testid=sign-in-host]",
        "the sign-in step",
        Duration::from_secs(45),
        |t| !t.is_empty(),
    )
    .await?;
    ensure!(shown == host, "the step names {shown:?}, not {host:?}");
    let stage = wait_text(c, ".status-card .stage", "the stage", UI_WAIT, |t| {
        t.contains("Waiting for sign-in")
    })
    .await?;
    eprintln!("webview e2e: stage: {stage}");
    let countdown = wait_text(
        c,
        "[data-testid=sign-in-countdown]",
        "the countdown",
        UI_WAIT,
        |t| t.starts_with("Time left: 0:") || t.starts_with("Time left: 1:00"),
    )
    .await?;
    eprintln!("webview e2e: {countdown}");
    browser.wait_opens(1).await?;
    ensure!(
        browser
            .log()
            .contains(&format!("open http://{host}/signin?state=")),
        "the browser was not given the sign-in page: {}",
        browser.log()
    );
    screens.view(c, "16-sign-in-step").await?;
    // "Open again" hands the same link to the browser once more.
    click_button(c, "Open again").await?;
    browser.wait_opens(2).await?;
    steps.done("6b sign-in step shown, browser opened (twice)");
    browser.answer(RIGHT_ANSWER)?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    ensure!(
        wd(
            "sign-in step",
            c.find(Locator::Css("[data-testid=sign-in]"))
        )
        .await
        .is_err(),
        "the sign-in step stays after connecting"
    );
    let address = fact(c, "Your VPN address").await?;
    ensure!(address.starts_with("10.8."), "tunnel address {address:?}");
    screens.view(c, "17-sign-in-connected").await?;
    steps.done("6c sign-in accepted -> connected");
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;

    // Denied: a wrong answer on the page. Remember is ticked, and still nothing is kept.
    connect_with_password(c, true).await?;
    wait_text(
        c,
        "[data-testid=sign-in-host]",
        "the second sign-in step",
        Duration::from_secs(45),
        |t| t == host,
    )
    .await?;
    browser.wait_opens(3).await?;
    browser.answer("0000")?;
    let failure = wait_text(
        c,
        ".status-card .error-box",
        "the denied sign-in",
        Duration::from_secs(45),
        |t| !t.is_empty(),
    )
    .await?;
    ensure!(
        failure.contains("The sign-in in your browser was not accepted."),
        "failure text {failure:?}"
    );
    wait_status(c, "Failed", UI_WAIT).await?;
    ensure!(
        wd(
            "password field",
            c.find(Locator::Css("input[name=password]"))
        )
        .await
        .is_err(),
        "a denied sign-in asks for the password again"
    );
    ensure!(
        browser.log().contains("denied"),
        "the page did not deny: {}",
        browser.log()
    );
    screens.view(c, "18-sign-in-denied").await?;
    let snap = snapshot(c).await?;
    let id = snap["profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Lab sign-in"))
        .and_then(|p| p["id"].as_str())
        .context("no sign-in profile in the snapshot")?
        .to_owned();
    ensure!(
        keyring::Entry::new(SECRET_SERVICE, &id)?
            .get_password()
            .is_err(),
        "a password was kept after a denied sign-in"
    );
    steps.done("6d sign-in denied -> clear failure, nothing kept");

    // CR_TEXT: the server's question in the window (echoed: the server's E flag), the
    // answer goes back through the helper and the server accepts it.
    select_profile(c, "Lab token").await?;
    connect_with_password(c, false).await?;
    wait_text(
        c,
        ".modal h2",
        "the server's question",
        Duration::from_secs(45),
        |t| t == "The server asks",
    )
    .await?;
    let question = wait_text(c, ".modal", "the question text", UI_WAIT, |t| {
        t.contains("Enter the code from your token")
    })
    .await?;
    eprintln!(
        "webview e2e: CR_TEXT dialog: {}",
        question.replace('\n', " | ")
    );
    let field = wd(
        "answer field",
        c.find(Locator::Css("input[name=challenge]")),
    )
    .await?;
    let kind = wd("answer field type", field.attr("type")).await?;
    ensure!(
        kind.as_deref() == Some("text"),
        "the echo flag asks for a visible field, not {kind:?}"
    );
    wd("type the code", field.send_keys(RIGHT_ANSWER)).await?;
    screens.view(c, "19-sign-in-cr-text").await?;
    click_button(c, "Send").await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    steps.done("6e CR_TEXT answered in the window -> connected");
    Ok(())
}
