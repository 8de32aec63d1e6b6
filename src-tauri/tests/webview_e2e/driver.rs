//! WebDriver plumbing: processes, bounded round trips, waits on the window's text.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fantoccini::{Client, Locator};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Longest wait for anything the window should show.
pub const UI_WAIT: Duration = Duration::from_secs(30);

/// A process group (tauri-driver -> WebKitWebDriver -> oxivpn, or the keyring daemon),
/// stopped as a whole on drop: SIGTERM, a bounded wait, SIGKILL.
pub struct Group {
    name: &'static str,
    pub child: Child,
}

impl Group {
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log)?;
        cmd.stdout(out.try_clone()?).stderr(out).process_group(0);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child })
    }

    pub fn stop(&mut self) {
        let pgid = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (the app may outlive the driver).
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        eprintln!("webview e2e: stopping {}", self.name);
        self.stop();
    }
}

pub fn target_dir() -> PathBuf {
    // <target>/debug/deps/webview_e2e-hash
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

pub fn find_program(env: Option<&str>, name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if let Some(p) = env.and_then(std::env::var_os) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether root and the drivers are here; a notice (or, with `OXIVPN_APP_E2E=1`, a
/// failure) when not.
pub fn prerequisites() -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let must = std::env::var("OXIVPN_APP_E2E").is_ok_and(|v| v == "1");
    if !oxivpn_e2e::root_or_skip("webview_e2e") {
        if must {
            bail!("OXIVPN_APP_E2E=1 but not root");
        }
        return Ok(None);
    }
    let driver = find_program(
        Some("TAURI_DRIVER"),
        "tauri-driver",
        &[target_dir().join("tools/bin")],
    );
    let native = find_program(Some("WEBKIT_WEBDRIVER"), "WebKitWebDriver", &[]);
    let missing: Vec<&str> = [
        ("tauri-driver", driver.is_some()),
        ("WebKitWebDriver (webkit2gtk-driver)", native.is_some()),
        ("Xvfb", find_program(None, "Xvfb", &[]).is_some()),
        (
            "dbus-daemon",
            find_program(None, "dbus-daemon", &[]).is_some(),
        ),
        (
            "gnome-keyring-daemon",
            find_program(None, "gnome-keyring-daemon", &[]).is_some(),
        ),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(what, _)| what)
    .collect();
    if !missing.is_empty() {
        let msg = format!(
            "webview_e2e: missing {}; `cargo xtask test` installs them",
            missing.join(", ")
        );
        if must {
            bail!(msg);
        }
        eprintln!("SKIPPED {msg}");
        return Ok(None);
    }
    Ok(driver.zip(native))
}

/// Waits (bounded) until `path` exists.
pub fn wait_path(path: &Path, what: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            bail!(
                "{what} did not appear at {} within {timeout:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// One WebDriver round trip, bounded: a stuck driver fails the step instead of hanging.
pub async fn wd<T, E>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(r) => r.with_context(|| format!("WebDriver: {what}")),
        Err(_) => bail!("WebDriver: {what} got no answer within 20 s"),
    }
}

/// The text of the page, for failure messages.
pub async fn page_text(c: &Client) -> String {
    match wd("find body", c.find(Locator::Css("body"))).await {
        Ok(b) => wd("body text", b.text()).await.unwrap_or_default(),
        Err(e) => format!("<no body: {e}>"),
    }
}

/// Polls `css` (a CSS selector, or an XPath starting with '/') until its text
/// satisfies `ok`; returns that text.
pub async fn wait_text(
    c: &Client,
    css: &str,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        // An XPath when it starts with '/', else CSS.
        let loc = if css.starts_with('/') {
            Locator::XPath(css)
        } else {
            Locator::Css(css)
        };
        if let Ok(els) = wd(css, c.find_all(loc)).await {
            for e in els {
                if let Ok(t) = wd("text", e.text()).await {
                    if ok(&t) {
                        return Ok(t);
                    }
                    last = t;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    bail!(
        "waited {timeout:?} for {what} ({css}); last text {last:?}; page:\n{}",
        page_text(c).await
    )
}

/// Clicks the button whose visible text is `label` (waits for it to appear).
pub async fn click_button(c: &Client, label: &str) -> anyhow::Result<()> {
    let xpath = format!("//button[normalize-space()='{label}']");
    let deadline = Instant::now() + UI_WAIT;
    loop {
        match wd(&xpath, c.find(Locator::XPath(&xpath))).await {
            Ok(b) => {
                eprintln!("webview e2e: click {label:?}");
                return wd(&format!("click {label:?}"), b.click()).await;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(150)).await
            }
            Err(e) => bail!("no button {label:?}: {e}; page:\n{}", page_text(c).await),
        }
    }
}

/// The pill's text must settle on `want`.
pub async fn wait_status(c: &Client, want: &str, timeout: Duration) -> anyhow::Result<()> {
    wait_text(c, ".status-card .pill", want, timeout, |t| t == want)
        .await
        .map(|_| ())
}

/// Value of one line of the connected view's facts ("Received" -> "1.2 KB").
pub async fn fact(c: &Client, label: &str) -> anyhow::Result<String> {
    let xpath = format!("//dl[contains(@class,'facts')]//div[dt[normalize-space()='{label}']]/dd");
    let el = wd(&xpath, c.find(Locator::XPath(&xpath))).await?;
    wd("fact text", el.text()).await
}

/// The app's own view of its profiles, through the same command the window uses.
pub async fn snapshot(c: &Client) -> anyhow::Result<serde_json::Value> {
    wd(
        "get_snapshot",
        c.execute(
            "return window.__TAURI_INTERNALS__.invoke('get_snapshot')",
            vec![],
        ),
    )
    .await
}

/// Prints how long each step of the scenario took (the figures in the issue note).
pub struct Steps {
    start: Instant,
    last: Instant,
}

impl Steps {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
        }
    }
    pub fn done(&mut self, what: &str) {
        let now = Instant::now();
        eprintln!(
            "webview e2e: STEP {what}: {:.1} s (at {:.1} s)",
            (now - self.last).as_secs_f64(),
            (now - self.start).as_secs_f64()
        );
        self.last = now;
    }
}

/// Selects a profile in the sidebar list by its name.
pub async fn select_profile(c: &Client, name: &str) -> anyhow::Result<()> {
    let xpath = format!(
        "//button[contains(@class,'profile-item')][.//span[@class='profile-name' and normalize-space()='{name}']]"
    );
    let el = wd(
        &xpath,
        c.wait()
            .at_most(UI_WAIT)
            .for_element(Locator::XPath(&xpath)),
    )
    .await?;
    wd(&format!("select {name}"), el.click()).await?;
    wait_text(c, ".status-card h2", "the selected profile", UI_WAIT, |t| {
        t == name
    })
    .await
    .map(|_| ())
}

/// Clicks the form control matching `css` (a checkbox, radio or option), bounded wait.
pub async fn click_input(c: &Client, css: &str) -> anyhow::Result<()> {
    let el = wd(
        css,
        c.wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css)),
    )
    .await?;
    wd(&format!("click {css}"), el.click()).await
}

/// Brings the connection's status card to the top of the view (for the picture).
pub async fn scroll_to_status(c: &Client) -> anyhow::Result<()> {
    wd(
        "scroll to the status card",
        c.execute(
            "document.querySelector('.status-card')?.scrollIntoView({ block: 'start' });",
            vec![],
        ),
    )
    .await
    .map(|_| ())
}
