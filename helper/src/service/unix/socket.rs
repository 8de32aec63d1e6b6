//! Creating the Unix socket with the right owner and mode before anyone can connect.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chown, Gid};
use tokio::net::UnixListener;

/// Binds `path` as owner:gid with `mode`. A stale socket from a crashed helper is
/// replaced; a live one (another helper answering) or a non-socket file is an error.
pub fn bind(path: &Path, gid: u32, mode: u32) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating socket directory {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("setting mode of {}", dir.display()))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("another helper is already listening on {}", path.display());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    // Created with no access for anyone but the owner, then opened up to the group:
    // there is no moment where the socket is wider than `mode`.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.with_context(|| format!("binding {}", path.display()))?;
    chown(path, None, Some(Gid::from_raw(gid)))
        .with_context(|| format!("setting group of {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode of {}", path.display()))?;
    Ok(listener)
}
