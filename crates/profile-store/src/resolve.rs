//! Read the files a profile names (next to it), check and inline them.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ovpn_profile::{
    limits::MAX_BLOCK_BYTES, AuthUserPass, Credential, FileKind, FileNeed, Finding, Profile,
    ProxyAuth, Report, Severity,
};

/// A user name and password taken out of a profile, for the OS keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A profile with every file it names found, checked and inlined where possible.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The self-contained profile (`None` when the text could not be read at all).
    /// Credentials are removed from it; refused directives were never in it.
    pub profile: Option<Profile>,
    /// The import report, updated with what happened to each referenced file.
    pub report: Report,
    /// `auth-user-pass` user name and password (from a file or inline), for the keyring.
    pub credentials: Option<Credentials>,
    /// Proxy user name and password, for the keyring.
    pub proxy_credentials: Option<Credentials>,
}

/// Why a profile file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot read profile {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
}

/// Read a profile file and resolve its references next to it.
pub fn resolve(path: &Path) -> Result<Resolved, ResolveError> {
    let limit = ovpn_profile::limits::MAX_PROFILE_BYTES;
    let bytes = match read_limited(path, limit) {
        Ok(b) => b,
        Err(ReadErr::NotAFile) => {
            return Err(ResolveError::NotAFile {
                path: path.to_path_buf(),
            })
        }
        Err(ReadErr::Io(source)) => {
            return Err(ResolveError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(ReadErr::TooBig { size, head }) => {
            // Report it like the parser does: the size and the line where the limit falls.
            let lines = head.iter().take(limit).filter(|&&b| b == b'\n').count();
            let e = ovpn_profile::ParseError {
                line: u32::try_from(lines).unwrap_or(u32::MAX).saturating_add(1),
                kind: ovpn_profile::ParseErrorKind::TooLarge { size },
            };
            let report = ovpn_profile::report_for_error(&e);
            return Ok(Resolved {
                profile: None,
                report,
                credentials: None,
                proxy_credentials: None,
            });
        }
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(resolve_bytes(&bytes, &dir))
}

enum ReadErr {
    NotAFile,
    /// Larger than the limit: the real size and the first `limit + 1` bytes.
    TooBig {
        size: usize,
        head: Vec<u8>,
    },
    Io(std::io::Error),
}

/// Read at most `limit` bytes of a regular file (FIFOs and devices are refused
/// before opening, so a hostile name cannot make us block).
fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, ReadErr> {
    let meta = std::fs::metadata(path).map_err(ReadErr::Io)?;
    if !meta.is_file() {
        return Err(ReadErr::NotAFile);
    }
    let f = std::fs::File::open(path).map_err(ReadErr::Io)?;
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    f.take(cap).read_to_end(&mut buf).map_err(ReadErr::Io)?;
    if buf.len() > limit {
        let size = usize::try_from(meta.len())
            .unwrap_or(usize::MAX)
            .max(buf.len());
        return Err(ReadErr::TooBig { size, head: buf });
    }
    Ok(buf)
}

/// Where to look for a referenced file: as written (relative to the profile's
/// folder), then its bare name next to the profile.
fn candidates(dir: &Path, raw: &[u8]) -> Vec<PathBuf> {
    let written = path_from_bytes(raw);
    let mut v = Vec::new();
    if written.is_absolute() {
        v.push(written.clone());
    } else {
        v.push(dir.join(&written));
    }
    let text = String::from_utf8_lossy(raw);
    if let Some(base) = text.rsplit(['/', '\\']).next().filter(|b| !b.is_empty()) {
        let p = dir.join(base);
        if !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

#[cfg(unix)]
fn path_from_bytes(raw: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    PathBuf::from(std::ffi::OsStr::from_bytes(raw))
}

#[cfg(not(unix))]
fn path_from_bytes(raw: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(raw).into_owned())
}

/// File content as the text an inline block would hold.
fn as_block_text(kind: FileKind, bytes: Vec<u8>) -> Result<String, String> {
    if kind == FileKind::Pkcs12 {
        // PKCS#12 files are DER; inline blocks hold base64.
        if bytes.first() == Some(&0x30) {
            ovpn_profile::check_pkcs12_der(&bytes).map_err(|e| format!("the file {e}"))?;
            return Ok(base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
    }
    String::from_utf8(bytes).map_err(|_| "the file is not text (and not PEM)".to_string())
}

/// Resolve the references of profile `bytes` whose folder is `dir`.
pub fn resolve_bytes(bytes: &[u8], dir: &Path) -> Resolved {
    let (profile, mut report) = ovpn_profile::import(bytes);
    let Some(mut profile) = profile else {
        return Resolved {
            profile: None,
            report,
            credentials: None,
            proxy_credentials: None,
        };
    };
    let mut credentials = None;
    let mut proxy_credentials = None;
    let mut still_needed = Vec::new();
    let mut errors = Vec::new();
    for need in std::mem::take(&mut report.needs_files) {
        if need.kind == FileKind::ClientCertAndKey || need.raw_path.is_empty() {
            still_needed.push(need);
            continue;
        }
        match find_and_read(dir, &need) {
            None => still_needed.push(need),
            Some((path, Err(e))) => {
                let msg = format!("the file {} could not be used: {e}", path.display());
                errors.push((need.line, need.kind, msg));
            }
            Some((path, Ok(data))) => {
                let shown = path.display().to_string();
                let outcome = if need.kind.is_credentials() {
                    String::from_utf8(data)
                        .map_err(|_| "it is not text".to_string())
                        .and_then(|t| ovpn_profile::parse_credentials(&t))
                        .map(|(username, password)| {
                            let c = Credentials { username, password };
                            if need.kind == FileKind::AuthUserPass {
                                credentials = Some(c);
                            } else {
                                proxy_credentials = Some(c);
                            }
                            "read the user name and password; they go to the system keyring, not into the stored profile".to_string()
                        })
                } else {
                    as_block_text(need.kind, data)
                        .and_then(|t| profile.inline_material(need.kind, &t))
                        .map(|ok| format!("read and inlined ({})", ok.summary))
                };
                match outcome {
                    Ok(msg) => replace_need_finding(
                        &mut report,
                        &need,
                        Severity::Honoured,
                        format!("{shown}: {msg}"),
                    ),
                    Err(e) => errors.push((
                        need.line,
                        need.kind,
                        format!("the file {shown} could not be used: {e}"),
                    )),
                }
            }
        }
    }
    // Credentials never stay in the stored profile.
    if let Some((username, password)) = profile.take_credentials() {
        credentials = Some(Credentials { username, password });
    }
    strip_proxy_credentials(&mut profile);
    for (line, kind, msg) in errors {
        replace_need_finding(
            &mut report,
            &FileNeed {
                line,
                kind,
                path: String::new(),
                raw_path: Vec::new(),
                how_to_inline: String::new(),
            },
            Severity::Error,
            msg.clone(),
        );
        if report.usable {
            report.usable = false;
            let at = line.map_or_else(String::new, |l| {
                format!("line {l} ({}): ", kind.directive())
            });
            report.reason = Some(format!("{at}{msg}"));
        }
    }
    report.needs_files = still_needed;
    Resolved {
        profile: Some(profile),
        report,
        credentials,
        proxy_credentials,
    }
}

fn strip_proxy_credentials(p: &mut Profile) {
    for o in std::iter::once(&mut p.conn).chain(p.connections.iter_mut().map(|c| &mut c.options)) {
        if let Some(h) = o.http_proxy.as_mut() {
            if matches!(h.auth, Some(ProxyAuth::Credentials(_))) {
                h.auth = Some(ProxyAuth::Prompt);
            }
        }
        if let Some(s) = o.socks_proxy.as_mut() {
            s.auth = None;
        }
    }
    if let Some(AuthUserPass::Credentials(Credential::File(_))) = &p.auth_user_pass {
        p.auth_user_pass = Some(AuthUserPass::Prompt);
    }
}

fn find_and_read(dir: &Path, need: &FileNeed) -> Option<(PathBuf, Result<Vec<u8>, String>)> {
    let limit = MAX_BLOCK_BYTES;
    for path in candidates(dir, &need.raw_path) {
        match read_limited(&path, limit) {
            Ok(b) => return Some((path, Ok(b))),
            Err(ReadErr::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(ReadErr::Io(e)) => return Some((path, Err(e.to_string()))),
            Err(ReadErr::NotAFile) => return Some((path, Err("it is not a regular file".into()))),
            Err(ReadErr::TooBig { .. }) => {
                return Some((path, Err(format!("it is larger than {limit} bytes"))))
            }
        }
    }
    None
}

/// Replace the needs-file finding for `need` (same line and directive).
fn replace_need_finding(report: &mut Report, need: &FileNeed, severity: Severity, message: String) {
    let directive = need.kind.directive();
    // One directive per line, so the line identifies the finding (the directive
    // shown may differ, e.g. `http-proxy` for proxy credentials).
    let found = report
        .findings
        .iter_mut()
        .find(|f| f.severity == Severity::NeedsFile && need.line.is_some() && f.line == need.line);
    match found {
        Some(f) => {
            f.severity = severity;
            f.message = message;
        }
        None => report.findings.push(Finding {
            line: need.line,
            directive: directive.into(),
            severity,
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_try_written_path_then_bare_name() {
        let c = candidates(Path::new("/p"), b"keys/ca.crt");
        assert_eq!(
            c,
            vec![PathBuf::from("/p/keys/ca.crt"), PathBuf::from("/p/ca.crt")]
        );
        let c = candidates(Path::new("/p"), b"/etc/openvpn/ca.crt");
        assert_eq!(
            c,
            vec![
                PathBuf::from("/etc/openvpn/ca.crt"),
                PathBuf::from("/p/ca.crt")
            ]
        );
        let c = candidates(Path::new("/p"), br"C:\vpn\ta.key");
        assert_eq!(c[1], PathBuf::from("/p/ta.key"));
    }
}
