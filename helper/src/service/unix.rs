//! `oxivpn-helper service` on Unix: a root-owned socket with group access, SO_PEERCRED
//! plus group membership as the gate, SIGTERM/SIGINT as the stop.

mod socket;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use ipc::IpcError;
use tokio::net::{UnixListener, UnixStream};

use super::peer::{Authorizer, Peer, UnixCred};
use super::{Ctx, Gate, Listener};
use crate::stop::Signals;
use crate::tunnel::launcher::{Journals, Launcher};
use crate::tunnel::stub::StubMode;
use crate::tunnel::NetOptions;

#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    /// Unix socket to listen on.
    #[arg(long, default_value_os_t = ipc::default_socket_path())]
    pub socket: PathBuf,
    /// Group whose members may use the helper (root always may).
    #[arg(long, default_value = "oxivpn")]
    pub group: String,
    /// Where the helper keeps its state (undo journal).
    #[arg(long, default_value = "/var/lib/oxivpn")]
    pub state_dir: PathBuf,
    /// Socket file mode, octal. Tests open it wider to exercise the peer-credential
    /// check on its own; production keeps 0660.
    #[arg(long, default_value = "660", value_parser = parse_mode, hide = true)]
    pub socket_mode: u32,
    /// Sessions use a stand-in tunnel that never sends a packet (tests of the service
    /// itself): `hold` stays in `connecting`, `connect` reaches `connected` without
    /// touching the machine.
    #[arg(long, hide = true, value_enum, num_args = 0..=1, default_missing_value = "hold")]
    pub stub_tunnel: Option<StubMode>,
    /// Extra directories with dhclient lease files (test labs keep theirs apart).
    #[arg(long, hide = true)]
    pub dhcp_lease_dir: Vec<PathBuf>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode"))
}

struct Socket(UnixListener);

impl Listener for Socket {
    type Stream = UnixStream;

    async fn accept(&mut self) -> std::io::Result<(UnixStream, Option<u32>)> {
        let (stream, _) = self.0.accept().await?;
        let uid = stream.peer_cred().ok().map(|c| c.uid());
        Ok((stream, uid))
    }
}

/// Peer credentials from the kernel, then group membership (NSS, so off the runtime).
struct PeerCred(Authorizer);

impl Gate for PeerCred {
    type Stream = UnixStream;

    async fn admit(&self, stream: &UnixStream) -> Result<Peer, IpcError> {
        let c = stream
            .peer_cred()
            .map_err(|e| IpcError::internal(format!("no peer credentials: {e}")))?;
        let cred = UnixCred {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        };
        let auth = self.0.clone();
        tokio::task::spawn_blocking(move || auth.check(&cred))
            .await
            .map_err(IpcError::internal)??;
        Ok(cred.peer())
    }
}

pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let journals = Journals::PerSession(args.state_dir.clone());
    let launcher = match args.stub_tunnel {
        Some(mode) => Launcher::stub(mode, journals),
        None => {
            let mut net = NetOptions::default();
            net.discover
                .leases
                .dhclient_dirs
                .extend(args.dhcp_lease_dir.iter().cloned());
            Launcher::real(net, journals)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(args, Arc::new(launcher)))
}

/// Applies the lockdown setting (off the runtime: netlink and fsync are blocking, and
/// this runs once before anyone is accepted).
fn start_lockdown(state_dir: &std::path::Path) {
    use super::lockdown::{self, Block, Lockdown, OsBlock};
    let block: Box<dyn Block> = match OsBlock::recover(state_dir) {
        Ok(b) => Box::new(b),
        Err(e) => Box::new(lockdown::Unavailable(e)),
    };
    let l = tokio::task::block_in_place(|| Lockdown::start(state_dir, block));
    lockdown::install(Arc::new(l));
}

async fn serve(args: ServiceArgs, launcher: Arc<Launcher>) -> anyhow::Result<()> {
    let authorizer = Authorizer::new(&args.group)?;
    // 0700, ours; refused when someone else could have written the journals in it.
    netcfg::journal::ensure_state_dir(&args.state_dir)
        .with_context(|| format!("state directory {}", args.state_dir.display()))?;
    // Lockdown first: its block-all is in before a crashed run's kill switch is removed.
    if args.stub_tunnel.is_none() {
        start_lockdown(&args.state_dir);
    }
    launcher.recover_at_start();
    let listener = socket::bind(&args.socket, authorizer.gid(), args.socket_mode)?;
    let mut stop = Signals::new().context("installing the SIGTERM/SIGINT handlers")?;
    tracing::info!(
        socket = %args.socket.display(),
        group = %args.group,
        tunnel_wired = crate::tunnel::launcher::Attempts::wired(launcher.as_ref()),
        "helper listening"
    );
    let ctx = Ctx::new(launcher);
    let result = super::serve(
        Socket(listener),
        Arc::new(PeerCred(authorizer)),
        ctx,
        &mut stop,
    )
    .await;
    let _ = std::fs::remove_file(&args.socket);
    result
}
