//! "Check for leaks": the helper reads the machine's real state (routes, resolvers,
//! firewall) and says, check by check, whether traffic could leave around the tunnel.
//! No packet goes to a third party: routes are looked up, not tried; the only packet
//! sent is an echo request through the tunnel to the VPN's own gateway.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::types::{ProfileName, SessionId, ShortText};

/// The public addresses whose routes stand for "all other traffic". Only looked up.
pub const PROBE_V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(1, 1, 1, 1));
pub const PROBE_V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0x2606, 0x4700, 0, 0, 0, 0, 0, 1));

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakReport {
    /// The session the checks were judged against (`None`: not connected).
    pub session: Option<SessionId>,
    #[serde(default)]
    pub profile_name: Option<ProfileName>,
    /// Whether that session is connected now.
    pub connected: bool,
    pub checks: Vec<LeakCheck>,
}

impl LeakReport {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == CheckVerdict::Fail)
    }
}

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakCheck {
    pub kind: CheckKind,
    pub verdict: CheckVerdict,
    /// What was found, as a code the app translates (with the fields below).
    pub outcome: CheckOutcome,
    /// The addresses checked (1.1.1.1, the DNS servers, the VPN server, ...).
    #[serde(default)]
    pub addrs: Vec<IpAddr>,
    /// The interface their traffic would leave through.
    #[serde(default)]
    pub interface: Option<ShortText>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    /// The same finding in plain English (the CLI prints it).
    pub explanation: ShortText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Where IPv4 traffic to the internet goes.
    DefaultIpv4,
    /// Where IPv6 traffic to the internet goes.
    DefaultIpv6,
    /// Which DNS servers are configured and which way their queries go.
    Dns,
    /// Whether the kill switch is in the firewall, and whose it is.
    KillSwitch,
    /// The VPN server must stay outside the tunnel.
    ServerRoute,
    /// The LAN's DHCP server must stay outside the tunnel (bypass-dhcp).
    DhcpRoute,
    /// An echo request through the tunnel to the VPN's gateway.
    TunnelProbe,
}

impl CheckKind {
    pub fn title(self) -> &'static str {
        match self {
            Self::DefaultIpv4 => "IPv4 traffic",
            Self::DefaultIpv6 => "IPv6 traffic",
            Self::Dns => "DNS",
            Self::KillSwitch => "Kill switch",
            Self::ServerRoute => "VPN server route",
            Self::DhcpRoute => "DHCP server route",
            Self::TunnelProbe => "Tunnel probe",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    Pass,
    Fail,
    /// Does not apply now (not connected, no IPv6, no DHCP server, ...).
    NotApplicable,
}

impl CheckVerdict {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::NotApplicable => "n/a",
        }
    }
}

/// What a check found; one code per distinct sentence the app shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Goes into the tunnel.
    IntoTunnel,
    /// Goes directly through the network (no tunnel up, or a split tunnel by design).
    Direct,
    /// The tunnel should carry it but it leaves through the network.
    Leaks,
    /// Its route leaves through the network, but the kill switch drops it.
    BlockedByKillSwitch,
    /// No route: it cannot leave at all.
    NoRoute,
    /// Goes around the tunnel through the network, as it must.
    AroundTunnel,
    /// Goes into the tunnel although it must not (the tunnel would carry itself).
    InsideTunnel,
    /// No DNS server configured.
    NoResolvers,
    KillSwitchOn,
    /// Off, and nothing asked for it.
    KillSwitchOff,
    /// The session should be guarded but our firewall table is not there.
    KillSwitchMissing,
    /// Our table is in the firewall although no session holds it (left over).
    KillSwitchLeftOver,
    /// Another session holds the kill switch.
    KillSwitchOtherSession,
    /// No DHCP server known (static address or no lease found).
    NoDhcpServer,
    /// The gateway answered through the tunnel.
    ProbeAnswered,
    /// No answer through the tunnel.
    ProbeUnanswered,
    /// The tunnel has no gateway to ask.
    NoGateway,
    /// No tunnel is up.
    NotConnected,
    /// The check could not read the system state (the explanation says why).
    Error,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Request, Response};

    #[test]
    fn wire_form_is_snake_case_and_the_session_is_optional() {
        let r: Request = serde_json::from_str(r#"{"leak_check":{}}"#).unwrap();
        assert_eq!(r, Request::LeakCheck { session: None });
        let r: Request = serde_json::from_str(r#"{"leak_check":{"session":7}}"#).unwrap();
        assert_eq!(
            r,
            Request::LeakCheck {
                session: Some(SessionId(7))
            }
        );
        let report = LeakReport {
            session: None,
            profile_name: None,
            connected: false,
            checks: vec![LeakCheck {
                kind: CheckKind::DhcpRoute,
                verdict: CheckVerdict::NotApplicable,
                outcome: CheckOutcome::NoDhcpServer,
                addrs: vec![],
                interface: None,
                gateway: None,
                explanation: ShortText::sanitized("no DHCP server is known"),
            }],
        };
        let json = serde_json::to_string(&Response::LeakCheck(report.clone())).unwrap();
        assert!(
            json.contains(
                r#""kind":"dhcp_route","verdict":"not_applicable","outcome":"no_dhcp_server""#
            ),
            "{json}"
        );
        let back: Response = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Response::LeakCheck(report));
        assert!(!matches!(back, Response::LeakCheck(ref r) if r.failed()));
    }
}
