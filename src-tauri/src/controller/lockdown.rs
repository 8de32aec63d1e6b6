//! Lockdown: the helper's "block all traffic while disconnected" setting, read and changed
//! for the Settings toggle and the banner.

use super::Actor;
use crate::error::{from_client_error, AppError};
use crate::lockdown::LockdownView;

impl Actor {
    /// The helper's lockdown; `change` turns it on or off first. A helper without lockdown
    /// answers "unsupported": shown as not offered, not as an error, when only asked.
    pub(super) async fn lockdown(
        &mut self,
        change: Option<ipc::LockdownChange>,
    ) -> Result<LockdownView, AppError> {
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        let res = match change {
            Some(c) => client.set_lockdown(c).await,
            None => client.lockdown_status().await,
        };
        match res {
            Ok(s) => Ok(LockdownView::from(&s)),
            Err(ipc::ClientError::Helper(ipc::IpcError::Unsupported { .. }))
                if change.is_none() =>
            {
                Ok(LockdownView::not_offered())
            }
            Err(e) => Err(from_client_error(e, &socket)),
        }
    }
}
