//! Import from a server: download a `.ovpn` from an https URL, or from an OpenVPN Access
//! Server's REST profile download with the user's credentials. The app and `oxivpnctl`
//! both call this; the bytes then go through [`crate::import_bytes`] like a file.
//!
//! https only (a profile holds keys), the certificate verified with rustls against the
//! roots given (the system's by default), at most [`MAX_REDIRECTS`] redirects and only to
//! https (credentials only to the same server), the body at most
//! [`ovpn_profile::limits::MAX_PROFILE_BYTES`], and a web page or text that is no profile
//! refused. Every failure says which step failed: the address, DNS, connecting, the
//! certificate (with its problem named), HTTP, the size, or the Access Server's own answer.
//!
//! The Access Server API (as OpenVPN documents it for its Connect clients and
//! `openvpn3-as`): `GET https://HOST[:PORT]/rest/GetUserlogin` (a profile that asks for
//! the password at connect) or `/rest/GetAutologin` (one that does not, if the user has
//! that right), with `?tls-cryptv2=1&action=import` and HTTP Basic credentials. The
//! profile comes as `text/plain`; errors come with an error status and an XML body
//! `<Error><Type>..</Type><Synopsis>..</Synopsis><Message>..</Message></Error>`. A second
//! factor is asked with a `CRV1:<flags>:<state>:<user_b64>:<text>` message; the answer is
//! sent as the password `CRV1::<state>::<response>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::CertificateError;
pub use rustls::RootCertStore;
pub use zeroize::Zeroizing;

mod access_server;
pub use access_server::{access_server_url, fetch_access_server, AccessServerLogin, Challenge};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(20);

/// Where downloads are checked against, and how long one may take.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub roots: Arc<RootCertStore>,
    /// For each request (connect, TLS, answer).
    pub timeout: Duration,
}

impl FetchConfig {
    /// Trusting `roots`, with the default time limit.
    pub fn new(roots: RootCertStore) -> Self {
        Self {
            roots: Arc::new(roots),
            timeout: TIMEOUT,
        }
    }

    /// Trusting the system's roots ([`system_roots`]).
    pub fn system() -> Self {
        Self::new(system_roots())
    }
}

/// The system's trusted roots (the platform store; `SSL_CERT_FILE` is honoured).
pub fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "loading a system root certificate");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system roots");
    roots
}

/// Roots from PEM text (a company CA handed out with the address, or a test CA).
pub fn roots_from_pem(pem: &str) -> Result<RootCertStore, FetchError> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| FetchError::Setup(format!("a CA certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| FetchError::Setup(format!("a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(FetchError::Setup(
            "no CA certificate in the PEM text".into(),
        ));
    }
    Ok(roots)
}

/// A downloaded profile, not yet checked or stored.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// A file name for the report and the stored name: the URL's last path segment
    /// ("work.ovpn"), or "HOST.ovpn" for an Access Server.
    pub file_name: String,
}

/// Why a download failed. Each names the step.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{text:?} is not a usable address: {reason}")]
    BadAddress { text: String, reason: String },
    #[error("only https:// addresses are accepted (not {scheme}://): a profile holds keys and must not travel unencrypted")]
    NotHttps { scheme: String },
    #[error("the server name {host:?} could not be found (DNS)")]
    Dns {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to {host} port {port}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the certificate of {host} was refused: {problem}; nothing was downloaded")]
    Certificate { host: String, problem: String },
    #[error("the secure connection to {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} did not answer within {secs} s")]
    Timeout { host: String, secs: u64 },
    #[error("{host} did not speak HTTP: {reason}")]
    Protocol { host: String, reason: String },
    #[error("the server answered {status} for {url}")]
    Http { status: u16, url: String },
    #[error("the server redirected {reason}")]
    Redirect { reason: String },
    #[error("the download is larger than {limit} bytes, or was cut off; a profile is smaller")]
    TooLarge { limit: usize },
    #[error("the server sent a web page, not an OpenVPN profile")]
    Html,
    #[error("the server's answer is not an OpenVPN profile ({reason})")]
    NotAProfile { reason: String },
    #[error("the Access Server refused the user name or password")]
    AuthFailed { server_message: String },
    #[error("the Access Server asks for a second sign-in step: {}", .0.text)]
    ChallengeRequired(Challenge),
    #[error("the Access Server does not allow this user an autologin profile; download the user-locked profile instead")]
    NoAutologin { server_message: String },
    #[error("the Access Server wants this user to enroll in two-factor sign-in first, in its web page: {server_message}")]
    NotEnrolled { server_message: String },
    #[error("the Access Server refused: {kind}: {server_message}")]
    AccessServer {
        kind: String,
        server_message: String,
    },
    #[error("the TLS settings could not be built: {0}")]
    Setup(String),
}

/// Checks `text` is an https URL with a host and no credentials in it.
pub fn parse_https_url(text: &str) -> Result<url::Url, FetchError> {
    let t = text.trim();
    let bad = |reason: &str| FetchError::BadAddress {
        text: t.to_string(),
        reason: reason.to_string(),
    };
    if t.is_empty() {
        return Err(bad("it is empty; paste an address starting with https://"));
    }
    let u = url::Url::parse(t).map_err(|e| bad(&format!("not a web address ({e})")))?;
    if u.scheme() != "https" {
        return Err(FetchError::NotHttps {
            scheme: u.scheme().to_string(),
        });
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no server name"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("it holds a user name or password; leave them out"));
    }
    Ok(u)
}

/// Downloads the profile at `url` (https).
pub async fn fetch_url(url: &str, cfg: &FetchConfig) -> Result<Fetched, FetchError> {
    let url = parse_https_url(url)?;
    let resp = get(url, None, cfg).await?;
    if !(200..300).contains(&resp.status) {
        return Err(FetchError::Http {
            status: resp.status,
            url: resp.url.to_string(),
        });
    }
    check_profile(&resp)?;
    let file_name = resp
        .url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .unwrap_or("profile.ovpn")
        .to_string();
    Ok(Fetched {
        bytes: resp.body,
        file_name,
    })
}

/// Refuses an HTML page, an empty answer, or text with nothing of a profile in it.
pub(super) fn check_profile(resp: &Response) -> Result<(), FetchError> {
    let head = String::from_utf8_lossy(&resp.body[..resp.body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start();
    let html_type = resp
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("text/html"));
    if html_type || head.starts_with("<!doctype html") || head.starts_with("<html") {
        return Err(FetchError::Html);
    }
    if resp.body.iter().all(u8::is_ascii_whitespace) {
        return Err(FetchError::NotAProfile {
            reason: "it is empty".to_string(),
        });
    }
    let text = String::from_utf8_lossy(&resp.body);
    let looks_like_profile = text.lines().any(|l| {
        let w = l.split_whitespace().next().unwrap_or("");
        matches!(
            w.to_ascii_lowercase().as_str(),
            "client" | "tls-client" | "remote" | "<connection>" | "dev" | "proto"
        )
    });
    if !looks_like_profile {
        return Err(FetchError::NotAProfile {
            reason: "it has no client, remote or dev line".to_string(),
        });
    }
    Ok(())
}

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
    /// The address that answered (after redirects).
    pub(super) url: url::Url,
}

/// GET `url`, following redirects to https only; `auth` (an Authorization header) is
/// sent only to the first server's origin.
pub(super) async fn get(
    mut url: url::Url,
    auth: Option<&str>,
    cfg: &FetchConfig,
) -> Result<Response, FetchError> {
    let origin = url.origin();
    for _ in 0..=MAX_REDIRECTS {
        let host = url.host_str().unwrap_or_default().to_string();
        let send_auth = auth.filter(|_| url.origin() == origin);
        let step = tokio::time::timeout(cfg.timeout, get_once(&url, send_auth, cfg))
            .await
            .map_err(|_| FetchError::Timeout {
                host,
                secs: cfg.timeout.as_secs(),
            })??;
        match step {
            Step::Done(r) => return Ok(r),
            Step::Redirect(to) => {
                let next = url.join(&to).map_err(|e| FetchError::Redirect {
                    reason: format!("to a bad address {to:?} ({e})"),
                })?;
                if next.scheme() != "https" {
                    return Err(FetchError::Redirect {
                        reason: format!("to {next}, which is not https; refused"),
                    });
                }
                if auth.is_some() && next.origin() != origin {
                    return Err(FetchError::Redirect {
                        reason: format!(
                            "to another server ({next}); credentials are not sent there"
                        ),
                    });
                }
                url = next;
            }
        }
    }
    Err(FetchError::Redirect {
        reason: format!("more than {MAX_REDIRECTS} times"),
    })
}

enum Step {
    Done(Response),
    Redirect(String),
}

async fn connect(host: &str, port: u16) -> Result<tokio::net::TcpStream, FetchError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| FetchError::Dns {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    for a in &addrs {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(FetchError::Connect {
        host: host.to_string(),
        port,
        source: last.unwrap_or_else(|| std::io::Error::other("the name has no address")),
    })
}

/// The certificate problem in plain words.
fn certificate_problem(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => "it is signed by an authority this computer does not trust (self-signed, or an unknown CA)".to_string(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it was issued for another server name".to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (check this computer's clock)".to_string()
        }
        CertificateError::Revoked => "it has been revoked".to_string(),
        CertificateError::BadSignature => "its signature is wrong".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "it is not meant for a web server".to_string()
        }
        CertificateError::BadEncoding => "it could not be read".to_string(),
        other => format!("{other:?}"),
    }
}

fn tls_error(host: &str, e: std::io::Error) -> FetchError {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(rustls::Error::InvalidCertificate(c)) = rustls_error {
        return FetchError::Certificate {
            host: host.to_string(),
            problem: certificate_problem(c),
        };
    }
    FetchError::Tls {
        host: host.to_string(),
        source: e,
    }
}

async fn get_once(
    url: &url::Url,
    auth: Option<&str>,
    cfg: &FetchConfig,
) -> Result<Step, FetchError> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = connect(&host, port).await?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| FetchError::Setup(e.to_string()))?
    .with_root_certificates(cfg.roots.clone())
    .with_no_client_auth();
    let name = ServerName::try_from(host.clone()).map_err(|e| FetchError::BadAddress {
        text: host.clone(),
        reason: format!("not a server name ({e})"),
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(&host, e))?;
    let protocol = |reason: String| FetchError::Protocol {
        host: host.clone(),
        reason,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| protocol(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "profile download connection");
        }
    });
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("OxiVPN/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            hyper::header::ACCEPT,
            "application/x-openvpn-profile, text/plain, */*",
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Setup(e.to_string()))?;
    if let Some(a) = auth {
        let mut v =
            hyper::header::HeaderValue::from_str(a).map_err(|_| FetchError::BadAddress {
                text: String::new(),
                reason: "the user name or password holds characters that cannot be sent"
                    .to_string(),
            })?;
        v.set_sensitive(true);
        req.headers_mut().insert(hyper::header::AUTHORIZATION, v);
    }
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| protocol(format!("the server closed the connection ({e})")))?;
    let status = resp.status();
    if status.is_redirection() {
        let to = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FetchError::Redirect {
                reason: format!("({status}) without saying where"),
            })?;
        return Ok(Step::Redirect(to.to_string()));
    }
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limit = ovpn_profile::limits::MAX_PROFILE_BYTES;
    let body = Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|_| FetchError::TooLarge { limit })?
        .to_bytes()
        .to_vec();
    Ok(Step::Done(Response {
        status: status.as_u16(),
        content_type,
        body,
        url: url.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_addresses_with_a_host_and_no_credentials() {
        assert!(parse_https_url("https://vpn.example.com/work.ovpn").is_ok());
        assert!(matches!(
            parse_https_url("http://vpn.example.com/work.ovpn"),
            Err(FetchError::NotHttps { scheme }) if scheme == "http"
        ));
        assert!(matches!(
            parse_https_url("not a url"),
            Err(FetchError::BadAddress { .. })
        ));
        assert!(parse_https_url("").is_err());
        let creds = parse_https_url("https://ann:pw@vpn.example.com/x.ovpn").unwrap_err();
        assert!(
            creds.to_string().contains("user name or password"),
            "{creds}"
        );
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("text/xml".into()),
            body: body.as_bytes().to_vec(),
            url: url::Url::parse("https://vpn.example.com/rest/GetUserlogin").unwrap(),
        }
    }

    #[test]
    fn web_pages_and_other_text_are_not_profiles() {
        let mut r = answer(200, "<!DOCTYPE html><html></html>");
        r.content_type = Some("text/plain".into());
        assert!(matches!(check_profile(&r), Err(FetchError::Html)));
        let mut r = answer(200, "client\nremote a 1\n");
        r.content_type = Some("text/html; charset=utf-8".into());
        assert!(matches!(check_profile(&r), Err(FetchError::Html)));
        assert!(matches!(
            check_profile(&answer(200, "Welcome!\nAsk IT.\n")),
            Err(FetchError::NotAProfile { .. })
        ));
        assert!(matches!(
            check_profile(&answer(200, " \n")),
            Err(FetchError::NotAProfile { .. })
        ));
        assert!(check_profile(&answer(200, "# generated\nclient\nremote a 1194\n")).is_ok());
    }
}
