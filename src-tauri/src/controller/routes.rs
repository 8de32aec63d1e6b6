//! Which way traffic goes: route checks the helper answers, the session's route plan
//! in the window's words, and sample destinations worth checking.

use std::net::IpAddr;

use super::Actor;
use crate::error::{from_client_error, AppError};
use crate::model::{ConnState, RouteCheckView, RoutePlanEntry, RouteSide, RoutesView};

impl Actor {
    async fn route_check(
        &mut self,
        addr: IpAddr,
        label: String,
    ) -> Result<RouteCheckView, AppError> {
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        let r = client
            .route_check(addr)
            .await
            .map_err(|e| from_client_error(e, &socket))?;
        Ok(RouteCheckView {
            address: r.addr.to_string(),
            label,
            via_tunnel: r.via_tunnel,
            interface: r.interface.map(|s| s.as_str().to_string()),
            gateway: r.gateway.map(|g| g.to_string()),
            route: r.route.map(|s| s.as_str().to_string()),
            explanation: r.explanation.as_str().to_string(),
        })
    }

    pub(super) async fn route_check_text(
        &mut self,
        text: &str,
    ) -> Result<RouteCheckView, AppError> {
        let addr = parse_address(text)?;
        self.route_check(addr, text.trim().to_string()).await
    }

    /// The Routes view for the first connected profile (else the first one started).
    pub(super) async fn routes(&mut self) -> Result<RoutesView, AppError> {
        let focus = self
            .links
            .iter()
            .find(|l| matches!(l.state, ConnState::Connected { .. }))
            .or_else(|| self.links.first());
        let (profile_id, server, tunnel_ipv4, session) = match focus {
            Some(l) => (
                Some(l.profile_id.clone()),
                l.server.clone(),
                match &l.state {
                    ConnState::Connected { session } => session.tunnel_ipv4.clone(),
                    _ => None,
                },
                l.session
                    .filter(|_| matches!(l.state, ConnState::Connected { .. })),
            ),
            None => (None, None, None, None),
        };
        let details = profile_id.and_then(|id| self.details(&id).ok());
        let mut tunnel_networks = Vec::new();
        if let Some(d) = &details {
            if d.redirect_gateway {
                tunnel_networks.push("All traffic (0.0.0.0/1 and 128.0.0.0/1)".to_string());
            }
            tunnel_networks.extend(d.routes.iter().cloned());
        }
        let mut probes: Vec<(IpAddr, String)> = vec![(
            IpAddr::from([1, 1, 1, 1]),
            "The internet (1.1.1.1)".to_string(),
        )];
        if let Some(server) = server.as_deref().and_then(server_ip) {
            probes.push((server, "The VPN server".to_string()));
        }
        if let Some(a) = tunnel_ipv4.as_deref().and_then(|a| a.parse().ok()) {
            probes.push((a, "Your VPN address".to_string()));
        }
        if let Some(d) = &details {
            for r in &d.routes {
                if let Some(net) = r.split('/').next().and_then(|n| n.parse().ok()) {
                    probes.push((net, format!("Network {r} from the profile")));
                }
            }
        }
        let (plan, notes) = match session {
            Some(id) => self.session_plan(id).await,
            None => (Vec::new(), Vec::new()),
        };
        let mut checks = Vec::new();
        for (addr, label) in probes {
            checks.push(self.route_check(addr, label).await?);
        }
        Ok(RoutesView {
            tunnel_networks,
            plan,
            notes,
            checks,
        })
    }

    /// The connected session's route plan from the helper; empty when not connected
    /// or when the helper cannot tell (an older helper).
    async fn session_plan(&mut self, id: ipc::SessionId) -> (Vec<RoutePlanEntry>, Vec<String>) {
        let socket = self.socket_str();
        let res = match self.ensure_client().await {
            Ok(client) => client.session_routes(id).await,
            Err(_) => return (Vec::new(), Vec::new()),
        };
        match res {
            Ok(r) => (
                r.routes.iter().map(plan_entry).collect(),
                r.notes.iter().map(|n| n.as_str().to_string()).collect(),
            ),
            Err(e) => {
                let e = from_client_error(e, &socket);
                tracing::debug!(error = %e.details, "session routes");
                (Vec::new(), Vec::new())
            }
        }
    }
}

/// One route of the helper's plan, in the window's words.
pub fn plan_entry(r: &ipc::RouteEntry) -> RoutePlanEntry {
    use ipc::RouteKind as K;
    let (side, what) = match r.kind {
        K::IntoTunnel => (RouteSide::Tunnel, "Everything else"),
        K::Pushed => (RouteSide::Tunnel, "Network from the server"),
        K::ServerBypass => (RouteSide::Outside, "The VPN server"),
        K::DhcpServerBypass => (RouteSide::Outside, "Your DHCP server"),
        K::DnsBypass => (RouteSide::Outside, "Your DNS server"),
        K::Lan => (RouteSide::Outside, "Your local network"),
        K::Blocked => (RouteSide::Blocked, "Blocked"),
        K::Removed => (RouteSide::Outside, "Replaced for the session"),
    };
    RoutePlanEntry {
        destination: r.destination.as_str().to_string(),
        side,
        what: what.to_string(),
        gateway: r.gateway.map(|g| g.to_string()),
        device: r.device.as_ref().map(|d| d.as_str().to_string()),
        reason: r.reason.as_str().to_string(),
    }
}

/// "udp 198.18.0.1:1194" / "tcp [fd00::1]:443" -> the address.
fn server_ip(remote: &str) -> Option<IpAddr> {
    let hostport = remote.split_whitespace().last()?;
    if let Ok(sa) = hostport.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    hostport.parse().ok()
}

pub fn parse_address(text: &str) -> Result<IpAddr, AppError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AppError::invalid(
            "Type an IP address, for example 10.0.0.3.",
        ));
    }
    t.parse::<IpAddr>().map_err(|_| {
        AppError::invalid(format!(
            "\"{t}\" is not an IP address. Type one like 10.0.0.3 or fd00::1."
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn addresses_and_server_ips() {
        assert_eq!(
            parse_address(" 10.0.0.3 ").unwrap(),
            IpAddr::from([10, 0, 0, 3])
        );
        assert_eq!(
            parse_address("x").unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        assert_eq!(parse_address("").unwrap_err().kind, ErrorKind::InvalidInput);
        assert_eq!(
            server_ip("udp 198.18.0.1:1194"),
            Some(IpAddr::from([198, 18, 0, 1]))
        );
        assert_eq!(server_ip("tcp [fd00::1]:443"), "fd00::1".parse().ok());
        assert_eq!(server_ip("udp vpn.example.com:1194"), None);
    }
}
