//! NetworkManager over D-Bus (zbus): which networks the computer is on, and a wake-up
//! when that changes. Reads `ActiveConnections` of `/org/freedesktop/NetworkManager`,
//! each active connection's `Id`, `Type` and, for Wi-Fi, its access point's `Ssid`.
//! The bus is the system bus, or `OXIVPN_NM_BUS` (an address) for tests.

use futures_util::StreamExt as _;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use super::rules::{NetKind, NetworkSeen};

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const ACTIVE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const AP: &str = "org.freedesktop.NetworkManager.AccessPoint";
/// Tests point the back end at a private bus.
pub const BUS_ENV: &str = "OXIVPN_NM_BUS";

#[derive(Debug, thiserror::Error)]
pub enum NmError {
    #[error("cannot reach the D-Bus bus: {0}")]
    Bus(#[source] zbus::Error),
    #[error("NetworkManager does not answer: {0}")]
    Nm(#[source] zbus::Error),
}

fn nm_path() -> ObjectPath<'static> {
    ObjectPath::from_static_str_unchecked(NM_PATH)
}

pub struct NmMonitor {
    conn: zbus::Connection,
    changes: Option<zbus::proxy::PropertyStream<'static, Vec<OwnedObjectPath>>>,
}

impl NmMonitor {
    /// Connects to the bus NetworkManager is on.
    pub async fn connect() -> Result<Self, NmError> {
        match std::env::var(BUS_ENV).ok().filter(|a| !a.is_empty()) {
            Some(addr) => Self::connect_address(&addr).await,
            None => Ok(Self {
                conn: zbus::Connection::system().await.map_err(NmError::Bus)?,
                changes: None,
            }),
        }
    }

    /// Connects to the bus at `address` ("unix:path=/tmp/x/bus").
    pub async fn connect_address(address: &str) -> Result<Self, NmError> {
        let conn = zbus::connection::Builder::address(address)
            .map_err(NmError::Bus)?
            .build()
            .await
            .map_err(NmError::Bus)?;
        Ok(Self {
            conn,
            changes: None,
        })
    }

    async fn proxy(
        &self,
        path: ObjectPath<'static>,
        interface: &'static str,
        cache: CacheProperties,
    ) -> Result<zbus::Proxy<'static>, NmError> {
        zbus::proxy::Builder::new(&self.conn)
            .destination(NM)
            .and_then(|b| b.path(path))
            .and_then(|b| b.interface(interface))
            .map(|b| b.cache_properties(cache))
            .map_err(NmError::Nm)?
            .build()
            .await
            .map_err(NmError::Nm)
    }

    /// The networks the computer is on now.
    pub async fn current(&self) -> Result<Vec<NetworkSeen>, NmError> {
        let nm = self.proxy(nm_path(), NM, CacheProperties::No).await?;
        let active: Vec<OwnedObjectPath> = nm
            .get_property("ActiveConnections")
            .await
            .map_err(NmError::Nm)?;
        let mut out = Vec::new();
        for path in active {
            let ac = self
                .proxy(path.into_inner(), ACTIVE, CacheProperties::No)
                .await?;
            // A connection that went away between the two reads is simply skipped.
            let Ok(id) = ac.get_property::<String>("Id").await else {
                continue;
            };
            let kind = ac
                .get_property::<String>("Type")
                .await
                .map(|t| NetKind::from_nm_type(&t))
                .unwrap_or(NetKind::Other);
            let mut ssid = None;
            if kind == NetKind::Wifi {
                if let Ok(ap_path) = ac.get_property::<OwnedObjectPath>("SpecificObject").await {
                    if ap_path.as_str() != "/" {
                        let ap = self
                            .proxy(ap_path.into_inner(), AP, CacheProperties::No)
                            .await?;
                        if let Ok(bytes) = ap.get_property::<Vec<u8>>("Ssid").await {
                            ssid = Some(String::from_utf8_lossy(&bytes).into_owned());
                        }
                    }
                }
            }
            out.push(NetworkSeen { id, ssid, kind });
        }
        Ok(out)
    }

    /// Waits until NetworkManager says its active connections changed.
    pub async fn changed(&mut self) -> Result<(), NmError> {
        if self.changes.is_none() {
            let nm = self.proxy(nm_path(), NM, CacheProperties::Lazily).await?;
            let stream = nm
                .receive_property_changed::<Vec<OwnedObjectPath>>("ActiveConnections")
                .await;
            self.changes = Some(stream);
        }
        let ended = match self.changes.as_mut() {
            Some(s) => s.next().await.is_none(),
            None => true,
        };
        if ended {
            // The bus went away: subscribe again next time, after a pause (the caller
            // also re-reads on a timer).
            self.changes = None;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        Ok(())
    }
}
