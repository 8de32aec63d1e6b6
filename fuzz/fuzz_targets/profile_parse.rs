//! Profile parser on arbitrary bytes: never panic; a parsed profile re-serialises to
//! text that parses to the same profile; the helper's check agrees with the report.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = ovpn_profile::parse(data) else {
        return;
    };
    let _ = parsed.report.to_text();
    let p = &parsed.profile;
    if ovpn_profile::check_untrusted(data).is_ok() {
        assert!(parsed.report.usable && parsed.report.refused_count() == 0);
    }
    if p.file_refs().iter().any(|f| f.raw != f.path.as_bytes()) {
        return;
    }
    let text = p.to_ovpn_text();
    let again = ovpn_profile::parse(text.as_bytes()).expect("canonical text must parse");
    assert_eq!(&again.profile, p, "round trip changed the profile:\n{text}");
});
