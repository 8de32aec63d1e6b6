//! The trusted-networks rule end to end, without root: a private D-Bus daemon, a small
//! service of ours that speaks NetworkManager's interface on it (the `ActiveConnections`
//! property with its change signal, active connections, an access point's SSID), the
//! real NetworkManager back end (zbus) and watcher, the real controller, and the fake
//! helper speaking the real IPC. Leaving a trusted Wi-Fi must connect within seconds.
//! Needs `dbus-daemon` (Debian's dbus); without it the test says SKIPPED.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxivpn_app::autoconnect::{self, nm::NmMonitor};
use oxivpn_app::controller::{Controller, EventSink};
use oxivpn_app::model::AppEvent;
use oxivpn_app::profiles::MemoryRepo;
use oxivpn_app::secrets::MemorySecrets;
use oxivpn_app::settings::SettingsStore;
mod support;
use support::fake_helper::{FakeHelper, Script};
use support::fake_nm;

const CA: &str = concat!("<ca>\n", include_str!("support/ca.pem"), "</ca>\n");

struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, _event: AppEvent) {}
    fn notify(&self, _title: &str, _body: &str) {}
    fn open_browser(&self, _url: &ipc::SignInUrl) -> Result<(), String> {
        Err("no browser in this test".into())
    }
    fn sign_in_needed(&self, _profile_name: &str, _host: &str) {}
}

/// A bus daemon of our own, stopped on drop.
struct Bus(Child);
impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bus(dir: &Path) -> Option<(Bus, String)> {
    let sock = dir.join("bus");
    let config = dir.join("bus.conf");
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
    )
    .unwrap();
    let child = Command::new("dbus-daemon")
        .args(["--nofork", "--nopidfile"])
        .arg(format!("--config-file={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let bus = Bus(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "the bus socket did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((bus, format!("unix:path={}", sock.display())))
}

async fn wait_until(what: &str, timeout: Duration, ok: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_trusted_wifi_connects_the_chosen_profile_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_bus, address)) = start_bus(dir.path()) else {
        eprintln!("SKIPPED trusted_networks: no dbus-daemon");
        return;
    };

    // NetworkManager, as far as we are concerned: on the trusted "HomeNet" Wi-Fi.
    let nm = fake_nm::serve(&address, "HomeNet", "Airport Free WiFi")
        .await
        .unwrap();

    let helper = FakeHelper::start(dir.path(), Script::Normal);
    let mut repo = MemoryRepo::default();
    let work = repo
        .insert(
            "Work",
            &format!("client\ndev tun\nremote 127.0.0.1 1194 udp\n{CA}"),
        )
        .id;
    let controller = Controller::spawn(
        helper.socket.clone(),
        Box::new(repo),
        Arc::new(MemorySecrets::default()),
        Arc::new(Quiet),
    );
    let settings = Arc::new(SettingsStore::open(dir.path().join("settings.json")));
    let mut s = settings.get();
    s.trusted_networks = vec!["HomeNet".into(), "Gone network".into()];
    s.untrusted_profile = Some(work.clone());
    settings.set(s).unwrap();
    let status = Arc::new(Mutex::new(autoconnect::unavailable("not yet")));

    let monitor = NmMonitor::connect_address(&address).await.unwrap();
    let seen_now = monitor.current().await.unwrap();
    assert_eq!(seen_now.len(), 1);
    assert_eq!(seen_now[0].name(), "HomeNet");
    tokio::spawn(autoconnect::watch_on(
        monitor,
        controller.clone(),
        settings.clone(),
        status.clone(),
    ));

    // On the trusted network: direct, nothing sent to the helper.
    let st = status.clone();
    wait_until(
        "the rule to say direct",
        Duration::from_secs(10),
        move || st.lock().unwrap().state == "direct",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(helper.seen.lock().unwrap().connects.is_empty());

    // The computer moves to the airport Wi-Fi: NetworkManager says so with its signal.
    fake_nm::switch_to(&nm, 2).await.unwrap();
    let seen = helper.seen.clone();
    let took = wait_until(
        "the VPN to be started on the untrusted network",
        Duration::from_secs(10),
        move || !seen.lock().unwrap().connects.is_empty(),
    )
    .await;
    eprintln!(
        "trusted networks: left the trusted Wi-Fi -> connect request after {} ms",
        took.as_millis()
    );
    {
        let seen = helper.seen.lock().unwrap();
        assert_eq!(seen.connects.len(), 1);
        assert_eq!(seen.connects[0].profile_name.as_str(), "Work");
    }
    let view = status.lock().unwrap().clone();
    assert_eq!(view.state, "connect");
    assert_eq!(view.network.as_deref(), Some("Airport Free WiFi"));
    assert_eq!(view.networks.len(), 1);
    assert!(view.networks[0].wifi);

    // Staying there does not connect again (the user may disconnect by hand).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(helper.seen.lock().unwrap().connects.len(), 1);
}
