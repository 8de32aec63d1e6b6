//! The scenario, step by step, in the real window.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use oxivpn_e2e::{addr, Lab, Proc, Role, ServerHandle, PASSWORD, USERNAME};

use crate::desktop::{tray_shots, Screens};
use crate::dialogs::other_dialogs;
use crate::driver::*;
use crate::keyboard::{focus, press, tab_to, type_text};
use crate::lab::TestBrowser;
use crate::signin::sign_in;
use crate::tunnels::{helper_restarted, two_tunnels_and_server_down};
use crate::SECRET_SERVICE;

/// The stored id of the profile named `name`.
async fn profile_id(c: &Client, name: &str) -> anyhow::Result<String> {
    let snap = snapshot(c).await?;
    snap["profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .and_then(|p| p["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no profile {name:?} in the snapshot"))
}

async fn remember_box(c: &Client) -> anyhow::Result<fantoccini::elements::Element> {
    wd("remember box", c.find(Locator::Css("input[name=remember]"))).await
}

/// What the scenario drives besides the window.
pub struct Rig<'a> {
    pub lab: &'a mut Lab,
    pub helper: &'a mut Proc,
    /// The split-tunnel server (pool 10.9.0.0/24), stopped and started again.
    pub split: &'a ServerHandle,
    pub socket: &'a Path,
    pub state: &'a Path,
    pub tray: bool,
    pub browser: &'a TestBrowser,
    /// Starts the app again with a profile whose files are missing.
    pub open_again: std::process::Command,
    /// The stand-in Access Server's address (`https://localhost:PORT`).
    pub access_server: String,
}

pub async fn scenario(c: &Client, screens: &Screens, rig: Rig<'_>) -> anyhow::Result<()> {
    let Rig {
        lab,
        helper,
        split,
        socket,
        state: state_dir,
        tray,
        browser,
        open_again,
        access_server,
    } = rig;
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
    screens.view(c, "01-import-refused").await?;
    click_button(c, "Close").await?;
    steps.done("1 refused profile's report");

    // 2. The good profile's report: usable, with a "Connect now" button. From here to
    // the connection, only the keyboard: the dialog holds the focus (Tab and Shift+Tab
    // go round inside it), Escape closes it.
    wait_text(c, ".modal h2", "the second import report", UI_WAIT, |t| {
        t.contains("Lab office")
    })
    .await?;
    screens.view(c, "02-import-report").await?;
    let f = focus(c).await?;
    ensure!(f.in_modal, "the open report does not hold the focus: {f:?}");
    for (shift, n) in [(false, 12), (true, 4)] {
        for _ in 0..n {
            press(c, Key::Tab, shift).await?;
            let f = focus(c).await?;
            ensure!(
                f.in_modal && f.ring,
                "Tab (shift {shift}) left the dialog or hid the focus: {f:?}"
            );
        }
    }
    for (next, name) in [
        ("third", "Lab split"),
        ("fourth", "Lab sign-in"),
        ("fifth", "Lab token"),
    ] {
        press(c, Key::Escape, false).await?;
        wait_text(
            c,
            ".modal h2",
            &format!("the {next} import report"),
            UI_WAIT,
            |t| t.contains(name),
        )
        .await?;
    }
    press(c, Key::Escape, false).await?;
    // The last report closed: the focus is on the profile just imported, in the list.
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let f = focus(c).await?;
        if f.id.starts_with("profile-") && f.text.contains("Lab token") {
            ensure!(f.ring, "the imported profile has the focus unseen: {f:?}");
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "after the last report the focus is on {f:?}, not the imported profile"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Arrow keys walk the list (and select); Enter would too.
    let mut on_office = false;
    for _ in 0..5 {
        press(c, Key::Up, false).await?;
        let f = focus(c).await?;
        ensure!(f.ring, "a profile has the focus unseen: {f:?}");
        if f.text.contains("Lab office") {
            on_office = true;
            break;
        }
    }
    ensure!(on_office, "ArrowUp never reached Lab office");
    wait_text(
        c,
        ".status-card h2",
        "the profile's status card",
        UI_WAIT,
        |t| t == "Lab office",
    )
    .await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    screens.view(c, "03-main").await?;
    steps.done("2 reports closed and a profile chosen by keyboard");

    // 3. Connect by keyboard: the server wants a password. A wrong one first, with
    // Remember ticked: the real server's auth-user-pass-verify refuses it, the window
    // says so and asks again, and nothing is kept. Then the right one, remembered.
    tab_to(c, "the Connect button", false, 25, |f| {
        f.tag == "BUTTON" && f.text == "Connect"
    })
    .await?;
    press(c, Key::Enter, false).await?;
    wait_text(c, ".modal h2", "the credentials dialog", UI_WAIT, |t| {
        t.starts_with("Sign in to")
    })
    .await?;
    let f = focus(c).await?;
    ensure!(
        f.in_modal && f.name == "username",
        "the dialog did not focus the user name: {f:?}"
    );
    type_text(c, USERNAME).await?;
    tab_to(c, "the password field", false, 3, |f| f.name == "password").await?;
    type_text(c, "not the password").await?;
    tab_to(c, "Remember", false, 4, |f| f.name == "remember").await?;
    press(c, Key::Space, false).await?;
    let remember = wd("remember box", c.find(Locator::Css("input[name=remember]"))).await?;
    ensure!(
        wd("remember state", remember.is_selected()).await?,
        "Space did not tick Remember"
    );
    screens.view(c, "04-credentials").await?;
    tab_to(c, "the dialog's Connect button", false, 6, |f| {
        f.in_modal && f.tag == "BUTTON" && f.text == "Connect"
    })
    .await?;
    press(c, Key::Enter, false).await?;
    let said = wait_text(
        c,
        ".modal .form-error",
        "the wrong password's message",
        Duration::from_secs(45),
        |t| !t.is_empty(),
    )
    .await?;
    ensure!(
        said.contains("did not accept your user name or password"),
        "wrong password message {said:?}"
    );
    let office_id = profile_id(c, "Lab office").await?;
    ensure!(
        keyring::Entry::new(SECRET_SERVICE, &office_id)?
            .get_password()
            .is_err(),
        "a refused password was kept in the keyring"
    );
    let f = focus(c).await?;
    ensure!(f.in_modal, "the second ask does not hold the focus: {f:?}");
    screens.view(c, "20-wrong-password").await?;
    steps.done("3a wrong password refused by the server, asked again, nothing kept");
    tab_to(c, "the password field", false, 3, |f| f.name == "password").await?;
    type_text(c, PASSWORD).await?;
    tab_to(c, "Remember", false, 4, |f| f.name == "remember").await?;
    if !wd("remember state", remember_box(c).await?.is_selected()).await? {
        press(c, Key::Space, false).await?;
    }
    ensure!(wd("remember state", remember_box(c).await?.is_selected()).await?);
    tab_to(c, "the dialog's Connect button", false, 6, |f| {
        f.in_modal && f.tag == "BUTTON" && f.text == "Connect"
    })
    .await?;
    press(c, Key::Enter, false).await?;
    wait_status(c, "Connected", Duration::from_secs(45)).await?;
    let address = fact(c, "Your VPN address").await?;
    ensure!(address.starts_with("10.8.0."), "tunnel address {address:?}");
    // The dialog gave the focus back to the button that opened it, now Disconnect.
    let f = focus(c).await?;
    ensure!(
        f.tag == "BUTTON" && f.text == "Disconnect" && f.ring,
        "after connecting the focus is on {f:?}, not a visible Disconnect"
    );
    steps.done("3b right password by keyboard -> connected, focus on Disconnect");
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
    screens.view(c, "05-connected").await?;
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
    screens.view(c, "13-second-tunnel-refused").await?;
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
    screens.view(c, "16-leak-check").await?;
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
    screens.view(c, "06-routes").await?;
    click_button(c, "Log").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screens.view(c, "07-log").await?;
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
    screens.view(c, "10-settings-protection").await?;
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
    screens.view(c, "14-settings-german").await?;
    click_input(c, "select[name=language] option[value='']").await?;
    wait_text(c, "#tab-settings", "the English tab name", UI_WAIT, |t| {
        t == "Settings"
    })
    .await?;
    click_button(c, "Connection").await?;
    steps.done("5 routes, log and settings views");

    // 6. Disconnect, by keyboard from the tab bar.
    tab_to(c, "the Disconnect button", false, 30, |f| {
        f.tag == "BUTTON" && f.text == "Disconnect"
    })
    .await?;
    press(c, Key::Enter, false).await?;
    wait_status(c, "Not connected", UI_WAIT).await?;
    let f = focus(c).await?;
    ensure!(
        f.tag == "BUTTON" && f.text == "Connect" && f.ring,
        "after disconnecting the focus is on {f:?}"
    );
    steps.done("6 disconnect");

    // 6a. Lockdown: blocked while disconnected, connected under it, turned off.
    crate::lockdown::lockdown(c, screens, lab, &mut steps).await?;

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
    screens.view(c, "11-profile-protection").await?;
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
    screens.view(c, "15-trusted-networks").await?;
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
    screens.view(c, "12-connected-kill-switch-off").await?;
    steps.done("8 untrusted network connects by itself (saved password, kill switch off)");
    // 8b/8c. With this one's kill switch off, a split-tunnel profile runs beside it.
    two_tunnels_and_server_down(c, screens, lab, split, tray, &mut steps).await?;
    // 9. The helper service dies and comes back.
    helper_restarted(c, screens, lab, helper, socket, state_dir, &mut steps).await?;
    // 10. The dialogs not met so far.
    other_dialogs(c, screens, open_again, &access_server, &mut steps).await?;
    Ok(())
}
