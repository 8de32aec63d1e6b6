//! What the service does on each SCM control, as a pure mapping (the Windows glue in
//! `runtime.rs` translates `windows_service::service::ServiceControl` into [`Control`]).

/// The controls the service registers for (STOP, PRESHUTDOWN, POWER_EVENT) plus the
/// ones every service receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Stop,
    /// Sent instead of Shutdown because the service accepts PRESHUTDOWN (more time).
    Preshutdown,
    Shutdown,
    Suspend,
    Resume,
    Interrogate,
    Other,
}

/// Why the service is stopping; logged, and decides what stays behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `sc stop`, the uninstaller, services.msc.
    Requested,
    /// The machine is shutting down or restarting.
    SystemShutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Stop sessions, undo routes/DNS, lift the kill switch (a deliberate stop is a
    /// deliberate disconnect), then report Stopped.
    Stop(StopReason),
    /// The tunnel's socket dies while asleep: undo routes and DNS now (they would point
    /// at a dead tunnel after wake-up) but keep the kill switch, like a reconnect.
    Suspend,
    /// Network state changed under us: sessions reconnect (their backoff restarts).
    Resume,
    /// Answered with NO_ERROR and nothing else.
    Acknowledge,
    /// ERROR_CALL_NOT_IMPLEMENTED.
    NotImplemented,
}

pub fn on_control(c: Control) -> Reply {
    match c {
        Control::Stop => Reply::Stop(StopReason::Requested),
        Control::Preshutdown | Control::Shutdown => Reply::Stop(StopReason::SystemShutdown),
        Control::Suspend => Reply::Suspend,
        Control::Resume => Reply::Resume,
        Control::Interrogate => Reply::Acknowledge,
        Control::Other => Reply::NotImplemented,
    }
}

/// Seconds the SCM should wait for us in StopPending, longer at shutdown where the
/// preshutdown timeout applies.
pub fn stop_wait_hint_secs(reason: StopReason) -> u64 {
    match reason {
        StopReason::Requested => 20,
        StopReason::SystemShutdown => super::config::PRESHUTDOWN_TIMEOUT.as_secs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_shutdown_both_stop_with_their_reason() {
        assert_eq!(
            on_control(Control::Stop),
            Reply::Stop(StopReason::Requested)
        );
        assert_eq!(
            on_control(Control::Preshutdown),
            Reply::Stop(StopReason::SystemShutdown)
        );
        assert_eq!(
            on_control(Control::Shutdown),
            Reply::Stop(StopReason::SystemShutdown)
        );
    }

    #[test]
    fn power_events_and_others() {
        assert_eq!(on_control(Control::Suspend), Reply::Suspend);
        assert_eq!(on_control(Control::Resume), Reply::Resume);
        assert_eq!(on_control(Control::Interrogate), Reply::Acknowledge);
        assert_eq!(on_control(Control::Other), Reply::NotImplemented);
    }

    #[test]
    fn shutdown_waits_within_the_preshutdown_budget() {
        assert!(stop_wait_hint_secs(StopReason::SystemShutdown) <= 30);
        assert!(stop_wait_hint_secs(StopReason::Requested) >= 10);
    }
}
