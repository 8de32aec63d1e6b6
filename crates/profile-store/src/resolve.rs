//! Read the files a profile names (next to it) from the file system; the
//! checking and inlining itself is `ovpn_profile::inline`.

use std::io::Read as _;
use std::path::Path;

use ovpn_profile::inline::ReadFailure;
pub use ovpn_profile::inline::{Credentials, ResolveError, Resolved};

/// Read a profile file and resolve its references next to it.
pub fn resolve(path: &Path) -> Result<Resolved, ResolveError> {
    ovpn_profile::inline::resolve_path(path, &mut read_limited)
}

/// Resolve the references of profile `bytes` whose folder is `dir`.
pub fn resolve_bytes(bytes: &[u8], dir: &Path) -> Resolved {
    ovpn_profile::inline::resolve_bytes(bytes, dir, &mut read_limited)
}

/// Read at most `limit` bytes of a regular file (FIFOs and devices are refused
/// before opening, so a hostile name cannot make us block).
fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, ReadFailure> {
    let meta = std::fs::metadata(path).map_err(ReadFailure::Io)?;
    if !meta.is_file() {
        return Err(ReadFailure::NotAFile);
    }
    let f = std::fs::File::open(path).map_err(ReadFailure::Io)?;
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    f.take(cap).read_to_end(&mut buf).map_err(ReadFailure::Io)?;
    if buf.len() > limit {
        let size = usize::try_from(meta.len())
            .unwrap_or(usize::MAX)
            .max(buf.len());
        return Err(ReadFailure::TooBig { size, head: buf });
    }
    Ok(buf)
}
