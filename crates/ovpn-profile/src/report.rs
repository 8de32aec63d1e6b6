//! The import report: what we found in a profile and whether it can be used.

use serde::Serialize;

/// How a finding affects the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// A remark; nothing to do.
    Info,
    /// The directive is understood and will be applied.
    Honoured,
    /// The directive is understood and has no effect for OxiVPN (with the reason).
    Ignored,
    /// OxiVPN cannot do what the directive asks.
    Unsupported,
    /// The directive would run a program or touch a path as root: dropped, never carried out.
    Refused,
    /// A file the profile names must be supplied (or inlined).
    NeedsFile,
    /// The profile is broken at this point.
    Error,
}

impl Severity {
    /// Short label for human output.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Honoured => "honoured",
            Severity::Ignored => "ignored",
            Severity::Unsupported => "unsupported",
            Severity::Refused => "refused",
            Severity::NeedsFile => "needs-file",
            Severity::Error => "error",
        }
    }
}

/// One thing the import has to say about a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// 1-based line, when the finding belongs to one.
    pub line: Option<u32>,
    /// The directive it is about (empty for whole-profile findings).
    pub directive: String,
    /// How it affects the profile.
    pub severity: Severity,
    /// Plain-language explanation for the user.
    pub message: String,
}

/// What kind of material a referenced file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Ca,
    Cert,
    Key,
    ExtraCerts,
    Pkcs12,
    TlsAuth,
    TlsCrypt,
    TlsCryptV2,
    Secret,
    CrlVerify,
    Dh,
    /// `auth-user-pass FILE`: user name and password, for the keyring.
    AuthUserPass,
    /// `http-proxy host port FILE`: proxy user name and password.
    HttpProxyUserPass,
    /// No client certificate/key at all (not a file name, a missing ingredient).
    ClientCertAndKey,
    /// `askpass FILE`: the private key's passphrase (first line), for the keyring.
    Askpass,
}

impl FileKind {
    /// The OpenVPN directive (and inline tag) for this kind.
    pub fn directive(self) -> &'static str {
        match self {
            FileKind::Ca => "ca",
            FileKind::Cert => "cert",
            FileKind::Key => "key",
            FileKind::ExtraCerts => "extra-certs",
            FileKind::Pkcs12 => "pkcs12",
            FileKind::TlsAuth => "tls-auth",
            FileKind::TlsCrypt => "tls-crypt",
            FileKind::TlsCryptV2 => "tls-crypt-v2",
            FileKind::Secret => "secret",
            FileKind::CrlVerify => "crl-verify",
            FileKind::Dh => "dh",
            FileKind::AuthUserPass => "auth-user-pass",
            FileKind::HttpProxyUserPass => "http-proxy-user-pass",
            FileKind::ClientCertAndKey => "cert",
            FileKind::Askpass => "askpass",
        }
    }

    /// True for files holding a user name and password (kept in the keyring, never inlined).
    pub fn is_credentials(self) -> bool {
        matches!(
            self,
            FileKind::AuthUserPass | FileKind::HttpProxyUserPass | FileKind::Askpass
        )
    }
}

/// A file the profile refers to and that must be supplied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileNeed {
    /// Line of the directive naming the file (None for a missing ingredient).
    pub line: Option<u32>,
    /// What the file must hold.
    pub kind: FileKind,
    /// The file name as written (lossy UTF-8; empty for a missing ingredient).
    pub path: String,
    /// The file name as bytes, for opening it.
    #[serde(skip)]
    pub raw_path: Vec<u8>,
    /// How to make the profile self-contained.
    pub how_to_inline: String,
}

/// The import report for one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Findings in line order (whole-profile findings last).
    pub findings: Vec<Finding>,
    /// Files to supply.
    pub needs_files: Vec<FileNeed>,
    /// Whether OxiVPN can connect with this profile (once needed files are supplied).
    pub usable: bool,
    /// One line saying why not, when not usable.
    pub reason: Option<String>,
}

impl Report {
    /// Number of refused directives.
    pub fn refused_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Refused)
            .count()
    }

    /// Findings of one severity.
    pub fn with_severity(&self, s: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == s)
    }

    /// Human-readable report: one line per finding, then the verdict.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let line = f.line.map_or_else(|| "-".to_string(), |l| l.to_string());
            let dir = if f.directive.is_empty() {
                String::new()
            } else {
                format!(" {}:", f.directive)
            };
            s.push_str(&format!(
                "  line {line:>4} {:<11}{dir} {}\n",
                f.severity.label(),
                f.message
            ));
        }
        match (&self.usable, &self.reason) {
            (true, _) => s.push_str("  => usable\n"),
            (false, Some(r)) => s.push_str(&format!("  => NOT usable: {r}\n")),
            (false, None) => s.push_str("  => NOT usable\n"),
        }
        s
    }
}
