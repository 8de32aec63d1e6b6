//! Checks that key, certificate and credential material holds what its directive
//! needs. PEM is split with rustls-pki-types, certificates and CRLs are parsed with
//! x509-parser and other DER with der-parser; only OpenVPN's own text formats
//! (static key hex, tls-crypt-v2 framing) are read here.

use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject, SectionKind};

use crate::report::FileKind;

/// What a valid piece of material turned out to be (for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialOk {
    /// Short description, e.g. "2 certificates" or "passphrase-protected private key".
    pub summary: String,
    /// Whether using it will need a passphrase from the user.
    pub needs_passphrase: bool,
    /// Something the user should know although the material is accepted
    /// (e.g. DER that OpenSSL reads but a strict parser does not).
    pub warning: Option<String>,
}

fn ok(summary: impl Into<String>) -> Result<MaterialOk, String> {
    Ok(MaterialOk {
        summary: summary.into(),
        needs_passphrase: false,
        warning: None,
    })
}

/// Strip leading white space of every line and CRs, so indented PEM still parses.
fn normalise(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for line in text.lines() {
        s.push_str(line.trim());
        s.push('\n');
    }
    s
}

/// Text that is not comment or white space.
fn meaningful(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Recognise text a template left unfilled.
pub fn looks_like_placeholder(s: &str) -> bool {
    let t = s.trim();
    if t.is_empty() {
        return false;
    }
    let dollar =
        t.matches('$').count() >= 2 || t.contains("${") || (t.starts_with('$') && t.len() > 1);
    let braces = t.contains("{{") || t.contains("}}") || t.contains("%%");
    let angle = t.contains('<') && t.contains('>');
    let brackets = t.starts_with('[') && t.ends_with(']');
    let shouting = [
        "YOUR_",
        "YOUR-",
        "REPLACE",
        "CHANGE_ME",
        "CHANGEME",
        "PASTE",
        "INSERT",
    ]
    .iter()
    .any(|w| t.to_ascii_uppercase().contains(w));
    dollar || braces || angle || brackets || shouting
}

fn empty_or_placeholder(kind: FileKind, text: &str, wanted: &str) -> String {
    let m = meaningful(text);
    let tag = kind.directive();
    if m.is_empty() {
        format!("the <{tag}> block is empty; it must hold {wanted}")
    } else if looks_like_placeholder(&m) {
        let first = m
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(40)
            .collect::<String>();
        format!("the <{tag}> block holds a template placeholder ({first:?}) instead of {wanted}")
    } else {
        format!("the <{tag}> block does not hold {wanted}")
    }
}

fn pem_error(kind: FileKind, e: &pem::Error) -> String {
    let tag = kind.directive();
    match e {
        pem::Error::MissingSectionEnd { .. } => {
            format!("the PEM data in {tag} is truncated (no -----END line)")
        }
        pem::Error::IllegalSectionStart { .. } => {
            format!("a -----BEGIN line in {tag} is malformed")
        }
        pem::Error::Base64Decode(_) => format!("the PEM data in {tag} is damaged (invalid base64)"),
        other => format!("the PEM data in {tag} cannot be read: {other}"),
    }
}

fn sections(kind: FileKind, text: &str) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    let norm = normalise(text);
    // Count markers first so a cut-off PEM is reported as truncated, whatever
    // the base64 decoder makes of the partial last line.
    let begins = norm
        .lines()
        .filter(|l| l.starts_with("-----BEGIN "))
        .count();
    let ends = norm.lines().filter(|l| l.starts_with("-----END ")).count();
    if begins > ends {
        return Err(format!(
            "the PEM data in {} is truncated (no -----END line)",
            kind.directive()
        ));
    }
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(norm.as_bytes()) {
        out.push(item.map_err(|e| pem_error(kind, &e))?);
    }
    Ok(out)
}

fn kind_name(k: SectionKind) -> &'static str {
    match k {
        SectionKind::Certificate => "a certificate",
        SectionKind::PublicKey => "a public key",
        SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
            "a private key"
        }
        SectionKind::Crl => "a certificate revocation list",
        SectionKind::Csr => "a certificate request",
        _ => "something else",
    }
}

fn is_key(k: SectionKind) -> bool {
    matches!(
        k,
        SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey
    )
}

fn check_certs(kind: FileKind, text: &str) -> Result<MaterialOk, String> {
    let tag = kind.directive();
    let secs = sections(kind, text)?;
    let mut n = 0usize;
    let mut damaged = 0usize;
    let mut warning = None;
    for (k, der) in &secs {
        match k {
            SectionKind::Certificate => {
                n += 1;
                match x509_parser::parse_x509_certificate(der) {
                    Ok((&[], _)) => {}
                    Ok(_) => return Err(format!("certificate {n} in {tag} has trailing garbage")),
                    // Well-formed DER that a strict X.509 parser rejects: OpenSSL may
                    // still take it, so warn rather than refuse.
                    Err(e) if der_sequence_ok(der) => {
                        warning.get_or_insert(format!(
                            "certificate {n} in {tag} is not strictly valid X.509 ({e}); \
                             the connection may fail"
                        ));
                    }
                    // The PEM frame is whole but its content is not: base64 lines
                    // out of order or missing. The profile's structure is still
                    // sound (the corpus expects such files to import), so warn here;
                    // connecting then stops at this certificate with the same words
                    // (ovpn-core's `parse_pem_certs`).
                    Err(_) => {
                        damaged += 1;
                        warning.get_or_insert(format!(
                            "certificate {n} in {tag} is damaged (its DER structure is \
                             incomplete: base64 lines missing or out of order); connecting \
                             will fail until the profile carries an intact certificate"
                        ));
                    }
                }
            }
            other if is_key(*other) => {
                return Err(format!(
                    "the {tag} data holds a private key, not a certificate \
                     (the key belongs in <key>)"
                ))
            }
            _ => {}
        }
    }
    if n == 0 {
        if let Some((k, _)) = secs.first() {
            return Err(format!(
                "the {tag} data holds {}, not a certificate",
                kind_name(*k)
            ));
        }
        return Err(empty_or_placeholder(kind, text, "a PEM certificate"));
    }
    let mut summary = if n == 1 {
        "1 certificate".to_string()
    } else {
        format!("{n} certificates")
    };
    if damaged > 0 {
        summary.push_str(&format!(" ({damaged} damaged)"));
    }
    Ok(MaterialOk {
        summary,
        needs_passphrase: false,
        warning,
    })
}

fn base64_between(text: &str, begin: &str, end: &str) -> Option<Result<Vec<u8>, String>> {
    let start = text.find(begin)? + begin.len();
    let Some(stop) = text[start..].find(end) else {
        return Some(Err("truncated (no -----END line)".into()));
    };
    let body = &text[start..start + stop];
    // Legacy encrypted PEM has "Name: value" header lines before a blank line.
    let b64: String = body
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| "damaged (invalid base64)".to_string()),
    )
}

/// The outer DER SEQUENCE is complete (catches truncation without judging the
/// content, which OpenSSL reads more leniently than strict parsers).
fn der_envelope_ok(der: &[u8]) -> bool {
    use der_parser::asn1_rs::{Any, FromDer, Tag};
    matches!(Any::from_der(der), Ok((rest, any)) if rest.is_empty() && any.tag() == Tag::Sequence)
}

fn der_sequence_ok(der: &[u8]) -> bool {
    matches!(der_parser::parse_der(der), Ok((rest, obj)) if rest.is_empty() && obj.as_sequence().is_ok())
}

fn check_key(text: &str) -> Result<MaterialOk, String> {
    let kind = FileKind::Key;
    let norm = normalise(text);
    if let Some(r) = base64_between(
        &norm,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----END ENCRYPTED PRIVATE KEY-----",
    ) {
        let der = r.map_err(|e| format!("the encrypted private key in key is {e}"))?;
        if !der_sequence_ok(&der) {
            return Err("the encrypted private key in key is damaged (bad DER structure)".into());
        }
        return Ok(MaterialOk {
            summary: "passphrase-protected PKCS#8 private key".into(),
            needs_passphrase: true,
            warning: None,
        });
    }
    if norm.contains("Proc-Type: 4,ENCRYPTED") {
        for label in ["RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"] {
            let (b, e) = (
                format!("-----BEGIN {label}-----"),
                format!("-----END {label}-----"),
            );
            if let Some(r) = base64_between(&norm, &b, &e) {
                let der = r.map_err(|e| format!("the encrypted private key in key is {e}"))?;
                if der.is_empty() {
                    return Err("the encrypted private key in key is empty".into());
                }
                return Ok(MaterialOk {
                    summary: "passphrase-protected legacy PEM private key".into(),
                    needs_passphrase: true,
                    warning: None,
                });
            }
        }
    }
    let secs = sections(kind, text)?;
    let mut found = 0usize;
    for (k, der) in &secs {
        if is_key(*k) {
            if !der_sequence_ok(der) {
                return Err("the private key in key is damaged (bad DER structure)".into());
            }
            found += 1;
        }
    }
    match (found, secs.first()) {
        (1, _) => ok("private key"),
        (0, Some((k, _))) => Err(format!(
            "the key data holds {}, not a private key",
            kind_name(*k)
        )),
        (0, None) => Err(empty_or_placeholder(kind, text, "a PEM private key")),
        _ => Err("the key data holds more than one private key".into()),
    }
}

/// Number of key bytes in an OpenVPN static key file (§3.1 of our protocol notes).
pub fn static_key_len(text: &str) -> Result<usize, String> {
    const BEGIN: &str = "-----BEGIN OpenVPN Static key V1-----";
    const END: &str = "-----END OpenVPN Static key V1-----";
    let Some(b) = text.find(BEGIN) else {
        return Err("no -----BEGIN OpenVPN Static key V1----- line".into());
    };
    let after = &text[b + BEGIN.len()..];
    let Some(e) = after.find(END) else {
        return Err("truncated (no -----END OpenVPN Static key V1----- line)".into());
    };
    let mut digits = 0usize;
    for c in after[..e].chars() {
        if c.is_ascii_hexdigit() {
            digits += 1;
        } else if !c.is_whitespace() {
            return Err(format!(
                "holds the character {c:?}, which is not hexadecimal"
            ));
        }
    }
    if digits % 2 != 0 {
        return Err("has an odd number of hex digits".into());
    }
    Ok(digits / 2)
}

fn check_static(kind: FileKind, text: &str, allow_half: bool) -> Result<MaterialOk, String> {
    let tag = kind.directive();
    if !text.contains("-----BEGIN OpenVPN Static key V1-----") {
        return Err(empty_or_placeholder(kind, text, "an OpenVPN static key"));
    }
    let n = static_key_len(text).map_err(|e| format!("the {tag} static key {e}"))?;
    match n {
        256 => ok("2048-bit OpenVPN static key"),
        128 if allow_half => ok("1024-bit OpenVPN static key"),
        _ => Err(format!(
            "the {tag} static key has {n} bytes; it must have 256 (2048 bits)"
        )),
    }
}

fn check_tls_crypt_v2(text: &str) -> Result<MaterialOk, String> {
    let kind = FileKind::TlsCryptV2;
    if text.contains("-----BEGIN OpenVPN tls-crypt-v2 server key-----") {
        return Err(
            "the tls-crypt-v2 data is the server's key; a client needs its own client key".into(),
        );
    }
    let Some(r) = base64_between(
        &normalise(text),
        "-----BEGIN OpenVPN tls-crypt-v2 client key-----",
        "-----END OpenVPN tls-crypt-v2 client key-----",
    ) else {
        return Err(empty_or_placeholder(
            kind,
            text,
            "an OpenVPN tls-crypt-v2 client key",
        ));
    };
    let blob = r.map_err(|e| format!("the tls-crypt-v2 client key is {e}"))?;
    // Kc (256) || WKc, where WKc = tag(32) || ciphertext || u16 length of WKc.
    let wkc_len = blob.len().saturating_sub(256);
    if blob.len() < 256 + 32 + 2 || wkc_len > 1024 {
        return Err(format!(
            "the tls-crypt-v2 client key has a wrong size ({} bytes)",
            blob.len()
        ));
    }
    let tail = &blob[blob.len() - 2..];
    let declared = usize::from(u16::from_be_bytes([tail[0], tail[1]]));
    if declared != wkc_len {
        return Err(
            "the tls-crypt-v2 client key is damaged (wrapped key length does not match)".into(),
        );
    }
    ok("tls-crypt-v2 client key")
}

/// Decode a base64 PKCS#12 blob and check its outer PFX structure
/// (SEQUENCE { version 3, ContentInfo { data|signedData, ... }, [MacData] }).
pub fn check_pkcs12_der(der: &[u8]) -> Result<(), String> {
    let (rest, obj) =
        der_parser::parse_der(der).map_err(|_| "is not a PKCS#12 (DER) file".to_string())?;
    if !rest.is_empty() {
        return Err("has trailing bytes after the PKCS#12 data".into());
    }
    let items = obj
        .as_sequence()
        .map_err(|_| "is not a PKCS#12 file".to_string())?;
    let version = items.first().and_then(|v| v.as_u32().ok());
    if version != Some(3) {
        return Err("is not a PKCS#12 version 3 file".into());
    }
    let content = items
        .get(1)
        .and_then(|c| c.as_sequence().ok())
        .ok_or_else(|| "has no PKCS#12 content".to_string())?;
    let oid = content
        .first()
        .and_then(|o| o.as_oid().ok())
        .map(|o| o.to_id_string());
    match oid.as_deref() {
        Some("1.2.840.113549.1.7.1") | Some("1.2.840.113549.1.7.2") => Ok(()),
        _ => Err("has PKCS#12 content of an unknown type".into()),
    }
}

fn check_pkcs12_base64(text: &str) -> Result<MaterialOk, String> {
    let b64: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if b64.is_empty() {
        return Err(empty_or_placeholder(
            FileKind::Pkcs12,
            text,
            "a base64 PKCS#12 bundle",
        ));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| {
            if looks_like_placeholder(text) {
                empty_or_placeholder(FileKind::Pkcs12, text, "a base64 PKCS#12 bundle")
            } else {
                "the <pkcs12> block is not base64 (inline PKCS#12 must be base64-encoded)"
                    .to_string()
            }
        })?;
    check_pkcs12_der(&der).map_err(|e| format!("the <pkcs12> block {e}"))?;
    Ok(MaterialOk {
        summary: "PKCS#12 bundle (passphrase may be asked)".into(),
        needs_passphrase: false,
        warning: None,
    })
}

fn check_crl(text: &str) -> Result<MaterialOk, String> {
    let kind = FileKind::CrlVerify;
    let secs = sections(kind, text)?;
    let mut n = 0;
    let mut warning = None;
    for (k, der) in &secs {
        if *k == SectionKind::Crl {
            n += 1;
            if let Err(e) = x509_parser::parse_x509_crl(der) {
                if !der_envelope_ok(der) {
                    return Err(
                        "the certificate revocation list in crl-verify is damaged or truncated"
                            .into(),
                    );
                }
                warning.get_or_insert(format!(
                    "the revocation list is not strictly valid ({e}); OxiVPN may be unable to check revocations with it"
                ));
            }
        }
    }
    if n == 0 {
        if let Some((k, _)) = secs.first() {
            return Err(format!(
                "the crl-verify data holds {}, not a revocation list",
                kind_name(*k)
            ));
        }
        return Err(empty_or_placeholder(
            kind,
            text,
            "a PEM certificate revocation list",
        ));
    }
    Ok(MaterialOk {
        summary: "certificate revocation list".into(),
        needs_passphrase: false,
        warning,
    })
}

/// Parse user name / password lines of an auth-user-pass style block or file.
pub fn parse_credentials(text: &str) -> Result<(String, Option<String>), String> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let user = lines.next().unwrap_or("").trim().to_string();
    if user.is_empty() {
        return Err(
            "the user name/password data is empty (first line must be the user name)".into(),
        );
    }
    if looks_like_placeholder(&user) {
        return Err("the user name is a template placeholder".into());
    }
    let pass = lines.next().map(str::to_string).filter(|p| !p.is_empty());
    Ok((user, pass))
}

/// Check that `text` holds what a `kind` directive needs.
/// The passphrase in an `askpass` file: its first line, as OpenVPN reads it.
pub fn parse_passphrase(text: &str) -> Result<String, String> {
    let line = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if line.is_empty() {
        return Err("the first line (the passphrase) is empty".into());
    }
    Ok(line.to_owned())
}

pub fn check(kind: FileKind, text: &str, has_direction: bool) -> Result<MaterialOk, String> {
    match kind {
        FileKind::Ca | FileKind::Cert | FileKind::ExtraCerts => check_certs(kind, text),
        FileKind::Key => check_key(text),
        FileKind::TlsAuth | FileKind::Secret => check_static(kind, text, !has_direction),
        FileKind::TlsCrypt => check_static(kind, text, false),
        FileKind::TlsCryptV2 => check_tls_crypt_v2(text),
        FileKind::Pkcs12 => check_pkcs12_base64(text),
        FileKind::CrlVerify => check_crl(text),
        FileKind::Dh => ok("Diffie-Hellman parameters"),
        FileKind::AuthUserPass | FileKind::HttpProxyUserPass => {
            parse_credentials(text).map(|_| MaterialOk {
                summary: "user name and password".into(),
                needs_passphrase: false,
                warning: None,
            })
        }
        FileKind::Askpass => parse_passphrase(text).map(|_| MaterialOk {
            summary: "the private key's passphrase".into(),
            needs_passphrase: false,
            warning: None,
        }),
        FileKind::ClientCertAndKey => Err("not a file".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn static_key(bytes: usize) -> String {
        let hex: String = (0..bytes).map(|i| format!("{:02x}", i % 256)).collect();
        let lines: Vec<&str> = hex
            .as_bytes()
            .chunks(32)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n{}\n-----END OpenVPN Static key V1-----\n", lines.join("\n"))
    }

    #[test]
    fn static_key_sizes() {
        assert!(check(FileKind::TlsCrypt, &static_key(256), false).is_ok());
        assert!(check(FileKind::TlsCrypt, &static_key(128), false).is_err());
        assert!(check(FileKind::TlsAuth, &static_key(128), false).is_ok());
        assert!(check(FileKind::TlsAuth, &static_key(128), true).is_err());
        let bad = static_key(256).replace("0001", "zz01");
        assert!(check(FileKind::TlsAuth, &bad, true)
            .unwrap_err()
            .contains("not hexadecimal"));
        let trunc = static_key(256).replace("-----END OpenVPN Static key V1-----", "");
        assert!(check(FileKind::TlsAuth, &trunc, true)
            .unwrap_err()
            .contains("truncated"));
    }

    /// The fixture CA with two of its base64 lines swapped, as in eduVPN's example
    /// profile: the PEM frame and the base64 are fine, the DER inside is not.
    fn scrambled_ca() -> (String, String) {
        let pem = include_str!("../tests/fixtures/ca.crt").to_string();
        let mut lines: Vec<&str> = pem.lines().collect();
        lines.swap(2, 5);
        (pem.clone(), lines.join("\n") + "\n")
    }

    #[test]
    fn damaged_certificate_is_a_warning_not_a_refusal() {
        let (intact, scrambled) = scrambled_ca();
        let ok = check(FileKind::Ca, &intact, false).unwrap();
        assert_eq!((ok.summary.as_str(), ok.warning), ("1 certificate", None));
        let ok = check(FileKind::Ca, &scrambled, false).unwrap();
        assert_eq!(ok.summary, "1 certificate (1 damaged)");
        let w = ok.warning.unwrap();
        assert!(w.contains("certificate 1 in ca is damaged"), "{w}");
        assert!(w.contains("connecting will fail"), "{w}");
        // A cut-off PEM frame is still refused.
        let cut = intact.replace("-----END CERTIFICATE-----", "");
        assert!(check(FileKind::Ca, &cut, false)
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn empty_and_placeholder_blocks() {
        assert!(check(FileKind::Ca, "\n  \n", false)
            .unwrap_err()
            .contains("empty"));
        assert!(check(FileKind::Ca, "# paste here\n", false)
            .unwrap_err()
            .contains("empty"));
        assert!(check(FileKind::Ca, "$CA$\n", false)
            .unwrap_err()
            .contains("placeholder"));
        assert!(check(FileKind::Cert, "{{cert}}\n", false)
            .unwrap_err()
            .contains("placeholder"));
        assert!(check(FileKind::TlsCrypt, "<tls-crypt key here>\n", false)
            .unwrap_err()
            .contains("placeholder"));
    }

    #[test]
    fn truncated_pem() {
        let e = check(FileKind::Ca, "-----BEGIN CERTIFICATE-----\nMIIB\n", false).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn pkcs12_not_base64() {
        let e = check(FileKind::Pkcs12, "this is not base64 !!!\n", false).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        // Valid base64 of something that is not PKCS#12.
        let e = check(FileKind::Pkcs12, "aGVsbG8gd29ybGQ=\n", false).unwrap_err();
        assert!(e.contains("PKCS#12"), "{e}");
    }

    #[test]
    fn pkcs12_structure_accepted() {
        // SEQUENCE { INTEGER 3, SEQUENCE { OID 1.2.840.113549.1.7.1, [0] { OCTET STRING "" } } }
        let der = [
            0x30, 0x16, 0x02, 0x01, 0x03, 0x30, 0x11, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
            0x0d, 0x01, 0x07, 0x01, 0xa0, 0x04, 0x04, 0x02, 0x30, 0x00,
        ];
        assert_eq!(check_pkcs12_der(&der), Ok(()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        assert!(check(FileKind::Pkcs12, &b64, false).is_ok());
    }

    #[test]
    fn tls_crypt_v2_framing() {
        let mut blob = vec![7u8; 256];
        let wkc_len = 32 + 10 + 2;
        blob.extend(vec![1u8; wkc_len - 2]);
        blob.extend(u16::try_from(wkc_len).unwrap().to_be_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let text = format!("-----BEGIN OpenVPN tls-crypt-v2 client key-----\n{b64}\n-----END OpenVPN tls-crypt-v2 client key-----\n");
        assert!(check(FileKind::TlsCryptV2, &text, false).is_ok());
        let n = blob.len();
        blob[n - 1] ^= 1;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let text = format!("-----BEGIN OpenVPN tls-crypt-v2 client key-----\n{b64}\n-----END OpenVPN tls-crypt-v2 client key-----\n");
        assert!(check(FileKind::TlsCryptV2, &text, false)
            .unwrap_err()
            .contains("damaged"));
    }

    #[test]
    fn credentials() {
        assert_eq!(
            parse_credentials("alice\r\nsecret\r\n").unwrap(),
            ("alice".into(), Some("secret".into()))
        );
        assert_eq!(parse_credentials("bob\n").unwrap(), ("bob".into(), None));
        assert!(parse_credentials("\n").is_err());
    }
}
