//! What the app/CLI and the helper say to each other.
//!
//! Wire form: JSON, externally tagged enums with snake_case names, e.g.
//! `{"request":{"id":3,"body":{"disconnect":{"session":7}}}}`. Each frame on the
//! socket holds exactly one [`ClientFrame`] or [`ServerFrame`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::IpcError;
use crate::types::{LogText, ProfileName, ProfileText, Secret, SessionId, ShortText, Username};

/// Bumped on every incompatible change; both sides refuse a different number.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    pub protocol: u32,
    /// "oxivpnctl 0.1.0", "oxivpn-app 0.1.0": for the helper's log only.
    pub client: ShortText,
}

/// The helper's answer to [`ClientHello`] when it accepts the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    pub protocol: u32,
    pub helper_version: ShortText,
    /// The uid the helper saw through the socket's peer credentials.
    pub peer_uid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientFrame {
    Hello(ClientHello),
    Request { id: RequestId, body: Request },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerFrame {
    Hello(ServerHello),
    /// The helper will not talk to this client (version, authorization); it closes
    /// the connection after this frame.
    Refused(IpcError),
    Response {
        id: RequestId,
        result: Result<Response, IpcError>,
    },
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Sessions of the caller (root: all). Other users' sessions appear without
    /// their profile name.
    ListSessions,
    Connect(ConnectRequest),
    Disconnect {
        session: SessionId,
    },
    Status,
    /// Start receiving [`Event`]s on this connection for the caller's sessions
    /// (root: all). A later subscribe replaces the earlier one.
    Subscribe(Subscription),
    AnswerChallenge {
        session: SessionId,
        response: Secret,
    },
    /// Which way would a packet to `addr` go.
    RouteCheck {
        addr: IpAddr,
    },
    /// The route plan applied for a session (same visibility rules as disconnect).
    SessionRoutes {
        session: SessionId,
    },
    /// "Check for leaks" against `session` (default: the caller's connected session, if
    /// any). Read-only apart from one echo request through the tunnel.
    LeakCheck {
        #[serde(default)]
        session: Option<SessionId>,
    },
    /// The helper's lockdown setting and whether it blocks now.
    LockdownStatus,
    /// Turn lockdown on or off (machine wide; see `docs/security.md` for who may).
    SetLockdown(crate::lockdown::LockdownChange),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub profile_name: ProfileName,
    pub profile_text: ProfileText,
    #[serde(default)]
    pub credentials: Credentials,
    #[serde(default)]
    pub options: ConnectOptions,
}

/// Per-connect choices of the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectOptions {
    #[serde(default)]
    pub kill_switch: KillSwitchMode,
    /// With the kill switch on, still let traffic to the directly attached
    /// subnets through (printers, NAS). DNS to the LAN stays blocked.
    #[serde(default)]
    pub allow_lan: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillSwitchMode {
    /// On when the profile or the server redirects all traffic, off for split tunnels.
    #[default]
    Default,
    /// On even for a split tunnel.
    On,
    Off,
}

/// Everything the user typed. Debug redacts the secrets (see [`Secret`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: Option<Username>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub key_passphrase: Option<Secret>,
    #[serde(default)]
    pub challenge_response: Option<Secret>,
    /// User name for the profile's `http-proxy` / `socks-proxy`.
    #[serde(default)]
    pub proxy_username: Option<Username>,
    /// Password for the profile's `http-proxy` / `socks-proxy`.
    #[serde(default)]
    pub proxy_password: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Stage changes, challenges and errors.
    #[serde(default)]
    pub events: bool,
    #[serde(default)]
    pub stats: bool,
    #[serde(default)]
    pub logs: bool,
    /// Only this session; `None` = all the caller may see.
    #[serde(default)]
    pub session: Option<SessionId>,
}

impl Subscription {
    pub fn all() -> Self {
        Self {
            events: true,
            stats: true,
            logs: true,
            session: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Sessions(Vec<SessionInfo>),
    /// The session exists and is starting; follow it with events.
    Started(SessionInfo),
    /// The session is being torn down; a `disconnected` stage event follows.
    Stopping {
        session: SessionId,
    },
    Status(HelperStatus),
    Subscribed,
    ChallengeAnswered,
    Route(RouteExplanation),
    Routes(SessionRoutes),
    LeakCheck(crate::leak_check::LeakReport),
    Lockdown(crate::lockdown::LockdownState),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub owner_uid: u32,
    /// `None` when the session belongs to someone else and the caller is not root.
    pub profile_name: Option<ProfileName>,
    pub stage: Stage,
    pub started_unix_ms: u64,
    pub stats: Stats,
    /// What the session is (or last was) connected with; `None` before the first
    /// connect and for another user's session.
    #[serde(default)]
    pub connection: Option<Box<ConnectionInfo>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

/// The server and the security a session actually got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The address actually connected (after resolving and failover).
    pub server_addr: IpAddr,
    pub server_port: u16,
    pub transport: Transport,
    /// The profile's `remote` host as written ("vpn.example.com").
    pub remote: ShortText,
    /// Negotiated data-channel cipher ("AES-256-GCM").
    #[serde(default)]
    pub cipher: Option<ShortText>,
    /// TLS version and suite of the control channel ("TLSv1.3 TLS13_AES_256_GCM_SHA384").
    #[serde(default)]
    pub tls: Option<ShortText>,
    /// "tls-ekm" or "legacy PRF".
    #[serde(default)]
    pub key_derivation: Option<ShortText>,
    /// Whether the kill switch guards this session.
    #[serde(default)]
    pub kill_switch: bool,
    /// The data channel's format: "AES-256-GCM, epoch keys (2.7)" or
    /// "AES-256-GCM, per-session keys".
    #[serde(default)]
    pub data_format: Option<ShortText>,
    #[serde(default)]
    pub interface: Option<ShortText>,
}

/// The routes a session's plan put in place, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRoutes {
    pub session: SessionId,
    pub routes: Vec<RouteEntry>,
    /// Planner remarks that change nothing ("server is on-link: no host route").
    #[serde(default)]
    pub notes: Vec<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// Prefix in CIDR notation: "0.0.0.0/1", "198.18.0.1/32", "::/3".
    pub destination: ShortText,
    pub gateway: Option<IpAddr>,
    pub device: Option<ShortText>,
    pub kind: RouteKind,
    /// One line for people.
    pub reason: ShortText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// Into the tunnel (redirect-gateway).
    IntoTunnel,
    /// Host route to a VPN server around the tunnel.
    ServerBypass,
    /// Host route to the DHCP server around the tunnel (bypass-dhcp).
    DhcpServerBypass,
    /// Host route to a pre-tunnel resolver around the tunnel (bypass-dns).
    DnsBypass,
    /// A directly attached prefix: stays on the LAN.
    Lan,
    /// A route the server pushed (or the profile named).
    Pushed,
    /// Refused routes and, with the kill switch on, everything else (including the
    /// directly attached subnets unless the connect allowed the LAN).
    Blocked,
    /// A pre-existing route deleted for the session (restored on disconnect).
    Removed,
}

impl RouteKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::IntoTunnel => "into tunnel",
            Self::ServerBypass => "server bypass",
            Self::DhcpServerBypass => "DHCP-server bypass",
            Self::DnsBypass => "DNS bypass",
            Self::Lan => "LAN",
            Self::Pushed => "pushed route",
            Self::Blocked => "blocked",
            Self::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperStatus {
    pub helper_version: ShortText,
    pub protocol: u32,
    pub uptime_ms: u64,
    pub peer_uid: u32,
    /// Sessions the caller may see.
    pub sessions: u32,
    /// Whether this helper build brings real tunnels up (false: test stub).
    pub tunnel_wired: bool,
    /// The lockdown ("block all traffic while disconnected"); `None` from a helper that
    /// has none (older, or an OS where it is not offered).
    #[serde(default)]
    pub lockdown: Option<crate::lockdown::LockdownState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteExplanation {
    pub addr: IpAddr,
    /// The session whose tunnel would carry it, if any.
    pub session: Option<SessionId>,
    pub via_tunnel: bool,
    pub interface: Option<ShortText>,
    pub gateway: Option<IpAddr>,
    /// The matching route in `ip route` notation, e.g. "0.0.0.0/1 dev tun0 table 51820".
    pub route: Option<ShortText>,
    /// One line for humans.
    pub explanation: ShortText,
}

/// Where a session is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Starting,
    Resolving,
    Connecting {
        /// "udp 198.18.0.1:1194".
        remote: ShortText,
    },
    Tls,
    Authenticating,
    Configuring,
    Connected {
        tunnel_ipv4: Option<IpAddr>,
        tunnel_ipv6: Option<IpAddr>,
        interface: Option<ShortText>,
    },
    Reconnecting {
        reason: ShortText,
        attempt: u32,
        delay_ms: u64,
    },
    Disconnected {
        reason: DisconnectReason,
    },
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Resolving => "resolving",
            Self::Connecting { .. } => "connecting",
            Self::Tls => "tls",
            Self::Authenticating => "authenticating",
            Self::Configuring => "configuring",
            Self::Connected { .. } => "connected",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Disconnected { .. } => "disconnected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    #[error("disconnected on request of uid {by_uid}")]
    Requested { by_uid: u32 },
    #[error("authentication failed: {message}")]
    AuthFailed { message: ShortText },
    #[error("the server ended the session: {message}")]
    ServerExit { message: ShortText },
    #[error("{error}")]
    Failed { error: IpcError },
    #[error("the helper is shutting down")]
    HelperShutdown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Counting since (unix ms); 0 = never connected.
    pub since_unix_ms: u64,
    /// Data packets the tunnel dropped, by reason (this connection).
    #[serde(default)]
    pub drops: DropCounts,
    /// TCP SYN/SYN-ACK packets whose MSS the tunnel lowered (`mssfix`).
    #[serde(default)]
    pub mss_clamped: u64,
}

/// Data packets dropped, by reason. Every drop is counted; none is silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCounts {
    /// Too short, bad header, bad padding.
    #[serde(default)]
    pub malformed: u64,
    /// Replayed or too old (replay protection).
    #[serde(default)]
    pub replayed: u64,
    /// Failed authentication (AEAD tag / HMAC).
    #[serde(default)]
    pub auth_failed: u64,
    /// Compression not agreed, undecodable or oversized compressed block.
    #[serde(default)]
    pub compression: u64,
    /// Key id the session has no data key for.
    #[serde(default)]
    pub unknown_key: u64,
    /// OpenVPN 2.7 data format: an epoch outside the receive window.
    #[serde(default)]
    pub epoch: u64,
    /// Packets from the system while the tunnel was not up.
    #[serde(default)]
    pub not_connected: u64,
    #[serde(default)]
    pub other: u64,
}

impl DropCounts {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.labelled().iter().map(|(_, n)| n).sum()
    }

    /// Each reason with its plain-words label, in display order.
    pub fn labelled(&self) -> [(&'static str, u64); 8] {
        [
            ("malformed", self.malformed),
            ("replayed", self.replayed),
            ("authentication failed", self.auth_failed),
            ("compression", self.compression),
            ("unknown key id", self.unknown_key),
            ("epoch out of window", self.epoch),
            ("not connected", self.not_connected),
            ("other", self.other),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: LogText,
}

/// The server (or the profile) wants an answer from the user before it continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    pub prompt: ShortText,
    /// Whether the answer may be shown while typed.
    pub echo: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub session: SessionId,
    pub unix_ms: u64,
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    Stage(Stage),
    Stats(Stats),
    Log(LogLine),
    Challenge(ChallengeRequest),
    /// Sign in with a browser (only the session's owner receives it).
    SignIn(crate::sign_in::SignInRequest),
    Error(IpcError),
    /// This connection read too slowly and missed `dropped` events.
    Lagged {
        dropped: u64,
    },
}
