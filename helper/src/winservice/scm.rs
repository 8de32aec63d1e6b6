//! Registration with the Service Control Manager (`oxivpn-helper install-service` /
//! `uninstall-service`, run by the installer). The values come from `config.rs`.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::Context;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceDependency, ServiceErrorControl,
    ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceSidType,
    ServiceStartType, ServiceState, ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::config::{self, RecoveryAction, ServiceSpec, StartType};

fn service_info(spec: &ServiceSpec) -> ServiceInfo {
    ServiceInfo {
        name: spec.name.into(),
        display_name: spec.display_name.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: match spec.start {
            StartType::Automatic => ServiceStartType::AutoStart,
        },
        error_control: ServiceErrorControl::Normal,
        executable_path: spec.executable.clone().into(),
        launch_arguments: spec.arguments.iter().map(OsString::from).collect(),
        dependencies: spec
            .dependencies
            .iter()
            .map(|d| ServiceDependency::Service(OsString::from(d)))
            .collect(),
        account_name: spec.account.clone().map(OsString::from),
        account_password: None,
    }
}

/// Creates the service, or updates it in place on upgrade, and starts it if asked.
pub fn install(state_dir: Option<&str>, start: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating oxivpn-helper.exe")?;
    let exe = exe
        .to_str()
        .context("the helper's path is not valid Unicode")?
        .to_owned();
    let spec = config::service_spec(&exe, state_dir)?;
    let info = service_info(&spec);
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .context("opening the service control manager (run as administrator)")?;
    let access = ServiceAccess::CHANGE_CONFIG
        | ServiceAccess::START
        | ServiceAccess::QUERY_STATUS
        | ServiceAccess::QUERY_CONFIG;
    let service = match manager.open_service(spec.name, access) {
        Ok(s) => {
            s.change_config(&info)
                .context("updating the existing service")?;
            s
        }
        Err(_) => manager
            .create_service(&info, access)
            .context("creating the service")?,
    };
    service.set_description(spec.description)?;
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(spec.failure_reset),
            reboot_msg: None,
            command: None,
            actions: Some(
                spec.recovery
                    .iter()
                    .map(|RecoveryAction::Restart(delay)| ServiceAction {
                        action_type: ServiceActionType::Restart,
                        delay: *delay,
                    })
                    .collect(),
            ),
        })
        .context("setting recovery actions")?;
    service.set_failure_actions_on_non_crash_failures(spec.recover_on_error_exit)?;
    service.set_preshutdown_timeout(spec.preshutdown_timeout)?;
    // A service SID lets the WFP filters and files name this service alone.
    service.set_config_service_sid_info(ServiceSidType::Unrestricted)?;
    tracing::info!(service = spec.name, exe = %spec.executable, "service registered");
    if start && service.query_status()?.current_state != ServiceState::Running {
        service.start::<&str>(&[]).context("starting the service")?;
        tracing::info!(service = spec.name, "service started");
    }
    Ok(())
}

/// Stops the service (it undoes its network changes on stop) and deletes it.
pub fn uninstall() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .context("opening the service control manager (run as administrator)")?;
    let service = match manager.open_service(
        config::SERVICE_NAME,
        ServiceAccess::STOP | ServiceAccess::DELETE | ServiceAccess::QUERY_STATUS,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, "service not installed; nothing to remove");
            return Ok(());
        }
    };
    if service.query_status()?.current_state != ServiceState::Stopped {
        let _ = service.stop();
        let deadline = Instant::now() + Duration::from_secs(40);
        while service.query_status()?.current_state != ServiceState::Stopped {
            if Instant::now() > deadline {
                anyhow::bail!("the service did not stop within 40 s; not deleting it");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    service.delete().context("deleting the service")?;
    tracing::info!(service = config::SERVICE_NAME, "service removed");
    Ok(())
}
