//! The helper's own check of a profile that arrived over IPC. The text comes from an
//! unprivileged user, so anything that would make root run a program, load a
//! library, or open/write a path named in the profile is refused, with its line.
//! This is a second wall next to ovpn-profile's untrusted-input check, kept small
//! enough to audit on one screen.

use ipc::{IpcError, ShortText};

/// Both walls: this module's line check, then ovpn-profile's untrusted-input check
/// (which also insists the profile is self-contained and usable).
pub fn check_all(text: &str) -> Result<(Guarded, ovpn_profile::Profile), IpcError> {
    let mut guarded = check(text)?;
    let profile = ovpn_profile::check_untrusted(text.as_bytes()).map_err(|e| match e {
        ovpn_profile::UntrustedError::Refused {
            line,
            directive,
            message,
        } => IpcError::ProfileRefused {
            line,
            directive: ShortText::sanitized(&directive),
            reason: ShortText::sanitized(&message),
        },
        ovpn_profile::UntrustedError::FileReference {
            line, directive, ..
        } => refused(
            line as usize,
            &directive,
            "names a file; the helper only takes key material inline",
        ),
        other => IpcError::InvalidProfile {
            message: ShortText::sanitized(&other.to_string()),
        },
    })?;
    guarded.needs_user_pass |= profile.auth_user_pass.is_some();
    let endpoints = profile.endpoints();
    if !endpoints.is_empty() {
        guarded.remotes = endpoints
            .iter()
            .map(|e| format!("{} {} {}", e.host, e.port, e.proto.as_str()))
            .collect();
    }
    Ok((guarded, profile))
}

/// What the helper takes from a profile that passed the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    /// `remote` lines as written ("vpn.example.com 1194 udp"), for failover order and
    /// for the `connecting` stage before the tunnel says more.
    pub remotes: Vec<String>,
    pub needs_user_pass: bool,
}

/// Directives that run programs or load code.
const RUNS_CODE: &[&str] = &[
    "up",
    "down",
    "route-up",
    "route-pre-down",
    "ipchange",
    "tls-verify",
    "auth-user-pass-verify",
    "client-connect",
    "client-disconnect",
    "learn-address",
    "plugin",
    "iproute",
];

/// Directives whose argument is a path the helper would open, write or enter.
const TOUCHES_FILES: &[&str] = &[
    "config",
    "cd",
    "chroot",
    "log",
    "log-append",
    "status",
    "writepid",
    "tmp-dir",
    "management",
    "management-client-auth",
    "management-client-user",
    "management-client-group",
    "management-hold",
    "management-query-passwords",
    "management-external-key",
    "management-external-cert",
    "dev-node",
    "replay-persist",
    "tls-export-cert",
    "crl-verify",
    "askpass",
    "http-proxy-user-pass",
    "daemon",
    "user",
    "group",
    "syslog",
    "ifconfig-pool-persist",
    "client-config-dir",
    "capath",
];

/// Key material that is fine inline (`<ca>...</ca>` or `ca [inline]`) but refused as a path.
const INLINE_ONLY: &[&str] = &[
    "ca",
    "cert",
    "key",
    "extra-certs",
    "pkcs12",
    "tls-auth",
    "tls-crypt",
    "tls-crypt-v2",
    "dh",
    "secret",
    "auth-user-pass",
    "http-proxy",
];

fn refused(line: usize, directive: &str, reason: &str) -> IpcError {
    IpcError::ProfileRefused {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        directive: ShortText::sanitized(directive),
        reason: ShortText::sanitized(reason),
    }
}

/// Checks `text` line by line (1-based line numbers in errors).
pub fn check(text: &str) -> Result<Guarded, IpcError> {
    let mut remotes = Vec::new();
    let mut needs_user_pass = false;
    let mut inline_block: Option<String> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if let Some(tag) = &inline_block {
            if line.eq_ignore_ascii_case(&format!("</{tag}>")) {
                inline_block = None;
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('<') {
            let tag = rest.trim_end_matches('>').trim().to_ascii_lowercase();
            if tag.starts_with('/') || !rest.ends_with('>') {
                return Err(refused(line_no, line, "is not a valid inline block tag"));
            }
            if !INLINE_ONLY.contains(&tag.as_str()) {
                return Err(refused(
                    line_no,
                    &format!("<{tag}>"),
                    "is not an inline block the helper accepts",
                ));
            }
            inline_block = Some(tag);
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        // Config files may spell options with the command line's leading dashes.
        let name = first.trim_start_matches("--").to_ascii_lowercase();
        let args: Vec<&str> = words.collect();
        if RUNS_CODE.contains(&name.as_str()) {
            return Err(refused(
                line_no,
                &name,
                "would make the helper run a program or load a plugin",
            ));
        }
        if TOUCHES_FILES.contains(&name.as_str()) {
            return Err(refused(
                line_no,
                &name,
                "would make the helper use a file or identity named in the profile",
            ));
        }
        if name == "script-security" && args.first().is_some_and(|a| *a != "0" && *a != "1") {
            return Err(refused(
                line_no,
                &name,
                "asks for running scripts, which the helper never does",
            ));
        }
        if INLINE_ONLY.contains(&name.as_str()) {
            let inline_arg = args
                .first()
                .is_none_or(|a| a.eq_ignore_ascii_case("[inline]"));
            // `tls-auth [inline] 1` / `auth-user-pass` without a file are fine.
            let ok = match name.as_str() {
                "auth-user-pass" => args.is_empty(),
                "http-proxy" => args.len() <= 3 && args.get(2).is_none_or(|a| is_auth_method(a)),
                _ => inline_arg,
            };
            if !ok {
                return Err(refused(
                    line_no,
                    &name,
                    "names a file; the helper only takes key material inline",
                ));
            }
            if name == "auth-user-pass" {
                needs_user_pass = true;
            }
        }
        if name == "remote" {
            remotes.push(args.join(" "));
        }
    }
    if let Some(tag) = inline_block {
        return Err(IpcError::InvalidProfile {
            message: ShortText::sanitized(&format!("<{tag}> is never closed")),
        });
    }
    Ok(Guarded {
        remotes,
        needs_user_pass,
    })
}

fn is_auth_method(a: &str) -> bool {
    matches!(
        a.to_ascii_lowercase().as_str(),
        "none" | "basic" | "ntlm" | "auto" | "auto-nct"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn refused_at(text: &str) -> (u32, String) {
        match check(text) {
            Err(IpcError::ProfileRefused {
                line, directive, ..
            }) => (line, directive.to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_a_plain_profile() {
        let g = check(
            "client\ndev tun\nremote a.example 1194 udp\nremote b.example 443 tcp\n\
             auth-user-pass\n<ca>\n-----BEGIN CERTIFICATE-----\nup /bin/sh\n</ca>\n\
             tls-auth [inline] 1\nscript-security 1\n",
        )
        .unwrap();
        assert_eq!(g.remotes, vec!["a.example 1194 udp", "b.example 443 tcp"]);
        assert!(g.needs_user_pass);
    }

    #[test]
    fn refuses_programs_and_plugins_with_line() {
        assert_eq!(refused_at("client\n\nup /bin/sh\n"), (3, "up".into()));
        assert_eq!(
            refused_at("client\n  PLUGIN /lib/x.so\n"),
            (2, "plugin".into())
        );
        assert_eq!(refused_at("--route-up /x\n"), (1, "route-up".into()));
        assert_eq!(
            refused_at("client\nscript-security 2\n"),
            (2, "script-security".into())
        );
    }

    #[test]
    fn refuses_file_references() {
        assert_eq!(refused_at("ca /etc/shadow\n"), (1, "ca".into()));
        assert_eq!(
            refused_at("client\nauth-user-pass /root/creds\n"),
            (2, "auth-user-pass".into())
        );
        assert_eq!(refused_at("config /etc/x.conf\n"), (1, "config".into()));
        assert_eq!(refused_at("log /etc/passwd\n"), (1, "log".into()));
        assert_eq!(
            refused_at("client\n<script>\nx\n</script>\n"),
            (2, "<script>".into())
        );
    }

    /// The smallest profile both walls accept (used by the service tests too).
    pub const USABLE: &str = "client\ndev tun\nproto udp\nremote 127.0.0.1 1\nnobind\n\
        peer-fingerprint 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n";

    #[test]
    fn both_walls_accept_a_usable_profile() {
        let (g, p) = check_all(USABLE).unwrap();
        assert_eq!(g.remotes, vec!["127.0.0.1 1 udp"]);
        assert!(p.client);
    }

    #[test]
    fn second_wall_refuses_what_the_first_lets_through() {
        // No CA: not usable, and ovpn-profile says why.
        match check_all("client\nremote 127.0.0.1 1\n") {
            Err(IpcError::InvalidProfile { message }) => {
                assert!(message.as_str().contains("CA"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unclosed_block_is_invalid() {
        assert!(matches!(
            check("<key>\nabc\n"),
            Err(IpcError::InvalidProfile { .. })
        ));
    }
}
