//! The stand-in attempt for tests of the service itself (`--stub-tunnel`): it never
//! sends a packet, creates no device and changes nothing on the machine, so the IPC,
//! sessions, access rules and clients can be tested where a tunnel cannot run (a plain
//! network namespace, Windows under Wine: no wintun, WFP or DNS settings there).

use std::time::Duration;

use ipc::{ConnectionInfo, LogLevel, ShortText, Stage, Stats, Transport};
use tokio_util::sync::CancellationToken;

use super::attempt::{remote_text, Reporter};
use super::{unix_ms, AttemptSpec, Events, SessionEvent, TunnelEnd, TunnelOutcome};

/// How far the stand-in goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StubMode {
    /// Stays in `connecting` until stopped (a server that never answers).
    #[default]
    Hold,
    /// Goes through every stage to `connected` (with a made-up tunnel address), then
    /// stays there until stopped. Nothing is configured on the machine.
    Connect,
}

/// The tunnel address the `connect` stand-in reports (TEST-NET-2, never routed).
const STUB_ADDR: [u8; 4] = [198, 51, 100, 2];
/// The interface name it reports (no such device exists).
pub const STUB_IFACE: &str = "oxi-stub";

pub async fn run(
    mode: StubMode,
    spec: &AttemptSpec,
    events: Events,
    stop: CancellationToken,
) -> TunnelOutcome {
    let rep = Reporter::new(events);
    let endpoint = spec
        .session
        .profile
        .endpoints()
        .get(spec.remote_index)
        .cloned();
    let (host, port, tcp) = endpoint
        .as_ref()
        .map(|e| (e.host.clone(), e.port, e.proto.is_tcp()))
        .unwrap_or_else(|| ("(no remote)".into(), 0, false));
    rep.stage(Stage::Resolving);
    // A literal address stands for itself; a name is shown as written (never resolved).
    let shown = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => remote_text(&(ip, port).into(), tcp),
        Err(_) => format!("{} {host}:{port}", if tcp { "tcp" } else { "udp" }),
    };
    rep.stage(Stage::Connecting {
        remote: ShortText::sanitized(&shown),
    });
    rep.log(
        LogLevel::Warn,
        "stand-in tunnel (--stub-tunnel): no packet is sent and nothing on this machine changes",
    );
    let mut out = TunnelOutcome::new(TunnelEnd::Stopped, spec.auth_token.clone());
    if mode == StubMode::Connect {
        for s in [Stage::Tls, Stage::Authenticating, Stage::Configuring] {
            rep.stage(s);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                () = stop.cancelled() => return out,
            }
        }
        rep.send(SessionEvent::Connection(ConnectionInfo {
            server_addr: host
                .parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            server_port: port,
            transport: if tcp { Transport::Tcp } else { Transport::Udp },
            remote: ShortText::sanitized(&host),
            cipher: Some(ShortText::sanitized("none (stand-in)")),
            tls: None,
            key_derivation: None,
            kill_switch: false,
            data_format: None,
            interface: Some(ShortText::sanitized(STUB_IFACE)),
        }));
        let since = unix_ms();
        rep.stage(Stage::Connected {
            tunnel_ipv4: Some(std::net::Ipv4Addr::from(STUB_ADDR).into()),
            tunnel_ipv6: None,
            interface: Some(ShortText::sanitized(STUB_IFACE)),
        });
        out.was_connected = true;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => rep.send(SessionEvent::Stats(Stats {
                    since_unix_ms: since,
                    ..Stats::default()
                })),
                () = stop.cancelled() => return out,
            }
        }
    }
    stop.cancelled().await;
    out
}
