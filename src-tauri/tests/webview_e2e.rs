//! The app end to end, in its real web view, against the real helper and server.
//!
//! tauri-driver + WebKitWebDriver drive the `oxivpn` binary (debug build, embedded UI)
//! on an Xvfb display and a private D-Bus session bus that the test starts itself (as
//! `xvfb-run -a dbus-run-session` would), with GNOME Keyring unlocked on it. The lab
//! (network namespaces, OpenVPN 2.6 server asking for a password) comes from
//! `oxivpn-e2e`; `oxivpn-helper service` runs in the client namespace on a socket in a
//! temporary folder, which the app, running outside the namespace, reaches by path.
//!
//! Root only. Needs tauri-driver (`cargo xtask test` installs it into
//! `<target>/tools/bin`; or `TAURI_DRIVER=path`) and Debian's webkit2gtk-driver, xvfb,
//! dbus-daemon and gnome-keyring. Without them it prints SKIPPED and passes, unless
//! `OXIVPN_APP_E2E=1` (set by `cargo xtask test`) says it must run.
//! Screenshots: `<target>/e2e-screens/`.
// WebKitGTK and its WebDriver: Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "webview_e2e/a11y.rs"]
mod a11y;
#[path = "webview_e2e/dark.rs"]
mod dark;
#[path = "webview_e2e/desktop.rs"]
mod desktop;
#[path = "webview_e2e/dialogs.rs"]
mod dialogs;
#[path = "webview_e2e/driver.rs"]
mod driver;
#[path = "webview_e2e/keyboard.rs"]
mod keyboard;
#[path = "webview_e2e/lab.rs"]
mod lab;
#[path = "webview_e2e/lockdown.rs"]
mod lockdown;
#[path = "webview_e2e/restart.rs"]
mod restart;
#[path = "webview_e2e/scenario.rs"]
mod scenario;
#[path = "webview_e2e/signin.rs"]
mod signin;
mod support;
#[path = "webview_e2e/tunnels.rs"]
mod tunnels;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fantoccini::ClientBuilder;
use oxivpn_e2e::{
    Addressing, ClientVariant, Lab, LabConfig, Role, ServerVariant, SsoMethod, SsoOptions,
    SIGN_IN_PORT,
};
use serde_json::json;

use desktop::{private_env, start_keyring, Desktop, Screens};
use driver::{find_program, free_port, prerequisites, target_dir, Group, Steps};
use lab::{start_helper, TestBrowser, REFUSED_PROFILE};
use scenario::{scenario, Rig};
use support::fake_nm;

const SECRET_SERVICE: &str = "org.oxivpn.app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webview_import_connect_remember_disconnect() -> anyhow::Result<()> {
    let Some((driver, native)) = prerequisites()? else {
        return Ok(());
    };
    let started = Instant::now();
    let work = tempfile::tempdir()?;
    let home = work.path().join("home");
    for d in ["data", "config", "cache", "run"] {
        std::fs::create_dir_all(home.join(d))?;
    }
    std::fs::set_permissions(
        home.join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let socket = work.path().join("helper.sock");
    let screens = Screens {
        dir: target_dir().join("e2e-screens"),
        import: find_program(None, "import", &[]),
        axe: tokio::sync::Mutex::new(a11y::Axe::load()?),
    };
    std::fs::create_dir_all(&screens.dir)?;

    let desktop = Desktop::start(work.path())?;
    // The keyring calls of this process (probe, read-back) go to the same bus; the
    // only test in this binary, so no other thread reads the environment meanwhile.
    std::env::set_var("DISPLAY", &desktop.display);
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &desktop.bus);
    let _keyring = start_keyring(&home, &socket)?;
    // The computer is on a Wi-Fi nobody trusted: the rule, once set, connects.
    let _nm = fake_nm::serve(&desktop.bus, "Airport Free WiFi", "HomeNet").await?;

    let mut lab = Lab::start(LabConfig {
        addressing: Addressing::Dhcp,
        ..LabConfig::reference()
    })?;
    let server = lab.start_server(&ServerVariant {
        user_pass: true,
        ..Default::default()
    })?;
    let lab_profile = lab.write_client_profile(&server, &ClientVariant::default(), "lab")?;
    let good = work.path().join("Lab office.ovpn");
    std::fs::write(&good, &lab_profile.text)?;
    // A second, split-tunnel server: its profile is connected while the first is up.
    // Its own address pool, so both tunnels can be up at once; a short
    // server-poll-timeout, so an attempt at a stopped server gives up within seconds.
    let split_server = lab.start_server_with(
        &ServerVariant {
            split_tunnel: true,
            ..Default::default()
        },
        |text| {
            text.replace(
                "server 10.8.0.0 255.255.255.0",
                &format!("server {} 255.255.255.0", tunnels::SPLIT_POOL),
            )
        },
    )?;
    let split_profile = lab.write_client_profile(
        &split_server,
        &ClientVariant {
            extra: vec!["server-poll-timeout 4".into()],
            ..ClientVariant::default()
        },
        "split",
    )?;
    let split = work.path().join("Lab split.ovpn");
    std::fs::write(&split, &split_profile.text)?;
    let bad = work.path().join("Refused.ovpn");
    std::fs::write(&bad, REFUSED_PROFILE)?;
    // A third server asks for a browser sign-in (a deferred auth script and its page).
    let sso = lab.start_sso_server(&SsoOptions::default())?;
    let sso_profile = lab.sso_profile(&sso, "signin")?;
    let signin = work.path().join("Lab sign-in.ovpn");
    std::fs::write(&signin, &sso_profile.text)?;
    let browser = TestBrowser::new(work.path(), lab.ns(Role::Cli)?.name())?;
    // A fourth asks a question instead (CR_TEXT), answered in the window.
    let code_server = lab.start_sso_server(&SsoOptions {
        method: SsoMethod::CrText,
        page_port: SIGN_IN_PORT + 10,
        ..SsoOptions::default()
    })?;
    let code_profile = lab.sso_profile(&code_server, "code")?;
    let code = work.path().join("Lab token.ovpn");
    std::fs::write(&code, &code_profile.text)?;
    let state = work.path().join("state");
    let mut helper = start_helper(&lab, &socket, &state)?;

    let port = free_port();
    let native_port = free_port();
    let mut cmd = Command::new(&driver);
    cmd.args(["--port", &port.to_string()])
        .args(["--native-port", &native_port.to_string()])
        .arg("--native-driver")
        .arg(&native);
    private_env(&mut cmd, &home, &socket);
    // A stand-in OpenVPN Access Server (https, its certificate from the lab CA, which
    // the app then trusts through SSL_CERT_FILE as it would a system root).
    let access = oxivpn_e2e::AccessServer::start(oxivpn_e2e::CertKind::LabCa)?;
    cmd.env("SSL_CERT_FILE", access.ca_file()?);
    browser.install(&mut cmd);
    let mut driver_proc = Group::spawn("tauri-driver", cmd, &work.path().join("driver.log"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("tauri-driver did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // tauri-driver forwards to WebKitWebDriver, which on a loaded machine listens only
    // seconds later: a session request before that fails with "tcp connect error".
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", native_port)).is_err() {
        if Instant::now() > deadline {
            bail!("WebKitWebDriver did not listen on {native_port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let app = env!("CARGO_BIN_EXE_oxivpn");
    let missing = work.path().join("Missing.ovpn");
    std::fs::write(&missing, dialogs::MISSING_PROFILE)?;
    let mut open_again = Command::new(app);
    open_again.arg(&missing).stdin(std::process::Stdio::null());
    private_env(&mut open_again, &home, &socket);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".into(),
        json!({ "application": app, "args": [bad.to_str(), good.to_str(), split.to_str(), signin.to_str(), code.to_str()] }),
    );
    let client = new_session(caps, port).await;
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "webview e2e: driver and app log:\n{}",
                std::fs::read_to_string(work.path().join("driver.log")).unwrap_or_default()
            );
            return Err(e);
        }
    };

    let result = match tokio::time::timeout(
        Duration::from_secs(240),
        scenario(
            &client,
            &screens,
            Rig {
                lab: &mut lab,
                helper: &mut helper,
                split: &split_server,
                socket: &socket,
                state: &state,
                tray: desktop.tray.is_some(),
                browser: &browser,
                open_again,
                access_server: access.address(),
            },
        ),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the scenario took over 240 s")),
    };
    // 11. Quit and start the app again: the profile ticked "Connect when OxiVPN starts"
    // connects by itself (a second WebDriver session, the same home and keyring).
    let result = match result {
        Ok(()) => restart_and_connect_on_start(&client, &screens, port).await,
        Err(e) => Err(e),
    };
    // 12. The main views once more in the dark theme, for axe (contrast above all).
    let result = match result {
        Ok(()) => dark::dark_pass(&screens, port, work.path()).await,
        Err(e) => Err(e),
    };
    // Accessibility: every view the scenario pictured, judged together.
    let result = match result {
        Ok(()) => screens.axe.lock().await.verdict(),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = screens.shot(&client, "failure").await;
        eprintln!(
            "webview e2e: app log:\n{}",
            std::fs::read_to_string(work.path().join("driver.log")).unwrap_or_default()
        );
        eprintln!("webview e2e: helper log:\n{}", helper.log_tail(40));
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    driver_proc.stop();
    eprintln!(
        "webview e2e: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    result
}

/// A WebDriver session through tauri-driver on `port`: starts the app.
async fn new_session(
    caps: serde_json::Map<String, serde_json::Value>,
    port: u16,
) -> anyhow::Result<fantoccini::Client> {
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .context("WebDriver session did not start within 60 s")
    .and_then(|r| r.context("starting the app through tauri-driver"))
}

/// Step 11: ticks the start rule, quits the app (the first session ends), starts it
/// again without files and waits for the profile to connect by itself.
async fn restart_and_connect_on_start(
    first: &fantoccini::Client,
    screens: &Screens,
    port: u16,
) -> anyhow::Result<()> {
    let mut steps = Steps::new();
    let id = restart::tick_on_start(first, &mut steps).await?;
    tokio::time::timeout(Duration::from_secs(10), first.clone().close())
        .await
        .context("closing the first app session")?
        .context("closing the first app session")?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".into(),
        json!({ "application": env!("CARGO_BIN_EXE_oxivpn"), "args": [] }),
    );
    let launched = Instant::now();
    let second = new_session(caps, port).await?;
    let result = restart::connects_on_start(&second, screens, &id, launched).await;
    if result.is_err() {
        let _ = screens.shot(&second, "failure").await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), second.close()).await;
    result
}
