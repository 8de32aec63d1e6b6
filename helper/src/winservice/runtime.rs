//! The service itself: SCM dispatcher and control handler, start-up recovery, the pipe
//! accept loop, and the clean stop.

use std::ffi::OsString;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use ipc::IpcError;
use tokio::net::windows::named_pipe::NamedPipeServer;
use tokio::sync::watch;
use windows_service::service::{
    PowerEventParam, ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState,
    ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

use super::control::{self, Control, Reply, StopReason};
use super::pipe_acl;
use super::pipe_server::{self, PipeSecurity, Principals};
use super::{config, ServiceArgs};
use crate::service::{self, Ctx, Gate, Listener, Peer};
use crate::stop::Flag;
use crate::tunnel::launcher::{Attempts, Journals, Launcher};
use crate::tunnel::NetOptions;

static ARGS: OnceLock<ServiceArgs> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// `oxivpn-helper service`: under the SCM when it started us; otherwise (a console,
/// for debugging) in the foreground until Ctrl+C.
pub fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let _ = ARGS.set(args.clone());
    match service_dispatcher::start(config::SERVICE_NAME, ffi_service_main) {
        Ok(()) => Ok(()),
        // ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: not started by the SCM.
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(1063) => {
            tracing::info!("not started by the service manager: running in the foreground");
            let (tx, rx) = watch::channel(None);
            let rt = runtime()?;
            rt.spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = tx.send(Some(StopReason::Requested));
            });
            rt.block_on(serve_with_ready(&args, rx, None, || {}))
        }
        Err(e) => Err(e).context("connecting to the service manager"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn service_main(_argv: Vec<OsString>) {
    if let Err(e) = run_under_scm() {
        tracing::error!(error = format!("{e:#}"), "service failed");
    }
}

fn to_control(c: &ServiceControl) -> Control {
    match c {
        ServiceControl::Stop => Control::Stop,
        ServiceControl::Preshutdown => Control::Preshutdown,
        ServiceControl::Shutdown => Control::Shutdown,
        ServiceControl::Interrogate => Control::Interrogate,
        ServiceControl::PowerEvent(PowerEventParam::Suspend) => Control::Suspend,
        ServiceControl::PowerEvent(
            PowerEventParam::ResumeAutomatic | PowerEventParam::ResumeSuspend,
        ) => Control::Resume,
        _ => Control::Other,
    }
}

fn status(
    state: ServiceState,
    accept: ServiceControlAccept,
    exit: u32,
    hint: u64,
) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: Duration::from_secs(hint),
        process_id: None,
    }
}

fn run_under_scm() -> anyhow::Result<()> {
    let args = ARGS.get().cloned().unwrap_or_default();
    let (stop_tx, stop_rx) = watch::channel(None);
    let (power_tx, mut power_rx) = watch::channel(Reply::Acknowledge);
    let handler = move |c: ServiceControl| -> ServiceControlHandlerResult {
        match control::on_control(to_control(&c)) {
            Reply::Stop(reason) => {
                let _ = stop_tx.send(Some(reason));
                ServiceControlHandlerResult::NoError
            }
            r @ (Reply::Suspend | Reply::Resume) => {
                let _ = power_tx.send(r);
                ServiceControlHandlerResult::NoError
            }
            Reply::Acknowledge => ServiceControlHandlerResult::NoError,
            Reply::NotImplemented => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let handle = service_control_handler::register(config::SERVICE_NAME, handler)
        .context("registering the control handler")?;
    handle.set_service_status(status(
        ServiceState::StartPending,
        ServiceControlAccept::empty(),
        0,
        15,
    ))?;
    let rt = runtime()?;
    let power = {
        let (tx, rx) = watch::channel(None::<Reply>);
        rt.spawn(async move {
            while power_rx.changed().await.is_ok() {
                let r = *power_rx.borrow_and_update();
                tracing::info!(event = ?r, "power event");
                let _ = tx.send(Some(r));
            }
        });
        rx
    };
    let accept = ServiceControlAccept::STOP
        | ServiceControlAccept::PRESHUTDOWN
        | ServiceControlAccept::POWER_EVENT;
    // Tell the SCM we are stopping (with time to undo) as soon as a stop arrives.
    let mut stopping = stop_rx.clone();
    rt.spawn(async move {
        if stopping.changed().await.is_ok() {
            let reason = stopping.borrow().unwrap_or(StopReason::Requested);
            let hint = control::stop_wait_hint_secs(reason);
            let _ = handle.set_service_status(status(
                ServiceState::StopPending,
                ServiceControlAccept::empty(),
                0,
                hint,
            ));
        }
    });
    let result = rt.block_on(serve_with_ready(&args, stop_rx, Some(power), || {
        let _ = handle.set_service_status(status(ServiceState::Running, accept, 0, 0));
    }));
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "service stopped with an error");
    }
    // A non-zero exit code makes the SCM apply the recovery actions (restart).
    let exit = if result.is_ok() { 0 } else { 1 };
    handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit,
        0,
    ))?;
    result
}

/// The pipe's instances: one waits for the next client while the others serve.
struct Pipe {
    name: String,
    security: Arc<PipeSecurity>,
    next: NamedPipeServer,
}

impl Listener for Pipe {
    type Stream = NamedPipeServer;

    async fn accept(&mut self) -> std::io::Result<(NamedPipeServer, Option<u32>)> {
        self.next.connect().await?;
        let fresh = self.security.create(&self.name, false)?;
        Ok((std::mem::replace(&mut self.next, fresh), None))
    }
}

/// The connected client's token: its user SID and group memberships.
struct Token(Arc<Principals>);

impl Gate for Token {
    type Stream = NamedPipeServer;

    async fn admit(&self, pipe: &NamedPipeServer) -> Result<Peer, IpcError> {
        // Impersonation is thread-bound and needs data read first (the hello was).
        let id = pipe_server::client_identity(pipe, &self.0)
            .map_err(|e| IpcError::internal(format!("cannot read the client's identity: {e}")))?;
        let peer = pipe_acl::admit(&id)?;
        tracing::info!(
            privileged = peer.privileged,
            uid = peer.uid,
            sid = %id.user_sid,
            pid = id.pid,
            "client accepted"
        );
        Ok(peer)
    }
}

/// Our first instance must be the pipe's only one: anyone else's instance would answer
/// some of our clients (and read their profiles and passwords).
fn refuse_shared_name(first: &NamedPipeServer, name: &str) -> anyhow::Result<()> {
    let n = pipe_server::instance_count(first)
        .with_context(|| format!("counting the instances of {name}"))?;
    anyhow::ensure!(
        n <= 1,
        "{name} already has {} instance(s) of another process (another helper, or a \
         forged one): refusing to serve on a pipe name someone else holds",
        n.saturating_sub(1)
    );
    Ok(())
}

/// Claims the pipe name, recovers, serves until told to stop, then stops the sessions
/// (each undoes its routes and DNS and lifts its kill switch). `ready` runs once the pipe
/// exists (the SCM is told Running only then, so clients started after the service never
/// find no pipe).
async fn serve_with_ready(
    args: &ServiceArgs,
    stop: watch::Receiver<Option<StopReason>>,
    power: Option<watch::Receiver<Option<Reply>>>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let state_dir = args.state_dir();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;
    let journals = Journals::PerSession(state_dir.clone());
    let launcher = Arc::new(match args.stub_tunnel {
        Some(mode) => Launcher::stub(mode, journals),
        None => Launcher::real(NetOptions::default(), journals),
    });
    // The pipe name first: a second helper started by mistake must stop here, before
    // its start-up recovery undoes the journals of the sessions the running one holds.
    let principals = Arc::new(Principals::new(&args.group)?);
    let security = Arc::new(PipeSecurity::new(principals.users_group())?);
    let first = security
        .create(&args.pipe, true)
        .with_context(|| format!("creating {} (is another helper running?)", args.pipe))?;
    refuse_shared_name(&first, &args.pipe)?;
    launcher.recover_at_start();
    tracing::info!(
        pipe = %args.pipe,
        group = %args.group,
        tunnel_wired = launcher.wired(),
        "helper listening"
    );
    ready();
    let ctx = Ctx::new(launcher.clone());
    if let Some(mut power) = power {
        let sessions = ctx.sessions.clone();
        tokio::spawn(async move {
            while power.changed().await.is_ok() {
                // Asleep, the tunnel's socket dies; awake, the network is not what the
                // routes were planned against: reconnect now (the kill switch stays).
                if let Some(Reply::Resume) = *power.borrow_and_update() {
                    sessions.reconnect_all("the machine woke up");
                }
            }
        });
    }
    let listener = Pipe {
        name: args.pipe.clone(),
        security,
        next: first,
    };
    let mut stop = Flag(stop);
    let result = service::serve(listener, Arc::new(Token(principals)), ctx, &mut stop).await;
    let reason = stop.0.borrow().unwrap_or(StopReason::Requested);
    tracing::info!(?reason, "stopped");
    // A session that did not finish in time left its journal: undo it now, and lift the
    // kill switch (a deliberate stop, an uninstall, must not leave the machine offline).
    launcher.recover_at_start();
    result
}

/// Bad input at the pipe, under Wine in `cargo xtask test` (real named pipes, the real
/// security descriptor, the real token read). Wine runs every process as one user who is
/// an administrator, so a stranger's token cannot be had here: the gate reads the real
/// token and then drops its group memberships for the first client only, and the
/// decision ([`pipe_acl::admit`]) is the service's own.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use ipc::{Client, ClientError};
    use tokio::net::windows::named_pipe::ServerOptions;

    use super::*;
    use crate::tunnel::stub::StubMode;

    fn args(pipe: &str, state: &Path) -> ServiceArgs {
        ServiceArgs {
            pipe: pipe.to_owned(),
            // Wine knows no "OxiVPN Users"; the built-in Users group stands in for it.
            group: "Users".to_owned(),
            state_dir: Some(state.to_owned()),
            stub_tunnel: Some(StubMode::Hold),
        }
    }

    fn pipe_name(what: &str) -> String {
        format!(r"\\.\pipe\oxivpn-test-{what}-{}", std::process::id())
    }

    /// The service started on a pipe name another process holds; Err when it refused.
    async fn start_on_squatted(name: &str, squatter_limit: Option<usize>) -> anyhow::Result<()> {
        let mut opts = ServerOptions::new();
        opts.first_pipe_instance(true);
        if let Some(n) = squatter_limit {
            opts.max_instances(n);
        }
        let _squatter = opts.create(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop_rx) = watch::channel(None);
        let mut ready = false;
        let served = tokio::time::timeout(
            Duration::from_secs(20),
            serve_with_ready(&args(name, dir.path()), stop_rx, None, || ready = true),
        )
        .await;
        match served {
            Ok(r) => {
                assert!(
                    !ready,
                    "the service said it was ready on a squatted pipe and then {r:?}"
                );
                r
            }
            Err(_) => panic!("the service serves on {name}, which another process created first"),
        }
    }

    #[tokio::test]
    async fn a_forged_pipe_instance_created_first_makes_the_service_refuse_to_serve() {
        // A squatter with unlimited instances: real Windows refuses our first instance
        // (FILE_FLAG_FIRST_PIPE_INSTANCE), Wine lets it be created and the instance count
        // catches it.
        let name = pipe_name("squat");
        let e = start_on_squatted(&name, None).await.unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&name)
                && (msg.contains("refusing to serve") || msg.contains("another helper running")),
            "{msg}"
        );
        // A squatter that allows one instance only.
        let name = pipe_name("squat1");
        let e = start_on_squatted(&name, Some(1)).await.unwrap_err();
        assert!(format!("{e:#}").contains(&name), "{e:#}");
    }

    /// Reads the real token; takes every membership away from the first client.
    struct StrangerFirst {
        principals: Arc<Principals>,
        done: AtomicBool,
    }

    impl Gate for StrangerFirst {
        type Stream = NamedPipeServer;

        async fn admit(&self, pipe: &NamedPipeServer) -> Result<Peer, IpcError> {
            let mut id =
                pipe_server::client_identity(pipe, &self.principals).map_err(IpcError::internal)?;
            if !self.done.swap(true, Ordering::SeqCst) {
                id.is_system = false;
                id.is_admin = false;
                id.in_users_group = false;
            }
            pipe_acl::admit(&id)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pipe_client_without_the_group_is_refused_and_the_service_stays_up() {
        let name = pipe_name("gate");
        let dir = tempfile::tempdir().unwrap();
        let principals = Arc::new(Principals::new("Users").unwrap());
        let security = Arc::new(PipeSecurity::new(principals.users_group()).unwrap());
        let first = security.create(&name, true).unwrap();
        let listener = Pipe {
            name: name.clone(),
            security,
            next: first,
        };
        let gate = Arc::new(StrangerFirst {
            principals,
            done: AtomicBool::new(false),
        });
        let launcher = Arc::new(Launcher::stub(
            StubMode::Hold,
            Journals::PerSession(dir.path().to_owned()),
        ));
        let (stop_tx, stop_rx) = watch::channel(None);
        let server = tokio::spawn(async move {
            let mut stop = Flag(stop_rx);
            service::serve(listener, gate, Ctx::new(launcher), &mut stop).await
        });

        match Client::connect(Path::new(&name), "stranger").await {
            Err(ClientError::Refused(IpcError::NotAuthorized { group, .. })) => {
                assert_eq!(group.as_str(), config::USERS_GROUP);
            }
            Err(e) => panic!("a stranger got {e}, not a refusal naming the group"),
            Ok(_) => panic!("a client without the group was served"),
        }
        // The same service, the next client (Wine's user: an administrator).
        let admin = Client::connect(Path::new(&name), "admin").await.unwrap();
        let status = admin.status().await.unwrap();
        assert_eq!(status.peer_uid, admin.server_hello().peer_uid);
        assert_eq!(status.sessions, 0);

        stop_tx.send(Some(StopReason::Requested)).unwrap();
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
