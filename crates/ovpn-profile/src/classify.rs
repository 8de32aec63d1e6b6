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
        "askpass" => "reads a passphrase file; OxiVPN asks for the passphrase instead",
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
    if name.eq_ignore_ascii_case("askpass") && args.is_empty() {
        // Bare `askpass`: ask on the console, which OxiVPN's prompt replaces.
        return None;
    }
    if name.eq_ignore_ascii_case("crl-verify")
        && args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("dir"))
    {
        return Some(PATH_ROOT);
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
        "persist-tun" | "persist-key" | "persist-local-ip" | "persist-remote-ip" | "ping-timer-rem" | "resolv-retry"
        | "user" | "group" | "mlock" | "nice" | "fast-io" | "sndbuf" | "rcvbuf" | "txqueuelen" | "up-delay"
        | "up-restart" | "down-pre" | "tap-sleep" | "ip-win32" | "route-method" | "askpass" | "show-net-up" | "allow-recursive-routing" | "prng" | "engine"
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
        "auth-token" | "auth-token-user" => Ignored("only meaningful when pushed by the server"),
        "http-proxy-option" => Ignored("custom proxy headers are not sent by OxiVPN"),
        "tls-remote" => Unsupported {
            reason: "was removed in OpenVPN 2.4 (use verify-x509-name); the server name is not checked beyond the CA",
            fatal: false,
        },
        "block-ipv6" | "dhcp-option-off" => Unsupported { reason: "is not applied by OxiVPN yet", fatal: false },
        "fragment" => Unsupported {
            reason: "OxiVPN cannot fragment packets; the server expects it, so the tunnel would break",
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
        | "show-engines" | "mktun" | "rmtun" | "version" | "help" => {
            Unsupported { reason: "is an OpenVPN command, not a connection setting", fatal: true }
        }
        _ => return None,
    };
    Some(c)
}
