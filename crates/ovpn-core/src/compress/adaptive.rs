//! `comp-lzo adaptive` (and bare `comp-lzo`) on send: OpenVPN 2.6's
//! heuristic (`lzo.c`), which stops compressing for a while when it does
//! not pay.
//!
//! While compression is on, every payload long enough to try is compressed
//! and its sizes before and after are summed. Every [`SAMPLE`] the sum is
//! judged: when more than [`MIN_BYTES`] were tried and compression saved
//! less than [`MIN_SAVING_PERCENT`] of them, compression is switched off for
//! [`OFF_FOR`]; otherwise a new sample starts. When the off period ends,
//! compression is switched back on and a fresh sample decides again.
//!
//! The clock is the caller's (`now` of the sans-IO session), so tests drive
//! it deterministically.

use std::time::{Duration, Instant};

/// Length of one sample period (OpenVPN's `AC_SAMP_SEC`).
pub const SAMPLE: Duration = Duration::from_secs(2);
/// A sample is judged only when more bytes than this were tried (`AC_MIN_BYTES`).
pub const MIN_BYTES: u64 = 1000;
/// Compression must save at least this share of the bytes tried (`AC_SAVE_PCT`).
pub const MIN_SAVING_PERCENT: u64 = 5;
/// How long compression stays off before it is sampled again (`AC_OFF_SEC`).
pub const OFF_FOR: Duration = Duration::from_secs(60);

/// The heuristic's state: on or off, when it is judged next, and the
/// current sample's byte counts.
#[derive(Debug, Clone, Default)]
pub struct Adaptive {
    off: bool,
    /// `None` until the first payload: the first sample starts then.
    next: Option<Instant>,
    tried: u64,
    compressed: u64,
    /// Times compression was switched off (for logs and tests).
    switched_off: u64,
}

impl Adaptive {
    /// Whether to try compressing a payload sent at `now`; moves the
    /// heuristic on when a sample or an off period has ended.
    pub fn should_compress(&mut self, now: Instant) -> bool {
        let due = self.next.is_none_or(|t| now >= t);
        if !due {
            return !self.off;
        }
        if self.off {
            // The off period is over: sample again.
            self.off = false;
            self.next = Some(now + SAMPLE);
            tracing::debug!("adaptive compression: on again, sampling");
        } else if self.not_paying() {
            self.off = true;
            self.switched_off += 1;
            self.next = Some(now + OFF_FOR);
            tracing::debug!(
                tried = self.tried,
                compressed = self.compressed,
                "adaptive compression: off for {} s (it saved less than {MIN_SAVING_PERCENT}%)",
                OFF_FOR.as_secs()
            );
        } else {
            self.next = Some(now + SAMPLE);
        }
        self.tried = 0;
        self.compressed = 0;
        !self.off
    }

    /// Adds one compressed payload to the sample: `len` bytes became `zlen`
    /// (whether or not it was sent compressed, as OpenVPN counts it).
    pub fn record(&mut self, len: usize, zlen: usize) {
        self.tried = self.tried.saturating_add(len as u64);
        self.compressed = self.compressed.saturating_add(zlen as u64);
    }

    /// True while compression is switched off.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Bytes tried for compression in the current sample.
    pub fn sampled_bytes(&self) -> u64 {
        self.tried
    }

    /// How many times compression was switched off so far.
    pub fn times_switched_off(&self) -> u64 {
        self.switched_off
    }

    fn not_paying(&self) -> bool {
        let saved = self.tried.saturating_sub(self.compressed);
        self.tried > MIN_BYTES && saved < self.tried / (100 / MIN_SAVING_PERCENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_that_saves_little_switches_off_then_resamples() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        assert!(a.should_compress(t0));
        a.record(1400, 1399);
        a.record(1400, 1398);
        assert!(a.should_compress(t0 + Duration::from_secs(1)));
        // The sample ends: 2800 tried, 3 saved (< 5%): off for 60 s.
        assert!(!a.should_compress(t0 + SAMPLE));
        assert!(a.is_off());
        assert!(!a.should_compress(t0 + SAMPLE + OFF_FOR - Duration::from_millis(1)));
        // Then on again for a new sample.
        assert!(a.should_compress(t0 + SAMPLE + OFF_FOR));
        assert_eq!(a.times_switched_off(), 1);
    }

    #[test]
    fn too_few_bytes_or_enough_saving_keeps_it_on() {
        let t0 = Instant::now();
        let mut a = Adaptive::default();
        assert!(a.should_compress(t0));
        a.record(500, 500);
        assert!(
            a.should_compress(t0 + SAMPLE),
            "1000 bytes or fewer decide nothing"
        );
        a.record(2000, 1900);
        // exactly 5% saved is enough
        assert!(a.should_compress(t0 + SAMPLE * 2));
        assert_eq!(a.times_switched_off(), 0);
    }
}
