//! TCP framer on an arbitrary byte stream cut at arbitrary points: never
//! panic; every popped packet is 1..=max bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ovpn_core::transport::TcpFramer;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut f = TcpFramer::new(1500);
    for chunk in rest.chunks(usize::from(step.max(1))) {
        f.push(chunk);
        while let Ok(Some(p)) = f.pop() {
            assert!(!p.is_empty() && p.len() <= 1500);
        }
    }
});
