//! The service itself: SCM dispatcher and control handler, start-up recovery, the pipe
//! accept loop, and the clean stop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use ipc::frame;
use ipc::{ClientFrame, IpcError, ServerFrame, ServerHello, ShortText, PROTOCOL_VERSION};
use tokio::net::windows::named_pipe::NamedPipeServer;
use tokio::sync::{watch, Semaphore};
use windows_service::service::{
    PowerEventParam, ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState,
    ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

use super::control::{self, Control, Reply, StopReason};
use super::pipe_server::{self, PipeSecurity, Principals};
use super::{config, pipe_acl, requests, ServiceArgs};

const MAX_CONNECTIONS: usize = 256;
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

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
            rt.block_on(serve(&args, rx))
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
    rt.spawn(async move {
        while power_rx.changed().await.is_ok() {
            let r = *power_rx.borrow_and_update();
            // No session runs in this build (see requests.rs), so there is nothing
            // to tear down or reconnect; the log shows the event arrived.
            tracing::info!(event = ?r, "power event");
        }
    });
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
    let result = rt.block_on(serve_with_ready(&args, stop_rx, || {
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

async fn serve(
    args: &ServiceArgs,
    stop: watch::Receiver<Option<StopReason>>,
) -> anyhow::Result<()> {
    serve_with_ready(args, stop, || {}).await
}

/// Recovers, listens, serves until told to stop, then undoes. `ready` runs once the
/// pipe exists (the SCM is told Running only then, so clients started after the
/// service never find no pipe).
async fn serve_with_ready(
    args: &ServiceArgs,
    mut stop: watch::Receiver<Option<StopReason>>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let state_dir = args.state_dir();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating state directory {}", state_dir.display()))?;
    undo_network(&state_dir, "start-up");
    let principals = Arc::new(Principals::new(&args.group)?);
    let security = PipeSecurity::new(principals.users_group())?;
    let mut next = security
        .create(&args.pipe, true)
        .with_context(|| format!("creating {} (is another helper running?)", args.pipe))?;
    tracing::info!(pipe = %args.pipe, group = %args.group, "helper listening");
    ready();
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let reason = loop {
        tokio::select! {
            r = next.connect() => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "pipe connect failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let conn = std::mem::replace(&mut next, security.create(&args.pipe, false)?);
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("too many connections; dropping one");
                    continue;
                };
                let principals = principals.clone();
                tokio::spawn(async move {
                    serve_client(conn, principals, started).await;
                    drop(permit);
                });
            }
            _ = stop.changed() => break stop.borrow().unwrap_or(StopReason::Requested),
        }
    };
    tracing::info!(?reason, "stopping");
    undo_network(&state_dir, "stop");
    Ok(())
}

/// Undoes whatever the journals in the state dir record (a crashed run at start-up, the
/// sessions at stop).
fn undo_network(state_dir: &Path, when: &str) {
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
    for j in journals {
        match netcfg::recover(&j) {
            Ok(r) => {
                tracing::info!(when, journal = %j.display(), undone = r.undone, "network undo")
            }
            Err(e) => {
                tracing::error!(when, journal = %j.display(), error = %e, "network undo incomplete")
            }
        }
    }
    lift_kill_switch(state_dir, when);
}

/// The WFP kill switch a session (or a crashed run) left. This service runs no session
/// that could reconnect (see requests.rs), so at start-up and at stop the filters go:
/// keeping them would leave the machine offline with nothing to bring the tunnel back.
fn lift_kill_switch(state_dir: &Path, when: &str) {
    let opts = netcfg::FirewallOptions {
        journal_path: state_dir.join("firewall.json"),
        ..Default::default()
    };
    match netcfg::Firewall::recover(&opts) {
        Ok(Some(mut fw)) => match fw.remove() {
            Ok(()) => tracing::warn!(when, "kill switch left by a previous session lifted"),
            Err(e) => tracing::error!(when, error = %e, "kill switch could not be lifted"),
        },
        Ok(None) => {}
        Err(e) => tracing::error!(when, error = %e, "kill switch state unreadable"),
    }
}

async fn serve_client(mut pipe: NamedPipeServer, who: Arc<Principals>, started: Instant) {
    // Impersonation needs data from the client first: read its hello, then check it.
    let hello = tokio::time::timeout(
        HELLO_TIMEOUT,
        frame::read_message::<_, ClientFrame>(&mut pipe),
    )
    .await;
    let hello = match hello {
        Ok(Ok(Some(ClientFrame::Hello(h)))) => h,
        other => {
            tracing::debug!(?other, "no hello; closing");
            return;
        }
    };
    let id = match pipe_server::client_identity(&pipe, &who) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the client's identity; closing");
            return;
        }
    };
    let span = tracing::info_span!("client", sid = %id.user_sid, pid = id.pid);
    let _enter = span.enter();
    let refuse = |e: IpcError| ServerFrame::Refused(e);
    let verdict = if hello.protocol != PROTOCOL_VERSION {
        Err(IpcError::VersionMismatch {
            helper: PROTOCOL_VERSION,
            client: hello.protocol,
        })
    } else {
        pipe_acl::authorize(&id)
    };
    let role = match verdict {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "client refused");
            let _ = frame::write_message(&mut pipe, &refuse(e)).await;
            return;
        }
    };
    let uid = pipe_acl::peer_uid(&id);
    tracing::info!(
        ?role,
        uid,
        client = hello.client.as_str(),
        "client accepted"
    );
    let ok = ServerFrame::Hello(ServerHello {
        protocol: PROTOCOL_VERSION,
        helper_version: ShortText::sanitized(env!("CARGO_PKG_VERSION")),
        peer_uid: uid,
    });
    if frame::write_message(&mut pipe, &ok).await.is_err() {
        return;
    }
    loop {
        let msg = match frame::read_message::<_, ClientFrame>(&mut pipe).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "bad frame; closing");
                return;
            }
        };
        let ClientFrame::Request { id: rid, body } = msg else {
            return;
        };
        let result = match body {
            // No session runs here, so no route can be a tunnel's; the lookup is real.
            ipc::Request::RouteCheck { addr } => {
                tokio::task::spawn_blocking(move || super::route_check::explain(addr, &[]))
                    .await
                    .unwrap_or_else(|e| Err(IpcError::internal(e)))
                    .map(ipc::Response::Route)
            }
            other => requests::answer(&other, uid, started.elapsed()),
        };
        let reply = ServerFrame::Response { id: rid, result };
        match tokio::time::timeout(FRAME_TIMEOUT, frame::write_message(&mut pipe, &reply)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
