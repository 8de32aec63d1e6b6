//! Which server the next attempt goes to and how long to wait first, after the
//! profile's own rules as OpenVPN 2.6 applies them:
//! - `remote-random`: the servers are shuffled once, when the session starts;
//! - `connect-retry N [MAX]`: N seconds between attempts; after five unsuccessful
//!   rounds over all servers the wait doubles with every further round, up to MAX;
//! - `connect-retry-max N`: each server is tried N times without success, then the
//!   session gives up (a successful connection starts the count again);
//! - `resolv-retry N`: names that keep failing to resolve for N seconds end the
//!   session (`infinite`, the default, keeps trying).
//!
//! The rules are per connection entry (`<connection>` block or top level): the entry
//! that just failed decides the wait, as in OpenVPN.

use std::time::{Duration, Instant};

use ovpn_profile::{ConnOptions, Profile};
use rand::seq::SliceRandom;
use rand_chacha::rand_core::SeedableRng;

/// `connect-retry` when the profile names none (OpenVPN's default).
const RETRY_DEFAULT: Duration = Duration::from_secs(1);
/// The cap when `connect-retry` names none. OpenVPN waits up to 300 s; a client
/// people keep running comes back sooner after a long outage.
pub const RETRY_MAX_DEFAULT: Duration = Duration::from_secs(60);
/// Unsuccessful rounds over all servers before the wait starts doubling.
const ROUNDS_BEFORE_BACKOFF: usize = 5;

/// Why the session gives up instead of trying again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// `connect-retry-max N`: every server failed N times.
    RetryMax(u32),
    /// `resolv-retry N`: names did not resolve for N seconds.
    ResolvRetry(u32),
}

impl GiveUp {
    /// Why, in words, for the message the user sees.
    pub fn text(&self, last: &str) -> String {
        match self {
            GiveUp::RetryMax(n) => format!(
                "could not connect after trying each server {n} time{} (connect-retry-max {n}): {last}",
                if *n == 1 { "" } else { "s" }
            ),
            GiveUp::ResolvRetry(n) => format!(
                "the server name did not resolve for {n} s (resolv-retry {n}): {last}"
            ),
        }
    }
}

/// The reconnect state of one session.
#[derive(Debug)]
pub struct RetryPlan {
    /// Endpoint indices in the order they are tried.
    order: Vec<usize>,
    /// Position in `order` of the endpoint the next attempt uses.
    pos: usize,
    /// Each endpoint's own options, by endpoint index.
    options: Vec<ConnOptions>,
    /// Attempts that failed since the last successful connection.
    unsuccessful: usize,
    /// When name resolution started failing (reset by any success).
    resolving_since: Option<Instant>,
    resolv_retry: Option<u32>,
}

impl RetryPlan {
    /// `seed` shuffles the servers when the profile says `remote-random`.
    pub fn new(profile: &Profile, seed: [u8; 32]) -> Self {
        let options: Vec<ConnOptions> =
            profile.endpoints().into_iter().map(|e| e.options).collect();
        let mut order: Vec<usize> = (0..options.len().max(1)).collect();
        if profile.remote_random {
            order.shuffle(&mut rand_chacha::ChaCha8Rng::from_seed(seed));
        }
        Self {
            order,
            pos: 0,
            options,
            unsuccessful: 0,
            resolving_since: None,
            resolv_retry: profile.resolv_retry,
        }
    }

    /// The endpoint index the next attempt uses.
    pub fn current(&self) -> usize {
        self.order.get(self.pos).copied().unwrap_or(0)
    }

    fn servers(&self) -> usize {
        self.order.len()
    }

    fn current_options(&self) -> Option<&ConnOptions> {
        self.options.get(self.current())
    }

    /// The tunnel got up: the counts start again.
    pub fn connected(&mut self) {
        self.unsuccessful = 0;
        self.resolving_since = None;
    }

    /// An attempt failed. `next_remote`: the failure is the server's (no reply,
    /// refused, TLS), so the next attempt goes to the next one. `resolve_failed`: the
    /// name did not resolve. `Err` when the profile's rules say to stop.
    pub fn failed(
        &mut self,
        next_remote: bool,
        resolve_failed: bool,
        now: Instant,
    ) -> Result<Duration, GiveUp> {
        self.unsuccessful = self.unsuccessful.saturating_add(1);
        if resolve_failed {
            let since = *self.resolving_since.get_or_insert(now);
            if let Some(n) = self.resolv_retry {
                if now.duration_since(since) >= Duration::from_secs(u64::from(n)) {
                    return Err(GiveUp::ResolvRetry(n));
                }
            }
        } else {
            self.resolving_since = None;
        }
        let wait = self.wait();
        if let Some(max) = self.current_options().and_then(|o| o.connect_retry_max) {
            if self.unsuccessful >= self.servers().saturating_mul(max as usize) {
                return Err(GiveUp::RetryMax(max));
            }
        }
        if next_remote {
            self.pos = (self.pos + 1) % self.servers();
        }
        Ok(wait)
    }

    /// How long to wait after the failure just counted, by the failed entry's rules.
    fn wait(&self) -> Duration {
        let (base, cap) = match self.current_options().and_then(|o| o.connect_retry) {
            Some((n, max)) => (
                Duration::from_secs(u64::from(n)),
                max.map_or(RETRY_MAX_DEFAULT, |m| Duration::from_secs(u64::from(m))),
            ),
            None => (RETRY_DEFAULT, RETRY_MAX_DEFAULT),
        };
        let rounds = self.unsuccessful / self.servers();
        let doublings = rounds.saturating_sub(ROUNDS_BEFORE_BACKOFF - 1).min(15);
        let wait = if doublings == 0 {
            base
        } else {
            base.max(Duration::from_secs(1))
                .saturating_mul(1u32 << doublings)
        };
        wait.min(cap)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const FP: &str = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";

    fn profile(extra: &str, remotes: usize) -> Profile {
        let mut text =
            format!("client\ndev tun\nproto udp\nnobind\npeer-fingerprint {FP}\n{extra}\n");
        for i in 0..remotes {
            text.push_str(&format!("remote 127.0.0.{} 1194\n", i + 1));
        }
        ovpn_profile::check_untrusted(text.as_bytes()).unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn servers_are_tried_in_order_and_wrap_around() {
        let mut plan = RetryPlan::new(&profile("", 3), [0; 32]);
        let now = Instant::now();
        let mut seen = vec![plan.current()];
        for _ in 0..4 {
            plan.failed(true, false, now).unwrap();
            seen.push(plan.current());
        }
        assert_eq!(seen, vec![0, 1, 2, 0, 1]);
        // A failure that is not the server's stays on the same one.
        plan.failed(false, false, now).unwrap();
        assert_eq!(plan.current(), 1);
    }

    #[test]
    fn remote_random_shuffles_once_and_keeps_every_server() {
        let p = profile("remote-random", 8);
        let orders: Vec<Vec<usize>> = (0u8..6)
            .map(|s| RetryPlan::new(&p, [s; 32]).order)
            .collect();
        for o in &orders {
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "a permutation: {o:?}");
        }
        assert!(
            orders.iter().any(|o| *o != (0..8).collect::<Vec<_>>()),
            "six seeds all kept the written order: {orders:?}"
        );
        assert!(orders.windows(2).any(|w| w[0] != w[1]), "{orders:?}");
        // Without remote-random the written order is kept whatever the seed.
        assert_eq!(
            RetryPlan::new(&profile("", 8), [9; 32]).order,
            (0..8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn connect_retry_waits_then_doubles_after_five_rounds_up_to_its_cap() {
        let mut plan = RetryPlan::new(&profile("connect-retry 3 20", 2), [0; 32]);
        let now = Instant::now();
        let waits: Vec<u64> = (0..16)
            .map(|_| plan.failed(true, false, now).unwrap().as_secs())
            .collect();
        // Rounds 0-4 (ten failures over two servers): 3 s; then 6, 12, capped at 20.
        assert_eq!(
            waits,
            vec![3, 3, 3, 3, 3, 3, 3, 3, 3, 6, 6, 12, 12, 20, 20, 20]
        );
        plan.connected();
        assert_eq!(plan.failed(true, false, now).unwrap(), secs(3));
    }

    #[test]
    fn without_connect_retry_the_defaults_apply() {
        let mut plan = RetryPlan::new(&profile("", 1), [0; 32]);
        let now = Instant::now();
        let waits: Vec<u64> = (0..12)
            .map(|_| plan.failed(true, false, now).unwrap().as_secs())
            .collect();
        assert_eq!(waits, vec![1, 1, 1, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn connect_retry_max_gives_up_after_each_server_failed_that_often() {
        let mut plan = RetryPlan::new(&profile("connect-retry-max 2", 3), [0; 32]);
        let now = Instant::now();
        for _ in 0..5 {
            plan.failed(true, false, now).unwrap();
        }
        assert_eq!(plan.failed(true, false, now), Err(GiveUp::RetryMax(2)));
        // A connection in between starts the count again.
        let mut plan = RetryPlan::new(&profile("connect-retry-max 1", 2), [0; 32]);
        plan.failed(true, false, now).unwrap();
        plan.connected();
        plan.failed(true, false, now).unwrap();
        assert_eq!(plan.failed(true, false, now), Err(GiveUp::RetryMax(1)));
    }

    #[test]
    fn a_block_has_its_own_retry_rules() {
        let text = format!(
            "client\ndev tun\nnobind\npeer-fingerprint {FP}\n\
             <connection>\nremote 127.0.0.1 1194 udp\nconnect-retry 7\n</connection>\n\
             <connection>\nremote 127.0.0.2 443 tcp\nconnect-retry 2\n</connection>\n"
        );
        let p = ovpn_profile::check_untrusted(text.as_bytes()).unwrap();
        let mut plan = RetryPlan::new(&p, [0; 32]);
        let now = Instant::now();
        assert_eq!(plan.failed(true, false, now).unwrap(), secs(7));
        assert_eq!(plan.current(), 1);
        assert_eq!(plan.failed(true, false, now).unwrap(), secs(2));
    }

    #[test]
    fn resolv_retry_ends_the_session_once_names_failed_for_that_long() {
        let mut plan = RetryPlan::new(&profile("resolv-retry 30", 1), [0; 32]);
        let t0 = Instant::now();
        plan.failed(true, true, t0).unwrap();
        plan.failed(true, true, t0 + secs(29)).unwrap();
        // A resolved name (the server then failed) starts the clock again.
        plan.failed(true, false, t0 + secs(29)).unwrap();
        plan.failed(true, true, t0 + secs(40)).unwrap();
        plan.failed(true, true, t0 + secs(69)).unwrap();
        assert_eq!(
            plan.failed(true, true, t0 + secs(70)),
            Err(GiveUp::ResolvRetry(30))
        );
        // `infinite` (the default) never gives up on names.
        let mut plan = RetryPlan::new(&profile("resolv-retry infinite", 1), [0; 32]);
        for i in 0..50 {
            plan.failed(true, true, t0 + secs(i * 1000)).unwrap();
        }
    }

    #[test]
    fn give_up_texts_name_the_directive() {
        assert!(GiveUp::RetryMax(1)
            .text("no reply")
            .contains("each server 1 time (connect-retry-max 1): no reply"));
        assert!(GiveUp::ResolvRetry(5).text("x").contains("resolv-retry 5"));
    }
}
