//! The trusted-networks rule, pure: given the networks the computer is on now, stay
//! direct (a trusted network is up), connect the chosen profile (only untrusted ones),
//! or do nothing (no network, no rule). Tested here without any D-Bus.

/// One network the computer is on, as the system's network manager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSeen {
    /// The connection's name ("Home Wi-Fi", "Wired connection 1").
    pub id: String,
    /// The Wi-Fi network name, for wireless connections.
    pub ssid: Option<String>,
    pub kind: NetKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    Wifi,
    Ethernet,
    /// VPNs, tunnels, bridges, loopback: never a reason to connect or to stay direct.
    Virtual,
    Other,
}

impl NetKind {
    /// NetworkManager's connection type names.
    pub fn from_nm_type(t: &str) -> NetKind {
        match t {
            "802-11-wireless" | "wifi" => NetKind::Wifi,
            "802-3-ethernet" | "ethernet" => NetKind::Ethernet,
            "vpn" | "wireguard" | "tun" | "bridge" | "loopback" | "dummy" | "veth"
            | "ip-tunnel" | "generic" => NetKind::Virtual,
            _ => NetKind::Other,
        }
    }
}

/// What the user set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustRules {
    /// Network names (SSID or connection name) on which no VPN is needed.
    pub trusted: Vec<String>,
    /// The profile to connect on any other network; `None` turns the rule off.
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No rule set.
    Off,
    /// Not on any network.
    NoNetwork,
    /// On a trusted network: stay direct.
    Direct { network: String },
    /// On networks that are all untrusted: connect `profile`.
    Connect { profile: String, network: String },
    /// The rule names a profile that no longer exists.
    MissingProfile { profile: String },
}

impl NetworkSeen {
    /// The name people know it by: the SSID for Wi-Fi, else the connection name.
    pub fn name(&self) -> &str {
        self.ssid.as_deref().unwrap_or(&self.id)
    }
    fn matches(&self, trusted: &str) -> bool {
        let t = trusted.trim();
        !t.is_empty() && (self.id == t || self.ssid.as_deref() == Some(t))
    }
}

pub fn decide(rules: &TrustRules, networks: &[NetworkSeen], profiles: &[String]) -> Decision {
    let Some(profile) = rules.profile.clone() else {
        return Decision::Off;
    };
    if !profiles.contains(&profile) {
        return Decision::MissingProfile { profile };
    }
    let real: Vec<&NetworkSeen> = networks
        .iter()
        .filter(|n| n.kind != NetKind::Virtual)
        .collect();
    if real.is_empty() {
        return Decision::NoNetwork;
    }
    if let Some(n) = real
        .iter()
        .find(|n| rules.trusted.iter().any(|t| n.matches(t)))
    {
        return Decision::Direct {
            network: n.name().to_string(),
        };
    }
    Decision::Connect {
        profile,
        network: real
            .first()
            .map(|n| n.name().to_string())
            .unwrap_or_default(),
    }
}

/// Whether moving from `before` to `now` should start the VPN: only on the change, so a
/// user who disconnects by hand on an untrusted network is not overruled every second.
pub fn should_connect(before: Option<&Decision>, now: &Decision) -> Option<String> {
    match (before, now) {
        (Some(Decision::Connect { profile: a, .. }), Decision::Connect { profile: b, .. })
            if a == b =>
        {
            None
        }
        (_, Decision::Connect { profile, .. }) => Some(profile.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wifi(ssid: &str) -> NetworkSeen {
        NetworkSeen {
            id: format!("{ssid} connection"),
            ssid: Some(ssid.into()),
            kind: NetKind::Wifi,
        }
    }
    fn wired(id: &str) -> NetworkSeen {
        NetworkSeen {
            id: id.into(),
            ssid: None,
            kind: NetKind::Ethernet,
        }
    }
    fn rules() -> TrustRules {
        TrustRules {
            trusted: vec!["HomeNet".into(), "Office LAN".into()],
            profile: Some("Work".into()),
        }
    }
    const PROFILES: &[&str] = &["Work", "Home"];
    fn profiles() -> Vec<String> {
        PROFILES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn trusted_by_ssid_or_connection_name_stays_direct() {
        assert_eq!(
            decide(&rules(), &[wifi("HomeNet")], &profiles()),
            Decision::Direct {
                network: "HomeNet".into()
            }
        );
        assert_eq!(
            decide(&rules(), &[wired("Office LAN")], &profiles()),
            Decision::Direct {
                network: "Office LAN".into()
            }
        );
        // One trusted network among several is enough.
        assert!(matches!(
            decide(&rules(), &[wifi("Cafe"), wired("Office LAN")], &profiles()),
            Decision::Direct { .. }
        ));
    }

    #[test]
    fn any_other_network_connects_the_chosen_profile() {
        assert_eq!(
            decide(&rules(), &[wifi("Airport Free WiFi")], &profiles()),
            Decision::Connect {
                profile: "Work".into(),
                network: "Airport Free WiFi".into()
            }
        );
    }

    #[test]
    fn virtual_links_and_no_network_do_nothing() {
        let tun = NetworkSeen {
            id: "tun0".into(),
            ssid: None,
            kind: NetKind::from_nm_type("tun"),
        };
        assert_eq!(decide(&rules(), &[tun], &profiles()), Decision::NoNetwork);
        assert_eq!(decide(&rules(), &[], &profiles()), Decision::NoNetwork);
        assert_eq!(
            decide(&TrustRules::default(), &[wifi("Cafe")], &profiles()),
            Decision::Off
        );
    }

    #[test]
    fn a_rule_naming_a_deleted_profile_or_a_gone_network_is_harmless() {
        let mut r = rules();
        r.profile = Some("Deleted".into());
        assert_eq!(
            decide(&r, &[wifi("Cafe")], &profiles()),
            Decision::MissingProfile {
                profile: "Deleted".into()
            }
        );
        // A trusted name that is nowhere to be seen simply never matches.
        let r = TrustRules {
            trusted: vec!["Gone".into(), "  ".into()],
            profile: Some("Work".into()),
        };
        assert!(matches!(
            decide(&r, &[wifi("Cafe")], &profiles()),
            Decision::Connect { .. }
        ));
    }

    #[test]
    fn connect_only_when_the_situation_changes() {
        let untrusted = decide(&rules(), &[wifi("Cafe")], &profiles());
        let home = decide(&rules(), &[wifi("HomeNet")], &profiles());
        assert_eq!(should_connect(None, &untrusted), Some("Work".into()));
        assert_eq!(should_connect(Some(&home), &untrusted), Some("Work".into()));
        assert_eq!(should_connect(Some(&untrusted), &untrusted), None);
        assert_eq!(should_connect(Some(&untrusted), &home), None);
        assert_eq!(NetKind::from_nm_type("802-11-wireless"), NetKind::Wifi);
    }
}
