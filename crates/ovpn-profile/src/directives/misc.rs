//! Mode of operation and the options about scripts and unknown options.

use crate::build::*;
use crate::reader::RawDirective;
use crate::report::Severity;

use super::*;

impl Builder {
    pub(super) fn on_client(&mut self, d: &RawDirective) {
        self.p.client = true;
        self.p.pull = true;
        self.p.tls_client = true;
        self.honour(d, "client mode (takes settings pushed by the server)");
    }

    pub(super) fn on_pull(&mut self, d: &RawDirective) {
        self.p.pull = true;
        self.honour(d, "takes settings pushed by the server");
    }

    pub(super) fn on_tls_client(&mut self, d: &RawDirective) {
        self.p.tls_client = true;
        self.honour(d, "TLS client");
    }

    pub(super) fn on_mode(&mut self, d: &RawDirective) {
        let a = &d.args;
        if a.first().map(String::as_str) == Some("server") {
            self.strong_server
                .get_or_insert((d.line, "mode server".into()));
            self.push(d.line, "mode", Severity::Ignored, "is a server option");
        } else {
            self.push(
                d.line,
                "mode",
                Severity::Ignored,
                "point-to-point mode is the client default",
            );
        }
    }

    pub(super) fn on_server(&mut self, d: &RawDirective) {
        self.strong_server.get_or_insert((d.line, d.name.clone()));
        self.push(d.line, &d.name, Severity::Ignored, "is a server option");
    }

    pub(super) fn on_ignore_unknown_option(&mut self, d: &RawDirective) {
        let a = &d.args;
        self.ignore_unknown.extend(a.iter().cloned());
        self.push(
            d.line,
            &d.name,
            Severity::Info,
            "unknown options listed here are ignored",
        );
    }
}

const LOGGING: &str = "only changes OpenVPN's logging; OxiVPN has its own log";
const NO_EFFECT: &str =
    "has no effect for OxiVPN (the helper manages the device, privileges and sockets itself)";
const LEGACY_MTU: &str = "legacy MTU setting; OxiVPN sizes packets from tun-mtu and mssfix";
const SERVER: &str = "is a server option; it has no effect in a client";
const CMD: &str = "is an OpenVPN command, not a connection setting";

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(&["client"], HONOURED, "client mode (takes settings pushed by the server)", Builder::on_client),
    Directive::top(&["pull"], HONOURED, "takes settings pushed by the server", Builder::on_pull),
    Directive::top(&["tls-client"], HONOURED, "TLS client", Builder::on_tls_client),
    Directive::top(&["mode"], IGNORED, "point-to-point mode is the client default; mode server is a server option", Builder::on_mode).server(),
    Directive::top(&["server", "server-bridge", "server-ipv6", "tls-server"], IGNORED, "is a server option", Builder::on_server).server(),
    Directive::top(&["ignore-unknown-option"], HONOURED, "unknown options listed here are reported as ignored", Builder::on_ignore_unknown_option),
    Directive::class(&["script-security"], IGNORED, "OxiVPN never runs scripts")
        .guard(Guard::ScriptSecurity)
        .refuse_if(|a| a.first().and_then(|s| s.parse::<u32>().ok()).unwrap_or(1) > 1, "allows scripts to run", false),
    // Ignored: no effect for a client run by OxiVPN.
    Directive::class(&["verb", "mute", "mute-replay-warnings", "echo", "suppress-timestamps", "machine-readable-output", "errors-to-stderr", "status-version"], IGNORED, LOGGING),
    Directive::class(&["syslog"], IGNORED, LOGGING).guard(Guard::UsesFile),
    Directive::class(&["persist-tun", "persist-key", "persist-local-ip", "persist-remote-ip", "ping-timer-rem", "mlock", "nice", "fast-io", "sndbuf", "rcvbuf", "txqueuelen", "up-delay", "up-restart", "down-pre", "tap-sleep", "ip-win32", "route-method", "show-net-up", "allow-recursive-routing", "prng", "engine", "single-session", "tls-exit", "shaper", "passtos", "mark", "bind-dev", "route-noexec", "ifconfig-noexec", "allow-pull-fqdn", "writepid-off", "script-security-off", "use-prediction-resistance", "providers", "disable-dco", "ecdh-curve", "max-routes", "win-sys-off", "route-gateway", "route-ipv6-gateway", "tran-window", "opt-verify", "compat-mode", "http-proxy-override", "proto-force", "multihome", "x509-track", "pull-filter-off"], IGNORED, NO_EFFECT),
    Directive::class(&["user", "group"], IGNORED, NO_EFFECT).guard(Guard::UsesFile),
    Directive::class(&["lport", "bind", "local"], IGNORED, NO_EFFECT).in_connection(),
    // OpenVPN 2.4 removed these: a proxy that fails is retried like any server.
    Directive::class(&["http-proxy-retry", "socks-proxy-retry"], IGNORED, "removed in OpenVPN 2.4; a failed proxy connection is retried like any server (connect-retry, connect-retry-max)").in_connection(),
    Directive::class(&["http-proxy-timeout"], IGNORED, "removed in OpenVPN 2.4; connect-timeout (server-poll-timeout) takes its place").in_connection(),
    Directive::class(&["link-mtu", "tun-mtu-extra", "mtu-disc"], IGNORED, LEGACY_MTU).in_connection(),
    Directive::class(&["mtu-test"], IGNORED, LEGACY_MTU),
    Directive::class(&["keysize", "key-method", "ncp-disable", "no-iv", "tun-ipv6", "comp-noadapt", "disable-occ", "ifconfig-ipv6", "ifconfig", "topology", "replay-window", "no-replay", "keying-material-exporter", "remote-random-hostname"], IGNORED, "obsolete or set by the server when it pushes its settings"),
    Directive::class(&["auth-token", "auth-token-user", "peer-id", "protocol-flags", "key-derivation", "push-continuation", "ifconfig-ipv6-pull"], IGNORED, "only meaningful when pushed by the server"),
    Directive::class(&["compat-names", "no-name-remapping", "mtu-dynamic", "gremlin", "max-packet-size", "msg-channel", "parameter", "pause-exit", "remap-usr1", "socket-flags", "tcp-nodelay", "udp-mtu", "tun-mtu-max", "windows-driver", "dhcp-internal", "rdns-internal", "ip-remote-hint", "ifconfig-nowarn", "allow-nonadmin", "preresolve", "route-table", "session-timeout", "allow-deprecated-insecure-static-crypto"], IGNORED, "has no effect for OxiVPN (tuning, platform or debugging option of OpenVPN itself)"),
    // Server options: no effect in a client, and a sign the file is a server's.
    Directive::class(&["client-to-client", "duplicate-cn", "ifconfig-pool", "ifconfig-ipv6-pool", "ifconfig-push", "ifconfig-ipv6-push", "push", "push-reset", "push-remove", "ccd-exclusive", "client-cert-not-required", "verify-client-cert", "username-as-common-name", "auth-gen-token", "max-clients", "max-routes-per-client", "stale-routes-check", "hash-size", "bcast-buffers", "tcp-queue-limit", "port-share", "iroute", "iroute-ipv6", "auth-user-pass-optional", "x509-username-field", "connect-freq", "vlan-tagging", "vlan-accept", "vlan-pvid", "topology-subnet", "disable", "client-nat", "connect-freq-initial", "ifconfig-push-constraint", "override-username", "force-tls-key-material-export", "tls-crypt-v2-max-age"], IGNORED, SERVER).server(),
    Directive::class(&["dh"], IGNORED, SERVER)
        .server()
        .guard(Guard::Inline(InlineRule::FileArg))
        .refuse_if(|a| !a.is_empty(), "names a Diffie-Hellman file, which only servers use; the root helper never opens profile paths", false),
    // Unsupported.
    Directive::class(&["client-crresponse"], UNSUPPORTED, "a fixed challenge-response answer is not supported; OxiVPN asks when the server challenges"),
    Directive::class(&["tls-remote"], UNSUPPORTED, "was removed in OpenVPN 2.4 (use verify-x509-name); the server name is not checked beyond the CA"),
    Directive::class(&["block-ipv6", "dhcp-option-off"], UNSUPPORTED, "is not applied by OxiVPN yet"),
    Directive::class(&["fragment"], UNUSABLE, "splits packets inside OpenVPN, which OxiVPN does not do; the server uses it too, so the tunnel would not work. Ask the provider for a profile without fragment (mssfix keeps TCP packets small enough)").in_connection(),
    Directive::class(&["lladdr"], UNUSABLE, "only tun devices are supported"),
    Directive::class(&["cryptoapicert"], UNUSABLE, "the Windows certificate store is not supported"),
    Directive::class(&["pkcs11-providers", "pkcs11-id", "pkcs11-id-management", "pkcs11-pin-cache", "pkcs11-protected-authentication", "pkcs11-private-mode", "pkcs11-cert-private", "pkcs11-pin-cache-per-session"], UNUSABLE, "smart cards and tokens (PKCS#11) are not supported"),
    Directive::class(&["genkey", "test-crypto", "show-ciphers", "show-digests", "show-tls", "show-groups", "show-curves", "show-engines", "mktun", "rmtun", "version", "help", "show-adapters", "show-gateway", "show-net", "show-pkcs11-ids", "show-valid-subnets"], UNUSABLE, CMD),
];
