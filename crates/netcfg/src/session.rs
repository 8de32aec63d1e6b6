//! Carrying a plan out with an undo journal, undoing it, recovering after a crash, and
//! explaining where a packet goes.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::dns::{Dns, DnsOptions};
use crate::journal::{Journal, JournalEntry, JournalTrust, UndoAction, DEFAULT_JOURNAL_PATH};
use crate::lease::LeaseSources;
use crate::plan::{Change, Dev, DnsChange, Plan, PlannedChange, PlannedRoute, Reason, TunAddress};
use crate::routes::{
    AddOutcome, IfaceAddress, RouteRecord, Routes, ROUTE_PROTO_OXIVPN, TABLE_MAIN,
};
use crate::types::{IfaceId, NetworkState, TunV4};
use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    pub journal_path: PathBuf,
    pub dns: DnsOptions,
}

impl SessionOptions {
    /// What this session's journal may undo: the resolv.conf and D-Bus address it was
    /// configured with, our TUN prefix and firewall table.
    pub fn journal_trust(&self) -> JournalTrust {
        JournalTrust {
            resolv_conf: self.dns.resolv_conf.clone(),
            dbus_address: self.dns.dbus_address.clone(),
            ..JournalTrust::default()
        }
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            journal_path: DEFAULT_JOURNAL_PATH.into(),
            dns: DnsOptions::default(),
        }
    }
}

/// The applied configuration of one tunnel. Call [`NetSession::undo_all`] on disconnect;
/// dropping it undoes too, but only as a backstop (and logs a warning).
pub struct NetSession {
    journal: Journal,
    routes: Routes,
    tun: IfaceId,
    trust: JournalTrust,
    finished: bool,
}

impl std::fmt::Debug for NetSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetSession")
            .field("journal", &self.journal.path())
            .field("tun", &self.tun)
            .field("entries", &self.journal.entries().len())
            .finish()
    }
}

fn why_entry(action: UndoAction, c: &PlannedChange) -> JournalEntry {
    JournalEntry {
        action,
        kind: Some(c.kind),
        why: c.why.clone(),
        skipped: false,
    }
}

fn record_for(r: &PlannedRoute, tun: &IfaceId) -> RouteRecord {
    let oif = match &r.dev {
        Dev::Tunnel => Some(tun.index),
        Dev::Iface(i) => Some(i.index),
        Dev::Auto => None,
    };
    let v4 = matches!(r.dst, IpNet::V4(_));
    RouteRecord {
        dst: r.dst.trunc(),
        gateway: r.via,
        oif,
        table: r.table.unwrap_or(TABLE_MAIN),
        metric: r.metric,
        protocol: ROUTE_PROTO_OXIVPN,
        // A gatewayless IPv4 route through a device is a link-scope route (as `ip route` makes it).
        scope: if v4 && r.via.is_none() && oif.is_some() {
            RouteRecord::SCOPE_LINK
        } else {
            RouteRecord::SCOPE_UNIVERSE
        },
        kind: RouteRecord::KIND_UNICAST,
        pref_src: None,
        onlink: false,
    }
}

/// One change of the apply phase, its undo already journaled.
enum Step<'a> {
    AddAddress(&'a TunAddress),
    SetMtu(u32),
    AddRoute(RouteRecord),
    DeleteRoute(RouteRecord),
    SetDns(&'a DnsChange),
}

/// The prefix a planned TUN address will give its interface.
fn planned_address(iface: u32, a: &TunAddress) -> IfaceAddress {
    match *a {
        TunAddress::V4(TunV4::Subnet { addr, prefix_len }) => IfaceAddress {
            iface,
            addr: IpAddr::V4(addr),
            prefix_len,
            peer: None,
        },
        TunAddress::V4(TunV4::PointToPoint { local, peer }) => IfaceAddress {
            iface,
            addr: IpAddr::V4(local),
            prefix_len: 32,
            peer: Some(IpAddr::V4(peer)),
        },
        TunAddress::V6(v6) => IfaceAddress {
            iface,
            addr: IpAddr::V6(v6.addr),
            prefix_len: v6.prefix_len,
            peer: None,
        },
    }
}

fn gateway_covered(addrs: &[IfaceAddress], oif: u32, gw: IpAddr) -> bool {
    addrs.iter().filter(|a| a.iface == oif).any(|a| {
        a.peer == Some(gw)
            || IpNet::new(a.addr, a.prefix_len).is_ok_and(|n| n.trunc().contains(&gw))
    })
}

impl NetSession {
    /// Applies `plan` on the tunnel interface `tun`, journaling every change first. On any
    /// error everything done so far is undone and the error returned.
    pub fn apply(plan: &Plan, tun: &IfaceId, opts: &SessionOptions) -> Result<Self, Error> {
        Self::apply_with_dns(plan, tun, opts, None)
    }

    /// [`NetSession::apply`] with the DNS backend already chosen (`Dns::new(&opts.dns)`,
    /// run while the TLS handshake went on: on a desktop it is a D-Bus round trip to
    /// systemd-resolved that the routes need not wait for). Its error, if any, is this
    /// apply's error when the plan sets DNS; without a DNS change it is unused.
    pub fn apply_with_dns(
        plan: &Plan,
        tun: &IfaceId,
        opts: &SessionOptions,
        dns: Option<Result<Dns, Error>>,
    ) -> Result<Self, Error> {
        let journal = Journal::create(&opts.journal_path)?;
        let routes = Routes::open()?;
        let mut s = Self {
            journal,
            routes,
            tun: tun.clone(),
            trust: opts.journal_trust(),
            finished: false,
        };
        let res = s.apply_all(plan, opts, dns);
        match res {
            Ok(()) => Ok(s),
            Err(e) => {
                tracing::warn!(error = %e, "applying the network plan failed; undoing");
                if let Err(u) = s.undo_all() {
                    tracing::warn!(error = %u, "undo after a failed apply was incomplete");
                }
                Err(e)
            }
        }
    }

    /// Two phases: first every undo action is computed and the whole list journaled with
    /// ONE durable write (each fsync costs milliseconds on a virtual disk), then the changes
    /// are made in order. Undoing a change that was never made is harmless: our routes
    /// are deleted by our protocol number, re-adding a route that still exists finds it
    /// there, the TUN's addresses are ours alone, and files get their own bytes back.
    fn apply_all(
        &mut self,
        plan: &Plan,
        opts: &SessionOptions,
        mut ready_dns: Option<Result<Dns, Error>>,
    ) -> Result<(), Error> {
        let mut entries = vec![JournalEntry {
            action: UndoAction::DeleteLink {
                iface: self.tun.clone(),
            },
            kind: None,
            why: "the tunnel interface".into(),
            skipped: false,
        }];
        let mut steps: Vec<(Option<usize>, Step<'_>)> = Vec::new();
        let mut dns: Option<Dns> = None;
        // The interfaces' prefixes as they will be once the TUN has its planned addresses.
        let mut addrs = self.routes.addresses()?;
        for c in &plan.changes {
            if let Change::AddAddress(a) = &c.change {
                addrs.push(planned_address(self.tun.index, a));
            }
        }
        let mut dump: Option<Vec<RouteRecord>> = None;
        for c in &plan.changes {
            let entry = |action: UndoAction, entries: &mut Vec<JournalEntry>| {
                entries.push(why_entry(action, c));
                Some(entries.len() - 1)
            };
            match &c.change {
                Change::AddAddress(a) => {
                    let undo = UndoAction::DeleteAddress {
                        iface: self.tun.clone(),
                        addr: *a,
                    };
                    steps.push((entry(undo, &mut entries), Step::AddAddress(a)));
                }
                Change::SetMtu(m) => steps.push((None, Step::SetMtu(*m))),
                Change::AddRoute(r) => {
                    let mut rec = record_for(r, &self.tun);
                    if let (Some(gw), Some(oif)) = (rec.gateway, rec.oif) {
                        // A gateway outside every prefix of its interface (e.g. a cloud
                        // `default via 172.31.1.1 dev eth0 onlink`) needs `onlink` too.
                        rec.onlink = !gateway_covered(&addrs, oif, gw);
                    }
                    let i = entry(UndoAction::DeleteRoute(rec.clone()), &mut entries);
                    steps.push((i, Step::AddRoute(rec)));
                }
                Change::DeleteRoute(r) => {
                    let want = record_for(r, &self.tun);
                    if dump.is_none() {
                        dump = Some(self.routes.dump()?);
                    }
                    let found = dump.iter().flatten().find(|k| {
                        k.dst == want.dst
                            && k.table == want.table
                            && k.gateway == want.gateway
                            && (want.oif.is_none() || k.oif == want.oif)
                            && (want.metric.is_none() || k.metric == want.metric)
                            && k.kind == RouteRecord::KIND_UNICAST
                    });
                    let Some(found) = found.cloned() else {
                        tracing::debug!(route = %r, "route to delete is already gone");
                        continue;
                    };
                    let i = entry(UndoAction::RestoreRoute(found.clone()), &mut entries);
                    steps.push((i, Step::DeleteRoute(found)));
                }
                Change::SetDns(d) => {
                    if dns.is_none() {
                        dns = Some(match ready_dns.take() {
                            Some(ready) => ready?,
                            None => Dns::new(&opts.dns)?,
                        });
                    }
                    if let Some(undo) = dns
                        .as_mut()
                        .map(|x| x.prepare(&self.tun, d))
                        .transpose()?
                        .flatten()
                    {
                        steps.push((entry(undo, &mut entries), Step::SetDns(d)));
                    }
                }
            }
        }
        // Written before any change; fsync'ed only before the first change that outlives a
        // reboot (the routes need none: see the journal's module docs).
        self.journal.push_all_deferred(entries)?;

        self.routes.set_up(self.tun.index)?;
        for (entry, step) in steps {
            let outlives_reboot = entry
                .and_then(|i| self.journal.entries().get(i))
                .is_some_and(|e| e.action.survives_reboot());
            if outlives_reboot {
                self.journal.make_durable()?;
            }
            let outcome = match step {
                Step::AddAddress(a) => self.routes.add_address(self.tun.index, a)?,
                Step::SetMtu(m) => {
                    self.routes.set_mtu(self.tun.index, m)?;
                    AddOutcome::Added
                }
                Step::AddRoute(rec) => {
                    let o = self.routes.add(&rec)?;
                    if o == AddOutcome::AlreadyPresent {
                        tracing::debug!(route = %rec, "route already present; left alone");
                    }
                    o
                }
                Step::DeleteRoute(found) => {
                    self.routes.delete(&found)?;
                    AddOutcome::Added
                }
                Step::SetDns(d) => {
                    if let Some(dns) = dns.as_mut() {
                        dns.apply(&self.tun, d)?;
                    }
                    AddOutcome::Added
                }
            };
            if let (AddOutcome::AlreadyPresent, Some(i)) = (outcome, entry) {
                self.journal.mark_skipped(i)?;
            }
        }
        self.journal.make_durable()
    }

    pub fn tun(&self) -> &IfaceId {
        &self.tun
    }

    /// What was done (and will be undone), in order.
    pub fn entries(&self) -> &[JournalEntry] {
        self.journal.entries()
    }

    /// Puts back everything this session changed, newest first, then removes the journal.
    /// What cannot be undone stays in the journal for [`recover`].
    pub fn undo_all(&mut self) -> Result<(), Error> {
        self.finished = true;
        let entries: Vec<JournalEntry> = self.journal.entries().to_vec();
        let undone = undo_entries(
            &mut self.routes,
            &entries,
            &self.trust,
            Some(&self.tun),
            false,
        );
        finish_journal(&mut self.journal, undone.kept, undone.errors)
    }

    /// Where a packet to `addr` goes now, which route decided it, and why that route exists
    /// if it is ours.
    pub fn explain(&mut self, addr: IpAddr) -> Result<Explanation, Error> {
        let tuns = [self.tun.index];
        explain_with(&mut self.routes, addr, &tuns, self.journal.entries())
    }
}

/// Like [`NetSession::explain`], for a process that holds no session (e.g. the service
/// answering a route check while tunnels run elsewhere): the sessions' journals say which
/// interfaces are tunnels and why our routes exist. Missing journals are skipped.
pub fn explain_route(addr: IpAddr, journal_paths: &[PathBuf]) -> Result<Explanation, Error> {
    let mut entries = Vec::new();
    for p in journal_paths {
        if let Some(j) = Journal::load(p)? {
            entries.extend_from_slice(j.entries());
        }
    }
    let tuns: Vec<u32> = entries
        .iter()
        .filter_map(|e| match &e.action {
            UndoAction::DeleteLink { iface } => Some(iface.index),
            _ => None,
        })
        .collect();
    explain_with(&mut Routes::open()?, addr, &tuns, &entries)
}

fn explain_with(
    routes: &mut Routes,
    addr: IpAddr,
    tuns: &[u32],
    entries: &[JournalEntry],
) -> Result<Explanation, Error> {
    let route = routes.lookup(addr)?;
    let iface = match route.as_ref().and_then(|r| r.oif) {
        Some(i) => routes.iface(i)?,
        None => None,
    };
    let ours = route.as_ref().filter(|r| r.is_ours()).and_then(|r| {
        entries.iter().find(|e| {
            matches!(&e.action, UndoAction::DeleteRoute(k)
                if k.dst == r.dst && k.table == r.table && k.gateway == r.gateway)
        })
    });
    let verdict = match &route {
        None => Verdict::Unreachable,
        Some(r) if r.kind == RouteRecord::KIND_LOCAL => Verdict::Local,
        Some(r) if r.kind != RouteRecord::KIND_UNICAST => Verdict::Unreachable,
        Some(r) if r.oif.is_some_and(|o| tuns.contains(&o)) => Verdict::IntoTunnel,
        Some(r) => match ours.and_then(|e| e.kind) {
            Some(Reason::ServerBypass) => Verdict::AroundTunnelToServer,
            Some(Reason::DhcpBypass) => Verdict::DhcpServerViaLan,
            Some(Reason::DnsBypass) => Verdict::DnsServerViaLan,
            _ if r.gateway.is_none() => Verdict::OnLan,
            _ => Verdict::ViaLanGateway,
        },
    };
    let why = ours.map(|e| e.why.clone());
    let summary = summarize(
        addr,
        verdict,
        route.as_ref(),
        iface.as_ref(),
        why.as_deref(),
    );
    Ok(Explanation {
        addr,
        verdict,
        route,
        iface,
        why,
        summary,
    })
}

impl Drop for NetSession {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                journal = %self.journal.path().display(),
                "network session dropped without undo_all(); undoing now"
            );
            if let Err(e) = self.undo_all() {
                tracing::warn!(error = %e, "undo from drop was incomplete");
            }
        }
    }
}

/// What [`undo_entries`] did.
struct Undone {
    /// Entries that could not be undone (kept in the journal for the next try).
    kept: Vec<JournalEntry>,
    errors: Vec<String>,
    /// Entries [`JournalTrust::check`] refused: logged, skipped, dropped.
    refused: usize,
}

/// Whether interface `iface` (index and name as journaled) is still that TUN: indexes
/// and names are reused, and nothing else is ever ours to change.
fn still_our_tun(routes: &mut Routes, iface: &IfaceId) -> Result<bool, Error> {
    match routes.iface(iface.index)? {
        Some(now) if now.name == iface.name => routes.is_tun(iface.index),
        _ => Ok(false),
    }
}

/// Undoes `entries` newest first, each only after `trust` accepted it. `own_tun` is a
/// live session's TUN; `recovering` means a previous run's journal (its interfaces may
/// be gone, or their indexes reused).
fn undo_entries(
    routes: &mut Routes,
    entries: &[JournalEntry],
    trust: &JournalTrust,
    own_tun: Option<&IfaceId>,
    recovering: bool,
) -> Undone {
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    let mut refused = 0;
    let links = trust.created_links(entries, own_tun);
    for e in entries.iter().rev() {
        if e.skipped {
            continue;
        }
        if let Err(r) = trust.check(e, &links) {
            tracing::warn!(reason = %r, why = %e.why, "journal entry refused; not undone");
            refused += 1;
            continue;
        }
        let res = match &e.action {
            UndoAction::DeleteRoute(r) => routes.delete(r).map(|_| ()),
            UndoAction::RestoreRoute(r) => routes.add(r).map(|_| ()),
            UndoAction::DeleteAddress { iface, addr } => {
                match recovering.then(|| still_our_tun(routes, iface)) {
                    Some(Ok(false)) => Ok(()), // gone with its TUN (or not ours any more)
                    Some(Err(e)) => Err(e),
                    _ => routes.delete_address(iface.index, addr).map(|_| ()),
                }
            }
            UndoAction::DeleteLink { iface } => {
                // In a live session the TUN's owner removes it by closing it.
                match recovering.then(|| still_our_tun(routes, iface)) {
                    Some(Ok(true)) => routes.delete_link(iface.index).map(|_| ()),
                    Some(Err(e)) => Err(e),
                    _ => Ok(()),
                }
            }
            UndoAction::RevertResolvedLink { iface, .. } => {
                // A reused index would be another program's link: revert only our TUN.
                // resolved forgets a link's settings when the link goes; a failure here after
                // the tunnel is gone is expected and harmless.
                match recovering.then(|| still_our_tun(routes, iface)) {
                    Some(Ok(false)) => {}
                    _ => {
                        if let Err(err) = crate::dns::undo(&e.action) {
                            tracing::info!(error = %err, "RevertLink failed (link gone?)");
                        }
                    }
                }
                Ok(())
            }
            UndoAction::RestoreFile { .. } => crate::dns::undo(&e.action),
            UndoAction::DeleteFirewallTable { table, .. } => crate::firewall::delete_table(table),
        };
        if let Err(err) = res {
            tracing::warn!(error = %err, why = %e.why, "undo step failed");
            errors.push(err.to_string());
            kept.push(e.clone());
        }
    }
    kept.reverse();
    Undone {
        kept,
        errors,
        refused,
    }
}

fn finish_journal(
    journal: &mut Journal,
    kept: Vec<JournalEntry>,
    errors: Vec<String>,
) -> Result<(), Error> {
    if errors.is_empty() {
        journal.remove()
    } else {
        journal.replace(kept)?;
        Err(Error::UndoIncomplete {
            failed: errors.len(),
            first: errors.into_iter().next().unwrap_or_default(),
        })
    }
}

/// What [`recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoverReport {
    /// Journal entries undone (or found already gone).
    pub undone: usize,
    /// Routes carrying our protocol number removed without a journal entry.
    pub swept: usize,
    /// Journal entries that named something not ours ([`JournalTrust::check`]): left alone.
    pub refused: usize,
}

/// At start-up, before anything else: undoes what a crashed session left (its journal),
/// then removes any route that still carries our route protocol number. The journal may
/// touch only the system's `/etc/resolv.conf`, the system bus, TUNs named `oxiN` and our
/// firewall table ([`JournalTrust::default`]); see [`recover_trusting`] for other settings.
pub fn recover(journal_path: &Path) -> Result<RecoverReport, Error> {
    recover_trusting(journal_path, &JournalTrust::default())
}

/// [`recover`] for sessions configured otherwise (e.g. [`SessionOptions::journal_trust`]).
pub fn recover_trusting(journal_path: &Path, trust: &JournalTrust) -> Result<RecoverReport, Error> {
    let mut report = RecoverReport::default();
    let journal = Journal::load(journal_path)?;
    let mut routes = Routes::open()?;
    let mut failure = None;
    if let Some(mut journal) = journal {
        let entries = journal.entries().to_vec();
        tracing::info!(
            journal = %journal_path.display(),
            entries = entries.len(),
            "recovering a previous session's network changes"
        );
        let undone = undo_entries(&mut routes, &entries, trust, None, true);
        report.refused = undone.refused;
        report.undone = entries
            .len()
            .saturating_sub(undone.kept.len() + undone.refused);
        if let Err(e) = finish_journal(&mut journal, undone.kept, undone.errors) {
            failure = Some(e);
        }
    }
    for r in routes.dump()? {
        if r.is_ours() && routes.delete(&r)? {
            report.swept += 1;
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    IntoTunnel,
    /// Around the tunnel to the VPN server (its host route).
    AroundTunnelToServer,
    /// To the DHCP server through the LAN gateway (bypass-dhcp).
    DhcpServerViaLan,
    /// To a pre-tunnel resolver through the LAN gateway (bypass-dns).
    DnsServerViaLan,
    /// Directly on a local network.
    OnLan,
    /// Through the LAN gateway, not the tunnel (split tunnel, net_gateway routes).
    ViaLanGateway,
    /// This machine.
    Local,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub addr: IpAddr,
    pub verdict: Verdict,
    /// The route table entry the kernel chose.
    pub route: Option<RouteRecord>,
    pub iface: Option<IfaceId>,
    /// The plan's reason, when the deciding route is ours.
    pub why: Option<String>,
    /// One sentence for people.
    pub summary: String,
}

fn summarize(
    addr: IpAddr,
    verdict: Verdict,
    route: Option<&RouteRecord>,
    iface: Option<&IfaceId>,
    why: Option<&str>,
) -> String {
    let dev = iface.map_or_else(|| "?".to_string(), |i| i.name.clone());
    let what = match verdict {
        Verdict::IntoTunnel => format!("goes into the tunnel ({dev})"),
        Verdict::AroundTunnelToServer => {
            format!("is the VPN server: goes around the tunnel on {dev}")
        }
        Verdict::DhcpServerViaLan => {
            format!("is the DHCP server: goes via the LAN gateway on {dev}")
        }
        Verdict::DnsServerViaLan => {
            format!("is a pre-tunnel resolver: goes via the LAN gateway on {dev}")
        }
        Verdict::OnLan => format!("is on the local network ({dev})"),
        Verdict::ViaLanGateway => format!("goes via the LAN gateway on {dev}, not the tunnel"),
        Verdict::Local => "is this machine".to_string(),
        Verdict::Unreachable => "is unreachable".to_string(),
    };
    let mut s = format!("{addr} {what}");
    if let Some(r) = route {
        s.push_str(&format!("; route {}", r.dst));
        if let Some(g) = r.gateway {
            s.push_str(&format!(" via {g}"));
        }
        if r.is_ours() {
            s.push_str(" (ours)");
        }
    }
    if let Some(w) = why {
        s.push_str(&format!(": {w}"));
    }
    s
}

/// Where [`discover_state`] looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverOptions {
    pub leases: LeaseSources,
    pub resolv_conf: PathBuf,
    /// Where to ask systemd-resolved for its resolvers when resolv.conf names only its
    /// loopback stub (`None`: the system bus).
    pub dbus_address: Option<String>,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        Self {
            leases: LeaseSources::default(),
            resolv_conf: "/etc/resolv.conf".into(),
            dbus_address: None,
        }
    }
}

/// The machine's network before the tunnel: routes and prefixes from the OS, the DHCP
/// server from the default interface's lease, the resolvers from resolv.conf.
pub fn discover_state(opts: &DiscoverOptions) -> Result<NetworkState, Error> {
    let mut state = Routes::open()?.network_state()?;
    if let Some(d) = &state.default_v4 {
        if let Some(found) = crate::lease::find_dhcp_server(&opts.leases, &d.iface) {
            tracing::debug!(server = %found.server, source = %found.source.display(), "DHCP server from lease");
            state.dhcp_server = Some(found.server);
        }
    }
    if let Ok(text) = std::fs::read_to_string(&opts.resolv_conf) {
        state.resolvers = crate::dns::parse_resolv_conf_servers(&text);
    }
    // resolv.conf pointing at resolved's stub (127.0.0.53) says nothing about the real
    // resolvers; resolved itself does.
    if state.resolvers.iter().all(|r| r.is_loopback()) {
        if let Some(servers) = crate::dns::resolved_servers(opts.dbus_address.as_deref()) {
            state.resolvers = servers;
        }
    }
    Ok(state)
}
