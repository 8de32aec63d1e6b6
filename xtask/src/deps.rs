//! System packages (Debian 12) that building and testing need, installed idempotently.

use std::process::Command;

use crate::sys;

/// Every Debian package the build, the tests and the demo need.
/// Keep it sorted; add a short reason for anything unusual.
pub const ALL: &[&str] = &[
    "ca-certificates",
    "curl",         // sso lab: the test "browser" that visits the sign-in page
    "dante-server", // proxy lab: SOCKS5 with user/password (danted)
    "dbus-daemon",  // netcfg: a private bus for the systemd-resolved back end's test
    "dnsmasq-base", // DHCP server (and DNS) in the lab namespaces
    "easy-rsa",
    "gnome-keyring", // app e2e: a real Secret Service for "remember"
    "iperf3",        // throughput through the tunnel (bench)
    "iproute2",
    "iputils-ping",
    "isc-dhcp-client",              // the client namespace gets its address by DHCP
    "libayatana-appindicator3-dev", // app: tray icon (StatusNotifier)
    "libdbus-1-dev",                // app: keyring (Secret Service over D-Bus)
    "libgtk-3-dev",                 // app: Tauri's windows and menus
    "librsvg2-dev",                 // app: Tauri icons
    "libsoup-3.0-dev",              // app: WebKitGTK networking
    "libwebkit2gtk-4.1-dev",        // app: Tauri's web view
    "libxdo-dev",                   // app: menu accelerators (muda)
    "nftables",
    "openssl", // lab PKI
    "openvpn", // the reference server (and reference client in bench)
    "pkg-config",
    "python3",           // sso lab: the sign-in page (http.server)
    "squid",             // proxy lab: HTTP CONNECT with Basic auth (basic_ncsa_auth)
    "tcpdump",           // leak captures
    "trayer",            // app e2e: an XEmbed tray under Xvfb, for the tray screenshot
    "webkit2gtk-driver", // app e2e: WebKitWebDriver, driven through tauri-driver
    "xauth",             // app: xvfb-run for screenshots
    "xdg-utils",         // app: xdg-open, the opener of the browser sign-in link
    "xdotool",           // app e2e: opens the tray menu for its screenshot
    "xvfb",              // app: a display for the window under test
];

/// Installs whichever of `pkgs` are missing; does nothing (and needs no network) when all are there.
pub fn ensure(pkgs: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("xtask: system packages already installed ({})", pkgs.len());
        return Ok(());
    }
    if !sys::is_root() {
        anyhow::bail!(
            "missing system packages {}; run as root or install them with apt-get",
            missing.join(" ")
        );
    }
    sys::run(Command::new("apt-get").args(["update", "-qq"]))?;
    sys::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}
