//! The tun device and packet sizes.

use crate::build::*;
use crate::profile::*;
use crate::reader::RawDirective;

use super::*;

impl Builder {
    pub(super) fn on_dev(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            let v = a[0].as_str();
            self.dev_line = d.line;
            if v.starts_with("tap") {
                self.unsupported(
                    d,
                    "dev tap (layer-2 bridging) is not supported; OxiVPN only creates tun devices",
                    true,
                );
            } else if v == "null" {
                self.unsupported(d, "dev null is a test mode without a tunnel", true);
            } else {
                self.p.dev = if v == "tun" {
                    None
                } else {
                    Some(v.to_string())
                };
                self.honour(d, "tun device (OxiVPN picks the device name)");
            }
        }
    }

    pub(super) fn on_dev_type(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 1) {
            if a[0] == "tun" {
                self.dev_type_tun = true;
                self.honour(d, "tun device");
            } else {
                self.unsupported(
                    d,
                    "only tun devices are supported (dev-type tap is layer-2 bridging)",
                    true,
                );
            }
        }
    }

    pub(super) fn on_tun_mtu(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        if self.arity(d, 1, 2) {
            if let Some(n) = self.num(d, 0) {
                o.tun_mtu = Some(n);
                self.honour(d, format!("tunnel MTU {n}"));
            }
        }
    }

    pub(super) fn on_mssfix(&mut self, o: &mut ConnOptions, d: &RawDirective) {
        if self.arity(d, 0, 2) {
            if let Some(m) = self.mssfix(d) {
                let what = match (m.max, m.unit) {
                    (None, _) => "clamps the TCP segment size (MSS) of tunnelled connections to OpenVPN 2.6's default: packets fit 1492 bytes with IP and UDP headers (or the tun-mtu when one is set)".to_string(),
                    (Some(0), _) => "turns MSS clamping off: tunnelled TCP connections keep the segment size they ask for (OpenVPN 2.6 clamps by default)".to_string(),
                    (Some(n), MssfixUnit::Mtu) => format!("clamps the TCP segment size (MSS) of tunnelled connections so their packets fit {n} bytes, IP and UDP headers included"),
                    (Some(n), MssfixUnit::Packet) => format!("clamps the TCP segment size (MSS) of tunnelled connections so their encrypted packets fit {n} bytes (outer IP and UDP headers not counted)"),
                    (Some(n), MssfixUnit::Fixed) => format!("clamps the TCP segment size (MSS) of tunnelled connections to {}", n.saturating_sub(40)),
                };
                o.mssfix = Some(m);
                self.honour(d, what);
            }
        }
    }

    /// `mssfix [max [mtu|fixed]]` (arity already checked).
    pub(super) fn mssfix(&mut self, d: &RawDirective) -> Option<Mssfix> {
        if d.args.is_empty() {
            return Some(Mssfix {
                max: None,
                unit: MssfixUnit::Mtu,
            });
        }
        let max = self.num(d, 0)?;
        if max > 65535 {
            self.error(d, format!("size {max} is larger than 65535"));
            return None;
        }
        let unit = match d.args.get(1).map(String::as_str) {
            None => MssfixUnit::Packet,
            Some("mtu") => MssfixUnit::Mtu,
            Some("fixed") => MssfixUnit::Fixed,
            Some(other) => {
                self.error(
                    d,
                    format!("unknown parameter {other:?} (expected \"mtu\" or \"fixed\")"),
                );
                return None;
            }
        };
        Some(Mssfix {
            max: Some(max),
            unit,
        })
    }
}

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(
        &["dev"],
        HONOURED,
        "tun device (OxiVPN picks the device name); tap and null are not supported",
        Builder::on_dev,
    )
    .also(&[UNUSABLE]),
    Directive::top(
        &["dev-type"],
        HONOURED,
        "tun device; tap (layer-2 bridging) is not supported",
        Builder::on_dev_type,
    )
    .also(&[UNUSABLE]),
    Directive::conn(&["tun-mtu"], HONOURED, "tunnel MTU", Builder::on_tun_mtu),
    Directive::conn(
        &["mssfix"],
        HONOURED,
        "clamps the TCP segment size (MSS) of tunnelled connections",
        Builder::on_mssfix,
    ),
];
