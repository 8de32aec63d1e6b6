//! "Check for leaks" as the connection view shows it: the helper's report with its codes
//! kept (the window translates them) and the addresses as text.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The helper's leak check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LeakReportView {
    /// The profile whose session was checked (`None`: no VPN connected).
    pub profile_name: Option<String>,
    pub connected: bool,
    /// Whether any check failed.
    pub failed: bool,
    pub checks: Vec<LeakCheckView>,
}

/// One check: `kind`, `verdict` and `outcome` are codes (`default_ipv4`, `pass`,
/// `into_tunnel`, ...) with a message per code in every language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LeakCheckView {
    pub kind: String,
    pub verdict: String,
    pub outcome: String,
    /// The addresses checked, comma-separated ("1.1.1.1", "10.0.0.3, 10.0.0.4").
    pub addresses: String,
    pub interface: Option<String>,
    pub gateway: Option<String>,
    /// The helper's sentence in English (shown as detail, and when a code is new to the app).
    pub explanation: String,
}

/// The snake_case wire name of a unit enum value.
fn code<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl From<&ipc::LeakReport> for LeakReportView {
    fn from(r: &ipc::LeakReport) -> Self {
        Self {
            profile_name: r.profile_name.as_ref().map(|p| p.as_str().to_owned()),
            connected: r.connected,
            failed: r.failed(),
            checks: r
                .checks
                .iter()
                .map(|c| LeakCheckView {
                    kind: code(&c.kind),
                    verdict: code(&c.verdict),
                    outcome: code(&c.outcome),
                    addresses: c
                        .addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    interface: c.interface.as_ref().map(|i| i.as_str().to_owned()),
                    gateway: c.gateway.map(|g| g.to_string()),
                    explanation: c.explanation.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_wire_names() {
        let report = ipc::LeakReport {
            session: Some(ipc::SessionId(3)),
            profile_name: None,
            connected: true,
            checks: vec![ipc::LeakCheck {
                kind: ipc::CheckKind::DefaultIpv4,
                verdict: ipc::CheckVerdict::NotApplicable,
                outcome: ipc::CheckOutcome::BlockedByKillSwitch,
                addrs: vec!["1.1.1.1"
                    .parse()
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())],
                interface: Some(ipc::ShortText::sanitized("eth0")),
                gateway: None,
                explanation: ipc::ShortText::sanitized("x"),
            }],
        };
        let v = LeakReportView::from(&report);
        let c = &v.checks[0];
        assert_eq!(
            (c.kind.as_str(), c.verdict.as_str(), c.outcome.as_str()),
            ("default_ipv4", "not_applicable", "blocked_by_kill_switch")
        );
        assert_eq!(c.addresses, "1.1.1.1");
        assert!(!v.failed);
    }
}
