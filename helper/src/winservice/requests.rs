//! Answers of the Windows service to IPC requests. The session engine (helper/src/service)
//! is Unix-only so far, so the Windows service authenticates clients and answers status
//! and listing truthfully, and refuses what needs a tunnel with a clear `unsupported`.
//! `route_check` is answered by runtime.rs (a blocking route lookup) before this.

use std::time::Duration;

use ipc::{HelperStatus, IpcError, Request, Response, ShortText, PROTOCOL_VERSION};

/// What this build of the Windows service cannot do yet, as the client will show it.
pub const NOT_WIRED: &str =
    "tunnels from the Windows service (the session engine is not ported to Windows yet)";

pub fn answer(req: &Request, peer_uid: u32, uptime: Duration) -> Result<Response, IpcError> {
    match req {
        Request::Status => Ok(Response::Status(HelperStatus {
            helper_version: ShortText::sanitized(env!("CARGO_PKG_VERSION")),
            protocol: PROTOCOL_VERSION,
            uptime_ms: u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX),
            peer_uid,
            sessions: 0,
            tunnel_wired: false,
        })),
        Request::ListSessions => Ok(Response::Sessions(Vec::new())),
        // Nothing will ever be published; subscribing is harmless and keeps clients
        // that subscribe before anything else working.
        Request::Subscribe(_) => Ok(Response::Subscribed),
        Request::Disconnect { session }
        | Request::AnswerChallenge { session, .. }
        | Request::SessionRoutes { session } => Err(IpcError::NoSuchSession { session: *session }),
        #[allow(unreachable_patterns)]
        _ => Err(IpcError::Unsupported {
            what: ShortText::sanitized(NOT_WIRED),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::frame;
    use ipc::{ClientFrame, RequestId, SessionId};

    #[test]
    fn status_reports_the_peer_and_no_tunnel() {
        match answer(&Request::Status, 1001, Duration::from_millis(1500)).unwrap() {
            Response::Status(s) => {
                assert_eq!(s.peer_uid, 1001);
                assert_eq!(s.uptime_ms, 1500);
                assert_eq!(s.protocol, PROTOCOL_VERSION);
                assert!(!s.tunnel_wired);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn connect_is_refused_as_unsupported_after_decoding_from_the_wire() {
        // The same bytes the app sends: decoded with the shared validation first.
        let wire = br#"{"request":{"id":7,"body":{"connect":{"profile_name":"work","profile_text":"client\n"}}}}"#;
        let f: ClientFrame = frame::decode(wire).unwrap();
        let ClientFrame::Request { id, body } = f else {
            panic!("not a request")
        };
        assert_eq!(id, RequestId(7));
        match answer(&body, 0, Duration::ZERO) {
            Err(IpcError::Unsupported { what }) => assert!(what.as_str().contains("Windows")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn session_requests_name_no_such_session() {
        let r = answer(
            &Request::Disconnect {
                session: SessionId(3),
            },
            1001,
            Duration::ZERO,
        );
        assert_eq!(
            r,
            Err(IpcError::NoSuchSession {
                session: SessionId(3)
            })
        );
        assert_eq!(
            answer(&Request::ListSessions, 1001, Duration::ZERO),
            Ok(Response::Sessions(vec![]))
        );
    }
}
