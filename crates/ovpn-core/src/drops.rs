//! Why the data channel drops a packet, and the one WARN per reason and
//! session that says so in plain words. Every drop is counted in
//! [`Stats`](crate::session::Stats); the first of each reason is logged at
//! WARN (what happened, what to do), later ones at DEBUG.

use crate::codec::Blame;
use crate::data::DataError;
use crate::session::Stats;
use std::fmt;

/// Reason a data packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Too short, bad header, bad CBC block length or padding.
    Malformed,
    /// Replayed, too old, or packet-id 0.
    Replayed,
    /// AEAD tag or HMAC mismatch.
    AuthFailed,
    /// Compression header the session did not agree on, an undecodable
    /// or oversized compressed block, or compression refused by policy.
    Compression,
    /// A key id the session has no (or no longer a) data key for.
    UnknownKey,
    /// OpenVPN 2.7 data format: an epoch outside the receive window (older
    /// than the retiring epoch, or further ahead than the keys derived).
    Epoch,
    /// A packet from the TUN device while the tunnel is not up.
    NotConnected,
    /// Anything else (local errors such as packet-id exhaustion).
    Other,
}

impl DropReason {
    /// Every reason, in display order.
    pub const ALL: [DropReason; 8] = [
        Self::Malformed,
        Self::Replayed,
        Self::AuthFailed,
        Self::Compression,
        Self::UnknownKey,
        Self::Epoch,
        Self::NotConnected,
        Self::Other,
    ];

    /// Short label (status output, logs).
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Replayed => "replayed",
            Self::AuthFailed => "authentication failed",
            Self::Compression => "compression",
            Self::UnknownKey => "unknown key id",
            Self::Epoch => "epoch out of window",
            Self::NotConnected => "not connected",
            Self::Other => "other",
        }
    }

    /// What happened and what to do, for the first WARN.
    pub fn advice(self) -> &'static str {
        match self {
            Self::Malformed => {
                "a packet from the server was malformed and dropped; if this repeats, something on the path corrupts traffic or the server is not an OpenVPN server"
            }
            Self::Replayed => {
                "a data packet arrived twice or too late and was dropped (replay protection); a few are normal on networks that reorder or duplicate packets"
            }
            Self::AuthFailed => {
                "a data packet failed authentication and was dropped: it was damaged in transit or did not come from the server; if this repeats, reconnect"
            }
            Self::Compression => {
                "a packet's compression did not match what the session agreed or did not decode, and it was dropped; check that the profile's comp-lzo/compress and allow-compression match the server"
            }
            Self::UnknownKey => {
                "a data packet used a key id this session does not have and was dropped; normal for a moment around a renegotiation, otherwise reconnect"
            }
            Self::Epoch => {
                "a data packet used an epoch key outside the accepted window (OpenVPN 2.7 data format: older than the previous epoch, or further ahead than the next few) and was dropped; a late packet around a key update is harmless, if it repeats the server's keys are out of step: reconnect"
            }
            Self::NotConnected => "packets from the system were dropped while the tunnel was not up",
            Self::Other => "a data packet was dropped",
        }
    }

    /// The reason a data-channel error drops its packet. An epoch outside
    /// the receive window (epoch format) has its own reason; an epoch key
    /// past its verification-failure limit counts as an authentication
    /// failure.
    pub fn of(e: &DataError) -> Self {
        match e {
            DataError::Replay(_) => Self::Replayed,
            DataError::AuthFailed | DataError::DecryptFailLimit(_) => Self::AuthFailed,
            DataError::UnknownEpoch { .. } => Self::Epoch,
            DataError::WrongKeyId { .. } => Self::UnknownKey,
            DataError::BadPadding | DataError::ZeroEpoch => Self::Malformed,
            other if other.blame() == Blame::Malformed => Self::Malformed,
            _ => Self::Other,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Stats {
    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Malformed => self.dropped_malformed,
            DropReason::Replayed => self.dropped_replayed,
            DropReason::AuthFailed => self.dropped_auth_failed,
            DropReason::Compression => self.dropped_compressed,
            DropReason::UnknownKey => self.dropped_unknown_key,
            DropReason::Epoch => self.dropped_epoch,
            DropReason::NotConnected => self.dropped_not_connected,
            DropReason::Other => self.dropped_other,
        }
    }

    /// Counts one drop.
    pub fn count_drop(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Malformed => &mut self.dropped_malformed,
            DropReason::Replayed => &mut self.dropped_replayed,
            DropReason::AuthFailed => &mut self.dropped_auth_failed,
            DropReason::Compression => &mut self.dropped_compressed,
            DropReason::UnknownKey => &mut self.dropped_unknown_key,
            DropReason::Epoch => &mut self.dropped_epoch,
            DropReason::NotConnected => &mut self.dropped_not_connected,
            DropReason::Other => &mut self.dropped_other,
        };
        *c = c.saturating_add(1);
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }
}

/// Which reasons were already logged at WARN in this session.
#[derive(Debug, Clone, Copy, Default)]
pub struct DropLog {
    warned: u8,
}

impl DropLog {
    /// Logs a drop: WARN the first time per reason (received packets only:
    /// `NotConnected` is expected around connect and stays at DEBUG),
    /// DEBUG afterwards. `detail` is the error; it never holds secrets.
    pub fn note(&mut self, reason: DropReason, detail: &dyn fmt::Display) {
        let first = self.warned & reason.bit() == 0;
        self.warned |= reason.bit();
        if first && reason != DropReason::NotConnected {
            tracing::warn!(reason = reason.label(), detail = %detail, "{}", reason.advice());
        } else {
            tracing::debug!(reason = reason.label(), detail = %detail, "data packet dropped");
        }
    }

    /// True once `reason` was logged at WARN.
    pub fn warned(&self, reason: DropReason) -> bool {
        self.warned & reason.bit() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_reason_in_its_own_field() {
        let mut s = Stats::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            for _ in 0..=i {
                s.count_drop(*r);
            }
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(s.dropped(*r), i as u64 + 1, "{r}");
        }
        assert_eq!(s.dropped_total(), 36);
        assert_eq!(s.dropped_epoch, 6);
        assert_eq!(s.dropped_compressed, 4);
    }

    #[test]
    fn data_errors_map_to_reasons() {
        use crate::replay::ReplayError;
        let cases = [
            (
                DataError::Replay(ReplayError::Replay(3)),
                DropReason::Replayed,
            ),
            (DataError::AuthFailed, DropReason::AuthFailed),
            (DataError::DecryptFailLimit(2), DropReason::AuthFailed),
            (
                DataError::UnknownEpoch { got: 9, current: 2 },
                DropReason::Epoch,
            ),
            (DataError::ZeroEpoch, DropReason::Malformed),
            (DataError::TooShort(3), DropReason::Malformed),
            (DataError::BadPadding, DropReason::Malformed),
            (DataError::PacketIdExhausted, DropReason::Other),
        ];
        for (e, r) in cases {
            assert_eq!(DropReason::of(&e), r, "{e}");
        }
    }

    #[test]
    fn warns_once_per_reason() {
        let mut l = DropLog::default();
        assert!(!l.warned(DropReason::Replayed));
        l.note(DropReason::Replayed, &"x");
        assert!(l.warned(DropReason::Replayed));
        assert!(!l.warned(DropReason::AuthFailed));
        l.note(DropReason::AuthFailed, &"y");
        assert!(l.warned(DropReason::Replayed) && l.warned(DropReason::AuthFailed));
        assert!(!l.warned(DropReason::Epoch));
        l.note(DropReason::Epoch, &"epoch 9");
        assert!(l.warned(DropReason::Epoch));
        // every reason has its own bit and its own plain-words advice
        let bits: std::collections::HashSet<u8> = DropReason::ALL.iter().map(|r| r.bit()).collect();
        assert_eq!(bits.len(), DropReason::ALL.len());
        assert!(DropReason::Epoch.advice().contains("epoch"));
    }
}
