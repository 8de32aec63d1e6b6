//! `route-check ADDR`: which route the kernel picks for a destination, and whether
//! that is one of our tunnels. Read-only; any member may ask (the same facts
//! `ip route get` gives every local user), but session ids are shown only to those
//! who may see the session.

use std::net::IpAddr;

use ipc::{IpcError, RouteExplanation, SessionId, ShortText};

/// A tunnel interface of a connected session, as the service knows it.
pub struct TunnelIface {
    pub session: SessionId,
    pub interface: String,
    pub visible: bool,
}

/// Blocking (netlink); call from `spawn_blocking`.
pub fn explain(addr: IpAddr, tunnels: &[TunnelIface]) -> Result<RouteExplanation, IpcError> {
    let mut routes = netcfg::Routes::open().map_err(IpcError::internal)?;
    let route = routes.lookup(addr).map_err(IpcError::internal)?;
    let iface = match route.as_ref().and_then(|r| r.oif) {
        Some(i) => routes.iface(i).map_err(IpcError::internal)?,
        None => None,
    };
    let tunnel = iface
        .as_ref()
        .and_then(|i| tunnels.iter().find(|t| t.interface == i.name));
    let dev = iface.as_ref().map(|i| i.name.clone());
    let gateway = route.as_ref().and_then(|r| r.gateway);
    let explanation = match (&route, tunnel) {
        (None, _) => format!("{addr} is unreachable: no route"),
        (Some(r), _) if r.kind == netcfg::RouteRecord::KIND_LOCAL => {
            format!("{addr} is this machine")
        }
        (Some(_), Some(t)) => format!("{addr} goes into the tunnel ({})", t.interface),
        (Some(r), None) => {
            let via = gateway.map_or_else(|| "directly".to_owned(), |g| format!("via {g}"));
            let ours = if r.is_ours() {
                " (a route OxiVPN added around the tunnel)"
            } else {
                ""
            };
            format!(
                "{addr} does not use a tunnel: {via} on {}{ours}",
                dev.as_deref().unwrap_or("?")
            )
        }
    };
    Ok(RouteExplanation {
        addr,
        session: tunnel.filter(|t| t.visible).map(|t| t.session),
        via_tunnel: tunnel.is_some(),
        interface: dev.as_deref().map(ShortText::sanitized),
        gateway,
        route: route.as_ref().map(|r| {
            ShortText::sanitized(&format!(
                "{}{}",
                r,
                dev.as_deref()
                    .map(|d| format!(" dev {d}"))
                    .unwrap_or_default()
            ))
        }),
        explanation: ShortText::sanitized(&explanation),
    })
}
