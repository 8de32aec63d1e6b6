//! Notices, while a tunnel is up, that the network under it changed (default route or
//! IPv4 address of a physical interface) or that the machine slept, so the session
//! reconnects at once instead of waiting for ping-restart (60 s with a typical server).
//! With the kill switch on it also notices packet forwarding being turned on or off
//! (Docker, libvirt or connection sharing started after the VPN): the kill switch's table
//! depends on it, and the reconnect writes it again (netcfg `forwarding_state`).
//!
//! How: a thread reads the kernel's routing state over netlink (netcfg) every
//! [`PERIOD`] and compares a fingerprint of the underlay with the one taken when the
//! tunnel came up (our own routes and every TUN device are left out). Sleep shows as
//! CLOCK_BOOTTIME (`/proc/uptime`, counts suspended time) running ahead of
//! CLOCK_MONOTONIC (`Instant`, does not).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How often the underlay is compared.
pub const PERIOD: Duration = Duration::from_millis(500);
/// Boot time ahead of monotonic time by more than this = the machine slept.
const SLEEP_GAP: Duration = Duration::from_secs(4);

/// What the tunnel rides on, as far as reconnecting is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Underlay {
    /// (gateway, output interface, metric) of the main table's default routes.
    pub defaults: BTreeSet<(Option<IpAddr>, Option<u32>, Option<u32>)>,
    /// (interface, address, prefix) of IPv4 addresses on physical interfaces.
    pub addresses: BTreeSet<(u32, IpAddr, u8)>,
    /// Whether the machine forwards packets; `None` when not watched (kill switch off,
    /// or a system whose kill switch does not depend on it).
    pub forwarding: Option<bool>,
}

impl Underlay {
    /// One line naming what differs from `before`.
    pub fn describe_change(&self, before: &Underlay) -> String {
        let mut parts = Vec::new();
        if self.defaults != before.defaults {
            parts.push(format!(
                "default route {} -> {}",
                fmt_defaults(&before.defaults),
                fmt_defaults(&self.defaults)
            ));
        }
        let gone: Vec<String> = before
            .addresses
            .difference(&self.addresses)
            .map(|(i, a, p)| format!("{a}/{p} (#{i})"))
            .collect();
        let new: Vec<String> = self
            .addresses
            .difference(&before.addresses)
            .map(|(i, a, p)| format!("{a}/{p} (#{i})"))
            .collect();
        if !gone.is_empty() {
            parts.push(format!("address gone: {}", gone.join(", ")));
        }
        if !new.is_empty() {
            parts.push(format!("new address: {}", new.join(", ")));
        }
        if self.forwarding != before.forwarding {
            parts.push(match self.forwarding {
                Some(true) => "packet forwarding turned on".to_owned(),
                _ => "packet forwarding turned off".to_owned(),
            });
        }
        format!("the network changed ({})", parts.join("; "))
    }
}

fn fmt_defaults(d: &BTreeSet<(Option<IpAddr>, Option<u32>, Option<u32>)>) -> String {
    if d.is_empty() {
        return "none".into();
    }
    d.iter()
        .map(|(g, o, _)| {
            let via = g.map_or_else(|| "direct".to_owned(), |g| format!("via {g}"));
            format!("{via} on #{}", o.unwrap_or(0))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the underlay (blocking netlink calls). `skip` holds interface indexes already
/// known to be TUN devices (ours or another session's); it grows as more are found.
/// `forwarding`: also read whether the machine forwards packets.
pub fn read_underlay(
    skip: &mut BTreeSet<u32>,
    forwarding: bool,
) -> Result<Underlay, netcfg::Error> {
    let mut routes = netcfg::Routes::open()?;
    let mut physical = |routes: &mut netcfg::Routes, i: u32| -> Result<bool, netcfg::Error> {
        if skip.contains(&i) {
            return Ok(false);
        }
        if routes.is_tun(i)? {
            skip.insert(i);
            return Ok(false);
        }
        Ok(true)
    };
    let mut u = Underlay::default();
    for r in routes.dump()? {
        if r.table != netcfg::routes::TABLE_MAIN || r.dst.prefix_len() != 0 || r.is_ours() {
            continue;
        }
        if let Some(o) = r.oif {
            if !physical(&mut routes, o)? {
                continue;
            }
        }
        u.defaults.insert((r.gateway, r.oif, r.metric));
    }
    for a in routes.addresses()? {
        if !a.addr.is_ipv4() || a.addr.is_loopback() || !physical(&mut routes, a.iface)? {
            continue;
        }
        u.addresses.insert((a.iface, a.addr, a.prefix_len));
    }
    if forwarding {
        u.forwarding = netcfg::firewall::forwarding_state();
    }
    Ok(u)
}

/// Seconds since boot including suspended time (CLOCK_BOOTTIME).
fn boot_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

/// A running watch; dropping it stops the thread (within one [`PERIOD`]).
pub struct NetWatch {
    stop: Arc<AtomicBool>,
    rx: oneshot::Receiver<String>,
}

impl NetWatch {
    /// Starts watching from the current state (call once the tunnel is configured);
    /// `kill_switch`: the session may have the kill switch on, so forwarding is watched.
    pub fn start(kill_switch: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = oneshot::channel();
        let flag = stop.clone();
        // The baseline is read here, before the caller reports the tunnel as up: a
        // change made right after "connected" must not slip into the baseline.
        let mut skip = BTreeSet::new();
        let first = read_underlay(&mut skip, kill_switch);
        let spawned = std::thread::Builder::new()
            .name("oxivpn-netwatch".into())
            .spawn(move || {
                if let Some(reason) = watch_loop(&flag, first, skip, kill_switch) {
                    let _ = tx.send(reason);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "network watch not started");
        }
        Self { stop, rx }
    }

    /// Resolves with the reason once the network changed or the machine slept; never
    /// resolves when the watch could not run.
    pub async fn changed(&mut self) -> String {
        match (&mut self.rx).await {
            Ok(r) => r,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for NetWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch_loop(
    stop: &AtomicBool,
    first: Result<Underlay, netcfg::Error>,
    mut skip: BTreeSet<u32>,
    forwarding: bool,
) -> Option<String> {
    let mut first = Some(first);
    watch_with(stop, PERIOD, boot_time, move || match first.take() {
        Some(r) => r,
        None => read_underlay(&mut skip, forwarding),
    })
}

/// The loop with its clocks and state reader passed in (tests simulate sleep and changes).
fn watch_with(
    stop: &AtomicBool,
    period: Duration,
    boot: impl Fn() -> Option<Duration>,
    mut read: impl FnMut() -> Result<Underlay, netcfg::Error>,
) -> Option<String> {
    let baseline = match read() {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "network watch: cannot read the routing state");
            return None;
        }
    };
    let mono0 = Instant::now();
    let boot0 = boot();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(period);
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if let (Some(b0), Some(b1)) = (boot0, boot()) {
            let slept = (b1.saturating_sub(b0)).saturating_sub(mono0.elapsed());
            if slept > SLEEP_GAP {
                return Some(format!(
                    "the machine was asleep for about {} s",
                    slept.as_secs()
                ));
            }
        }
        match read() {
            Ok(now) if now != baseline => return Some(now.describe_change(&baseline)),
            Ok(_) => {}
            // A transient netlink error is not a network change.
            Err(e) => tracing::debug!(error = %e, "network watch read failed"),
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_changed() {
        let mut before = Underlay::default();
        before
            .defaults
            .insert((Some("192.168.1.1".parse().unwrap()), Some(2), None));
        before
            .addresses
            .insert((2, "192.168.1.2".parse().unwrap(), 24));
        let mut after = before.clone();
        after.defaults.clear();
        after
            .addresses
            .insert((2, "192.168.1.50".parse().unwrap(), 24));
        let d = after.describe_change(&before);
        assert!(
            d.contains("default route via 192.168.1.1 on #2 -> none"),
            "{d}"
        );
        assert!(d.contains("new address: 192.168.1.50/24 (#2)"), "{d}");
        assert_ne!(before, after);
    }

    #[test]
    fn a_jump_of_the_boot_clock_is_sleep() {
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        // Boot time runs 30 s ahead after the second tick: the machine was suspended.
        let boot = move || {
            let el = start.elapsed();
            Some(if el > Duration::from_millis(25) {
                el + Duration::from_secs(30)
            } else {
                el
            })
        };
        let r = watch_with(&stop, Duration::from_millis(10), boot, || {
            Ok(Underlay::default())
        });
        let r = r.expect("sleep noticed");
        let secs: u64 = r
            .trim_start_matches("the machine was asleep for about ")
            .trim_end_matches(" s")
            .parse()
            .unwrap();
        assert!((25..=30).contains(&secs), "{r}");
    }

    #[test]
    fn a_changed_underlay_ends_the_watch_and_errors_do_not() {
        let stop = AtomicBool::new(false);
        let mut calls = 0;
        let r = watch_with(
            &stop,
            Duration::from_millis(5),
            || None,
            || {
                calls += 1;
                let mut u = Underlay::default();
                match calls {
                    // A transient read error in between changes nothing.
                    2 => Err(netcfg::Error::Unsupported("test")),
                    1 | 3 => Ok(u),
                    _ => {
                        u.addresses.insert((2, "192.168.1.50".parse().unwrap(), 24));
                        Ok(u)
                    }
                }
            },
        );
        assert_eq!(
            r.as_deref(),
            Some("the network changed (new address: 192.168.1.50/24 (#2))")
        );
        assert_eq!(calls, 4);
    }

    #[test]
    fn forwarding_turned_on_is_a_change() {
        let before = Underlay {
            forwarding: Some(false),
            ..Underlay::default()
        };
        let on = Underlay {
            forwarding: Some(true),
            ..Underlay::default()
        };
        assert_ne!(before, on);
        assert_eq!(
            on.describe_change(&before),
            "the network changed (packet forwarding turned on)"
        );
        assert_eq!(
            before.describe_change(&on),
            "the network changed (packet forwarding turned off)"
        );
    }

    #[test]
    fn stopping_ends_the_watch_quietly() {
        let stop = AtomicBool::new(true);
        let r = watch_with(
            &stop,
            Duration::from_millis(1),
            || None,
            || Ok(Underlay::default()),
        );
        assert_eq!(r, None);
    }

    #[test]
    fn boot_clock_is_readable_and_not_behind_monotonic() {
        let b = boot_time().expect("/proc/uptime");
        assert!(b > Duration::ZERO);
    }
}
