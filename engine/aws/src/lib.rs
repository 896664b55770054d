//! The network half of orgop's model-driven AWS client.
//!
//! [`AwsClient::call`] makes any operation of any loaded service on any (account, region):
//! the model comes from the embedded botocore bundle (or a directory in botocore's layout),
//! the wire format from `orgop-awswire`, and this crate adds everything that touches the
//! outside world: endpoints, credentials and `sts:AssumeRole`, SigV4 signing, HTTP over
//! rustls, retries with jittered backoff, client-side rate limits, pagination and waiters.
//!
//! ```no_run
//! use orgop_aws::{AwsClient, ClientOptions, RoleSpec, Target};
//! use serde_json::json;
//! # async fn demo() -> Result<(), orgop_aws::CallError> {
//! let client = AwsClient::from_env(ClientOptions::default()).await;
//! let target = Target::assume("111122223333", "eu-west-1", RoleSpec::new("OrgOpsAudit"));
//! let volumes = client
//!     .call(&target, "ec2", "DescribeVolumes", json!({"Filters": [{"Name": "status", "Values": ["available"]}]}))
//!     .await?;
//! # let _ = volumes; Ok(()) }
//! ```
#![deny(missing_docs)]

mod bundled;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
pub mod credentials;
pub mod endpoints;
mod http;
pub mod models;
pub mod ratelimit;
pub mod retry;

pub use client::{
    ACCESS_DENIED_CODES, ApiError, AwsClient, CallError, ClientOptions, EXPIRED_CREDENTIALS_CODES,
    Target, sign_request,
};
pub use credentials::{CredentialsError, RoleSpec};
pub use endpoints::Endpoint;
pub use http::{Timeouts, TransportError};
pub use models::{ModelRegistry, Service};
pub use orgop_awswire::{AwsError, ParamError, ParamErrorKind, UnknownName};
pub use ratelimit::RateConfig;
pub use retry::RetryPolicy;

/// Re-exported so callers can build fixed credentials for [`ClientOptions::credentials`].
pub use aws_credential_types::Credentials;
