//! `parse(p.to_ovpn_text()) == p` for a rich synthetic profile and every corpus file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::Path;

use common::*;
use ovpn_profile::*;

fn roundtrip(text: &[u8], what: &str) {
    let Ok(first) = parse(text) else { return };
    // The canonical text is UTF-8; a non-UTF-8 file name cannot survive it (the
    // store inlines referenced files before writing, so this never reaches disk).
    if first
        .profile
        .file_refs()
        .iter()
        .any(|f| f.raw != f.path.as_bytes())
    {
        println!("{what}: skipped (non-UTF-8 file name)");
        return;
    }
    let out = first.profile.to_ovpn_text();
    let second =
        parse(out.as_bytes()).unwrap_or_else(|e| panic!("{what}: re-parse failed: {e}\n{out}"));
    assert_eq!(first.profile, second.profile, "{what}:\n{out}");
    assert_eq!(second.report.refused_count(), 0, "{what}");
    // Canonical text is a fixed point.
    assert_eq!(second.profile.to_ovpn_text(), out, "{what}");
}

#[test]
fn rich_profile_round_trips() {
    let extra = r#"proto tcp
port 443
connect-retry 5 60
explicit-exit-notify 2
<connection>
remote one.example 443 tcp
mssfix
</connection>
<connection>
remote two.example
float
</connection>
remote-random
auth SHA256
cipher AES-256-GCM
data-ciphers AES-256-GCM:CHACHA20-POLY1305
data-ciphers-fallback AES-128-CBC
tls-version-min 1.2 or-highest
tls-version-max 1.3
tls-cipher ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305
tls-ciphersuites TLS_AES_256_GCM_SHA384
tls-groups X25519:secp384r1
tls-cert-profile preferred
remote-cert-tls server
remote-cert-ku a0 88
remote-cert-eku "TLS Web Server Authentication"
verify-x509-name "C=DE, CN=vpn #1" name-prefix
verify-hash 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33
auth-user-pass
static-challenge "Enter OTP" 1 concat
auth-nocache
auth-retry interact
push-peer-info
setenv IV_GUI_VER "OxiVPN 1.0"
setenv EMPTY ""
route-nopull
pull-filter ignore "route "
route 10.0.0.0 255.0.0.0
route 10.1.0.0 default default 7
route-ipv6 2001:db8::/32 :: 5
redirect-gateway def1 bypass-dhcp
redirect-private local
dhcp-option DNS 10.0.0.1
dhcp-option DISABLE-NBT
dns server 1 address 10.0.0.1
block-outside-dns
route-metric 10
route-delay 2 30
reneg-sec 3600
reneg-bytes 1000000000
reneg-pkts 5000000
hand-window 90
tls-timeout 4
ping 10
ping-restart 60
ping-exit 600
keepalive 10 60
inactive 3600 100000
comp-lzo no
compress
allow-compression asym
http-proxy proxy.example 8080 auto-nct ntlm
socks-proxy socks.example 1080 creds.txt
ca "ca dir/ca.crt"
"#;
    roundtrip(profile_with(extra).as_bytes(), "rich");
    let p = parse(profile_with(extra).as_bytes()).unwrap();
    assert!(
        p.profile.ca.as_ref().unwrap().inline().is_some(),
        "the later <ca> wins over the file"
    );
}

#[test]
fn corpus_files_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ovpn");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("notice: corpus not found at {}; skipping", dir.display());
        return;
    };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        if path.file_name().is_some_and(|f| f == "SOURCES.tsv") {
            continue;
        }
        roundtrip(&std::fs::read(&path).unwrap(), &path.display().to_string());
        n += 1;
    }
    println!("{n} corpus files round-tripped");
}
