//! The tray: what its menu says and which icon it shows are pure functions of the
//! profiles and the connections (tested here); `install`/`refresh` only hand them
//! to Tauri. The helper runs several sessions, so the menu lists each active one.

use crate::i18n::{say, stage, Lang, Text};
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
    /// One profile's connection, or (None) all of them.
    Disconnect(Option<String>),
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

/// The icon for all connections: busy beats up, up beats failed.
pub fn overall_status(conns: &[ConnState]) -> TrayStatus {
    let all: Vec<TrayStatus> = conns.iter().map(status).collect();
    [
        TrayStatus::Connecting,
        TrayStatus::Connected,
        TrayStatus::Error,
    ]
    .into_iter()
    .find(|s| all.contains(s))
    .unwrap_or(TrayStatus::Disconnected)
}

/// The tooltip: every connection's line, or "Not connected".
pub fn tooltip(lang: Lang, conns: &[ConnState]) -> String {
    if conns.is_empty() {
        return status_line(lang, &ConnState::Disconnected);
    }
    conns
        .iter()
        .map(|c| status_line(lang, c))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line for the tooltip and the menu's first (disabled) entry.
pub fn status_line(lang: Lang, state: &ConnState) -> String {
    match state {
        ConnState::Disconnected => say(lang, Text::NotConnected, &[]),
        ConnState::Connecting {
            profile_name,
            stage: s,
            ..
        } => say(
            lang,
            Text::Stage,
            &[("name", profile_name), ("stage", stage(lang, s.kind))],
        ),
        ConnState::Connected { session } => match &session.tunnel_ipv4 {
            Some(a) => say(
                lang,
                Text::ConnectedAddr,
                &[("name", &session.profile_name), ("addr", a)],
            ),
            None => say(lang, Text::Connected, &[("name", &session.profile_name)]),
        },
        ConnState::Disconnecting { profile_name, .. } => {
            say(lang, Text::Disconnecting, &[("name", profile_name)])
        }
        ConnState::Failed {
            error,
            profile_name,
            ..
        } => say(
            lang,
            Text::Failed,
            &[
                ("error", &error.message),
                ("name", profile_name.as_deref().unwrap_or("OxiVPN")),
            ],
        ),
    }
}

fn item(id: impl Into<String>, label: impl Into<String>, enabled: bool) -> TrayEntry {
    TrayEntry::Item {
        id: id.into(),
        label: label.into(),
        enabled,
    }
}

/// The tray menu: a line per connection, then connect/disconnect per profile.
pub fn menu_model(lang: Lang, profiles: &[ProfileSummary], conns: &[ConnState]) -> Vec<TrayEntry> {
    let mut m = Vec::new();
    if conns.is_empty() {
        m.push(item(
            "status",
            status_line(lang, &ConnState::Disconnected),
            false,
        ));
    }
    for (i, c) in conns.iter().enumerate() {
        m.push(item(format!("status:{i}"), status_line(lang, c), false));
    }
    m.push(TrayEntry::Separator);
    let state_of = |id: &str| conns.iter().find(|c| c.profile_id() == Some(id));
    if profiles.is_empty() {
        m.push(item("import", say(lang, Text::Import, &[]), true));
    }
    for p in profiles {
        match state_of(&p.id) {
            Some(c) if c.is_active() => m.push(item(
                format!("disconnect:{}", p.id),
                say(lang, Text::Disconnect, &[("name", &p.name)]),
                !matches!(c, ConnState::Disconnecting { .. }),
            )),
            _ => m.push(item(
                format!("connect:{}", p.id),
                say(lang, Text::Connect, &[("name", &p.name)]),
                true,
            )),
        }
    }
    if conns.iter().filter(|c| c.is_active()).count() > 1 {
        m.push(item(
            "disconnect",
            say(lang, Text::DisconnectAll, &[]),
            true,
        ));
    }
    m.push(TrayEntry::Separator);
    m.push(item("show", say(lang, Text::Show, &[]), true));
    m.push(item("quit", say(lang, Text::Quit, &[]), true));
    m
}

pub fn action_for(id: &str) -> Option<TrayAction> {
    let named = |prefix: &str| {
        id.strip_prefix(prefix)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
    };
    match id {
        "disconnect" => Some(TrayAction::Disconnect(None)),
        "show" => Some(TrayAction::Show),
        "import" => Some(TrayAction::Import),
        "quit" => Some(TrayAction::Quit),
        _ => named("connect:")
            .map(TrayAction::Connect)
            .or_else(|| named("disconnect:").map(|p| TrayAction::Disconnect(Some(p)))),
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

    fn connected(id: &str, name: &str, addr: &str) -> ConnState {
        ConnState::Connected {
            session: SessionView {
                profile_id: id.into(),
                profile_name: name.into(),
                server: None,
                cipher: None,
                tls: None,
                kill_switch: None,
                tunnel_ipv4: Some(addr.into()),
                tunnel_ipv6: None,
                interface: None,
                connected_since_ms: 1,
                protection: None,
            },
        }
    }

    #[test]
    fn disconnected_menu_offers_every_profile() {
        let ps = [profile("a", "Work"), profile("b", "Home")];
        let m = menu_model(Lang::En, &ps, &[]);
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
        let conns = [connected("b", "Home", "10.8.0.2")];
        let m = menu_model(Lang::En, &ps, &conns);
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
        let TrayEntry::Item { id, .. } = &m[3] else {
            panic!()
        };
        assert_eq!(
            action_for(id),
            Some(TrayAction::Disconnect(Some("b".into())))
        );
        assert_eq!(overall_status(&conns), TrayStatus::Connected);
    }

    #[test]
    fn waiting_for_the_browser_sign_in_shows_in_tooltip_and_menu() {
        let ps = [profile("a", "Work")];
        let conns = [ConnState::Connecting {
            profile_id: "a".into(),
            profile_name: "Work".into(),
            stage: StageView::new(StageKind::SignIn, Some("sso.example.com".into())),
        }];
        assert_eq!(tooltip(Lang::En, &conns), "Work: Waiting for sign-in…");
        assert_eq!(
            tooltip(Lang::De, &conns),
            "Work: Wartet auf die Anmeldung im Browser…"
        );
        let m = menu_model(Lang::En, &ps, &conns);
        assert_eq!(labels(&m)[0], "Work: Waiting for sign-in… (off)");
        assert!(labels(&m).contains(&"Disconnect Work".to_string()));
        assert_eq!(overall_status(&conns), TrayStatus::Connecting);
    }

    #[test]
    fn several_sessions_are_listed_and_can_all_be_disconnected() {
        let ps = [
            profile("a", "Work"),
            profile("b", "Home"),
            profile("c", "Lab"),
        ];
        let conns = [
            connected("b", "Home", "10.8.0.2"),
            ConnState::Connecting {
                profile_id: "a".into(),
                profile_name: "Work".into(),
                stage: StageView::new(StageKind::Tls, None),
            },
        ];
        let m = menu_model(Lang::En, &ps, &conns);
        assert_eq!(
            labels(&m),
            [
                "Connected to Home (10.8.0.2) (off)",
                "Work: Securing the connection… (off)",
                "--",
                "Disconnect Work",
                "Disconnect Home",
                "Connect Lab",
                "Disconnect all",
                "--",
                "Show OxiVPN",
                "Quit"
            ]
        );
        assert_eq!(action_for("disconnect"), Some(TrayAction::Disconnect(None)));
        assert_eq!(overall_status(&conns), TrayStatus::Connecting);
        let de = labels(&menu_model(Lang::De, &ps, &conns));
        assert_eq!(de[0], "Verbunden mit Home (10.8.0.2) (off)");
        assert_eq!(de[1], "Work: Verbindung wird abgesichert… (off)");
        assert_eq!(de[6], "Alle trennen");
        assert_eq!(
            tooltip(Lang::En, &conns),
            "Connected to Home (10.8.0.2)\nWork: Securing the connection…"
        );
    }

    #[test]
    fn connecting_and_failed_states() {
        let ps = [profile("a", "Work")];
        let connecting = ConnState::Connecting {
            profile_id: "a".into(),
            profile_name: "Work".into(),
            stage: StageView::new(StageKind::Tls, None),
        };
        let m = menu_model(Lang::En, &ps, std::slice::from_ref(&connecting));
        assert_eq!(labels(&m)[0], "Work: Securing the connection… (off)");
        assert_eq!(labels(&m)[2], "Disconnect Work");
        assert_eq!(status(&connecting), TrayStatus::Connecting);

        let failed = ConnState::Failed {
            profile_id: Some("a".into()),
            profile_name: Some("Work".into()),
            error: AppError::auth_failed("bad"),
        };
        let m = menu_model(Lang::En, &ps, std::slice::from_ref(&failed));
        assert!(labels(&m)[0].starts_with("Error: The server did not accept"));
        // A failed profile can be tried again.
        assert_eq!(labels(&m)[2], "Connect Work");
        assert_eq!(overall_status(&[failed]), TrayStatus::Error);
    }

    #[test]
    fn empty_list_offers_import_and_unknown_ids_do_nothing() {
        let m = menu_model(Lang::En, &[], &[]);
        assert!(labels(&m).contains(&"Import a profile…".to_string()));
        assert_eq!(action_for("import"), Some(TrayAction::Import));
        assert_eq!(action_for("connect:"), None);
        assert_eq!(action_for("disconnect:"), None);
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
