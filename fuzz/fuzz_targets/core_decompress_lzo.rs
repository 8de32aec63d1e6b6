//! cargo-fuzz target: see `oxivpn_fuzz::bodies::core_decompress_lzo` (fuzz/src/bodies.rs) for what it checks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| oxivpn_fuzz::bodies::core_decompress_lzo(data));
