//! Profiles as the app sees them: a small repository trait (backed by profile-store in
//! the app, by memory in tests) and what the window shows about a profile, read from its
//! text with ovpn-profile.

use std::collections::BTreeMap;
use std::path::Path;

use ovpn_profile::{AuthUserPass, Material, Severity};

use crate::error::{AppError, ErrorKind};
use crate::model::{
    AuthKind, ChallengeView, FindingView, ImportReport, ProfileDetails, ProfileSummary, RemoteView,
    Verdict,
};
use crate::secrets::SavedCredentials;

/// A stored, self-contained profile.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredProfile {
    pub id: String,
    pub name: String,
    pub text: String,
}

impl std::fmt::Debug for StoredProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text holds private keys.
        f.debug_struct("StoredProfile")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where profiles live. Runs on the controller's task; calls are short file operations.
pub trait ProfileRepo: Send + 'static {
    fn list(&self) -> Result<Vec<StoredProfile>, AppError>;
    fn load(&self, id: &str) -> Result<StoredProfile, AppError>;
    /// Reads `path` (and the files it names: next to it, or as `supplied` by the
    /// user), stores the result when usable.
    fn import_file(
        &mut self,
        path: &Path,
        supplied: &[profile_store::Supplied],
    ) -> Result<Imported, AppError>;
    /// Checks downloaded profile text (no files next to it) and stores it when usable.
    fn import_bytes(&mut self, file_name: &str, bytes: &[u8]) -> Result<Imported, AppError>;
    fn rename(&mut self, id: &str, name: &str) -> Result<StoredProfile, AppError>;
    fn duplicate(&mut self, id: &str) -> Result<StoredProfile, AppError>;
    fn delete(&mut self, id: &str) -> Result<(), AppError>;
}

/// The outcome of one import.
#[derive(Debug)]
pub struct Imported {
    pub stored: Option<StoredProfile>,
    pub report: ImportReport,
    /// User name and password found in (or next to) the profile, for the keyring.
    pub credentials: Option<SavedCredentials>,
    /// The proxy's user name and password found in (or next to) the profile (an
    /// `http-proxy` / `socks-proxy` auth file, inline `<http-proxy-user-pass>`), for the
    /// proxy's keyring entry; never stored in the profile.
    pub proxy_credentials: Option<SavedCredentials>,
}

/// What must be asked before connecting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthNeeds {
    pub user_pass: bool,
    pub static_challenge: Option<ChallengeView>,
    pub key_passphrase: bool,
}

impl AuthNeeds {
    pub fn any(&self) -> bool {
        self.user_pass || self.key_passphrase
    }
}

/// Everything the app derives from a profile's text.
#[derive(Debug, Clone)]
pub struct Facts {
    pub summary: ProfileSummary,
    pub details: ProfileDetails,
    pub needs: AuthNeeds,
}

fn key_is_encrypted(m: &Option<Material>) -> bool {
    match m {
        Some(Material::Inline(text)) => {
            text.contains("BEGIN ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED")
        }
        _ => false,
    }
}

pub fn facts(p: &StoredProfile) -> Facts {
    let parsed = ovpn_profile::parse(p.text.as_bytes())
        .ok()
        .map(|x| x.profile);
    let Some(prof) = parsed else {
        let summary = ProfileSummary {
            id: p.id.clone(),
            name: p.name.clone(),
            server: "unknown".into(),
            protocol: "UDP".into(),
            auth: AuthKind::Certificate,
        };
        return Facts {
            details: ProfileDetails {
                summary: summary.clone(),
                remotes: Vec::new(),
                ciphers: Vec::new(),
                digest: None,
                control_channel_protection: None,
                static_challenge: None,
                key_encrypted: false,
                redirect_gateway: false,
                routes: Vec::new(),
                saved_credentials: false,
            },
            summary,
            needs: AuthNeeds::default(),
        };
    };
    let remotes: Vec<RemoteView> = prof
        .endpoints()
        .into_iter()
        .map(|e| RemoteView {
            host: e.host,
            port: e.port,
            protocol: e.proto.as_str().to_ascii_uppercase(),
        })
        .collect();
    let has_cert = prof.cert.is_some() || prof.pkcs12.is_some();
    let user_pass = prof.auth_user_pass.is_some();
    let auth = match (has_cert, user_pass) {
        (_, false) => AuthKind::Certificate,
        (false, true) => AuthKind::Password,
        (true, true) => AuthKind::CertificateAndPassword,
    };
    let first = remotes.first();
    let summary = ProfileSummary {
        id: p.id.clone(),
        name: p.name.clone(),
        server: first.map_or_else(|| "no server".into(), |r| format!("{}:{}", r.host, r.port)),
        protocol: first.map_or_else(|| "UDP".into(), |r| simple_proto(&r.protocol)),
        auth,
    };
    let mut ciphers = prof.data_ciphers.clone();
    if ciphers.is_empty() {
        // What OpenVPN 2.6 offers when the profile names none.
        ciphers = vec![
            "AES-256-GCM".into(),
            "AES-128-GCM".into(),
            "CHACHA20-POLY1305".into(),
        ];
    }
    if let Some(fallback) = prof.data_ciphers_fallback.clone().or(prof.cipher.clone()) {
        if !ciphers.contains(&fallback) {
            ciphers.push(fallback);
        }
    }
    let control = if prof.tls_crypt_v2.is_some() {
        Some("tls-crypt-v2")
    } else if prof.tls_crypt.is_some() {
        Some("tls-crypt")
    } else if prof.tls_auth.is_some() {
        Some("tls-auth")
    } else {
        None
    };
    let static_challenge = prof.static_challenge.as_ref().map(|c| ChallengeView {
        text: c.text.clone(),
        echo: c.echo,
    });
    let key_encrypted = key_is_encrypted(&prof.key);
    let routes = prof
        .routes
        .iter()
        .map(|r| match &r.netmask {
            Some(mask) => format!("{}/{}", r.network, prefix_len(mask)),
            None => format!("{}/32", r.network),
        })
        .chain(prof.routes_ipv6.iter().map(|r| r.network.clone()))
        .collect();
    let details = ProfileDetails {
        summary: summary.clone(),
        remotes,
        ciphers,
        digest: prof.auth.clone(),
        control_channel_protection: control.map(str::to_string),
        static_challenge: static_challenge.as_ref().map(|c| c.text.clone()),
        key_encrypted,
        redirect_gateway: prof.redirect_gateway.is_some(),
        routes,
        saved_credentials: false,
    };
    let needs = AuthNeeds {
        user_pass: matches!(
            prof.auth_user_pass,
            Some(AuthUserPass::Prompt) | Some(AuthUserPass::Credentials(_))
        ),
        static_challenge,
        key_passphrase: key_is_encrypted(&prof.key),
    };
    Facts {
        summary,
        details,
        needs,
    }
}

fn simple_proto(p: &str) -> String {
    if p.starts_with("TCP") {
        "TCP".into()
    } else {
        "UDP".into()
    }
}

/// "255.255.255.0" -> 24; anything unreadable keeps the mask as written.
fn prefix_len(mask: &str) -> String {
    match mask.parse::<std::net::Ipv4Addr>() {
        Ok(m) => u32::from(m).count_ones().to_string(),
        Err(_) => mask.to_string(),
    }
}

/// The report as the window shows it.
pub fn report_view(
    file_name: &str,
    profile: Option<ProfileSummary>,
    r: &ovpn_profile::Report,
) -> ImportReport {
    let findings = r
        .findings
        .iter()
        .map(|f| FindingView {
            line: f.line,
            directive: f.directive.clone(),
            verdict: match f.severity {
                Severity::Honoured => Verdict::Honoured,
                Severity::Ignored | Severity::Unsupported => Verdict::Ignored,
                Severity::Refused => Verdict::Refused,
                Severity::Info => Verdict::Note,
                Severity::NeedsFile | Severity::Error => Verdict::Problem,
            },
            message: f.message.clone(),
        })
        .collect();
    ImportReport {
        file_name: file_name.to_string(),
        usable: r.usable && profile.is_some(),
        reason: r.reason.clone(),
        profile,
        findings,
    }
}

/// Names shown in the list must be unique; "Work" -> "Work (2)".
pub fn unique_name(wanted: &str, taken: &[String]) -> String {
    let wanted = wanted.trim();
    let wanted = if wanted.is_empty() { "Profile" } else { wanted };
    if !taken.iter().any(|t| t == wanted) {
        return wanted.to_string();
    }
    (2..)
        .map(|n| format!("{wanted} ({n})"))
        .find(|c| !taken.iter().any(|t| t == c))
        .unwrap_or_else(|| wanted.to_string())
}

/// Checks a name typed by the user (same rules as the helper's profile names).
pub fn validate_name(name: &str) -> Result<String, AppError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(AppError::invalid("The name cannot be empty."));
    }
    if n.len() > 64 {
        return Err(AppError::invalid(
            "The name can be at most 64 characters long.",
        ));
    }
    if n.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(AppError::invalid(
            "The name cannot contain / or \\ or control characters.",
        ));
    }
    Ok(n.to_string())
}

/// Profiles kept in memory; used by tests and as the fallback when no store can be opened.
#[derive(Debug, Default)]
pub struct MemoryRepo {
    profiles: BTreeMap<String, StoredProfile>,
    next: u32,
}

impl MemoryRepo {
    pub fn insert(&mut self, name: &str, text: &str) -> StoredProfile {
        self.next += 1;
        let p = StoredProfile {
            id: format!("p{}", self.next),
            name: name.to_string(),
            text: text.to_string(),
        };
        self.profiles.insert(p.id.clone(), p.clone());
        p
    }
    fn names(&self) -> Vec<String> {
        self.profiles.values().map(|p| p.name.clone()).collect()
    }
}

impl ProfileRepo for MemoryRepo {
    fn list(&self) -> Result<Vec<StoredProfile>, AppError> {
        Ok(self.profiles.values().cloned().collect())
    }
    fn load(&self, id: &str) -> Result<StoredProfile, AppError> {
        self.profiles
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::not_found(id))
    }
    fn import_file(
        &mut self,
        path: &Path,
        _supplied: &[profile_store::Supplied],
    ) -> Result<Imported, AppError> {
        let bytes = std::fs::read(path)
            .map_err(|e| AppError::file(&format!("Could not read {}.", path.display()), e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (profile, report) = ovpn_profile::import(&bytes);
        if profile.is_none() || !report.usable {
            return Ok(Imported {
                stored: None,
                report: report_view(&file_name, None, &report),
                credentials: None,
                proxy_credentials: None,
            });
        }
        let stem = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = unique_name(&stem, &self.names());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let p = self.insert(&name, &text);
        let summary = facts(&p).summary;
        Ok(Imported {
            report: report_view(&file_name, Some(summary), &report),
            stored: Some(p),
            credentials: None,
            proxy_credentials: None,
        })
    }
    fn import_bytes(&mut self, file_name: &str, bytes: &[u8]) -> Result<Imported, AppError> {
        let (profile, report) = ovpn_profile::import(bytes);
        if profile.is_none() || !report.usable {
            return Ok(Imported {
                stored: None,
                report: report_view(file_name, None, &report),
                credentials: None,
                proxy_credentials: None,
            });
        }
        let stem = file_name
            .trim_end_matches(".ovpn")
            .trim_end_matches(".conf");
        let name = unique_name(stem, &self.names());
        let p = self.insert(&name, &String::from_utf8_lossy(bytes));
        let summary = facts(&p).summary;
        Ok(Imported {
            report: report_view(file_name, Some(summary), &report),
            stored: Some(p),
            credentials: None,
            proxy_credentials: None,
        })
    }
    fn rename(&mut self, id: &str, name: &str) -> Result<StoredProfile, AppError> {
        let name = validate_name(name)?;
        let taken: Vec<String> = self
            .profiles
            .values()
            .filter(|p| p.id != id)
            .map(|p| p.name.clone())
            .collect();
        if taken.contains(&name) {
            return Err(AppError::invalid(format!(
                "A profile named \"{name}\" already exists."
            )));
        }
        let p = self
            .profiles
            .get_mut(id)
            .ok_or_else(|| AppError::not_found(id))?;
        p.name = name;
        Ok(p.clone())
    }
    fn duplicate(&mut self, id: &str) -> Result<StoredProfile, AppError> {
        let src = self.load(id)?;
        let name = unique_name(&format!("{} copy", src.name), &self.names());
        Ok(self.insert(&name, &src.text))
    }
    fn delete(&mut self, id: &str) -> Result<(), AppError> {
        self.profiles
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| AppError::not_found(id))
    }
}

fn store_error(e: profile_store::StoreError) -> AppError {
    use profile_store::StoreError as S;
    match &e {
        S::NotFound(name) => AppError::not_found(name),
        S::InvalidName { reason, .. } => {
            AppError::invalid(format!("That name cannot be used: {reason}."))
        }
        S::AlreadyExists(name) => {
            AppError::invalid(format!("A profile named \"{name}\" already exists."))
        }
        S::Corrupt { name, .. } => AppError::new(
            ErrorKind::ProfileRejected,
            format!("The stored profile \"{name}\" is damaged; import it again."),
            e.to_string(),
        ),
        S::NoDataDir | S::Io { .. } => {
            AppError::file("Could not use the profile folder.", format!("{e:#}"))
        }
    }
}

/// The real repository: profile-store's per-user folder; the id is the stored name.
#[derive(Debug)]
pub struct StoreRepo {
    store: profile_store::Store,
}

impl StoreRepo {
    pub fn open_default() -> Result<Self, AppError> {
        profile_store::Store::open_default()
            .map(|store| Self { store })
            .map_err(store_error)
    }
    pub fn open(dir: &Path) -> Result<Self, AppError> {
        profile_store::Store::open(dir)
            .map(|store| Self { store })
            .map_err(store_error)
    }
    fn stored(&self, name: &str) -> Result<StoredProfile, AppError> {
        let text = self.store.read_text(name).map_err(store_error)?;
        Ok(StoredProfile {
            id: name.to_string(),
            name: name.to_string(),
            text,
        })
    }
}

impl StoreRepo {
    /// The window's view of what profile-store's import did.
    fn imported(&self, file_name: &str, done: profile_store::Import) -> Result<Imported, AppError> {
        // `askpass FILE` read at import: its passphrase is kept with the credentials.
        let key_passphrase = done.key_passphrase.as_ref().map(|k| k.0.clone());
        let credentials = done
            .credentials
            .as_ref()
            .and_then(|c| {
                c.password.as_ref().map(|p| SavedCredentials {
                    username: c.username.clone(),
                    password: p.clone(),
                    key_passphrase: key_passphrase.clone(),
                })
            })
            .or_else(|| {
                key_passphrase.map(|k| SavedCredentials {
                    username: String::new(),
                    password: String::new(),
                    key_passphrase: Some(k),
                })
            });
        let proxy_credentials = done.proxy_credentials.as_ref().and_then(|c| {
            c.password.as_ref().map(|p| SavedCredentials {
                username: c.username.clone(),
                password: p.clone(),
                key_passphrase: None,
            })
        });
        let Some(name) = done.name else {
            return Ok(Imported {
                stored: None,
                report: report_view(file_name, None, &done.report),
                credentials: None,
                proxy_credentials: None,
            });
        };
        let stored = self.stored(&name)?;
        Ok(Imported {
            report: report_view(file_name, Some(facts(&stored).summary), &done.report),
            stored: Some(stored),
            credentials,
            proxy_credentials,
        })
    }
}

/// `profile`: where the profile file is (`None` for downloaded text, whose missing
/// files cannot be picked: the download should have held them inline).
fn import_error(
    file_name: &str,
    profile: Option<&Path>,
    e: profile_store::ImportError,
) -> AppError {
    match e {
        profile_store::ImportError::Read(e) => {
            AppError::file(&format!("Could not read {file_name}."), format!("{e:#}"))
        }
        profile_store::ImportError::Store(e) => store_error(e),
        // Not stored: the files it names (certificates, keys) were not found next to
        // it; the window asks for each one.
        profile_store::ImportError::MissingFiles(missing) => {
            let details = profile_store::ImportError::MissingFiles(missing.clone()).to_string();
            match profile {
                Some(p) => crate::missing_files::missing_files_error(file_name, p, &missing, details),
                None => AppError::file(
                    &format!("{file_name} names files instead of holding them inline; ask for a profile with everything inline."),
                    details,
                ),
            }
        }
        e @ profile_store::ImportError::UnusedSupplied { .. } => AppError::file(
            &format!("The file chosen for {file_name} is not one the profile names."),
            e.to_string(),
        ),
    }
}

impl ProfileRepo for StoreRepo {
    fn list(&self) -> Result<Vec<StoredProfile>, AppError> {
        let names = self.store.list().map_err(store_error)?;
        Ok(names.iter().filter_map(|n| self.stored(n).ok()).collect())
    }
    fn load(&self, id: &str) -> Result<StoredProfile, AppError> {
        self.stored(id)
    }
    fn import_file(
        &mut self,
        path: &Path,
        supplied: &[profile_store::Supplied],
    ) -> Result<Imported, AppError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The flow oxivpnctl uses too: profile-store reads, names and stores.
        let done = profile_store::import_path_with(
            &self.store,
            path,
            supplied,
            profile_store::NameChoice::Derived(&stem),
        )
        .map_err(|e| import_error(&file_name, Some(path), e))?;
        self.imported(&file_name, done)
    }
    fn import_bytes(&mut self, file_name: &str, bytes: &[u8]) -> Result<Imported, AppError> {
        let stem = file_name
            .trim_end_matches(".ovpn")
            .trim_end_matches(".conf")
            .to_string();
        // The same flow as files, without a folder to find referenced files in.
        let done = profile_store::import_bytes(
            &self.store,
            bytes,
            None,
            profile_store::NameChoice::Derived(&stem),
        )
        .map_err(|e| import_error(file_name, None, e))?;
        self.imported(file_name, done)
    }
    fn rename(&mut self, id: &str, name: &str) -> Result<StoredProfile, AppError> {
        let name = validate_name(name)?;
        self.store.rename(id, &name).map_err(store_error)?;
        self.stored(&name)
    }
    fn duplicate(&mut self, id: &str) -> Result<StoredProfile, AppError> {
        let name = self
            .store
            .free_name(&format!("{id} copy"))
            .map_err(store_error)?;
        self.store.duplicate(id, &name).map_err(store_error)?;
        self.stored(&name)
    }
    fn delete(&mut self, id: &str) -> Result<(), AppError> {
        self.store.delete(id).map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../tests/support/ca.pem");
    pub const PROFILE: &str = "client\ndev tun\nproto udp\nremote vpn.example.com 1194\n\
        auth-user-pass\nstatic-challenge \"Enter PIN\" 1\ndata-ciphers AES-256-GCM:CHACHA20-POLY1305\n\
        route 10.0.0.0 255.255.255.0\n";

    #[test]
    fn facts_read_server_ciphers_and_auth() {
        let p = StoredProfile {
            id: "a".into(),
            name: "Work".into(),
            text: PROFILE.into(),
        };
        let f = facts(&p);
        assert_eq!(f.summary.server, "vpn.example.com:1194");
        assert_eq!(f.summary.protocol, "UDP");
        assert_eq!(f.summary.auth, AuthKind::Password);
        assert_eq!(f.details.ciphers, vec!["AES-256-GCM", "CHACHA20-POLY1305"]);
        assert_eq!(f.details.routes, vec!["10.0.0.0/24"]);
        assert!(f.needs.user_pass);
        assert_eq!(
            f.needs.static_challenge,
            Some(ChallengeView {
                text: "Enter PIN".into(),
                echo: true
            })
        );
    }

    #[test]
    fn unique_names_and_validation() {
        let taken = vec!["Work".to_string(), "Work (2)".to_string()];
        assert_eq!(unique_name("Work", &taken), "Work (3)");
        assert_eq!(unique_name("Home", &taken), "Home");
        assert_eq!(unique_name("  ", &taken), "Profile");
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("   ").is_err());
        assert_eq!(validate_name(" Office ").unwrap(), "Office");
    }

    #[test]
    fn store_repo_imports_with_files_next_to_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("ca.crt"), CA).unwrap();
        std::fs::write(src.join("login.txt"), "ann\npw\n").unwrap();
        std::fs::write(
            src.join("Work: main.ovpn"),
            "client\ndev tun\nremote vpn.example.com 1194\nca ca.crt\nauth-user-pass login.txt\nscript-security 2\nup up.sh\n",
        )
        .unwrap();
        let mut repo = StoreRepo::open(&dir.path().join("store")).unwrap();
        let imported = repo.import_file(&src.join("Work: main.ovpn"), &[]).unwrap();
        assert!(imported.report.usable, "{:?}", imported.report);
        let stored = imported.stored.unwrap();
        assert_eq!(stored.name, "Work_ main");
        assert!(
            stored.text.contains("BEGIN CERTIFICATE"),
            "the CA is inlined"
        );
        assert!(
            !stored.text.contains("up.sh"),
            "refused lines are not stored"
        );
        assert_eq!(imported.credentials.unwrap().password, "pw");
        assert!(imported.proxy_credentials.is_none());
        assert!(imported
            .report
            .findings
            .iter()
            .any(|f| f.verdict == Verdict::Refused && f.line == Some(7)));

        let copy = repo.duplicate(&stored.id).unwrap();
        assert_eq!(copy.name, "Work_ main copy");
        let renamed = repo.rename(&copy.id, "Home").unwrap();
        assert_eq!(renamed.id, "Home");
        let names: Vec<String> = repo.list().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["Home", "Work_ main"]);
        repo.delete("Home").unwrap();
        assert_eq!(
            repo.load("Home").unwrap_err().kind,
            ErrorKind::ProfileNotFound
        );
    }

    #[test]
    fn missing_files_are_named_then_supplied_by_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let profile = src.join("office.ovpn");
        std::fs::write(
            &profile,
            "client\ndev tun\nremote vpn.example.com 1194\nca certs/ca.crt\n",
        )
        .unwrap();
        let mut repo = StoreRepo::open(&dir.path().join("store")).unwrap();
        let e = repo.import_file(&profile, &[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingFiles);
        let m = e.missing_files.unwrap();
        assert_eq!(m.profile_path, profile.display().to_string());
        assert_eq!(m.files.len(), 1);
        assert_eq!(
            (
                m.files[0].directive.as_str(),
                m.files[0].name.as_str(),
                m.files[0].line
            ),
            ("ca", "certs/ca.crt", Some(4))
        );
        assert!(m.files[0].looked.iter().any(|p| p.ends_with("ca.crt")));
        assert!(repo.list().unwrap().is_empty(), "nothing stored");

        // The user picks the file wherever it is.
        let elsewhere = dir.path().join("usb-ca.pem");
        std::fs::write(&elsewhere, CA).unwrap();
        let picked = crate::missing_files::SuppliedFile {
            name: "certs/ca.crt".into(),
            path: elsewhere.display().to_string(),
        };
        let imported = repo.import_file(&profile, &[picked.to_store()]).unwrap();
        let stored = imported.stored.unwrap();
        assert!(
            stored.text.contains("BEGIN CERTIFICATE"),
            "the CA is inlined"
        );

        // A pick for a name the profile does not write is refused, naming it.
        let other = dir.path().join("other.pem");
        std::fs::write(&other, CA).unwrap();
        let wrong = crate::missing_files::SuppliedFile {
            name: "other.crt".into(),
            path: other.display().to_string(),
        };
        let e = repo
            .import_file(&profile, &[picked.to_store(), wrong.to_store()])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::File);
        assert!(e.details.contains("other.crt"), "{}", e.details);
    }

    #[test]
    fn memory_repo_rename_duplicate_delete() {
        let mut r = MemoryRepo::default();
        let a = r.insert("Work", PROFILE);
        let b = r.duplicate(&a.id).unwrap();
        assert_eq!(b.name, "Work copy");
        assert!(r.rename(&b.id, "Work").is_err());
        assert_eq!(r.rename(&b.id, "Home").unwrap().name, "Home");
        r.delete(&a.id).unwrap();
        assert_eq!(r.list().unwrap().len(), 1);
        assert_eq!(
            r.delete(&a.id).unwrap_err().kind,
            ErrorKind::ProfileNotFound
        );
    }

    #[test]
    fn store_repo_takes_the_proxy_password_out_for_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("ca.crt"), include_str!("../tests/support/ca.pem")).unwrap();
        std::fs::write(src.join("proxy.txt"), "squid\npx-secret\n").unwrap();
        std::fs::write(
            src.join("Hotel.ovpn"),
            "client\ndev tun\nremote vpn.example.com 443 tcp-client\nca ca.crt\nhttp-proxy 192.0.2.1 3128 proxy.txt basic\n",
        )
        .unwrap();
        let mut repo = StoreRepo::open(&dir.path().join("store")).unwrap();
        let imported = repo.import_file(&src.join("Hotel.ovpn"), &[]).unwrap();
        let stored = imported.stored.unwrap();
        assert!(!stored.text.contains("px-secret"), "{}", stored.text);
        let c = imported.proxy_credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("squid", "px-secret")
        );
        assert!(imported.credentials.is_none());
    }
}
