//! Who is on the other end of a connection, and may they use the helper.
//!
//! [`Peer`] is what the rest of the service knows about a client, the same on every OS:
//! the uid that owns its sessions (on Windows the user SID's RID, see
//! `winservice::pipe_acl::peer_uid`) and whether it is privileged (root; SYSTEM or an
//! elevated administrator). How a platform finds out is its [`super::Gate`].
//!
//! Unix: the socket's mode (root:GROUP 0660) is the first wall; [`Authorizer`] is the
//! second, done on every connection from the kernel's peer credentials (SO_PEERCRED), so
//! a socket file with wrong permissions still does not let strangers in. Group
//! membership is read at connection time: adding a user to the group takes effect
//! without restarting the helper.

#[cfg(unix)]
use ipc::{IpcError, ShortText};
#[cfg(unix)]
use nix::unistd::{Gid, Group, Uid, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Owner key of the client's sessions; 0 for privileged clients.
    pub uid: u32,
    /// Root (Unix), SYSTEM or an elevated administrator (Windows).
    pub privileged: bool,
    pub pid: Option<u32>,
}

impl Peer {
    pub fn is_root(&self) -> bool {
        self.privileged
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

/// What the kernel says about a Unix socket peer.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

#[cfg(unix)]
impl UnixCred {
    pub fn peer(&self) -> Peer {
        Peer {
            uid: self.uid,
            privileged: self.uid == 0,
            pid: self.pid.and_then(|p| u32::try_from(p).ok()),
        }
    }
}

#[cfg(unix)]
#[derive(Debug, Clone)]
pub struct Authorizer {
    group_name: String,
    gid: u32,
}

#[cfg(unix)]
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
    pub fn check(&self, peer: &UnixCred) -> Result<(), IpcError> {
        if peer.uid == 0 || peer.gid == self.gid || self.member(peer.uid) {
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

#[cfg(all(unix, not(target_os = "linux")))]
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
            privileged: false,
            pid: None,
        };
        let root = Peer {
            uid: 0,
            privileged: true,
            pid: None,
        };
        assert!(alice.may_see(1000));
        assert!(!alice.may_see(1001));
        assert!(!alice.may_control(1001));
        assert!(root.may_control(1001));
    }

    #[cfg(unix)]
    #[test]
    fn root_group_authorizes_root_and_gid0_only() {
        let a = Authorizer::new("root").unwrap();
        let cred = |uid, gid| UnixCred {
            uid,
            gid,
            pid: None,
        };
        assert!(a.check(&cred(0, 0)).is_ok());
        assert!(a.check(&cred(4242, 0)).is_ok());
        assert!(matches!(
            a.check(&cred(4242, 4242)),
            Err(IpcError::NotAuthorized { uid: 4242, .. })
        ));
        assert!(cred(0, 5).peer().privileged);
        assert!(!cred(4242, 0).peer().privileged);
    }

    #[cfg(unix)]
    #[test]
    fn missing_group_is_a_clear_error() {
        let e = Authorizer::new("no-such-group-oxivpn-x").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
