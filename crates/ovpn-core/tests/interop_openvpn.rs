#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Interop smoke test: the sans-IO client, driven by a tiny blocking UDP loop
//! in this test, against a real `openvpn` 2.6 server on loopback inside a
//! private network namespace (`unshare --net`) that this test creates; the
//! namespace disappears with its processes. Root only; skipped (with a
//! notice) when not root or when `openvpn`/`unshare` are missing.
//!
//! Checks: handshake with tls-crypt, PUSH_REPLY content, ICMP echo through
//! the tunnel to the server's tun address and back (both data directions),
//! server-initiated renegotiation (reneg-sec) with traffic continuing, and
//! exit notification on close.

use ovpn_core::config::{
    ClientConfig, ClientIdentity, Compression, Credentials, TlsWrap, Transport, VerifyOptions,
};
use ovpn_core::session::DisconnectReason;
use ovpn_core::session::{Client, Event, Stage, DATA_HEADROOM, DATA_TAILROOM};
use ovpn_core::static_key::StaticKey;
use ovpn_core::static_key::TlsCryptV2ClientKey;
use ovpn_core::transport::{frame_tcp, TcpFramer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INNER_ENV: &str = "OVPN_CORE_INTEROP_INNER";

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn interop_with_openvpn_server() {
    if std::env::var_os(INNER_ENV).is_some() {
        inner();
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED interop_with_openvpn_server: needs root (network namespace)");
        return;
    }
    for c in ["openvpn", "unshare", "ip"] {
        if !have(c) {
            eprintln!("SKIPPED interop_with_openvpn_server: `{c}` not installed");
            return;
        }
    }
    let can_unshare = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_unshare {
        eprintln!("SKIPPED interop_with_openvpn_server: cannot create a network namespace here");
        return;
    }
    // Re-run this very test inside a fresh network namespace.
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(exe)
        .args([
            "--exact",
            "interop_with_openvpn_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, "1")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "interop run failed (see output above)");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("interop run timed out");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the server on every exit path.
struct ServerProc {
    child: Child,
    log: PathBuf,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

struct Files {
    dir: PathBuf,
    ca_pem: String,
    client_cert: String,
    client_key: String,
}

fn write_pki(dir: &Path) -> Files {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Interop CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let mk = |cn: &str, eku: ExtendedKeyUsagePurpose| {
        let k = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        let c = p.signed_by(&k, &issuer).unwrap();
        (c.pem(), k.serialize_pem())
    };
    let (scert, skey) = mk("interop-server", ExtendedKeyUsagePurpose::ServerAuth);
    let (ccert, ckey) = mk("interop-client", ExtendedKeyUsagePurpose::ClientAuth);
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), scert).unwrap();
    std::fs::write(dir.join("server.key"), skey).unwrap();
    Files {
        dir: dir.to_path_buf(),
        ca_pem: ca.pem(),
        client_cert: ccert,
        client_key: ckey,
    }
}

fn start_server(f: &Files, name: &str, extra: &str) -> ServerProc {
    let conf = f.dir.join(format!("{name}.conf"));
    let log = f.dir.join(format!("{name}.log"));
    std::fs::write(
        &conf,
        format!(
            "port 1194\nproto udp4\nlocal 127.0.0.1\ndev tun\ntopology subnet\n\
             server 10.8.0.0 255.255.255.0\nca ca.crt\ncert server.crt\nkey server.key\n\
             dh none\nkeepalive 1 5\ndata-ciphers AES-256-GCM:CHACHA20-POLY1305\n\
             push \"route 192.168.77.0 255.255.255.0\"\nexplicit-exit-notify 1\nverb 4\n{extra}\n"
        ),
    )
    .unwrap();
    let child = Command::new("openvpn")
        .current_dir(&f.dir)
        .arg("--config")
        .arg(&conf)
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = ServerProc { child, log };
    assert!(
        s.wait_for("Initialization Sequence Completed", Duration::from_secs(15)),
        "server did not start:\n{}",
        s.log_text()
    );
    s
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"ovpn-core interop payload");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

fn icmp6_echo(src: Ipv6Addr, dst: Ipv6Addr, seq: u16) -> Vec<u8> {
    let mut icmp = vec![128, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"ovpn-core interop v6");
    // Checksum over the pseudo header (src, dst, length, next header 58) and the message.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&icmp);
    let c = checksum(&pseudo);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[58, 64]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&icmp);
    ip
}

/// The link to the server: UDP datagrams or TCP with u16 length framing.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, TcpFramer),
}

impl Link {
    fn send(&mut self, pkt: &[u8]) {
        match self {
            Link::Udp(s) => {
                let _ = s.send(pkt);
            }
            Link::Tcp(s, _) => {
                let mut out = Vec::with_capacity(pkt.len() + 2);
                frame_tcp(pkt, &mut out).unwrap();
                let _ = s.write_all(&out);
            }
        }
    }

    /// One packet into `buf` (returns its length), or None on timeout.
    fn recv(&mut self, buf: &mut Vec<u8>, wait: Duration) -> Option<usize> {
        match self {
            Link::Udp(s) => {
                buf.resize(4096, 0);
                s.set_read_timeout(Some(wait)).unwrap();
                s.recv(buf).ok()
            }
            Link::Tcp(s, framer) => {
                if framer.pop_into(buf).unwrap() {
                    return Some(buf.len());
                }
                s.set_read_timeout(Some(wait)).unwrap();
                let mut tmp = [0u8; 4096];
                match s.read(&mut tmp) {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        framer.push(&tmp[..n]);
                        framer.pop_into(buf).unwrap().then_some(buf.len())
                    }
                }
            }
        }
    }
}

/// Blocking driver around the client.
struct Driver {
    client: Client,
    link: Link,
    events: Vec<Event>,
    tun_in: Vec<Vec<u8>>,
}

impl Driver {
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some(p) = self.client.poll_transmit(now) {
            self.link.send(&p);
        }
        while let Some(e) = self.client.poll_event() {
            eprintln!("event: {e:?}");
            self.events.push(e);
        }
    }

    fn run(&mut self, limit: Duration, mut done: impl FnMut(&Driver) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = Vec::with_capacity(4096);
        loop {
            self.flush();
            if done(self) {
                return true;
            }
            if self.client.is_closed() || Instant::now() >= end {
                return done(self);
            }
            let now = Instant::now();
            let wake = self.client.poll_timeout().unwrap_or(end).min(end);
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            match self.link.recv(&mut buf, wait) {
                Some(n) => {
                    if let Some(r) = self.client.handle_packet(Instant::now(), &mut buf[..n]) {
                        self.tun_in.push(buf[r].to_vec());
                    }
                }
                None => self.client.handle_timeout(Instant::now()),
            }
        }
    }

    fn send_tun(&mut self, pkt: &[u8]) {
        let mut buf = Vec::with_capacity(DATA_HEADROOM + pkt.len() + DATA_TAILROOM);
        buf.resize(DATA_HEADROOM, 0);
        buf.extend_from_slice(pkt);
        let off = self
            .client
            .handle_tun_packet(Instant::now(), &mut buf, DATA_HEADROOM)
            .expect("connected client encrypts");
        self.link.send(&buf[off..]);
    }

    /// Ping the server's tun address through the tunnel; true if a reply came back.
    fn ping(&mut self, local: Ipv4Addr, seq: u16) -> bool {
        self.send_tun(&icmp_echo(local, Ipv4Addr::new(10, 8, 0, 1), seq));
        let before = self.tun_in.len();
        self.run(Duration::from_secs(3), |d| {
            d.tun_in[before..]
                .iter()
                .any(|p| p.len() >= 28 && p[9] == 1 && p[20] == 0 && p[26..28] == seq.to_be_bytes())
        })
    }

    /// IPv6 echo through the tunnel; true if the reply came back.
    fn ping6(&mut self, local: Ipv6Addr, remote: Ipv6Addr, seq: u16) -> bool {
        self.send_tun(&icmp6_echo(local, remote, seq));
        let before = self.tun_in.len();
        self.run(Duration::from_secs(3), |d| {
            d.tun_in[before..].iter().any(|p| {
                p.len() >= 48
                    && p[0] >> 4 == 6
                    && p[6] == 58
                    && p[40] == 129
                    && p[46..48] == seq.to_be_bytes()
            })
        })
    }

    fn renewed(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::KeysRenewed { .. }))
            .count()
    }
}

fn start_client(f: &Files, wrap: TlsWrap, tweak: impl FnOnce(&mut ClientConfig)) -> Driver {
    let mut cfg = ClientConfig {
        remote_addr: Some("127.0.0.1".parse().unwrap()),
        tls_wrap: wrap,
        ca_pem: Some(f.ca_pem.clone()),
        identity: ClientIdentity::Pem {
            cert_chain: f.client_cert.clone(),
            key: f.client_key.clone(),
            extra_certs: None,
            passphrase: None,
        },
        verify: VerifyOptions {
            remote_cert_tls_server: true,
            ..Default::default()
        },
        ..ClientConfig::default()
    };
    cfg.timers.explicit_exit_notify = Some(1);
    tweak(&mut cfg);
    let link = if cfg.transport == Transport::Tcp {
        let s = TcpStream::connect("127.0.0.1:1194").unwrap();
        s.set_nodelay(true).unwrap();
        Link::Tcp(s, TcpFramer::new(4096))
    } else {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect("127.0.0.1:1194").unwrap();
        Link::Udp(sock)
    };
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&unix.to_le_bytes());
    let client = Client::new(cfg, seed, Instant::now(), unix).unwrap();
    Driver {
        client,
        link,
        events: Vec::new(),
        tun_in: Vec::new(),
    }
}

fn connect(f: &Files, wrap: TlsWrap, tweak: impl FnOnce(&mut ClientConfig)) -> Driver {
    let mut d = start_client(f, wrap, tweak);
    assert!(
        d.run(Duration::from_secs(20), |d| d.client.stage()
            == Stage::Connected),
        "not connected: {:?}",
        d.events
    );
    d
}

fn disconnect_reason(d: &Driver) -> Option<DisconnectReason> {
    d.events.iter().find_map(|e| match e {
        Event::Disconnected(r) => Some(r.clone()),
        _ => None,
    })
}

fn local_addr(d: &Driver) -> Ipv4Addr {
    d.client.pushed_options().unwrap().ifconfig.unwrap().0
}

fn inner() {
    assert!(Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let dir = std::env::temp_dir().join(format!("ovpn-core-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = write_pki(&dir);
    assert!(Command::new("openvpn")
        .args(["--genkey", "tls-crypt"])
        .arg(dir.join("tc.key"))
        .status()
        .unwrap()
        .success());
    let tc = StaticKey::parse_pem(&std::fs::read_to_string(dir.join("tc.key")).unwrap()).unwrap();

    // 1. tls-crypt, server-initiated renegotiation every 6 s.
    {
        let server = start_server(&f, "tlscrypt", "tls-crypt tc.key\nreneg-sec 6");
        let mut d = connect(
            &f,
            TlsWrap::Crypt {
                key: tc.as_bytes().to_vec(),
            },
            |_| {},
        );
        let o = d.client.pushed_options().unwrap().clone();
        assert_eq!(o.routes.len(), 1, "{o:?}");
        assert_eq!(o.cipher.as_deref(), Some("AES-256-GCM"));
        assert!(o.uses_tls_ekm() && o.protocol_flags.cc_exit);
        assert_eq!((o.ping, o.ping_restart), (Some(1), Some(5)));
        let me = local_addr(&d);
        assert!(d.ping(me, 1), "no ICMP reply through the tunnel");
        // Keep traffic flowing across at least one server soft reset.
        let mut seq = 2;
        let end = Instant::now() + Duration::from_secs(16);
        while Instant::now() < end && d.renewed() < 1 {
            assert!(d.ping(me, seq), "ping {seq} lost; events {:?}", d.events);
            seq += 1;
            d.run(Duration::from_millis(500), |_| false);
        }
        assert!(
            d.renewed() >= 1,
            "no renegotiation; server log:\n{}",
            server.log_text()
        );
        for _ in 0..3 {
            assert!(d.ping(me, seq), "ping after renegotiation lost");
            seq += 1;
        }
        assert!(!d.client.is_closed(), "{:?}", d.events);
        d.client.close(Instant::now());
        d.run(Duration::from_secs(3), |d| d.client.is_closed());
        assert!(d.client.is_closed());
        let log = server.log_text();
        assert!(!log.contains("Authenticate/Decrypt packet error"), "{log}");
        assert!(
            server.wait_for("peer-id", Duration::from_secs(1)),
            "server never saw the client:\n{log}"
        );
        let st = d.client.stats();
        eprintln!("stats: {st:?}");
        assert_eq!(st.dropped_auth_failed + st.dropped_malformed, 0);
    }

    // 2. tls-auth (key-direction 1) with auth SHA256, CHACHA20, client-initiated renegotiation.
    {
        let server = start_server(
            &f,
            "tlsauth",
            "tls-auth tc.key 0\nauth SHA256\ndata-ciphers CHACHA20-POLY1305",
        );
        let mut d = connect(
            &f,
            TlsWrap::Auth {
                key: tc.as_bytes().to_vec(),
                key_direction: Some(1),
            },
            |c| {
                c.auth_digest = "SHA256".into();
                c.timers.reneg_sec = Some(Duration::from_secs(4));
            },
        );
        assert_eq!(
            d.client.pushed_options().unwrap().cipher.as_deref(),
            Some("CHACHA20-POLY1305")
        );
        let me = local_addr(&d);
        let mut seq = 100;
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end && d.renewed() < 1 {
            assert!(d.ping(me, seq), "ping {seq} lost; events {:?}", d.events);
            seq += 1;
            d.run(Duration::from_millis(500), |_| false);
        }
        assert!(
            d.renewed() >= 1,
            "no renegotiation; server log:\n{}",
            server.log_text()
        );
        assert!(d.ping(me, seq), "ping after renegotiation lost");
    }
    // 3. tls-crypt-v2 with force-cookie (WKC resend), dynamic tls-crypt on renegotiation.
    {
        assert!(Command::new("openvpn")
            .args(["--genkey", "tls-crypt-v2-server"])
            .arg(dir.join("v2srv.key"))
            .status()
            .unwrap()
            .success());
        assert!(Command::new("openvpn")
            .arg("--tls-crypt-v2")
            .arg(dir.join("v2srv.key"))
            .args(["--genkey", "tls-crypt-v2-client"])
            .arg(dir.join("v2cli.key"))
            .status()
            .unwrap()
            .success());
        let k = TlsCryptV2ClientKey::parse_pem(
            &std::fs::read_to_string(dir.join("v2cli.key")).unwrap(),
        )
        .unwrap();
        let mut blob = k.key.as_bytes().to_vec();
        blob.extend_from_slice(&k.wkc);
        let server = start_server(&f, "v2", "tls-crypt-v2 v2srv.key force-cookie\nreneg-sec 5");
        let mut d = connect(&f, TlsWrap::CryptV2 { client_key: blob }, |c| {
            c.dynamic_tls_crypt = true;
        });
        assert!(
            d.client
                .pushed_options()
                .unwrap()
                .protocol_flags
                .dyn_tls_crypt
        );
        let me = local_addr(&d);
        let mut seq = 200;
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end && d.renewed() < 2 {
            assert!(d.ping(me, seq), "ping {seq} lost; events {:?}", d.events);
            seq += 1;
            d.run(Duration::from_millis(500), |_| false);
        }
        assert!(
            d.renewed() >= 2,
            "dynamic tls-crypt renegotiation failed; server log:\n{}",
            server.log_text()
        );
        assert!(d.ping(me, seq), "ping after renegotiation lost");
    }

    // 4. TCP, no wrapping, username/password, compress stub-v2, legacy AES-256-CBC + SHA256.
    {
        std::fs::write(
            dir.join("auth.sh"),
            "#!/bin/sh\nu=$(sed -n 1p \"$1\"); p=$(sed -n 2p \"$1\")\n[ \"$u\" = alice ] && [ \"$p\" = s3cret ]\n",
        )
        .unwrap();
        assert!(Command::new("chmod")
            .args(["+x"])
            .arg(dir.join("auth.sh"))
            .status()
            .unwrap()
            .success());
        let conf = "proto tcp4-server\nscript-security 2\nauth-user-pass-verify ./auth.sh via-file\n\
                    verify-client-cert none\nusername-as-common-name\ncompress stub-v2\npush \"compress stub-v2\"\n\
                    data-ciphers AES-256-CBC\nauth SHA256";
        let server = start_server(&f, "tcp", conf);
        let tweak = |pw: &'static str| {
            move |c: &mut ClientConfig| {
                c.transport = Transport::Tcp;
                c.identity = ClientIdentity::None;
                c.credentials = Some(Credentials {
                    username: "alice".into(),
                    password: pw.into(),
                });
                c.compression = Compression::StubV2;
                c.data_ciphers = vec!["AES-256-CBC".into()];
                c.auth_digest = "SHA256".into();
            }
        };
        let mut d = connect(&f, TlsWrap::None, tweak("s3cret"));
        let me = local_addr(&d);
        for seq in 300..303 {
            assert!(
                d.ping(me, seq),
                "TCP ping {seq} lost; server log:\n{}",
                server.log_text()
            );
        }
        d.client.close(Instant::now());
        d.flush();
        // Wrong password: AUTH_FAILED.
        let mut d = start_client(&f, TlsWrap::None, tweak("wrong"));
        d.run(Duration::from_secs(20), |d| d.client.is_closed());
        assert!(
            matches!(
                disconnect_reason(&d),
                Some(DisconnectReason::AuthFailed { .. })
            ),
            "{:?}",
            d.events
        );
    }

    // 5. Wrong tls-crypt key: no answer, clear reason.
    {
        let _server = start_server(&f, "badtc", "tls-crypt tc.key");
        let mut wrong = tc.as_bytes().to_vec();
        wrong[200] ^= 0xff;
        let mut d = start_client(&f, TlsWrap::Crypt { key: wrong }, |c| {
            c.timers.hand_window = Duration::from_secs(3);
        });
        d.run(Duration::from_secs(10), |d| d.client.is_closed());
        assert_eq!(
            disconnect_reason(&d),
            Some(DisconnectReason::NoServerReply { secs: 3 })
        );
    }

    // 7. What a real server pushes: IPv6, redirect-gateway, DNS (dhcp-option and 2.6 `dns`),
    // comp-lzo no; everything parses (nothing unknown), IPv6 echo through the tunnel.
    {
        let server = start_server(
            &f,
            "push",
            "tls-crypt tc.key\nserver-ipv6 fd00:8::/64\ncomp-lzo no\npush \"comp-lzo no\"\n\
             push \"redirect-gateway def1 bypass-dhcp ipv6\"\npush \"dhcp-option DNS 10.8.0.1\"\n\
             push \"dhcp-option DOMAIN corp.example\"\npush \"dns server 0 address 10.8.0.1 [fd00:8::1]:5353\"\n\
             push \"dns search-domains corp.example\"\npush \"route-ipv6 fd00:99::/64\"",
        );
        let mut d = connect(
            &f,
            TlsWrap::Crypt {
                key: tc.as_bytes().to_vec(),
            },
            |c| c.compression = Compression::LzoNo,
        );
        let o = d.client.pushed_options().unwrap().clone();
        assert!(o.unknown.is_empty(), "unparsed: {:?}", o.unknown);
        let (v6, bits, _) = o.ifconfig_ipv6.expect("ifconfig-ipv6");
        assert_eq!(bits, 64);
        let rg = o.redirect_gateway.clone().unwrap();
        assert!(rg.def1 && rg.bypass_dhcp && rg.ipv6);
        assert!(o.dhcp_options.len() >= 2, "{:?}", o.dhcp_options);
        assert_eq!(o.dns.search_domains, vec!["corp.example".to_string()]);
        assert!(
            o.dns.servers[&0].addresses.len() == 2,
            "{:?}",
            o.dns.servers
        );
        assert!(o.routes_ipv6.iter().any(|r| r.prefix_len == 64));
        assert_eq!(o.compression, Some(Compression::LzoNo));
        let me = local_addr(&d);
        assert!(d.ping(me, 400), "IPv4 ping with comp-lzo framing lost");
        assert!(
            d.ping6(v6, "fd00:8::1".parse().unwrap(), 401),
            "IPv6 ping lost; server log:\n{}",
            server.log_text()
        );
    }

    // 6. A server TLS setting rustls cannot meet (TLS <= 1.1): the server drops the
    // session without sending its alert, so the client reports a hand-window
    // timeout that names the likely causes.
    {
        let _server = start_server(&f, "tls11", "tls-crypt tc.key\ntls-version-max 1.1");
        let mut d = start_client(
            &f,
            TlsWrap::Crypt {
                key: tc.as_bytes().to_vec(),
            },
            |c| c.timers.hand_window = Duration::from_secs(4),
        );
        d.run(Duration::from_secs(10), |d| d.client.is_closed());
        let r = disconnect_reason(&d);
        assert_eq!(r, Some(DisconnectReason::HandshakeTimeout { secs: 4 }));
        assert!(r.unwrap().to_string().contains("TLS version"));
    }

    let _ = std::fs::remove_dir_all(&dir);
}
