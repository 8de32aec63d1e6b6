//! One tunnel connection attempt: resolve, connect, TLS, authenticate, configure the
//! network through netcfg, move packets (ovpn-tokio driver) until it ends, then undo
//! every network change before returning. Retries are the supervisor's.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipc::{ConnectionInfo, LogLevel, ShortText, Stage, Stats, Transport};
use netcfg::{NetSession, Tun, TunConfig, TunV4};
use ovpn_core::session::{Challenge, Client, DisconnectReason, Event, Stage as CoreStage};
use ovpn_profile::Endpoint;
use ovpn_tokio::config::{client_config, AttemptInputs};
use ovpn_tokio::proxy::ProxyError;
use ovpn_tokio::{resolve, Driver, DriverEnd, Family, TunDevice};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::overlap::{NetPrep, PreTunnelKs};
use super::{
    end_text, killswitch, netconf, route_plan, sso, unix_ms, Events, NetOptions, SessionEvent,
    TunnelEnd, TunnelOutcome,
};

/// How often [`SessionEvent::Stats`] is sent while connected.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// TCP connect timeout when the profile sets no `connect-timeout`.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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

/// Sends what the attempt reports; a closed receiver is fine (nobody listens).
pub(crate) struct Reporter {
    tx: Events,
    /// When the tunnel came up (unix ms), for [`Stats::since_unix_ms`].
    since_ms: u64,
}

impl Reporter {
    pub(crate) fn new(tx: Events) -> Self {
        Self { tx, since_ms: 0 }
    }
    pub(crate) fn send(&self, ev: SessionEvent) {
        let _ = self.tx.send(ev);
    }
    pub(crate) fn stage(&self, s: Stage) {
        self.send(SessionEvent::Stage(s));
    }
    pub(crate) fn log(&self, level: LogLevel, msg: impl Into<String>) {
        self.send(SessionEvent::Log(level, msg.into()));
    }
    fn stats(&self, s: ovpn_core::session::Stats) {
        self.send(SessionEvent::Stats(Stats {
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            packets_in: s.packets_in,
            packets_out: s.packets_out,
            since_unix_ms: self.since_ms,
            drops: ipc::DropCounts {
                malformed: s.dropped_malformed,
                replayed: s.dropped_replayed,
                auth_failed: s.dropped_auth_failed,
                compression: s.dropped_compressed,
                unknown_key: s.dropped_unknown_key,
                epoch: s.dropped_epoch,
                not_connected: s.dropped_not_connected,
                other: s.dropped_other,
            },
            mss_clamped: s.mss_clamped,
        }));
    }
}

/// Everything one attempt needs, resolved by the launcher.
pub struct AttemptInput<'a> {
    pub spec: &'a super::AttemptSpec,
    pub net: NetOptions,
}

/// Runs one attempt against the session's `remote_index`-th endpoint (each of its
/// addresses in turn) until it ends or `stop` is cancelled. Every network change is
/// undone before this returns.
pub async fn run(
    input: AttemptInput<'_>,
    events: Events,
    stop: CancellationToken,
) -> TunnelOutcome {
    let spec = input.spec;
    let net = &input.net;
    let mut rep = Reporter::new(events);
    let profile = &spec.session.profile;
    let endpoints = profile.endpoints();
    let chosen: Vec<Endpoint> = endpoints
        .get(spec.remote_index)
        .or(endpoints.first())
        .cloned()
        .into_iter()
        .collect();
    let mut last = TunnelOutcome::new(
        TunnelEnd::Fatal("the profile has no usable `remote`".into()),
        spec.auth_token.clone(),
    );
    // Resolve every remote first: once the kill switch is on, DNS outside the tunnel is blocked.
    let mut targets: Vec<(Endpoint, SocketAddr)> = Vec::new();
    for endpoint in &chosen {
        rep.stage(Stage::Resolving);
        // Through a proxy the socket goes to the proxy, which resolves the server's name.
        let (hop_host, hop_port, family) = first_hop(endpoint);
        rep.log(LogLevel::Debug, format!("resolving {hop_host}"));
        let addrs = tokio::select! {
            r = resolve(hop_host, hop_port, family) => r,
            () = stop.cancelled() => return TunnelOutcome::new(TunnelEnd::Stopped, last.auth_token),
        };
        let ks = net.kill_switch.as_ref();
        let addrs = match addrs {
            Ok(a) => {
                if let Some(ks) = ks {
                    ks.remember(hop_host, hop_port, family, &a);
                }
                Ok(a)
            }
            // Reconnecting: the kill switch blocks DNS outside the tunnel, so use what this
            // connection resolved before (else it could never reconnect to a host name).
            Err(e) => match ks.and_then(|k| k.resolved_before(hop_host, hop_port, family)) {
                Some(a) => {
                    rep.log(
                        LogLevel::Info,
                        format!("{e}; using the addresses resolved before"),
                    );
                    Ok(a)
                }
                None => Err(e),
            },
        };
        match addrs {
            Ok(a) => targets.extend(a.into_iter().map(|addr| (endpoint.clone(), addr))),
            Err(e) => {
                rep.log(LogLevel::Warn, format!("{e}"));
                last.end = TunnelEnd::Retry {
                    reason: e.to_string(),
                    next_remote: true,
                };
                last.resolve_failed = true;
            }
        }
    }
    // The kill switch's exceptions: the servers, or the proxies in front of them (a
    // SOCKS relay for UDP is added once the proxy names it).
    let servers: Vec<(SocketAddr, bool)> = targets
        .iter()
        .map(|(e, a)| (*a, e.proto.is_tcp() || has_proxy(e)))
        .collect();
    // The first apply runs beside the link setup and the TLS handshake (it used to be
    // awaited here, on the connect's critical path). Every step that changes what the
    // kill switch or the routing lets through waits for it first (see [`PreTunnelKs`]).
    let mut pre_ks = match net.kill_switch.as_ref() {
        Some(ks)
            if (profile.redirect_gateway.is_some() || net.kill_switch_always)
                && !servers.is_empty() =>
        {
            PreTunnelKs::start(ks, servers.clone())
        }
        _ => PreTunnelKs::none(),
    };
    let mut last = attempts(
        spec,
        net,
        &targets,
        &servers,
        &mut rep,
        &stop,
        &mut pre_ks,
        last,
    )
    .await;
    // Never return with the apply still running: the supervisor may `remove()` the kill
    // switch next, and that must come after this apply, not before it.
    if let Err(e) = pre_ks.ready(&rep).await {
        last.end = TunnelEnd::Fatal(e);
    }
    last
}

/// [`run`]'s attempts against each resolved address in turn.
#[allow(clippy::too_many_arguments)]
async fn attempts(
    spec: &super::AttemptSpec,
    net: &NetOptions,
    targets: &[(Endpoint, SocketAddr)],
    servers: &[(SocketAddr, bool)],
    rep: &mut Reporter,
    stop: &CancellationToken,
    pre_ks: &mut PreTunnelKs,
    mut last: TunnelOutcome,
) -> TunnelOutcome {
    for (i, (endpoint, addr)) in targets.iter().enumerate() {
        let out = attempt(
            spec,
            net,
            endpoint,
            *addr,
            servers,
            rep,
            stop,
            pre_ks,
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
            && out.challenge.is_none()
            && !stop.is_cancelled();
        last = out;
        if !try_next || i + 1 == targets.len() {
            return last;
        }
        rep.log(
            LogLevel::Warn,
            format!("{addr}: {}; trying the next address", end_text(&last.end)),
        );
    }
    last
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    spec: &super::AttemptSpec,
    net: &NetOptions,
    endpoint: &Endpoint,
    addr: SocketAddr,
    servers: &[(SocketAddr, bool)],
    rep: &mut Reporter,
    stop: &CancellationToken,
    pre_ks: &mut PreTunnelKs,
    auth_token: Option<ovpn_core::config::Secret>,
) -> TunnelOutcome {
    let profile = &spec.session.profile;
    let mut out = TunnelOutcome::new(TunnelEnd::Stopped, auth_token);
    let tcp = endpoint.proto.is_tcp();
    let shown = if has_proxy(endpoint) {
        format!("{}:{} via the proxy {addr}", endpoint.host, endpoint.port)
    } else {
        remote_text(&addr, tcp)
    };
    rep.stage(Stage::Connecting {
        remote: ShortText::sanitized(&shown),
    });
    let fatal = |rep: &Reporter, out: &mut TunnelOutcome, m: String| {
        rep.log(LogLevel::Error, m.clone());
        out.end = TunnelEnd::Fatal(m);
    };

    // The machine's network before the tunnel and the DNS backend, made ready while the
    // link and the handshake go on; the server's configuration waits for them.
    let mut prep = NetPrep::start(net);

    let timeout = server_poll(endpoint).unwrap_or(TCP_CONNECT_TIMEOUT);
    let mut servers_and_relay = servers.to_vec();
    let link =
        if has_proxy(endpoint) {
            let r = tokio::select! {
                r = proxy_link(spec, endpoint, addr, timeout) => r,
                () = stop.cancelled() => return out,
            };
            match r {
                Ok((link, relay)) => {
                    rep.log(
                        LogLevel::Info,
                        format!(
                            "connected through the proxy {addr} to {}:{}",
                            endpoint.host, endpoint.port
                        ),
                    );
                    if let Some(relay) = relay {
                        servers_and_relay.push((relay, false));
                        if let Some(ks) = net.kill_switch.as_ref().filter(|_| {
                            profile.redirect_gateway.is_some() || net.kill_switch_always
                        }) {
                            // After the first apply, which would otherwise take the relay back.
                            if let Err(e) = pre_ks.ready(rep).await {
                                out.end = TunnelEnd::Fatal(e);
                                return out;
                            }
                            if let Err(e) = ks.apply(&servers_and_relay, None, false).await {
                                fatal(rep, &mut out, e);
                                return out;
                            }
                        }
                    }
                    Ok(link)
                }
                Err(ViaProxy::Proxy(e)) if e.is_fatal() => {
                    fatal(rep, &mut out, format!("proxy {addr}: {e}"));
                    return out;
                }
                Err(ViaProxy::Proxy(e)) => Err(format!("proxy {addr}: {e}")),
                Err(ViaProxy::Link(e)) => Err(format!("proxy {addr}: {e}")),
            }
        } else if tcp {
            tokio::select! {
                r = killswitch::tcp_link(addr, timeout) => r.map_err(|e| e.to_string()),
                () = stop.cancelled() => return out,
            }
        } else {
            killswitch::udp_link(addr).await.map_err(|e| e.to_string())
        };
    let servers: &[(SocketAddr, bool)] = &servers_and_relay;
    let link = match link {
        Ok(l) => l,
        Err(e) => {
            rep.log(LogLevel::Warn, e.clone());
            out.end = TunnelEnd::Retry {
                reason: e,
                next_remote: true,
            };
            return out;
        }
    };

    let inputs = AttemptInputs {
        remote_addr: Some(addr.ip()),
        credentials: spec.session.credentials.clone(),
        auth_token: out.auth_token.clone(),
        gui_version: Some(super::gui_version()),
        key_passphrase: spec.session.key_passphrase.clone(),
    };
    let mut cfg = match client_config(profile, endpoint, &inputs) {
        Ok(c) => c,
        Err(e) => {
            fatal(rep, &mut out, format!("profile: {e}"));
            return out;
        }
    };
    cfg.challenge_response = spec.challenge_response.clone();
    // The supervisor relays sign-in URLs and CR_TEXT (SessionEvent::SignIn/CrText).
    ovpn_core::sso::announce(&mut cfg);
    let tun_mtu = u32::from(cfg.tun_mtu);
    let seed = match ovpn_tokio::os_seed() {
        Ok(s) => s,
        Err(e) => {
            fatal(rep, &mut out, format!("no randomness from the OS: {e}"));
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
            fatal(rep, &mut out, format!("profile: {e}"));
            return out;
        }
    };
    let tun = match Tun::create(&TunConfig {
        name: net.tun_name.clone(),
        mtu: tun_mtu,
    }) {
        Ok(t) => Arc::new(NetTun(t)),
        Err(e) => {
            fatal(rep, &mut out, format!("cannot create the TUN device: {e}"));
            return out;
        }
    };
    let iface = tun.0.iface().clone();

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let (driver, handle) = Driver::new(client, link, Arc::clone(&tun), ev_tx);
    let mut task = tokio::spawn(driver.run());
    let mut applied_net: Option<NetSession> = None;
    let mut stats_tick = tokio::time::interval(STATS_EVERY);
    let mut closing = false;
    let mut config_error: Option<String> = None;
    let mut last_stage = None;
    let mut pending = sso::PendingAuth::new();
    // `server-poll-timeout`: the server must answer this soon, else the next one is tried.
    let poll = server_poll(endpoint);
    let poll_deadline = tokio::time::sleep(poll.unwrap_or(Duration::MAX));
    tokio::pin!(poll_deadline);
    let mut awaiting_server = poll.is_some();
    let mut poll_expired = false;
    // The kill switch `run` put up before the tunnel (the sign-in exception goes there).
    let pre_tunnel_ks = net
        .kill_switch
        .as_ref()
        .filter(|_| profile.redirect_gateway.is_some() || net.kill_switch_always);

    let driver_end = loop {
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { continue };
                match ev {
                    Event::Stage(s) => {
                        if s != CoreStage::Connecting {
                            awaiting_server = false;
                        }
                        let mapped = match s {
                            CoreStage::Tls => Some(Stage::Tls),
                            CoreStage::Authenticating => Some(Stage::Authenticating),
                            CoreStage::GettingConfig => Some(Stage::Configuring),
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
                        if applied_net.is_some() {
                            continue;
                        }
                        // The kill switch is in before anything below replaces it or moves a route.
                        if let Err(e) = pre_ks.ready(rep).await {
                            config_error = Some(e);
                            handle.close();
                            closing = true;
                            continue;
                        }
                        // The server decided: the rules below replace the sign-in exception.
                        pending.close(pre_tunnel_ks, servers, rep, false).await;
                        let (cfg, notes) = netconf::tunnel_network_config(&pushed, profile, addr.ip());
                        for n in notes {
                            rep.log(LogLevel::Warn, n);
                        }
                        let redirects = profile.redirect_gateway.is_some()
                            || cfg.redirect.is_some_and(|r| r.ipv4 || r.ipv6);
                        let guarded = net.kill_switch.is_some() && (redirects || net.kill_switch_always);
                        if let (Some(ks), true) = (net.kill_switch.as_ref(), guarded) {
                            // Before the routes move: the tunnel is allowed, everything else stays blocked.
                            let tun_ref = Some((iface.name.as_str(), iface.index));
                            if let Err(e) = ks.apply(servers, tun_ref, cfg.tun_v6.is_some()).await {
                                config_error = Some(e);
                                handle.close();
                                closing = true;
                                continue;
                            }
                            rep.log(LogLevel::Info, format!("kill switch on: traffic leaves only through {}", iface.name));
                        }
                        let state = match prep.state().await {
                            Ok(s) => s.clone(),
                            Err(e) => {
                                config_error = Some(e);
                                handle.close();
                                closing = true;
                                continue;
                            }
                        };
                        let plan = netcfg::plan(&cfg, &state);
                        for line in plan.render().lines() {
                            rep.log(LogLevel::Info, line.to_owned());
                        }
                        let applied_plan = AppliedPlan {
                            plan: plan.clone(),
                            state,
                            interface: iface.name.clone(),
                            kill_switch: guarded,
                            allow_lan: net.kill_switch.as_ref().is_some_and(|k| k.allow_lan),
                        };
                        let opts = net.session.clone();
                        let iface2 = iface.clone();
                        let dns = prep.take_dns();
                        let applied = tokio::task::spawn_blocking(move || NetSession::apply_with_dns(&plan, &iface2, &opts, dns)).await;
                        match applied {
                            Ok(Ok(s)) => {
                                applied_net = Some(s);
                                out.was_connected = true;
                                let info = handle.session_info();
                                rep.send(SessionEvent::Connection(ConnectionInfo {
                                    server_addr: addr.ip(),
                                    server_port: addr.port(),
                                    transport: if tcp { Transport::Tcp } else { Transport::Udp },
                                    remote: ShortText::sanitized(&endpoint.host),
                                    cipher: info.as_ref().map(|i| if i.legacy_cipher { format!("{} (legacy: not negotiated)", i.cipher) } else { i.cipher.to_owned() }).or_else(|| pushed.cipher.clone()).as_deref().map(ShortText::sanitized),
                                    tls: info.as_ref().map(|i| i.tls.clone()).filter(|t| !t.is_empty()).as_deref().map(ShortText::sanitized),
                                    key_derivation: Some(ShortText::sanitized(if pushed.uses_tls_ekm() { "tls-ekm" } else { "legacy PRF" })),
                                    kill_switch: guarded,
                                    data_format: info.as_ref().map(|i| ShortText::sanitized(&i.data_format())),
                                    interface: Some(ShortText::sanitized(&iface.name)),
                                }));
                                let (routes, route_notes) = route_plan::entries(&applied_plan);
                                rep.send(SessionEvent::Routes(routes, route_notes));
                                let (v4, v6) = tunnel_addresses(&cfg);
                                rep.since_ms = unix_ms();
                                rep.stage(Stage::Connected {
                                    tunnel_ipv4: v4,
                                    tunnel_ipv6: v6,
                                    interface: Some(ShortText::sanitized(&iface.name)),
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
                    Event::AuthToken { token, .. } => out.auth_token = Some(token),
                    Event::ChallengeNeeded(Challenge::CrText { text, echo, .. }) => pending.on_cr_text(rep, text, echo),
                    Event::ChallengeNeeded(c) => out.challenge = Some(c),
                    Event::SignIn(ev) => match pre_ks.ready(rep).await.and(prep.state().await.map(|s| s.resolvers.clone())) {
                        // The exception replaces the first apply's rules: it must come after them.
                        Ok(resolvers) => pending.on_sign_in(ev, rep, pre_tunnel_ks, servers, &resolvers).await,
                        Err(e) => {
                            if !closing {
                                config_error = Some(e);
                                handle.close();
                                closing = true;
                            }
                        }
                    },
                    Event::AuthPending { timeout_secs } => {
                        rep.log(LogLevel::Info, format!("authentication pending (timeout {timeout_secs:?} s)"));
                    }
                    Event::Info(t) | Event::InfoPre(t) => rep.log(LogLevel::Info, format!("server: {t}")),
                    Event::KeysRenewed { key_id } => {
                        rep.log(LogLevel::Debug, format!("data channel keys renewed (key id {key_id})"));
                    }
                    Event::Disconnected(_) => {}
                }
            }
            r = pre_ks.ready(rep), if pre_ks.pending() => {
                if let (Err(e), false) = (r, closing) {
                    config_error = Some(e);
                    handle.close();
                    closing = true;
                }
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                handle.close();
            }
            () = &mut poll_deadline, if awaiting_server && !closing => {
                awaiting_server = false;
                poll_expired = true;
                closing = true;
                handle.close();
            }
            Some(answer) = pending.next_answer() => sso::PendingAuth::answer(&handle, &answer),
            _ = stats_tick.tick(), if applied_net.is_some() => rep.stats(handle.stats()),
            end = &mut task => break end,
        }
    };
    // What the driver sent right before it ended (a challenge comes just before the end).
    while let Ok(ev) = ev_rx.try_recv() {
        match ev {
            // CR_TEXT is answered on the live session, which is gone.
            Event::ChallengeNeeded(Challenge::CrText { .. }) => rep.log(
                LogLevel::Warn,
                "the server's challenge came after the attempt ended",
            ),
            Event::ChallengeNeeded(c) => out.challenge = Some(c),
            Event::AuthToken { token, .. } => out.auth_token = Some(token),
            _ => {}
        }
    }

    // A sign-in exception in the kill switch ends with the attempt.
    pending.close(pre_tunnel_ks, servers, rep, true).await;
    // Undo the network before anything else, on every path.
    if let Some(mut s) = applied_net.take() {
        match tokio::task::spawn_blocking(move || s.undo_all()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => rep.log(
                LogLevel::Error,
                format!("undoing the network configuration failed: {e}"),
            ),
            Err(e) => rep.log(LogLevel::Error, format!("undo task failed: {e}")),
        }
    }
    drop(tun);
    rep.stats(handle.stats());

    out.end = match driver_end {
        Err(e) => TunnelEnd::Fatal(format!("the tunnel task failed: {e}")),
        Ok(_) if config_error.is_some() => TunnelEnd::Fatal(config_error.unwrap_or_default()),
        Ok(_) if stop.is_cancelled() => TunnelEnd::Stopped,
        Ok(_) if poll_expired => TunnelEnd::Retry {
            reason: format!(
                "no reply from the server within {} s (server-poll-timeout)",
                poll.unwrap_or_default().as_secs()
            ),
            next_remote: true,
        },
        Ok(DriverEnd::Disconnected(r)) => match r {
            DisconnectReason::ClosedByUser => TunnelEnd::Stopped,
            DisconnectReason::AuthFailed { reason } if reason.is_empty() => TunnelEnd::AuthFailed(
                "the server gave no reason (a wrong password, or a sign-in that was denied)".into(),
            ),
            DisconnectReason::AuthFailed { reason } => TunnelEnd::AuthFailed(reason),
            // An expired/refused token: the supervisor signs in again once, with the password.
            r @ DisconnectReason::AuthTokenRejected => {
                out.auth_token = None;
                TunnelEnd::AuthFailed(r.to_string())
            }
            r @ (DisconnectReason::NoServerReply { .. }
            | DisconnectReason::HandshakeTimeout { .. }) => TunnelEnd::Retry {
                reason: r.to_string(),
                next_remote: true,
            },
            r @ (DisconnectReason::Tls(_) | DisconnectReason::PushRejected(_)) => {
                TunnelEnd::Refused(r.to_string())
            }
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

/// `server-poll-timeout` (or its other name, `connect-timeout`): how long a server
/// has to answer, the TCP connection included.
fn server_poll(endpoint: &Endpoint) -> Option<Duration> {
    let o = &endpoint.options;
    o.server_poll_timeout
        .or(o.connect_timeout)
        .map(|s| Duration::from_secs(u64::from(s.max(1))))
}

fn tunnel_addresses(c: &netcfg::TunnelNetworkConfig) -> (Option<IpAddr>, Option<IpAddr>) {
    let v4 = c.tun_v4.map(|t| match t {
        TunV4::Subnet { addr, .. } => addr,
        TunV4::PointToPoint { local, .. } => local,
    });
    (v4.map(IpAddr::V4), c.tun_v6.map(|t| IpAddr::V6(t.addr)))
}

/// The address of a stage for display (`udp 198.18.0.1:1194`).
/// Whether `e` is reached through an `http-proxy` or `socks-proxy`.
fn has_proxy(e: &Endpoint) -> bool {
    e.options.http_proxy.is_some() || e.options.socks_proxy.is_some()
}

/// Where the first socket goes: the proxy in front of the server, or the server.
fn first_hop(e: &Endpoint) -> (&str, u16, Family) {
    if let Some(h) = &e.options.http_proxy {
        (&h.host, h.port, Family::Any)
    } else if let Some(s) = &e.options.socks_proxy {
        (&s.host, s.port, Family::Any)
    } else {
        (&e.host, e.port, Family::of(e.proto))
    }
}

/// Why the link through a proxy could not be set up.
enum ViaProxy {
    Link(ovpn_tokio::LinkError),
    Proxy(ProxyError),
}

impl From<ProxyError> for ViaProxy {
    fn from(e: ProxyError) -> Self {
        ViaProxy::Proxy(e)
    }
}

/// The link to `endpoint` through its proxy at `proxy` (marked sockets, like the direct
/// ones): HTTP `CONNECT`, SOCKS5 `CONNECT`, or SOCKS5 `UDP ASSOCIATE` (then the relay's
/// address is returned too: the kill switch must let datagrams to it through).
async fn proxy_link(
    spec: &super::AttemptSpec,
    endpoint: &Endpoint,
    proxy: SocketAddr,
    timeout: Duration,
) -> Result<(ovpn_tokio::Link, Option<SocketAddr>), ViaProxy> {
    use ovpn_tokio::proxy;
    let creds = spec.session.proxy_credentials.as_ref();
    let dial = || async move {
        killswitch::tcp_stream(proxy, timeout)
            .await
            .map_err(ViaProxy::Link)
    };
    if let Some(h) = &endpoint.options.http_proxy {
        if !endpoint.proto.is_tcp() {
            return Err(ViaProxy::Proxy(ProxyError::HttpNeedsTcp));
        }
        let cfg = proxy::HttpProxyConfig::from_profile(h, &endpoint.options.http_proxy_options);
        let s =
            proxy::http_connect(dial, &endpoint.host, endpoint.port, &cfg, creds, timeout).await?;
        return Ok((ovpn_tokio::Link::Tcp(s), None));
    }
    let mut control = dial().await?;
    if endpoint.proto.is_tcp() {
        proxy::socks_connect(&mut control, &endpoint.host, endpoint.port, creds, timeout).await?;
        return Ok((ovpn_tokio::Link::Tcp(control), None));
    }
    let relay = proxy::socks_udp_associate(&mut control, proxy, creds, timeout).await?;
    let header = proxy::udp_header(&endpoint.host, endpoint.port)?;
    let sock = killswitch::udp_socket(relay)
        .await
        .map_err(ViaProxy::Link)?;
    Ok((
        ovpn_tokio::Link::SocksUdp {
            sock,
            control,
            header,
        },
        Some(relay),
    ))
}

pub fn remote_text(remote: &SocketAddr, tcp: bool) -> String {
    format!("{} {}", if tcp { "tcp" } else { "udp" }, remote)
}
