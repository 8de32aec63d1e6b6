//! Import from a server: fetch a `.ovpn` over https only, the certificate verified
//! against the system's roots (rustls), a size limit, a few redirects (https only), and
//! a clear word when the server answers with a web page instead of a profile.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;

use crate::error::{AppError, ErrorKind};

const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REDIRECTS: usize = 3;

/// A downloaded profile.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// The URL's last path segment ("work.ovpn"), for the report and the stored name.
    pub file_name: String,
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

fn bad_url(msg: &str) -> AppError {
    AppError::invalid(msg)
}

/// Checks the address: https only, with a host.
pub fn parse(text: &str) -> Result<url::Url, AppError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(bad_url(
            "Paste the address of the profile, starting with https://.",
        ));
    }
    let u = url::Url::parse(t).map_err(|e| {
        AppError::new(
            ErrorKind::InvalidInput,
            format!("\"{t}\" is not a web address."),
            e.to_string(),
        )
    })?;
    if u.scheme() != "https" {
        return Err(bad_url(
            "Only https:// addresses are accepted: a profile holds keys and must not travel unencrypted.",
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad_url("The address has no server name."));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad_url(
            "Do not put a user name or password in the address.",
        ));
    }
    Ok(u)
}

fn net_error(what: &str, url: &url::Url, e: impl std::fmt::Display) -> AppError {
    AppError::new(
        ErrorKind::ServerUnreachable,
        format!("Could not download the profile: {what}."),
        format!("{url}: {e}"),
    )
}

/// Fetches `text` (an https URL) trusting `roots`.
pub async fn fetch_profile(text: &str, roots: Arc<RootCertStore>) -> Result<Fetched, AppError> {
    let mut url = parse(text)?;
    for _ in 0..=MAX_REDIRECTS {
        match tokio::time::timeout(TIMEOUT, get_once(&url, roots.clone())).await {
            Err(_) => {
                return Err(net_error(
                    "the server did not answer in time",
                    &url,
                    "timeout",
                ))
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Step::Done(bytes))) => {
                let file_name = url
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("profile.ovpn")
                    .to_string();
                return Ok(Fetched { bytes, file_name });
            }
            Ok(Ok(Step::Redirect(next))) => {
                url = url
                    .join(&next)
                    .map_err(|e| net_error("a bad redirect", &url, e))?;
                if url.scheme() != "https" {
                    return Err(net_error(
                        "the server redirected to an address without https",
                        &url,
                        "refused",
                    ));
                }
            }
        }
    }
    Err(net_error("too many redirects", &url, MAX_REDIRECTS))
}

enum Step {
    Done(Vec<u8>),
    Redirect(String),
}

async fn get_once(url: &url::Url, roots: Arc<RootCertStore>) -> Result<Step, AppError> {
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| net_error("the server could not be reached", url, e))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(AppError::internal)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|e| bad_url(&format!("\"{host}\" is not a server name ({e}).")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            AppError::new(
                ErrorKind::TlsCertificate,
                "The server's certificate could not be verified, so nothing was downloaded.",
                format!("{url}: {e}"),
            )
            .with_hint("Check the address. If it is right, the server's certificate is not trusted by this computer.")
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| net_error("the server did not speak HTTP", url, e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "profile download connection");
        }
    });
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let req = hyper::Request::get(path)
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
        .map_err(AppError::internal)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| net_error("the server closed the connection", url, e))?;
    let status = resp.status();
    if status.is_redirection() {
        let to = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| net_error("a redirect without a target", url, status))?;
        return Ok(Step::Redirect(to.to_string()));
    }
    if !status.is_success() {
        return Err(AppError::new(
            ErrorKind::File,
            format!("The server answered {status} instead of a profile."),
            url.to_string(),
        ));
    }
    let html = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("text/html"));
    let limit = ovpn_profile::limits::MAX_PROFILE_BYTES;
    let body = Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            AppError::new(
                ErrorKind::File,
                format!("The download is not a profile: larger than {limit} bytes, or cut off."),
                format!("{url}: {e}"),
            )
        })?
        .to_bytes()
        .to_vec();
    let start = String::from_utf8_lossy(&body[..body.len().min(256)]).to_ascii_lowercase();
    let start = start.trim_start();
    if html || start.starts_with("<!doctype html") || start.starts_with("<html") {
        return Err(AppError::new(
            ErrorKind::ProfileRejected,
            "The server sent a web page, not an OpenVPN profile.",
            format!("{url}: HTML"),
        )
        .with_hint(
            "The address may lead to a sign-in page. Download the .ovpn file in a browser, or ask for the profile's direct address.",
        ));
    }
    Ok(Step::Done(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_addresses_with_a_host() {
        assert!(parse("https://vpn.example.com/work.ovpn").is_ok());
        let http = parse("http://vpn.example.com/work.ovpn").unwrap_err();
        assert!(http.message.contains("Only https://"));
        assert_eq!(
            parse("not a url").unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        assert!(parse("").is_err());
        assert!(parse("https://ann:pw@vpn.example.com/x.ovpn")
            .unwrap_err()
            .message
            .contains("user name"));
    }
}
