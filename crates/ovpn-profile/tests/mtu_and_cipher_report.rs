//! What the import report says about `mssfix`, `fragment` and a profile that
//! relies on `cipher` without `data-ciphers`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ovpn_profile::*;

fn finding<'a>(report: &'a Report, directive: &str) -> Vec<&'a Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.directive == directive)
        .collect()
}

#[test]
fn mssfix_forms_are_kept_and_reported_as_applied() {
    let cases: [(&str, Option<Mssfix>, &str); 5] = [
        (
            "mssfix",
            Some(Mssfix {
                max: None,
                unit: MssfixUnit::Mtu,
            }),
            "1492 bytes",
        ),
        (
            "mssfix 1450",
            Some(Mssfix {
                max: Some(1450),
                unit: MssfixUnit::Packet,
            }),
            "encrypted packets fit 1450 bytes",
        ),
        (
            "mssfix 1400 mtu",
            Some(Mssfix {
                max: Some(1400),
                unit: MssfixUnit::Mtu,
            }),
            "fit 1400 bytes, IP and UDP headers included",
        ),
        (
            "mssfix 1400 fixed",
            Some(Mssfix {
                max: Some(1400),
                unit: MssfixUnit::Fixed,
            }),
            "to 1360",
        ),
        (
            "mssfix 0",
            Some(Mssfix {
                max: Some(0),
                unit: MssfixUnit::Packet,
            }),
            "turns MSS clamping off",
        ),
    ];
    for (line, want, says) in cases {
        let p = parse(profile_with(line).as_bytes()).unwrap();
        assert_eq!(p.profile.conn.mssfix, want, "{line}");
        let f = finding(&p.report, "mssfix");
        assert_eq!(f.len(), 1, "{line}: {f:?}");
        assert_eq!(f[0].severity, Severity::Honoured, "{line}");
        assert!(f[0].message.contains(says), "{line}: {}", f[0].message);
        // The canonical text keeps the unit.
        let again = parse(p.profile.to_ovpn_text().as_bytes()).unwrap();
        assert_eq!(again.profile.conn.mssfix, want, "{line} after a round trip");
    }
}

#[test]
fn mssfix_bad_arguments_are_errors_naming_the_line() {
    for (line, says) in [
        ("mssfix 1400 bytes", "unknown parameter \"bytes\""),
        ("mssfix big", "whole number"),
        ("mssfix 70000", "larger than 65535"),
    ] {
        let p = parse(profile_with(line).as_bytes()).unwrap();
        let f = finding(&p.report, "mssfix");
        assert_eq!(f.len(), 1, "{line}: {f:?}");
        assert_eq!(f[0].severity, Severity::Error, "{line}");
        assert_eq!(f[0].line, Some(EXTRA_LINE), "{line}");
        assert!(f[0].message.contains(says), "{line}: {}", f[0].message);
        assert!(!p.report.usable, "{line}");
    }
}

#[test]
fn fragment_is_refused_with_a_reason() {
    let p = parse(profile_with("fragment 1300").as_bytes()).unwrap();
    assert!(!p.report.usable);
    let f = finding(&p.report, "fragment");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Severity::Unsupported);
    assert!(
        f[0].message.contains("without fragment"),
        "{}",
        f[0].message
    );
    let reason = p.report.reason.unwrap_or_default();
    assert!(reason.contains("fragment"), "{reason}");
}

#[test]
fn cipher_without_data_ciphers_reads_as_legacy() {
    let p = parse(profile_with("cipher AES-256-CBC\nauth SHA256").as_bytes()).unwrap();
    let legacy: Vec<_> = finding(&p.report, "cipher")
        .into_iter()
        .filter(|f| f.message.starts_with("legacy cipher"))
        .collect();
    assert_eq!(legacy.len(), 1, "{:?}", p.report.findings);
    assert_eq!(legacy[0].line, Some(EXTRA_LINE));
    assert!(
        legacy[0].message.contains("uses AES-256-CBC"),
        "{}",
        legacy[0].message
    );
    assert!(p.report.usable);

    // A 64-bit block cipher is not something OxiVPN will ever use.
    let p = parse(profile_with("cipher BF-CBC").as_bytes()).unwrap();
    let msg = &finding(&p.report, "cipher")
        .into_iter()
        .find(|f| f.message.starts_with("legacy cipher"))
        .unwrap()
        .message;
    assert!(msg.contains("SWEET32") && msg.contains("refuses"), "{msg}");

    // With data-ciphers the profile negotiates: no remark.
    let p =
        parse(profile_with("cipher AES-256-CBC\ndata-ciphers AES-256-GCM:AES-256-CBC").as_bytes())
            .unwrap();
    assert!(
        !p.report
            .findings
            .iter()
            .any(|f| f.message.starts_with("legacy cipher")),
        "{:?}",
        p.report.findings
    );
}
