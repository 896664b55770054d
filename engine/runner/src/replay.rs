//! A recorded organization, for offline runs and tests: `ROOT/org/` holds the Organizations
//! recordings, `ROOT/<account>/<region>/` each item's (placebo layout, see
//! [`orgop_exec::ReplayApi`]). A file `ROOT/<account>/assume-role-error.json` holding
//! `{"Error": {"Code": .., "Message": ..}}` makes assuming the role into that account fail.
use crate::run::Connector;
use orgop_exec::{ApiError, ReplayApi};
use orgop_plan::RolePlan;
use serde_json::Value;
use std::path::PathBuf;

/// Sessions answered from recordings.
#[derive(Debug, Clone)]
pub struct ReplayConnector {
    root: PathBuf,
}

impl ReplayConnector {
    /// Replays the organization recorded under `root`.
    pub fn new(root: impl Into<PathBuf>) -> ReplayConnector {
        ReplayConnector { root: root.into() }
    }
}

impl Connector for ReplayConnector {
    type Api = ReplayApi;

    async fn org(&self) -> Result<ReplayApi, ApiError> {
        Ok(ReplayApi::new(self.root.join("org")))
    }

    async fn item(
        &self,
        account_id: &str,
        region: &str,
        _role: &RolePlan,
    ) -> Result<ReplayApi, ApiError> {
        let refusal = self.root.join(account_id).join("assume-role-error.json");
        if let Ok(text) = std::fs::read_to_string(&refusal) {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            let code = v
                .pointer("/Error/Code")
                .and_then(Value::as_str)
                .unwrap_or("AccessDenied");
            let message = v
                .pointer("/Error/Message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(ApiError::from_code(code, message));
        }
        Ok(ReplayApi::new(self.root.join(account_id).join(region)))
    }

    async fn own(&self, account_id: &str, region: &str) -> Result<ReplayApi, ApiError> {
        Ok(ReplayApi::new(self.root.join(account_id).join(region)))
    }
}
