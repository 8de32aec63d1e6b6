//! The log and the traffic samples the window shows: the app's own lines, the helper's
//! lines, and a bounded history of byte counters.

use super::{now_ms, Actor, LOG_KEEP, STATS_KEEP};
use crate::model::{AppEvent, DropsView, LogEntry, LogLevel, StatsSample};

impl Actor {
    pub(super) fn app_log(&mut self, level: LogLevel, message: String) {
        self.push_log(LogEntry {
            at_ms: now_ms(),
            level,
            source: "app".into(),
            message,
        });
    }

    /// A warning made of an error's message and its details.
    pub(super) fn warn_error(&mut self, e: &crate::error::AppError) {
        self.app_log(LogLevel::Warn, format!("{} ({})", e.message, e.details));
    }

    pub(super) fn push_log(&mut self, entry: LogEntry) {
        if self.log.len() >= LOG_KEEP {
            self.log.pop_front();
        }
        self.log.push_back(entry.clone());
        self.sink.emit(AppEvent::Log(entry));
    }

    /// A line of the helper's log for the session.
    pub(super) fn helper_log(&mut self, at_ms: u64, line: ipc::LogLine) {
        self.push_log(LogEntry {
            at_ms,
            level: match line.level {
                ipc::LogLevel::Error => LogLevel::Error,
                ipc::LogLevel::Warn => LogLevel::Warn,
                ipc::LogLevel::Info => LogLevel::Info,
                ipc::LogLevel::Debug => LogLevel::Debug,
            },
            source: "helper".into(),
            message: line.message.as_str().to_string(),
        });
    }

    pub(super) fn push_stats(&mut self, profile_id: &str, at_ms: u64, s: ipc::Stats) {
        let sample = StatsSample {
            profile_id: profile_id.to_string(),
            at_ms,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            drops: Some(DropsView {
                mss_clamped: s.mss_clamped,
                ..DropsView::from_ipc(&s.drops)
            }),
        };
        if self.stats.len() >= STATS_KEEP {
            self.stats.pop_front();
        }
        self.stats.push_back(sample.clone());
        self.sink.emit(AppEvent::Stats(sample));
    }
}
