//! The helper's named pipe on Windows: instances created with the security descriptor
//! from [`super::pipe_acl::pipe_sddl`], and the connected client's token read for
//! [`super::pipe_acl::authorize`].

#![allow(unsafe_code)] // Win32 security APIs; each call's contract is noted beside it.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::ptr::{null, null_mut};

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    CheckTokenMembership, CreateWellKnownSid, GetTokenInformation, LookupAccountNameW,
    RevertToSelf, TokenUser, WinBuiltinAdministratorsSid, WinLocalSystemSid, PSECURITY_DESCRIPTOR,
    PSID, SECURITY_ATTRIBUTES, SECURITY_MAX_SID_SIZE, SID_NAME_USE, TOKEN_QUERY, TOKEN_USER,
    WELL_KNOWN_SID_TYPE,
};
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeClientProcessId, GetNamedPipeHandleStateW, ImpersonateNamedPipeClient,
};
use windows_sys::Win32::System::Threading::{GetCurrentThread, OpenThreadToken};

use super::pipe_acl::{self, ClientIdentity};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A binary SID in its own buffer.
pub struct Sid(Vec<u8>);

impl Sid {
    fn psid(&self) -> PSID {
        self.0.as_ptr() as PSID
    }

    fn well_known(kind: WELL_KNOWN_SID_TYPE) -> io::Result<Self> {
        let mut buf = vec![0u8; SECURITY_MAX_SID_SIZE as usize];
        let mut len = SECURITY_MAX_SID_SIZE;
        // SAFETY: buf holds len bytes; no domain SID is needed for these kinds.
        let ok =
            unsafe { CreateWellKnownSid(kind, null_mut(), buf.as_mut_ptr() as PSID, &mut len) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(len as usize);
        Ok(Self(buf))
    }

    /// The SID of a local account or group by name.
    pub fn lookup(name: &str) -> io::Result<Self> {
        let name_w = wide(name);
        let mut sid = vec![0u8; SECURITY_MAX_SID_SIZE as usize];
        let mut sid_len = SECURITY_MAX_SID_SIZE;
        let mut domain = vec![0u16; 256];
        let mut domain_len = domain.len() as u32;
        let mut kind: SID_NAME_USE = 0;
        // SAFETY: every buffer is passed with its length in elements.
        let ok = unsafe {
            LookupAccountNameW(
                null(),
                name_w.as_ptr(),
                sid.as_mut_ptr() as PSID,
                &mut sid_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut kind,
            )
        };
        if ok == 0 {
            return Err(io::Error::other(format!(
                "looking up the local group {name:?}: {} (the installer creates it)",
                io::Error::last_os_error()
            )));
        }
        sid.truncate(sid_len as usize);
        Ok(Self(sid))
    }

    pub fn to_string_sid(&self) -> io::Result<String> {
        sid_to_string(self.psid())
    }
}

fn sid_to_string(sid: PSID) -> io::Result<String> {
    let mut out: *mut u16 = null_mut();
    // SAFETY: sid points at a valid SID; the string is LocalAlloc'ed and freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut out) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: out is a NUL-terminated UTF-16 string.
    let s = unsafe {
        let mut n = 0;
        while *out.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(out, n))
    };
    // SAFETY: allocated by ConvertSidToStringSidW.
    unsafe { LocalFree(out as _) };
    Ok(s)
}

/// The SIDs every connection is checked against.
pub struct Principals {
    system: Sid,
    admins: Sid,
    users_group: Sid,
}

impl Principals {
    pub fn new(users_group: &str) -> io::Result<Self> {
        Ok(Self {
            system: Sid::well_known(WinLocalSystemSid)?,
            admins: Sid::well_known(WinBuiltinAdministratorsSid)?,
            users_group: Sid::lookup(users_group)?,
        })
    }

    pub fn users_group(&self) -> &Sid {
        &self.users_group
    }
}

/// The pipe's security descriptor, kept alive while instances are created.
pub struct PipeSecurity {
    sd: PSECURITY_DESCRIPTOR,
}

// SAFETY: the descriptor is immutable after creation and only read by CreateNamedPipeW.
unsafe impl Send for PipeSecurity {}
unsafe impl Sync for PipeSecurity {}

impl PipeSecurity {
    pub fn new(users_group: &Sid) -> io::Result<Self> {
        let sddl = pipe_acl::pipe_sddl(&users_group.to_string_sid()?).map_err(io::Error::other)?;
        let w = wide(&sddl);
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: w is NUL-terminated; sd receives a LocalAlloc'ed descriptor (freed in Drop).
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        tracing::debug!(%sddl, "pipe security descriptor");
        Ok(Self { sd })
    }

    /// One pipe instance. The first one fails if anyone else already owns the name
    /// (FILE_FLAG_FIRST_PIPE_INSTANCE): a squatter cannot pose as the helper.
    pub fn create(&self, name: &str, first: bool) -> io::Result<NamedPipeServer> {
        let mut sa = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.sd,
            bInheritHandle: 0,
        };
        // SAFETY: sa and the descriptor it points at outlive the call.
        unsafe {
            ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(name, &mut sa as *mut _ as *mut c_void)
        }
    }
}

/// How many instances the pipe `pipe` belongs to has, ours and anyone else's.
///
/// Right after the helper created its first instance this must be 1: more means another
/// process serves the same name (a forged helper waiting for our clients). Real Windows
/// already refuses that first instance (FILE_FLAG_FIRST_PIPE_INSTANCE); Wine ignores the
/// flag but counts instances, and a second check costs nothing.
pub fn instance_count(pipe: &NamedPipeServer) -> io::Result<u32> {
    let mut n = 0u32;
    // SAFETY: a pipe handle we own; every out-pointer but the instance count is null
    // (allowed: the function fills only what is asked for).
    let ok = unsafe {
        GetNamedPipeHandleStateW(
            pipe.as_raw_handle() as HANDLE,
            null_mut(),
            &mut n,
            null_mut(),
            null_mut(),
            null_mut(),
            0,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

impl Drop for PipeSecurity {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.sd as _) };
    }
}

/// Undoes the thread's impersonation on every exit path.
struct Revert;

impl Drop for Revert {
    fn drop(&mut self) {
        // SAFETY: no arguments; ends the impersonation started on this thread.
        unsafe { RevertToSelf() };
    }
}

struct Token(HANDLE);

impl Drop for Token {
    fn drop(&mut self) {
        // SAFETY: a handle we opened.
        unsafe { CloseHandle(self.0) };
    }
}

/// Reads the client's identity. Windows allows impersonating a pipe client only after
/// data was read from it, so call this after the client's hello has arrived. Blocking
/// and thread-bound (impersonation is per thread): no await inside.
pub fn client_identity(pipe: &NamedPipeServer, who: &Principals) -> io::Result<ClientIdentity> {
    let h = pipe.as_raw_handle() as HANDLE;
    let mut pid = 0u32;
    // SAFETY: h is a connected server end of a pipe.
    if unsafe { GetNamedPipeClientProcessId(h, &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = {
        // SAFETY: as above; reverted by the guard before leaving this block.
        if unsafe { ImpersonateNamedPipeClient(h) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let _revert = Revert;
        let mut t: HANDLE = null_mut();
        // SAFETY: OpenAsSelf=TRUE: the access check uses the service's own identity.
        if unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, 1, &mut t) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Token(t)
    };
    let member = |sid: &Sid| -> io::Result<bool> {
        let mut is = 0;
        // SAFETY: token is an impersonation token with TOKEN_QUERY; sid is valid.
        if unsafe { CheckTokenMembership(token.0, sid.psid(), &mut is) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(is != 0)
    };
    Ok(ClientIdentity {
        user_sid: token_user_sid(&token)?,
        pid,
        is_system: member(&who.system)?,
        is_admin: member(&who.admins)?,
        in_users_group: member(&who.users_group)?,
    })
}

fn token_user_sid(token: &Token) -> io::Result<String> {
    let mut len = 0u32;
    // SAFETY: a size query with a null buffer; fails with ERROR_INSUFFICIENT_BUFFER.
    unsafe { GetTokenInformation(token.0, TokenUser, null_mut(), 0, &mut len) };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64 elements keep the TOKEN_USER aligned.
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: buf holds at least len bytes.
    if unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buf.as_mut_ptr() as *mut c_void,
            len,
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the buffer now starts with a TOKEN_USER whose SID points inside it.
    let user = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    sid_to_string(user.User.Sid)
}
