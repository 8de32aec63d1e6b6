//! The reference scenario of `TESTBED.md` (and its direct variant) in network namespaces.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::netns::{lab_prefix, Netns};
use crate::ping::{ping, PingStats};
use crate::process::Proc;

/// Which network the lab builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// cli -- lan (router) -- srv -- tgt; the router has no route to 10/8.
    Reference,
    /// cli on the server's link (198.18.0.2), no router: fewer hops, for benchmarks.
    Direct,
}

/// How the client namespace gets its IPv4 address (reference topology only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// 192.168.1.2/24, default via 192.168.1.1: fastest.
    Static,
    /// dhclient in `cli`, dnsmasq DHCP on the router.
    Dhcp,
    /// dhclient in `cli`, dnsmasq relay on the router, dnsmasq DHCP in a fifth
    /// namespace `dhcp` at 192.168.2.2 (one hop away from the client).
    DhcpRelay,
}

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct LabConfig {
    pub topology: Topology,
    pub addressing: Addressing,
    /// dnsmasq answering `test.example` (and `*.test.example`) with 10.0.0.3 on
    /// 10.0.0.3:53 in `tgt`.
    pub target_dns: bool,
}

impl LabConfig {
    /// The reference scenario with a static client address and no DNS server.
    pub fn reference() -> Self {
        Self {
            topology: Topology::Reference,
            addressing: Addressing::Static,
            target_dns: false,
        }
    }

    /// The direct variant (client on the server's link).
    pub fn direct() -> Self {
        Self {
            topology: Topology::Direct,
            addressing: Addressing::Static,
            target_dns: false,
        }
    }
}

/// The namespaces of a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Cli,
    Lan,
    Srv,
    Tgt,
    Dhcp,
}

impl Role {
    fn suffix(self) -> &'static str {
        match self {
            Role::Cli => "cli",
            Role::Lan => "lan",
            Role::Srv => "srv",
            Role::Tgt => "tgt",
            Role::Dhcp => "dhcp",
        }
    }
}

/// Addresses of the lab network (see `TESTBED.md`).
pub mod addr {
    pub const CLI_REFERENCE: &str = "192.168.1.2";
    pub const CLI_DIRECT: &str = "198.18.0.2";
    pub const ROUTER_LAN: &str = "192.168.1.1";
    pub const SERVER: &str = "198.18.0.1";
    pub const SERVER6: &str = "fd00:18::1";
    pub const SERVER_LAN: &str = "10.0.0.2";
    pub const TARGET: &str = "10.0.0.3";
    pub const TARGET6: &str = "fd00:10::3";
    pub const TUNNEL_SERVER: &str = "10.8.0.1";
    pub const TUNNEL_SERVER6: &str = "fd00:8::1";
    pub const DHCP_SERVER: &str = "192.168.2.2";
}

const DHCLIENT_SCRIPT: &str = r#"#!/bin/sh
# Lab dhclient script: sets the address and default route only; never writes resolv.conf.
case "$reason" in
  PREINIT)
    ip link set dev "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr flush dev "$interface"
    fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip -4 route replace default via "$r" dev "$interface"; break; done ;;
  EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface" ;;
esac
exit 0
"#;

/// A running lab. Dropping it kills every process it started and deletes its
/// namespaces (and the client's `/etc/netns` directory).
#[derive(Debug)]
pub struct Lab {
    // Field order is drop order: processes first, then namespaces, then files.
    procs: Vec<Proc>,
    namespaces: Vec<(Role, Netns)>,
    prefix: String,
    config: LabConfig,
    dhcp_lease: Option<PathBuf>,
    pub(crate) servers_started: u16,
    dir: tempfile::TempDir,
}

impl Lab {
    /// Builds the lab; on any error everything created so far is torn down again.
    pub fn start(config: LabConfig) -> anyhow::Result<Self> {
        let prefix = lab_prefix();
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .context("lab temp dir")?;
        // Debugging aid: keep configs and logs after the lab is gone.
        if std::env::var_os("OXIVPN_LAB_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("lab: keeping {}", dir.path().display());
        }
        let mut lab = Self {
            procs: Vec::new(),
            namespaces: Vec::new(),
            prefix,
            config,
            dhcp_lease: None,
            servers_started: 0,
            dir,
        };
        lab.build()
            .with_context(|| format!("building lab {}", lab.prefix))?;
        Ok(lab)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let roles: &[Role] = match (self.config.topology, self.config.addressing) {
            (Topology::Direct, _) => &[Role::Cli, Role::Srv, Role::Tgt],
            (Topology::Reference, Addressing::DhcpRelay) => {
                &[Role::Cli, Role::Lan, Role::Srv, Role::Tgt, Role::Dhcp]
            }
            (Topology::Reference, _) => &[Role::Cli, Role::Lan, Role::Srv, Role::Tgt],
        };
        for &role in roles {
            let ns = Netns::create(&format!("{}{}", self.prefix, role.suffix()))?;
            self.namespaces.push((role, ns));
        }
        let client_resolv = format!("nameserver {}\n", addr::ROUTER_LAN);
        self.ns_mut(Role::Cli)?.set_resolv_conf(&client_resolv)?;

        // Server side, common to both topologies.
        self.veth(Role::Srv, "lan0", Role::Tgt, "eth0")?;
        let srv = self.ns(Role::Srv)?;
        srv.sysctl("net.ipv4.ip_forward", "1")?;
        srv.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        self.addr(Role::Srv, "lan0", "10.0.0.2/24", "fd00:10::2/64")?;
        self.addr(Role::Tgt, "eth0", "10.0.0.3/24", "fd00:10::3/64")?;
        self.default_route(Role::Tgt, "10.0.0.2", "fd00:10::2")?;

        match self.config.topology {
            Topology::Direct => {
                self.veth(Role::Srv, "wan0", Role::Cli, "eth0")?;
                self.addr(Role::Srv, "wan0", "198.18.0.1/24", "fd00:18::1/64")?;
                self.addr(Role::Cli, "eth0", "198.18.0.2/24", "fd00:18::2/64")?;
            }
            Topology::Reference => {
                self.veth(Role::Lan, "lan0", Role::Cli, "eth0")?;
                self.veth(Role::Lan, "wan0", Role::Srv, "wan0")?;
                let lan = self.ns(Role::Lan)?;
                lan.sysctl("net.ipv4.ip_forward", "1")?;
                lan.sysctl("net.ipv6.conf.all.forwarding", "1")?;
                self.addr(Role::Lan, "lan0", "192.168.1.1/24", "fd00:1::1/64")?;
                self.addr(Role::Lan, "wan0", "198.18.0.2/24", "fd00:18::2/64")?;
                self.addr(Role::Srv, "wan0", "198.18.0.1/24", "fd00:18::1/64")?;
                self.default_route(Role::Srv, "198.18.0.2", "fd00:18::2")?;
                self.setup_client_addressing()?;
            }
        }
        if self.config.target_dns {
            self.start_target_dns()?;
        }
        Ok(())
    }

    fn setup_client_addressing(&mut self) -> anyhow::Result<()> {
        // IPv6 is always static.
        self.addr(Role::Cli, "eth0", "", "fd00:1::2/64")?;
        self.ns(Role::Cli)?
            .ip(&["-6", "route", "add", "default", "via", "fd00:1::1"])?;
        let range = "--dhcp-range=192.168.1.10,192.168.1.50,255.255.255.0,1h";
        match self.config.addressing {
            Addressing::Static => {
                self.addr(Role::Cli, "eth0", "192.168.1.2/24", "")?;
                self.ns(Role::Cli)?
                    .ip(&["route", "add", "default", "via", addr::ROUTER_LAN])?;
                return Ok(());
            }
            Addressing::Dhcp => {
                self.start_dnsmasq(Role::Lan, "dnsmasq-dhcp", &["--interface=lan0", range])?;
            }
            Addressing::DhcpRelay => {
                self.veth(Role::Lan, "dhcp0", Role::Dhcp, "eth0")?;
                self.addr(Role::Lan, "dhcp0", "192.168.2.1/24", "")?;
                self.addr(Role::Dhcp, "eth0", "192.168.2.2/24", "")?;
                self.ns(Role::Dhcp)?
                    .ip(&["route", "add", "default", "via", "192.168.2.1"])?;
                self.start_dnsmasq(Role::Dhcp, "dnsmasq-dhcp", &["--interface=eth0", range])?;
                self.start_dnsmasq(
                    Role::Lan,
                    "dnsmasq-relay",
                    &["--interface=lan0", "--dhcp-relay=192.168.1.1,192.168.2.2"],
                )?;
            }
        }
        let script = self.dir().join("dhclient-script");
        write_executable(&script, DHCLIENT_SCRIPT)?;
        let lease = self.dir().join("dhclient.leases");
        let pid = self.dir().join("dhclient.pid");
        let mut cmd = self.ns(Role::Cli)?.cmd("dhclient");
        cmd.args(["-d", "-4", "-sf"])
            .arg(&script)
            .arg("-pf")
            .arg(&pid)
            .arg("-lf")
            .arg(&lease)
            .arg("eth0");
        let log = self.dir().join("dhclient.log");
        let mut dhclient = Proc::spawn(cmd, "dhclient", &log)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .ns(Role::Cli)?
                .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])?;
            // dhclient configures the address (through the script) before it writes the
            // lease file; callers read the server identifier from that file, so wait for both.
            let leased = std::fs::read_to_string(&lease)
                .map(|t| t.contains("dhcp-server-identifier"))
                .unwrap_or(false);
            if out.contains("inet ") && leased {
                break;
            }
            if dhclient.try_status().is_some() || Instant::now() >= deadline {
                bail!(
                    "the client got no DHCP lease within 20 s; dhclient log:\n{}",
                    dhclient.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.dhcp_lease = Some(lease);
        self.procs.push(dhclient);
        Ok(())
    }

    fn start_dnsmasq(&mut self, role: Role, name: &str, extra: &[&str]) -> anyhow::Result<()> {
        let d = self.dir().to_owned();
        let mut cmd = self.ns(role)?.cmd("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--user=root",
            "--no-resolv",
            "--no-hosts",
            "--log-facility=-",
        ])
        .arg(format!(
            "--pid-file={}",
            d.join(format!("{name}.pid")).display()
        ))
        .arg(format!(
            "--dhcp-leasefile={}",
            d.join(format!("{name}.leases")).display()
        ));
        if !extra.iter().any(|a| a.starts_with("--port=")) {
            cmd.arg("--port=0");
        }
        if extra.iter().any(|a| a.starts_with("--dhcp-range")) {
            cmd.arg(format!("--dhcp-option=3,{}", addr::ROUTER_LAN));
        }
        cmd.args(extra);
        let mut p = Proc::spawn(cmd, name, &d.join(format!("{name}.log")))?;
        p.wait_for_log("started, version", Duration::from_secs(10))?;
        self.procs.push(p);
        Ok(())
    }

    fn start_target_dns(&mut self) -> anyhow::Result<()> {
        self.start_dnsmasq(
            Role::Tgt,
            "dnsmasq-dns",
            &[
                "--port=53",
                "--listen-address=10.0.0.3",
                "--bind-interfaces",
                "--address=/test.example/10.0.0.3",
            ],
        )
    }

    fn veth(&self, a: Role, a_if: &str, b: Role, b_if: &str) -> anyhow::Result<()> {
        let b_ns = self.ns(b)?.name().to_owned();
        let a_ns = self.ns(a)?;
        a_ns.ip(&[
            "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b_ns,
        ])?;
        a_ns.ip(&["link", "set", a_if, "up"])?;
        self.ns(b)?.ip(&["link", "set", b_if, "up"])?;
        Ok(())
    }

    /// Adds an IPv4 and/or IPv6 address (empty string = none) to `dev`.
    fn addr(&self, role: Role, dev: &str, v4: &str, v6: &str) -> anyhow::Result<()> {
        let ns = self.ns(role)?;
        if !v4.is_empty() {
            ns.ip(&["addr", "add", v4, "dev", dev])?;
        }
        if !v6.is_empty() {
            ns.ip(&["-6", "addr", "add", v6, "dev", dev, "nodad"])?;
        }
        Ok(())
    }

    fn default_route(&self, role: Role, v4: &str, v6: &str) -> anyhow::Result<()> {
        let ns = self.ns(role)?;
        ns.ip(&["route", "add", "default", "via", v4])?;
        ns.ip(&["-6", "route", "add", "default", "via", v6])?;
        Ok(())
    }

    /// The namespace playing `role`.
    pub fn ns(&self, role: Role) -> anyhow::Result<&Netns> {
        self.namespaces
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, n)| n)
            .with_context(|| format!("this lab has no {role:?} namespace"))
    }

    fn ns_mut(&mut self, role: Role) -> anyhow::Result<&mut Netns> {
        self.namespaces
            .iter_mut()
            .find(|(r, _)| *r == role)
            .map(|(_, n)| n)
            .with_context(|| format!("this lab has no {role:?} namespace"))
    }

    /// Name of the client namespace.
    pub fn cli(&self) -> &str {
        self.ns(Role::Cli).map(|n| n.name()).unwrap_or_default()
    }

    pub fn config(&self) -> LabConfig {
        self.config
    }

    /// The lab's own directory (configs, logs, keys); deleted with the lab.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// dhclient's lease file for the client's interface, when the lab uses DHCP.
    pub fn dhcp_lease_file(&self) -> Option<&Path> {
        self.dhcp_lease.as_deref()
    }

    /// The client's own address on its LAN.
    pub fn client_lan_address(&self) -> anyhow::Result<String> {
        let out = self
            .ns(Role::Cli)?
            .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])?;
        out.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .map(str::to_owned)
            .context("the client has no IPv4 address on eth0")
    }

    /// Starts `argv` inside `role`'s namespace with output to `<lab dir>/<name>.log`.
    /// The caller owns the process (it is stopped when dropped).
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        role: Role,
        argv: &[S],
        name: &str,
    ) -> anyhow::Result<Proc> {
        let (prog, args) = argv.split_first().context("empty command line")?;
        let mut cmd = self.ns(role)?.cmd(prog);
        cmd.args(args);
        Proc::spawn(cmd, name, &self.dir().join(format!("{name}.log")))
    }

    /// Like [`Lab::spawn`], but the lab keeps the process and stops it on drop.
    pub fn spawn_kept<S: AsRef<OsStr>>(
        &mut self,
        role: Role,
        argv: &[S],
        name: &str,
    ) -> anyhow::Result<&mut Proc> {
        let p = self.spawn(role, argv, name)?;
        self.procs.push(p);
        let last = self.procs.len() - 1;
        Ok(&mut self.procs[last])
    }

    /// The helper service (`helper` is the oxivpn-helper binary) in the client's
    /// namespace, group root, its socket, state and the client's XDG data dir inside
    /// the lab's folder; returns once the socket accepts connections (15 s hang guard).
    pub fn start_helper_service(&mut self, helper: &Path) -> anyhow::Result<HelperService> {
        let dir = self.dir().to_owned();
        let service = HelperService {
            socket: dir.join("helper.sock"),
            data: dir.join("xdg-data"),
        };
        let state = dir.join("helper-state");
        let argv: [&OsStr; 9] = [
            helper.as_os_str(),
            "service".as_ref(),
            "--socket".as_ref(),
            service.socket.as_os_str(),
            "--group".as_ref(),
            "root".as_ref(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--dhcp-lease-dir".as_ref(),
        ];
        let mut argv = argv.to_vec();
        argv.push(dir.as_os_str());
        self.spawn_kept(Role::Cli, &argv, "helper-service")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::os::unix::net::UnixStream::connect(&service.socket).is_err() {
            if Instant::now() >= deadline {
                bail!(
                    "the helper service did not open {}",
                    service.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(service)
    }

    pub(crate) fn keep(&mut self, p: Proc) -> usize {
        self.procs.push(p);
        self.procs.len() - 1
    }

    pub(crate) fn kept(&self, index: usize) -> Option<&Proc> {
        self.procs.get(index)
    }

    pub(crate) fn kept_mut(&mut self, index: usize) -> Option<&mut Proc> {
        self.procs.get_mut(index)
    }

    /// Pings `dest` from `role`: `count` echo requests `interval` apart, each waiting
    /// at most 1 s for its reply.
    pub fn ping(
        &self,
        role: Role,
        dest: &str,
        count: u32,
        interval: Duration,
    ) -> anyhow::Result<PingStats> {
        ping(self.ns(role)?, dest, count, interval)
    }

    /// Whether one ping from `role` to `dest` is answered within a second.
    pub fn reachable(&self, role: Role, dest: &str) -> bool {
        self.ping(role, dest, 1, Duration::from_millis(200))
            .map(|s| s.received > 0)
            .unwrap_or(false)
    }

    /// Pings `dest` from `role` until a reply arrives or `timeout` passes.
    pub fn wait_reachable(&self, role: Role, dest: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.reachable(role, dest) {
                return Ok(());
            }
        }
        bail!("{dest} did not answer pings from {role:?} within {timeout:?}")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Servers and helpers are killed outright: a graceful stop would only add
        // exit-notify waits to every teardown.
        for p in &mut self.procs {
            p.kill();
        }
    }
}

pub(crate) fn write_executable(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Where a lab's helper service listens and where its clients keep their profiles.
#[derive(Debug, Clone)]
pub struct HelperService {
    pub socket: PathBuf,
    /// `XDG_DATA_HOME` for oxivpnctl (the profile store).
    pub data: PathBuf,
}
