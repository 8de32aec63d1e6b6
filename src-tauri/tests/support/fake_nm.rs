//! A small service that speaks NetworkManager's D-Bus interface (the parts OxiVPN
//! reads): `ActiveConnections` with its change signal, active connections (`Id`,
//! `Type`, `SpecificObject`) and access points (`Ssid`). Used on private buses by the
//! trusted-networks test and the webview e2e.
#![allow(dead_code)]

use zbus::zvariant::OwnedObjectPath;

pub const NM_PATH: &str = "/org/freedesktop/NetworkManager";

pub struct FakeNm {
    pub active: Vec<OwnedObjectPath>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl FakeNm {
    #[zbus(property)]
    fn active_connections(&self) -> Vec<OwnedObjectPath> {
        self.active.clone()
    }
}

pub struct FakeActive {
    pub id: String,
    pub kind: String,
    pub ap: OwnedObjectPath,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.Connection.Active")]
impl FakeActive {
    #[zbus(property)]
    fn id(&self) -> String {
        self.id.clone()
    }
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.kind.clone()
    }
    #[zbus(property)]
    fn specific_object(&self) -> OwnedObjectPath {
        self.ap.clone()
    }
}

pub struct FakeAp {
    pub ssid: Vec<u8>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.AccessPoint")]
impl FakeAp {
    #[zbus(property)]
    fn ssid(&self) -> Vec<u8> {
        self.ssid.clone()
    }
}

pub fn path(s: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(s).unwrap()
}

/// Serves NetworkManager on the bus at `address` with two Wi-Fi connections, 1 on the
/// SSID `first` and 2 on `second`; only connection 1 is active at first.
pub async fn serve(address: &str, first: &str, second: &str) -> zbus::Result<zbus::Connection> {
    zbus::connection::Builder::address(address)?
        .name("org.freedesktop.NetworkManager")?
        .serve_at(
            NM_PATH,
            FakeNm {
                active: vec![path("/org/freedesktop/NetworkManager/ActiveConnection/1")],
            },
        )?
        .serve_at(
            "/org/freedesktop/NetworkManager/ActiveConnection/1",
            FakeActive {
                id: format!("{first} connection"),
                kind: "802-11-wireless".into(),
                ap: path("/org/freedesktop/NetworkManager/AccessPoint/1"),
            },
        )?
        .serve_at(
            "/org/freedesktop/NetworkManager/AccessPoint/1",
            FakeAp {
                ssid: first.as_bytes().to_vec(),
            },
        )?
        .serve_at(
            "/org/freedesktop/NetworkManager/ActiveConnection/2",
            FakeActive {
                id: format!("{second} connection"),
                kind: "802-11-wireless".into(),
                ap: path("/org/freedesktop/NetworkManager/AccessPoint/2"),
            },
        )?
        .serve_at(
            "/org/freedesktop/NetworkManager/AccessPoint/2",
            FakeAp {
                ssid: second.as_bytes().to_vec(),
            },
        )?
        .build()
        .await
}

/// Makes connection `n` (1 or 2) the only active one and says so on the bus.
pub async fn switch_to(nm: &zbus::Connection, n: u32) -> zbus::Result<()> {
    let iface = nm.object_server().interface::<_, FakeNm>(NM_PATH).await?;
    iface.get_mut().await.active = vec![path(&format!(
        "/org/freedesktop/NetworkManager/ActiveConnection/{n}"
    ))];
    let nm_iface = iface.get().await;
    let sent = nm_iface
        .active_connections_changed(iface.signal_emitter())
        .await;
    drop(nm_iface);
    sent
}
