//! The tray: what its menu says and which icon it shows are pure functions of the
//! profiles and the connection state (tested here); `install`/`refresh` only hand them
//! to Tauri.

use crate::model::{ConnState, ProfileSummary};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayEntry {
    Item {
        id: String,
        label: String,
        enabled: bool,
    },
    Separator,
}

/// What a click on a menu entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    Connect(String),
    Disconnect,
    Show,
    Import,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayStatus {
    Disconnected,
    Connecting,
    Connected,
    Error,
}

pub fn status(state: &ConnState) -> TrayStatus {
    match state {
        ConnState::Disconnected => TrayStatus::Disconnected,
        ConnState::Connecting { .. } | ConnState::Disconnecting { .. } => TrayStatus::Connecting,
        ConnState::Connected { .. } => TrayStatus::Connected,
        ConnState::Failed { .. } => TrayStatus::Error,
    }
}

/// One line for the tooltip and the menu's first (disabled) entry.
pub fn status_line(state: &ConnState) -> String {
    match state {
        ConnState::Disconnected => "Not connected".into(),
        ConnState::Connecting {
            profile_name,
            stage,
            ..
        } => {
            format!("{profile_name}: {}…", stage.label)
        }
        ConnState::Connected { session } => match &session.tunnel_ipv4 {
            Some(a) => format!("Connected to {} ({a})", session.profile_name),
            None => format!("Connected to {}", session.profile_name),
        },
        ConnState::Disconnecting { profile_name, .. } => format!("Disconnecting {profile_name}…"),
        ConnState::Failed { error, .. } => format!("Error: {}", error.message),
    }
}

fn item(id: impl Into<String>, label: impl Into<String>, enabled: bool) -> TrayEntry {
    TrayEntry::Item {
        id: id.into(),
        label: label.into(),
        enabled,
    }
}

/// The tray menu for these profiles in this state.
pub fn menu_model(profiles: &[ProfileSummary], state: &ConnState) -> Vec<TrayEntry> {
    let mut m = vec![
        item("status", status_line(state), false),
        TrayEntry::Separator,
    ];
    let active = if state.is_active() {
        state.profile_id()
    } else {
        None
    };
    let disconnecting = matches!(state, ConnState::Disconnecting { .. });
    if profiles.is_empty() {
        m.push(item("import", "Import a profile…", true));
    }
    for p in profiles {
        if active == Some(p.id.as_str()) {
            m.push(item(
                "disconnect",
                format!("Disconnect {}", p.name),
                !disconnecting,
            ));
        } else {
            m.push(item(
                format!("connect:{}", p.id),
                format!("Connect {}", p.name),
                !disconnecting,
            ));
        }
    }
    m.push(TrayEntry::Separator);
    m.push(item("show", "Show OxiVPN", true));
    m.push(item("quit", "Quit", true));
    m
}

pub fn action_for(id: &str) -> Option<TrayAction> {
    match id {
        "disconnect" => Some(TrayAction::Disconnect),
        "show" => Some(TrayAction::Show),
        "import" => Some(TrayAction::Import),
        "quit" => Some(TrayAction::Quit),
        _ => id
            .strip_prefix("connect:")
            .filter(|p| !p.is_empty())
            .map(|p| TrayAction::Connect(p.to_string())),
    }
}

/// RGBA pixels of the status icon: a disc in the status colour with a white ring.
pub fn icon_rgba(status: TrayStatus, size: u32) -> Vec<u8> {
    let (r, g, b) = match status {
        TrayStatus::Disconnected => (0x6b, 0x72, 0x80),
        TrayStatus::Connecting => (0xd9, 0x8e, 0x04),
        TrayStatus::Connected => (0x16, 0xa3, 0x4a),
        TrayStatus::Error => (0xdc, 0x26, 0x26),
    };
    let s = size as f32;
    let c = (s - 1.0) / 2.0;
    let outer = s / 2.0 - 0.5;
    let ring_out = outer * 0.55;
    let ring_in = outer * 0.32;
    let mut px = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            // One pixel of soft edge keeps the disc from looking jagged.
            let alpha = (outer - d + 0.5).clamp(0.0, 1.0);
            let on_ring = d <= ring_out && d >= ring_in;
            let (pr, pg, pb) = if on_ring { (255, 255, 255) } else { (r, g, b) };
            px.extend_from_slice(&[pr, pg, pb, (alpha * 255.0) as u8]);
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use crate::model::{AuthKind, SessionView, StageKind, StageView};

    fn profile(id: &str, name: &str) -> ProfileSummary {
        ProfileSummary {
            id: id.into(),
            name: name.into(),
            server: "vpn:1194".into(),
            protocol: "UDP".into(),
            auth: AuthKind::Certificate,
        }
    }

    fn labels(m: &[TrayEntry]) -> Vec<String> {
        m.iter()
            .map(|e| match e {
                TrayEntry::Item { label, enabled, .. } => {
                    format!("{label}{}", if *enabled { "" } else { " (off)" })
                }
                TrayEntry::Separator => "--".into(),
            })
            .collect()
    }

    #[test]
    fn disconnected_menu_offers_every_profile() {
        let ps = [profile("a", "Work"), profile("b", "Home")];
        let m = menu_model(&ps, &ConnState::Disconnected);
        assert_eq!(
            labels(&m),
            [
                "Not connected (off)",
                "--",
                "Connect Work",
                "Connect Home",
                "--",
                "Show OxiVPN",
                "Quit"
            ]
        );
        let TrayEntry::Item { id, .. } = &m[3] else {
            panic!()
        };
        assert_eq!(action_for(id), Some(TrayAction::Connect("b".into())));
    }

    #[test]
    fn connected_profile_becomes_disconnect() {
        let ps = [profile("a", "Work"), profile("b", "Home")];
        let state = ConnState::Connected {
            session: SessionView {
                profile_id: "b".into(),
                profile_name: "Home".into(),
                server: None,
                cipher: None,
                tls: None,
                kill_switch: None,
                tunnel_ipv4: Some("10.8.0.2".into()),
                tunnel_ipv6: None,
                interface: None,
                connected_since_ms: 1,
            },
        };
        let m = menu_model(&ps, &state);
        assert_eq!(
            labels(&m),
            [
                "Connected to Home (10.8.0.2) (off)",
                "--",
                "Connect Work",
                "Disconnect Home",
                "--",
                "Show OxiVPN",
                "Quit"
            ]
        );
        assert_eq!(status(&state), TrayStatus::Connected);
    }

    #[test]
    fn connecting_and_failed_states() {
        let ps = [profile("a", "Work")];
        let connecting = ConnState::Connecting {
            profile_id: "a".into(),
            profile_name: "Work".into(),
            stage: StageView::new(StageKind::Tls, None),
        };
        let m = menu_model(&ps, &connecting);
        assert_eq!(labels(&m)[0], "Work: Securing the connection… (off)");
        assert_eq!(labels(&m)[2], "Disconnect Work");
        assert_eq!(status(&connecting), TrayStatus::Connecting);

        let failed = ConnState::Failed {
            profile_id: Some("a".into()),
            profile_name: Some("Work".into()),
            error: AppError::auth_failed("bad"),
        };
        let m = menu_model(&ps, &failed);
        assert!(labels(&m)[0].starts_with("Error: The server did not accept"));
        // A failed profile can be tried again.
        assert_eq!(labels(&m)[2], "Connect Work");
        assert_eq!(status(&failed), TrayStatus::Error);
    }

    #[test]
    fn empty_list_offers_import_and_unknown_ids_do_nothing() {
        let m = menu_model(&[], &ConnState::Disconnected);
        assert!(labels(&m).contains(&"Import a profile…".to_string()));
        assert_eq!(action_for("import"), Some(TrayAction::Import));
        assert_eq!(action_for("connect:"), None);
        assert_eq!(action_for("bogus"), None);
        assert_eq!(action_for("quit"), Some(TrayAction::Quit));
    }

    #[test]
    fn icons_differ_by_status_and_have_transparent_corners() {
        let a = icon_rgba(TrayStatus::Connected, 32);
        let b = icon_rgba(TrayStatus::Error, 32);
        assert_eq!(a.len(), 32 * 32 * 4);
        assert_ne!(a, b);
        assert_eq!(a[3], 0, "corner pixel is transparent");
        let mid = ((16 * 32 + 2) * 4) as usize;
        assert_eq!(&a[mid..mid + 4], &[0x16, 0xa3, 0x4a, 255]);
    }
}
