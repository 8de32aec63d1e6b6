//! The rules of [`super::nft_rules`] as ONE nfnetlink transaction (what `nft -f` sends),
//! and the kernel's answers. PURE bytes in and out, so the encoding is unit-tested on every
//! OS; `linux.rs` only moves the bytes through a `NETLINK_NETFILTER` socket.
//!
//! Each [`Match`] becomes the register program nft itself generates for it, including the
//! dependency nft adds (`ip daddr` first checks `meta nfproto ipv4`, `udp dport` first
//! checks `meta l4proto udp`), so `nft list table inet oxivpn` shows the rules in nft's
//! own words. Layouts: `linux/netfilter/nf_tables.h` and `nfnetlink.h`.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::nft_rules::{Chain, IpFamily, Match, Rule, Verdict};

// netlink / nfnetlink framing.
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_DONE: u16 = 0x3;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_HDRLEN: usize = 16;

// nf_tables message types.
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

// Attributes.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// libnftnl's rule userdata: type-length-value with one-byte type and length.
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
const COMMENT_MAX: usize = 127;

pub const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const IFNAMSIZ: usize = 16;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_MARK: u32 = 3;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CT_STATE: u32 = 0;
/// `NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)`.
const CT_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
const IPPROTO_ICMPV6: u8 = 58;

/// A rule the kernel cannot express (refused before anything is sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("interface name {0:?} is longer than {max} bytes", max = IFNAMSIZ - 1)]
    IfaceName(String),
    #[error("table or chain name {0:?} is empty, too long or holds a NUL byte")]
    Name(String),
}

/// One register-machine instruction of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `meta load <key> => reg 1`
    Meta(u32),
    /// `payload load <len>b @ <base> + <offset> => reg 1`
    Payload {
        base: u32,
        offset: u32,
        len: u32,
    },
    /// `cmp <op> reg 1 <data>`
    Cmp {
        op: u32,
        data: Vec<u8>,
    },
    /// `bitwise reg 1 = (reg 1 & mask) ^ 0`
    Mask(Vec<u8>),
    /// `ct load state => reg 1`
    CtState,
    Counter,
    Verdict(Verdict),
}

fn eq(data: Vec<u8>) -> Expr {
    Expr::Cmp {
        op: NFT_CMP_EQ,
        data,
    }
}

/// The register program of one rule: dependencies first, each emitted once.
pub fn lower(rule: &Rule) -> Result<Vec<Expr>, EncodeError> {
    let mut out = Vec::new();
    let mut nfproto: Option<IpFamily> = None;
    let mut l4proto: Option<u8> = None;
    let mut need_family = |out: &mut Vec<Expr>, f: IpFamily| {
        if nfproto != Some(f) {
            out.push(Expr::Meta(NFT_META_NFPROTO));
            out.push(eq(vec![match f {
                IpFamily::V4 => NFPROTO_IPV4,
                IpFamily::V6 => NFPROTO_IPV6,
            }]));
            nfproto = Some(f);
        }
    };
    let mut need_l4 = |out: &mut Vec<Expr>, proto: u8| {
        if l4proto != Some(proto) {
            out.push(Expr::Meta(NFT_META_L4PROTO));
            out.push(eq(vec![proto]));
            l4proto = Some(proto);
        }
    };
    let mut iter = rule.matches.iter().peekable();
    while let Some(m) = iter.next() {
        // `udp sport a udp dport b`: the two ports are adjacent in the header, and nft
        // loads and compares them as one 4-byte word; so do we (same bytecode).
        if let (Match::Sport(l4, sport), Some(Match::Dport(l4d, dport))) = (m, iter.peek()) {
            if l4 == l4d {
                need_l4(&mut out, l4.number());
                out.push(Expr::Payload {
                    base: NFT_PAYLOAD_TRANSPORT_HEADER,
                    offset: 0,
                    len: 4,
                });
                let mut ports = sport.to_be_bytes().to_vec();
                ports.extend_from_slice(&dport.to_be_bytes());
                out.push(eq(ports));
                iter.next();
                continue;
            }
        }
        match m {
            Match::OifName(n) | Match::IifName(n) => {
                let key = if matches!(m, Match::OifName(_)) {
                    NFT_META_OIFNAME
                } else {
                    NFT_META_IIFNAME
                };
                if n.len() >= IFNAMSIZ || n.as_bytes().contains(&0) {
                    return Err(EncodeError::IfaceName(n.clone()));
                }
                let mut name = n.as_bytes().to_vec();
                name.resize(IFNAMSIZ, 0);
                out.push(Expr::Meta(key));
                out.push(eq(name));
            }
            Match::NfProto(f) => need_family(&mut out, *f),
            Match::Daddr(net) => {
                let (f, offset, addr, mask) = match net {
                    IpNet::V4(n) => (
                        IpFamily::V4,
                        16,
                        n.network().octets().to_vec(),
                        n.netmask().octets().to_vec(),
                    ),
                    IpNet::V6(n) => (
                        IpFamily::V6,
                        24,
                        n.network().octets().to_vec(),
                        n.netmask().octets().to_vec(),
                    ),
                };
                need_family(&mut out, f);
                // Like nft: a prefix ending on a byte boundary loads and compares only
                // the bytes it covers (192.168.1.0/24: 3 bytes); any other prefix loads the
                // whole address and masks it; /0 matches the whole family.
                let len = if net.prefix_len() % 8 == 0 {
                    usize::from(net.prefix_len() / 8)
                } else {
                    addr.len()
                };
                if len > 0 {
                    out.push(Expr::Payload {
                        base: NFT_PAYLOAD_NETWORK_HEADER,
                        offset,
                        len: len as u32,
                    });
                    if net.prefix_len() % 8 != 0 {
                        out.push(Expr::Mask(mask));
                    }
                    out.push(eq(addr[..len].to_vec()));
                }
            }
            Match::Dport(l4, port) | Match::Sport(l4, port) => {
                need_l4(&mut out, l4.number());
                out.push(Expr::Payload {
                    base: NFT_PAYLOAD_TRANSPORT_HEADER,
                    offset: if matches!(m, Match::Dport(..)) { 2 } else { 0 },
                    len: 2,
                });
                out.push(eq(port.to_be_bytes().to_vec()));
            }
            Match::HopLimit(h) => {
                need_family(&mut out, IpFamily::V6);
                out.push(Expr::Payload {
                    base: NFT_PAYLOAD_NETWORK_HEADER,
                    offset: 7,
                    len: 1,
                });
                out.push(eq(vec![*h]));
            }
            Match::Icmpv6Type(t) => {
                need_l4(&mut out, IPPROTO_ICMPV6);
                out.push(Expr::Payload {
                    base: NFT_PAYLOAD_TRANSPORT_HEADER,
                    offset: 0,
                    len: 1,
                });
                out.push(eq(vec![*t]));
            }
            Match::Mark(mark) => {
                // meta mark is a host-order u32 in the register (as nft writes it).
                out.push(Expr::Meta(NFT_META_MARK));
                out.push(eq(mark.to_ne_bytes().to_vec()));
            }
            Match::CtEstablishedOrRelated => {
                out.push(Expr::CtState);
                out.push(Expr::Mask(CT_ESTABLISHED_RELATED.to_ne_bytes().to_vec()));
                out.push(Expr::Cmp {
                    op: NFT_CMP_NEQ,
                    data: vec![0; 4],
                });
            }
        }
    }
    if rule.counter {
        out.push(Expr::Counter);
    }
    out.push(Expr::Verdict(rule.verdict));
    Ok(out)
}

/// A netlink attribute writer over one growing buffer (nests patched on close).
struct Attrs<'a>(&'a mut Vec<u8>);

impl Attrs<'_> {
    fn put(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.pad();
    }
    fn be32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_be_bytes());
    }
    fn str(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v);
    }
    fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Attrs<'_>)) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        f(&mut Attrs(self.0));
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
    fn pad(&mut self) {
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
    }
}

fn expr(a: &mut Attrs<'_>, e: &Expr) {
    let data = |name: &str, a: &mut Attrs<'_>, f: &dyn Fn(&mut Attrs<'_>)| {
        a.nest(NFTA_LIST_ELEM, |a| {
            a.str(NFTA_EXPR_NAME, name);
            a.nest(NFTA_EXPR_DATA, f);
        })
    };
    match e {
        Expr::Meta(key) => data("meta", a, &|a| {
            a.be32(1, NFT_REG_1); // NFTA_META_DREG
            a.be32(2, *key); // NFTA_META_KEY
        }),
        Expr::Payload { base, offset, len } => data("payload", a, &|a| {
            a.be32(1, NFT_REG_1); // NFTA_PAYLOAD_DREG
            a.be32(2, *base);
            a.be32(3, *offset);
            a.be32(4, *len);
        }),
        Expr::Cmp { op, data: d } => data("cmp", a, &|a| {
            a.be32(1, NFT_REG_1); // NFTA_CMP_SREG
            a.be32(2, *op);
            a.nest(3, |a| a.put(NFTA_DATA_VALUE, d));
        }),
        Expr::Mask(mask) => data("bitwise", a, &|a| {
            a.be32(1, NFT_REG_1); // NFTA_BITWISE_SREG
            a.be32(2, NFT_REG_1); // NFTA_BITWISE_DREG
            a.be32(3, mask.len() as u32);
            a.nest(4, |a| a.put(NFTA_DATA_VALUE, mask));
            a.nest(5, |a| a.put(NFTA_DATA_VALUE, &vec![0; mask.len()]));
        }),
        Expr::CtState => data("ct", a, &|a| {
            a.be32(1, NFT_REG_1); // NFTA_CT_DREG
            a.be32(2, NFT_CT_STATE);
        }),
        Expr::Counter => a.nest(NFTA_LIST_ELEM, |a| a.str(NFTA_EXPR_NAME, "counter")),
        Expr::Verdict(v) => data("immediate", a, &|a| {
            a.be32(1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
            a.nest(2, |a| {
                a.nest(NFTA_DATA_VERDICT, |a| {
                    a.be32(
                        NFTA_VERDICT_CODE,
                        match v {
                            Verdict::Accept => NF_ACCEPT,
                            Verdict::Drop => NF_DROP,
                        },
                    )
                })
            });
        }),
    }
}

fn check_name(s: &str) -> Result<(), EncodeError> {
    // NFT_NAME_MAXLEN is 256 with the NUL.
    if s.is_empty() || s.len() > 255 || s.as_bytes().contains(&0) {
        return Err(EncodeError::Name(s.to_owned()));
    }
    Ok(())
}

/// Messages of one transaction; each (but BEGIN/END) asks for an ACK, so a refusal names
/// the message it belongs to.
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// seq -> what the message does (for errors).
    pending: BTreeMap<u32, String>,
}

impl Batch {
    pub fn new(first_seq: u32) -> Self {
        let mut b = Self {
            buf: Vec::with_capacity(8 * 1024),
            seq: first_seq,
            pending: BTreeMap::new(),
        };
        b.header(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        b
    }

    /// Writes one message: nlmsghdr + nfgenmsg + attributes; returns its seq.
    fn header(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        attrs: impl FnOnce(&mut Attrs<'_>),
    ) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, patched below
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        attrs(&mut Attrs(&mut self.buf));
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        seq
    }

    fn msg(&mut self, kind: u16, flags: u16, what: String, attrs: impl FnOnce(&mut Attrs<'_>)) {
        let seq = self.header(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            NFPROTO_INET,
            0,
            attrs,
        );
        self.pending.insert(seq, what);
    }

    /// Creates the table when missing (no error when it exists).
    pub fn add_table(&mut self, table: &str) -> Result<(), EncodeError> {
        check_name(table)?;
        self.msg(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            format!("add table inet {table}"),
            |a| {
                a.str(NFTA_TABLE_NAME, table);
                a.be32(NFTA_TABLE_FLAGS, 0);
            },
        );
        Ok(())
    }

    pub fn delete_table(&mut self, table: &str) -> Result<(), EncodeError> {
        check_name(table)?;
        self.msg(
            NFT_MSG_DELTABLE,
            0,
            format!("delete table inet {table}"),
            |a| a.str(NFTA_TABLE_NAME, table),
        );
        Ok(())
    }

    /// A base chain of type filter at priority 0 with policy drop.
    pub fn add_chain(&mut self, table: &str, chain: Chain) -> Result<(), EncodeError> {
        check_name(table)?;
        let hook = match chain {
            Chain::Output => NF_INET_LOCAL_OUT,
            Chain::Forward => NF_INET_FORWARD,
        };
        self.msg(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            format!("add chain {} (policy drop)", chain.name()),
            |a| {
                a.str(NFTA_CHAIN_TABLE, table);
                a.str(NFTA_CHAIN_NAME, chain.name());
                a.nest(NFTA_CHAIN_HOOK, |a| {
                    a.be32(NFTA_HOOK_HOOKNUM, hook);
                    a.be32(NFTA_HOOK_PRIORITY, 0);
                });
                a.be32(NFTA_CHAIN_POLICY, NF_DROP);
                a.str(NFTA_CHAIN_TYPE, "filter");
            },
        );
        Ok(())
    }

    /// Appends `rule` to its chain.
    pub fn add_rule(&mut self, table: &str, rule: &Rule) -> Result<(), EncodeError> {
        check_name(table)?;
        let exprs = lower(rule)?;
        let mut comment: String = String::new();
        for c in rule.comment.chars() {
            if comment.len() + c.len_utf8() > COMMENT_MAX {
                break;
            }
            comment.push(c);
        }
        self.msg(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            format!("add rule {} ({})", rule.chain.name(), rule.comment),
            |a| {
                a.str(NFTA_RULE_TABLE, table);
                a.str(NFTA_RULE_CHAIN, rule.chain.name());
                a.nest(NFTA_RULE_EXPRESSIONS, |a| {
                    for e in &exprs {
                        expr(a, e);
                    }
                });
                let mut udata = vec![NFTNL_UDATA_RULE_COMMENT, (comment.len() + 1) as u8];
                udata.extend_from_slice(comment.as_bytes());
                udata.push(0);
                a.put(NFTA_RULE_USERDATA, &udata);
            },
        );
        Ok(())
    }

    /// The bytes to send, and seq -> description of every message that must be ACKed.
    /// The first sequence number after this batch, its closing message included.
    pub fn next_seq(&self) -> u32 {
        self.seq.wrapping_add(1)
    }

    pub fn finish(mut self) -> (Vec<u8>, BTreeMap<u32, String>) {
        self.header(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        (self.buf, self.pending)
    }
}

/// Replaces the whole table in one transaction: add (so the delete cannot fail), delete,
/// build again. A re-apply (new TUN name, new server) never opens a gap.
pub fn replace_table(table: &str, rules: &[Rule], seq: u32) -> Result<Batch, EncodeError> {
    let mut b = Batch::new(seq);
    b.add_table(table)?;
    b.delete_table(table)?;
    b.add_table(table)?;
    for c in Chain::ALL {
        b.add_chain(table, c)?;
    }
    for r in rules {
        b.add_rule(table, r)?;
    }
    Ok(b)
}

/// Deletes our table; adding it first makes the batch succeed when it is already gone.
pub fn remove_table(table: &str, seq: u32) -> Result<Batch, EncodeError> {
    let mut b = Batch::new(seq);
    b.add_table(table)?;
    b.delete_table(table)?;
    Ok(b)
}

/// `GETTABLE inet <table>` (outside a batch): answered by the table or ENOENT.
pub fn get_table(table: &str, seq: u32) -> Result<Vec<u8>, EncodeError> {
    check_name(table)?;
    let mut b = Batch {
        buf: Vec::new(),
        seq,
        pending: BTreeMap::new(),
    };
    b.msg(NFT_MSG_GETTABLE, 0, String::new(), |a| {
        a.str(NFTA_TABLE_NAME, table)
    });
    Ok(b.buf)
}

/// One message of the kernel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// NLMSG_ERROR: 0 is an ACK, else minus an errno.
    Ack {
        seq: u32,
        code: i32,
    },
    Done {
        seq: u32,
    },
    /// Any other message (e.g. the NEWTABLE answering a GETTABLE).
    Data {
        seq: u32,
        kind: u16,
    },
}

/// Splits a datagram into its messages; a truncated or malformed one is an error.
pub fn parse_replies(buf: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < buf.len() {
        let rest = &buf[off..];
        let field = |at: usize, n: usize| {
            rest.get(at..at + n)
                .ok_or_else(|| format!("netlink answer cut short at byte {}", off + at))
        };
        let len = u32::from_ne_bytes(field(0, 4)?.try_into().map_err(|_| "len")?) as usize;
        let kind = u16::from_ne_bytes(field(4, 2)?.try_into().map_err(|_| "type")?);
        let seq = u32::from_ne_bytes(field(8, 4)?.try_into().map_err(|_| "seq")?);
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(format!("netlink message length {len} out of bounds"));
        }
        out.push(match kind {
            NLMSG_ERROR => {
                let code = i32::from_ne_bytes(field(16, 4)?.try_into().map_err(|_| "code")?);
                Reply::Ack { seq, code }
            }
            NLMSG_DONE => Reply::Done { seq },
            _ => Reply::Data { seq, kind },
        });
        off += (len + 3) & !3;
    }
    Ok(out)
}

/// The NEWTABLE message type (what a GETTABLE is answered with).
pub const NEWTABLE_REPLY: u16 = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE;

#[cfg(test)]
#[path = "nft_batch_tests.rs"]
mod tests;
