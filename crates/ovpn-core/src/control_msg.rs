//! Control-channel messages (§6.1, §6.4): NUL-terminated ASCII strings sent
//! over TLS, each in its own TLS write.

use base64::Engine;

/// Longest message we buffer while waiting for its NUL; servers send ≤ 1024
/// bytes per message, we allow generous slack before dropping.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// Encode one message: the text plus its terminating NUL.
pub fn encode(text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v
}

/// Splits the decrypted TLS byte stream into messages.
#[derive(Debug, Default)]
pub struct MessageSplitter {
    buf: Vec<u8>,
    /// Messages dropped because they were too long or not printable.
    pub dropped: u64,
}

impl MessageSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append decrypted bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_MESSAGE_LEN && !self.buf.contains(&0) {
            tracing::warn!(
                len = self.buf.len(),
                "control message without NUL terminator too long; dropped"
            );
            self.buf.clear();
            self.dropped += 1;
        }
    }

    /// Next complete message (without NUL and trailing CR/LF). Empty and
    /// non-printable messages are skipped and counted.
    pub fn next_message(&mut self) -> Option<String> {
        loop {
            let pos = self.buf.iter().position(|&b| b == 0)?;
            let raw: Vec<u8> = self.buf.drain(..=pos).collect();
            let mut text = &raw[..pos];
            while let Some((&last, rest)) = text.split_last() {
                if last == b'\n' || last == b'\r' {
                    text = rest;
                } else {
                    break;
                }
            }
            if text.is_empty() {
                continue;
            }
            if !text
                .iter()
                .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
            {
                tracing::warn!(len = text.len(), "non-printable control message dropped");
                self.dropped += 1;
                continue;
            }
            // Printable ASCII is valid UTF-8.
            return Some(String::from_utf8_lossy(text).into_owned());
        }
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// `AUTH_FAILED[,reason]`.
    Plain { reason: String },
    /// `AUTH_FAILED,TEMP[flags]:msg`: try again later.
    Temp {
        backoff_secs: Option<u32>,
        /// `advance no|addr|remote`.
        advance: Option<String>,
        message: String,
    },
    /// `AUTH_FAILED,CRV1:flags:state_id:b64 username:text`: dynamic challenge.
    Crv1 {
        echo: bool,
        response_required: bool,
        state_id: String,
        username: String,
        text: String,
    },
}

/// A message received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    AuthFailed(AuthFailure),
    /// `PUSH_REPLY...`: the text after `PUSH_REPLY` (starts with `,` or is empty).
    PushReply(String),
    /// Another `PUSH_*` message (e.g. `PUSH_UPDATE` of 2.7): ignored.
    PushOther(String),
    Restart(Option<String>),
    Halt(Option<String>),
    /// `INFO_PRE,<text>` (WEB_AUTH / OPEN_URL / CR_TEXT).
    InfoPre(String),
    /// `INFO,<text>`.
    Info(String),
    /// `AUTH_PENDING[,timeout N]`.
    AuthPending {
        timeout_secs: Option<u32>,
    },
    /// `EXIT`: the server is leaving.
    Exit,
    Unknown(String),
}

fn after_comma(rest: &str) -> Option<String> {
    rest.strip_prefix(',')
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// Classify a message by prefix, in OpenVPN's order (`INFO_PRE` before `INFO`).
pub fn parse(msg: &str) -> ControlMessage {
    if let Some(rest) = msg.strip_prefix("AUTH_FAILED") {
        return ControlMessage::AuthFailed(parse_auth_failed(rest));
    }
    if let Some(rest) = msg.strip_prefix("PUSH_REPLY") {
        return ControlMessage::PushReply(rest.to_string());
    }
    if msg.starts_with("PUSH_") {
        return ControlMessage::PushOther(msg.to_string());
    }
    if let Some(rest) = msg.strip_prefix("RESTART") {
        return ControlMessage::Restart(after_comma(rest));
    }
    if let Some(rest) = msg.strip_prefix("HALT") {
        return ControlMessage::Halt(after_comma(rest));
    }
    if let Some(rest) = msg.strip_prefix("INFO_PRE") {
        return ControlMessage::InfoPre(after_comma(rest).unwrap_or_default());
    }
    if let Some(rest) = msg.strip_prefix("INFO") {
        return ControlMessage::Info(after_comma(rest).unwrap_or_default());
    }
    if let Some(rest) = msg.strip_prefix("AUTH_PENDING") {
        let timeout_secs = rest
            .trim_start_matches(',')
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix("timeout "))
            .and_then(|v| v.trim().parse().ok());
        return ControlMessage::AuthPending { timeout_secs };
    }
    if msg == "EXIT" || msg.starts_with("EXIT,") {
        return ControlMessage::Exit;
    }
    ControlMessage::Unknown(msg.to_string())
}

fn parse_auth_failed(rest: &str) -> AuthFailure {
    let reason = rest.strip_prefix(',').unwrap_or(rest);
    if let Some(temp) = reason.strip_prefix("TEMP") {
        let mut backoff_secs = None;
        let mut advance = None;
        let mut message = temp;
        if let Some(flags) = temp.strip_prefix('[') {
            if let Some(end) = flags.find(']') {
                for flag in flags[..end].split(',') {
                    let flag = flag.trim();
                    if let Some(v) = flag.strip_prefix("backoff ") {
                        backoff_secs = v.trim().parse().ok();
                    } else if let Some(v) = flag.strip_prefix("advance ") {
                        advance = Some(v.trim().to_string());
                    }
                }
                message = &flags[end + 1..];
            }
        }
        let message = message.strip_prefix(':').unwrap_or(message).to_string();
        return AuthFailure::Temp {
            backoff_secs,
            advance,
            message,
        };
    }
    if let Some(crv) = reason.strip_prefix("CRV1:") {
        let parts: Vec<&str> = crv.splitn(4, ':').collect();
        if let [flags, state_id, user_b64, text] = parts[..] {
            let username = base64::engine::general_purpose::STANDARD
                .decode(user_b64.trim())
                .ok()
                .and_then(|u| String::from_utf8(u).ok())
                .unwrap_or_default();
            let flags: Vec<&str> = flags.split(',').map(str::trim).collect();
            return AuthFailure::Crv1 {
                echo: flags.contains(&"E"),
                response_required: flags.contains(&"R"),
                state_id: state_id.to_string(),
                username,
                text: text.to_string(),
            };
        }
    }
    AuthFailure::Plain {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_across_reads_and_crlf() {
        let mut s = MessageSplitter::new();
        s.push(b"PUSH_RE");
        assert_eq!(s.next_message(), None);
        s.push(b"PLY,ping 10\0INFO,hi\r\n\0\0AUTH");
        assert_eq!(s.next_message().unwrap(), "PUSH_REPLY,ping 10");
        assert_eq!(s.next_message().unwrap(), "INFO,hi");
        assert_eq!(s.next_message(), None);
        s.push(b"_FAILED\0");
        assert_eq!(s.next_message().unwrap(), "AUTH_FAILED");
    }

    #[test]
    fn non_printable_dropped() {
        let mut s = MessageSplitter::new();
        s.push(b"INFO,\x01bad\0RESTART\0");
        assert_eq!(s.next_message().unwrap(), "RESTART");
        assert_eq!(s.dropped, 1);
    }

    #[test]
    fn overlong_without_nul_dropped() {
        let mut s = MessageSplitter::new();
        s.push(&vec![b'A'; MAX_MESSAGE_LEN + 1]);
        assert_eq!(s.dropped, 1);
        s.push(b"HALT\0");
        assert_eq!(s.next_message().unwrap(), "HALT");
    }

    #[test]
    fn encode_has_nul() {
        assert_eq!(encode("PUSH_REQUEST"), b"PUSH_REQUEST\0");
    }

    #[test]
    fn dispatch_order_and_forms() {
        assert_eq!(
            parse("INFO_PRE,WEB_AUTH::https://x"),
            ControlMessage::InfoPre("WEB_AUTH::https://x".into())
        );
        assert_eq!(parse("INFO,hello"), ControlMessage::Info("hello".into()));
        assert_eq!(parse("RESTART"), ControlMessage::Restart(None));
        assert_eq!(
            parse("RESTART,[N]bye"),
            ControlMessage::Restart(Some("[N]bye".into()))
        );
        assert_eq!(
            parse("HALT,stop"),
            ControlMessage::Halt(Some("stop".into()))
        );
        assert_eq!(parse("EXIT"), ControlMessage::Exit);
        assert_eq!(
            parse("PUSH_REPLY,ping 10"),
            ControlMessage::PushReply(",ping 10".into())
        );
        assert_eq!(
            parse("AUTH_PENDING,timeout 120"),
            ControlMessage::AuthPending {
                timeout_secs: Some(120)
            }
        );
        assert_eq!(
            parse("AUTH_PENDING"),
            ControlMessage::AuthPending { timeout_secs: None }
        );
        assert_eq!(parse("FOO"), ControlMessage::Unknown("FOO".into()));
    }

    #[test]
    fn auth_failed_variants() {
        assert_eq!(
            parse("AUTH_FAILED"),
            ControlMessage::AuthFailed(AuthFailure::Plain { reason: "".into() })
        );
        assert_eq!(
            parse("AUTH_FAILED,bad password"),
            ControlMessage::AuthFailed(AuthFailure::Plain {
                reason: "bad password".into()
            })
        );
        assert_eq!(
            parse("AUTH_FAILED,TEMP[backoff 30,advance remote]:try later"),
            ControlMessage::AuthFailed(AuthFailure::Temp {
                backoff_secs: Some(30),
                advance: Some("remote".into()),
                message: "try later".into()
            })
        );
        assert_eq!(
            parse("AUTH_FAILED,TEMP:busy"),
            ControlMessage::AuthFailed(AuthFailure::Temp {
                backoff_secs: None,
                advance: None,
                message: "busy".into()
            })
        );
        // "alice" base64 = YWxpY2U=
        assert_eq!(
            parse("AUTH_FAILED,CRV1:R,E:abc123:YWxpY2U=:Enter PIN: now"),
            ControlMessage::AuthFailed(AuthFailure::Crv1 {
                echo: true,
                response_required: true,
                state_id: "abc123".into(),
                username: "alice".into(),
                text: "Enter PIN: now".into()
            })
        );
    }
}
