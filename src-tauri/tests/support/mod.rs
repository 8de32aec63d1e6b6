pub mod fake_helper;
#[cfg(target_os = "linux")]
pub mod fake_nm;
