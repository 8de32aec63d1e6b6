//! Plain control-packet decoder and data header parser: never panic; what
//! decodes must re-encode to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ovpn_core::packet::{peek_header, ControlPacket, DataHeader};

fuzz_target!(|data: &[u8]| {
    let _ = peek_header(data);
    let _ = DataHeader::parse(data);
    if let Ok(p) = ControlPacket::decode(data) {
        let mut out = Vec::new();
        p.encode(&mut out).expect("decoded packet must encode");
        assert_eq!(out, data);
    }
});
