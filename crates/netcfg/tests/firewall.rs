//! Root-only: the kill switch for real, in two network namespaces this test creates
//! ("cli" and "lan" linked by a veth), captured with tcpdump on the lan side.
//! Skips with a notice when not root or when nft/tcpdump are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netcfg::firewall::{self, Endpoint, Firewall, FirewallOptions, FirewallPolicy, Transport};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!(
                "SKIP {}: needs root (network namespaces, nftables)",
                module_path!()
            );
            return;
        }
        if !have("nft") || !have("tcpdump") {
            eprintln!(
                "SKIP {}: needs nft and tcpdump (cargo xtask deps)",
                module_path!()
            );
            return;
        }
    };
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SERVER: &str = "198.18.0.1";
const INTERNET: &str = "203.0.113.5";
const ROGUE: &str = "10.0.0.3";
const LAN_GW: &str = "192.168.1.1";
const LAN_GW6: &str = "fd00:1::1";

/// cli: eth0 192.168.1.2/24 + fd00:1::2/64, default via 192.168.1.1, and a "rogue" route
/// 10.0.0.0/8 via 192.168.1.1 as DHCP option 121 would push. lan: lan0 192.168.1.1/24 +
/// fd00:1::1/64 also holding the "server", "internet" and "rogue" addresses (so it answers).
struct Lab {
    cli: String,
    lan: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Self {
            cli: format!("oxfw-{tag}-c-{id}"),
            lan: format!("oxfw-{tag}-l-{id}"),
            dir: tempfile::tempdir().unwrap(),
        };
        let (c, l) = (lab.cli.as_str(), lab.lan.as_str());
        sh(&["ip", "netns", "add", c]);
        sh(&["ip", "netns", "add", l]);
        for n in [c, l] {
            sh(&[
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
            ]);
            sh(&[
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip", "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns",
            l,
        ]);
        sh(&[
            "ip",
            "-n",
            c,
            "addr",
            "add",
            "192.168.1.2/24",
            "dev",
            "eth0",
        ]);
        sh(&[
            "ip",
            "-n",
            c,
            "addr",
            "add",
            "fd00:1::2/64",
            "dev",
            "eth0",
            "nodad",
        ]);
        sh(&["ip", "-n", c, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            l,
            "addr",
            "add",
            "192.168.1.1/24",
            "dev",
            "lan0",
        ]);
        sh(&[
            "ip",
            "-n",
            l,
            "addr",
            "add",
            "fd00:1::1/64",
            "dev",
            "lan0",
            "nodad",
        ]);
        for a in [SERVER, INTERNET, ROGUE] {
            sh(&[
                "ip",
                "-n",
                l,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "lan0",
            ]);
        }
        sh(&["ip", "-n", l, "link", "set", "lan0", "up"]);
        sh(&["ip", "-n", c, "route", "add", "default", "via", LAN_GW]);
        sh(&["ip", "-n", c, "route", "add", "10.0.0.0/8", "via", LAN_GW]);
        sh(&[
            "ip", "-n", c, "-6", "route", "add", "default", "via", LAN_GW6,
        ]);
        lab
    }

    fn opts(&self) -> FirewallOptions {
        FirewallOptions {
            journal_path: self.dir.path().join("firewall.json"),
            table: firewall::DEFAULT_TABLE.into(),
        }
    }

    /// Runs `f` on a new thread inside the client namespace (children inherit it).
    fn in_cli<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.cli);
        let h = std::thread::spawn(move || {
            let fd = File::open(&path).unwrap();
            // SAFETY: valid namespace fd; affects only this thread.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        });
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// tcpdump of what the client sends to lan0 (`-Q in`), without ARP, IPv6 ND / MLD and DHCP (what a LAN always carries).
    fn capture(&self) -> Capture {
        let out = self
            .dir
            .path()
            .join(format!("cap-{}.txt", Instant::now().elapsed().as_nanos()));
        let err = out.with_extension("err");
        let child = Command::new("ip")
            .args([
                "netns", "exec", &self.lan, "tcpdump", "-i", "lan0", "-Q", "in", "-n", "-l", "-p",
            ])
            .arg(
                "not arp and not (udp port 67 or udp port 68) and \
                 not (icmp6 and (ip6[40] >= 130 and ip6[40] <= 143)) and not ip6 proto 0",
            )
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let cap = Capture { child, out, err };
        let t0 = Instant::now();
        while !std::fs::read_to_string(&cap.err)
            .unwrap()
            .contains("listening on")
        {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "tcpdump did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cap
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in [&self.cli, &self.lan] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

struct Capture {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Stops tcpdump once a line containing `last` (the last packet the test sent) was
    /// printed (bounded wait: a loaded CI box prints late), and returns its lines.
    fn finish_after(self, last: &str) -> Vec<String> {
        let t0 = Instant::now();
        while !self.lines().iter().any(|l| l.contains(last))
            && t0.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish()
    }

    /// Stops tcpdump (after the packets in flight arrived) and returns its lines.
    fn finish(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) on the pid of our own child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if t0.elapsed() > Duration::from_secs(3) {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.lines()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn policy(tun: &str) -> FirewallPolicy {
    FirewallPolicy {
        endpoints: vec![Endpoint {
            addr: SERVER.parse().unwrap(),
            port: 1194,
            transport: Transport::Udp,
        }],
        tunnel_iface: Some(tun.into()),
        allow_lan: false,
        lan_prefixes: Vec::new(),
        tunnel_ipv6: false,
        endpoint_mark: None,
    }
}

/// Sends one UDP datagram; `Err` is what the firewall's drop looks like locally (EPERM).
fn udp(dst: &str, port: u16) -> std::io::Result<usize> {
    let dst: IpAddr = dst.parse().unwrap();
    let bind: SocketAddr = if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .unwrap();
    UdpSocket::bind(bind)?.send_to(b"oxivpn-leak-probe", SocketAddr::new(dst, port))
}

fn ping(dst: &str) -> bool {
    Command::new("ping")
        .args(["-c", "1", "-W", "1", dst])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Every probe a kill switch must stop (the rogue-route one proves that a pushed route
/// makes nothing "LAN").
fn leak_probes() {
    let _ = ping(INTERNET);
    let _ = udp(INTERNET, 4444);
    let _ = udp(LAN_GW, 53);
    let _ = TcpStream::connect_timeout(
        &"192.168.1.1:53".parse().unwrap(),
        Duration::from_millis(200),
    );
    let _ = udp(LAN_GW6, 4444);
    let _ = udp(ROGUE, 4444);
    let _ = ping(ROGUE);
}

fn table_present() -> bool {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("table inet oxivpn")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn dummy_tun() -> (tokio::runtime::Runtime, netcfg::Tun) {
    let rt = runtime();
    let tun = {
        let _enter = rt.enter();
        netcfg::Tun::create(&netcfg::TunConfig::default()).unwrap()
    };
    let name = tun.iface().name.clone();
    sh(&["ip", "addr", "add", "10.8.0.2/24", "dev", &name]);
    sh(&["ip", "link", "set", &name, "up"]);
    (rt, tun)
}

#[test]
fn kill_switch_stops_every_leak_but_lets_the_tunnel_through() {
    require_root!();
    let lab = Lab::new("leak");
    let opts = lab.opts();
    let cap = lab.capture();
    let journal = opts.journal_path.clone();
    let (remaining, flows_again) = lab.in_cli(move || {
        let (_rt, tun) = dummy_tun();
        let mut fw = Firewall::new(&opts).unwrap();
        let t0 = Instant::now();
        fw.apply(&policy(&tun.iface().name)).unwrap();
        eprintln!("Firewall::apply: {:?}", t0.elapsed());
        assert!(table_present());
        assert!(
            Path::new(&opts.journal_path).exists(),
            "journaled before applying"
        );
        leak_probes();
        assert!(
            udp(INTERNET, 4444).is_err(),
            "a drop in output fails the send locally"
        );
        // The tunnel's own packets and the tunnel itself.
        udp(SERVER, 1194).expect("the server endpoint is allowed");
        udp("10.8.0.1", 4444).expect("traffic into the TUN is allowed");
        // Same server, other port or protocol: blocked.
        assert!(udp(SERVER, 1195).is_err());
        let lines = cap.finish_after("> 198.18.0.1.1194: UDP");
        fw.remove().unwrap();
        assert!(!table_present());
        (lines, ping(INTERNET))
    });
    eprintln!("captured:\n{}", remaining.join("\n"));
    assert!(
        remaining
            .iter()
            .any(|l| l.contains("192.168.1.2.") && l.contains("> 198.18.0.1.1194: UDP")),
        "the server endpoint packet must reach the LAN: {remaining:?}"
    );
    let leaks: Vec<_> = remaining
        .iter()
        .filter(|l| !l.contains("198.18.0.1.1194"))
        .collect();
    assert!(leaks.is_empty(), "leaked: {leaks:?}");
    assert!(flows_again, "after remove() traffic flows again");
    // The same probes without the kill switch: the capture sees every one of them (so the
    // empty capture above is the firewall's doing, not the filter's).
    let cap = lab.capture();
    lab.in_cli(leak_probes);
    let open = cap.finish_after("> 10.0.0.3: ICMP echo request");
    for want in [
        "> 203.0.113.5: ICMP echo request",
        "> 203.0.113.5.4444: UDP",
        "> 192.168.1.1.53:",
        "> fd00:1::1.4444: UDP",
        "> 10.0.0.3.4444: UDP",
    ] {
        assert!(
            open.iter().any(|l| l.contains(want)),
            "no {want:?} in {open:?}"
        );
    }
    assert!(!journal.exists(), "remove() clears the journal");
}

#[test]
fn allow_lan_opens_the_attached_subnet_but_not_a_rogue_route_or_dns() {
    require_root!();
    let lab = Lab::new("lan");
    let opts = lab.opts();
    let cap = lab.capture();
    let (lines, lan_ping, prefixes) = lab.in_cli(move || {
        let (_rt, tun) = dummy_tun();
        let prefixes = firewall::lan_prefixes(&[tun.iface().index]).unwrap();
        let mut p = policy(&tun.iface().name);
        p.allow_lan = true;
        p.lan_prefixes = prefixes.clone();
        let mut fw = Firewall::new(&opts).unwrap();
        fw.apply(&p).unwrap();
        let lan_ping = ping(LAN_GW);
        leak_probes();
        assert!(udp(ROGUE, 4444).is_err());
        udp(LAN_GW, 4445).expect("LAN access");
        let lines = cap.finish_after("> 192.168.1.1.4445: UDP");
        fw.remove().unwrap();
        (lines, lan_ping, prefixes)
    });
    eprintln!("prefixes {prefixes:?}\ncaptured:\n{}", lines.join("\n"));
    assert!(prefixes.contains(&"192.168.1.0/24".parse().unwrap()));
    assert!(prefixes
        .iter()
        .all(|p| !p.contains(&ROGUE.parse::<IpAddr>().unwrap())));
    assert!(lan_ping, "LAN access: ping 192.168.1.1 passes");
    assert!(lines
        .iter()
        .any(|l| l.contains("> 192.168.1.1: ICMP echo request")));
    let leaks: Vec<_> = lines
        .iter()
        .filter(|l| {
            !l.contains("> 192.168.1.1: ICMP echo request")
                && !l.contains("> 192.168.1.1.4445: UDP")
        })
        .collect();
    assert!(leaks.is_empty(), "leaked with allow_lan: {leaks:?}");
}

#[test]
fn a_crash_leaves_the_kill_switch_until_the_helper_recovers_and_removes_it() {
    require_root!();
    let lab = Lab::new("crash");
    let opts = lab.opts();
    lab.in_cli(move || {
        assert!(
            Firewall::recover(&opts).unwrap().is_none(),
            "nothing to recover at first"
        );
        let (_rt, tun) = dummy_tun();
        let mut fw = Firewall::new(&opts).unwrap();
        fw.apply(&policy(&tun.iface().name)).unwrap();
        // Re-applying (reconnect to a new TUN / server) replaces the table in place.
        let mut p = policy(&tun.iface().name);
        p.endpoints[0].port = 443;
        fw.apply(&p).unwrap();
        assert!(udp(SERVER, 1194).is_err() && udp(SERVER, 443).is_ok());
        drop(fw); // the helper crashed: no remove()
        drop(tun);
        assert!(table_present(), "the kill switch survives the crash");
        assert!(!ping(INTERNET), "still blocking after the crash");
        assert!(matches!(
            Firewall::new(&opts),
            Err(netcfg::Error::JournalExists { .. })
        ));
        let mut fw = Firewall::recover(&opts)
            .unwrap()
            .expect("a leftover to decide about");
        assert!(fw.is_active().unwrap());
        fw.remove().unwrap();
        assert!(!table_present());
        assert!(ping(INTERNET), "traffic flows after recover + remove");
        assert!(Firewall::recover(&opts).unwrap().is_none());

        // A table without its journal (journal lost) is still found and removable.
        let mut fw = Firewall::new(&opts).unwrap();
        fw.apply(&policy("oxi-none")).unwrap();
        std::fs::remove_file(&opts.journal_path).unwrap();
        let mut fw2 = Firewall::recover(&opts)
            .unwrap()
            .expect("table without journal");
        fw2.remove().unwrap();
        assert!(!table_present());
        drop(fw);
    });
}

/// Connections tracked in the current network namespace (0 when conntrack never started).
fn tracked_connections() -> u64 {
    std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn connection_tracking_starts_only_for_a_machine_that_forwards() {
    require_root!();
    let lab = Lab::new("ct");
    let opts = lab.opts();
    lab.in_cli(move || {
        let list = || {
            let out = Command::new("nft")
                .args(["list", "table", "inet", firewall::DEFAULT_TABLE])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // A new namespace does not forward: no `ct` rule, so conntrack stays off and the
        // tunnel's packets are not tracked.
        let mut fw = Firewall::new(&opts).unwrap();
        fw.apply(&policy("oxi-t0")).unwrap();
        let table = list();
        assert!(table.contains("chain forward"), "{table}");
        assert!(!table.contains("ct state"), "{table}");
        udp(SERVER, 1194).expect("the server endpoint is allowed");
        assert_eq!(
            tracked_connections(),
            0,
            "conntrack started without a ct rule"
        );
        // Forwarding on, applied again (as a reconnect does): replies from the tunnel are
        // let back through by state, which tracks connections from then on.
        sh(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        fw.apply(&policy("oxi-t0")).unwrap();
        let table = list();
        assert!(
            table.contains("iifname \"oxi-t0\" ct state established,related accept"),
            "{table}"
        );
        udp(SERVER, 1194).expect("the server endpoint is allowed");
        assert!(tracked_connections() >= 1, "the ct rule starts conntrack");
        fw.remove().unwrap();
    });
}

/// The rules nft itself compiles from this text are the policy of
/// `kernel_rules_are_what_nft_makes_of_the_readable_ruleset` in nft's words (the ND types
/// and the broadcast/multicast pair one rule each, as our batch writes them).
const REFERENCE_RULESET: &str = r#"
table inet oxiref {
  chain output {
    type filter hook output priority 0; policy drop;
    oifname "lo" accept comment "loopback"
    oifname "oxi-t0" meta nfproto ipv6 drop comment "the tunnel carries no IPv6"
    oifname "oxi-t0" accept comment "into the tunnel"
    ip daddr 198.18.0.1 udp dport 1194 meta mark 0x6f78 accept comment "VPN server udp 198.18.0.1:1194"
    ip6 daddr 2001:db8::1 tcp dport 443 meta mark 0x6f78 accept comment "VPN server tcp [2001:db8::1]:443"
    meta nfproto ipv4 udp sport 68 udp dport 67 accept comment "DHCP"
    ip6 hoplimit 255 icmpv6 type nd-router-solicit accept comment "IPv6 neighbour discovery / router solicitation"
    ip6 hoplimit 255 icmpv6 type nd-neighbor-solicit accept comment "IPv6 neighbour discovery / router solicitation"
    ip6 hoplimit 255 icmpv6 type nd-neighbor-advert accept comment "IPv6 neighbour discovery / router solicitation"
    udp dport 53 drop comment "DNS (udp) only through the tunnel"
    tcp dport 53 drop comment "DNS (tcp) only through the tunnel"
    meta nfproto ipv6 drop comment "the tunnel carries no IPv6"
    ip daddr 172.16.0.0/12 accept comment "LAN 172.16.0.0/12"
    ip daddr 192.168.1.0/24 accept comment "LAN 192.168.1.0/24"
    ip daddr 255.255.255.255 accept comment "LAN broadcast / link-local multicast"
    ip daddr 224.0.0.0/24 accept comment "LAN broadcast / link-local multicast"
    counter drop comment "kill switch"
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    oifname "oxi-t0" meta nfproto ipv6 drop comment "the tunnel carries no IPv6"
    oifname "oxi-t0" accept comment "into the tunnel"
    iifname "oxi-t0" ct state established,related accept comment "replies from the tunnel"
    udp dport 53 drop comment "DNS (udp) only through the tunnel"
    tcp dport 53 drop comment "DNS (tcp) only through the tunnel"
    meta nfproto ipv6 drop comment "the tunnel carries no IPv6"
    ip daddr 172.16.0.0/12 accept comment "LAN 172.16.0.0/12"
    ip daddr 192.168.1.0/24 accept comment "LAN 192.168.1.0/24"
    ip daddr 255.255.255.255 accept comment "LAN broadcast / link-local multicast"
    ip daddr 224.0.0.0/24 accept comment "LAN broadcast / link-local multicast"
    counter drop comment "kill switch"
  }
}
"#;

/// `nft --debug=netlink list table`: every rule's register program, with the table name
/// and rule handles taken out so two tables can be compared.
fn bytecode(table: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["--debug=netlink", "list", "table", "inet", table])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.replace(table, "T"))
        .map(|l| {
            // "inet T output 4" -> "inet T output": handles differ between tables.
            if l.starts_with("inet T ") {
                l.rsplit_once(' ').map(|(a, _)| a.to_owned()).unwrap_or(l)
            } else {
                l
            }
        })
        .map(|l| l.replace("# handle", "#"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn kernel_rules_are_what_nft_makes_of_the_readable_ruleset() {
    require_root!();
    let lab = Lab::new("nl");
    let opts = lab.opts();
    let (ours, theirs) = lab.in_cli(move || {
        // A machine that routes: the forward chain gets its stateful reply rule.
        sh(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let p = FirewallPolicy {
            endpoints: vec![
                Endpoint {
                    addr: SERVER.parse().unwrap(),
                    port: 1194,
                    transport: Transport::Udp,
                },
                Endpoint {
                    addr: "2001:db8::1".parse().unwrap(),
                    port: 443,
                    transport: Transport::Tcp,
                },
            ],
            tunnel_iface: Some("oxi-t0".into()),
            allow_lan: true,
            lan_prefixes: vec![
                "192.168.1.0/24".parse().unwrap(),
                "172.16.0.0/12".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            tunnel_ipv6: false,
            endpoint_mark: Some(0x6f78),
        };
        let mut fw = Firewall::new(&opts).unwrap();
        fw.apply(&p).unwrap();
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(REFERENCE_RULESET.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        let ours = bytecode(firewall::DEFAULT_TABLE);
        let theirs = bytecode("oxiref");
        sh(&["nft", "delete", "table", "inet", "oxiref"]);
        fw.remove().unwrap();
        assert!(!fw.is_active().unwrap());
        (ours, theirs)
    });
    assert!(ours.len() > 40, "{ours:#?}");
    for (i, (a, b)) in ours.iter().zip(theirs.iter()).enumerate() {
        assert_eq!(
            a,
            b,
            "line {i} differs\nours:\n{}\nnft's:\n{}",
            ours.join("\n"),
            theirs.join("\n")
        );
    }
    assert_eq!(ours.len(), theirs.len());
}
