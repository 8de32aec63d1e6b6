//! Inline the files a profile names: find each one next to the profile, check it
//! and put its content into the profile (credentials go out for the keyring).
//!
//! Pure: the caller supplies the reader ([`ReadFile`]), so this crate opens
//! nothing. profile-store (app and CLI, as the user) reads through the file system;
//! the helper's foreground `connect` can do the same without depending on
//! profile-store.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::limits::{MAX_BLOCK_BYTES, MAX_PROFILE_BYTES};
use crate::{
    AuthUserPass, Credential, FileKind, FileNeed, Finding, ParseError, ParseErrorKind, Profile,
    ProxyAuth, Report, Severity,
};

/// Why the reader could not hand over a file.
#[derive(Debug)]
pub enum ReadFailure {
    /// Not a regular file (a folder, FIFO or device; refused before opening).
    NotAFile,
    /// Larger than the limit: its real size and the first `limit + 1` bytes.
    TooBig { size: usize, head: Vec<u8> },
    /// Any I/O error; `NotFound` means "try the next place".
    Io(std::io::Error),
}

/// Reads at most `limit` bytes of the regular file at a path
/// ([`ReadFailure::TooBig`] when it holds more).
pub trait ReadFile {
    fn read(&mut self, path: &Path, limit: usize) -> Result<Vec<u8>, ReadFailure>;
}

impl<F> ReadFile for F
where
    F: FnMut(&Path, usize) -> Result<Vec<u8>, ReadFailure>,
{
    fn read(&mut self, path: &Path, limit: usize) -> Result<Vec<u8>, ReadFailure> {
        self(path, limit)
    }
}

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

/// A passphrase read from an `askpass` file. Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPassphrase(pub String);

impl std::fmt::Debug for KeyPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPassphrase(<redacted>)")
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
    /// The private key's passphrase from `askpass FILE`, for the keyring.
    pub key_passphrase: Option<KeyPassphrase>,
    /// Referenced files found nowhere, with every place that was tried.
    pub missing: Vec<MissingFile>,
}

/// A referenced file that was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingFile {
    pub need: FileNeed,
    /// Where it was looked for, in order.
    pub looked: Vec<PathBuf>,
}

/// A file the user names for a reference (`--file NAME=PATH`): `name` matches the
/// path as written in the profile or its bare file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supplied {
    pub name: String,
    pub path: PathBuf,
}

impl Supplied {
    fn matches(&self, written: &[u8]) -> bool {
        let w = String::from_utf8_lossy(written);
        let base = w.rsplit(['/', '\\']).next().unwrap_or(&w);
        self.name == w || self.name == base
    }
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

/// Read a profile file through `reader` and resolve its references next to it.
pub fn resolve_path(path: &Path, reader: &mut impl ReadFile) -> Result<Resolved, ResolveError> {
    resolve_path_with(path, &[], reader)
}

/// [`resolve_path`], taking the files in `supplied` instead of looking for them.
pub fn resolve_path_with(
    path: &Path,
    supplied: &[Supplied],
    reader: &mut impl ReadFile,
) -> Result<Resolved, ResolveError> {
    let limit = MAX_PROFILE_BYTES;
    let bytes = match reader.read(path, limit) {
        Ok(b) => b,
        Err(ReadFailure::NotAFile) => {
            return Err(ResolveError::NotAFile {
                path: path.to_path_buf(),
            })
        }
        Err(ReadFailure::Io(source)) => {
            return Err(ResolveError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(ReadFailure::TooBig { size, head }) => {
            // Report it like the parser does: the size and the line where the limit falls.
            let lines = head.iter().take(limit).filter(|&&b| b == b'\n').count();
            let e = ParseError {
                line: u32::try_from(lines).unwrap_or(u32::MAX).saturating_add(1),
                kind: ParseErrorKind::TooLarge { size },
            };
            let report = crate::report_for_error(&e);
            return Ok(Resolved {
                profile: None,
                report,
                credentials: None,
                proxy_credentials: None,
                key_passphrase: None,
                missing: Vec::new(),
            });
        }
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(resolve_bytes_with(&bytes, &dir, supplied, reader))
}

/// Where to look for a referenced file: as written (relative to the profile's
/// folder), then its bare name next to the profile.
pub fn candidates(dir: &Path, raw: &[u8]) -> Vec<PathBuf> {
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
            crate::check_pkcs12_der(&bytes).map_err(|e| format!("the file {e}"))?;
            return Ok(base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
    }
    String::from_utf8(bytes).map_err(|_| "the file is not text (and not PEM)".to_string())
}

/// Resolve the references of profile `bytes` whose folder is `dir`, reading
/// each referenced file through `reader`.
pub fn resolve_bytes(bytes: &[u8], dir: &Path, reader: &mut impl ReadFile) -> Resolved {
    resolve_bytes_with(bytes, dir, &[], reader)
}

/// [`resolve_bytes`], taking the files in `supplied` instead of looking for them.
pub fn resolve_bytes_with(
    bytes: &[u8],
    dir: &Path,
    supplied: &[Supplied],
    reader: &mut impl ReadFile,
) -> Resolved {
    let (profile, mut report) = crate::import(bytes);
    let Some(mut profile) = profile else {
        return Resolved {
            profile: None,
            report,
            credentials: None,
            proxy_credentials: None,
            key_passphrase: None,
            missing: Vec::new(),
        };
    };
    let mut credentials = None;
    let mut proxy_credentials = None;
    let mut key_passphrase = None;
    let mut still_needed = Vec::new();
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    for need in std::mem::take(&mut report.needs_files) {
        if need.kind == FileKind::ClientCertAndKey || need.raw_path.is_empty() {
            still_needed.push(need);
            continue;
        }
        let places = match supplied.iter().find(|s| s.matches(&need.raw_path)) {
            Some(s) => vec![s.path.clone()],
            None => candidates(dir, &need.raw_path),
        };
        match find_and_read(&places, reader) {
            None => {
                missing.push(MissingFile {
                    need: need.clone(),
                    looked: places,
                });
                still_needed.push(need);
            }
            Some((path, Err(e))) => {
                let msg = format!("the file {} could not be used: {e}", path.display());
                errors.push((need.line, need.kind, msg));
            }
            Some((path, Ok(data))) => {
                let shown = path.display().to_string();
                let outcome = if need.kind == FileKind::Askpass {
                    String::from_utf8(data)
                        .map_err(|_| "it is not text".to_string())
                        .and_then(|t| crate::material::parse_passphrase(&t))
                        .map(|p| {
                            key_passphrase = Some(KeyPassphrase(p));
                            "read the private key's passphrase; it goes to the system keyring, not into the stored profile".to_string()
                        })
                } else if need.kind.is_credentials() {
                    String::from_utf8(data)
                        .map_err(|_| "it is not text".to_string())
                        .and_then(|t| crate::parse_credentials(&t))
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
                    Ok(msg) if need.kind == FileKind::CrlVerify => replace_need_finding(
                        &mut report,
                        &need,
                        Severity::Honoured,
                        format!(
                            "{shown}: {msg}; the server's certificate chain is checked against it"
                        ),
                    ),
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
        key_passphrase,
        missing,
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
            if matches!(s.auth, Some(ProxyAuth::Credentials(_))) {
                s.auth = Some(ProxyAuth::Prompt);
            }
        }
    }
    if let Some(AuthUserPass::Credentials(Credential::File(_))) = &p.auth_user_pass {
        p.auth_user_pass = Some(AuthUserPass::Prompt);
    }
}

fn find_and_read(
    places: &[PathBuf],
    reader: &mut impl ReadFile,
) -> Option<(PathBuf, Result<Vec<u8>, String>)> {
    let limit = MAX_BLOCK_BYTES;
    for path in places {
        let path = path.clone();
        match reader.read(&path, limit) {
            Ok(b) => return Some((path, Ok(b))),
            Err(ReadFailure::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(ReadFailure::Io(e)) => return Some((path, Err(e.to_string()))),
            Err(ReadFailure::NotAFile) => {
                return Some((path, Err("it is not a regular file".into())))
            }
            Err(ReadFailure::TooBig { .. }) => {
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
    use std::collections::BTreeMap;

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

    /// An in-memory reader: the inlining works without any file system.
    #[test]
    fn resolves_through_the_callers_reader() {
        let mut files = BTreeMap::new();
        files.insert(
            PathBuf::from("/p/vpn.ovpn"),
            b"client\nremote vpn.example.com\nca keys/ca.crt\nauth-user-pass creds.txt\n".to_vec(),
        );
        files.insert(
            PathBuf::from("/p/ca.crt"),
            include_bytes!("../tests/fixtures/ca.crt").to_vec(),
        );
        files.insert(PathBuf::from("/p/creds.txt"), b"alice\npw\n".to_vec());
        let mut asked = Vec::new();
        let mut reader = |p: &Path, _limit: usize| {
            asked.push(p.to_path_buf());
            files
                .get(p)
                .cloned()
                .ok_or_else(|| ReadFailure::Io(std::io::ErrorKind::NotFound.into()))
        };
        let r = resolve_path(Path::new("/p/vpn.ovpn"), &mut reader).unwrap();
        assert!(r.report.usable, "{}", r.report.to_text());
        assert!(r.report.needs_files.is_empty());
        let p = r.profile.unwrap();
        assert!(matches!(p.ca, Some(crate::Material::Inline(_))));
        assert_eq!(p.auth_user_pass, Some(AuthUserPass::Prompt));
        assert_eq!(r.credentials.unwrap().username, "alice");
        assert!(r.missing.is_empty());
        assert_eq!(
            asked,
            vec![
                PathBuf::from("/p/vpn.ovpn"),
                PathBuf::from("/p/keys/ca.crt"),
                PathBuf::from("/p/ca.crt"),
                PathBuf::from("/p/creds.txt"),
            ]
        );
    }

    #[test]
    fn askpass_file_is_read_for_the_keyring_and_never_stored() {
        let profile =
            b"client\nremote vpn.example.com\nca ca.crt\ncert c.crt\nkey k.pem\naskpass pass.txt\n"
                .to_vec();
        let ca = include_bytes!("../tests/fixtures/ca.crt").to_vec();
        let cert = include_bytes!("../tests/fixtures/client.crt").to_vec();
        let key = include_bytes!("../tests/fixtures/client.key").to_vec();
        let mut with_pass = true;
        let run = |with_pass: bool| {
            let mut reader = |p: &Path, _limit: usize| -> Result<Vec<u8>, ReadFailure> {
                // Windows joins paths with a backslash: compare with forward slashes.
                match p.to_str().map(|s| s.replace('\\', "/")).as_deref() {
                    Some("/p/vpn.ovpn") => Ok(profile.clone()),
                    Some("/p/ca.crt") => Ok(ca.clone()),
                    Some("/p/c.crt") => Ok(cert.clone()),
                    Some("/p/k.pem") => Ok(key.clone()),
                    Some("/p/pass.txt") if with_pass => Ok(b"s3cret phrase\nignored\n".to_vec()),
                    _ => Err(ReadFailure::Io(std::io::ErrorKind::NotFound.into())),
                }
            };
            resolve_path(Path::new("/p/vpn.ovpn"), &mut reader).unwrap()
        };
        let r = run(with_pass);
        assert!(r.report.usable, "{}", r.report.to_text());
        assert_eq!(
            r.key_passphrase,
            Some(KeyPassphrase("s3cret phrase".into()))
        );
        assert!(!format!("{r:?}").contains("s3cret"));
        let f = r
            .report
            .findings
            .iter()
            .find(|f| f.directive == "askpass")
            .unwrap();
        assert_eq!(f.severity, Severity::Honoured, "{f:?}");
        assert!(f.message.contains("keyring"), "{f:?}");
        let text = r.profile.unwrap().to_ovpn_text();
        assert!(
            !text.contains("askpass") && !text.contains("s3cret"),
            "{text}"
        );
        // Without the file: nothing read, and the need is a credential (asked at connect).
        with_pass = false;
        let r = run(with_pass);
        assert_eq!(r.key_passphrase, None);
        assert_eq!(r.missing.len(), 1);
        assert_eq!(r.missing[0].need.kind, FileKind::Askpass);
        assert!(r.missing[0].need.kind.is_credentials());
    }

    #[test]
    fn missing_files_say_where_they_were_looked_for_and_can_be_supplied() {
        let profile = b"client\nremote vpn.example.com\nca keys/ca.crt\n".to_vec();
        let ca = include_bytes!("../tests/fixtures/ca.crt").to_vec();
        let mut reader = |p: &Path, _limit: usize| -> Result<Vec<u8>, ReadFailure> {
            match p.to_str() {
                Some("/p/vpn.ovpn") => Ok(profile.clone()),
                Some("/elsewhere/my-ca.pem") => Ok(ca.clone()),
                _ => Err(ReadFailure::Io(std::io::ErrorKind::NotFound.into())),
            }
        };
        let r = resolve_path(Path::new("/p/vpn.ovpn"), &mut reader).unwrap();
        assert_eq!(r.missing.len(), 1);
        assert_eq!(r.missing[0].need.path, "keys/ca.crt");
        assert_eq!(r.missing[0].need.line, Some(3));
        assert_eq!(
            r.missing[0].looked,
            vec![PathBuf::from("/p/keys/ca.crt"), PathBuf::from("/p/ca.crt")]
        );
        for name in ["keys/ca.crt", "ca.crt"] {
            let supplied = [Supplied {
                name: name.into(),
                path: PathBuf::from("/elsewhere/my-ca.pem"),
            }];
            let r = resolve_path_with(Path::new("/p/vpn.ovpn"), &supplied, &mut reader).unwrap();
            assert!(r.missing.is_empty(), "{name}");
            // Only the missing client certificate (no file named) is left.
            assert!(
                r.report
                    .needs_files
                    .iter()
                    .all(|n| n.kind == FileKind::ClientCertAndKey),
                "{name}"
            );
            assert!(matches!(
                r.profile.unwrap().ca,
                Some(crate::Material::Inline(_))
            ));
        }
        // A supplied path that does not exist is reported as the only place looked at.
        let supplied = [Supplied {
            name: "ca.crt".into(),
            path: PathBuf::from("/nowhere/ca.crt"),
        }];
        let r = resolve_path_with(Path::new("/p/vpn.ovpn"), &supplied, &mut reader).unwrap();
        assert_eq!(r.missing[0].looked, vec![PathBuf::from("/nowhere/ca.crt")]);
    }
}
