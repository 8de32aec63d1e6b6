//! Who may open the helper's named pipe, in two walls like the Unix socket's mode plus
//! SO_PEERCRED: the pipe's security descriptor (SDDL, built here) and a check of every
//! connected client's token (the decision is [`authorize`]; reading the token is
//! Windows-only code in `pipe_server.rs`). Pure, so tested on every OS.

use ipc::{IpcError, ShortText};

use crate::service::Peer;

/// SIDs are written `S-1-<authority>-<sub>...`; anything else is refused before it can
/// reach an SDDL string (where `)` or `;` would change the ACL's meaning).
pub fn is_sid_string(s: &str) -> bool {
    let mut parts = s.split('-');
    if parts.next() != Some("S") || parts.next() != Some("1") {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    // Authority plus 1..=15 sub-authorities (SID_MAX_SUB_AUTHORITIES).
    (2..=16).contains(&rest.len())
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// FILE_GENERIC_READ (0x120089) | FILE_WRITE_DATA (0x2) | FILE_WRITE_EA (0x10) |
/// FILE_WRITE_ATTRIBUTES (0x100); no FILE_APPEND_DATA / FILE_CREATE_PIPE_INSTANCE (0x4).
pub const USERS_ACCESS: u32 = 0x0012_019b;
/// FILE_APPEND_DATA, on a pipe FILE_CREATE_PIPE_INSTANCE.
pub const FILE_CREATE_PIPE_INSTANCE: u32 = 0x4;
const _: () = assert!(USERS_ACCESS & FILE_CREATE_PIPE_INSTANCE == 0);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a SID string (S-1-...)")]
pub struct BadSid(pub String);

/// The pipe's security descriptor:
/// - `P`: protected, nothing inherited from the pipe namespace's defaults;
/// - network logons denied outright (the pipe is also created with
///   PIPE_REJECT_REMOTE_CLIENTS; this covers a client that reaches it anyway);
/// - LocalSystem and Administrators: full access (Administrators only when elevated:
///   a UAC-filtered token carries the group deny-only);
/// - the `OxiVPN Users` group: [`USERS_ACCESS`], read and write data but NOT
///   FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE (GENERIC_WRITE would
///   include it): a member cannot serve a rogue instance of the helper's pipe to other
///   users. Clients open with read + FILE_WRITE_DATA (ipc::Client on Windows);
/// - owner: SYSTEM, so nobody else can rewrite the DACL.
pub fn pipe_sddl(users_group_sid: &str) -> Result<String, BadSid> {
    if !is_sid_string(users_group_sid) {
        return Err(BadSid(users_group_sid.to_owned()));
    }
    Ok(format!(
        "O:SYG:SYD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;{USERS_ACCESS:#x};;;{users_group_sid})"
    ))
}

/// What the client's (impersonation) token says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The token's user SID, e.g. `S-1-5-21-…-1001`.
    pub user_sid: String,
    pub pid: u32,
    pub is_system: bool,
    /// Enabled (not deny-only) membership of BUILTIN\Administrators: elevated.
    pub is_admin: bool,
    pub in_users_group: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// SYSTEM or an elevated administrator: may see and stop every session (Unix root).
    Privileged,
    /// Member of OxiVPN Users: its own sessions only.
    Member,
}

/// The second wall: the ACL already admits only these accounts, but a changed ACL, an
/// inherited handle or a token that lost its group since must still be refused.
pub fn authorize(id: &ClientIdentity) -> Result<Role, IpcError> {
    if id.is_system || id.is_admin {
        return Ok(Role::Privileged);
    }
    if id.in_users_group {
        return Ok(Role::Member);
    }
    Err(IpcError::NotAuthorized {
        uid: peer_uid(id),
        group: ShortText::sanitized(super::config::USERS_GROUP),
    })
}

/// The Windows gate's whole decision for one connected client, from what its token
/// says: refused (naming the group), or the [`Peer`] the shared service serves.
pub fn admit(id: &ClientIdentity) -> Result<Peer, IpcError> {
    let role = authorize(id)?;
    Ok(Peer {
        uid: peer_uid(id),
        privileged: role == Role::Privileged,
        pid: Some(id.pid),
    })
}

/// The `peer_uid` the IPC protocol reports (and the sessions' owner key): 0 for
/// privileged clients, as root on Unix; otherwise the user SID's last sub-authority
/// (its RID), which is unique among the machine's and domain's users in practice.
pub fn peer_uid(id: &ClientIdentity) -> u32 {
    if id.is_system || id.is_admin {
        return 0;
    }
    id.user_sid
        .rsplit('-')
        .next()
        .and_then(|rid| rid.parse::<u32>().ok())
        // A RID of 0 would read as root; no real user has one, but never grant it.
        .filter(|rid| *rid != 0)
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP_SID: &str = "S-1-5-21-3623811015-3361044348-30300820-1013";

    fn id(system: bool, admin: bool, member: bool) -> ClientIdentity {
        ClientIdentity {
            user_sid: "S-1-5-21-3623811015-3361044348-30300820-1001".into(),
            pid: 4242,
            is_system: system,
            is_admin: admin,
            in_users_group: member,
        }
    }

    #[test]
    fn sddl_admits_system_admins_and_the_group_and_denies_network() {
        let s = pipe_sddl(GROUP_SID).unwrap();
        assert_eq!(
            s,
            "O:SYG:SYD:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)\
             (A;;0x12019b;;;S-1-5-21-3623811015-3361044348-30300820-1013)"
        );
        // Deny entries must come first to take effect in a protected DACL.
        assert!(s.find("(D;").unwrap() < s.find("(A;").unwrap());
        // Nobody else: no Everyone (WD), Authenticated Users (AU) or Users (BU) entry.
        for other in [";WD)", ";AU)", ";BU)", ";IU)"] {
            assert!(!s.contains(other), "{other} in {s}");
        }
        // The group may not create pipe instances: no GA/GW, and the mask lacks 0x4.
        assert!(!s.contains(&format!("(A;;GA;;;{GROUP_SID})")));
        assert!(!s.contains("GW"));
        assert_eq!(USERS_ACCESS & FILE_CREATE_PIPE_INSTANCE, 0);
        // ... but may read and write data (what ipc::Client asks for).
        let client_wants = 0x0012_0089 | 0x2; // FILE_GENERIC_READ | FILE_WRITE_DATA
        assert_eq!(USERS_ACCESS & client_wants, client_wants);
    }

    #[test]
    fn sddl_refuses_anything_but_a_sid() {
        for bad in [
            "",
            "OxiVPN Users",
            "S-1-5-21)(A;;GA;;;WD",
            "S-1-",
            "S-2-5-32-544",
            "s-1-5-32-544",
            "S-1-5-32-544;",
            "S-1-5-99999999999",
        ] {
            assert_eq!(pipe_sddl(bad), Err(BadSid(bad.into())), "{bad:?}");
        }
        assert!(pipe_sddl("S-1-5-32-544").is_ok());
    }

    #[test]
    fn system_and_elevated_admins_are_privileged_members_are_not() {
        assert_eq!(authorize(&id(true, false, false)), Ok(Role::Privileged));
        assert_eq!(authorize(&id(false, true, false)), Ok(Role::Privileged));
        assert_eq!(authorize(&id(false, false, true)), Ok(Role::Member));
        assert_eq!(peer_uid(&id(false, true, true)), 0);
        assert_eq!(peer_uid(&id(false, false, true)), 1001);
    }

    #[test]
    fn strangers_are_refused_naming_the_group() {
        let e = authorize(&id(false, false, false)).unwrap_err();
        match &e {
            IpcError::NotAuthorized { uid, group } => {
                assert_eq!(*uid, 1001);
                assert_eq!(group.as_str(), "OxiVPN Users");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn odd_user_sids_never_map_to_uid_zero() {
        let mut i = id(false, false, true);
        i.user_sid = "S-1-5-21-1-2-3-0".into();
        assert_eq!(peer_uid(&i), u32::MAX);
        i.user_sid = "garbage".into();
        assert_eq!(peer_uid(&i), u32::MAX);
    }
}
