//! The kill switch on Linux: our nftables table `inet <table>`, written over a
//! `NETLINK_NETFILTER` socket in one transaction ([`super::nft_batch`]); no `nft` process.
//! Synchronous like `crate::netlink`: recovery runs at start-up without a runtime, and a
//! batch takes well under a millisecond. The socket belongs to the network namespace of
//! the thread that opens it.
//!
//! One socket serves every transaction of a [`Backend`] (opened at its first one, dropped
//! after any error): closing a NETLINK_NETFILTER socket right after a transaction that
//! deleted a table waits in the kernel (`nft_rcv_nl_event` flushes the deferred destroy
//! work, an RCU grace period) — measured at 4-12 ms on the 2-vCPU lab VM, on the connect's
//! critical path between PUSH_REPLY and the routes. Kept open, the wait never happens there.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::nft_batch::{self, Reply};
use super::{nft_rules, FirewallOptions, FirewallPolicy};
use crate::Error;

/// How long the kernel may take to answer before we call it unresponsive.
const RECV_TIMEOUT_SECS: libc::time_t = 5;
const ENOENT: i32 = 2;

pub(super) struct Backend {
    table: String,
    /// The socket of the transactions (see the module docs); `None` until the first one
    /// and after a failed one (its unread answers must not meet the next transaction).
    conn: Option<Conn>,
    /// The next transaction's first sequence number: unique on the kept socket, so an
    /// answer can only ever be matched to its own message.
    next_seq: u32,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("table", &self.table)
            .field("socket_open", &self.conn.is_some())
            .finish()
    }
}

/// Sequence numbers only have to be unique on one socket; a one-off query opens its own.
const FIRST_SEQ: u32 = 1;

fn fail(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Firewall { what, source }
}

fn encode(e: nft_batch::EncodeError) -> Error {
    Error::Firewall {
        what: format!("the ruleset cannot be expressed: {e}"),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    }
}

struct Conn {
    sock: Socket,
    buf: Vec<u8>,
}

impl Conn {
    fn open() -> Result<Self, Error> {
        let op = fail("open a netfilter netlink socket");
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(op)?;
        sock.bind_auto()
            .map_err(fail("bind the netfilter netlink socket"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(fail("connect the netfilter netlink socket"))?;
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT_SECS,
            tv_usec: 0,
        };
        // SAFETY: valid fd, pointer to a live timeval of the size passed.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(fail("set the netlink receive timeout")(
                io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.sock
            .send(bytes, 0)
            .map_err(fail("send to nftables (is this a Linux with nf_tables?)"))?;
        Ok(())
    }

    fn recv(&mut self) -> Result<Vec<Reply>, Error> {
        let n = loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(fail("nftables did not answer")(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {RECV_TIMEOUT_SECS} s"),
                    )))
                }
                Err(e) => return Err(fail("read nftables' answer")(e)),
            }
        };
        let got = self.buf.get(..n).unwrap_or_default();
        nft_batch::parse_replies(got).map_err(|e| Error::Firewall {
            what: "decode nftables' answer".into(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// Sends one transaction and waits for the ACK of each of its messages; the first
    /// refusal aborts the whole transaction in the kernel and names its message here.
    fn transact(&mut self, batch: nft_batch::Batch) -> Result<(), Error> {
        let (bytes, mut pending): (Vec<u8>, BTreeMap<u32, String>) = batch.finish();
        self.send(&bytes)?;
        while !pending.is_empty() {
            for r in self.recv()? {
                if let Reply::Ack { seq, code } = r {
                    if code != 0 {
                        let what = pending
                            .get(&seq)
                            .cloned()
                            .unwrap_or_else(|| "the transaction".into());
                        return Err(Error::Firewall {
                            what: format!("nftables refused `{what}`"),
                            source: io::Error::from_raw_os_error(code.saturating_neg()),
                        });
                    }
                    pending.remove(&seq);
                }
            }
        }
        Ok(())
    }
}

impl Backend {
    /// One transaction on the kept socket (opened here when there is none).
    fn transact(&mut self, batch: nft_batch::Batch) -> Result<(), Error> {
        self.next_seq = batch.next_seq();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => Conn::open()?,
        };
        conn.transact(batch)?;
        // Only a socket whose every answer was read is kept (an error drops it above).
        self.conn = Some(conn);
        Ok(())
    }
}

/// Whether this network namespace forwards packets (IPv4 or IPv6), which decides whether
/// the forward chain needs connection tracking (see [`nft_rules::nft_rules`]). A setting
/// that cannot be read counts as on: the table then has the reply rule, as before.
pub(super) fn forwarding() -> bool {
    [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ]
    .iter()
    .any(|p| std::fs::read_to_string(p).map_or(true, |v| v.trim() != "0"))
}

impl super::Backend for Backend {
    fn open(opts: &FirewallOptions) -> Result<Self, Error> {
        Ok(Self {
            table: opts.table.clone(),
            conn: None,
            next_seq: FIRST_SEQ,
        })
    }

    fn apply(&mut self, policy: &FirewallPolicy) -> Result<(), Error> {
        let rules = nft_rules::nft_rules(policy, forwarding());
        let batch = nft_batch::replace_table(&self.table, &rules, self.next_seq).map_err(encode)?;
        self.transact(batch)
    }

    fn remove(&mut self) -> Result<(), Error> {
        let batch = nft_batch::remove_table(&self.table, self.next_seq).map_err(encode)?;
        self.transact(batch)
    }

    fn is_present(&self) -> Result<bool, Error> {
        let seq = FIRST_SEQ;
        let msg = nft_batch::get_table(&self.table, seq).map_err(encode)?;
        let mut conn = Conn::open()?;
        conn.send(&msg)?;
        let mut found = false;
        loop {
            for r in conn.recv()? {
                match r {
                    Reply::Data { seq: s, kind } if s == seq => {
                        found |= kind == nft_batch::NEWTABLE_REPLY;
                    }
                    Reply::Ack { seq: s, code } if s == seq => {
                        return match code {
                            0 => Ok(found),
                            c if c == -ENOENT => Ok(false),
                            c => Err(Error::Firewall {
                                what: format!("ask nftables for table inet {}", self.table),
                                source: io::Error::from_raw_os_error(c.saturating_neg()),
                            }),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}
