//! The lab proven with the reference client: Debian's `openvpn --config` in the client
//! namespace against each server variant (root only). This also checks that every
//! server configuration the interop matrix uses is one OpenVPN 2.6 accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::time::Duration;

use oxivpn_e2e::{
    addr, root_or_skip, ClientVariant, Compression, DataCipher, KeyAlg, Lab, LabConfig, Role,
    ServerVariant, Topo, Transport, Wrap,
};

/// Connects the reference client to `variant` and pings through the tunnel; returns the
/// lab (still connected) and the client process for further checks.
fn connect(
    name: &str,
    config: LabConfig,
    variant: ServerVariant,
    pings: &[&str],
) -> anyhow::Result<Option<(Lab, oxivpn_e2e::Proc)>> {
    if !root_or_skip(name) {
        return Ok(None);
    }
    let mut lab = Lab::start(config)?;
    let server = lab.start_server(&variant)?;
    let profile = lab.write_client_profile(&server, &ClientVariant::default(), "client")?;
    let mut argv = vec![
        "openvpn".to_owned(),
        "--config".to_owned(),
        profile.path.to_string_lossy().into_owned(),
        "--disable-dco".to_owned(),
    ];
    if let Some(f) = &profile.auth_file {
        argv.push("--auth-user-pass".into());
        argv.push(f.to_string_lossy().into_owned());
    }
    let mut client = lab.spawn(Role::Cli, &argv, "openvpn-client")?;
    client.wait_for_log("Initialization Sequence Completed", Duration::from_secs(20))?;
    for dest in pings {
        let stats = lab.ping(Role::Cli, dest, 3, Duration::from_millis(200))?;
        assert_eq!(
            stats.received, 3,
            "{name}: pings to {dest} through the tunnel: {stats:?}\nclient log:\n{}\nserver log:\n{}",
            client.log_tail(30),
            server.log(&lab)
        );
    }
    Ok(Some((lab, client)))
}

const BOTH: &[&str] = &[addr::TUNNEL_SERVER, addr::TARGET];

#[test]
fn reference_client_reaches_the_target_through_the_tunnel() -> anyhow::Result<()> {
    let name = "reference_client_reaches_the_target_through_the_tunnel";
    if !root_or_skip(name) {
        return Ok(());
    }
    {
        // Without the tunnel the router has no route to 10/8.
        let lab = Lab::start(LabConfig::reference())?;
        assert!(lab.reachable(Role::Cli, addr::SERVER));
        assert!(!lab.reachable(Role::Cli, addr::TARGET));
    }
    let config = LabConfig {
        target_dns: true,
        ..LabConfig::reference()
    };
    let Some((lab, _client)) = connect(name, config, ServerVariant::default(), BOTH)? else {
        return Ok(());
    };
    let route = lab.ns(Role::Cli)?.ip(&["route", "get", addr::TARGET])?;
    assert!(
        route.contains("dev tun"),
        "target not routed via the tunnel: {route}"
    );
    // The client namespace's own resolv.conf, pointed at the pushed DNS server,
    // resolves through the tunnel.
    std::fs::write(
        lab.ns(Role::Cli)?.resolv_conf_path(),
        "nameserver 10.0.0.3\n",
    )?;
    let out = oxivpn_e2e::run(
        lab.ns(Role::Cli)?
            .cmd("getent")
            .args(["hosts", "test.example"]),
    )?;
    assert!(out.starts_with("10.0.0.3"), "getent: {out}");
    Ok(())
}

#[test]
fn reference_client_tcp_tls_auth_chacha_rsa() -> anyhow::Result<()> {
    let v = ServerVariant {
        transport: Transport::TcpNoDelay,
        wrap: Wrap::TlsAuth,
        cipher: DataCipher::Chacha20Poly1305,
        key_alg: KeyAlg::Rsa2048,
        ..ServerVariant::default()
    };
    connect(
        "reference_client_tcp_tls_auth_chacha_rsa",
        LabConfig::reference(),
        v,
        BOTH,
    )?;
    Ok(())
}

#[test]
fn reference_client_tls_crypt_v2_cookie_cbc_net30_stub() -> anyhow::Result<()> {
    let v = ServerVariant {
        wrap: Wrap::TlsCryptV2ForceCookie,
        cipher: DataCipher::Aes256CbcSha256,
        topology: Topo::Net30,
        compression: Compression::StubV2,
        ..ServerVariant::default()
    };
    connect(
        "reference_client_tls_crypt_v2_cookie_cbc_net30_stub",
        LabConfig::reference(),
        v,
        BOTH,
    )?;
    Ok(())
}

#[test]
fn reference_client_user_pass_ipv6_udp6_split_lzo() -> anyhow::Result<()> {
    let v = ServerVariant {
        transport: Transport::Udp6,
        user_pass: true,
        ipv6: true,
        split_tunnel: true,
        compression: Compression::CompLzoNo,
        ..ServerVariant::default()
    };
    let pings = &[
        addr::TUNNEL_SERVER,
        addr::TARGET,
        addr::TUNNEL_SERVER6,
        addr::TARGET6,
    ];
    connect(
        "reference_client_user_pass_ipv6_udp6_split_lzo",
        LabConfig::reference(),
        v,
        pings,
    )?;
    Ok(())
}
