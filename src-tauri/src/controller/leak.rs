//! "Check for leaks": asks the helper about the session of the profile on screen.

use super::Actor;
use crate::error::{from_client_error, AppError};
use crate::leak::LeakReportView;

impl Actor {
    /// `profile_id`: the profile whose session to check; without one (or when it has no
    /// session) the helper checks your connected session, or reports the direct path.
    pub(super) async fn leak_check(
        &mut self,
        profile_id: Option<String>,
    ) -> Result<LeakReportView, AppError> {
        let session = profile_id.and_then(|id| {
            self.links
                .iter()
                .find(|l| l.profile_id == id)
                .and_then(|l| l.session)
        });
        let socket = self.socket_str();
        let client = self.ensure_client().await?;
        let report = client
            .leak_check(session)
            .await
            .map_err(|e| from_client_error(e, &socket))?;
        Ok(LeakReportView::from(&report))
    }
}
