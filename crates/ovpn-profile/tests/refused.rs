//! Every refused directive is refused with its line, however it is hidden, is never
//! written back, and makes `check_untrusted` reject the text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::*;
use ovpn_profile::*;

/// Directives that run a program or touch a path as root, with a valid argument list.
const REFUSED: &[&str] = &[
    "up /etc/openvpn/update-resolv-conf",
    "down /etc/openvpn/update-resolv-conf",
    "route-up /bin/sh",
    "route-pre-down /bin/sh",
    "ipchange /bin/sh",
    "tls-verify /bin/true",
    "learn-address /bin/sh",
    "auth-user-pass-verify /bin/true via-env",
    "client-connect /bin/sh",
    "client-disconnect /bin/sh",
    "script-security 2",
    "script-security 3",
    "plugin /usr/lib/openvpn/plugins/openvpn-plugin-down-root.so down.sh",
    "management 127.0.0.1 7505",
    "management-query-passwords",
    "management-hold",
    "log /var/log/openvpn.log",
    "log-append /var/log/openvpn.log",
    "status /tmp/status.log 10",
    "writepid /run/openvpn.pid",
    "cd /etc/openvpn",
    "chroot /var/empty",
    "daemon",
    "config other.conf",
    "tmp-dir /tmp",
    "iproute /sbin/ip",
    "dev-node /dev/net/tun",
    "replay-persist /tmp/replay",
    "tls-export-cert /tmp",
    "dns-updown /bin/sh",
    "tls-crypt-v2-verify /bin/true",
    "dh dh2048.pem",
    "dhcp-renew",
    "dhcp-release",
    "register-dns",
    "client-config-dir /etc/openvpn/ccd",
    "ifconfig-pool-persist ipp.txt",
    "setcon user_u:role_r:type_t",
    "capath /etc/ssl/certs",
];

fn name(d: &str) -> &str {
    d.split_whitespace().next().unwrap()
}

fn assert_refused(text: &str, line: u32, directive: &str, case: &str) {
    let p = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
    let hit = p
        .report
        .with_severity(Severity::Refused)
        .find(|f| f.line == Some(line) && f.directive.eq_ignore_ascii_case(directive));
    assert!(
        hit.is_some(),
        "{case}: no refusal of {directive} at line {line}:\n{}",
        p.report.to_text()
    );
    assert!(
        p.report.usable,
        "{case}: refusing {directive} alone must not make the profile unusable"
    );
    let out = p.profile.to_ovpn_text();
    assert!(
        !out.lines().any(|l| l
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(directive))),
        "{case}: {directive} was written back"
    );
    match check_untrusted(text.as_bytes()) {
        Err(UntrustedError::Refused { line: l, .. }) => assert_eq!(l, line, "{case}"),
        other => panic!("{case}: check_untrusted gave {other:?}"),
    }
    assert!(
        check_untrusted(out.as_bytes()).is_ok(),
        "{case}: the cleaned profile must pass"
    );
}

#[test]
fn plain_dashed_quoted_and_odd_case() {
    for d in REFUSED {
        let n = name(d);
        let rest = d[n.len()..].to_string();
        assert_refused(&profile_with(d), EXTRA_LINE, n, "plain");
        assert_refused(&profile_with(&format!("--{d}")), EXTRA_LINE, n, "dashes");
        assert_refused(
            &profile_with(&format!("\"{n}\"{rest}")),
            EXTRA_LINE,
            n,
            "quoted",
        );
        assert_refused(
            &profile_with(&format!("'--{n}'{rest}")),
            EXTRA_LINE,
            n,
            "single-quoted with dashes",
        );
        assert_refused(
            &profile_with(&d.to_ascii_uppercase()),
            EXTRA_LINE,
            n,
            "upper case",
        );
        assert_refused(
            &profile_with(&format!("  \t{d} # trailing")),
            EXTRA_LINE,
            n,
            "indented with comment",
        );
        assert_refused(
            &profile_with(&format!("setenv opt {d}")),
            EXTRA_LINE,
            n,
            "behind setenv opt",
        );
    }
}

#[test]
fn hidden_in_connection_block() {
    for d in REFUSED {
        let n = name(d);
        let text = profile_with(&format!(
            "<connection>\nremote a.example 1194\n  {d}\n</connection>"
        ));
        assert_refused(&text, EXTRA_LINE + 2, n, "connection block");
    }
}

#[test]
fn crlf_and_bom_do_not_hide_refusals() {
    let text = format!(
        "\u{feff}up /x\r\n{}",
        profile_with("").replace('\n', "\r\n")
    );
    assert_refused(&text, 1, "up", "bom+crlf");
}

#[test]
fn dns_hooks_get_a_dns_message() {
    let p = parse(profile_with("up /etc/openvpn/update-resolv-conf").as_bytes()).unwrap();
    let f = p.report.with_severity(Severity::Refused).next().unwrap();
    assert!(
        f.message.contains("OxiVPN sets DNS itself"),
        "{}",
        f.message
    );
}

#[test]
fn harmless_script_security_is_not_refused() {
    let p = parse(profile_with("script-security 1").as_bytes()).unwrap();
    assert_eq!(p.report.refused_count(), 0);
}

#[test]
fn crl_directory_makes_the_profile_unusable_with_the_way_out() {
    let text = profile_with("crl-verify /etc/openvpn/crls dir");
    // Refused like the directives above (never written back, refused by the helper)...
    let p = parse(text.as_bytes()).unwrap();
    assert!(
        p.report
            .with_severity(Severity::Refused)
            .any(|f| f.line == Some(EXTRA_LINE) && f.directive == "crl-verify"),
        "{}",
        p.report.to_text()
    );
    assert!(!p.profile.to_ovpn_text().contains("crl-verify"));
    assert!(matches!(
        check_untrusted(text.as_bytes()),
        Err(UntrustedError::Refused {
            line: EXTRA_LINE,
            ..
        })
    ));
    // ...but, unlike them, it makes the profile unusable: connecting without the
    // revocation list would accept servers its author revoked.
    let (_, report) = import(text.as_bytes());
    assert!(!report.usable, "{}", report.to_text());
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("crl-verify")
            && reason.contains("directory")
            && reason.contains("<crl-verify>"),
        "{reason}"
    );
    // The same CRL as a file or inline block is fine.
    let (_, report) = import(profile_with("crl-verify crl.pem").as_bytes());
    assert!(report.usable, "{}", report.to_text());
}

#[test]
fn askpass_with_a_file_is_a_file_need_not_a_refusal() {
    let (_, report) = import(profile_with("askpass pass.txt").as_bytes());
    assert!(report.usable, "{}", report.to_text());
    assert_eq!(report.refused_count(), 0, "{}", report.to_text());
    let need = report
        .needs_files
        .iter()
        .find(|n| n.kind == FileKind::Askpass)
        .expect("askpass names a file");
    assert_eq!(need.path, "pass.txt");
    assert!(need.kind.is_credentials());
    let (_, report) = import(profile_with("askpass").as_bytes());
    assert!(
        report.usable
            && report
                .needs_files
                .iter()
                .all(|n| n.kind != FileKind::Askpass)
    );
}
