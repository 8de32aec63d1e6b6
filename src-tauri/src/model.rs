//! Everything that crosses to the web view: command arguments, results and events.
//! TypeScript twins are generated from these (see `bindings.rs`); never edit those by hand.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::AppError;

/// A stored profile as lists and menus show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSummary {
    pub id: String,
    pub name: String,
    /// First remote, "vpn.example.com:1194".
    pub server: String,
    /// "UDP" / "TCP".
    pub protocol: String,
    pub auth: AuthKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum AuthKind {
    /// Client certificate only.
    Certificate,
    /// User name and password only.
    Password,
    /// Both.
    CertificateAndPassword,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RemoteView {
    pub host: String,
    pub port: u16,
    pub protocol: String,
}

/// What the details pane shows for one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProfileDetails {
    pub summary: ProfileSummary,
    pub remotes: Vec<RemoteView>,
    /// Data-channel ciphers the profile offers, in order.
    pub ciphers: Vec<String>,
    /// HMAC digest for CBC ciphers and tls-auth ("SHA256"), if set.
    pub digest: Option<String>,
    /// "tls-crypt", "tls-crypt-v2", "tls-auth" or none.
    pub control_channel_protection: Option<String>,
    /// Prompt text of `static-challenge`, if the profile has one.
    pub static_challenge: Option<String>,
    /// The private key is encrypted and needs a passphrase.
    pub key_encrypted: bool,
    /// Whether all traffic goes through the tunnel (redirect-gateway) when the server agrees.
    pub redirect_gateway: bool,
    /// Routes the profile itself asks for ("10.0.0.0/24").
    pub routes: Vec<String>,
    /// Whether user name and password are kept in the system keyring.
    pub saved_credentials: bool,
}

/// How the import treated one line of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Honoured,
    Ignored,
    Refused,
    Note,
    Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FindingView {
    pub line: Option<u32>,
    pub directive: String,
    pub verdict: Verdict,
    pub message: String,
}

/// Shown after every import, successful or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// File name the user picked.
    pub file_name: String,
    /// The stored profile, when the import succeeded.
    pub profile: Option<ProfileSummary>,
    pub usable: bool,
    /// One line saying why it cannot be used, when not usable.
    pub reason: Option<String>,
    pub findings: Vec<FindingView>,
}

/// Steps of bringing a tunnel up, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum StageKind {
    Credentials,
    Starting,
    Resolving,
    Connecting,
    Tls,
    Authenticating,
    Configuring,
    Reconnecting,
    /// The server waits while the user signs in with a browser (AUTH_PENDING).
    SignIn,
    /// The helper service went away mid-connection; the app connects again once it is
    /// back (the user may cancel meanwhile).
    WaitingForService,
}

impl StageKind {
    /// Progress position out of [`StageKind::TOTAL`].
    pub fn step(self) -> u8 {
        match self {
            Self::Credentials | Self::Starting | Self::Reconnecting | Self::WaitingForService => 1,
            Self::Resolving => 2,
            Self::Connecting => 3,
            Self::Tls => 4,
            Self::Authenticating | Self::SignIn => 5,
            Self::Configuring => 6,
        }
    }
    pub const TOTAL: u8 = 7;

    pub fn label(self) -> &'static str {
        match self {
            Self::Credentials => "Waiting for your credentials",
            Self::Starting => "Starting",
            Self::Resolving => "Looking up the server",
            Self::Connecting => "Reaching the server",
            Self::Tls => "Securing the connection",
            Self::Authenticating => "Signing in",
            Self::Configuring => "Setting up addresses and routes",
            Self::Reconnecting => "Reconnecting",
            Self::SignIn => "Waiting for sign-in",
            Self::WaitingForService => "Waiting for the OxiVPN service",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub kind: StageKind,
    pub label: String,
    /// Extra words: "udp 198.18.0.1:1194", "attempt 2, next try in 4 s".
    pub detail: Option<String>,
    pub step: u8,
    pub total: u8,
    /// The browser sign-in the server waits for (with [`StageKind::SignIn`]).
    #[serde(default)]
    pub sign_in: Option<SignInView>,
}

impl StageView {
    pub fn new(kind: StageKind, detail: Option<String>) -> Self {
        Self {
            kind,
            label: kind.label().to_string(),
            detail,
            step: kind.step(),
            total: StageKind::TOTAL,
            sign_in: None,
        }
    }
}

/// "Sign in with your browser": what the connection view shows while the server waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SignInView {
    pub profile_id: String,
    /// The link the browser gets (http or https; checked again before it is opened).
    pub url: String,
    /// Where the link sends the user, parsed from it: "sso.example.com", "198.18.0.1:8080".
    pub host: String,
    /// How long the server waits, as it said (None: it named no limit).
    #[ts(type = "number | null")]
    pub timeout_secs: Option<u64>,
    /// When the server stops waiting (unix ms), for the countdown.
    #[ts(type = "number | null")]
    pub deadline_ms: Option<u64>,
    /// The kill switch lets the sign-in host through until the server decides.
    pub kill_switch_exception: bool,
    /// The system browser was started with the link.
    pub opened: bool,
    /// Why the link is not opened (never set for a link the helper relayed, which
    /// checks the same rule; kept so a refusal is shown, not silently skipped).
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub profile_id: String,
    pub profile_name: String,
    /// "udp 198.18.0.1:1194" as the helper reported it.
    pub server: Option<String>,
    pub cipher: Option<String>,
    /// Control channel: "TLSv1.3 TLS13_AES_256_GCM_SHA384", as the helper reports it.
    pub tls: Option<String>,
    /// Whether the helper's kill switch guards this session (None: not reported).
    pub kill_switch: Option<bool>,
    pub tunnel_ipv4: Option<String>,
    pub tunnel_ipv6: Option<String>,
    pub interface: Option<String>,
    #[ts(type = "number")]
    pub connected_since_ms: u64,
    /// What the user asked for and what the helper put in force.
    #[serde(default)]
    pub protection: Option<ProtectionView>,
}

/// The kill switch as the user chooses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum KillSwitchChoice {
    /// On when all traffic goes through the VPN, off for a split tunnel (the helper decides
    /// from the profile and what the server pushes).
    #[default]
    Automatic,
    /// On even for a split tunnel.
    Always,
    Off,
}

/// Protection settings, global or for one profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    #[serde(default)]
    pub kill_switch: KillSwitchChoice,
    /// With the kill switch on, still reach the local network (printers, NAS).
    #[serde(default)]
    pub allow_lan: bool,
}

impl Protection {
    /// The helper's connect options for this choice.
    pub fn to_ipc(self) -> ipc::ConnectOptions {
        ipc::ConnectOptions {
            kill_switch: match self.kill_switch {
                KillSwitchChoice::Automatic => ipc::KillSwitchMode::Default,
                KillSwitchChoice::Always => ipc::KillSwitchMode::On,
                KillSwitchChoice::Off => ipc::KillSwitchMode::Off,
            },
            allow_lan: self.allow_lan,
        }
    }
}

/// Where a connection's protection setting came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ProtectionSource {
    /// The app-wide setting.
    #[default]
    Global,
    /// This profile's own setting.
    Profile,
}

/// The protection a connection asked for, where that came from, and what is in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProtectionView {
    pub requested: Protection,
    pub source: ProtectionSource,
    /// Whether the helper's kill switch guards this session (None: not reported yet).
    pub kill_switch_active: Option<bool>,
}

/// The one connection the app manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ConnState {
    Disconnected,
    #[serde(rename_all = "camelCase")]
    Connecting {
        profile_id: String,
        profile_name: String,
        stage: StageView,
    },
    Connected {
        session: SessionView,
    },
    #[serde(rename_all = "camelCase")]
    Disconnecting {
        profile_id: String,
        profile_name: String,
    },
    #[serde(rename_all = "camelCase")]
    Failed {
        profile_id: Option<String>,
        profile_name: Option<String>,
        error: AppError,
    },
}

impl ConnState {
    /// The profile this state is about, if any.
    pub fn profile_id(&self) -> Option<&str> {
        match self {
            Self::Disconnected => None,
            Self::Connecting { profile_id, .. } | Self::Disconnecting { profile_id, .. } => {
                Some(profile_id)
            }
            Self::Connected { session } => Some(&session.profile_id),
            Self::Failed { profile_id, .. } => profile_id.as_deref(),
        }
    }
    /// The name of the profile this state is about, if any.
    pub fn profile_name(&self) -> Option<&str> {
        match self {
            Self::Disconnected => None,
            Self::Connecting { profile_name, .. } | Self::Disconnecting { profile_name, .. } => {
                Some(profile_name)
            }
            Self::Connected { session } => Some(&session.profile_name),
            Self::Failed { profile_name, .. } => profile_name.as_deref(),
        }
    }
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Connecting { .. } | Self::Connected { .. } | Self::Disconnecting { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StatsSample {
    /// The profile whose session these counters are of.
    pub profile_id: String,
    #[ts(type = "number")]
    pub at_ms: u64,
    #[ts(type = "number")]
    pub bytes_in: u64,
    #[ts(type = "number")]
    pub bytes_out: u64,
    /// Packets the tunnel dropped so far, by reason (absent before the first count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub drops: Option<DropsView>,
}

/// Dropped packets of the current connection: the total and each non-zero reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DropsView {
    #[ts(type = "number")]
    pub total: u64,
    pub reasons: Vec<DropReasonCount>,
    /// TCP SYN/SYN-ACK packets whose MSS the tunnel lowered (mssfix).
    #[serde(default)]
    #[ts(type = "number")]
    pub mss_clamped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DropReasonCount {
    /// "replayed", "compression", ...
    pub label: String,
    #[ts(type = "number")]
    pub count: u64,
}

impl DropsView {
    /// From the helper's counters.
    pub fn from_ipc(d: &ipc::DropCounts) -> Self {
        Self {
            total: d.total(),
            reasons: d
                .labelled()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(label, count)| DropReasonCount {
                    label: (*label).to_owned(),
                    count: *count,
                })
                .collect(),
            mss_clamped: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[ts(type = "number")]
    pub at_ms: u64,
    pub level: LogLevel,
    /// "helper" for lines from the tunnel, "app" for the app's own.
    pub source: String,
    pub message: String,
}

/// What the credentials dialog must ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PromptKind {
    /// User name and password (and a static-challenge answer when `challenge` is set).
    #[serde(rename_all = "camelCase")]
    Password {
        username: Option<String>,
        challenge: Option<ChallengeView>,
        /// Also ask for the private key's passphrase.
        key_passphrase: bool,
    },
    /// Only the private key's passphrase.
    KeyPassphrase,
    /// The server asked a question mid-login (CRV1 dynamic challenge, e.g. an OTP).
    Challenge { challenge: ChallengeView },
    /// The profile's `http-proxy` / `socks-proxy` needs a user name and password
    /// (answered in `username` / `password`; "Remember" keeps them in the keyring
    /// apart from the VPN password).
    #[serde(rename_all = "camelCase")]
    Proxy {
        username: Option<String>,
        /// "HTTP" or "SOCKS".
        proxy_kind: String,
        /// The proxy's "host:port" as the profile writes it.
        proxy: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeView {
    pub text: String,
    /// The answer may be shown while typed.
    pub echo: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsPrompt {
    /// Increases with every prompt; the answer names it so a stale dialog cannot answer a new one.
    pub id: u32,
    pub profile_id: String,
    pub profile_name: String,
    pub kind: PromptKind,
    /// Why we ask again ("The server did not accept ..."), if we do.
    pub error: Option<String>,
}

/// What the user typed into the credentials dialog.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsAnswer {
    pub prompt_id: u32,
    pub username: Option<String>,
    pub password: Option<String>,
    pub challenge_response: Option<String>,
    pub key_passphrase: Option<String>,
    /// Keep user name and password in the system keyring.
    pub remember: bool,
}

impl std::fmt::Debug for CredentialsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsAnswer")
            .field("prompt_id", &self.prompt_id)
            .field("username", &self.username)
            .field("remember", &self.remember)
            .finish_non_exhaustive()
    }
}

/// One line of the Routes view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RouteCheckView {
    pub address: String,
    /// What this address is ("The VPN server", "Internet", what the user typed).
    pub label: String,
    pub via_tunnel: bool,
    pub interface: Option<String>,
    pub gateway: Option<String>,
    /// The matching route in `ip route` notation.
    pub route: Option<String>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RoutesView {
    /// Networks the profile sends into the tunnel ("all traffic", "10.0.0.0/24").
    pub tunnel_networks: Vec<String>,
    /// The routes the helper put in place for the session, with why (empty when not connected).
    pub plan: Vec<RoutePlanEntry>,
    /// The helper's remarks on the plan ("server is on-link: no host route").
    pub notes: Vec<String>,
    /// Sample destinations and where the system sends them now.
    pub checks: Vec<RouteCheckView>,
}

/// Which way a planned route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RouteSide {
    /// Into the tunnel.
    Tunnel,
    /// Around the tunnel, through the normal network (server, DHCP, DNS, LAN).
    Outside,
    /// Dropped (refused routes; the kill switch).
    Blocked,
}

/// One route of the session's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RoutePlanEntry {
    /// "0.0.0.0/1", "198.18.0.1/32".
    pub destination: String,
    pub side: RouteSide,
    /// "VPN server", "DHCP server", "Local network", ... in words.
    pub what: String,
    pub gateway: Option<String>,
    pub device: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    pub start_at_login: bool,
    pub notifications: bool,
    /// Closing the window keeps the app in the tray.
    pub close_to_tray: bool,
    /// Kill switch and LAN access for every profile without its own setting.
    pub protection: Protection,
    /// Profiles with their own protection setting (by profile id).
    #[ts(type = "Record<string, Protection>")]
    pub profile_protection: std::collections::BTreeMap<String, Protection>,
    /// The window's and the tray's language ("de", "zh-CN"); `None`: the system's.
    pub language: Option<String>,
    /// Profiles that connect by themselves (by profile id).
    #[ts(type = "Record<string, AutoConnect>")]
    pub auto_connect: std::collections::BTreeMap<String, AutoConnect>,
    /// Networks (Wi-Fi name or connection name) where no VPN is needed.
    pub trusted_networks: Vec<String>,
    /// The profile to connect on any network that is not trusted; `None`: rule off.
    pub untrusted_profile: Option<String>,
}

/// When a profile connects by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default, rename_all = "camelCase")]
pub struct AutoConnect {
    /// Every time the app starts.
    pub on_start: bool,
    /// When the app is started by the login (with "start at login" on).
    pub on_login: bool,
}

/// One network the computer is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NetworkView {
    /// Wi-Fi name, or the connection's name.
    pub name: String,
    pub wifi: bool,
}

/// The trusted-networks rule as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// Whether networks can be watched here (NetworkManager reachable).
    pub available: bool,
    pub networks: Vec<NetworkView>,
    /// "unavailable", "off", "noNetwork", "direct", "connect", "missingProfile".
    pub state: String,
    /// The network the decision is about.
    pub network: Option<String>,
    /// The profile the rule connects (or names, when it no longer exists).
    pub profile: Option<String>,
    pub error: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            start_at_login: false,
            notifications: true,
            close_to_tray: true,
            protection: Protection::default(),
            profile_protection: std::collections::BTreeMap::new(),
            language: None,
            auto_connect: std::collections::BTreeMap::new(),
            trusted_networks: Vec::new(),
            untrusted_profile: None,
        }
    }
}

impl Settings {
    /// The protection a connect of `profile_id` uses, and where it comes from.
    pub fn protection_for(&self, profile_id: &str) -> (Protection, ProtectionSource) {
        match self.profile_protection.get(profile_id) {
            Some(p) => (*p, ProtectionSource::Profile),
            None => (self.protection, ProtectionSource::Global),
        }
    }
}

/// Everything the window needs when it opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub profiles: Vec<ProfileSummary>,
    /// The first connection (kept for older callers; `connections` has them all).
    pub state: ConnState,
    /// Every profile that is connecting, connected, disconnecting or failed, in the
    /// order they were started (the helper runs several sessions).
    pub connections: Vec<ConnState>,
    pub prompt: Option<CredentialsPrompt>,
    pub log: Vec<LogEntry>,
    pub stats: Vec<StatsSample>,
    pub settings: Settings,
    /// The helper socket the app talks to.
    pub helper_socket: String,
    /// Import reports that arrived before the window listened (command line, second launch).
    pub pending_reports: Vec<ImportReport>,
    /// Whether the app is waiting for the helper service to come back.
    pub service: ServiceView,
}

/// The helper service as the window's banner shows it: reachable, or lost and being
/// looked for again in the background.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    /// The link to the helper was lost; the app tries to reach it again by itself.
    pub waiting: bool,
    /// Why (the error of the lost link), while waiting.
    pub error: Option<crate::error::AppError>,
    /// Tries to reach the helper since it was lost.
    pub attempts: u32,
}

/// Pushed to the window on the `oxivpn://event` channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", content = "data", rename_all = "camelCase")]
pub enum AppEvent {
    /// One connection changed (a `disconnected` state does not say which: see `Connections`).
    State(ConnState),
    /// All connections after a change (what the profile list and the tray show).
    Connections(Vec<ConnState>),
    Profiles(Vec<ProfileSummary>),
    Prompt(Option<CredentialsPrompt>),
    Log(LogEntry),
    Stats(StatsSample),
    Imported(ImportReport),
    /// A file handed to the app (dropped, command line) could not be imported; with
    /// `missingFiles` the window asks for them.
    ImportFailed(crate::error::AppError),
    /// Ask the window to show a view ("routes", "log", ...), e.g. from the tray.
    Navigate(String),
    /// The helper service was lost, is being looked for, or is back.
    Service(ServiceView),
}

/// The channel name of [`AppEvent`]s.
pub const EVENT_CHANNEL: &str = "oxivpn://event";
