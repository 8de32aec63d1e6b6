//! Linux DNS: systemd-resolved (org.freedesktop.resolve1.Manager over D-Bus) or resolv.conf.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use zbus::blocking::Connection;

use super::{render_resolv_conf, DnsBackend, DnsBackendChoice, DnsOptions};
use crate::journal::UndoAction;
use crate::plan::DnsChange;
use crate::types::IfaceId;
use crate::Error;

const RESOLVE1: &str = "org.freedesktop.resolve1";
const RESOLVE1_PATH: &str = "/org/freedesktop/resolve1";
const RESOLVE1_MANAGER: &str = "org.freedesktop.resolve1.Manager";

pub(super) enum Backend {
    Resolved {
        conn: Connection,
        dbus_address: Option<String>,
    },
    ResolvConf {
        path: PathBuf,
        previous: Option<Vec<u8>>,
    },
    Disabled,
}

fn dbus_err(what: impl Into<String>) -> impl FnOnce(zbus::Error) -> Error {
    let what = what.into();
    move |e| Error::Resolved {
        what,
        source: Box::new(e),
    }
}

fn connect(address: Option<&str>) -> Result<Connection, Error> {
    match address {
        Some(a) => zbus::blocking::connection::Builder::address(a)
            .and_then(|b| b.build())
            .map_err(dbus_err(format!("connect to the bus at {a}"))),
        None => Connection::system().map_err(dbus_err("connect to the system bus")),
    }
}

/// Whether a system bus can be there at all. Without this check every machine with no
/// D-Bus (containers, servers, minimal installs) paid for zbus starting its executor and
/// blocking-pool threads before finding no socket, on the connect's critical path.
fn system_bus_may_exist() -> bool {
    std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some()
        || Path::new("/run/dbus/system_bus_socket").exists()
        || Path::new("/var/run/dbus/system_bus_socket").exists()
}

/// Whether systemd-resolved's name has an owner on that bus.
fn resolved_present(conn: &Connection) -> bool {
    let Ok(proxy) = zbus::blocking::fdo::DBusProxy::new(conn) else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from(RESOLVE1) else {
        return false;
    };
    proxy.name_has_owner(name).unwrap_or(false)
}

fn call<B>(conn: &Connection, method: &str, body: &B) -> Result<(), Error>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(
        Some(RESOLVE1),
        RESOLVE1_PATH,
        Some(RESOLVE1_MANAGER),
        method,
        body,
    )
    .map(|_| ())
    .map_err(dbus_err(format!("{method} failed")))
}

fn link_index(iface: &IfaceId) -> i32 {
    i32::try_from(iface.index).unwrap_or(i32::MAX)
}

fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| Error::ResolvConf { path, what, source }
    };
    // Open + truncate + write, never rename: the file may be a bind mount (ip netns exec,
    // containers), and a rename over a mount point fails with EBUSY.
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(err("open for writing"))?;
    f.write_all(bytes).map_err(err("write"))?;
    f.sync_all().map_err(err("fsync"))
}

impl super::Backend for Backend {
    fn new(opts: &DnsOptions) -> Result<Self, Error> {
        let file = || Backend::ResolvConf {
            path: opts.resolv_conf.clone(),
            previous: None,
        };
        match opts.backend {
            DnsBackendChoice::Disabled => Ok(Backend::Disabled),
            DnsBackendChoice::ResolvConf => Ok(file()),
            DnsBackendChoice::Resolved => Ok(Backend::Resolved {
                conn: connect(opts.dbus_address.as_deref())?,
                dbus_address: opts.dbus_address.clone(),
            }),
            DnsBackendChoice::Auto if opts.dbus_address.is_none() && !system_bus_may_exist() => {
                Ok(file())
            }
            DnsBackendChoice::Auto => match connect(opts.dbus_address.as_deref()) {
                Ok(conn) if resolved_present(&conn) => Ok(Backend::Resolved {
                    conn,
                    dbus_address: opts.dbus_address.clone(),
                }),
                _ => Ok(file()),
            },
        }
    }

    fn kind(&self) -> DnsBackend {
        match self {
            Backend::Resolved { .. } => DnsBackend::Resolved,
            Backend::ResolvConf { .. } => DnsBackend::ResolvConf,
            Backend::Disabled => DnsBackend::Disabled,
        }
    }

    fn prepare(&mut self, iface: &IfaceId, _change: &DnsChange) -> Result<UndoAction, Error> {
        match self {
            Backend::Resolved { dbus_address, .. } => Ok(UndoAction::RevertResolvedLink {
                iface: iface.clone(),
                dbus_address: dbus_address.clone(),
            }),
            Backend::ResolvConf { path, previous } => {
                let prev = match std::fs::read(&*path) {
                    Ok(b) => Some(b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(source) => {
                        return Err(Error::ResolvConf {
                            path: path.clone(),
                            what: "read (for the backup)",
                            source,
                        })
                    }
                };
                *previous = prev.clone();
                Ok(UndoAction::RestoreFile {
                    path: path.clone(),
                    previous: prev,
                })
            }
            Backend::Disabled => Err(Error::Plan("DNS is disabled".into())),
        }
    }

    fn apply(&mut self, iface: &IfaceId, change: &DnsChange) -> Result<(), Error> {
        match self {
            Backend::Resolved { conn, .. } => {
                let idx = link_index(iface);
                let servers: Vec<(i32, Vec<u8>)> = change
                    .servers
                    .iter()
                    .map(|s| match s {
                        IpAddr::V4(v4) => (libc::AF_INET, v4.octets().to_vec()),
                        IpAddr::V6(v6) => (libc::AF_INET6, v6.octets().to_vec()),
                    })
                    .collect();
                call(conn, "SetLinkDNS", &(idx, servers))?;
                let mut domains: Vec<(String, bool)> = change
                    .search_domains
                    .iter()
                    .map(|d| (d.clone(), false))
                    .collect();
                domains.extend(change.resolve_domains.iter().map(|d| {
                    let d = if d == "." {
                        "~."
                    } else {
                        d.trim_start_matches('~')
                    };
                    (d.to_string(), true)
                }));
                call(conn, "SetLinkDomains", &(idx, domains))?;
                call(conn, "SetLinkDefaultRoute", &(idx, change.default_route))
            }
            Backend::ResolvConf { path, previous } => {
                let text = render_resolv_conf(iface, change, previous.as_deref());
                write_in_place(path, text.as_bytes())
            }
            Backend::Disabled => Ok(()),
        }
    }
}

/// The resolvers systemd-resolved uses (its `DNS` property), when it is on that bus.
pub fn resolved_servers(dbus_address: Option<&str>) -> Option<Vec<IpAddr>> {
    resolved_servers_by_link(dbus_address).map(|v| v.into_iter().map(|(_, a)| a).collect())
}

/// systemd-resolved's resolvers, each with the interface index it is configured on
/// (0: global). resolved sends a link's queries out of that link whatever the routes say.
pub fn resolved_servers_by_link(dbus_address: Option<&str>) -> Option<Vec<(u32, IpAddr)>> {
    let conn = connect(dbus_address).ok()?;
    if !resolved_present(&conn) {
        return None;
    }
    let proxy =
        zbus::blocking::Proxy::new(&conn, RESOLVE1, RESOLVE1_PATH, RESOLVE1_MANAGER).ok()?;
    let entries: Vec<(i32, i32, Vec<u8>)> = proxy.get_property("DNS").ok()?;
    Some(
        entries
            .into_iter()
            .filter_map(|(ifindex, family, bytes)| {
                let addr = match family {
                    libc::AF_INET => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
                    libc::AF_INET6 => <[u8; 16]>::try_from(bytes.as_slice())
                        .ok()
                        .map(IpAddr::from),
                    _ => None,
                }?;
                Some((u32::try_from(ifindex).unwrap_or(0), addr))
            })
            .collect(),
    )
}

/// Reverses a DNS change recorded in the journal.
pub fn undo(action: &UndoAction) -> Result<(), Error> {
    match action {
        UndoAction::RevertResolvedLink {
            iface,
            dbus_address,
        } => {
            let conn = connect(dbus_address.as_deref())?;
            call(&conn, "RevertLink", &(link_index(iface),))
        }
        UndoAction::RestoreFile { path, previous } => match previous {
            Some(bytes) => write_in_place(path, bytes),
            None => match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(Error::ResolvConf {
                    path: path.clone(),
                    what: "remove (it did not exist before)",
                    source,
                }),
            },
        },
        _ => Ok(()),
    }
}
