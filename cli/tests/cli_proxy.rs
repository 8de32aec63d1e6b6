//! `http-proxy` and `socks-proxy` against real proxies on the server side of the lab
//! (root only): squid (HTTP CONNECT, Basic authentication) and dante (SOCKS5,
//! user name/password; UDP through UDP ASSOCIATE, TCP through CONNECT). Each: import the
//! profile with its proxy auth file next to it, `oxivpnctl connect` through the helper
//! service with the kill switch on (so the proxy, not the server, must be the
//! exception), ping through the tunnel, disconnect; then a wrong proxy password is
//! refused with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The lab (namespaces, TUN, real servers) exists on Linux only.
#![cfg(target_os = "linux")]

mod support;
use support::{ctl, ok, text};

use std::path::{Path, PathBuf};
use std::time::Duration;

use oxivpn_e2e::{
    addr, proxies_available, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant,
    Transport, DANTE_USER,
};

const PROXY_PASSWORD: &str = "pr0xy-pass";

fn helper_or_skip(name: &str) -> Option<PathBuf> {
    if !root_or_skip(name) {
        return None;
    }
    if !proxies_available() {
        eprintln!("SKIPPED {name}: squid/danted not installed (cargo xtask deps)");
        return None;
    }
    let helper = Path::new(env!("CARGO_BIN_EXE_oxivpnctl")).with_file_name("oxivpn-helper");
    if !helper.exists() {
        eprintln!("SKIPPED {name}: oxivpn-helper not built next to oxivpnctl");
        return None;
    }
    Some(helper)
}

/// Writes `user`/`password` into `<dir>/<name>` and returns its path.
fn auth_file(dir: &Path, name: &str, user: &str, password: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{user}\n{password}\n")).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Imports `profile_line`'s profile as `name`, connects with the proxy credentials in
/// `right`, pings the target, disconnects; then connects with `wrong` and expects
/// `refusal` in the output.
#[allow(clippy::too_many_arguments)]
fn connect_ping_and_refuse(
    lab: &mut Lab,
    helper: &Path,
    server: &ServerVariant,
    proxy_lines: &[String],
    user: &str,
    refusal: &str,
    far_remote: bool,
) {
    let srv = lab.start_server(server).unwrap();
    let variant = ClientVariant {
        extra: proxy_lines.to_vec(),
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &variant, "client").unwrap();
    if far_remote {
        // The server's address on the far side (10.0.0.2): the client has no route to
        // it, only the proxy (in `srv`) reaches it. So connecting proves the proxy
        // carries the tunnel. (Not for UDP: OpenVPN without `multihome` answers from
        // 198.18.0.1, which a SOCKS relay rightly does not take for 10.0.0.2.)
        let direct = format!("remote {} ", addr::SERVER);
        assert!(profile.text.contains(&direct), "{}", profile.text);
        let far = profile
            .text
            .replace(&direct, &format!("remote {} ", addr::SERVER_LAN));
        std::fs::write(&profile.path, &far).unwrap();
        assert!(!lab.reachable(Role::Cli, addr::SERVER_LAN));
    }
    // Either way the kill switch is on: only the proxy (and a SOCKS UDP relay) is let
    // through, never the server's own port.
    let dir = profile.path.parent().unwrap().to_owned();
    // The profile names `proxy-auth.txt`: import reads it (the credentials are kept
    // out of the stored profile).
    auth_file(&dir, "proxy-auth.txt", user, PROXY_PASSWORD);
    let service = lab.start_helper_service(helper).unwrap();
    let (sock, data) = (service.socket, service.data);
    let imported = ok(&ctl(
        &sock,
        &data,
        &["import", profile.path.to_str().unwrap(), "--name", "px"],
    ));
    assert!(imported.contains("proxy"), "{imported}");

    let right = auth_file(&dir, "right.txt", user, PROXY_PASSWORD);
    let out = ctl(
        &sock,
        &data,
        &[
            "connect",
            "px",
            "--timeout",
            "30",
            "--kill-switch",
            "on",
            "--proxy-auth-file",
            &right,
        ],
    );
    let shown = ok(&out);
    assert!(shown.contains("connected"), "{}", text(&out));
    let stats = lab
        .ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))
        .unwrap();
    assert_eq!(stats.received, 3, "ping through the tunnel");
    ok(&ctl(&sock, &data, &["disconnect", "px"]));

    let wrong = auth_file(&dir, "wrong.txt", user, "not-the-password");
    let out = ctl(
        &sock,
        &data,
        &[
            "connect",
            "px",
            "--timeout",
            "30",
            "--kill-switch",
            "off",
            "--proxy-auth-file",
            &wrong,
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(refusal), "{}", text(&out));

    // Without proxy credentials (and no terminal to ask on) oxivpnctl says what is missing.
    let out = ctl(&sock, &data, &["connect", "px", "--timeout", "10"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("proxy") && text(&out).contains("--proxy-auth-file"),
        "{}",
        text(&out)
    );
}

#[test]
fn http_proxy_squid_basic_auth_through_the_service() {
    let Some(helper) = helper_or_skip("http_proxy_squid_basic_auth_through_the_service") else {
        return;
    };
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let port = lab.start_squid("alice", PROXY_PASSWORD).unwrap();
    let server = ServerVariant {
        transport: Transport::Tcp,
        ..ServerVariant::default()
    };
    connect_ping_and_refuse(
        &mut lab,
        &helper,
        &server,
        &[
            format!("http-proxy {} {port} proxy-auth.txt basic", addr::SERVER),
            "http-proxy-option AGENT OxiVPN-lab".into(),
        ],
        "alice",
        "the HTTP proxy refused the proxy user name or password",
        true,
    );
    let access = std::fs::read_to_string(lab.dir().join("squid/access.log")).unwrap();
    assert!(
        access.contains("CONNECT") && access.contains("alice"),
        "squid logged no authenticated CONNECT:\n{access}"
    );
}

#[test]
fn socks_proxy_dante_user_password_udp_and_tcp_through_the_service() {
    let Some(helper) =
        helper_or_skip("socks_proxy_dante_user_password_udp_and_tcp_through_the_service")
    else {
        return;
    };
    // UDP: UDP ASSOCIATE, datagrams with the RFC 1928 header through dante's relay.
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let port = lab.start_dante(PROXY_PASSWORD).unwrap();
    connect_ping_and_refuse(
        &mut lab,
        &helper,
        &ServerVariant::default(),
        &[format!(
            "socks-proxy {} {port} proxy-auth.txt",
            addr::SERVER
        )],
        DANTE_USER,
        "the SOCKS proxy refused the proxy user name or password",
        false,
    );
    drop(lab);

    // TCP: SOCKS5 CONNECT.
    let mut lab = Lab::start(LabConfig::reference()).unwrap();
    let port = lab.start_dante(PROXY_PASSWORD).unwrap();
    let server = ServerVariant {
        transport: Transport::Tcp,
        ..ServerVariant::default()
    };
    connect_ping_and_refuse(
        &mut lab,
        &helper,
        &server,
        &[format!(
            "socks-proxy {} {port} proxy-auth.txt",
            addr::SERVER
        )],
        DANTE_USER,
        "the SOCKS proxy refused the proxy user name or password",
        true,
    );
}
