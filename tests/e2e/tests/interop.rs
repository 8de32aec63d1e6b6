//! Interop matrix: `oxivpn-helper connect` in the client namespace against Debian's
//! OpenVPN 2.6 server, one lab per case (root only; cases run in parallel).
//!
//! Each passing case pings 10.8.0.1 and 10.0.0.3 through the tunnel, stops the helper
//! with SIGTERM and checks that routes, rules, links and resolv.conf of the client
//! namespace are exactly as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oxivpn_e2e::{
    addr, root_or_skip, ClientVariant, Compression, Credentials, DataCipher, KeyAlg, Lab,
    LabConfig, Proc, Role, ServerVariant, Topo, Transport, Wrap,
};

const READY: &str = "Initialization Sequence Completed";
const BOTH: &[&str] = &[addr::TUNNEL_SERVER, addr::TARGET];

struct Connected {
    lab: Lab,
    helper: Proc,
    before: String,
}

/// Lab + server + our client, connected. `None` when not root (skipped).
fn connect(
    name: &str,
    config: LabConfig,
    server: ServerVariant,
    client: ClientVariant,
) -> anyhow::Result<Option<Connected>> {
    if !root_or_skip(name) {
        return Ok(None);
    }
    let mut lab = Lab::start(config)?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&server)?;
    let profile = lab.write_client_profile(&srv, &client, "client")?;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    if let Err(e) = helper.wait_for_log(READY, Duration::from_secs(20)) {
        anyhow::bail!("{name}: {e:#}\nserver log:\n{}", srv.log(&lab));
    }
    Ok(Some(Connected {
        lab,
        helper,
        before,
    }))
}

impl Connected {
    fn ping_all(&self, name: &str, dests: &[&str]) {
        for dest in dests {
            let stats = self
                .lab
                .ping(Role::Cli, dest, 3, Duration::from_millis(200))
                .unwrap();
            assert_eq!(
                stats.received,
                3,
                "{name}: pings to {dest} through the tunnel: {stats:?}\nhelper log:\n{}",
                self.helper.log_tail(40)
            );
        }
    }

    /// SIGTERM, clean exit, network exactly as before.
    fn disconnect_and_check(mut self, name: &str) {
        self.helper.signal(Signal::SIGTERM).unwrap();
        let st = self.helper.wait_exit(Duration::from_secs(10)).unwrap();
        assert!(
            st.success(),
            "{name}: helper exit {st}\n{}",
            self.helper.log_tail(30)
        );
        let after = self.lab.client_network_snapshot().unwrap();
        assert!(
            self.before == after,
            "{name}: network not restored:\n{}\nhelper log:\n{}",
            diff(&self.before, &after),
            self.helper.log_tail(40)
        );
        let log = self.helper.log();
        assert!(!log.contains("panicked"), "{name}: {log}");
        // A clean session logs no warnings or errors.
        let unexpected: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            // Expected after a kill -9: the recovery of the killed run's changes.
            .filter(|l| !l.contains("left by a previous run"))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{name}: unexpected warnings:\n{}",
            unexpected.join("\n")
        );
    }
}

/// Lines only before (`-`) or only after (`+`).
fn diff(before: &str, after: &str) -> String {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let mut out = String::new();
    for l in &b {
        if !a.contains(l) {
            out.push_str(&format!("- {l}\n"));
        }
    }
    for l in &a {
        if !b.contains(l) {
            out.push_str(&format!("+ {l}\n"));
        }
    }
    out
}

/// The common case: connect, ping both, disconnect, compare.
fn case(
    name: &str,
    server: ServerVariant,
    client: ClientVariant,
    pings: &[&str],
) -> anyhow::Result<()> {
    let Some(c) = connect(name, LabConfig::reference(), server, client)? else {
        return Ok(());
    };
    c.ping_all(name, pings);
    c.disconnect_and_check(name);
    Ok(())
}

#[test]
fn udp_tls_crypt_gcm_ec_with_dns_and_dhcp() -> anyhow::Result<()> {
    let name = "udp_tls_crypt_gcm_ec_with_dns_and_dhcp";
    let config = LabConfig {
        addressing: oxivpn_e2e::Addressing::Dhcp,
        target_dns: true,
        ..LabConfig::reference()
    };
    let Some(c) = connect(
        name,
        config,
        ServerVariant::default(),
        ClientVariant::default(),
    )?
    else {
        return Ok(());
    };
    c.ping_all(name, BOTH);
    let resolv = std::fs::read_to_string(c.lab.ns(Role::Cli)?.resolv_conf_path())?;
    assert!(
        resolv.contains("10.0.0.3"),
        "pushed DNS not applied: {resolv}"
    );
    let out = oxivpn_e2e::run(
        c.lab
            .ns(Role::Cli)?
            .cmd("getent")
            .args(["hosts", "test.example"]),
    )?;
    assert!(
        out.starts_with("10.0.0.3"),
        "getent through the tunnel: {out}"
    );
    c.disconnect_and_check(name);
    Ok(())
}

#[test]
fn tcp_tls_auth() -> anyhow::Result<()> {
    let v = ServerVariant {
        transport: Transport::Tcp,
        wrap: Wrap::TlsAuth,
        ..ServerVariant::default()
    };
    case("tcp_tls_auth", v, ClientVariant::default(), BOTH)
}

#[test]
fn tcp_nodelay_tls_crypt_v2() -> anyhow::Result<()> {
    let v = ServerVariant {
        transport: Transport::TcpNoDelay,
        wrap: Wrap::TlsCryptV2,
        ..ServerVariant::default()
    };
    case(
        "tcp_nodelay_tls_crypt_v2",
        v,
        ClientVariant::default(),
        BOTH,
    )
}

#[test]
fn udp_tls_crypt_v2_force_cookie() -> anyhow::Result<()> {
    let v = ServerVariant {
        wrap: Wrap::TlsCryptV2ForceCookie,
        ..ServerVariant::default()
    };
    case(
        "udp_tls_crypt_v2_force_cookie",
        v,
        ClientVariant::default(),
        BOTH,
    )
}

#[test]
fn chacha20_poly1305() -> anyhow::Result<()> {
    let v = ServerVariant {
        cipher: DataCipher::Chacha20Poly1305,
        ..ServerVariant::default()
    };
    case("chacha20_poly1305", v, ClientVariant::default(), BOTH)
}

#[test]
fn aes_256_cbc_sha256() -> anyhow::Result<()> {
    let v = ServerVariant {
        cipher: DataCipher::Aes256CbcSha256,
        ..ServerVariant::default()
    };
    case("aes_256_cbc_sha256", v, ClientVariant::default(), BOTH)
}

#[test]
fn rsa_certificates() -> anyhow::Result<()> {
    let v = ServerVariant {
        key_alg: KeyAlg::Rsa2048,
        ..ServerVariant::default()
    };
    case("rsa_certificates", v, ClientVariant::default(), BOTH)
}

#[test]
fn user_password_right() -> anyhow::Result<()> {
    let v = ServerVariant {
        user_pass: true,
        ..ServerVariant::default()
    };
    case("user_password_right", v, ClientVariant::default(), BOTH)
}

#[test]
fn user_password_inline_block() -> anyhow::Result<()> {
    let name = "user_password_inline_block";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant {
        user_pass: true,
        ..ServerVariant::default()
    })?;
    let client = ClientVariant {
        inline_credentials: true,
        ..ClientVariant::default()
    };
    let mut profile = lab.write_client_profile(&srv, &client, "client")?;
    profile.auth_file = None; // credentials only from the <auth-user-pass> block
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    helper.wait_for_log(READY, Duration::from_secs(20))?;
    assert_eq!(
        lab.ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))?
            .received,
        3
    );
    Ok(())
}

#[test]
fn user_password_wrong_fails_once_and_clearly() -> anyhow::Result<()> {
    let name = "user_password_wrong_fails_once_and_clearly";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&ServerVariant {
        user_pass: true,
        ..ServerVariant::default()
    })?;
    let client = ClientVariant {
        credentials: Credentials::Wrong,
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &client, "client")?;
    let started = Instant::now();
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    let st = helper.wait_exit(Duration::from_secs(30))?;
    let log = helper.log();
    assert!(!st.success(), "wrong password must fail: {log}");
    assert!(
        log.contains("AUTH_FAILED"),
        "no clear AUTH_FAILED message: {log}"
    );
    assert!(!log.contains(READY));
    // One attempt only: the server saw exactly one failed verification.
    let server_log = srv.log(&lab);
    let attempts = server_log.matches("TLS Auth Error").count();
    assert_eq!(attempts, 1, "retry storm? server log:\n{server_log}");
    assert!(started.elapsed() < Duration::from_secs(25));
    let after = lab.client_network_snapshot()?;
    assert!(before == after, "{}", diff(&before, &after));
    Ok(())
}

#[test]
fn wrong_tls_crypt_key_times_out_clearly() -> anyhow::Result<()> {
    let name = "wrong_tls_crypt_key_times_out_clearly";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let client = ClientVariant {
        wrong_wrap_key: true,
        extra: vec!["hand-window 5".into()],
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &client, "client")?;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    let st = helper.wait_exit(Duration::from_secs(20))?;
    let log = helper.log();
    assert!(!st.success(), "{log}");
    assert!(
        log.contains("no reply from the server") && log.contains("tls-crypt"),
        "the error must say the server never answered and point at the key: {log}"
    );
    let after = lab.client_network_snapshot()?;
    assert!(before == after, "{}", diff(&before, &after));
    Ok(())
}

#[test]
fn ipv6_inside_the_tunnel() -> anyhow::Result<()> {
    let v = ServerVariant {
        ipv6: true,
        ..ServerVariant::default()
    };
    case(
        "ipv6_inside_the_tunnel",
        v,
        ClientVariant::default(),
        &[
            addr::TUNNEL_SERVER,
            addr::TARGET,
            addr::TUNNEL_SERVER6,
            addr::TARGET6,
        ],
    )
}

#[test]
fn ipv6_transport_udp6() -> anyhow::Result<()> {
    let v = ServerVariant {
        transport: Transport::Udp6,
        ..ServerVariant::default()
    };
    case("ipv6_transport_udp6", v, ClientVariant::default(), BOTH)
}

#[test]
fn ipv6_transport_tcp6() -> anyhow::Result<()> {
    let v = ServerVariant {
        transport: Transport::Tcp6,
        ..ServerVariant::default()
    };
    case("ipv6_transport_tcp6", v, ClientVariant::default(), BOTH)
}

#[test]
fn compress_stub_v2_pushed() -> anyhow::Result<()> {
    let v = ServerVariant {
        compression: Compression::StubV2,
        ..ServerVariant::default()
    };
    case("compress_stub_v2_pushed", v, ClientVariant::default(), BOTH)
}

#[test]
fn comp_lzo_no_pushed() -> anyhow::Result<()> {
    let v = ServerVariant {
        compression: Compression::CompLzoNo,
        ..ServerVariant::default()
    };
    case("comp_lzo_no_pushed", v, ClientVariant::default(), BOTH)
}

#[test]
fn topology_net30() -> anyhow::Result<()> {
    let v = ServerVariant {
        topology: Topo::Net30,
        ..ServerVariant::default()
    };
    case("topology_net30", v, ClientVariant::default(), BOTH)
}

#[test]
fn split_tunnel_routes_only_the_target_network() -> anyhow::Result<()> {
    let name = "split_tunnel_routes_only_the_target_network";
    let v = ServerVariant {
        split_tunnel: true,
        ..ServerVariant::default()
    };
    let Some(c) = connect(name, LabConfig::reference(), v, ClientVariant::default())? else {
        return Ok(());
    };
    c.ping_all(name, BOTH);
    let default = c.lab.ns(Role::Cli)?.ip(&["route", "get", "198.51.100.1"])?;
    assert!(
        default.contains("dev eth0"),
        "split tunnel must keep the default route: {default}"
    );
    c.disconnect_and_check(name);
    Ok(())
}

/// Pings every 0.2 s for 35 s across renegotiations (every 10 s) and expects no loss.
fn reneg_case(
    name: &str,
    server_reneg: Option<u32>,
    client_reneg: Option<u32>,
) -> anyhow::Result<()> {
    let v = ServerVariant {
        reneg_sec: server_reneg,
        ..ServerVariant::default()
    };
    let client = ClientVariant {
        reneg_sec: client_reneg,
        ..ClientVariant::default()
    };
    let Some(c) = connect(name, LabConfig::reference(), v, client)? else {
        return Ok(());
    };
    let stats = c
        .lab
        .ping(Role::Cli, addr::TARGET, 175, Duration::from_millis(200))?;
    assert_eq!(
        stats.lost(),
        0,
        "{name}: {stats:?}\nhelper log:\n{}",
        c.helper.log_tail(40)
    );
    c.disconnect_and_check(name);
    Ok(())
}

#[test]
fn renegotiation_server_and_client_initiated_without_loss() -> anyhow::Result<()> {
    // Both in one test so their 35 s overlap.
    let server =
        std::thread::spawn(|| reneg_case("renegotiation_server_initiated", Some(10), None));
    let client = reneg_case("renegotiation_client_initiated", None, Some(10));
    let server = server
        .join()
        .map_err(|_| anyhow::anyhow!("server-initiated case panicked"))?;
    client?;
    server
}

#[test]
fn bypass_dhcp_keeps_the_relayed_dhcp_server_outside_the_tunnel() -> anyhow::Result<()> {
    let name = "bypass_dhcp_keeps_the_relayed_dhcp_server_outside_the_tunnel";
    let config = LabConfig {
        addressing: oxivpn_e2e::Addressing::DhcpRelay,
        ..LabConfig::reference()
    };
    let Some(c) = connect(
        name,
        config,
        ServerVariant::default(),
        ClientVariant::default(),
    )?
    else {
        return Ok(());
    };
    c.ping_all(name, BOTH);
    let route = c
        .lab
        .ns(Role::Cli)?
        .ip(&["route", "get", addr::DHCP_SERVER])?;
    assert!(
        route.contains("via 192.168.1.1 dev eth0"),
        "lease renewals must not go into the tunnel: {route}\nhelper log:\n{}",
        c.helper.log_tail(30)
    );
    c.disconnect_and_check(name);
    Ok(())
}

#[test]
fn after_kill_9_the_next_run_restores_the_network() -> anyhow::Result<()> {
    let name = "after_kill_9_the_next_run_restores_the_network";
    let config = LabConfig {
        target_dns: true,
        ..LabConfig::reference()
    };
    let Some(mut c) = connect(
        name,
        config,
        ServerVariant::default(),
        ClientVariant::default(),
    )?
    else {
        return Ok(());
    };
    c.ping_all(name, BOTH);
    c.helper.signal(Signal::SIGKILL)?;
    c.helper.wait_exit(Duration::from_secs(5))?;
    // Same journal (same name), so this run first undoes what the killed one left.
    let profile = oxivpn_e2e::ClientProfile {
        path: c.lab.dir().join("client.ovpn"),
        text: String::new(),
        auth_file: None,
    };
    let mut again = c
        .lab
        .spawn_helper_connect(&profile, "oxivpn-helper-again", &[])?;
    again.wait_for_log(READY, Duration::from_secs(20))?;
    assert!(
        again.log().contains("left by a previous run"),
        "{}",
        again.log_tail(30)
    );
    c.helper = again;
    c.ping_all(name, BOTH);
    c.disconnect_and_check(name);
    Ok(())
}

#[test]
fn server_restart_reconnects_automatically() -> anyhow::Result<()> {
    let name = "server_restart_reconnects_automatically";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let profile = lab.write_client_profile(&srv, &ClientVariant::default(), "client")?;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    helper.wait_for_log(READY, Duration::from_secs(20))?;
    // SIGHUP restarts the server, which tells us RESTART (explicit-exit-notify).
    srv.signal(&mut lab, Signal::SIGHUP)?;
    let deadline = Instant::now() + Duration::from_secs(25);
    while helper.log().matches(READY).count() < 2 {
        assert!(
            Instant::now() < deadline && helper.try_status().is_none(),
            "no reconnect after the server restart:\n{}\nserver:\n{}",
            helper.log_tail(30),
            srv.log(&lab)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = helper.log();
    assert!(log.contains("server asked us to reconnect"), "{log}");
    let stats = lab.ping(Role::Cli, addr::TARGET, 3, Duration::from_millis(200))?;
    assert_eq!(stats.received, 3, "{stats:?}");
    helper.signal(Signal::SIGTERM)?;
    assert!(helper.wait_exit(Duration::from_secs(10))?.success());
    let after = lab.client_network_snapshot()?;
    assert!(before == after, "{}", diff(&before, &after));
    Ok(())
}

#[test]
fn missing_credentials_without_a_terminal_fail_clearly() -> anyhow::Result<()> {
    let name = "missing_credentials_without_a_terminal_fail_clearly";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let srv = lab.start_server(&ServerVariant {
        user_pass: true,
        ..ServerVariant::default()
    })?;
    let mut profile = lab.write_client_profile(&srv, &ClientVariant::default(), "client")?;
    profile.auth_file = None;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    let st = helper.wait_exit(Duration::from_secs(10))?;
    let log = helper.log();
    assert!(!st.success(), "{log}");
    assert!(
        log.contains("--auth-file"),
        "the error must say how to pass credentials: {log}"
    );
    Ok(())
}

#[test]
fn legacy_cipher_only_profile_against_a_cbc_only_server_fails_clearly() -> anyhow::Result<()> {
    let name = "legacy_cipher_only_profile_against_a_cbc_only_server_fails_clearly";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    let before = lab.client_network_snapshot()?;
    let srv = lab.start_server(&ServerVariant {
        cipher: DataCipher::Aes256CbcSha256,
        ..ServerVariant::default()
    })?;
    let client = ClientVariant {
        legacy_cipher_only: true,
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &client, "client")?;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-helper", &[])?;
    let st = helper.wait_exit(Duration::from_secs(20))?;
    let log = helper.log();
    assert!(!st.success(), "{log}");
    assert!(
        log.contains("AUTH_FAILED") && log.contains("cipher"),
        "the error must name the cipher negotiation: {log}"
    );
    let after = lab.client_network_snapshot()?;
    assert!(before == after, "{}", diff(&before, &after));
    Ok(())
}
