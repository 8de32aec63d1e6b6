//! Grammar hazards at the profile level, each with the exact expected result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::*;
use ovpn_profile::*;

fn parse_ok(text: &str) -> Parsed {
    parse(text.as_bytes()).unwrap()
}

fn hosts(p: &Profile) -> Vec<(String, Option<u16>, Option<Proto>)> {
    p.remotes
        .iter()
        .map(|r| (r.host.clone(), r.port, r.proto))
        .collect()
}

#[test]
fn baseline_profile_is_usable() {
    let p = parse_ok(&profile_with(""));
    assert!(p.report.usable, "{}", p.report.to_text());
    assert!(p.report.needs_files.is_empty());
    assert_eq!(p.profile.key_direction, Some(KeyDirection::Inverse));
    assert!(check_untrusted(profile_with("").as_bytes()).is_ok());
}

#[test]
fn double_dash_prefix_and_trailing_comments() {
    let p = parse_ok(&profile_with(
        "--remote a.example 443 tcp # old server\n--proto tcp ; comment",
    ));
    assert_eq!(
        hosts(&p.profile)[0],
        ("a.example".to_string(), Some(443), Some(Proto::Tcp))
    );
    assert_eq!(p.profile.conn.proto, Some(Proto::Tcp));
}

#[test]
fn crlf_bom_blank_and_whitespace_lines() {
    let text = format!(
        "\u{feff}{}",
        profile_with("\n   \t\n; c\n# c").replace('\n', "\r\n")
    );
    let p = parse_ok(&text);
    assert!(p.report.usable, "{}", p.report.to_text());
    assert!(p.profile.client);
    // CRs are not part of inline material.
    assert!(!p
        .profile
        .ca
        .as_ref()
        .unwrap()
        .inline()
        .unwrap()
        .contains('\r'));
}

#[test]
fn quotes_in_values() {
    let p = parse_ok(&profile_with(
        "verify-x509-name \"C=DE, O=Example, CN=vpn server\" subject\npull-filter ignore 'route-ipv6 '\nremote-cert-eku \"TLS Web Server Authentication\"",
    ));
    let v = p.profile.verify_x509_name.as_ref().unwrap();
    assert_eq!(
        (v.name.as_str(), v.kind),
        ("C=DE, O=Example, CN=vpn server", X509NameKind::Subject)
    );
    assert_eq!(p.profile.pull_filters[0].text, "route-ipv6 ");
    assert_eq!(
        p.profile.remote_cert_eku.as_deref(),
        Some("TLS Web Server Authentication")
    );
}

#[test]
fn backslash_escape_and_bad_backslash() {
    let p = parse_ok(&profile_with(r"auth-user-pass my\ creds.txt"));
    assert_eq!(p.report.needs_files[0].path, "my creds.txt");
    let e = parse(profile_with(r"auth-user-pass C:\creds.txt").as_bytes()).unwrap_err();
    assert_eq!(e.line, EXTRA_LINE);
    assert_eq!(e.kind, ParseErrorKind::Syntax(LexError::BadBackslash));
}

#[test]
fn unclosed_quote_is_a_line_numbered_error() {
    let e = parse(profile_with("setenv X \"abc").as_bytes()).unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (
            EXTRA_LINE,
            ParseErrorKind::Syntax(LexError::UnclosedDoubleQuote)
        )
    );
}

#[test]
fn accumulate_and_last_wins() {
    let p = parse_ok(&profile_with(
        "remote b.example 1195\nremote c.example\nroute 10.0.0.0 255.0.0.0\nroute 192.168.0.0 255.255.0.0 net_gateway 5\npull-filter ignore redirect-gateway\npull-filter accept route\ncipher AES-128-GCM\ncipher aes-256-gcm\nproto tcp\nproto udp\ndhcp-option DNS 1.1.1.1\ndhcp-option DOMAIN example",
    ));
    let pr = &p.profile;
    assert_eq!(
        hosts(pr),
        vec![
            ("b.example".into(), Some(1195), None),
            ("c.example".into(), None, None),
            ("vpn.example.com".into(), Some(1194), Some(Proto::Udp)),
        ]
    );
    assert_eq!(pr.routes.len(), 2);
    assert_eq!(
        pr.routes[1],
        Route {
            network: "192.168.0.0".into(),
            netmask: Some("255.255.0.0".into()),
            gateway: Some("net_gateway".into()),
            metric: Some(5)
        }
    );
    assert_eq!(
        pr.pull_filters.iter().map(|f| f.action).collect::<Vec<_>>(),
        vec![PullFilterAction::Ignore, PullFilterAction::Accept]
    );
    assert_eq!(pr.cipher.as_deref(), Some("AES-256-GCM"));
    assert_eq!(pr.conn.proto, Some(Proto::Udp));
    assert_eq!(pr.dhcp_options.len(), 2);
    let eps = pr.endpoints();
    assert_eq!(
        (eps[1].host.as_str(), eps[1].port, eps[1].proto),
        ("c.example", 1194, Proto::Udp)
    );
}

#[test]
fn connection_blocks_inherit_and_replace_top_level_remotes() {
    let p = parse_ok(&profile_with(
        "proto tcp\n<connection>\n  remote one.example 443\n  connect-retry-max 3\n</connection>\n<connection>\nremote two.example 1194 udp\nnobind\n</connection>",
    ));
    let c = &p.profile.connections;
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].remote.host, "one.example");
    assert_eq!(
        c[0].options.proto,
        Some(Proto::Tcp),
        "inherits options set before the block"
    );
    assert_eq!(c[0].options.connect_retry_max, Some(3));
    assert!(c[1].options.nobind && !c[0].options.nobind);
    assert!(
        p.profile.remotes.is_empty(),
        "top-level remotes are ignored when blocks exist"
    );
    let eps = p.profile.endpoints();
    assert_eq!((eps[0].port, eps[0].proto), (443, Proto::Tcp));
    assert_eq!((eps[1].port, eps[1].proto), (1194, Proto::Udp));
}

#[test]
fn connection_block_without_remote_and_disallowed_option() {
    let p = parse_ok(&profile_with("<connection>\nnobind\n</connection>"));
    assert!(!p.report.usable);
    let p = parse_ok(&profile_with(
        "<connection>\nremote x.example\ncipher AES-256-GCM\n</connection>",
    ));
    let f = p.report.with_severity(Severity::Error).next().unwrap();
    assert_eq!(
        (f.line, f.directive.as_str()),
        (Some(EXTRA_LINE + 2), "cipher")
    );
}

#[test]
fn setenv_opt_and_ignore_unknown_option() {
    let p = parse_ok(&profile_with(
        "setenv opt block-outside-dns\nsetenv opt frobnicate 3\nignore-unknown-option wibble\nwibble 1\nsetenv IV_GUI_VER \"OxiVPN 1.0\"",
    ));
    assert!(p.profile.block_outside_dns);
    assert_eq!(
        p.profile.setenv,
        vec![("IV_GUI_VER".to_string(), "OxiVPN 1.0".to_string())]
    );
    let ignored: Vec<_> = p
        .report
        .with_severity(Severity::Ignored)
        .map(|f| (f.line, f.directive.as_str()))
        .collect();
    assert!(ignored.contains(&(Some(EXTRA_LINE + 1), "frobnicate")));
    assert!(ignored.contains(&(Some(EXTRA_LINE + 3), "wibble")));
    assert!(p.report.usable);
}

#[test]
fn key_direction_after_inline_tls_auth_and_direction_on_line() {
    let p = parse_ok(&profile_with(""));
    assert!(p.profile.tls_auth.as_ref().unwrap().direction.is_none());
    let p = parse_ok(&profile_with("tls-auth ta.key 1"));
    // The later inline <tls-auth> wins over the file reference; no file is needed.
    assert!(p.report.needs_files.is_empty());
    assert!(matches!(
        p.profile.tls_auth.as_ref().unwrap().key,
        Material::Inline(_)
    ));
}

#[test]
fn file_references_are_needs_file_items() {
    let text = "client\ndev tun\nremote a.example\nca ca.crt\ncert c.crt\nkey c.key\ntls-auth ta.key 1\nauth-user-pass creds.txt\npkcs12 x.p12\n";
    let p = parse_ok(text);
    let needs: Vec<_> = p
        .report
        .needs_files
        .iter()
        .map(|n| (n.line, n.kind, n.path.as_str()))
        .collect();
    assert_eq!(
        needs,
        vec![
            (Some(4), FileKind::Ca, "ca.crt"),
            (Some(5), FileKind::Cert, "c.crt"),
            (Some(6), FileKind::Key, "c.key"),
            (Some(7), FileKind::TlsAuth, "ta.key"),
            (Some(8), FileKind::AuthUserPass, "creds.txt"),
            (Some(9), FileKind::Pkcs12, "x.p12"),
        ]
    );
    assert!(
        p.report.usable,
        "missing files do not make a profile unusable"
    );
    assert_eq!(
        p.profile.tls_auth.as_ref().unwrap().direction,
        Some(KeyDirection::Inverse)
    );
    assert!(matches!(
        check_untrusted(text.as_bytes()),
        Err(UntrustedError::FileReference { line: 4, .. })
    ));
}

#[test]
fn tls_lists_map_to_rustls() {
    let p = parse_ok(&profile_with(
        "tls-cipher TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384:TLS-DHE-RSA-WITH-AES-256-CBC-SHA\ntls-groups X25519:ffdhe2048",
    ));
    assert_eq!(
        p.profile.tls_cipher,
        Some(vec![TlsSuite::EcdheRsaAes256GcmSha384])
    );
    assert_eq!(
        p.profile.tls_groups.as_ref().unwrap()[0].rustls_name(),
        "X25519"
    );
    let p = parse_ok(&profile_with(
        "tls-cipher TLS-DHE-RSA-WITH-AES-256-CBC-SHA:DHE-RSA-AES256-SHA",
    ));
    assert_eq!(p.profile.tls_cipher, None);
    assert!(
        p.report.usable,
        "a list of only unsupported suites is a warning"
    );
    assert_eq!(
        p.report
            .with_severity(Severity::Unsupported)
            .next()
            .unwrap()
            .line,
        Some(EXTRA_LINE)
    );
}

#[test]
fn material_errors_are_line_numbered_and_fatal() {
    for (extra, line) in [
        ("<extra-certs>\n$CA$\n</extra-certs>", EXTRA_LINE),
        ("<crl-verify>\n{{crl}}\n</crl-verify>", EXTRA_LINE),
        ("<pkcs12>\nnot base64 at all!\n</pkcs12>", EXTRA_LINE),
        ("<tls-crypt>\n</tls-crypt>", EXTRA_LINE),
        ("<tls-crypt-v2>\n-----BEGIN OpenVPN tls-crypt-v2 client key-----\nAAAA\n</tls-crypt-v2>", EXTRA_LINE),
    ] {
        let p = parse_ok(&profile_with(extra));
        let f = p.report.with_severity(Severity::Error).next().unwrap_or_else(|| panic!("{extra}"));
        assert_eq!(f.line, Some(line), "{extra}");
        assert!(!p.report.usable, "{extra}");
    }
    let half: Vec<&str> = CA.lines().take(4).collect();
    let truncated = format!("<ca>\n{}\n</ca>", half.join("\n"));
    let p = parse_ok(&profile_with(&truncated));
    assert!(
        p.report.reason.as_deref().unwrap().contains("truncated"),
        "{:?}",
        p.report.reason
    );
}

#[test]
fn key_block_holding_a_certificate() {
    let p = parse_ok(&profile_with(&format!("<key>\n{CA}</key>")));
    assert!(p.report.reason.unwrap().contains("not a private key"));
}

#[test]
fn verdicts_for_missing_essentials() {
    let no_remote = profile_with("").replace("remote vpn.example.com 1194 udp\n", "");
    assert!(parse_ok(&no_remote)
        .report
        .reason
        .unwrap()
        .contains("no remote"));
    let no_ca = profile_with("").replace(&format!("<ca>\n{CA}</ca>\n"), "");
    assert!(parse_ok(&no_ca).report.reason.unwrap().contains("no CA"));
    let fp = format!("peer-fingerprint {}", vec!["AB"; 32].join(":"));
    assert!(parse_ok(&format!("{}{fp}\n", no_ca)).report.usable);
    let no_auth = profile_with("")
        .replace(&format!("<cert>\n{CA}</cert>\n"), "")
        .replace(&format!("<key>\n{KEY}</key>\n"), "");
    let p = parse_ok(&no_auth);
    assert!(p.report.usable);
    assert_eq!(p.report.needs_files[0].kind, FileKind::ClientCertAndKey);
    let server = "server 10.8.0.0 255.255.255.0\nport 1194\ndev tun\nca ca.crt\n";
    assert!(parse_ok(server)
        .report
        .reason
        .unwrap()
        .contains("server configuration"));
    let tap = profile_with("").replace("dev tun", "dev tap");
    assert!(!parse_ok(&tap).report.usable);
}

#[test]
fn placeholders_in_remote() {
    for (extra, needle) in [
        ("remote <ip> <port>", "<ip>"),
        ("remote IP PORT", "PORT"),
        ("remote ${SERVER} 1194", "${SERVER}"),
    ] {
        let text = profile_with("").replace("remote vpn.example.com 1194 udp", extra);
        let p = parse_ok(&text);
        assert!(!p.report.usable);
        assert!(
            p.report.reason.as_deref().unwrap().contains(needle),
            "{:?}",
            p.report.reason
        );
    }
}

#[test]
fn limits_give_line_numbered_errors() {
    let big = format!("client\n{}", "#".repeat(limits::MAX_PROFILE_BYTES));
    assert!(matches!(
        parse(big.as_bytes()).unwrap_err().kind,
        ParseErrorKind::TooLarge { .. }
    ));
    let long = profile_with(&format!("setenv X {}", "a".repeat(limits::MAX_LINE_BYTES)));
    assert_eq!(parse(long.as_bytes()).unwrap_err().line, EXTRA_LINE);
    let block = profile_with(&format!(
        "<extra-certs>\n{}</extra-certs>",
        format!("{}\n", "A".repeat(64)).repeat(limits::MAX_BLOCK_BYTES / 65 + 1)
    ));
    let e = parse(block.as_bytes()).unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::BlockTooLarge { .. }));
    let many = "nobind\n".repeat(limits::MAX_DIRECTIVES + 1);
    assert_eq!(
        parse(many.as_bytes()).unwrap_err().line,
        u32::try_from(limits::MAX_DIRECTIVES + 1).unwrap()
    );
    let unterminated = profile_with("<cert>\nabc");
    let e = parse(unterminated.as_bytes()).unwrap_err();
    assert_eq!(e.line, EXTRA_LINE);
    let nested = profile_with("<connection>\nremote a\n<connection>\n</connection>\n</connection>");
    assert_eq!(
        parse(nested.as_bytes()).unwrap_err().kind,
        ParseErrorKind::NestedConnection
    );
    let nul = profile_with("verb 3\0");
    assert_eq!(
        parse(nul.as_bytes()).unwrap_err(),
        ParseError {
            line: EXTRA_LINE,
            kind: ParseErrorKind::NulByte
        }
    );
    let binary: Vec<u8> = (0u8..=255).cycle().take(4096).collect();
    assert!(parse(&binary).is_err());
}

#[test]
fn report_serialises_to_json() {
    let p = parse_ok(&profile_with("up /etc/openvpn/update-resolv-conf"));
    let v: serde_json::Value = serde_json::to_value(&p.report).unwrap();
    assert_eq!(v["usable"], true);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "refused")
        .unwrap();
    assert_eq!(f["line"], EXTRA_LINE);
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("OxiVPN sets DNS itself"));
}
