//! Compression settings: OxiVPN never compresses, and tells the server so.

use crate::build::*;
use crate::reader::RawDirective;

use super::*;

impl Builder {
    pub(super) fn on_comp_lzo(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 0, 1) {
            self.p.compression.comp_lzo = Some(a.first().cloned());
            self.honour(
                d,
                "legacy compression setting (OxiVPN never compresses; it tells the server so)",
            );
        }
    }

    pub(super) fn on_compress(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 0, 1) {
            self.p.compression.compress = Some(a.first().cloned());
            self.honour(
                d,
                "compression setting (OxiVPN never compresses; it tells the server so)",
            );
        }
    }

    pub(super) fn on_allow_compression(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            self.p.compression.allow_compression = Some(a[0].clone());
            self.honour(d, "compression policy (OxiVPN never compresses)");
        }
    }
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(
        &["comp-lzo"],
        HONOURED,
        "legacy compression setting (OxiVPN never compresses; it tells the server so)",
        Builder::on_comp_lzo,
    ),
    Directive::top(
        &["compress"],
        HONOURED,
        "compression setting (OxiVPN never compresses; it tells the server so)",
        Builder::on_compress,
    ),
    Directive::top(
        &["allow-compression"],
        HONOURED,
        "compression policy (OxiVPN never compresses)",
        Builder::on_allow_compression,
    ),
];
