//! The Rust side's words in the user's language: the tray menu and tooltip (the window
//! has its own catalogues in `ui/src/locales`). Same languages as the window; the
//! `language` setting wins, else the system locale (`LC_ALL`, `LC_MESSAGES`, `LANG`),
//! else English.

use crate::model::StageKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
    ZhCn,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::De, Lang::Fr, Lang::ZhCn];

    /// The shipped language for a tag ("de_AT.UTF-8" -> German); English otherwise.
    pub fn from_tag(tag: &str) -> Lang {
        let t = tag.trim().to_ascii_lowercase().replace('_', "-");
        let t = t.split(['.', '@']).next().unwrap_or_default();
        if t.starts_with("zh") {
            let traditional = t.contains("tw") || t.contains("hk") || t.contains("hant");
            return if traditional { Lang::En } else { Lang::ZhCn };
        }
        match t.split('-').next().unwrap_or_default() {
            "de" => Lang::De,
            "fr" => Lang::Fr,
            _ => Lang::En,
        }
    }

    /// The setting when there is one, else the system locale.
    pub fn resolve(setting: Option<&str>) -> Lang {
        if let Some(s) = setting.filter(|s| !s.trim().is_empty()) {
            return Lang::from_tag(s);
        }
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
            .map_or(Lang::En, |v| Lang::from_tag(&v))
    }
}

/// Every sentence the tray says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    NotConnected,
    /// "{name}: {stage}…"
    Stage,
    /// "Connected to {name} ({addr})"
    ConnectedAddr,
    /// "Connected to {name}"
    Connected,
    /// "Disconnecting {name}…"
    Disconnecting,
    /// "{name}: connection failed" (English shows the error itself)
    Failed,
    Import,
    /// "Connect {name}"
    Connect,
    /// "Disconnect {name}"
    Disconnect,
    DisconnectAll,
    Show,
    Quit,
    /// Notification title: "Sign in to {name}"
    SignInTitle,
    /// Notification body: "The server waits for you to sign in at {addr} in your browser."
    SignInBody,
}

impl Text {
    pub const ALL: [Text; 14] = [
        Text::NotConnected,
        Text::Stage,
        Text::ConnectedAddr,
        Text::Connected,
        Text::Disconnecting,
        Text::Failed,
        Text::Import,
        Text::Connect,
        Text::Disconnect,
        Text::DisconnectAll,
        Text::Show,
        Text::Quit,
        Text::SignInTitle,
        Text::SignInBody,
    ];
}

/// The template of `text` in `lang`; `{name}`, `{stage}`, `{addr}`, `{error}` are filled
/// by [`say`].
pub fn template(lang: Lang, text: Text) -> &'static str {
    use Lang::*;
    use Text::*;
    match (lang, text) {
        (En, NotConnected) => "Not connected",
        (De, NotConnected) => "Nicht verbunden",
        (Fr, NotConnected) => "Non connecté",
        (ZhCn, NotConnected) => "未连接",
        (En | De | Fr, Stage) => "{name}: {stage}…",
        (ZhCn, Stage) => "{name}：{stage}…",
        (En, ConnectedAddr) => "Connected to {name} ({addr})",
        (De, ConnectedAddr) => "Verbunden mit {name} ({addr})",
        (Fr, ConnectedAddr) => "Connecté à {name} ({addr})",
        (ZhCn, ConnectedAddr) => "已连接到 {name}（{addr}）",
        (En, Connected) => "Connected to {name}",
        (De, Connected) => "Verbunden mit {name}",
        (Fr, Connected) => "Connecté à {name}",
        (ZhCn, Connected) => "已连接到 {name}",
        (En, Disconnecting) => "Disconnecting {name}…",
        (De, Disconnecting) => "{name} wird getrennt…",
        (Fr, Disconnecting) => "Déconnexion de {name}…",
        (ZhCn, Disconnecting) => "正在断开 {name}…",
        (En, Failed) => "Error: {error}",
        (De, Failed) => "{name}: Verbindung fehlgeschlagen",
        (Fr, Failed) => "{name} : échec de la connexion",
        (ZhCn, Failed) => "{name}：连接失败",
        (En, Import) => "Import a profile…",
        (De, Import) => "Profil importieren…",
        (Fr, Import) => "Importer un profil…",
        (ZhCn, Import) => "导入配置文件…",
        (En, Connect) => "Connect {name}",
        (De, Connect) => "{name} verbinden",
        (Fr, Connect) => "Connecter {name}",
        (ZhCn, Connect) => "连接 {name}",
        (En, Disconnect) => "Disconnect {name}",
        (De, Disconnect) => "{name} trennen",
        (Fr, Disconnect) => "Déconnecter {name}",
        (ZhCn, Disconnect) => "断开 {name}",
        (En, DisconnectAll) => "Disconnect all",
        (De, DisconnectAll) => "Alle trennen",
        (Fr, DisconnectAll) => "Tout déconnecter",
        (ZhCn, DisconnectAll) => "全部断开",
        (En, Show) => "Show OxiVPN",
        (De, Show) => "OxiVPN anzeigen",
        (Fr, Show) => "Afficher OxiVPN",
        (ZhCn, Show) => "显示 OxiVPN",
        (En, Quit) => "Quit",
        (De, Quit) => "Beenden",
        (Fr, Quit) => "Quitter",
        (ZhCn, Quit) => "退出",
        (En, SignInTitle) => "Sign in to {name}",
        (De, SignInTitle) => "Bei {name} anmelden",
        (Fr, SignInTitle) => "Connexion à {name}",
        (ZhCn, SignInTitle) => "登录 {name}",
        (En, SignInBody) => "The server waits for you to sign in at {addr} in your browser.",
        (De, SignInBody) => "Der Server wartet auf Ihre Anmeldung bei {addr} im Browser.",
        (Fr, SignInBody) => "Le serveur attend votre connexion sur {addr} dans le navigateur.",
        (ZhCn, SignInBody) => "服务器正在等待您在浏览器中登录 {addr}。",
    }
}

/// The stage words (the window has the same in its catalogues).
pub fn stage(lang: Lang, kind: StageKind) -> &'static str {
    use Lang::*;
    use StageKind as K;
    match (lang, kind) {
        (En, k) => k.label(),
        (De, K::Credentials) => "Wartet auf Ihre Anmeldedaten",
        (De, K::Starting) => "Startet",
        (De, K::Resolving) => "Server wird gesucht",
        (De, K::Connecting) => "Server wird erreicht",
        (De, K::Tls) => "Verbindung wird abgesichert",
        (De, K::Authenticating) => "Anmeldung",
        (De, K::Configuring) => "Adressen und Routen werden eingerichtet",
        (De, K::Reconnecting) => "Neu verbinden",
        (De, K::SignIn) => "Wartet auf die Anmeldung im Browser",
        (De, K::WaitingForService) => "Wartet auf den OxiVPN-Dienst",
        (Fr, K::Credentials) => "En attente de vos identifiants",
        (Fr, K::Starting) => "Démarrage",
        (Fr, K::Resolving) => "Recherche du serveur",
        (Fr, K::Connecting) => "Contact du serveur",
        (Fr, K::Tls) => "Sécurisation de la connexion",
        (Fr, K::Authenticating) => "Authentification",
        (Fr, K::Configuring) => "Configuration des adresses et des routes",
        (Fr, K::Reconnecting) => "Reconnexion",
        (Fr, K::SignIn) => "En attente de la connexion dans le navigateur",
        (Fr, K::WaitingForService) => "En attente du service OxiVPN",
        (ZhCn, K::Credentials) => "等待您的登录信息",
        (ZhCn, K::Starting) => "正在启动",
        (ZhCn, K::Resolving) => "正在查找服务器",
        (ZhCn, K::Connecting) => "正在联系服务器",
        (ZhCn, K::Tls) => "正在加密连接",
        (ZhCn, K::Authenticating) => "正在登录",
        (ZhCn, K::Configuring) => "正在设置地址和路由",
        (ZhCn, K::Reconnecting) => "正在重新连接",
        (ZhCn, K::SignIn) => "等待浏览器登录",
        (ZhCn, K::WaitingForService) => "正在等待 OxiVPN 服务",
    }
}

/// `text` in `lang` with its placeholders filled.
pub fn say(lang: Lang, text: Text, fill: &[(&str, &str)]) -> String {
    let mut s = template(lang, text).to_string();
    for (k, v) in fill {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_sentence_with_the_english_placeholders() {
        let holes = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split('}').next().map(str::to_string))
                .collect();
            v.sort();
            v
        };
        for t in Text::ALL {
            let en = holes(template(Lang::En, t));
            for l in Lang::ALL {
                let s = template(l, t);
                assert!(!s.is_empty(), "{l:?} {t:?}");
                // English names the error itself; the others name the profile.
                if t != Text::Failed {
                    assert_eq!(holes(s), en, "{l:?} {t:?}");
                }
            }
        }
        for l in Lang::ALL {
            assert!(!stage(l, StageKind::Tls).is_empty());
        }
    }

    #[test]
    fn tags_and_settings_pick_a_language() {
        assert_eq!(Lang::from_tag("de_AT.UTF-8"), Lang::De);
        assert_eq!(Lang::from_tag("fr-CA"), Lang::Fr);
        assert_eq!(Lang::from_tag("zh_CN.UTF-8"), Lang::ZhCn);
        assert_eq!(Lang::from_tag("zh-TW"), Lang::En);
        assert_eq!(Lang::from_tag("pt_BR"), Lang::En);
        assert_eq!(Lang::resolve(Some("de")), Lang::De);
        assert_eq!(
            say(Lang::De, Text::Connect, &[("name", "Büro")]),
            "Büro verbinden"
        );
    }
}
