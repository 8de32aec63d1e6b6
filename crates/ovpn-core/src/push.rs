//! PUSH_REPLY handling (§6.2, §6.3): continuation, pull-filter, route-nopull
//! and typed options.

use crate::config::{ClientConfig, Compression, PullFilterAction, Secret};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PushError {
    #[error("pull-filter rejected pushed option {0:?}")]
    Rejected(String),
    #[error("pushed cipher {cipher:?} is not in data-ciphers ({allowed})")]
    CipherNotAllowed { cipher: String, allowed: String },
    #[error("pushed option {option:?} is malformed: {reason}")]
    Malformed { option: String, reason: String },
    #[error("PUSH_REPLY continuation exceeded {0} parts")]
    TooManyParts(usize),
}

/// Upper bound on continuation parts (each ≤ 1 KiB).
const MAX_PARTS: usize = 256;

/// Collects a multi-part PUSH_REPLY.
#[derive(Debug, Default)]
pub struct PushAccumulator {
    parts: Vec<String>,
    count: usize,
}

impl PushAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one `PUSH_REPLY` body (text after `PUSH_REPLY`). Returns all
    /// option lines once the last part has arrived.
    pub fn add(&mut self, body: &str) -> Result<Option<Vec<String>>, PushError> {
        self.count += 1;
        if self.count > MAX_PARTS {
            return Err(PushError::TooManyParts(MAX_PARTS));
        }
        let mut more = false;
        for opt in body.split(',') {
            let opt = opt.trim();
            if opt.is_empty() {
                continue;
            }
            if let Some(v) = opt.strip_prefix("push-continuation") {
                more = v.trim() == "2";
                continue;
            }
            self.parts.push(opt.to_string());
        }
        if more {
            Ok(None)
        } else {
            self.count = 0;
            Ok(Some(std::mem::take(&mut self.parts)))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Net30,
    P2p,
    Subnet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route4 {
    pub network: Ipv4Addr,
    pub netmask: Ipv4Addr,
    /// `None` = default (`route-gateway` / vpn_gateway).
    pub gateway: Option<Ipv4Addr>,
    pub metric: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    pub network: Ipv6Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv6Addr>,
    pub metric: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteGateway {
    Addr(Ipv4Addr),
    Dhcp,
}

/// `redirect-gateway` / `redirect-private` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectGateway {
    pub def1: bool,
    pub local: bool,
    pub autolocal: bool,
    pub bypass_dhcp: bool,
    pub bypass_dns: bool,
    pub block_local: bool,
    pub ipv6: bool,
    /// False with `!ipv4`.
    pub ipv4: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOption {
    Dns(IpAddr),
    Domain(String),
    DomainSearch(String),
    /// Anything else (WINS, NTP, PROXY_*...): name and value as pushed.
    Other {
        name: String,
        value: String,
    },
}

/// One `dns server N ...` entry (2.6 `dns` option).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsServer {
    /// `address A[:port]` entries as text (IPv4, `[v6]:port` or bare v6).
    pub addresses: Vec<String>,
    pub resolve_domains: Vec<String>,
    pub dnssec: Option<String>,
    pub transport: Option<String>,
    pub sni: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsOptions {
    /// By priority (lower first).
    pub servers: BTreeMap<i32, DnsServer>,
    pub search_domains: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtocolFlags {
    pub tls_ekm: bool,
    pub cc_exit: bool,
    pub dyn_tls_crypt: bool,
    pub aead_epoch: bool,
}

/// Options from the server, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushedOptions {
    /// `ifconfig A B`: local address and netmask (subnet) or peer (net30/p2p).
    pub ifconfig: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `ifconfig-ipv6 addr/bits [remote]`.
    pub ifconfig_ipv6: Option<(Ipv6Addr, u8, Option<Ipv6Addr>)>,
    pub routes: Vec<Route4>,
    pub routes_ipv6: Vec<Route6>,
    pub route_gateway: Option<RouteGateway>,
    pub route_metric: Option<u32>,
    pub redirect_gateway: Option<RedirectGateway>,
    pub redirect_private: Option<RedirectGateway>,
    pub dhcp_options: Vec<DhcpOption>,
    pub dns: DnsOptions,
    pub topology: Option<Topology>,
    pub ping: Option<u32>,
    pub ping_restart: Option<u32>,
    pub peer_id: Option<u32>,
    pub cipher: Option<String>,
    pub protocol_flags: ProtocolFlags,
    /// `key-derivation tls-ekm`.
    pub key_derivation_tls_ekm: bool,
    pub tun_mtu: Option<u16>,
    pub auth_token: Option<Secret>,
    /// Decoded `auth-token-user`.
    pub auth_token_user: Option<String>,
    pub compression: Option<Compression>,
    pub explicit_exit_notify: Option<u32>,
    pub block_outside_dns: bool,
    /// Options we do not interpret, kept as text.
    pub unknown: Vec<String>,
    /// Options dropped by pull-filter ignore, route-nopull or safety checks.
    pub ignored: Vec<String>,
}

impl PushedOptions {
    /// Use EKM for data keys.
    pub fn uses_tls_ekm(&self) -> bool {
        self.key_derivation_tls_ekm || self.protocol_flags.tls_ekm
    }
}

/// Options route-nopull drops (routes, redirects, DNS/DHCP).
fn is_route_or_dns(name: &str) -> bool {
    matches!(
        name,
        "route"
            | "route-ipv6"
            | "redirect-gateway"
            | "redirect-private"
            | "route-metric"
            | "dhcp-option"
            | "dns"
            | "block-outside-dns"
    )
}

/// Apply pull-filter / route-nopull and parse the options.
pub fn parse_pushed(lines: &[String], cfg: &ClientConfig) -> Result<PushedOptions, PushError> {
    let mut o = PushedOptions::default();
    for line in lines {
        let action = cfg
            .pull_filters
            .iter()
            .find(|f| line.starts_with(f.prefix.as_str()))
            .map(|f| f.action);
        match action {
            Some(PullFilterAction::Reject) => return Err(PushError::Rejected(line.clone())),
            Some(PullFilterAction::Ignore) => {
                tracing::info!(option = %line, "pushed option ignored by pull-filter");
                o.ignored.push(line.clone());
                continue;
            }
            _ => {}
        }
        let tokens = tokenize(line);
        let Some(name) = tokens.first().map(String::as_str) else {
            continue;
        };
        if cfg.route_nopull && is_route_or_dns(name) {
            tracing::info!(option = %line, "pushed option ignored (route-nopull)");
            o.ignored.push(line.clone());
            continue;
        }
        apply_option(&mut o, name, &tokens[1..], line, cfg)?;
    }
    Ok(o)
}

fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut has = false;
    for c in line.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                has = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

fn malformed(line: &str, reason: &str) -> PushError {
    PushError::Malformed {
        option: line.to_string(),
        reason: reason.to_string(),
    }
}

fn arg<'a>(args: &'a [String], i: usize, line: &str, what: &str) -> Result<&'a str, PushError> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| malformed(line, &format!("missing {what}")))
}

fn num<T: std::str::FromStr>(s: &str, line: &str, what: &str) -> Result<T, PushError> {
    s.parse()
        .map_err(|_| malformed(line, &format!("{what} {s:?} is not a number")))
}

fn v4(s: &str, line: &str, what: &str) -> Result<Ipv4Addr, PushError> {
    s.parse()
        .map_err(|_| malformed(line, &format!("{what} {s:?} is not an IPv4 address")))
}

fn v6_prefix(s: &str, line: &str) -> Result<(Ipv6Addr, u8), PushError> {
    let (a, b) = s.split_once('/').unwrap_or((s, "128"));
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| malformed(line, &format!("{a:?} is not an IPv6 address")))?;
    let bits: u8 = num(b, line, "prefix length")?;
    if bits > 128 {
        return Err(malformed(line, "prefix length above 128"));
    }
    Ok((addr, bits))
}

fn mask_to_prefix(mask: Ipv4Addr) -> Option<u32> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
}

fn route4_covers(net: Ipv4Addr, mask: Ipv4Addr, addr: Ipv4Addr) -> bool {
    let m = u32::from(mask);
    u32::from(net) & m == u32::from(addr) & m
}

fn route6_covers(net: Ipv6Addr, bits: u8, addr: Ipv6Addr) -> bool {
    let bits = u32::from(bits.min(128));
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    u128::from(net) & mask == u128::from(addr) & mask
}

fn apply_option(
    o: &mut PushedOptions,
    name: &str,
    args: &[String],
    line: &str,
    cfg: &ClientConfig,
) -> Result<(), PushError> {
    match name {
        "ifconfig" => {
            let a = v4(arg(args, 0, line, "local address")?, line, "local address")?;
            let b = v4(arg(args, 1, line, "netmask/peer")?, line, "netmask/peer")?;
            o.ifconfig = Some((a, b));
        }
        "ifconfig-ipv6" => {
            let (a, bits) = v6_prefix(arg(args, 0, line, "address")?, line)?;
            let remote = match args.get(1) {
                Some(r) => Some(
                    r.parse()
                        .map_err(|_| malformed(line, "remote is not an IPv6 address"))?,
                ),
                None => None,
            };
            o.ifconfig_ipv6 = Some((a, bits, remote));
        }
        "route" => {
            let network = v4(arg(args, 0, line, "network")?, line, "network")?;
            let netmask = match args.get(1).map(String::as_str) {
                None | Some("default") => Ipv4Addr::BROADCAST,
                Some(m) => v4(m, line, "netmask")?,
            };
            if mask_to_prefix(netmask).is_none() {
                return Err(malformed(line, "netmask is not contiguous"));
            }
            let gateway = match args.get(2).map(String::as_str) {
                None | Some("default") | Some("vpn_gateway") => None,
                Some("net_gateway") | Some("remote_host") => {
                    // Routes via the physical gateway are the helper's business; keep as text.
                    o.unknown.push(line.to_string());
                    return Ok(());
                }
                Some(g) => Some(v4(g, line, "gateway")?),
            };
            let metric = match args.get(3) {
                Some(m) if m != "default" => Some(num(m, line, "metric")?),
                _ => None,
            };
            if let Some(IpAddr::V4(server)) = cfg.remote_addr {
                if route4_covers(network, netmask, server) {
                    tracing::warn!(option = %line, "pushed route covers the VPN server's own address; refused");
                    o.ignored.push(line.to_string());
                    return Ok(());
                }
            }
            o.routes.push(Route4 {
                network,
                netmask,
                gateway,
                metric,
            });
        }
        "route-ipv6" => {
            let (network, prefix_len) = v6_prefix(arg(args, 0, line, "network")?, line)?;
            let gateway = match args.get(1).map(String::as_str) {
                None | Some("default") | Some("vpn_gateway") => None,
                Some(g) => Some(
                    g.parse()
                        .map_err(|_| malformed(line, "gateway is not an IPv6 address"))?,
                ),
            };
            let metric = match args.get(2) {
                Some(m) if m != "default" => Some(num(m, line, "metric")?),
                _ => None,
            };
            if let Some(IpAddr::V6(server)) = cfg.remote_addr {
                if route6_covers(network, prefix_len, server) {
                    tracing::warn!(option = %line, "pushed route covers the VPN server's own address; refused");
                    o.ignored.push(line.to_string());
                    return Ok(());
                }
            }
            o.routes_ipv6.push(Route6 {
                network,
                prefix_len,
                gateway,
                metric,
            });
        }
        "route-gateway" => {
            let g = arg(args, 0, line, "gateway")?;
            o.route_gateway = Some(if g == "dhcp" {
                RouteGateway::Dhcp
            } else {
                RouteGateway::Addr(v4(g, line, "gateway")?)
            });
        }
        "route-metric" => {
            o.route_metric = Some(num(arg(args, 0, line, "metric")?, line, "metric")?)
        }
        "redirect-gateway" | "redirect-private" => {
            let mut r = RedirectGateway {
                ipv4: true,
                ..RedirectGateway::default()
            };
            for f in args {
                match f.as_str() {
                    "def1" => r.def1 = true,
                    "local" => r.local = true,
                    "autolocal" => r.autolocal = true,
                    "bypass-dhcp" => r.bypass_dhcp = true,
                    "bypass-dns" => r.bypass_dns = true,
                    "block-local" => r.block_local = true,
                    "ipv6" => r.ipv6 = true,
                    "!ipv4" => r.ipv4 = false,
                    other => tracing::info!(flag = other, "unknown redirect-gateway flag ignored"),
                }
            }
            if name == "redirect-gateway" {
                o.redirect_gateway = Some(r);
            } else {
                o.redirect_private = Some(r);
            }
        }
        "dhcp-option" => {
            let kind = arg(args, 0, line, "type")?;
            let value = args.get(1).cloned().unwrap_or_default();
            let opt = match kind.to_ascii_uppercase().as_str() {
                "DNS" | "DNS6" => DhcpOption::Dns(
                    value
                        .parse()
                        .map_err(|_| malformed(line, "DNS server is not an IP address"))?,
                ),
                "DOMAIN" => DhcpOption::Domain(value),
                "DOMAIN-SEARCH" => DhcpOption::DomainSearch(value),
                _ => DhcpOption::Other {
                    name: kind.to_string(),
                    value: args[1..].join(" "),
                },
            };
            o.dhcp_options.push(opt);
        }
        "dns" => apply_dns(o, args, line)?,
        "topology" => {
            o.topology = Some(match arg(args, 0, line, "topology")? {
                "net30" => Topology::Net30,
                "p2p" => Topology::P2p,
                "subnet" => Topology::Subnet,
                _ => return Err(malformed(line, "unknown topology")),
            })
        }
        "ping" => o.ping = Some(num(arg(args, 0, line, "seconds")?, line, "ping")?),
        "ping-restart" => {
            o.ping_restart = Some(num(arg(args, 0, line, "seconds")?, line, "ping-restart")?)
        }
        "peer-id" => {
            let id: u32 = num(arg(args, 0, line, "peer id")?, line, "peer id")?;
            if id > 0x00ff_ffff {
                return Err(malformed(line, "peer-id exceeds 24 bits"));
            }
            o.peer_id = Some(id);
        }
        "cipher" => {
            let c = arg(args, 0, line, "cipher")?;
            // A profile names ciphers in data-ciphers, or for servers that negotiate
            // nothing in cipher/data-ciphers-fallback (cipher_choice decides legacy use).
            let named = cfg
                .data_ciphers
                .iter()
                .chain(&cfg.fallback_ciphers)
                .any(|x| x.eq_ignore_ascii_case(c));
            if !named {
                return Err(PushError::CipherNotAllowed {
                    cipher: c.to_string(),
                    allowed: cfg
                        .data_ciphers
                        .iter()
                        .chain(&cfg.fallback_ciphers)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(":"),
                });
            }
            o.cipher = Some(c.to_ascii_uppercase());
        }
        "protocol-flags" => {
            for f in args {
                match f.as_str() {
                    "tls-ekm" => o.protocol_flags.tls_ekm = true,
                    "cc-exit" => o.protocol_flags.cc_exit = true,
                    "dyn-tls-crypt" => o.protocol_flags.dyn_tls_crypt = true,
                    "aead-epoch" => o.protocol_flags.aead_epoch = true,
                    other => tracing::info!(flag = other, "unknown protocol flag ignored"),
                }
            }
        }
        "key-derivation" => {
            if arg(args, 0, line, "method")? == "tls-ekm" {
                o.key_derivation_tls_ekm = true;
            } else {
                o.unknown.push(line.to_string());
            }
        }
        "tun-mtu" => o.tun_mtu = Some(num(arg(args, 0, line, "mtu")?, line, "tun-mtu")?),
        "auth-token" => o.auth_token = Some(Secret(arg(args, 0, line, "token")?.to_string())),
        "auth-token-user" => {
            use base64::Engine;
            let b = arg(args, 0, line, "user")?;
            let user = base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|u| String::from_utf8(u).ok())
                .ok_or_else(|| malformed(line, "not base64 UTF-8"))?;
            o.auth_token_user = Some(user);
        }
        "comp-lzo" => {
            // A pushed comp-lzo has exactly one argument in 2.6 (`comp-lzo no` for
            // the stub); bare and yes/adaptive mean LZO, which we decompress.
            o.compression = Some(
                Compression::from_comp_lzo_arg(args.first().map(String::as_str))
                    .map_err(|e| malformed(line, &e.to_string()))?,
            );
        }
        "compress" => {
            o.compression = Some(
                Compression::from_compress_arg(args.first().map(String::as_str))
                    .map_err(|e| malformed(line, &e.to_string()))?,
            );
        }
        "explicit-exit-notify" => {
            o.explicit_exit_notify = Some(match args.first() {
                Some(n) => num(n, line, "count")?,
                None => 1,
            })
        }
        "block-outside-dns" => o.block_outside_dns = true,
        // Pushed for old clients; IPv6 in the tunnel needs nothing extra.
        "tun-ipv6" => {}
        _ => {
            tracing::info!(option = %line, "pushed option not interpreted; kept as text");
            o.unknown.push(line.to_string());
        }
    }
    Ok(())
}

fn apply_dns(o: &mut PushedOptions, args: &[String], line: &str) -> Result<(), PushError> {
    match arg(args, 0, line, "dns sub-option")? {
        "search-domains" => o.dns.search_domains.extend(args[1..].iter().cloned()),
        "server" => {
            let prio: i32 = num(arg(args, 1, line, "priority")?, line, "priority")?;
            let what = arg(args, 2, line, "server field")?;
            let rest = &args[3..];
            let s = o.dns.servers.entry(prio).or_default();
            match what {
                "address" => s.addresses.extend(rest.iter().cloned()),
                "resolve-domains" => s.resolve_domains.extend(rest.iter().cloned()),
                "dnssec" => s.dnssec = rest.first().cloned(),
                "transport" => s.transport = rest.first().cloned(),
                "sni" => s.sni = rest.first().cloned(),
                _ => o.unknown.push(line.to_string()),
            }
        }
        _ => o.unknown.push(line.to_string()),
    }
    Ok(())
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
