//! Connect time, process start to first ping reply through the tunnel, of
//! `oxivpn-helper connect` against `openvpn --config` on the same profile and server,
//! alternating, median of 10 each (root only; `#[ignore]`d: run it by hand with
//! `cargo test -p oxivpn-e2e --test connect_time -- --ignored --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Like the lab crate itself (`#![cfg(unix)]`): its labs are network namespaces.
#![cfg(unix)]

use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use oxivpn_e2e::{
    addr, first_reply_after, helper_binary, root_or_skip, ClientVariant, Lab, LabConfig, Proc,
    Role, ServerVariant, Transport,
};

const RUNS: usize = 10;

fn time_one(lab: &Lab, argv: &[String], name: &str) -> anyhow::Result<Duration> {
    // The pinger starts first so that the clock covers the client's whole start-up.
    // One ping process per probe (ping fixes its source address at start, and only the
    // tunnel's address is answered through the tunnel), a new one every 5 ms, each
    // waiting up to 1 s so that a slow tunnel still counts.
    let script = format!(
        "end=$(( $(date +%s) + 15 )); while [ $(date +%s) -lt $end ]; do \
         ping -c1 -W1 -n -D {} & sleep 0.005; done",
        addr::TARGET
    );
    let mut pinger = lab.spawn(Role::Cli, &["sh", "-c", &script], &format!("{name}-ping"))?;
    std::thread::sleep(Duration::from_millis(50));
    let t0 = SystemTime::now();
    let mut client = lab.spawn(Role::Cli, argv, name)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let took = loop {
        if let Some(d) = first_reply_after(&pinger.log(), t0) {
            break d;
        }
        if Instant::now() > deadline || client.try_status().is_some() {
            anyhow::bail!(
                "{name}: no reply through the tunnel\n{}",
                client.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    pinger.kill();
    stop(&mut client);
    Ok(took)
}

fn stop(client: &mut Proc) {
    let _ = client.signal(Signal::SIGTERM);
    let _ = client.wait_exit(Duration::from_secs(10));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(transport: Transport) -> anyhow::Result<(Duration, Duration)> {
    let mut lab = Lab::start(LabConfig::reference())?;
    let server = lab.start_server(&ServerVariant {
        transport,
        ..ServerVariant::default()
    })?;
    let profile = lab.write_client_profile(&server, &ClientVariant::default(), "client")?;
    let path = profile.path.to_string_lossy().into_owned();
    let journal = lab
        .dir()
        .join("journal.json")
        .to_string_lossy()
        .into_owned();
    let ours: Vec<String> = vec![
        helper_binary()?.to_string_lossy().into_owned(),
        "connect".into(),
        "--config".into(),
        path.clone(),
        "--journal".into(),
        journal,
    ];
    let reference: Vec<String> = ["openvpn", "--config", &path, "--disable-dco"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        a.push(time_one(&lab, &ours, &format!("ours{i}"))?);
        b.push(time_one(&lab, &reference, &format!("openvpn{i}"))?);
    }
    eprintln!("{transport:?} ours:    {a:?}");
    eprintln!("{transport:?} openvpn: {b:?}");
    Ok((median(a), median(b)))
}

#[test]
#[ignore = "measurement (about a minute); run by hand with --ignored --nocapture"]
fn connect_time_ours_vs_openvpn() -> anyhow::Result<()> {
    if !root_or_skip("connect_time_ours_vs_openvpn") {
        return Ok(());
    }
    for t in [Transport::Udp, Transport::Tcp] {
        let (ours, reference) = measure(t)?;
        eprintln!(
            "connect time {t:?}, median of {RUNS}: oxivpn-helper connect {:.1} ms, openvpn {:.1} ms",
            ours.as_secs_f64() * 1000.0,
            reference.as_secs_f64() * 1000.0
        );
        assert!(ours < Duration::from_secs(5), "{t:?}: {ours:?}");
    }
    Ok(())
}
