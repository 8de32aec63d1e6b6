//! The scenario, step by step, in the real window.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use fantoccini::{Client, Locator};
use oxivpn_e2e::{addr, Lab, Proc, Role, PASSWORD, USERNAME};

use crate::desktop::{tray_shots, Screens};
use crate::driver::*;
use crate::lab::TestBrowser;
use crate::signin::sign_in;
use crate::SECRET_SERVICE;

pub async fn scenario(
    c: &Client,
    screens: &Screens,
    lab: &Lab,
    helper: &mut Proc,
    tray: bool,
    browser: &TestBrowser,
) -> anyhow::Result<()> {
    let mut steps = Steps::new();
    // 1. The refused profile's report comes first: it names the lines.
    let title = wait_text(c, ".modal h2", "the first import report", UI_WAIT, |t| {
        t.contains("Refused.ovpn")
    })
    .await?;
    ensure!(title.starts_with("Could not import"), "title {title:?}");
    // Each refused line is a row: line number, directive, verdict.
    for (line, directive) in [("5", "script-security"), ("6", "up")] {
        let xpath = format!(
            "//table[contains(@class,'findings')]//tr[td[1][normalize-space()='{line}'] and td[2][normalize-space()='{directive}']]"
        );
        let row = wd(&xpath, c.find(Locator::XPath(&xpath)))
            .await
            .with_context(|| format!("no row for line {line} `{directive}` in the report"))?;
        let text = wd("row text", row.text()).await?;
        ensure!(text.contains("Refused"), "line {line} not refused: {text}");
    }
    screens.shot(c, "01-import-refused").await?;
    click_button(c, "Close").await?;
    steps.done("1 refused profile's report");

    // 2. The good profile's report: usable, with a "Connect now" button.
    wait_text(c, ".modal h2", "the second import report", UI_WAIT, |t| {
        t.contains("Lab office")
    })
    .await?;
    screens.shot(c, "02-import-report").await?;
    click_button(c, "Close").await?;
    wait_text(c, ".modal h2", "the third import report", UI_WAIT, |t| {
        t.contains("Lab split")
    })
    .await?;
    click_button(c, "Close").await?;
    for (nth, name) in [("fourth", "Lab sign-in"), ("fifth", "Lab token")] {
        wait_text(
            c,
            ".modal h2",
            &format!("the {nth} import report"),
            UI_WAIT,
            |t| t.contains(name),
        )
        .await?;
        click_button(c, "Close").await?;
    }
    select_profile(c, "Lab office").await?;
    wait_text(
        c,
        ".status-card h2",
        "the profile's status card",
        UI_WAIT,
        |t| t == "Lab office",
    )
    .await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    screens.shot(c, "03-main").await?;
    steps.done("2 good profile's report");

    // 3. Connect: the server wants a password; remember it.
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
    let remember = wd("remember box", c.find(Locator::Css("input[name=remember]"))).await?;
    if !wd("remember state", remember.is_selected()).await? {
        wd("tick remember", remember.click()).await?;
    }
    ensure!(wd("remember state", remember.is_selected()).await?);
    screens.shot(c, "04-credentials").await?;
    click_button(c, "Connect").await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    let address = fact(c, "Your VPN address").await?;
    ensure!(address.starts_with("10.8.0."), "tunnel address {address:?}");
    steps.done("3 connect with a typed password");
    // What the helper reports: the lab pushes redirect-gateway, so the automatic kill
    // switch is on, and the cipher comes from its session details.
    let protection = wait_text(
        c,
        "[data-testid=protection]",
        "the protection line",
        UI_WAIT,
        |t| t.contains("automatic"),
    )
    .await?;
    ensure!(
        protection.starts_with("Kill switch on")
            && protection.contains("your global setting")
            && protection.contains("all your traffic goes through the VPN"),
        "protection line {protection:?}"
    );
    let cipher = fact(c, "Cipher").await?;
    ensure!(
        cipher.contains("GCM") || cipher.contains("CHACHA"),
        "cipher {cipher:?}"
    );

    // 4. Traffic through the tunnel moves the counters.
    let before = fact(c, "Received").await?;
    let ping = lab.ping(Role::Cli, addr::TARGET, 5, Duration::from_millis(100))?;
    ensure!(
        ping.received > 0,
        "no reply from {} through the tunnel",
        addr::TARGET
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = fact(c, "Received").await?;
        if now != before {
            eprintln!("webview e2e: Received went from {before} to {now}");
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the Received counter stayed at {before} after {} pings answered",
            ping.received
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    screens.shot(c, "05-connected").await?;
    steps.done("4 traffic moves the counters");

    // 4b. Several tunnels: a second profile while the first (all traffic, kill switch
    // on) is up. The real helper refuses it; the window says why, the list shows both.
    select_profile(c, "Lab split").await?;
    click_button(c, "Connect").await?;
    let refusal = wait_text(
        c,
        ".status-card .error-box",
        "the refusal of a second tunnel",
        Duration::from_secs(45),
        |t| t.contains("kill switch"),
    )
    .await?;
    ensure!(
        refusal.contains("Another VPN connection's kill switch blocks this one."),
        "refusal {refusal:?}"
    );
    let states = wait_text(
        c,
        "//ul[contains(@class,'profile-list')]",
        "both profiles' states in the list",
        UI_WAIT,
        |t| t.contains("Connected") && t.contains("Failed"),
    )
    .await?;
    eprintln!("webview e2e: profile list: {}", states.replace('\n', " | "));
    screens.shot(c, "13-second-tunnel-refused").await?;
    select_profile(c, "Lab office").await?;
    wait_status(c, "Connected", UI_WAIT).await?;
    steps.done("4b second tunnel refused by the helper, first stays up");
    // 4c. Check for leaks: the real helper looks at the lab's routes, DNS and firewall.
    click_button(c, "Check for leaks").await?;
    let summary = wait_text(
        c,
        ".leak-summary",
        "the leak check's summary",
        Duration::from_secs(20),
        |t| !t.is_empty(),
    )
    .await?;
    let checks = wait_text(c, ".leak-list", "the leak checks", UI_WAIT, |t| {
        !t.is_empty()
    })
    .await?;
    eprintln!(
        "webview e2e: leak check: {summary} | {}",
        checks.replace('\n', " | ")
    );
    ensure!(
        summary.starts_with("No leak found."),
        "leak check {summary:?}: {checks}"
    );
    for line in [
        "Goes into the tunnel (oxi",
        "On: if the tunnel drops, nothing leaves outside it.",
        "The VPN’s gateway answered through the tunnel.",
    ] {
        ensure!(checks.contains(line), "leak check lacks {line:?}: {checks}");
    }
    // The results sit below the status card: bring them into the picture.
    wd(
        "scroll to the leak check",
        c.execute(
            "document.querySelector('.leak-check').scrollIntoView({ block: 'start' });",
            vec![],
        ),
    )
    .await?;
    screens.shot(c, "16-leak-check").await?;
    steps.done("4c check for leaks: all pass while connected");
    if tray {
        tray_shots(screens, "09-tray-connected");
    }

    // The details pane now says the password is kept (saved once the server accepted it).
    wait_text(
        c,
        "//dt[normalize-space()='Saved password']/following-sibling::dd",
        "the saved-password line",
        UI_WAIT,
        |t| t.starts_with("In the system keyring"),
    )
    .await?;

    // 5. Routes: the helper explains where 10.0.0.3 goes.
    click_button(c, "Routes").await?;
    let input = wd(
        "address box",
        c.wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css("input[aria-label='IP address']")),
    )
    .await?;
    wd("type address", input.send_keys(addr::TARGET)).await?;
    click_button(c, "Check").await?;
    let verdict = wait_text(c, ".route-result", "the route check", UI_WAIT, |t| {
        !t.is_empty()
    })
    .await?;
    ensure!(
        wd("route result", c.find(Locator::Css(".route-result.in")))
            .await
            .is_ok(),
        "10.0.0.3 must go through the tunnel: {verdict}"
    );
    screens.shot(c, "06-routes").await?;
    click_button(c, "Log").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screens.shot(c, "07-log").await?;
    click_button(c, "Settings").await?;
    wait_text(
        c,
        "#protection-title",
        "the protection settings",
        UI_WAIT,
        |t| t.eq_ignore_ascii_case("Protection"),
    )
    .await?;
    wait_text(c, "#lockdown-title", "the lockdown notice", UI_WAIT, |t| {
        t.contains("while disconnected")
    })
    .await?;
    screens.shot(c, "10-settings-protection").await?;
    // The language setting: German at once, tray included; then back to the system's.
    click_input(c, "select[name=language] option[value='de']").await?;
    wait_text(c, "#tab-settings", "the German tab name", UI_WAIT, |t| {
        t == "Einstellungen"
    })
    .await?;
    wait_text(c, "#protection-title", "German settings", UI_WAIT, |t| {
        t.eq_ignore_ascii_case("Schutz")
    })
    .await?;
    screens.shot(c, "14-settings-german").await?;
    click_input(c, "select[name=language] option[value='']").await?;
    wait_text(c, "#tab-settings", "the English tab name", UI_WAIT, |t| {
        t == "Settings"
    })
    .await?;
    click_button(c, "Connection").await?;
    steps.done("5 routes, log and settings views");

    // 6. Disconnect.
    click_button(c, "Disconnect").await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    steps.done("6 disconnect");

    // 6b. Browser sign-in against the deferred-auth server: accepted, then denied.
    sign_in(c, screens, browser, &mut steps).await?;
    select_profile(c, "Lab office").await?;

    // 7. The password is in the real Secret Service, under the profile's id.
    let snap = snapshot(c).await?;
    let id = snap["profiles"][0]["id"]
        .as_str()
        .context("no profile id in the snapshot")?
        .to_owned();
    let stored = keyring::Entry::new(SECRET_SERVICE, &id)?.get_password()?;
    let stored: serde_json::Value = serde_json::from_str(&stored)?;
    ensure!(
        stored["username"] == USERNAME,
        "saved user name {}",
        stored["username"]
    );
    ensure!(stored["password"] == PASSWORD, "the saved password differs");

    // 7b. This profile gets its own protection: kill switch off. The helper's session
    // details must then say the kill switch is off (the toggle reached the helper).
    click_input(c, "input[name=use-global-protection]").await?;
    click_input(c, "input[name=profile-kill][value=off]").await?;
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let snap = snapshot(c).await?;
        if snap["settings"]["profileProtection"][&id]["killSwitch"] == "off" {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the profile's own setting was not saved: {}",
            snap["settings"]
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    screens.shot(c, "11-profile-protection").await?;
    steps.done("7 keyring holds the password; own protection set");

    // 8. The trusted-networks rule: on an untrusted Wi-Fi, choosing "Lab office" for
    // other networks connects it by itself (the saved password, no dialog); then the
    // helper dies mid-session and the window says so.
    click_button(c, "Settings").await?;
    click_input(
        c,
        "select[name=untrusted-profile] option[value='Lab office']",
    )
    .await?;
    let rule_set = Instant::now();
    let state = wait_text(
        c,
        "[data-testid=network-state]",
        "the rule's decision",
        UI_WAIT,
        |t| t.contains("not trusted"),
    )
    .await?;
    ensure!(
        state.contains("Airport Free WiFi"),
        "network state {state:?}"
    );
    screens.shot(c, "15-trusted-networks").await?;
    click_button(c, "Connection").await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    eprintln!(
        "webview e2e: untrusted network -> connected {:.1} s after the rule was set",
        rule_set.elapsed().as_secs_f64()
    );
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    ensure!(
        wd(
            "password field",
            c.find(Locator::Css("input[name=password]"))
        )
        .await
        .is_err(),
        "no credentials dialog with a saved password"
    );
    let protection = wait_text(
        c,
        "[data-testid=protection]",
        "the protection line",
        UI_WAIT,
        |t| t.contains("this profile's setting"),
    )
    .await?;
    ensure!(
        protection.starts_with("Kill switch off"),
        "the helper did not take the profile's 'off': {protection:?}"
    );
    screens.shot(c, "12-connected-kill-switch-off").await?;
    steps.done("8 untrusted network connects by itself (saved password, kill switch off)");
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
    screens.shot(c, "08-helper-stopped").await?;
    steps.done("9 helper stopped mid-session is explained");
    Ok(())
}
