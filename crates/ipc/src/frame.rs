//! Length-delimited frames: a big-endian u32 payload length, then that many bytes of
//! JSON. A length above the limit is refused before anything is allocated.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::FrameError;
use zeroize::Zeroizing;

/// Counts what serde_json writes (to size a frame before writing it).
struct CountingWriter(usize);

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The largest payload either side accepts (a profile is at most 512 KiB).
pub const MAX_FRAME: usize = 1024 * 1024;
const HEADER: usize = 4;

/// Header + JSON payload, ready to write.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    // Frames carry secrets: size the buffer exactly first (a counting pass), so it never
    // grows and leaves an old copy behind.
    let mut counter = CountingWriter(0);
    serde_json::to_writer(&mut counter, msg).map_err(|e| FrameError::Invalid {
        field: ".".into(),
        message: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(HEADER.saturating_add(counter.0));
    out.extend_from_slice(&[0u8; HEADER]);
    serde_json::to_writer(&mut out, msg).map_err(|e| FrameError::Invalid {
        field: ".".into(),
        message: e.to_string(),
    })?;
    let len = out.len() - HEADER;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len,
        max: MAX_FRAME,
    })?;
    out[..HEADER].copy_from_slice(&len32.to_be_bytes());
    Ok(out)
}

/// Decodes one payload (without header), validating every field; the error names
/// the field's path, e.g. `request.body.connect.profile_name`.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        FrameError::Invalid {
            field,
            message: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| FrameError::Invalid {
        field: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Incremental splitter for callers that receive bytes in pieces.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl Drop for FrameDecoder {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        // Grown by hand so the old buffer (frames may carry secrets) is wiped.
        let need = self.buf.len().saturating_add(bytes.len());
        if need > self.buf.capacity() {
            let mut grown = Vec::with_capacity(need.max(self.buf.capacity().saturating_mul(2)));
            grown.extend_from_slice(&self.buf);
            std::mem::swap(&mut grown, &mut self.buf);
            zeroize::Zeroize::zeroize(&mut grown);
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete payload, `Ok(None)` when more bytes are needed.
    pub fn next_payload(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(header) = self.buf.get(..HEADER) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; HEADER];
        len_bytes.copy_from_slice(header);
        let len = payload_len(len_bytes)?;
        let Some(end) = HEADER.checked_add(len) else {
            return Err(FrameError::TooLarge {
                len,
                max: MAX_FRAME,
            });
        };
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf.get(HEADER..end).map(<[u8]>::to_vec);
        self.buf.drain(..end);
        // The bytes the drain moved down from stay behind in the spare capacity.
        for b in self.buf.spare_capacity_mut() {
            b.write(0);
        }
        Ok(payload)
    }
}

fn payload_len(header: [u8; HEADER]) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    Ok(len)
}

/// Reads one payload. `Ok(None)` on a clean end of stream between frames.
pub async fn read_payload<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    read_body(r, header).await.map(Some)
}

/// Reads the payload whose header is already in hand; the server uses this to put
/// a deadline on a frame only once it has started.
pub async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    header: [u8; HEADER],
) -> Result<Vec<u8>, FrameError> {
    let len = payload_len(header)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(payload)
}

pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    // Wiped once written (it may hold a password or a profile's private key).
    let bytes = Zeroizing::new(encode(msg)?);
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_message<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<Option<T>, FrameError> {
    match read_payload(r).await? {
        // Wiped once decoded (it may hold a password or a profile's private key).
        Some(p) => decode(&Zeroizing::new(p)).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::*;
    use crate::types::*;
    use proptest::prelude::*;

    fn connect_frame() -> ClientFrame {
        ClientFrame::Request {
            id: RequestId(7),
            body: Request::Connect(ConnectRequest {
                profile_name: ProfileName::try_from("work").unwrap(),
                profile_text: ProfileText::try_from("client\nremote vpn.example 1194\n").unwrap(),
                credentials: Credentials {
                    username: Some(Username::try_from("alice").unwrap()),
                    password: Some(Secret::try_from("pw").unwrap()),
                    ..Credentials::default()
                },
                options: ConnectOptions {
                    kill_switch: KillSwitchMode::Off,
                    allow_lan: true,
                },
            }),
        }
    }

    #[test]
    fn round_trip_through_decoder() {
        let frames = vec![
            connect_frame(),
            ClientFrame::Hello(ClientHello {
                protocol: PROTOCOL_VERSION,
                client: ShortText::try_from("test").unwrap(),
            }),
            ClientFrame::Request {
                id: RequestId(8),
                body: Request::RouteCheck {
                    addr: "2001:db8::1".parse().unwrap(),
                },
            },
        ];
        let mut dec = FrameDecoder::default();
        for f in &frames {
            let bytes = encode(f).unwrap();
            // Feed byte by byte: partial frames must wait, not fail.
            for b in &bytes {
                dec.push(std::slice::from_ref(b));
            }
        }
        let mut out = vec![];
        while let Some(p) = dec.next_payload().unwrap() {
            out.push(decode::<ClientFrame>(&p).unwrap());
        }
        assert_eq!(out, frames);
    }

    #[test]
    fn server_frames_round_trip() {
        let frames = vec![
            ServerFrame::Refused(crate::IpcError::VersionMismatch {
                helper: 1,
                client: 9,
            }),
            ServerFrame::Response {
                id: RequestId(1),
                result: Err(crate::IpcError::ProfileRefused {
                    line: 3,
                    directive: ShortText::try_from("up").unwrap(),
                    reason: ShortText::try_from("runs a program").unwrap(),
                }),
            },
            ServerFrame::Event(Event {
                session: SessionId(4),
                unix_ms: 5,
                body: EventBody::Stage(Stage::Disconnected {
                    reason: DisconnectReason::Requested { by_uid: 0 },
                }),
            }),
        ];
        for f in frames {
            let bytes = encode(&f).unwrap();
            assert_eq!(decode::<ServerFrame>(&bytes[4..]).unwrap(), f);
        }
    }

    #[test]
    fn session_details_and_routes_round_trip() {
        let info = SessionInfo {
            id: SessionId(3),
            owner_uid: 1000,
            profile_name: Some(ProfileName::try_from("work").unwrap()),
            stage: Stage::Starting,
            started_unix_ms: 1,
            stats: Stats::default(),
            connection: Some(Box::new(ConnectionInfo {
                server_addr: "198.18.0.1".parse().unwrap(),
                server_port: 1194,
                transport: Transport::Udp,
                remote: ShortText::sanitized("vpn.example"),
                cipher: Some(ShortText::sanitized("AES-256-GCM")),
                tls: Some(ShortText::sanitized("TLSv1.3 TLS13_AES_256_GCM_SHA384")),
                key_derivation: Some(ShortText::sanitized("tls-ekm")),
                kill_switch: true,
                data_format: Some(ShortText::sanitized("AES-256-GCM, epoch keys (2.7)")),
                interface: Some(ShortText::sanitized("oxi0")),
            })),
        };
        let routes = SessionRoutes {
            session: SessionId(3),
            routes: vec![RouteEntry {
                destination: ShortText::sanitized("0.0.0.0/1"),
                gateway: None,
                device: Some(ShortText::sanitized("oxi0")),
                kind: RouteKind::IntoTunnel,
                reason: ShortText::sanitized("redirect-gateway def1"),
            }],
            notes: vec![],
        };
        for f in [
            ServerFrame::Response {
                id: RequestId(1),
                result: Ok(Response::Sessions(vec![info])),
            },
            ServerFrame::Response {
                id: RequestId(2),
                result: Ok(Response::Routes(routes)),
            },
        ] {
            let bytes = encode(&f).unwrap();
            assert_eq!(decode::<ServerFrame>(&bytes[4..]).unwrap(), f);
        }
        let json = String::from_utf8(
            encode(&ClientFrame::Request {
                id: RequestId(4),
                body: Request::SessionRoutes {
                    session: SessionId(3),
                },
            })
            .unwrap()[4..]
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            json,
            r#"{"request":{"id":4,"body":{"session_routes":{"session":3}}}}"#
        );
    }

    #[test]
    fn older_peers_without_the_new_fields_still_decode() {
        // A connect without `options` and a session without `connection` (protocol 1
        // before they existed) take the defaults.
        let connect = br#"{"request":{"id":1,"body":{"connect":{"profile_name":"w","profile_text":"client\n"}}}}"#;
        match decode::<ClientFrame>(connect).unwrap() {
            ClientFrame::Request {
                body: Request::Connect(c),
                ..
            } => assert_eq!(c.options, ConnectOptions::default()),
            other => panic!("{other:?}"),
        }
        let sessions = br#"{"response":{"id":1,"result":{"Ok":{"sessions":[{"id":1,"owner_uid":0,"profile_name":null,"stage":"starting","started_unix_ms":0,"stats":{"bytes_in":0,"bytes_out":0,"packets_in":0,"packets_out":0,"since_unix_ms":0}}]}}}}"#;
        match decode::<ServerFrame>(sessions).unwrap() {
            ServerFrame::Response {
                result: Ok(Response::Sessions(s)),
                ..
            } => assert_eq!(s[0].connection, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversize_frame_rejected_from_header() {
        let mut dec = FrameDecoder::default();
        let len = u32::try_from(MAX_FRAME + 1).unwrap();
        dec.push(&len.to_be_bytes());
        assert!(matches!(
            dec.next_payload(),
            Err(FrameError::TooLarge { len, max }) if len == MAX_FRAME + 1 && max == MAX_FRAME
        ));
    }

    #[test]
    fn oversize_message_not_encoded() {
        let big = "x".repeat(MAX_FRAME);
        let msg = ServerFrame::Event(Event {
            session: SessionId(1),
            unix_ms: 0,
            body: EventBody::Log(LogLine {
                level: LogLevel::Info,
                message: LogText::sanitized(&big),
            }),
        });
        // One log line is bounded, so this fits; many would not.
        assert!(encode(&msg).is_ok());
        let many: Vec<_> = (0..300).map(|_| msg.clone()).collect();
        assert!(matches!(encode(&many), Err(FrameError::TooLarge { .. })));
    }

    #[tokio::test]
    async fn oversize_frame_rejected_async() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let len = u32::try_from(MAX_FRAME + 10).unwrap();
        tokio::spawn(async move {
            let _ = a.write_all(&len.to_be_bytes()).await;
        });
        assert!(matches!(
            read_payload(&mut b).await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{\"he").await.unwrap();
        drop(a);
        assert!(matches!(
            read_payload(&mut b).await,
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for garbage in [
            &b"\xff\xfe\x00"[..],
            b"not json",
            b"{}",
            b"{\"request\":{\"id\":1}}",
            b"{\"hello\":{\"protocol\":1,\"client\":\"x\"}} trailing",
            b"{\"request\":{\"id\":-1,\"body\":\"status\"}}",
        ] {
            assert!(
                matches!(
                    decode::<ClientFrame>(garbage),
                    Err(FrameError::Invalid { .. })
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        let json = r#"{"request":{"id":1,"body":{"connect":{"profile_name":"a\u0007b","profile_text":"client\n"}}}}"#;
        match decode::<ClientFrame>(json.as_bytes()) {
            Err(FrameError::Invalid { field, message }) => {
                assert_eq!(field, "request.body.connect.profile_name");
                assert!(message.contains("control character"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let json = r#"{"request":{"id":1,"body":{"route_check":{"addr":"10.0.0.300"}}}}"#;
        match decode::<ClientFrame>(json.as_bytes()) {
            Err(FrameError::Invalid { field, .. }) => {
                assert_eq!(field, "request.body.route_check.addr")
            }
            other => panic!("{other:?}"),
        }
        let pw = "p".repeat(SECRET_MAX + 1);
        let json = format!(
            r#"{{"request":{{"id":1,"body":{{"connect":{{"profile_name":"a","profile_text":"client","credentials":{{"password":"{pw}"}}}}}}}}}}"#
        );
        match decode::<ClientFrame>(json.as_bytes()) {
            Err(FrameError::Invalid { field, message }) => {
                assert_eq!(field, "request.body.connect.credentials.password");
                assert!(message.contains("limit"), "{message}");
                // The refused secret must not be echoed back.
                assert!(!message.contains("ppp"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn decoder_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut dec = FrameDecoder::default();
            for c in &chunks {
                dec.push(c);
                while let Ok(Some(p)) = dec.next_payload() {
                    let _ = decode::<ClientFrame>(&p);
                    let _ = decode::<ServerFrame>(&p);
                }
            }
        }

        #[test]
        fn json_decoder_never_panics(s in "\\PC*") {
            let _ = decode::<ClientFrame>(s.as_bytes());
            let _ = decode::<ServerFrame>(s.as_bytes());
        }

        #[test]
        fn mutated_valid_frames_never_panic(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = encode(&connect_frame()).unwrap();
            let i = idx.index(bytes.len());
            bytes[i] = byte;
            let mut dec = FrameDecoder::default();
            dec.push(&bytes);
            if let Ok(Some(p)) = dec.next_payload() {
                let _ = decode::<ClientFrame>(&p);
            }
        }
    }
}
