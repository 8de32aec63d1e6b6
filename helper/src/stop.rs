//! What tells the helper to stop: SIGTERM/SIGINT on Unix, the service manager (or Ctrl+C
//! in a console) on Windows. The service and `connect` wait on it the same way.

use std::future::Future;

use tokio::sync::watch;

/// Resolves once the helper should stop; may be awaited again afterwards (it then
/// resolves at once).
pub trait StopSignal: Send {
    fn stopped(&mut self) -> impl Future<Output = ()> + Send;
}

/// A stop set from elsewhere (the Windows service manager's control handler).
#[cfg_attr(not(windows), allow(dead_code))]
pub struct Flag<T>(pub watch::Receiver<Option<T>>);

impl<T: Send + Sync> StopSignal for Flag<T> {
    async fn stopped(&mut self) {
        // A dropped sender also means nobody can keep us running.
        let _ = self.0.wait_for(|s| s.is_some()).await;
    }
}

/// SIGTERM (systemd, kill) or SIGINT (Ctrl+C).
#[cfg(unix)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    seen: bool,
}

#[cfg(unix)]
impl Signals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            seen: false,
        })
    }
}

#[cfg(unix)]
impl StopSignal for Signals {
    async fn stopped(&mut self) {
        if self.seen {
            return;
        }
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received, stopping"),
            _ = self.int.recv() => tracing::info!("SIGINT received, stopping"),
        }
        self.seen = true;
    }
}

/// Ctrl+C / console close (a console run of the Windows service, `connect`).
#[cfg(windows)]
pub struct CtrlC {
    seen: bool,
}

#[cfg(windows)]
impl CtrlC {
    pub fn new() -> Self {
        Self { seen: false }
    }
}

#[cfg(windows)]
impl StopSignal for CtrlC {
    async fn stopped(&mut self) {
        if !self.seen {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl+C received, stopping");
            self.seen = true;
        }
    }
}
