//! The registry's own invariants; the corpus and report checks are in tests/registry.rs.

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
fn every_openvpn_option_has_an_entry() {
    let missing: Vec<&str> = OPENVPN_OPTIONS
        .iter()
        .copied()
        .filter(|n| lookup(n).is_none())
        .collect();
    assert!(missing.is_empty(), "not in the registry: {missing:?}");
}

#[test]
fn no_two_entries_share_a_name() {
    let mut seen = std::collections::HashMap::new();
    for d in all() {
        assert!(!d.names.is_empty() && !d.reason.is_empty(), "{d:?}");
        for n in d.names {
            assert_eq!(*n, n.to_ascii_lowercase(), "names are lower case: {n}");
            if let Some(other) = seen.insert(*n, d.names) {
                panic!("{n} is in two entries: {other:?} and {:?}", d.names);
            }
        }
    }
    assert_eq!(seen.len(), index().len());
}

#[test]
fn connection_entries_have_connection_handlers() {
    for d in all() {
        match d.handler {
            Handler::Conn(_) => assert!(d.in_connection, "{d:?}"),
            Handler::Top(_) if d.in_connection => assert_eq!(d.names, ["remote"]),
            _ => {}
        }
    }
}

#[test]
fn refused_in_any_spelling_and_by_arguments() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(refusal("UP", &[]).is_some() && refusal("Management-Hold", &[]).is_some());
    assert!(refusal("management-anything", &[]).is_some());
    assert!(refusal("script-security", &args(&["2"])).is_some());
    assert!(refusal("script-security", &args(&["1"])).is_none());
    assert!(refusal("askpass", &[]).is_none());
    assert!(refusal("crl-verify", &args(&["x", "DIR"])).is_some_and(|r| r.fatal));
    assert!(refusal("dh", &args(&["dh.pem"])).is_some() && refusal("dh", &[]).is_none());
}

#[test]
fn the_guard_is_at_least_as_strict_for_programs() {
    // Every directive the guard refuses outright as running code is refused by the parse too.
    for d in all().filter(|d| d.guard == Guard::RunsCode) {
        assert_eq!(d.class, Class::Refused, "{d:?}");
    }
}

/// Counts for the notes: `cargo test -p ovpn-profile --lib registry_counts -- --nocapture`.
#[test]
fn registry_counts() {
    let mut per_class: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for d in all() {
        let e = per_class.entry(format!("{:?}", d.class)).or_default();
        e.0 += 1;
        e.1 += d.names.len();
    }
    let names: usize = all().map(|d| d.names.len()).sum();
    let typed = all().filter(|d| d.is_typed()).count();
    let conn: usize = all()
        .filter(|d| d.in_connection)
        .map(|d| d.names.len())
        .sum();
    println!(
        "entries {} ({typed} with a handler), names {names}, in <connection> {conn}",
        all().count()
    );
    for (c, (e, n)) in &per_class {
        println!("  {c}: {e} entries, {n} names");
    }
    assert_eq!(names, index().len());
}

/// Exactly OpenVPN's OPT_P_CONNECTION options may appear inside `<connection>`.
#[test]
fn connection_options_are_openvpns() {
    let mut want = vec![
        "remote",
        "proto",
        "port",
        "rport",
        "lport",
        "bind",
        "nobind",
        "local",
        "connect-retry",
        "connect-retry-max",
        "connect-timeout",
        "http-proxy",
        "http-proxy-option",
        "http-proxy-retry",
        "http-proxy-timeout",
        "http-proxy-user-pass",
        "socks-proxy",
        "socks-proxy-retry",
        "explicit-exit-notify",
        "tun-mtu",
        "tun-mtu-extra",
        "link-mtu",
        "mssfix",
        "fragment",
        "float",
        "server-poll-timeout",
        "mtu-disc",
    ];
    let mut got: Vec<&str> = all()
        .filter(|d| d.in_connection)
        .flat_map(|d| d.names.iter().copied())
        .collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
}

fn names_with(g: impl Fn(Guard) -> bool) -> Vec<&'static str> {
    let mut v: Vec<&str> = all()
        .filter(|d| g(d.guard))
        .flat_map(|d| d.names.iter().copied())
        .collect();
    v.sort_unstable();
    v
}

/// The helper guard's rules, as its own lists had them before the registry.
#[test]
fn guard_rules_are_the_helpers() {
    let sorted = |mut v: Vec<&'static str>| {
        v.sort_unstable();
        v
    };
    assert_eq!(
        names_with(|g| g == Guard::RunsCode),
        sorted(vec![
            "up",
            "down",
            "route-up",
            "route-pre-down",
            "ipchange",
            "tls-verify",
            "auth-user-pass-verify",
            "client-connect",
            "client-disconnect",
            "learn-address",
            "plugin",
            "iproute",
        ])
    );
    assert_eq!(
        names_with(|g| g == Guard::UsesFile),
        sorted(vec![
            "config",
            "cd",
            "chroot",
            "log",
            "log-append",
            "status",
            "writepid",
            "tmp-dir",
            "management",
            "management-client-auth",
            "management-client-user",
            "management-client-group",
            "management-hold",
            "management-query-passwords",
            "management-external-key",
            "management-external-cert",
            "dev-node",
            "replay-persist",
            "tls-export-cert",
            "askpass",
            "http-proxy-user-pass",
            "daemon",
            "user",
            "group",
            "syslog",
            "ifconfig-pool-persist",
            "client-config-dir",
            "capath",
        ])
    );
    assert_eq!(
        names_with(|g| matches!(g, Guard::Inline(_))),
        sorted(vec![
            "ca",
            "cert",
            "key",
            "extra-certs",
            "pkcs12",
            "tls-auth",
            "tls-crypt",
            "tls-crypt-v2",
            "dh",
            "secret",
            "auth-user-pass",
            "http-proxy",
            "crl-verify",
        ])
    );
    assert_eq!(
        names_with(|g| g == Guard::Inline(InlineRule::NoArgs)),
        ["auth-user-pass"]
    );
    assert_eq!(
        names_with(|g| g == Guard::Inline(InlineRule::HttpProxy)),
        ["http-proxy"]
    );
    assert_eq!(names_with(|g| g == Guard::SocksProxy), ["socks-proxy"]);
    assert_eq!(
        names_with(|g| g == Guard::ScriptSecurity),
        ["script-security"]
    );
}
