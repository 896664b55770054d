//! Sessions on real AWS (or an emulator behind `--endpoint-url`), through the model-driven
//! client: the caller's own credentials for Organizations, `sts:AssumeRole` per target.
use crate::run::Connector;
use orgop_aws::{AwsClient, CallError, RoleSpec, Target};
use orgop_exec::{ApiError, AwsApi, Call, ErrorKind};
use orgop_plan::RolePlan;
use serde_json::Value;

/// The client bound to one target.
#[derive(Debug, Clone)]
pub struct LiveApi {
    client: AwsClient,
    target: Target,
}

impl LiveApi {
    /// `client` calling as `target`.
    pub fn new(client: AwsClient, target: Target) -> LiveApi {
        LiveApi { client, target }
    }
}

/// The interpreter's view of a client error: the client's own decision where it made one
/// (denied, throttled after retries, transport, refused before sending), else the code's
/// class in the one table, exactly as a replayed recording of the same code is classified.
pub fn api_error(e: &CallError) -> ApiError {
    let kind = match e {
        CallError::AccessDenied(_) => ErrorKind::Denied,
        CallError::Throttled { .. } => ErrorKind::Throttled,
        CallError::Transport { .. } | CallError::Deadline { .. } => ErrorKind::Transport,
        e if e.is_before_send() => ErrorKind::Invalid,
        CallError::Credentials(orgop_aws::CredentialsError::Chain(_)) => ErrorKind::Denied,
        e => orgop_exec::classify(e.code()),
    };
    let message = match e.aws_error() {
        Some(a) => a.message.clone(),
        None => e.to_string(),
    };
    ApiError {
        code: e.code().to_string(),
        message,
        kind,
    }
}

impl AwsApi for LiveApi {
    async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        self.client
            .call_pages(
                &self.target,
                call.service,
                call.operation,
                call.params.clone(),
                call.paginate,
            )
            .await
            .map_err(|e| api_error(&e))
    }

    async fn pause(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await
    }

    async fn call_action(&self, call: Call<'_>, seed: &str) -> Result<Vec<Value>, ApiError> {
        self.client
            .call_with_token_seed(
                &self.target,
                call.service,
                call.operation,
                call.params.clone(),
                seed,
            )
            .await
            .map(|v| vec![v])
            .map_err(|e| api_error(&e))
    }
}

/// Opens live sessions.
#[derive(Debug, Clone)]
pub struct LiveConnector {
    client: AwsClient,
}

impl LiveConnector {
    /// Sessions from `client` (its credentials, region and endpoint overrides).
    pub fn new(client: AwsClient) -> LiveConnector {
        LiveConnector { client }
    }
}

impl Connector for LiveConnector {
    type Api = LiveApi;

    async fn org(&self) -> Result<LiveApi, ApiError> {
        Ok(LiveApi::new(
            self.client.clone(),
            Target::own(self.client.default_region()),
        ))
    }

    async fn item(
        &self,
        account_id: &str,
        region: &str,
        role: &RolePlan,
    ) -> Result<LiveApi, ApiError> {
        let spec = RoleSpec {
            name: role.name.clone(),
            external_id: role.external_id.clone(),
            session_name: Some(role.session_name.clone()),
        };
        // A global runbook's items say `global`; its calls are signed for `us-east-1`.
        let region = orgop_plan::contract::client_region(region);
        Ok(LiveApi::new(
            self.client.clone(),
            Target::assume(account_id, region, spec),
        ))
    }

    async fn own(&self, _account_id: &str, region: &str) -> Result<LiveApi, ApiError> {
        let region = orgop_plan::contract::client_region(region);
        Ok(LiveApi::new(self.client.clone(), Target::own(region)))
    }

    fn home_region(&self) -> String {
        self.client.default_region().to_string()
    }
}
