//! Work that runs beside the link setup and the TLS handshake instead of before or
//! after them, each awaited only where its result is first needed: the kill switch's
//! first apply, and the network discovery with the DNS backend's probe.

use std::net::SocketAddr;

use ipc::LogLevel;
use netcfg::{Dns, NetworkState};

use super::attempt::Reporter;
use super::{killswitch, NetOptions};

/// The kill switch's first apply (the servers only), started by [`super::attempt::run`] and running while
/// the link is set up and the TLS handshake goes on: the handshake's packets need no kill
/// switch (they go to the server from the marked tunnel socket, and before the apply the
/// machine is as open as it was before the connect), but everything that changes what is
/// let through must come after it, never before:
/// - the routes and the tunnel's rules (`ConfigReceived`): a route must never move before
///   the kill switch is in, and a later apply must not be overtaken by this one;
/// - the sign-in exception and the SOCKS relay's exception (both replace the rules);
/// - the end of [`super::attempt::run`], so the supervisor's `remove()` comes after it.
///
/// A failed apply ends the attempt as before (fatal), through the driver's normal close,
/// so the undo path runs unchanged.
pub(super) struct PreTunnelKs {
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    result: Result<(), String>,
}

impl PreTunnelKs {
    pub(super) fn none() -> Self {
        Self {
            task: None,
            result: Ok(()),
        }
    }

    pub(super) fn start(ks: &killswitch::KillSwitch, servers: Vec<(SocketAddr, bool)>) -> Self {
        let ks = ks.clone();
        Self {
            task: Some(tokio::spawn(async move {
                ks.apply(&servers, None, false).await
            })),
            result: Ok(()),
        }
    }

    /// Whether the apply is still running.
    pub(super) fn pending(&self) -> bool {
        self.task.is_some()
    }

    /// Waits for the apply (cancel-safe: dropping this future leaves the task running and
    /// the next call waits again) and logs its outcome once; afterwards its result.
    pub(super) async fn ready(&mut self, rep: &Reporter) -> Result<(), String> {
        if let Some(task) = self.task.as_mut() {
            let r = match task.await {
                Ok(r) => r,
                Err(e) => Err(format!("kill switch task failed: {e}")),
            };
            self.task = None;
            match &r {
                Ok(()) => rep.log(
                    LogLevel::Info,
                    "kill switch on: only the VPN servers are reachable until the tunnel is up",
                ),
                Err(e) => rep.log(LogLevel::Error, e.clone()),
            }
            self.result = r;
        }
        self.result.clone()
    }
}

/// The machine's network before the tunnel (default route, DHCP server, resolvers: the
/// plan's input) and the DNS backend (on a desktop a D-Bus round trip to
/// systemd-resolved), made ready on a blocking thread while the handshake goes on; the
/// server's configuration is the first thing that needs them.
pub(super) struct NetPrep {
    task: Option<tokio::task::JoinHandle<Prepared>>,
    state: Option<Result<NetworkState, String>>,
    dns: Option<Result<Dns, netcfg::Error>>,
}

type Prepared = (
    Result<NetworkState, netcfg::Error>,
    Result<Dns, netcfg::Error>,
);

impl NetPrep {
    pub(super) fn start(net: &NetOptions) -> Self {
        let discover = net.discover.clone();
        let dns = net.session.dns.clone();
        Self {
            task: Some(tokio::task::spawn_blocking(move || {
                (netcfg::discover_state(&discover), Dns::new(&dns))
            })),
            state: None,
            dns: None,
        }
    }

    /// The network as it was before the tunnel (cancel-safe: dropping this future leaves
    /// the task running and the next call waits again); the error says what failed.
    pub(super) async fn state(&mut self) -> Result<&NetworkState, String> {
        if let Some(task) = self.task.as_mut() {
            let (state, dns) = match task.await {
                Ok((s, d)) => (
                    s.map_err(|e| format!("reading the network configuration failed: {e}")),
                    Some(d),
                ),
                Err(e) => (Err(format!("network discovery task failed: {e}")), None),
            };
            self.task = None;
            self.state = Some(state);
            self.dns = dns;
        }
        match self.state.as_ref() {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone()),
            None => Err("network discovery did not run".into()),
        }
    }

    /// The DNS backend probed beside the handshake, once, after [`NetPrep::state`];
    /// `None` makes the session probe it itself.
    pub(super) fn take_dns(&mut self) -> Option<Result<Dns, netcfg::Error>> {
        self.dns.take()
    }
}
