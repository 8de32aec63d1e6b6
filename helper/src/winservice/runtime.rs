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
use super::pipe_acl::{self, Role};
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
        let role = pipe_acl::authorize(&id)?;
        let uid = pipe_acl::peer_uid(&id);
        tracing::info!(?role, uid, sid = %id.user_sid, pid = id.pid, "client accepted");
        Ok(Peer {
            uid,
            privileged: role == Role::Privileged,
            pid: Some(id.pid),
        })
    }
}

/// Recovers, listens, serves until told to stop, then stops the sessions (each undoes
/// its routes and DNS and lifts its kill switch). `ready` runs once the pipe exists (the
/// SCM is told Running only then, so clients started after the service never find no
/// pipe).
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
    launcher.recover_at_start();
    let principals = Arc::new(Principals::new(&args.group)?);
    let security = Arc::new(PipeSecurity::new(principals.users_group())?);
    let first = security
        .create(&args.pipe, true)
        .with_context(|| format!("creating {} (is another helper running?)", args.pipe))?;
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
