//! Logging in: user name and password, challenges, passphrases, peer info.

use crate::build::*;
use crate::material;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::{FileKind, Severity};

use super::*;

impl Builder {
    pub(super) fn on_askpass(&mut self, d: &RawDirective) {
        if !self.arity(d, 0, 1) {
            return;
        }
        match d.raw_args.first() {
            None => self.honour(
                d,
                "OxiVPN asks for the private key's passphrase (and can keep it in the system keyring)",
            ),
            // Read at import; the passphrase goes to the keyring, never into the
            // stored profile (which therefore has no `askpass` line).
            Some(raw) => {
                let raw = raw.clone();
                self.file_need(d, FileKind::Askpass, &raw);
            }
        }
    }

    pub(super) fn on_auth_user_pass(&mut self, d: &RawDirective) {
        let a = &d.args;
        if d.block.is_none() && !self.arity(d, 0, 1) {
            return;
        }
        if d.block.is_none() && a.is_empty() {
            self.p.auth_user_pass = Some(AuthUserPass::Prompt);
            self.honour(d, "asks for a user name and password");
            return;
        }
        if let Some(c) = self.credential(d, FileKind::AuthUserPass, 0) {
            self.p.auth_user_pass = Some(AuthUserPass::Credentials(c));
        }
    }

    pub(super) fn on_static_challenge(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 2, 3) {
            self.p.static_challenge = Some(StaticChallenge {
                text: a[0].clone(),
                echo: a[1] == "1",
                concat: a.get(2).map(String::as_str) == Some("concat"),
            });
            self.honour(
                d,
                format!("asks the challenge {:?} with the password", a[0]),
            );
        }
    }

    pub(super) fn on_auth_nocache(&mut self, d: &RawDirective) {
        self.p.auth_nocache = true;
        self.not_applied(d, "is not applied: the password is kept for the session (reconnects and renegotiation) and wiped when it ends");
    }

    pub(super) fn on_auth_retry(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            let r = match a[0].as_str() {
                "none" => AuthRetry::None,
                "nointeract" => AuthRetry::NoInteract,
                "interact" => AuthRetry::Interact,
                other => {
                    self.error(d, format!("has the unknown mode {other:?}"));
                    return;
                }
            };
            self.p.auth_retry = Some(r);
            self.not_applied(
                d,
                format!(
                    "is not applied ({}): OxiVPN's own handling of a wrong password is used",
                    a[0]
                ),
            );
        }
    }

    pub(super) fn on_push_peer_info(&mut self, d: &RawDirective) {
        self.p.push_peer_info = true;
        self.not_applied(d, "is not applied: OxiVPN sends its usual peer info (version, platform, ciphers), not the extra client details");
    }

    pub(super) fn on_setenv(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 2) {
            let v = a.get(1).cloned().unwrap_or_default();
            // Last value wins, kept at the first position (an index keeps
            // this linear for profiles with thousands of setenv lines).
            match self.setenv_index.get(&a[0]) {
                Some(&i) => self.p.setenv[i].1 = v,
                None => {
                    self.setenv_index.insert(a[0].clone(), self.p.setenv.len());
                    self.p.setenv.push((a[0].clone(), v));
                }
            }
            self.not_applied(
                d,
                format!(
                    "is not applied: {} is not sent to the server, and OxiVPN runs no scripts",
                    a[0]
                ),
            );
        }
    }

    pub(super) fn on_setenv_safe(&mut self, d: &RawDirective) {
        self.push(
            d.line,
            &d.name,
            Severity::Ignored,
            "only sets a variable for scripts, which OxiVPN does not run",
        );
    }

    pub(crate) fn credential(
        &mut self,
        d: &RawDirective,
        kind: FileKind,
        arg_idx: usize,
    ) -> Option<Credential> {
        if let Some(b) = &d.block {
            return match material::parse_credentials(&b.text) {
                Ok((username, password)) => {
                    self.honour(d, "inline user name (and password): OxiVPN moves them to the system keyring on import");
                    Some(Credential::Inline { username, password })
                }
                Err(e) => {
                    self.error(d, e);
                    None
                }
            };
        }
        let raw = d.raw_args.get(arg_idx)?.clone();
        Some(Credential::File(self.file_need(d, kind, &raw)))
    }
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(&["askpass"], HONOURED, "OxiVPN asks for the private key's passphrase (a file is read at import, for the keyring)", Builder::on_askpass).guard(Guard::UsesFile),
    Directive::top(&["auth-user-pass"], HONOURED, "asks for a user name and password (inline ones move to the keyring)", Builder::on_auth_user_pass).guard(Guard::Inline(InlineRule::NoArgs)),
    Directive::top(&["static-challenge"], HONOURED, "asks the challenge with the password", Builder::on_static_challenge),
    Directive::top(&["auth-nocache"], UNSUPPORTED, "is not applied: the password is kept for the session (reconnects and renegotiation) and wiped when it ends", Builder::on_auth_nocache),
    Directive::top(&["auth-retry"], UNSUPPORTED, "is not applied: OxiVPN decides what follows a wrong password", Builder::on_auth_retry),
    Directive::top(&["push-peer-info"], UNSUPPORTED, "is not applied: only OxiVPN's usual peer info is sent", Builder::on_push_peer_info),
    Directive::top(&["setenv"], UNSUPPORTED, "is not applied: the variable is not sent to the server (`setenv opt X` applies X)", Builder::on_setenv),
    Directive::top(&["setenv-safe"], IGNORED, "only sets a variable for scripts, which OxiVPN does not run", Builder::on_setenv_safe),
];
