//! The directive registry: one entry per OpenVPN option (with its aliases) saying
//! how OxiVPN handles it. Parsing ([`crate::parse`]), the import report, the
//! untrusted-input check and the root helper's line guard all read this one table.
//!
//! An entry holds:
//! - its name(s);
//! - its handler (a typed field of [`crate::Profile`], in a small module per
//!   option family) or none, when the class and reason say everything;
//! - whether OpenVPN allows it inside `<connection>` (OPT_P_CONNECTION);
//! - its class (honoured / ignored / unsupported / refused) as the import report
//!   gives it for a well-formed line, the other classes some arguments lead to,
//!   and the reason shown to the user;
//! - what the helper's line guard does with it ([`Guard`]), which is stricter than
//!   the class for a few options that name files or identities.
//!
//! "Honoured" means OxiVPN carries the directive out; anything it keeps but does not
//! apply is "unsupported" with the reason.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::build::Builder;
use crate::profile::ConnOptions;
use crate::reader::RawDirective;

mod auth;
mod compression;
mod crypto;
mod keys;
mod misc;
mod proxy;
mod refused;
mod remotes;
mod routes;
mod timers;
mod tls;
mod tun;

/// What the import report says of a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Carried out by OxiVPN.
    Honoured,
    /// No effect for OxiVPN (the reason says why that is fine).
    Ignored,
    /// OxiVPN cannot do it. `fatal`: the profile cannot work without it.
    Unsupported { fatal: bool },
    /// Would run a program or touch a path as root: dropped, never carried out.
    Refused,
}

impl Class {
    /// The report severity findings of this class carry.
    pub fn severity(self) -> crate::Severity {
        match self {
            Class::Honoured => crate::Severity::Honoured,
            Class::Ignored => crate::Severity::Ignored,
            Class::Unsupported { .. } => crate::Severity::Unsupported,
            Class::Refused => crate::Severity::Refused,
        }
    }
}

/// What the root helper's line guard does with a directive (its own, simpler wall
/// next to the full parse; names are compared in lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// Nothing special.
    Accept,
    /// Refused: would run a program or load a plugin.
    RunsCode,
    /// Refused: would use a file or identity named in the profile.
    UsesFile,
    /// Key material: fine inline (also as an inline block), refused as a path.
    Inline(InlineRule),
    /// `script-security`: refused above level 1.
    ScriptSecurity,
    /// `socks-proxy host [port] [stdin]`: an auth file is a path like any other.
    SocksProxy,
}

/// When an [`Guard::Inline`] directive's arguments are fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InlineRule {
    /// No argument or `[inline]` first (`tls-auth [inline] 1`).
    FileArg,
    /// No argument at all (`auth-user-pass` asks).
    NoArgs,
    /// `http-proxy host port [stdin|method] [method]`.
    HttpProxy,
}

/// A refusal that depends on the arguments (`script-security 2`, `crl-verify DIR dir`).
#[derive(Debug, Clone, Copy)]
pub struct RefuseIf {
    when: fn(&[String]) -> bool,
    reason: &'static str,
    fatal: bool,
}

/// Why a line is refused; `fatal`: the profile is not usable without it either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub fatal: bool,
}

pub(crate) type TopFn = fn(&mut Builder, &RawDirective);
pub(crate) type ConnFn = fn(&mut Builder, &mut ConnOptions, &RawDirective);

/// How a directive is applied.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// Sets fields of the profile.
    Top(TopFn),
    /// Sets connection options (top level: the defaults; in `<connection>`: the block's).
    Conn(ConnFn),
    /// No typed field: reported by class and reason.
    Class,
}

/// One registry entry.
#[derive(Clone, Copy)]
pub struct Directive {
    /// The name and its aliases, as OpenVPN spells them (case-sensitive).
    pub names: &'static [&'static str],
    /// What the report says of a well-formed line.
    pub class: Class,
    /// Other classes some arguments (or the platform) lead to, e.g. `dev tap`.
    pub also: &'static [Class],
    /// The reason (or, when honoured, what OxiVPN does).
    pub reason: &'static str,
    /// OpenVPN allows it inside `<connection>`.
    pub in_connection: bool,
    /// Only a server uses it (a hint that the file is a server configuration).
    pub server_only: bool,
    /// What the helper's line guard does with it.
    pub guard: Guard,
    refuse_if: Option<RefuseIf>,
    pub(crate) handler: Handler,
}

impl std::fmt::Debug for Directive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directive")
            .field("names", &self.names)
            .field("class", &self.class)
            .field("in_connection", &self.in_connection)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl Directive {
    const fn new(
        names: &'static [&'static str],
        class: Class,
        reason: &'static str,
        handler: Handler,
    ) -> Self {
        Directive {
            names,
            class,
            also: &[],
            reason,
            in_connection: false,
            server_only: false,
            guard: Guard::Accept,
            refuse_if: None,
            handler,
        }
    }

    /// Carried out by a handler that sets profile fields.
    pub(crate) const fn top(
        names: &'static [&'static str],
        class: Class,
        reason: &'static str,
        f: TopFn,
    ) -> Self {
        Self::new(names, class, reason, Handler::Top(f))
    }

    /// A connection option (allowed inside `<connection>`).
    pub(crate) const fn conn(
        names: &'static [&'static str],
        class: Class,
        reason: &'static str,
        f: ConnFn,
    ) -> Self {
        Self::new(names, class, reason, Handler::Conn(f)).in_connection()
    }

    /// No typed field: class and reason say it all.
    pub(crate) const fn class(
        names: &'static [&'static str],
        class: Class,
        reason: &'static str,
    ) -> Self {
        Self::new(names, class, reason, Handler::Class)
    }

    pub(crate) const fn in_connection(mut self) -> Self {
        self.in_connection = true;
        self
    }

    pub(crate) const fn server(mut self) -> Self {
        self.server_only = true;
        self
    }

    pub(crate) const fn guard(mut self, g: Guard) -> Self {
        self.guard = g;
        self
    }

    pub(crate) const fn also(mut self, c: &'static [Class]) -> Self {
        self.also = c;
        self
    }

    pub(crate) const fn refuse_if(
        mut self,
        when: fn(&[String]) -> bool,
        reason: &'static str,
        fatal: bool,
    ) -> Self {
        self.refuse_if = Some(RefuseIf {
            when,
            reason,
            fatal,
        });
        self
    }

    /// Every class the report can give this directive (errors aside).
    pub fn classes(&self) -> impl Iterator<Item = Class> + '_ {
        std::iter::once(self.class)
            .chain(self.also.iter().copied())
            .chain(self.refuse_if.map(|_| Class::Refused))
    }

    /// Has a handler that sets typed profile fields.
    pub fn is_typed(&self) -> bool {
        !matches!(self.handler, Handler::Class)
    }
}

/// Shorthands for the family modules' tables.
pub(crate) const HONOURED: Class = Class::Honoured;
pub(crate) const IGNORED: Class = Class::Ignored;
pub(crate) const UNSUPPORTED: Class = Class::Unsupported { fatal: false };
pub(crate) const UNUSABLE: Class = Class::Unsupported { fatal: true };
pub(crate) const REFUSED: Class = Class::Refused;

/// The tables of the option families.
const FAMILIES: &[&[Directive]] = &[
    remotes::ENTRIES,
    timers::ENTRIES,
    keys::ENTRIES,
    tls::ENTRIES,
    crypto::ENTRIES,
    compression::ENTRIES,
    routes::ENTRIES,
    auth::ENTRIES,
    proxy::ENTRIES,
    tun::ENTRIES,
    misc::ENTRIES,
    refused::ENTRIES,
];

/// Every entry, family by family.
pub fn all() -> impl Iterator<Item = &'static Directive> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

fn index() -> &'static HashMap<&'static str, &'static Directive> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Directive>> = OnceLock::new();
    INDEX.get_or_init(|| {
        all()
            .flat_map(|d| d.names.iter().map(move |n| (*n, d)))
            .collect()
    })
}

/// The entry for `name` as written (OpenVPN's names are case-sensitive).
pub fn lookup(name: &str) -> Option<&'static Directive> {
    index().get(name).copied()
}

/// The entry for `name` in any spelling (refusals and the helper's guard are
/// case-insensitive, to be safe).
pub fn lookup_any_case(name: &str) -> Option<&'static Directive> {
    lookup(name).or_else(|| lookup(&name.to_ascii_lowercase()))
}

/// Why the line is refused, if it is: a refused directive in any spelling, any
/// `management*` option, or a refusal that depends on the arguments.
pub fn refusal(name: &str, args: &[String]) -> Option<Refusal> {
    let entry = lookup_any_case(name);
    if let Some(e) = entry {
        if e.class == Class::Refused {
            return Some(Refusal {
                reason: e.reason,
                fatal: false,
            });
        }
        if let Some(r) = e.refuse_if.filter(|r| (r.when)(args)) {
            return Some(Refusal {
                reason: r.reason,
                fatal: r.fatal,
            });
        }
    }
    if name.to_ascii_lowercase().starts_with("management") {
        return Some(Refusal {
            reason: refused::MGMT,
            fatal: false,
        });
    }
    None
}

/// OpenVPN knows the option (or it is refused in this spelling).
pub fn known(name: &str) -> bool {
    lookup(name).is_some() || refusal(name, &[]).is_some()
}

#[cfg(test)]
mod tests;
