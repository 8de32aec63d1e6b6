//! `oxivpn-helper service`: the IPC server that the app and `oxivpnctl` talk to.

mod connection;
mod engine;
mod listener;
pub mod netwatch;
pub mod peer;
pub mod profile_guard;
mod route_check;
pub mod route_plan;
mod sessions;
// Parts of the seam are only used by the real tunnel adapter and by tests.
#[allow(dead_code)]
pub mod tunnel_port;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;

use peer::Authorizer;
use sessions::Sessions;
use tunnel_port::TunnelLauncher;

/// Connections served at once (all users); more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one uid may hold open (root: unlimited within the total).
pub const MAX_CONNECTIONS_PER_UID: u32 = 32;

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
    /// Sessions use a stand-in tunnel that never sends a packet (tests of the
    /// service itself).
    #[arg(long, hide = true)]
    pub stub_tunnel: bool,
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

pub struct Ctx {
    sessions: Arc<Sessions>,
    authorizer: Authorizer,
    conn_limits: ConnLimits,
}

/// Per-uid connection counting; the guard gives the slot back on drop.
#[derive(Default)]
pub struct ConnLimits {
    per_uid: Arc<Mutex<HashMap<u32, u32>>>,
}

pub struct ConnGuard {
    per_uid: Arc<Mutex<HashMap<u32, u32>>>,
    uid: u32,
}

impl ConnLimits {
    fn enter(&self, uid: u32) -> Result<ConnGuard, u32> {
        let mut map = self.per_uid.lock().map_err(|_| 0u32)?;
        let n = map.entry(uid).or_insert(0);
        if uid != 0 && *n >= MAX_CONNECTIONS_PER_UID {
            return Err(MAX_CONNECTIONS_PER_UID);
        }
        *n += 1;
        Ok(ConnGuard {
            per_uid: self.per_uid.clone(),
            uid,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.per_uid.lock() {
            if let Some(n) = map.get_mut(&self.uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.uid);
                }
            }
        }
    }
}

/// Undoes what sessions of a previous helper run left behind (crash, kill -9), before
/// anyone can connect. Each session journals to `journal-<id>.json` in the state dir.
fn recover_network(state_dir: &std::path::Path) {
    let journals: Vec<PathBuf> = std::fs::read_dir(state_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("journal") && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    // With no journal, one pass still sweeps routes carrying our protocol number.
    let targets = if journals.is_empty() {
        vec![state_dir.join("journal.json")]
    } else {
        journals
    };
    for j in targets {
        match netcfg::recover(&j) {
            Ok(r) if r.undone + r.swept > 0 => tracing::warn!(
                journal = %j.display(),
                undone = r.undone,
                swept = r.swept,
                "repaired network changes left by a previous run"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(journal = %j.display(), error = %e, "network recovery incomplete")
            }
        }
    }
}

pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let launcher: Arc<dyn TunnelLauncher> = if args.stub_tunnel {
        Arc::new(tunnel_port::StubLauncher)
    } else {
        let mut net = crate::tunnel::NetOptions::default();
        net.discover
            .leases
            .dhclient_dirs
            .extend(args.dhcp_lease_dir.iter().cloned());
        Arc::new(engine::PerSessionEngine::new(net, args.state_dir.clone()))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(args, launcher))
}

async fn serve(args: ServiceArgs, launcher: Arc<dyn TunnelLauncher>) -> anyhow::Result<()> {
    let authorizer = Authorizer::new(&args.group)?;
    // 0700, ours; refused when someone else could have written the journals in it.
    netcfg::journal::ensure_state_dir(&args.state_dir)
        .with_context(|| format!("state directory {}", args.state_dir.display()))?;
    recover_network(&args.state_dir);
    if !args.stub_tunnel {
        // Fails only if nft cannot run: then connecting would fail too; say why now.
        if let Err(e) = engine::recover_kill_switch(&args.state_dir) {
            tracing::error!(error = %e, "kill switch recovery failed");
        }
    }
    let listener = listener::bind(&args.socket, authorizer.gid(), args.socket_mode)?;
    tracing::info!(
        socket = %args.socket.display(),
        group = %args.group,
        tunnel_wired = launcher.wired(),
        "helper listening"
    );
    let ctx = Arc::new(Ctx {
        sessions: Sessions::new(launcher),
        authorizer,
        conn_limits: ConnLimits::default(),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    loop {
        // Waiting for a slot before accept leaves extra clients in the backlog
        // instead of starving the ones being served.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.context("connection slots closed")?,
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = sigterm.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    connection::serve(stream, ctx).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tracing::info!("shutting down: stopping sessions");
    ctx.sessions.stop_all(Duration::from_secs(10)).await;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
