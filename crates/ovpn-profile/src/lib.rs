//! .ovpn text to a typed Profile and an import report; pure, no I/O.
//!
//! Entry points: [`parse`] (profile + report, or a fatal [`ParseError`]),
//! [`import`] (always a report), and [`check_untrusted`] for the privileged helper,
//! which refuses anything that would make it run a program or open a path.
//!
//! What each OpenVPN option does in OxiVPN (its handler, class, reason, whether it
//! may appear in `<connection>`, and the root helper's guard rule) is one table,
//! [`directives`]; parsing, the report and the helper all read it.
//!
//! Option names are case-sensitive in OpenVPN; we follow that, except that refused
//! directives are refused in any spelling (`UP`, `Up`): the safe choice. Another
//! spelling of a harmless option (`Remote`) is reported as unknown, as OpenVPN would.
//!
//! Usability policy (the `usable` verdict of the [`Report`]):
//! - unusable: the text cannot be read (limits, binary data, broken quoting,
//!   unterminated block), a line-numbered error (bad argument, template placeholder,
//!   empty/truncated/wrong material), no `remote`, no CA (`ca`, `peer-fingerprint`
//!   or a PKCS#12 bundle), a server configuration, no `client`/`pull`
//!   (point-to-point mode), static-key `secret`, `dev tap`, `fragment`,
//!   PKCS#11/CryptoAPI, `tls-version-max` below 1.2;
//! - still usable: refused directives (dropped, never carried out), ignored and
//!   unknown options, TLS lists naming only suites rustls lacks (defaults are
//!   used), removed options such as `tls-remote`, missing referenced files and a
//!   missing client certificate (both listed as "needs file").
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod build;
pub mod directives;
mod error;
pub mod inline;
mod lexer;
pub mod limits;
mod material;
mod profile;
mod reader;
mod report;
mod serialize;
mod tls_names;

pub use error::{ParseError, ParseErrorKind};
pub use inline::{
    Credentials, MissingFile, ReadFailure, ReadFile, ResolveError, Resolved, Supplied,
};
pub use lexer::{quote, tokenize, LexError};
pub use material::{check as check_material, check_pkcs12_der, parse_credentials, MaterialOk};
pub use profile::*;
pub use reader::{read as read_directives, Block, RawDirective};
pub use report::{FileKind, FileNeed, Finding, Report, Severity};
pub use tls_names::{TlsGroup, TlsSuite};

/// A parsed profile with its import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub profile: Profile,
    pub report: Report,
}

/// Parse profile bytes. `Err` only when the text cannot be read at all (limits,
/// binary data, unterminated block, broken quoting); everything else is a finding.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
    let directives = reader::read(bytes)?;
    let mut b = build::Builder::new();
    for d in &directives {
        b.apply(d);
    }
    let (profile, report) = b.finish();
    Ok(Parsed { profile, report })
}

/// Parse and always return a report (a fatal error becomes an unusable report).
pub fn import(bytes: &[u8]) -> (Option<Profile>, Report) {
    match parse(bytes) {
        Ok(p) => (Some(p.profile), p.report),
        Err(e) => (None, report_for_error(&e)),
    }
}

/// The report for a profile that could not be read.
pub fn report_for_error(e: &ParseError) -> Report {
    let msg = e.kind.to_string();
    Report {
        findings: vec![Finding {
            line: Some(e.line),
            directive: String::new(),
            severity: Severity::Error,
            message: msg,
        }],
        needs_files: Vec::new(),
        usable: false,
        reason: Some(format!("line {}: {}", e.line, e.kind)),
    }
}

/// Why the helper refuses profile text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntrustedError {
    #[error("profile cannot be read: {0}")]
    Parse(#[from] ParseError),
    #[error("line {line}: `{directive}` is refused: {message}")]
    Refused {
        line: u32,
        directive: String,
        message: String,
    },
    #[error("line {line}: `{directive}` refers to the file {path:?}; the helper only accepts self-contained profiles")]
    FileReference {
        line: u32,
        directive: String,
        path: String,
    },
    #[error("profile is not usable: {0}")]
    Unusable(String),
}

/// Validation for the privileged helper: the profile must be self-contained, usable,
/// and free of any refused directive (the import drops them, so finding one means
/// the text did not come from our import).
pub fn check_untrusted(bytes: &[u8]) -> Result<Profile, UntrustedError> {
    let parsed = parse(bytes)?;
    let r = &parsed.report;
    if let Some(f) = r.findings.iter().find(|f| f.severity == Severity::Refused) {
        return Err(UntrustedError::Refused {
            line: f.line.unwrap_or(0),
            directive: f.directive.clone(),
            message: f.message.clone(),
        });
    }
    if let Some(n) = r
        .needs_files
        .iter()
        .find(|n| n.kind != FileKind::ClientCertAndKey)
    {
        return Err(UntrustedError::FileReference {
            line: n.line.unwrap_or(0),
            directive: n.kind.directive().to_string(),
            path: n.path.clone(),
        });
    }
    if parsed.profile.has_file_refs() {
        return Err(UntrustedError::Unusable(
            "the profile still names files".into(),
        ));
    }
    if !r.usable {
        return Err(UntrustedError::Unusable(
            r.reason.clone().unwrap_or_default(),
        ));
    }
    Ok(parsed.profile)
}

impl Profile {
    /// Put `text` (the content of a referenced file) in place of the file reference
    /// of `kind`, after checking it holds what that directive needs.
    /// Credential kinds are refused here: use [`parse_credentials`] and the keyring.
    pub fn inline_material(&mut self, kind: FileKind, text: &str) -> Result<MaterialOk, String> {
        let text = normalise_text(text);
        let has_dir = self.key_direction.is_some()
            || self
                .tls_auth
                .as_ref()
                .is_some_and(|t| t.direction.is_some());
        let ok = material::check(kind, &text, has_dir)?;
        let m = Some(Material::Inline(text));
        match kind {
            FileKind::Ca => self.ca = m,
            FileKind::Cert => self.cert = m,
            FileKind::Key => self.key = m,
            FileKind::ExtraCerts => self.extra_certs = m,
            FileKind::Pkcs12 => self.pkcs12 = m,
            FileKind::TlsCrypt => self.tls_crypt = m,
            FileKind::TlsCryptV2 => self.tls_crypt_v2 = m,
            FileKind::CrlVerify => self.crl_verify = m,
            FileKind::TlsAuth => {
                let dir = self.tls_auth.as_ref().and_then(|t| t.direction);
                // An inline <tls-auth> cannot carry a direction; move it to key-direction.
                if self.key_direction.is_none() {
                    self.key_direction = dir;
                }
                if let Some(Material::Inline(t)) = m {
                    self.tls_auth = Some(TlsAuth {
                        key: Material::Inline(t),
                        direction: None,
                    });
                }
            }
            _ => return Err(format!("{} cannot be inlined", kind.directive())),
        }
        Ok(ok)
    }

    /// Remove user name/password kept in the profile (inline block or file
    /// reference), leaving `auth-user-pass` to ask; returns inline ones.
    pub fn take_credentials(&mut self) -> Option<(String, Option<String>)> {
        match self.auth_user_pass.take() {
            Some(AuthUserPass::Credentials(Credential::Inline { username, password })) => {
                self.auth_user_pass = Some(AuthUserPass::Prompt);
                Some((username, password))
            }
            Some(AuthUserPass::Credentials(Credential::File(_))) | Some(AuthUserPass::Prompt) => {
                self.auth_user_pass = Some(AuthUserPass::Prompt);
                None
            }
            None => None,
        }
    }
}

/// Text as an inline block holds it: no CRs, ending in a newline.
fn normalise_text(text: &str) -> String {
    let mut s: String = text.replace("\r\n", "\n").replace('\r', "\n");
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
