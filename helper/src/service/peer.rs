//! Who is on the other end of the socket, and may they use the helper.
//!
//! The socket's mode (root:GROUP 0660) is the first wall; this check is the second,
//! done on every connection from the kernel's peer credentials (SO_PEERCRED), so a
//! socket file with wrong permissions still does not let strangers in. Group
//! membership is read at connection time: adding a user to the group takes effect
//! without restarting the helper.

use ipc::{IpcError, ShortText};
use nix::unistd::{Gid, Group, Uid, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Names, stats and logs of a session owned by `owner`.
    pub fn may_see(&self, owner: u32) -> bool {
        self.is_root() || self.uid == owner
    }

    /// Stop it, answer its challenges.
    pub fn may_control(&self, owner: u32) -> bool {
        self.is_root() || self.uid == owner
    }
}

#[derive(Debug, Clone)]
pub struct Authorizer {
    group_name: String,
    gid: u32,
}

impl Authorizer {
    pub fn new(group_name: &str) -> anyhow::Result<Self> {
        let group = Group::from_name(group_name)
            .map_err(|e| anyhow::anyhow!("looking up group {group_name}: {e}"))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "group {group_name} does not exist; create it (groupadd --system {group_name}) \
                     and add the users who may use OxiVPN"
                )
            })?;
        Ok(Self {
            group_name: group_name.to_owned(),
            gid: group.gid.as_raw(),
        })
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Blocking (user/group database); call from `spawn_blocking`.
    pub fn check(&self, peer: &Peer) -> Result<(), IpcError> {
        if peer.is_root() || peer.gid == self.gid || self.member(peer.uid) {
            return Ok(());
        }
        Err(IpcError::NotAuthorized {
            uid: peer.uid,
            group: ShortText::sanitized(&self.group_name),
        })
    }

    fn member(&self, uid: u32) -> bool {
        let user = match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => u,
            // A uid without a passwd entry has no supplementary groups to find.
            _ => return false,
        };
        if user.gid.as_raw() == self.gid {
            return true;
        }
        in_group(&user, Gid::from_raw(self.gid))
    }
}

#[cfg(target_os = "linux")]
fn in_group(user: &User, gid: Gid) -> bool {
    let Ok(name) = std::ffi::CString::new(user.name.as_bytes()) else {
        return false;
    };
    // getgrouplist goes through NSS, so LDAP/SSSD groups count too.
    nix::unistd::getgrouplist(&name, user.gid)
        .map(|groups| groups.contains(&gid))
        .unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
fn in_group(user: &User, gid: Gid) -> bool {
    Group::from_gid(gid)
        .ok()
        .flatten()
        .is_some_and(|g| g.mem.iter().any(|m| *m == user.name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rules() {
        let alice = Peer {
            uid: 1000,
            gid: 1000,
            pid: None,
        };
        let root = Peer {
            uid: 0,
            gid: 0,
            pid: None,
        };
        assert!(alice.may_see(1000));
        assert!(!alice.may_see(1001));
        assert!(!alice.may_control(1001));
        assert!(root.may_control(1001));
    }

    #[test]
    fn root_group_authorizes_root_and_gid0_only() {
        let a = Authorizer::new("root").unwrap();
        assert!(a
            .check(&Peer {
                uid: 0,
                gid: 0,
                pid: None
            })
            .is_ok());
        assert!(a
            .check(&Peer {
                uid: 4242,
                gid: 0,
                pid: None
            })
            .is_ok());
        assert!(matches!(
            a.check(&Peer {
                uid: 4242,
                gid: 4242,
                pid: None
            }),
            Err(IpcError::NotAuthorized { uid: 4242, .. })
        ));
    }

    #[test]
    fn missing_group_is_a_clear_error() {
        let e = Authorizer::new("no-such-group-oxivpn-x").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
