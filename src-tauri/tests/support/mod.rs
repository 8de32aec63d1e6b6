pub mod fake_helper;
