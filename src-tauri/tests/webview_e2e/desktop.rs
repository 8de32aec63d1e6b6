//! The private desktop: an X display, a session bus, the Secret Service, screenshots.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fantoccini::Client;

use crate::a11y::Axe;
use crate::driver::{find_program, wait_path, Group};

pub const KEYRING_PASSWORD: &str = "e2e-keyring";

/// A display and a session bus of our own (what `xvfb-run -a dbus-run-session` gives),
/// so the test neither needs nor touches the caller's desktop.
/// Fields drop in order: tray host, bus, display.
pub struct Desktop {
    /// An XEmbed tray (trayer) when installed: the app's tray icon shows there through
    /// libayatana-appindicator's fallback, as there is no StatusNotifier watcher.
    pub tray: Option<Group>,
    _bus: Group,
    _x: Group,
    pub display: String,
    pub bus: String,
}

impl Desktop {
    pub fn start(work: &Path) -> anyhow::Result<Self> {
        // A free display number: no lock file and no socket.
        let n = (100..400)
            .map(|i| i + std::process::id() % 300)
            .find(|n| {
                !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                    && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .context("no free X display number")?;
        let mut x = Command::new("Xvfb");
        x.arg(format!(":{n}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"]);
        let x = Group::spawn("Xvfb", x, &work.join("xvfb.log"))?;
        wait_path(
            Path::new(&format!("/tmp/.X11-unix/X{n}")),
            "the Xvfb socket",
            Duration::from_secs(15),
        )?;
        let sock = work.join("bus");
        // No service directories: nothing is started on demand, so the Secret Service
        // is ours (unlocked) and never a second, locked daemon activated by a lookup.
        let config = work.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                sock.display()
            ),
        )?;
        let mut bus = Command::new("dbus-daemon");
        bus.args(["--nofork", "--nopidfile"])
            .arg(format!("--config-file={}", config.display()));
        let bus = Group::spawn("dbus-daemon", bus, &work.join("dbus.log"))?;
        wait_path(&sock, "the session bus socket", Duration::from_secs(15))?;
        let tray = match find_program(None, "trayer", &[]) {
            Some(trayer) => {
                let mut t = Command::new(trayer);
                t.env("DISPLAY", format!(":{n}"))
                    .env(
                        "DBUS_SESSION_BUS_ADDRESS",
                        format!("unix:path={}", sock.display()),
                    )
                    .args(["--edge", "top", "--align", "right", "--widthtype", "pixel"])
                    .args(["--width", "160", "--heighttype", "pixel", "--height", "36"])
                    .args([
                        "--transparent",
                        "false",
                        "--tint",
                        "0x2b2b2b",
                        "--expand",
                        "false",
                    ]);
                Some(Group::spawn("trayer", t, &work.join("trayer.log"))?)
            }
            None => {
                eprintln!("webview e2e: NOTICE: no trayer; no tray screenshot");
                None
            }
        };
        Ok(Self {
            _x: x,
            _bus: bus,
            tray,
            display: format!(":{n}"),
            bus: format!("unix:path={}", sock.display()),
        })
    }
}

/// Environment shared by the keyring daemon and the app: a private home.
pub fn private_env(cmd: &mut Command, home: &Path, socket: &Path) {
    cmd.env("HOME", home)
        .env("DISPLAY", std::env::var_os("DISPLAY").unwrap_or_default())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default(),
        )
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("OXIVPN_SOCKET", socket)
        // NetworkManager for the trusted-networks rule: ours, on the private bus.
        .env(
            oxivpn_app::autoconnect::nm::BUS_ENV,
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default(),
        )
        .env("NO_AT_BRIDGE", "1")
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .env("RUST_LOG", "info");
}

/// GNOME Keyring with only the Secret Service, its login keyring created and unlocked
/// with a password we give it; waits until a secret can be stored.
pub fn start_keyring(home: &Path, socket: &Path) -> anyhow::Result<Group> {
    let mut cmd = Command::new("gnome-keyring-daemon");
    cmd.args(["--foreground", "--unlock", "--components=secrets"])
        .stdin(Stdio::piped());
    private_env(&mut cmd, home, socket);
    let mut g = Group::spawn("gnome-keyring-daemon", cmd, &home.join("keyring.log"))?;
    {
        let mut stdin = g.child.stdin.take().context("keyring stdin")?;
        stdin.write_all(KEYRING_PASSWORD.as_bytes())?;
    } // closed: the daemon reads the password up to EOF
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let probe = keyring::Entry::new("org.oxivpn.e2e-probe", "probe")?;
        match probe.set_password("ready") {
            Ok(()) => {
                let _ = probe.delete_credential();
                return Ok(g);
            }
            Err(e) if Instant::now() > deadline => {
                bail!(
                    "the Secret Service did not become usable: {e}; daemon log:\n{}",
                    std::fs::read_to_string(home.join("keyring.log")).unwrap_or_default()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Screenshots of the window, taken from the X display with ImageMagick's `import`:
/// WebKitWebDriver's own screenshot command stops answering once the page is idle
/// (WebKitGTK 2.50 under Xvfb), so it is not used. Without `import`, a notice.
/// Each view pictured is also an accessibility checkpoint ([`Screens::view`]).
pub struct Screens {
    pub dir: PathBuf,
    pub import: Option<PathBuf>,
    pub axe: tokio::sync::Mutex<Axe>,
}

impl Screens {
    /// A view the scenario reached: axe-core checks it, then it is pictured.
    pub async fn view(&self, c: &Client, name: &str) -> anyhow::Result<()> {
        self.axe.lock().await.check(c, name).await?;
        self.shot(c, name).await
    }

    pub async fn shot(&self, _c: &Client, name: &str) -> anyhow::Result<()> {
        let Some(import) = &self.import else {
            eprintln!("webview e2e: NOTICE: no ImageMagick `import`; no screenshot {name}");
            return Ok(());
        };
        // Let transitions and the graph settle; the content is already asserted.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let path = self.dir.join(format!("{name}.png"));
        // No window manager: the 960x640 window sits at the top left.
        let out = Command::new(import)
            .args(["-window", "root", "-crop", "960x640+0+0", "+repage"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()?;
        // A picture is evidence for people, not the assertion: never fail on it.
        if out.status.success() {
            eprintln!("webview e2e: screenshot {}", path.display());
        } else {
            eprintln!(
                "webview e2e: NOTICE: import failed for {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// The whole X screen (window, tray icon and, if it opens, the tray menu) into
/// `<name>.png` and `<name>-menu.png`; best effort, as it depends on optional tools
/// (trayer, xdotool, ImageMagick's import).
pub fn tray_shots(screens: &Screens, name: &str) {
    let run = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let shot = |file: &str| {
        let path = screens.dir.join(file);
        if run(&[
            "import",
            "-window",
            "root",
            path.to_str().unwrap_or_default(),
        ]) {
            eprintln!("webview e2e: screenshot {}", path.display());
        } else {
            eprintln!("webview e2e: NOTICE: `import` failed; no {file}");
        }
    };
    shot(&format!("{name}.png"));
    // trayer sits top right (1280-160..1280, 0..36); our icon is the only one and
    // trayer aligns them right. A right click opens the indicator's menu.
    if run(&["xdotool", "mousemove", "1262", "18", "click", "3"]) {
        std::thread::sleep(Duration::from_millis(800));
        shot(&format!("{name}-menu.png"));
        let _ = run(&["xdotool", "key", "Escape"]);
    }
}
