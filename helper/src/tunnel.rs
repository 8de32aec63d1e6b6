//! One tunnel connection attempt: resolve, connect, TLS, authenticate, configure the
//! network through netcfg, move packets (ovpn-tokio driver) until it ends, then undo
//! every network change before returning.
//!
//! The caller owns retries: `oxivpn-helper connect` (foreground) and the IPC service's
//! session supervisor both call [`run`] once per attempt, and feed the returned
//! [`TunnelOutcome::auth_token`] into the next attempt.

pub mod killswitch;
pub mod launcher;
pub mod netconf;
pub mod sso;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netcfg::{DiscoverOptions, NetSession, SessionOptions, Tun, TunConfig, TunV4};
use ovpn_core::config::{ChallengeResponse, Credentials};
use ovpn_core::session::{Challenge, Client, DisconnectReason, Event, Stage, Stats};
use ovpn_profile::{Endpoint, Profile};
use ovpn_tokio::config::{client_config, AttemptInputs};
use ovpn_tokio::{resolve, Driver, DriverEnd, Family, TunDevice};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Level;

/// How often [`TunnelEvent::Stats`] is sent while connected.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// TCP connect timeout when the profile sets no `connect-timeout`.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and how the network is configured.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Journal path and DNS back end.
    pub session: SessionOptions,
    /// Where the machine's DHCP lease and resolv.conf are found.
    pub discover: DiscoverOptions,
    /// TUN name or pattern (`None`: netcfg's default `oxi%d`).
    pub tun_name: Option<String>,
    /// Leak protection while the tunnel redirects all traffic (`None`: off). Applied by
    /// [`run`]; removed only by the caller (deliberate disconnect).
    pub kill_switch: Option<killswitch::KillSwitch>,
    /// Apply the kill switch to split tunnels too (the user asked for it).
    pub kill_switch_always: bool,
}

/// Everything one attempt needs.
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    /// A self-contained profile (files inlined, validated by the caller).
    pub profile: Profile,
    pub credentials: Option<Credentials>,
    /// An `auth-token` from a previous attempt (used instead of the password).
    pub auth_token: Option<String>,
    /// `Some(i)`: only the i-th endpoint of `profile.endpoints()`; `None`: each in
    /// turn until one answers.
    pub remote_index: Option<usize>,
    pub net: NetOptions,
    /// Announced as `IV_GUI_VER`.
    pub gui_version: Option<String>,
    /// The user's answer to a static (SCRV1) or dynamic (CRV1) challenge.
    pub challenge_response: Option<ChallengeResponse>,
}

/// Where the attempt is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelStage {
    Resolving {
        host: String,
    },
    Connecting {
        remote: SocketAddr,
        tcp: bool,
    },
    Tls,
    Authenticating,
    Configuring,
    Connected {
        tunnel_ipv4: Option<Ipv4Addr>,
        tunnel_ipv6: Option<Ipv6Addr>,
        interface: String,
    },
}

/// What the attempt reports while it runs.
#[derive(Debug, Clone)]
pub enum TunnelEvent {
    Stage(TunnelStage),
    Log(Level, String),
    /// Every second while connected.
    Stats(Stats),
    /// The server pushed a session token: keep it (in memory) for the next attempt.
    AuthToken(String),
    /// The user must answer a challenge; the next attempt carries the answer.
    Challenge(Challenge),
    /// What the attempt got (server, cipher, TLS); sent right before `Connected`.
    Negotiated(SessionDetails),
    /// The route plan that was applied; sent right before `Connected`.
    Plan(Box<AppliedPlan>),
    /// AUTH_PENDING: the user must sign in with a browser (see `tunnel/sso.rs`).
    SignIn(sso::SignInNotice),
    /// AUTH_PENDING: a CR_TEXT challenge; send the answer through its channel.
    CrText(sso::CrTextPrompt),
}

/// The server and security an attempt actually got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDetails {
    /// The profile's host as written.
    pub remote_host: String,
    pub remote: SocketAddr,
    pub tcp: bool,
    pub cipher: Option<String>,
    /// TLS version and suite.
    pub tls: Option<String>,
    pub key_derivation: Option<String>,
    pub kill_switch: bool,
    pub interface: String,
}

/// A plan as applied, with the network it was planned against.
#[derive(Debug, Clone)]
pub struct AppliedPlan {
    pub plan: netcfg::Plan,
    pub state: netcfg::NetworkState,
    pub interface: String,
    /// The kill switch blocks everything outside the tunnel.
    pub kill_switch: bool,
    /// ...except the directly attached subnets.
    pub allow_lan: bool,
}

/// How the attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEnd {
    /// Stopped on request; everything was undone.
    Stopped,
    /// The server refused the credentials (`AUTH_FAILED`): do not retry blindly.
    AuthFailed(String),
    /// Worth another attempt (ping-restart, server restart, no answer, link lost).
    /// `next_remote`: the server never answered, so try the next remote.
    Retry { reason: String, next_remote: bool },
    /// A problem a retry will not fix (profile, TLS/certificates, TUN, network setup).
    Fatal(String),
}

/// The end of an attempt and what the next one should know.
#[derive(Debug, Clone)]
pub struct TunnelOutcome {
    pub end: TunnelEnd,
    /// The last `auth-token` the server pushed.
    pub auth_token: Option<String>,
    /// Whether the tunnel got to `Connected`.
    pub was_connected: bool,
}

/// netcfg's TUN as the driver's device.
struct NetTun(Tun);

impl TunDevice for NetTun {
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv(buf).await
    }
    async fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf).await
    }
}

struct Reporter {
    tx: mpsc::UnboundedSender<TunnelEvent>,
}

impl Reporter {
    fn stage(&self, s: TunnelStage) {
        let _ = self.tx.send(TunnelEvent::Stage(s));
    }
    fn log(&self, level: Level, msg: impl Into<String>) {
        let _ = self.tx.send(TunnelEvent::Log(level, msg.into()));
    }
}

/// Runs one attempt (trying the profile's endpoints in turn when `remote_index` is
/// `None`) until it ends or `stop` is cancelled. Every network change is undone
/// before this returns.
pub async fn run(
    spec: TunnelSpec,
    events: mpsc::UnboundedSender<TunnelEvent>,
    stop: CancellationToken,
) -> TunnelOutcome {
    let rep = Reporter { tx: events };
    let endpoints = spec.profile.endpoints();
    let chosen: Vec<Endpoint> = match spec.remote_index {
        Some(i) => endpoints.get(i).cloned().into_iter().collect(),
        None => endpoints,
    };
    let mut last = TunnelOutcome {
        end: TunnelEnd::Fatal("the profile has no usable `remote`".into()),
        auth_token: spec.auth_token.clone(),
        was_connected: false,
    };
    // Resolve every remote first: once the kill switch is on, DNS outside the tunnel is blocked.
    let mut targets: Vec<(Endpoint, SocketAddr)> = Vec::new();
    for endpoint in &chosen {
        rep.stage(TunnelStage::Resolving {
            host: endpoint.host.clone(),
        });
        let addrs = tokio::select! {
            r = resolve(&endpoint.host, endpoint.port, Family::of(endpoint.proto)) => r,
            () = stop.cancelled() => return stopped(&last),
        };
        let family = Family::of(endpoint.proto);
        let ks = spec.net.kill_switch.as_ref();
        let addrs = match addrs {
            Ok(a) => {
                if let Some(ks) = ks {
                    ks.remember(&endpoint.host, endpoint.port, family, &a);
                }
                Ok(a)
            }
            // Reconnecting: the kill switch blocks DNS outside the tunnel, so use what this
            // connection resolved before (else it could never reconnect to a host name).
            Err(e) => {
                match ks.and_then(|k| k.resolved_before(&endpoint.host, endpoint.port, family)) {
                    Some(a) => {
                        rep.log(
                            Level::INFO,
                            format!("{e}; using the addresses resolved before"),
                        );
                        Ok(a)
                    }
                    None => Err(e),
                }
            }
        };
        match addrs {
            Ok(a) => targets.extend(a.into_iter().map(|addr| (endpoint.clone(), addr))),
            Err(e) => {
                rep.log(Level::WARN, format!("{e}"));
                last.end = TunnelEnd::Retry {
                    reason: e.to_string(),
                    next_remote: true,
                };
            }
        }
    }
    let servers: Vec<(SocketAddr, bool)> = targets
        .iter()
        .map(|(e, a)| (*a, e.proto.is_tcp()))
        .collect();
    if let Some(ks) = spec.net.kill_switch.as_ref() {
        if (spec.profile.redirect_gateway.is_some() || spec.net.kill_switch_always)
            && !servers.is_empty()
        {
            if let Err(e) = ks.apply(&servers, None, false).await {
                rep.log(Level::ERROR, e.clone());
                last.end = TunnelEnd::Fatal(e);
                return last;
            }
            rep.log(
                Level::INFO,
                "kill switch on: only the VPN servers are reachable until the tunnel is up",
            );
        }
    }
    for (endpoint, addr) in &targets {
        let out = attempt(
            &spec,
            endpoint,
            *addr,
            &servers,
            &rep,
            &stop,
            last.auth_token.clone(),
        )
        .await;
        let try_next = matches!(
            out.end,
            TunnelEnd::Retry {
                next_remote: true,
                ..
            }
        ) && !out.was_connected
            && !stop.is_cancelled();
        last = out;
        if !try_next {
            return last;
        }
        rep.log(
            Level::WARN,
            format!("{addr}: {}; trying the next address", end_text(&last.end)),
        );
    }
    last
}

fn stopped(last: &TunnelOutcome) -> TunnelOutcome {
    TunnelOutcome {
        end: TunnelEnd::Stopped,
        auth_token: last.auth_token.clone(),
        was_connected: false,
    }
}

/// A human sentence for an end.
pub fn end_text(end: &TunnelEnd) -> String {
    match end {
        TunnelEnd::Stopped => "stopped".into(),
        TunnelEnd::AuthFailed(m) => format!("AUTH_FAILED: {m}"),
        TunnelEnd::Retry { reason, .. } => reason.clone(),
        TunnelEnd::Fatal(m) => m.clone(),
    }
}

async fn attempt(
    spec: &TunnelSpec,
    endpoint: &Endpoint,
    addr: SocketAddr,
    servers: &[(SocketAddr, bool)],
    rep: &Reporter,
    stop: &CancellationToken,
    auth_token: Option<String>,
) -> TunnelOutcome {
    let mut out = TunnelOutcome {
        end: TunnelEnd::Stopped,
        auth_token,
        was_connected: false,
    };
    let tcp = endpoint.proto.is_tcp();
    rep.stage(TunnelStage::Connecting { remote: addr, tcp });
    let fatal = |out: &mut TunnelOutcome, m: String| {
        rep.log(Level::ERROR, m.clone());
        out.end = TunnelEnd::Fatal(m);
    };

    // The machine's network before the tunnel (for the plan: default route, DHCP server).
    let discover = spec.net.discover.clone();
    let state = match tokio::task::spawn_blocking(move || netcfg::discover_state(&discover)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            fatal(
                &mut out,
                format!("reading the network configuration failed: {e}"),
            );
            return out;
        }
        Err(e) => {
            fatal(&mut out, format!("network discovery task failed: {e}"));
            return out;
        }
    };

    let link = if tcp {
        let timeout = endpoint
            .options
            .connect_timeout
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(TCP_CONNECT_TIMEOUT);
        tokio::select! {
            r = killswitch::tcp_link(addr, timeout) => r,
            () = stop.cancelled() => return out,
        }
    } else {
        killswitch::udp_link(addr).await
    };
    let link = match link {
        Ok(l) => l,
        Err(e) => {
            rep.log(Level::WARN, e.to_string());
            out.end = TunnelEnd::Retry {
                reason: e.to_string(),
                next_remote: true,
            };
            return out;
        }
    };

    let inputs = AttemptInputs {
        remote_addr: Some(addr.ip()),
        credentials: spec.credentials.clone(),
        auth_token: out.auth_token.clone(),
        gui_version: spec.gui_version.clone(),
    };
    let mut cfg = match client_config(&spec.profile, endpoint, &inputs) {
        Ok(c) => c,
        Err(e) => {
            fatal(&mut out, format!("profile: {e}"));
            return out;
        }
    };
    cfg.challenge_response = spec.challenge_response.clone();
    // Whoever runs the attempt relays sign-in URLs and CR_TEXT (TunnelEvent::SignIn/CrText).
    ovpn_core::sso::announce(&mut cfg);
    let tun_mtu = u32::from(cfg.tun_mtu);
    let seed = match ovpn_tokio::os_seed() {
        Ok(s) => s,
        Err(e) => {
            fatal(&mut out, format!("no randomness from the OS: {e}"));
            return out;
        }
    };
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let client = match Client::new(cfg, seed, Instant::now(), unix) {
        Ok(c) => c,
        Err(e) => {
            fatal(&mut out, format!("profile: {e}"));
            return out;
        }
    };
    let tun = match Tun::create(&TunConfig {
        name: spec.net.tun_name.clone(),
        mtu: tun_mtu,
    }) {
        Ok(t) => Arc::new(NetTun(t)),
        Err(e) => {
            fatal(&mut out, format!("cannot create the TUN device: {e}"));
            return out;
        }
    };
    let iface = tun.0.iface().clone();

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (driver, handle) = Driver::new(client, link, Arc::clone(&tun), ev_tx);
    let mut task = tokio::spawn(driver.run());
    let mut net: Option<NetSession> = None;
    let mut stats_tick = tokio::time::interval(STATS_EVERY);
    let mut closing = false;
    let mut config_error: Option<String> = None;
    let mut last_stage = None;
    let mut pending = sso::PendingAuth::new();
    // The kill switch `run` put up before the tunnel (the sign-in exception goes there).
    let pre_tunnel_ks = spec
        .net
        .kill_switch
        .as_ref()
        .filter(|_| spec.profile.redirect_gateway.is_some() || spec.net.kill_switch_always);

    let driver_end = loop {
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { continue };
                match ev {
                    Event::Stage(s) => {
                        let mapped = match s {
                            Stage::Tls => Some(TunnelStage::Tls),
                            Stage::Authenticating => Some(TunnelStage::Authenticating),
                            Stage::GettingConfig => Some(TunnelStage::Configuring),
                            _ => None,
                        };
                        if let Some(m) = mapped {
                            if last_stage.as_ref() != Some(&m) {
                                last_stage = Some(m.clone());
                                rep.stage(m);
                            }
                        }
                    }
                    Event::ConfigReceived(pushed) => {
                        if net.is_some() {
                            continue;
                        }
                        // The server decided: the rules below replace the sign-in exception.
                        pending.close(pre_tunnel_ks, servers, rep, false).await;
                        let (cfg, notes) = netconf::tunnel_network_config(&pushed, &spec.profile, addr.ip());
                        for n in notes {
                            rep.log(Level::WARN, n);
                        }
                        let redirects = spec.profile.redirect_gateway.is_some()
                            || cfg.redirect.is_some_and(|r| r.ipv4 || r.ipv6);
                        let guarded = spec.net.kill_switch.is_some() && (redirects || spec.net.kill_switch_always);
                        if let (Some(ks), true) = (spec.net.kill_switch.as_ref(), guarded) {
                            // Before the routes move: the tunnel is allowed, everything else stays blocked.
                            let tun_ref = Some((iface.name.as_str(), iface.index));
                            if let Err(e) = ks.apply(servers, tun_ref, cfg.tun_v6.is_some()).await {
                                config_error = Some(e);
                                handle.close();
                                closing = true;
                                continue;
                            }
                            rep.log(Level::INFO, format!("kill switch on: traffic leaves only through {}", iface.name));
                        }
                        let plan = netcfg::plan(&cfg, &state);
                        for line in plan.render().lines() {
                            rep.log(Level::INFO, line.to_owned());
                        }
                        let applied_plan = AppliedPlan {
                            plan: plan.clone(),
                            state: state.clone(),
                            interface: iface.name.clone(),
                            kill_switch: guarded,
                            allow_lan: spec.net.kill_switch.as_ref().is_some_and(|k| k.allow_lan),
                        };
                        let opts = spec.net.session.clone();
                        let iface2 = iface.clone();
                        let applied = tokio::task::spawn_blocking(move || NetSession::apply(&plan, &iface2, &opts)).await;
                        match applied {
                            Ok(Ok(s)) => {
                                net = Some(s);
                                out.was_connected = true;
                                let info = handle.session_info();
                                let _ = rep.tx.send(TunnelEvent::Negotiated(SessionDetails {
                                    remote_host: endpoint.host.clone(),
                                    remote: addr,
                                    tcp,
                                    cipher: info.as_ref().map(|i| i.cipher.to_owned()).or_else(|| pushed.cipher.clone()),
                                    tls: info.as_ref().map(|i| i.tls.clone()).filter(|t| !t.is_empty()),
                                    key_derivation: Some(if pushed.uses_tls_ekm() { "tls-ekm" } else { "legacy PRF" }.to_owned()),
                                    kill_switch: guarded,
                                    interface: iface.name.clone(),
                                }));
                                let _ = rep.tx.send(TunnelEvent::Plan(Box::new(applied_plan)));
                                let (v4, v6) = tunnel_addresses(&cfg);
                                rep.stage(TunnelStage::Connected {
                                    tunnel_ipv4: v4,
                                    tunnel_ipv6: v6,
                                    interface: iface.name.clone(),
                                });
                            }
                            Ok(Err(e)) => {
                                config_error = Some(format!("network configuration failed: {e}"));
                                handle.close();
                                closing = true;
                            }
                            Err(e) => {
                                config_error = Some(format!("network configuration task failed: {e}"));
                                handle.close();
                                closing = true;
                            }
                        }
                    }
                    Event::AuthToken { token, .. } => {
                        out.auth_token = Some(token.clone());
                        let _ = rep.tx.send(TunnelEvent::AuthToken(token));
                    }
                    Event::ChallengeNeeded(Challenge::CrText { text, echo, .. }) => pending.on_cr_text(rep, text, echo),
                    Event::ChallengeNeeded(c) => {
                        let _ = rep.tx.send(TunnelEvent::Challenge(c));
                    }
                    Event::SignIn(ev) => pending.on_sign_in(ev, rep, pre_tunnel_ks, servers, &state.resolvers).await,
                    Event::AuthPending { timeout_secs } => {
                        rep.log(Level::INFO, format!("authentication pending (timeout {timeout_secs:?} s)"));
                    }
                    Event::Info(t) | Event::InfoPre(t) => rep.log(Level::INFO, format!("server: {t}")),
                    Event::KeysRenewed { key_id } => {
                        rep.log(Level::DEBUG, format!("data channel keys renewed (key id {key_id})"));
                    }
                    Event::Disconnected(_) => {}
                }
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                handle.close();
            }
            Some(answer) = pending.next_answer() => sso::PendingAuth::answer(&handle, &answer),
            _ = stats_tick.tick(), if net.is_some() => {
                let _ = rep.tx.send(TunnelEvent::Stats(handle.stats()));
            }
            end = &mut task => break end,
        }
    };
    // What the driver sent right before it ended (a challenge comes just before the end).
    while let Ok(ev) = ev_rx.try_recv() {
        match ev {
            Event::ChallengeNeeded(c) => {
                let _ = rep.tx.send(TunnelEvent::Challenge(c));
            }
            Event::AuthToken { token, .. } => {
                out.auth_token = Some(token.clone());
                let _ = rep.tx.send(TunnelEvent::AuthToken(token));
            }
            _ => {}
        }
    }

    // A sign-in exception in the kill switch ends with the attempt.
    pending.close(pre_tunnel_ks, servers, rep, true).await;
    // Undo the network before anything else, on every path.
    if let Some(mut s) = net.take() {
        match tokio::task::spawn_blocking(move || s.undo_all()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => rep.log(
                Level::ERROR,
                format!("undoing the network configuration failed: {e}"),
            ),
            Err(e) => rep.log(Level::ERROR, format!("undo task failed: {e}")),
        }
    }
    drop(tun);
    let _ = rep.tx.send(TunnelEvent::Stats(handle.stats()));

    out.end = match driver_end {
        Err(e) => TunnelEnd::Fatal(format!("the tunnel task failed: {e}")),
        Ok(_) if config_error.is_some() => TunnelEnd::Fatal(config_error.unwrap_or_default()),
        Ok(_) if stop.is_cancelled() => TunnelEnd::Stopped,
        Ok(DriverEnd::Disconnected(r)) => match r {
            DisconnectReason::ClosedByUser => TunnelEnd::Stopped,
            DisconnectReason::AuthFailed { reason } if reason.is_empty() => TunnelEnd::AuthFailed(
                "the server gave no reason (a wrong password, or a sign-in that was denied)".into(),
            ),
            DisconnectReason::AuthFailed { reason } => TunnelEnd::AuthFailed(reason),
            // An expired/refused token: the caller signs in again once, with the password.
            r @ DisconnectReason::AuthTokenRejected => {
                out.auth_token = None;
                TunnelEnd::AuthFailed(r.to_string())
            }
            r @ (DisconnectReason::NoServerReply { .. }
            | DisconnectReason::HandshakeTimeout { .. }) => TunnelEnd::Retry {
                reason: r.to_string(),
                next_remote: true,
            },
            r if r.should_reconnect() => TunnelEnd::Retry {
                reason: r.to_string(),
                next_remote: false,
            },
            r => TunnelEnd::Fatal(r.to_string()),
        },
        Ok(e @ DriverEnd::LinkClosed(_)) => TunnelEnd::Retry {
            reason: e.to_string(),
            next_remote: !out.was_connected,
        },
        Ok(e @ DriverEnd::Tun(_)) => TunnelEnd::Fatal(e.to_string()),
    };
    out
}

fn tunnel_addresses(c: &netcfg::TunnelNetworkConfig) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let v4 = c.tun_v4.map(|t| match t {
        TunV4::Subnet { addr, .. } => addr,
        TunV4::PointToPoint { local, .. } => local,
    });
    (v4, c.tun_v6.map(|t| t.addr))
}

/// The address of a stage for display (`udp 198.18.0.1:1194`).
pub fn remote_text(remote: &SocketAddr, tcp: bool) -> String {
    format!("{} {}", if tcp { "tcp" } else { "udp" }, remote)
}
