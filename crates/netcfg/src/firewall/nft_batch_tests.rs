//! Tests of `nft_batch.rs` (kept apart so that module stays small).
use super::super::nft_rules::L4;
use super::*;

#[test]
fn next_seq_follows_every_message_of_the_batch() {
    let b = remove_table("oxivpn", 7).unwrap();
    let next = b.next_seq();
    let (buf, _) = b.finish();
    let seqs: Vec<u32> = messages(&buf).iter().map(|m| m.2).collect();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
    assert_eq!(
        next, 11,
        "the kept socket's next batch must not reuse a seq"
    );
}

/// (type, flags, seq, family, attribute bytes) of each message.
fn messages(buf: &[u8]) -> Vec<(u16, u16, u32, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        let flags = u16::from_ne_bytes(buf[off + 6..off + 8].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
        assert_eq!(len % 4, 0, "messages are 4-byte aligned");
        out.push((
            kind,
            flags,
            seq,
            buf[off + 16],
            buf[off + 20..off + len].to_vec(),
        ));
        off += len;
    }
    assert_eq!(off, buf.len());
    out
}

/// Attributes at one level: (type without flags, nested?, value).
fn attrs(mut b: &[u8]) -> Vec<(u16, bool, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = u16::from_ne_bytes(b[0..2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(b[2..4].try_into().unwrap());
        out.push((kind & 0x3fff, kind & NLA_F_NESTED != 0, b[4..len].to_vec()));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

fn rule(matches: Vec<Match>, verdict: Verdict) -> Rule {
    Rule {
        chain: Chain::Output,
        matches,
        counter: false,
        verdict,
        comment: "c".into(),
    }
}

#[test]
fn a_replace_is_one_transaction_begin_add_delete_add_chains_rules_end() {
    let r = rule(vec![Match::OifName("lo".into())], Verdict::Accept);
    let (buf, pending) = replace_table("oxivpn", &[r], 100).unwrap().finish();
    let msgs = messages(&buf);
    let kinds: Vec<u16> = msgs.iter().map(|m| m.0).collect();
    let nft = |t: u16| (10 << 8) | t;
    assert_eq!(
        kinds,
        [
            NFNL_MSG_BATCH_BEGIN,
            nft(NFT_MSG_NEWTABLE),
            nft(NFT_MSG_DELTABLE),
            nft(NFT_MSG_NEWTABLE),
            nft(NFT_MSG_NEWCHAIN),
            nft(NFT_MSG_NEWCHAIN),
            nft(NFT_MSG_NEWRULE),
            NFNL_MSG_BATCH_END
        ]
    );
    // consecutive seqs; every message but BEGIN/END wants an ACK and is described
    let seqs: Vec<u32> = msgs.iter().map(|m| m.2).collect();
    assert_eq!(seqs, (100..108).collect::<Vec<_>>());
    assert_eq!(
        pending.keys().copied().collect::<Vec<_>>(),
        (101..107).collect::<Vec<_>>()
    );
    assert!(pending[&104].contains("output"));
    for (kind, flags, _, family, _) in &msgs[1..7] {
        assert_ne!(flags & NLM_F_ACK, 0, "{kind}");
        assert_eq!(*family, NFPROTO_INET);
    }
    // the rule appends; the table's first add does not insist on creating it
    assert_ne!(msgs[6].1 & NLM_F_APPEND, 0);
    assert_eq!(msgs[1].1 & 0x200, 0, "no NLM_F_EXCL");
    // the chain: our table, hook LOCAL_OUT, priority 0, policy drop, type filter
    let chain = attrs(&msgs[4].4);
    assert_eq!(chain[0], (NFTA_CHAIN_TABLE, false, b"oxivpn\0".to_vec()));
    assert_eq!(chain[1], (NFTA_CHAIN_NAME, false, b"output\0".to_vec()));
    let hook = attrs(&chain[2].2);
    assert_eq!(hook[0].2, NF_INET_LOCAL_OUT.to_be_bytes());
    assert_eq!(hook[1].2, 0u32.to_be_bytes());
    assert_eq!(
        chain[3],
        (NFTA_CHAIN_POLICY, false, NF_DROP.to_be_bytes().to_vec())
    );
    assert_eq!(chain[4].2, b"filter\0");
    // the rule's comment as libnftnl writes it
    let rule = attrs(&msgs[6].4);
    assert_eq!(rule[3], (NFTA_RULE_USERDATA, false, vec![0, 2, b'c', 0]));
}

#[test]
fn matches_lower_to_what_nft_generates_with_dependencies_once() {
    let e = lower(&rule(
        vec![
            Match::NfProto(IpFamily::V4),
            Match::Sport(L4::Udp, 68),
            Match::Dport(L4::Udp, 67),
        ],
        Verdict::Accept,
    ))
    .unwrap();
    assert_eq!(
        e,
        [
            Expr::Meta(NFT_META_NFPROTO),
            eq(vec![NFPROTO_IPV4]),
            Expr::Meta(NFT_META_L4PROTO),
            eq(vec![17]),
            Expr::Payload {
                base: 2,
                offset: 0,
                len: 4
            },
            eq(vec![0, 68, 0, 67]),
            Expr::Verdict(Verdict::Accept),
        ]
    );
    // apart, each port is loaded on its own
    let e = lower(&rule(vec![Match::Dport(L4::Tcp, 53)], Verdict::Drop)).unwrap();
    assert_eq!(
        e[2],
        Expr::Payload {
            base: 2,
            offset: 2,
            len: 2
        }
    );
    assert_eq!(e[3], eq(vec![0, 53]));
    // a byte-aligned prefix loads only its bytes; any other is masked
    let e = lower(&rule(
        vec![Match::Daddr("192.168.1.0/24".parse().unwrap())],
        Verdict::Accept,
    ))
    .unwrap();
    let load = |len| Expr::Payload {
        base: 1,
        offset: 16,
        len,
    };
    assert_eq!(
        e[2..],
        [
            load(3),
            eq(vec![192, 168, 1]),
            Expr::Verdict(Verdict::Accept)
        ]
    );
    let e = lower(&rule(
        vec![Match::Daddr("172.16.0.0/12".parse().unwrap())],
        Verdict::Accept,
    ))
    .unwrap();
    assert_eq!(
        e[2..5],
        [
            load(4),
            Expr::Mask(vec![255, 240, 0, 0]),
            eq(vec![172, 16, 0, 0])
        ]
    );
    let e = lower(&rule(
        vec![Match::Daddr("198.18.0.1/32".parse().unwrap())],
        Verdict::Accept,
    ))
    .unwrap();
    assert_eq!(e[2..4], [load(4), eq(vec![198, 18, 0, 1])]);
    let e = lower(&rule(
        vec![
            Match::Daddr("2001:db8::1/128".parse().unwrap()),
            Match::Dport(L4::Tcp, 443),
        ],
        Verdict::Accept,
    ))
    .unwrap();
    assert_eq!(e[1], eq(vec![NFPROTO_IPV6]));
    assert_eq!(
        e[2],
        Expr::Payload {
            base: 1,
            offset: 24,
            len: 16
        }
    );
    assert!(matches!(&e[3], Expr::Cmp { data, .. } if data.len() == 16));
    assert_eq!(e[5], eq(vec![6]));
    // interface names are NUL-padded to IFNAMSIZ, as the kernel compares them
    let e = lower(&rule(vec![Match::OifName("oxi0".into())], Verdict::Drop)).unwrap();
    assert_eq!(e[1], eq(b"oxi0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()));
    assert_eq!(
        lower(&rule(
            vec![Match::OifName("a-name-far-too-long".into())],
            Verdict::Drop
        )),
        Err(EncodeError::IfaceName("a-name-far-too-long".into()))
    );
    // ct state established,related
    let e = lower(&rule(vec![Match::CtEstablishedOrRelated], Verdict::Accept)).unwrap();
    assert_eq!(e[0], Expr::CtState);
    assert_eq!(e[1], Expr::Mask(6u32.to_ne_bytes().to_vec()));
    assert_eq!(
        e[2],
        Expr::Cmp {
            op: NFT_CMP_NEQ,
            data: vec![0; 4]
        }
    );
}

#[test]
fn verdicts_and_counter_are_encoded_as_immediate_and_counter() {
    let mut r = rule(vec![], Verdict::Drop);
    r.counter = true;
    let mut b = Batch::new(1);
    b.add_rule("t", &r).unwrap();
    let (buf, _) = b.finish();
    let msgs = messages(&buf);
    let rule = attrs(&msgs[1].4);
    assert_eq!(rule[2].0, NFTA_RULE_EXPRESSIONS);
    let exprs: Vec<Vec<_>> = attrs(&rule[2].2).iter().map(|e| attrs(&e.2)).collect();
    assert_eq!(exprs[0][0].2, b"counter\0");
    assert_eq!(exprs[1][0].2, b"immediate\0");
    let data = attrs(&exprs[1][1].2);
    assert_eq!(data[0].2, NFT_REG_VERDICT.to_be_bytes());
    let code = attrs(&attrs(&data[1].2)[0].2);
    assert_eq!(code[0].2, NF_DROP.to_be_bytes());
}

#[test]
fn bad_names_are_refused_before_sending() {
    assert!(replace_table("", &[], 1).is_err());
    assert!(remove_table("a\0b", 1).is_err());
    assert!(get_table(&"x".repeat(300), 1).is_err());
}

#[test]
fn replies_are_split_and_a_truncated_one_is_an_error() {
    let mut buf = Vec::new();
    for (kind, seq, code) in [(NLMSG_ERROR, 7u32, 0i32), (NLMSG_ERROR, 8, -2)] {
        buf.extend_from_slice(&36u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&code.to_ne_bytes());
        buf.extend_from_slice(&[0; 16]);
    }
    assert_eq!(
        parse_replies(&buf).unwrap(),
        [
            Reply::Ack { seq: 7, code: 0 },
            Reply::Ack { seq: 8, code: -2 }
        ]
    );
    assert!(parse_replies(&buf[..40]).is_err());
    assert!(parse_replies(&[1, 0, 0]).is_err());
}
