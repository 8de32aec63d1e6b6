//! `http-proxy`, `http-proxy-option`, `<http-proxy-user-pass>` and `socks-proxy`: typed
//! fields, report lines, canonical text, and import moving credentials out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use ovpn_profile::*;

/// [`profile_with`]; the remote is TCP when `extra` says `proto tcp...` (an HTTP proxy
/// carries only TCP).
fn profile(extra: &str) -> (Option<Profile>, Report) {
    let mut text = profile_with(extra);
    if extra.contains("proto tcp") {
        text = text.replace(
            "remote vpn.example.com 1194 udp",
            "remote vpn.example.com 443",
        );
    }
    import(text.as_bytes())
}

fn finding<'a>(r: &'a Report, directive: &str) -> &'a Finding {
    r.findings
        .iter()
        .find(|f| f.directive == directive)
        .unwrap_or_else(|| panic!("no finding for {directive}: {:#?}", r.findings))
}

#[test]
fn http_proxy_auth_modes_and_options_are_typed_and_round_trip() {
    let (p, r) = profile(
        "proto tcp-client\nhttp-proxy proxy.example 3128 auto-nct basic\n\
         http-proxy-option VERSION 1.1\nhttp-proxy-option AGENT \"Oxi Agent\"\n\
         http-proxy-option CUSTOM-HEADER X-Test \"a b\"\nhttp-proxy-option CUSTOM-HEADER Connection: keep-alive\n",
    );
    assert!(r.usable, "{}", r.to_text());
    let p = p.unwrap();
    let h = p.conn.http_proxy.as_ref().unwrap();
    assert_eq!((h.host.as_str(), h.port), ("proxy.example", 3128));
    assert_eq!(h.auth, Some(ProxyAuth::Auto { nct: true }));
    let o = &p.conn.http_proxy_options;
    assert_eq!(o.version.as_deref(), Some("1.1"));
    assert_eq!(o.agent.as_deref(), Some("Oxi Agent"));
    assert_eq!(
        o.custom_headers,
        vec![
            ("X-Test".to_string(), "a b".to_string()),
            ("Connection".to_string(), "keep-alive".to_string())
        ]
    );
    let f = finding(&r, "http-proxy");
    assert_eq!(f.severity, Severity::Honoured);
    assert!(f.message.contains("when the proxy asks"), "{}", f.message);
    // The canonical text parses back to the same profile.
    let again = parse(p.to_ovpn_text().as_bytes()).unwrap().profile;
    assert_eq!(again, p, "{}", p.to_ovpn_text());

    // An inline <http-proxy-user-pass> block is the proxy's credentials, before or after.
    for text in [
        "proto tcp\n<http-proxy-user-pass>\nalice\ns3cret\n</http-proxy-user-pass>\nhttp-proxy p.example 8080\n",
        "proto tcp\nhttp-proxy p.example 8080\n<http-proxy-user-pass>\nalice\ns3cret\n</http-proxy-user-pass>\n",
    ] {
        let (p, r) = profile(text);
        assert!(r.usable, "{}", r.to_text());
        let h = p.unwrap().conn.http_proxy.unwrap();
        assert_eq!(
            h.auth,
            Some(ProxyAuth::Credentials(Credential::Inline {
                username: "alice".into(),
                password: Some("s3cret".into())
            }))
        );
    }
}

#[test]
fn http_proxy_refuses_udp_other_auth_methods_and_bad_options() {
    let (_, r) = profile("http-proxy p.example 8080\n");
    assert!(!r.usable);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("http-proxy needs TCP"),
        "{:?}",
        r.reason
    );
    let (_, r) = profile("proto tcp\nhttp-proxy p.example 8080 stdin ntlm\n");
    assert!(!r.usable);
    assert!(finding(&r, "http-proxy").message.contains("only basic"));
    for bad in [
        "http-proxy-option VERSION 2.0",
        "http-proxy-option EXT1 x",
        "http-proxy-option CUSTOM-HEADER \"bad name\" v",
    ] {
        let (_, r) = profile(&format!("proto tcp\nhttp-proxy p.example 8080\n{bad}\n"));
        assert!(!r.usable, "{bad}");
        assert_eq!(
            finding(&r, "http-proxy-option").severity,
            Severity::Error,
            "{bad}"
        );
    }
}

#[test]
fn socks_proxy_auth_file_stdin_and_none() {
    let (p, r) = profile("socks-proxy 10.1.1.1\n");
    assert!(r.usable, "{}", r.to_text());
    let s = p.unwrap().conn.socks_proxy.unwrap();
    assert_eq!((s.port, s.auth), (1080, None));
    assert_eq!(finding(&r, "socks-proxy").severity, Severity::Honoured);

    let (p, _) = profile("socks-proxy 10.1.1.1 1081 stdin\n");
    let p = p.unwrap();
    assert_eq!(
        p.conn.socks_proxy.as_ref().unwrap().auth,
        Some(ProxyAuth::Prompt)
    );
    assert!(p.to_ovpn_text().contains("socks-proxy 10.1.1.1 1081 stdin"));

    let (p, r) = profile("socks-proxy 10.1.1.1 1081 socks-auth.txt\n");
    assert!(r.needs_files.iter().any(|n| n.path == "socks-auth.txt"));
    assert!(p.unwrap().has_file_refs());
}

#[test]
fn import_moves_proxy_credentials_out_and_leaves_a_prompt() {
    let text = profile_with("socks-proxy 10.1.1.1 1081 auth.txt\n");
    let mut reader = |path: &Path, _limit: usize| -> Result<Vec<u8>, ReadFailure> {
        if path.file_name().is_some_and(|n| n == "auth.txt") {
            Ok(b"bob\npw\n".to_vec())
        } else {
            Err(ReadFailure::Io(std::io::ErrorKind::NotFound.into()))
        }
    };
    let r = inline::resolve_bytes(text.as_bytes(), Path::new("/nowhere"), &mut reader);
    assert!(r.report.usable, "{}", r.report.to_text());
    let c = r.proxy_credentials.unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_deref()),
        ("bob", Some("pw"))
    );
    let p = r.profile.unwrap();
    assert_eq!(
        p.conn.socks_proxy.as_ref().unwrap().auth,
        Some(ProxyAuth::Prompt)
    );
    let stored = p.to_ovpn_text();
    assert!(
        !stored.contains("pw") && !stored.contains("auth.txt"),
        "{stored}"
    );
    // What is stored passes the helper's untrusted check.
    check_untrusted(stored.as_bytes()).unwrap();
}
