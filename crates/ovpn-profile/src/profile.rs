//! The typed profile: everything OxiVPN honours, in a form the protocol core and the
//! helper can use directly. No line numbers here (they live in the report), so two
//! profiles that mean the same thing compare equal.

use serde::Serialize;

use crate::tls_names::{TlsGroup, TlsSuite};

/// Default OpenVPN port.
pub const DEFAULT_PORT: u16 = 1194;

/// Transport protocol of a remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    Udp,
    Udp4,
    Udp6,
    Tcp,
    Tcp4,
    Tcp6,
}

impl Proto {
    /// Parse a client protocol name (`tcp-client` and friends map to TCP).
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s {
            "udp" => Proto::Udp,
            "udp4" => Proto::Udp4,
            "udp6" => Proto::Udp6,
            "tcp" | "tcp-client" => Proto::Tcp,
            "tcp4" | "tcp4-client" => Proto::Tcp4,
            "tcp6" | "tcp6-client" => Proto::Tcp6,
            _ => return None,
        })
    }

    /// Canonical OpenVPN spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Udp4 => "udp4",
            Proto::Udp6 => "udp6",
            Proto::Tcp => "tcp",
            Proto::Tcp4 => "tcp4",
            Proto::Tcp6 => "tcp6",
        }
    }

    /// True for the TCP variants.
    pub fn is_tcp(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Tcp4 | Proto::Tcp6)
    }
}

/// One `remote host [port] [proto]`. Port/proto absent means "the profile default".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remote {
    pub host: String,
    pub port: Option<u16>,
    pub proto: Option<Proto>,
}

/// A resolved endpoint to try, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub proto: Proto,
    /// Connection-level options in force for this endpoint.
    pub options: ConnOptions,
}

/// `http-proxy host port [auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpProxy {
    pub host: String,
    pub port: u16,
    /// `None`: no proxy authentication.
    pub auth: Option<ProxyAuth>,
    /// The `auth-method` word (`basic`, `ntlm`, ...), if given.
    pub auth_method: Option<String>,
}

/// Where proxy credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyAuth {
    /// `auto` / `auto-nct`: ask the user when the proxy requires it.
    Auto { nct: bool },
    /// `stdin`: ask the user.
    Prompt,
    /// Credentials in a file or an inline `<http-proxy-user-pass>` block.
    Credentials(Credential),
}

/// `socks-proxy host [port] [authfile|stdin]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocksProxy {
    pub host: String,
    pub port: u16,
    /// `None`: no authentication offered; otherwise RFC 1929 user name/password from a
    /// file/inline credentials, or asked of the user (`stdin`, what import leaves in
    /// place of an auth file). Never [`ProxyAuth::Auto`].
    pub auth: Option<ProxyAuth>,
}

/// `http-proxy-option` lines in force for a connection entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HttpProxyOptions {
    /// `http-proxy-option VERSION 1.0|1.1` (OpenVPN's default: 1.0).
    pub version: Option<String>,
    /// `http-proxy-option AGENT text`: a `User-Agent` header.
    pub agent: Option<String>,
    /// `http-proxy-option CUSTOM-HEADER name [value]`, in file order.
    pub custom_headers: Vec<(String, String)>,
}

/// `mssfix [max [mtu|fixed]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mssfix {
    /// `None`: the bare directive (OpenVPN's default size); `Some(0)`: off.
    pub max: Option<u32>,
    pub unit: MssfixUnit,
}

/// What the `mssfix` size bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum MssfixUnit {
    /// `mssfix N`: the OpenVPN packet (UDP payload).
    #[default]
    Packet,
    /// `mssfix N mtu`: the outer IP packet, IP and UDP headers included.
    Mtu,
    /// `mssfix N fixed`: the tunnelled IP packet (MSS = N - 40).
    Fixed,
}

impl MssfixUnit {
    /// The keyword after the size (`None` for [`MssfixUnit::Packet`]).
    pub fn keyword(self) -> Option<&'static str> {
        match self {
            MssfixUnit::Packet => None,
            MssfixUnit::Mtu => Some("mtu"),
            MssfixUnit::Fixed => Some("fixed"),
        }
    }
}

/// Options OpenVPN keeps per connection entry (`<connection>` block or top level).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnOptions {
    /// `proto` (default for remotes that name none).
    pub proto: Option<Proto>,
    /// `port` / `rport` (default for remotes that name none).
    pub port: Option<u16>,
    pub connect_retry: Option<(u32, Option<u32>)>,
    pub connect_retry_max: Option<u32>,
    pub connect_timeout: Option<u32>,
    pub server_poll_timeout: Option<u32>,
    pub explicit_exit_notify: Option<u32>,
    pub tun_mtu: Option<u32>,
    /// `mssfix [max [mtu|fixed]]`.
    pub mssfix: Option<Mssfix>,
    pub float: bool,
    pub nobind: bool,
    pub http_proxy: Option<HttpProxy>,
    pub socks_proxy: Option<SocksProxy>,
    /// `http-proxy-option` lines (apply to `http_proxy`).
    pub http_proxy_options: HttpProxyOptions,
}

/// A `<connection>` block: one remote with its own options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub remote: Remote,
    pub options: ConnOptions,
}

/// PEM/key material: inline text, or a file still to be read by the user-side store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Material {
    /// The text of the inline block (or of the file once inlined).
    Inline(String),
    /// A file name, relative to the profile's folder unless absolute.
    File(FileRef),
}

/// A file name as written in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// Lossy UTF-8 rendering.
    pub path: String,
    /// Exact bytes, for opening the file.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

impl Material {
    /// The inline text, if any.
    pub fn inline(&self) -> Option<&str> {
        match self {
            Material::Inline(s) => Some(s),
            Material::File(_) => None,
        }
    }
}

/// `key-direction` / the direction argument of `tls-auth` and `secret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum KeyDirection {
    /// `0` (servers normally).
    Normal,
    /// `1` (clients normally).
    Inverse,
}

impl KeyDirection {
    /// Parse `0` / `1`.
    pub fn parse(s: &str) -> Option<KeyDirection> {
        match s {
            "0" => Some(KeyDirection::Normal),
            "1" => Some(KeyDirection::Inverse),
            _ => None,
        }
    }

    /// `0` or `1`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyDirection::Normal => "0",
            KeyDirection::Inverse => "1",
        }
    }
}

/// `tls-auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsAuth {
    pub key: Material,
    /// Direction given on the `tls-auth` line itself (a separate `key-direction`
    /// lives in [`Profile::key_direction`]).
    pub direction: Option<KeyDirection>,
}

/// TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TlsVersion {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

impl TlsVersion {
    /// Parse `1.0` .. `1.3`.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "1.0" => TlsVersion::V1_0,
            "1.1" => TlsVersion::V1_1,
            "1.2" => TlsVersion::V1_2,
            "1.3" => TlsVersion::V1_3,
            _ => return None,
        })
    }

    /// `1.2` etc.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::V1_0 => "1.0",
            TlsVersion::V1_1 => "1.1",
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }
}

/// `tls-version-min V [or-highest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TlsVersionMin {
    pub version: TlsVersion,
    pub or_highest: bool,
}

/// `remote-cert-tls server|client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertRole {
    Server,
    Client,
}

/// How `verify-x509-name` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum X509NameKind {
    Subject,
    Name,
    NamePrefix,
}

impl X509NameKind {
    /// OpenVPN spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            X509NameKind::Subject => "subject",
            X509NameKind::Name => "name",
            X509NameKind::NamePrefix => "name-prefix",
        }
    }
}

/// `verify-x509-name NAME [type]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyX509Name {
    pub name: String,
    pub kind: X509NameKind,
}

/// `verify-hash HASH [algo]`: fingerprint of the CA certificate one level above the leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyHash {
    /// Upper-case colon-separated hex.
    pub hash: String,
    /// `SHA1` (default) or `SHA256`.
    pub algo: String,
}

/// A user name and password source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// Inline block: first line user name, optional second line password.
    Inline {
        username: String,
        #[serde(skip)]
        password: Option<String>,
    },
    /// A file holding them (read by the user-side store, kept in the keyring).
    File(FileRef),
}

/// `auth-user-pass [FILE]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthUserPass {
    /// Bare directive: ask the user (or use the keyring).
    Prompt,
    /// From a file or an inline block.
    Credentials(Credential),
}

/// `static-challenge TEXT ECHO [FORMAT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticChallenge {
    pub text: String,
    pub echo: bool,
    /// `scrv1` (default) or `concat`.
    pub concat: bool,
}

/// `auth-retry none|nointeract|interact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthRetry {
    None,
    NoInteract,
    Interact,
}

/// What a `pull-filter` does with matching pushed options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullFilterAction {
    Accept,
    Ignore,
    Reject,
}

/// `pull-filter accept|ignore|reject TEXT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullFilter {
    pub action: PullFilterAction,
    pub text: String,
}

/// `route network [netmask] [gateway] [metric]` (each may be `default` or a keyword
/// such as `vpn_gateway`/`net_gateway`/`remote_host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub network: String,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub metric: Option<u32>,
}

/// `route-ipv6 network/bits [gateway] [metric]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteIpv6 {
    pub network: String,
    pub gateway: Option<String>,
    pub metric: Option<u32>,
}

/// `redirect-gateway [flags]` or `redirect-private [flags]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectGateway {
    /// `def1`, `bypass-dhcp`, `bypass-dns`, `local`, `autolocal`, `block-local`, `ipv6`, `!ipv4`.
    pub flags: Vec<String>,
}

/// `dhcp-option TYPE [value]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DhcpOption {
    pub kind: String,
    pub value: Option<String>,
}

/// Compression settings, kept only so the client can announce and refuse correctly
/// (OxiVPN never compresses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Compression {
    /// `comp-lzo [yes|no|adaptive]`: `Some(None)` for the bare form.
    pub comp_lzo: Option<Option<String>>,
    /// `compress [algo]`: `Some(None)` for the bare form.
    pub compress: Option<Option<String>>,
    /// `allow-compression yes|no|asym`.
    pub allow_compression: Option<String>,
}

/// A parsed client profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    // --- mode
    /// `client` (= `pull` + `tls-client`).
    pub client: bool,
    pub pull: bool,
    pub tls_client: bool,
    /// `dev` name (always a tun device; `None` = `tun`).
    pub dev: Option<String>,

    // --- where to connect
    pub remotes: Vec<Remote>,
    pub connections: Vec<Connection>,
    pub remote_random: bool,
    /// `resolv-retry N`: give up after N seconds of failing name resolution
    /// (`None`: `infinite`, OpenVPN's default).
    pub resolv_retry: Option<u32>,
    /// Top-level connection options (defaults for remotes).
    pub conn: ConnOptions,

    // --- keys and certificates
    pub ca: Option<Material>,
    pub cert: Option<Material>,
    pub key: Option<Material>,
    pub extra_certs: Option<Material>,
    pub pkcs12: Option<Material>,
    pub tls_auth: Option<TlsAuth>,
    pub tls_crypt: Option<Material>,
    pub tls_crypt_v2: Option<Material>,
    pub key_direction: Option<KeyDirection>,
    pub crl_verify: Option<Material>,

    // --- crypto
    /// `auth` digest, upper-cased (e.g. `SHA256`).
    pub auth: Option<String>,
    /// `cipher`, upper-cased.
    pub cipher: Option<String>,
    /// `data-ciphers` (or legacy `ncp-ciphers`), upper-cased.
    pub data_ciphers: Vec<String>,
    pub data_ciphers_fallback: Option<String>,
    pub tls_version_min: Option<TlsVersionMin>,
    pub tls_version_max: Option<TlsVersion>,
    /// `tls-cipher` suites rustls has (`None`: rustls defaults).
    pub tls_cipher: Option<Vec<TlsSuite>>,
    /// `tls-ciphersuites` (TLS 1.3) rustls has (`None`: rustls defaults).
    pub tls_ciphersuites: Option<Vec<TlsSuite>>,
    /// `tls-groups` rustls has (`None`: rustls defaults).
    pub tls_groups: Option<Vec<TlsGroup>>,
    /// `tls-cert-profile insecure|legacy|preferred|suiteb`.
    pub tls_cert_profile: Option<String>,

    // --- server verification
    pub remote_cert_tls: Option<CertRole>,
    /// `remote-cert-ku` values.
    pub remote_cert_ku: Vec<u16>,
    pub remote_cert_eku: Option<String>,
    /// Legacy `ns-cert-type server|client`.
    pub ns_cert_type: Option<CertRole>,
    pub verify_x509_name: Option<VerifyX509Name>,
    /// SHA-256 fingerprints, upper-case colon-separated hex.
    pub peer_fingerprints: Vec<String>,
    pub verify_hash: Option<VerifyHash>,

    // --- user authentication
    pub auth_user_pass: Option<AuthUserPass>,
    pub static_challenge: Option<StaticChallenge>,
    pub auth_nocache: bool,
    pub auth_retry: Option<AuthRetry>,
    pub push_peer_info: bool,
    /// `setenv NAME VALUE` (in order; e.g. `IV_GUI_VER`, `CLIENT_CERT`).
    pub setenv: Vec<(String, String)>,

    // --- routes and DNS
    pub route_nopull: bool,
    pub pull_filters: Vec<PullFilter>,
    pub routes: Vec<Route>,
    pub routes_ipv6: Vec<RouteIpv6>,
    pub redirect_gateway: Option<RedirectGateway>,
    pub redirect_private: Option<RedirectGateway>,
    pub dhcp_options: Vec<DhcpOption>,
    /// `dns ...` lines, as words.
    pub dns: Vec<Vec<String>>,
    pub block_outside_dns: bool,
    pub route_metric: Option<u32>,
    pub route_delay: Option<(u32, Option<u32>)>,

    // --- timers
    pub reneg_sec: Option<u32>,
    pub reneg_bytes: Option<u64>,
    pub reneg_pkts: Option<u64>,
    pub hand_window: Option<u32>,
    pub tls_timeout: Option<u32>,
    pub ping: Option<u32>,
    pub ping_restart: Option<u32>,
    pub ping_exit: Option<u32>,
    /// `keepalive interval timeout`.
    pub keepalive: Option<(u32, u32)>,
    /// `inactive seconds [bytes]`.
    pub inactive: Option<(u32, Option<u64>)>,

    // --- misc
    pub compression: Compression,
}

impl Profile {
    /// The endpoints to try, in file order, with defaults applied
    /// (`<connection>` blocks replace top-level remotes, as in OpenVPN).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let make = |r: &Remote, o: &ConnOptions| Endpoint {
            host: r.host.clone(),
            port: r.port.or(o.port).unwrap_or(DEFAULT_PORT),
            proto: r.proto.or(o.proto).unwrap_or(Proto::Udp),
            options: o.clone(),
        };
        if self.connections.is_empty() {
            self.remotes.iter().map(|r| make(r, &self.conn)).collect()
        } else {
            self.connections
                .iter()
                .map(|c| make(&c.remote, &c.options))
                .collect()
        }
    }

    /// All file references left in the profile (material and credentials).
    pub fn file_refs(&self) -> Vec<&FileRef> {
        let mut v = Vec::new();
        for m in [
            &self.ca,
            &self.cert,
            &self.key,
            &self.extra_certs,
            &self.pkcs12,
            &self.tls_crypt,
            &self.tls_crypt_v2,
            &self.crl_verify,
        ]
        .into_iter()
        .flatten()
        {
            if let Material::File(f) = m {
                v.push(f);
            }
        }
        if let Some(TlsAuth {
            key: Material::File(f),
            ..
        }) = &self.tls_auth
        {
            v.push(f);
        }
        if let Some(AuthUserPass::Credentials(Credential::File(f))) = &self.auth_user_pass {
            v.push(f);
        }
        for o in std::iter::once(&self.conn).chain(self.connections.iter().map(|c| &c.options)) {
            if let Some(HttpProxy {
                auth: Some(ProxyAuth::Credentials(Credential::File(f))),
                ..
            }) = &o.http_proxy
            {
                v.push(f);
            }
            if let Some(SocksProxy {
                auth: Some(ProxyAuth::Credentials(Credential::File(f))),
                ..
            }) = &o.socks_proxy
            {
                v.push(f);
            }
        }
        v
    }

    /// Whether the profile still refers to files that must be read.
    pub fn has_file_refs(&self) -> bool {
        let mats = [
            &self.ca,
            &self.cert,
            &self.key,
            &self.extra_certs,
            &self.pkcs12,
            &self.tls_crypt,
            &self.tls_crypt_v2,
            &self.crl_verify,
        ];
        let cred_file = |c: &Credential| matches!(c, Credential::File(_));
        mats.iter().any(|m| matches!(m, Some(Material::File(_))))
            || matches!(&self.tls_auth, Some(TlsAuth { key: Material::File(_), .. }))
            || matches!(&self.auth_user_pass, Some(AuthUserPass::Credentials(c)) if cred_file(c))
            || std::iter::once(&self.conn)
                .chain(self.connections.iter().map(|c| &c.options))
                .any(|o| {
                    matches!(&o.http_proxy, Some(HttpProxy { auth: Some(ProxyAuth::Credentials(c)), .. }) if cred_file(c))
                        || matches!(&o.socks_proxy, Some(SocksProxy { auth: Some(ProxyAuth::Credentials(c)), .. }) if cred_file(c))
                })
    }
}
