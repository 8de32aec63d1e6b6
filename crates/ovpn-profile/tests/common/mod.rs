//! Shared fixtures: a small valid profile built from test-only keys.
#![allow(dead_code)]

pub const CA: &str = include_str!("../fixtures/ca.crt");
pub const KEY: &str = include_str!("../fixtures/client.key");
pub const TA: &str = include_str!("../fixtures/ta.key");

/// A usable profile with inline material; `extra` goes after `client`.
pub fn profile_with(extra: &str) -> String {
    format!(
        "client\n{extra}\ndev tun\nremote vpn.example.com 1194 udp\n<ca>\n{CA}</ca>\n<cert>\n{CA}</cert>\n<key>\n{KEY}</key>\n<tls-auth>\n{TA}</tls-auth>\nkey-direction 1\n"
    )
}

/// Number of lines before `extra` starts in [`profile_with`].
pub const EXTRA_LINE: u32 = 2;
