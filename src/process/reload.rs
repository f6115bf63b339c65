//! Config reload (SIGHUP). Stub until live reload lands: the file is validated and the result
//! logged, nothing is applied.

use std::path::Path;

use crate::admin::AdminState;

/// Re-reads `path`; returns the error text if it does not validate.
pub(super) fn reload(path: &Path, admin: &AdminState) -> Result<(), String> {
    match crate::config::load(path) {
        Ok(_) => {
            admin.record_reload(false);
            tracing::warn!("the config is valid, but live reload is not available yet: restart ringlb to apply it");
            Err("live reload not available yet".into())
        }
        Err(e) => {
            admin.record_reload(false);
            tracing::error!(error = %e, "reload refused: the config does not validate; the old one keeps serving");
            Err(e.to_string())
        }
    }
}
