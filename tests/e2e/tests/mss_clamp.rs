//! `mssfix` proven on a path that loses big packets (root only).
//!
//! The lab's WAN link (router <-> server) gets an MTU of 1400 and the router
//! drops IP fragments and ICMP, as many real paths do (PPPoE/DSL or mobile
//! links behind filtering middleboxes): a tunnelled packet larger than 1400
//! bytes is lost without a trace and path MTU discovery cannot help. A TCP
//! download from the target through the tunnel then only works when the MSS
//! of the connection is clamped so that the encapsulated packets fit.
//!
//! With the profile's `mssfix 1400 mtu`: openvpn 2.6 (the reference client)
//! completes the download, OxiVPN completes it too, clamps to the MSS
//! openvpn 2.6 computes for the same session, and counts what it clamped.
//! With `mssfix 0` OxiVPN stalls: the clamp is what makes it work (the
//! server's own clamp, sized for 1492 bytes, is not enough).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::time::Duration;

use nix::sys::signal::Signal;
use oxivpn_e2e::{
    compressible_transfer, root_or_skip, ClientVariant, Lab, LabConfig, Role, ServerVariant,
};

const READY: &str = "Initialization Sequence Completed";
const TRANSFER_BYTES: usize = 1024 * 1024;
/// A transfer that makes no progress for this long has stalled.
const STALL: Duration = Duration::from_secs(6);

/// 1400-byte WAN link; the router forwards no fragment and no ICMP, and sends
/// no ICMP "fragmentation needed" / "packet too big" of its own.
const BLACKHOLE_RULES: &str = "table inet oxivpn_pmtu_blackhole {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip frag-off & 0x3fff != 0 counter drop
        exthdr frag exists counter drop
        meta l4proto { icmp, ipv6-icmp } counter drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        icmp type destination-unreachable counter drop
        icmpv6 type packet-too-big counter drop
    }
}
";

fn constrain_wan(lab: &Lab) -> anyhow::Result<()> {
    lab.ns(Role::Lan)?
        .ip(&["link", "set", "dev", "wan0", "mtu", "1400"])?;
    lab.ns(Role::Srv)?
        .ip(&["link", "set", "dev", "wan0", "mtu", "1400"])?;
    let rules = lab.dir().join("pmtu-blackhole.nft");
    std::fs::write(&rules, BLACKHOLE_RULES)?;
    oxivpn_e2e::run(lab.ns(Role::Lan)?.cmd("nft").arg("-f").arg(&rules))?;
    Ok(())
}

/// Packets the router dropped, from its nft counters.
fn dropped_by_router(lab: &Lab) -> anyhow::Result<u64> {
    let out = oxivpn_e2e::run(lab.ns(Role::Lan)?.cmd("nft").args([
        "list",
        "table",
        "inet",
        "oxivpn_pmtu_blackhole",
    ]))?;
    Ok(out
        .split("packets ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum())
}

/// The last `mss_fix:N` openvpn printed ("Data Channel MTU parms", verb 4).
fn openvpn_mss_fix(log: &str) -> Option<u16> {
    log.rsplit("mss_fix:")
        .next()
        .filter(|_| log.contains("mss_fix:"))?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `key=N` from the last log line that has it.
fn log_field(log: &str, key: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        l.split(&format!("{key}="))
            .nth(1)?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

#[test]
fn mssfix_carries_a_download_over_a_1400_byte_wan_that_drops_fragments_and_icmp(
) -> anyhow::Result<()> {
    let name = "mssfix_carries_a_download_over_a_1400_byte_wan_that_drops_fragments_and_icmp";
    if !root_or_skip(name) {
        return Ok(());
    }
    let mut lab = Lab::start(LabConfig::reference())?;
    constrain_wan(&lab)?;
    let srv = lab.start_server(&ServerVariant::default())?;
    let clamp = ClientVariant {
        extra: vec!["mssfix 1400 mtu".into()],
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &clamp, "clamp")?;

    // 1. The reference client.
    let argv: Vec<String> = vec![
        "openvpn".into(),
        "--config".into(),
        profile.path.to_string_lossy().into_owned(),
        "--disable-dco".into(),
        "--verb".into(),
        "4".into(),
    ];
    let mut reference = lab.spawn(Role::Cli, &argv, "openvpn-client")?;
    reference.wait_for_log(READY, Duration::from_secs(20))?;
    let got = compressible_transfer(&lab, TRANSFER_BYTES, STALL).map_err(|e| {
        anyhow::anyhow!(
            "{name}: openvpn 2.6 did not complete the download: {e:#}\n{}",
            reference.log_tail(30)
        )
    })?;
    assert_eq!(got, TRANSFER_BYTES);
    let reference_mss = openvpn_mss_fix(&reference.log()).ok_or_else(|| {
        anyhow::anyhow!("openvpn printed no mss_fix:\n{}", reference.log_tail(40))
    })?;
    eprintln!("{name}: openvpn 2.6 completed the download, mss_fix:{reference_mss}");
    reference.signal(Signal::SIGTERM)?;
    reference.wait_exit(Duration::from_secs(10))?;

    // 2. OxiVPN with the same profile.
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-clamp", &[])?;
    helper.wait_for_log(READY, Duration::from_secs(20))?;
    let got = compressible_transfer(&lab, TRANSFER_BYTES, STALL).map_err(|e| {
        anyhow::anyhow!(
            "{name}: OxiVPN did not complete the download: {e:#}\n{}",
            helper.log_tail(30)
        )
    })?;
    assert_eq!(got, TRANSFER_BYTES);
    helper.signal(Signal::SIGTERM)?;
    assert!(helper.wait_exit(Duration::from_secs(10))?.success());
    let log = helper.log();
    assert_eq!(
        log_field(&log, "max_mss"),
        Some(u64::from(reference_mss)),
        "{name}: OxiVPN's MSS differs from openvpn 2.6's mss_fix:{reference_mss}:\n{}",
        helper.log_tail(30)
    );
    assert!(
        log_field(&log, "mss_clamped").is_some_and(|n| n >= 1),
        "{name}: no clamped SYN counted:\n{}",
        helper.log_tail(30)
    );

    // 3. OxiVPN without clamping: the big segments are lost, the download stalls.
    let off = ClientVariant {
        extra: vec!["mssfix 0".into()],
        ..ClientVariant::default()
    };
    let profile = lab.write_client_profile(&srv, &off, "noclamp")?;
    let dropped_before = dropped_by_router(&lab)?;
    let mut helper = lab.spawn_helper_connect(&profile, "oxivpn-noclamp", &[])?;
    helper.wait_for_log(READY, Duration::from_secs(20))?;
    let res = compressible_transfer(&lab, TRANSFER_BYTES, STALL);
    eprintln!("{name}: with mssfix 0: {res:?}");
    assert!(
        res.is_err(),
        "{name}: with mssfix 0 the download completed, so the path does not need the clamp \
         and the test proves nothing: {res:?}"
    );
    assert!(
        dropped_by_router(&lab)? > dropped_before,
        "{name}: the stall was not the router dropping fragments"
    );
    helper.signal(Signal::SIGTERM)?;
    helper.wait_exit(Duration::from_secs(10))?;
    Ok(())
}
