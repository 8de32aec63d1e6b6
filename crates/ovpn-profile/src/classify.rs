//! Directives we do not turn into typed fields, and why: harmless for a client,
//! not supported (yet), refused for safety, or only meaningful on a server.

/// What to do with a directive that has no typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// No effect for OxiVPN; the reason is shown to the user.
    Ignored(&'static str),
    /// OxiVPN cannot do this. `fatal`: the profile cannot work without it.
    Unsupported { reason: &'static str, fatal: bool },
    /// Would run a program or touch a path as root: dropped, never carried out.
    Refused(&'static str),
    /// A server-only option.
    Server,
}

const RUNS_PROGRAM: &str = "runs a program as root; OxiVPN never runs programs named by a profile";
const DNS_HOOK: &str = "runs a script as root (usually to set DNS); OxiVPN sets routes and DNS itself and never runs profile scripts";
const WRITES_PATH: &str = "writes a file as root; OxiVPN keeps its own logs and state";
const PATH_ROOT: &str =
    "makes the root helper open a path; OxiVPN only uses what is inside the profile";
const MGMT: &str = "opens OpenVPN's management interface; OxiVPN is controlled by its own app only";

/// Refused directives (safety): checked case-insensitively.
pub fn refused(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let r = match n.as_str() {
        "up" | "down" | "route-up" | "route-pre-down" | "ipchange" => DNS_HOOK,
        "tls-verify"
        | "learn-address"
        | "auth-user-pass-verify"
        | "client-connect"
        | "client-disconnect"
        | "tls-crypt-v2-verify"
        | "dns-updown"
        | "iproute"
        | "win-sys" => RUNS_PROGRAM,
        "plugin" => "loads a plugin (native code) into the VPN process; OxiVPN never loads plugins",
        "log" | "log-append" | "status" | "writepid" | "replay-persist" | "tls-export-cert" => {
            WRITES_PATH
        }
        "cd" | "chroot" | "config" | "tmp-dir" | "dev-node" | "capath" | "setcon" => PATH_ROOT,
        "daemon" | "service" => {
            "would detach or change how the VPN process runs; the OxiVPN helper manages that"
        }
        "dhcp-renew" | "dhcp-release" | "dhcp-pre-release" | "register-dns" => {
            "runs ipconfig as administrator (Windows); OxiVPN configures the adapter itself"
        }
        "client-config-dir" | "ifconfig-pool-persist" | "auth-gen-token-secret" => {
            "is a server option naming a path the root helper would open; OxiVPN only uses what is inside the profile"
        }
        _ if n.starts_with("management") => MGMT,
        _ => return None,
    };
    Some(r)
}

/// Refused directives including argument-dependent ones (`script-security` above 1),
/// in any spelling of the name.
pub fn refused_with_args(name: &str, args: &[String]) -> Option<&'static str> {
    if name.eq_ignore_ascii_case("script-security") {
        let level = args
            .first()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(1);
        return (level > 1).then_some("allows scripts to run");
    }
    if name.eq_ignore_ascii_case("crl-verify")
        && args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("dir"))
    {
        return Some("names a directory of revocation lists, which the root helper never opens; no revocation check is made: put the CRL file's content in a <crl-verify> block (or `crl-verify FILE` next to the profile) and import again");
    }
    if name.eq_ignore_ascii_case("dh") && !args.is_empty() {
        return Some("names a Diffie-Hellman file, which only servers use; the root helper never opens profile paths");
    }
    refused(name)
}

/// Options that only a server uses.
pub fn server_only(name: &str) -> bool {
    matches!(
        name,
        "server"
            | "server-bridge"
            | "server-ipv6"
            | "tls-server"
            | "mode"
            | "client-to-client"
            | "duplicate-cn"
            | "ifconfig-pool"
            | "ifconfig-pool-persist"
            | "ifconfig-ipv6-pool"
            | "ifconfig-push"
            | "ifconfig-ipv6-push"
            | "push"
            | "push-reset"
            | "push-remove"
            | "client-config-dir"
            | "ccd-exclusive"
            | "client-cert-not-required"
            | "verify-client-cert"
            | "username-as-common-name"
            | "auth-gen-token"
            | "auth-gen-token-secret"
            | "max-clients"
            | "max-routes-per-client"
            | "stale-routes-check"
            | "hash-size"
            | "bcast-buffers"
            | "tcp-queue-limit"
            | "port-share"
            | "iroute"
            | "iroute-ipv6"
            | "auth-user-pass-optional"
            | "x509-username-field"
            | "connect-freq"
            | "vlan-tagging"
            | "vlan-accept"
            | "vlan-pvid"
            | "dh"
            | "learn-address"
            | "client-connect"
            | "client-disconnect"
            | "auth-user-pass-verify"
            | "tls-crypt-v2-verify"
            | "topology-subnet"
            | "disable"
            | "client-nat"
            | "connect-freq-initial"
            | "ifconfig-push-constraint"
            | "override-username"
            | "force-tls-key-material-export"
            | "tls-crypt-v2-max-age"
    )
}

/// Classify a directive that has no typed field. `None`: unknown to OpenVPN 2.6.
pub fn classify(name: &str) -> Option<Class> {
    use Class::*;
    if let Some(r) = refused(name) {
        return Some(Refused(r));
    }
    if server_only(name) {
        return Some(Server);
    }
    let c = match name {
        "verb" | "mute" | "mute-replay-warnings" | "echo" | "syslog" | "suppress-timestamps" | "machine-readable-output"
        | "errors-to-stderr" | "status-version" => Ignored("only changes OpenVPN's logging; OxiVPN has its own log"),
        "persist-tun" | "persist-key" | "persist-local-ip" | "persist-remote-ip" | "ping-timer-rem"
        | "user" | "group" | "mlock" | "nice" | "fast-io" | "sndbuf" | "rcvbuf" | "txqueuelen" | "up-delay"
        | "up-restart" | "down-pre" | "tap-sleep" | "ip-win32" | "route-method" | "show-net-up" | "allow-recursive-routing" | "prng" | "engine"
        | "single-session" | "tls-exit" | "shaper" | "passtos" | "mark" | "bind-dev" | "route-noexec"
        | "ifconfig-noexec" | "allow-pull-fqdn" | "management-hold" | "writepid-off" | "script-security-off"
        | "use-prediction-resistance" | "providers" | "disable-dco" | "ecdh-curve" | "max-routes" | "win-sys-off"
        | "route-gateway" | "route-ipv6-gateway" | "tran-window" | "opt-verify" | "compat-mode" | "lport" | "bind"
        | "local" | "http-proxy-retry" | "socks-proxy-retry" | "http-proxy-timeout" | "http-proxy-override"
        | "proto-force" | "multihome" | "x509-track" | "pull-filter-off" => {
            Ignored("has no effect for OxiVPN (the helper manages the device, privileges and sockets itself)")
        }
        "link-mtu" | "tun-mtu-extra" | "mtu-disc" | "mtu-test" => {
            Ignored("legacy MTU setting; OxiVPN sizes packets from tun-mtu and mssfix")
        }
        "keysize" | "key-method" | "ncp-disable" | "no-iv" | "tun-ipv6" | "comp-noadapt" | "disable-occ"
        | "ifconfig-ipv6" | "ifconfig" | "topology" | "replay-window" | "no-replay" | "keying-material-exporter"
        | "remote-random-hostname" => Ignored("obsolete or set by the server when it pushes its settings"),
        "auth-token" | "auth-token-user" | "peer-id" | "protocol-flags" | "key-derivation"
        | "push-continuation" | "ifconfig-ipv6-pull" => Ignored("only meaningful when pushed by the server"),
        "compat-names" | "no-name-remapping" | "mtu-dynamic" | "gremlin" | "max-packet-size" | "msg-channel"
        | "parameter" | "pause-exit" | "remap-usr1" | "socket-flags" | "tcp-nodelay" | "udp-mtu" | "tun-mtu-max"
        | "windows-driver" | "dhcp-internal" | "rdns-internal" | "ip-remote-hint" | "ifconfig-nowarn"
        | "allow-nonadmin" | "preresolve" | "route-table" | "session-timeout"
        | "allow-deprecated-insecure-static-crypto" => {
            Ignored("has no effect for OxiVPN (tuning, platform or debugging option of OpenVPN itself)")
        }
        "client-crresponse" => Unsupported {
            reason: "a fixed challenge-response answer is not supported; OxiVPN asks when the server challenges",
            fatal: false,
        },
        "tls-remote" => Unsupported {
            reason: "was removed in OpenVPN 2.4 (use verify-x509-name); the server name is not checked beyond the CA",
            fatal: false,
        },
        "block-ipv6" | "dhcp-option-off" => Unsupported { reason: "is not applied by OxiVPN yet", fatal: false },
        "fragment" => Unsupported {
            reason: "splits packets inside OpenVPN, which OxiVPN does not do; the server uses it too, so the tunnel would not work. Ask the provider for a profile without fragment (mssfix keeps TCP packets small enough)",
            fatal: true,
        },
        "secret" => Unsupported {
            reason: "static-key mode (no TLS) is not supported by OxiVPN, and OpenVPN 2.7 removes it",
            fatal: true,
        },
        "dev-type" | "lladdr" => Unsupported { reason: "only tun devices are supported", fatal: true },
        "cryptoapicert" => Unsupported { reason: "the Windows certificate store is not supported", fatal: true },
        "pkcs11-providers" | "pkcs11-id" | "pkcs11-id-management" | "pkcs11-pin-cache" | "pkcs11-protected-authentication"
        | "pkcs11-private-mode" | "pkcs11-cert-private" | "pkcs11-pin-cache-per-session" => {
            Unsupported { reason: "smart cards and tokens (PKCS#11) are not supported", fatal: true }
        }
        "genkey" | "test-crypto" | "show-ciphers" | "show-digests" | "show-tls" | "show-groups" | "show-curves"
        | "show-engines" | "mktun" | "rmtun" | "version" | "help" | "show-adapters" | "show-gateway" | "show-net"
        | "show-pkcs11-ids" | "show-valid-subnets" => {
            Unsupported { reason: "is an OpenVPN command, not a connection setting", fatal: true }
        }
        _ => return None,
    };
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option name OpenVPN 2.6/2.7's options.c accepts.
    const OPENVPN_OPTIONS: &[&str] = &[
        "allow-compression",
        "allow-deprecated-insecure-static-crypto",
        "allow-nonadmin",
        "allow-pull-fqdn",
        "allow-recursive-routing",
        "askpass",
        "auth",
        "auth-gen-token",
        "auth-gen-token-secret",
        "auth-nocache",
        "auth-retry",
        "auth-token",
        "auth-token-user",
        "auth-user-pass",
        "auth-user-pass-optional",
        "auth-user-pass-verify",
        "bcast-buffers",
        "bind",
        "bind-dev",
        "block-ipv6",
        "block-outside-dns",
        "ca",
        "capath",
        "ccd-exclusive",
        "cd",
        "cert",
        "chroot",
        "cipher",
        "client",
        "client-cert-not-required",
        "client-config-dir",
        "client-connect",
        "client-crresponse",
        "client-disconnect",
        "client-nat",
        "client-to-client",
        "comp-lzo",
        "comp-noadapt",
        "compat-mode",
        "compat-names",
        "compress",
        "config",
        "connect-freq",
        "connect-freq-initial",
        "connect-retry",
        "connect-retry-max",
        "connect-timeout",
        "connection",
        "crl-verify",
        "cryptoapicert",
        "daemon",
        "data-ciphers",
        "data-ciphers-fallback",
        "dev",
        "dev-node",
        "dev-type",
        "dh",
        "dhcp-internal",
        "dhcp-option",
        "dhcp-pre-release",
        "dhcp-release",
        "dhcp-renew",
        "disable",
        "disable-dco",
        "disable-occ",
        "dns",
        "dns-updown",
        "down",
        "down-pre",
        "duplicate-cn",
        "ecdh-curve",
        "echo",
        "engine",
        "errors-to-stderr",
        "explicit-exit-notify",
        "extra-certs",
        "fast-io",
        "float",
        "force-tls-key-material-export",
        "fragment",
        "genkey",
        "gremlin",
        "group",
        "hand-window",
        "hash-size",
        "help",
        "http-proxy",
        "http-proxy-option",
        "http-proxy-override",
        "http-proxy-retry",
        "http-proxy-timeout",
        "http-proxy-user-pass",
        "ifconfig",
        "ifconfig-ipv6",
        "ifconfig-ipv6-pool",
        "ifconfig-ipv6-push",
        "ifconfig-noexec",
        "ifconfig-nowarn",
        "ifconfig-pool",
        "ifconfig-pool-persist",
        "ifconfig-push",
        "ifconfig-push-constraint",
        "ignore-unknown-option",
        "inactive",
        "ip-remote-hint",
        "ip-win32",
        "ipchange",
        "iproute",
        "iroute",
        "iroute-ipv6",
        "keepalive",
        "key",
        "key-derivation",
        "key-direction",
        "keying-material-exporter",
        "learn-address",
        "link-mtu",
        "lladdr",
        "local",
        "log",
        "log-append",
        "lport",
        "machine-readable-output",
        "management",
        "management-client",
        "management-client-auth",
        "management-client-group",
        "management-client-user",
        "management-external-cert",
        "management-external-key",
        "management-forget-disconnect",
        "management-hold",
        "management-log-cache",
        "management-query-passwords",
        "management-query-proxy",
        "management-query-remote",
        "management-signal",
        "management-up-down",
        "mark",
        "max-clients",
        "max-packet-size",
        "max-routes",
        "max-routes-per-client",
        "mktun",
        "mlock",
        "mode",
        "msg-channel",
        "mssfix",
        "mtu-disc",
        "mtu-dynamic",
        "mtu-test",
        "multihome",
        "mute",
        "mute-replay-warnings",
        "ncp-ciphers",
        "nice",
        "no-name-remapping",
        "no-replay",
        "nobind",
        "ns-cert-type",
        "opt-verify",
        "override-username",
        "parameter",
        "passtos",
        "pause-exit",
        "peer-fingerprint",
        "peer-id",
        "persist-key",
        "persist-local-ip",
        "persist-remote-ip",
        "persist-tun",
        "ping",
        "ping-exit",
        "ping-restart",
        "ping-timer-rem",
        "pkcs11-cert-private",
        "pkcs11-id",
        "pkcs11-id-management",
        "pkcs11-pin-cache",
        "pkcs11-private-mode",
        "pkcs11-protected-authentication",
        "pkcs11-providers",
        "pkcs12",
        "plugin",
        "port",
        "port-share",
        "preresolve",
        "prng",
        "proto",
        "proto-force",
        "protocol-flags",
        "providers",
        "pull",
        "pull-filter",
        "push",
        "push-continuation",
        "push-peer-info",
        "push-remove",
        "push-reset",
        "rcvbuf",
        "rdns-internal",
        "redirect-gateway",
        "redirect-private",
        "register-dns",
        "remap-usr1",
        "remote",
        "remote-cert-eku",
        "remote-cert-ku",
        "remote-cert-tls",
        "remote-random",
        "remote-random-hostname",
        "reneg-bytes",
        "reneg-pkts",
        "reneg-sec",
        "replay-persist",
        "replay-window",
        "resolv-retry",
        "rmtun",
        "route",
        "route-delay",
        "route-gateway",
        "route-ipv6",
        "route-ipv6-gateway",
        "route-method",
        "route-metric",
        "route-noexec",
        "route-nopull",
        "route-pre-down",
        "route-table",
        "route-up",
        "rport",
        "script-security",
        "secret",
        "server",
        "server-bridge",
        "server-ipv6",
        "server-poll-timeout",
        "service",
        "session-timeout",
        "setcon",
        "setenv",
        "setenv-safe",
        "shaper",
        "show-adapters",
        "show-ciphers",
        "show-curves",
        "show-digests",
        "show-engines",
        "show-gateway",
        "show-groups",
        "show-net",
        "show-net-up",
        "show-pkcs11-ids",
        "show-tls",
        "show-valid-subnets",
        "single-session",
        "sndbuf",
        "socket-flags",
        "socks-proxy",
        "socks-proxy-retry",
        "stale-routes-check",
        "static-challenge",
        "status",
        "status-version",
        "suppress-timestamps",
        "syslog",
        "tap-sleep",
        "tcp-nodelay",
        "tcp-queue-limit",
        "test-crypto",
        "tls-auth",
        "tls-cert-profile",
        "tls-cipher",
        "tls-ciphersuites",
        "tls-client",
        "tls-crypt",
        "tls-crypt-v2",
        "tls-crypt-v2-max-age",
        "tls-crypt-v2-verify",
        "tls-exit",
        "tls-export-cert",
        "tls-groups",
        "tls-server",
        "tls-timeout",
        "tls-verify",
        "tls-version-max",
        "tls-version-min",
        "tmp-dir",
        "topology",
        "tran-window",
        "tun-ipv6",
        "tun-mtu",
        "tun-mtu-extra",
        "tun-mtu-max",
        "txqueuelen",
        "udp-mtu",
        "up",
        "up-delay",
        "up-restart",
        "user",
        "username-as-common-name",
        "verb",
        "verify-client-cert",
        "verify-hash",
        "verify-x509-name",
        "version",
        "vlan-accept",
        "vlan-pvid",
        "vlan-tagging",
        "win-sys",
        "windows-driver",
        "writepid",
        "x509-track",
        "x509-username-field",
    ];

    #[test]
    fn every_openvpn_option_is_classified() {
        let unknown: Vec<&str> = OPENVPN_OPTIONS
            .iter()
            .copied()
            .filter(|n| {
                classify(n).is_none()
                    && !crate::build::is_typed(n)
                    && !matches!(*n, "setenv" | "connection")
            })
            .collect();
        assert!(unknown.is_empty(), "unclassified: {unknown:?}");
    }

    #[test]
    fn refused_in_any_case() {
        assert!(refused("UP").is_some() && refused("Management-Hold").is_some());
        assert!(refused_with_args("script-security", &["2".into()]).is_some());
        assert!(refused_with_args("script-security", &["1".into()]).is_none());
        assert!(refused_with_args("askpass", &[]).is_none());
    }
}
