//! Key method 2 (§5): the client's first TLS plaintext (randoms, options
//! string, credentials, peer-info) and the server's structured reply.

use crate::codec::Reader;
use crate::config::{AllowCompression, ClientConfig, Compression, TlsWrap, Transport};
use thiserror::Error;
use zeroize::Zeroizing;

/// `TLS_OPTIONS_LEN` (512 incl. NUL on a 2.6 server).
pub const MAX_OPTIONS_LEN: usize = 511;
/// `TLS_CHANNEL_BUF_SIZE`: the server reads the message in one `SSL_read()`.
pub const MAX_MESSAGE_LEN: usize = 2048;
/// Longest string we accept in a server reply.
const MAX_REPLY_STRING: usize = 4096;

/// IV_PROTO bits (§5.3).
pub mod iv_proto {
    pub const DATA_V2: u32 = 1 << 1;
    pub const REQUEST_PUSH: u32 = 1 << 2;
    pub const TLS_KEY_EXPORT: u32 = 1 << 3;
    pub const AUTH_PENDING_KW: u32 = 1 << 4;
    pub const CC_EXIT_NOTIFY: u32 = 1 << 7;
    pub const AUTH_FAIL_TEMP: u32 = 1 << 8;
    pub const DYN_TLS_CRYPT: u32 = 1 << 9;
    /// The OpenVPN 2.7 epoch data format (`crate::epoch`).
    pub const DATA_EPOCH: u32 = 1 << 10;
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyMethodError {
    #[error("options string is {len} bytes, the server accepts at most {MAX_OPTIONS_LEN}")]
    OptionsTooLong { len: usize },
    #[error("key-method-2 message is {len} bytes, the server reads at most {MAX_MESSAGE_LEN}: shorten username, password or peer-info")]
    MessageTooLong { len: usize },
    #[error("server key-method reply malformed: {0}")]
    Malformed(String),
}

/// Client randoms for one key exchange (from the caller's RNG).
#[derive(Clone)]
pub struct ClientRandoms {
    pub pre_master: [u8; 48],
    pub random1: [u8; 32],
    pub random2: [u8; 32],
}

impl std::fmt::Debug for ClientRandoms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientRandoms{..}")
    }
}

/// The options string a 2.6 client sends (§5.2).
pub fn options_string(cfg: &ClientConfig) -> String {
    let proto = match cfg.transport {
        Transport::Udp => "UDPv4",
        Transport::Tcp => "TCPv4_CLIENT",
    };
    // link-mtu is informational; mirror what 2.6 prints for the default setup.
    let link_mtu = u32::from(cfg.tun_mtu) + 41 + u32::from(cfg.transport == Transport::Tcp) * 2;
    let mut s = format!(
        "V4,dev-type tun,link-mtu {link_mtu},tun-mtu {},proto {proto}",
        cfg.tun_mtu
    );
    if cfg.compression != Compression::None {
        s.push_str(",comp-lzo");
    }
    s.push_str(&format!(",auth {},keysize 128", cfg.auth_digest));
    if matches!(cfg.tls_wrap, TlsWrap::Auth { .. }) {
        s.push_str(",tls-auth");
    }
    s.push_str(",key-method 2,tls-client");
    s
}

/// IV_PROTO value we announce.
pub fn iv_proto(cfg: &ClientConfig) -> u32 {
    use iv_proto::*;
    let mut v =
        DATA_V2 | REQUEST_PUSH | TLS_KEY_EXPORT | AUTH_PENDING_KW | CC_EXIT_NOTIFY | AUTH_FAIL_TEMP;
    if cfg.dynamic_tls_crypt {
        v |= DYN_TLS_CRYPT;
    }
    // The epoch format is AEAD only: offer it when the profile allows one.
    let aead = cfg
        .data_ciphers
        .iter()
        .any(|c| crate::data::Cipher::from_name(c).is_some_and(|c| c.is_aead()));
    if aead {
        v |= DATA_EPOCH;
    }
    v
}

/// Peer-info block (§5.3): `NAME=value\n` lines.
pub fn peer_info(cfg: &ClientConfig) -> String {
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!("IV_VER={}", cfg.peer_info.version));
    lines.push(format!("IV_PLAT={}", cfg.peer_info.plat));
    lines.push("IV_TCPNL=1".to_string());
    lines.push("IV_MTU=1600".to_string());
    let has = |c: &str| cfg.data_ciphers.iter().any(|x| x.eq_ignore_ascii_case(c));
    if has("AES-128-GCM") && has("AES-256-GCM") {
        lines.push("IV_NCP=2".to_string());
    }
    lines.push(format!("IV_CIPHERS={}", cfg.data_ciphers.join(":")));
    lines.push(format!("IV_PROTO={}", iv_proto(cfg)));
    // As 2.6 (comp.c: comp_generate_peer_info_string): the real algorithms only
    // when the profile configures one; a server may then push them. We decompress
    // whatever is pushed either way.
    if cfg.compression.is_real() && cfg.allow_compression != AllowCompression::No {
        lines.push("IV_LZ4=1".to_string());
        lines.push("IV_LZ4v2=1".to_string());
        lines.push("IV_LZO=1".to_string());
    } else {
        lines.push("IV_LZO_STUB=1".to_string());
    }
    lines.push("IV_COMP_STUB=1".to_string());
    lines.push("IV_COMP_STUBv2=1".to_string());
    if let Some(gui) = &cfg.peer_info.gui_ver {
        lines.push(format!("IV_GUI_VER={}", sanitize(gui)));
    }
    for (k, v) in &cfg.peer_info.extra {
        lines.push(format!("{}={}", sanitize(k), sanitize(v)));
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Peer-info values must not break the line format.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

fn write_str(out: &mut Vec<u8>, s: Option<&[u8]>) -> Result<(), KeyMethodError> {
    match s {
        None => out.extend_from_slice(&0u16.to_be_bytes()),
        Some(b) => {
            let len = u16::try_from(b.len() + 1)
                .map_err(|_| KeyMethodError::MessageTooLong { len: b.len() })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(b);
            out.push(0);
        }
    }
    Ok(())
}

/// Build the whole client message; the caller writes it to TLS in ONE write.
pub fn build_client_message(
    randoms: &ClientRandoms,
    options: &str,
    username: Option<&str>,
    password: Option<&str>,
    peer_info: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyMethodError> {
    if options.len() > MAX_OPTIONS_LEN {
        return Err(KeyMethodError::OptionsTooLong { len: options.len() });
    }
    for (what, v) in [("username", username), ("password", password)] {
        if v.is_some_and(|v| v.len() >= 128) {
            tracing::warn!(
                field = what,
                "{what} is 128 bytes or longer; servers built without PKCS#11 reject it"
            );
        }
    }
    // It carries the password: sized exactly up front (no growth leaves a copy behind)
    // and wiped when the caller drops it.
    let field = |s: Option<usize>| 2 + s.map_or(0, |n| n + 1);
    let len = 4
        + 1
        + randoms.pre_master.len()
        + randoms.random1.len()
        + randoms.random2.len()
        + field(Some(options.len()))
        + field(username.map(str::len))
        + field(password.map(str::len))
        + field(Some(peer_info.len()));
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(&0u32.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&randoms.pre_master);
    out.extend_from_slice(&randoms.random1);
    out.extend_from_slice(&randoms.random2);
    write_str(&mut out, Some(options.as_bytes()))?;
    write_str(&mut out, username.map(str::as_bytes))?;
    write_str(&mut out, password.map(str::as_bytes))?;
    write_str(&mut out, Some(peer_info.as_bytes()))?;
    if out.len() > MAX_MESSAGE_LEN {
        return Err(KeyMethodError::MessageTooLong { len: out.len() });
    }
    Ok(out)
}

/// The server's key-method-2 reply.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKeyReply {
    pub random1: [u8; 32],
    pub random2: [u8; 32],
    /// Server options string (bytes, not guaranteed UTF-8), without NUL.
    pub options: Vec<u8>,
    pub peer_info: Vec<u8>,
}

impl std::fmt::Debug for ServerKeyReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeyReply")
            .field("options", &String::from_utf8_lossy(&self.options))
            .finish_non_exhaustive()
    }
}

impl ServerKeyReply {
    /// The `cipher X` field of the server's options string, if any.
    pub fn cipher(&self) -> Option<String> {
        String::from_utf8_lossy(&self.options)
            .split(',')
            .find_map(|f| f.strip_prefix("cipher ").map(|c| c.trim().to_string()))
    }
}

/// Reads one `str`; `Ok(None)` means "need more bytes".
fn read_str(r: &mut Reader<'_>, field: &'static str) -> Result<Option<Vec<u8>>, KeyMethodError> {
    if r.remaining() < 2 {
        return Ok(None);
    }
    let len = usize::from(
        r.u16(field)
            .map_err(|e| KeyMethodError::Malformed(e.to_string()))?,
    );
    if len > MAX_REPLY_STRING {
        return Err(KeyMethodError::Malformed(format!(
            "{field} length {len} exceeds {MAX_REPLY_STRING}"
        )));
    }
    if r.remaining() < len {
        return Ok(None);
    }
    let bytes = r
        .take(len, field)
        .map_err(|e| KeyMethodError::Malformed(e.to_string()))?;
    let mut v = bytes.to_vec();
    // Length counts the NUL; tolerate a missing one but strip it when present.
    if v.last() == Some(&0) {
        v.pop();
    }
    Ok(Some(v))
}

/// Parse the server reply from the start of the TLS plaintext stream.
/// Returns `Ok(None)` while incomplete, else the reply and the number of
/// bytes it used (the rest is the control-message stream).
pub fn parse_server_reply(buf: &[u8]) -> Result<Option<(ServerKeyReply, usize)>, KeyMethodError> {
    let mut r = Reader::new(buf);
    if r.remaining() < 4 + 1 + 64 {
        return Ok(None);
    }
    let m = |e: crate::codec::CodecError| KeyMethodError::Malformed(e.to_string());
    let zero = r.u32("literal zero").map_err(m)?;
    if zero != 0 {
        return Err(KeyMethodError::Malformed(format!(
            "first four bytes must be zero, got {zero:#x}"
        )));
    }
    let method = r.u8("key method").map_err(m)?;
    if method & 0x0f != 2 {
        return Err(KeyMethodError::Malformed(format!(
            "key method {} is not 2",
            method & 0x0f
        )));
    }
    let random1: [u8; 32] = r.array("random1").map_err(m)?;
    let random2: [u8; 32] = r.array("random2").map_err(m)?;
    let Some(options) = read_str(&mut r, "options")? else {
        return Ok(None);
    };
    let Some(_user) = read_str(&mut r, "username")? else {
        return Ok(None);
    };
    let Some(_pass) = read_str(&mut r, "password")? else {
        return Ok(None);
    };
    let Some(peer_info) = read_str(&mut r, "peer-info")? else {
        return Ok(None);
    };
    Ok(Some((
        ServerKeyReply {
            random1,
            random2,
            options,
            peer_info,
        },
        r.position(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn randoms() -> ClientRandoms {
        ClientRandoms {
            pre_master: [0x11; 48],
            random1: [0x22; 32],
            random2: [0x33; 32],
        }
    }

    #[test]
    fn client_message_exact_bytes() {
        let msg =
            build_client_message(&randoms(), "V4,x", Some("u"), None, "IV_PROTO=414\n").unwrap();
        let mut exp = vec![0, 0, 0, 0, 2];
        exp.extend_from_slice(&[0x11; 48]);
        exp.extend_from_slice(&[0x22; 32]);
        exp.extend_from_slice(&[0x33; 32]);
        exp.extend_from_slice(&[0, 5]);
        exp.extend_from_slice(b"V4,x\0");
        exp.extend_from_slice(&[0, 2, b'u', 0]);
        exp.extend_from_slice(&[0, 0]);
        exp.extend_from_slice(&[0, 14]);
        exp.extend_from_slice(b"IV_PROTO=414\n\0");
        assert_eq!(*msg, exp);
    }

    #[test]
    fn options_string_default_matches_26_client() {
        let cfg = ClientConfig::default();
        assert_eq!(
            options_string(&cfg),
            "V4,dev-type tun,link-mtu 1541,tun-mtu 1500,proto UDPv4,auth SHA1,keysize 128,key-method 2,tls-client"
        );
        let cfg = ClientConfig {
            transport: Transport::Tcp,
            compression: Compression::StubV2,
            tls_wrap: TlsWrap::Auth {
                key: vec![0; 256],
                key_direction: Some(1),
            },
            auth_digest: "SHA256".into(),
            ..ClientConfig::default()
        };
        let s = options_string(&cfg);
        assert!(s.contains(
            ",proto TCPv4_CLIENT,comp-lzo,auth SHA256,keysize 128,tls-auth,key-method 2"
        ));
    }

    #[test]
    fn too_long_options_rejected() {
        let long = "V4".to_string() + &",x".repeat(300);
        assert!(matches!(
            build_client_message(&randoms(), &long, None, None, ""),
            Err(KeyMethodError::OptionsTooLong { .. })
        ));
    }

    #[test]
    fn peer_info_lines() {
        let mut cfg = ClientConfig::default();
        cfg.peer_info.gui_ver = Some("OxiVPN_0.1".into());
        cfg.peer_info.plat = "linux".into();
        let pi = peer_info(&cfg);
        assert!(pi.contains("IV_PROTO=1950\n"));
        assert!(pi.contains("IV_NCP=2\n"));
        assert!(pi.contains("IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305\n"));
        assert!(pi.contains("IV_GUI_VER=OxiVPN_0.1\n"));
        assert!(pi.contains("IV_COMP_STUBv2=1\n"));
        assert!(pi.ends_with('\n'));
        cfg.dynamic_tls_crypt = false;
        assert!(peer_info(&cfg).contains("IV_PROTO=1438\n"));
        cfg.data_ciphers = vec!["CHACHA20-POLY1305".into()];
        assert!(!peer_info(&cfg).contains("IV_NCP"));
        // the epoch data format (bit 10) only with an AEAD cipher to use it with
        assert_ne!(iv_proto(&cfg) & iv_proto::DATA_EPOCH, 0);
        cfg.data_ciphers = vec!["AES-256-CBC".into()];
        assert_eq!(iv_proto(&cfg) & iv_proto::DATA_EPOCH, 0);
        assert!(peer_info(&cfg).contains("IV_PROTO=414\n"));
    }

    #[test]
    fn peer_info_announces_real_compression_only_when_configured() {
        let mut cfg = ClientConfig::default();
        let pi = peer_info(&cfg);
        assert!(pi.contains("IV_LZO_STUB=1\n") && !pi.contains("IV_LZ4=1"));
        cfg.compression = Compression::Lzo;
        let pi = peer_info(&cfg);
        for l in [
            "IV_LZ4=1\n",
            "IV_LZ4v2=1\n",
            "IV_LZO=1\n",
            "IV_COMP_STUB=1\n",
        ] {
            assert!(pi.contains(l), "{l}");
        }
        assert!(!pi.contains("IV_LZO_STUB"));
        cfg.allow_compression = AllowCompression::No;
        assert!(peer_info(&cfg).contains("IV_LZO_STUB=1\n"));
    }

    fn server_reply() -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0, 2];
        v.extend_from_slice(&[0xaa; 32]);
        v.extend_from_slice(&[0xbb; 32]);
        v.extend_from_slice(&[0, 17]);
        v.extend_from_slice(b"V4,cipher BF-CBC\0");
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn server_reply_structural_with_trailing_messages() {
        let mut v = server_reply();
        let reply_len = v.len();
        v.extend_from_slice(b"PUSH_REPLY,ping 10\0");
        // Incomplete prefixes: need more.
        for cut in [0, 10, 70, 75, reply_len - 1] {
            assert_eq!(parse_server_reply(&v[..cut]).unwrap(), None, "cut {cut}");
        }
        let (reply, used) = parse_server_reply(&v).unwrap().unwrap();
        assert_eq!(used, reply_len);
        assert_eq!(reply.random1, [0xaa; 32]);
        assert_eq!(reply.cipher().as_deref(), Some("BF-CBC"));
        assert_eq!(&v[used..], b"PUSH_REPLY,ping 10\0");
    }

    #[test]
    fn server_reply_malformed() {
        let mut v = server_reply();
        v[4] = 1;
        assert!(parse_server_reply(&v).is_err());
        let mut v = server_reply();
        v[0] = 1;
        assert!(parse_server_reply(&v).is_err());
        let mut v = server_reply();
        v[69] = 0xff; // options length 0xff11 > limit
        assert!(parse_server_reply(&v).is_err());
    }
}
