//! Credentials: the standard chain of `aws-config`, and `sts:AssumeRole` into target
//! accounts with `aws-sdk-sts`.
//!
//! Guarantees: the base credentials come from the same chain as every AWS SDK (environment,
//! `AWS_PROFILE` and the shared config files, web identity, ECS and EC2 metadata, ...), are
//! fetched once and again only when less than five minutes of validity remain;
//! assumed-role credentials are cached per (role ARN, external id) and assumed again when
//! less than five minutes of validity remain; concurrent callers for the same role wait for
//! one `AssumeRole` rather than each making their own; every `AssumeRole` of the run first
//! takes a token from the run-wide `sts:AssumeRole` bucket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::error::ProvideErrorMetadata;

use crate::ratelimit::TokenBucket;

/// How long before expiry cached credentials are refreshed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The role to assume in a target account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleSpec {
    /// A role name (`OrgOpsAudit`, `path/OrgOpsAudit`), made into
    /// `arn:<partition>:iam::<account>:role/<name>`, or a full role ARN used as is.
    pub name: String,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// The session name (default `orgop`).
    pub session_name: Option<String>,
}

impl RoleSpec {
    /// A role by name or ARN, without external id, with the default session name.
    pub fn new(name: impl Into<String>) -> RoleSpec {
        RoleSpec {
            name: name.into(),
            external_id: None,
            session_name: None,
        }
    }

    /// The role ARN in `account` of `partition`.
    pub fn arn(&self, partition: &str, account: &str) -> String {
        if self.name.starts_with("arn:") {
            self.name.clone()
        } else {
            format!(
                "arn:{partition}:iam::{account}:role/{}",
                self.name.trim_start_matches('/')
            )
        }
    }
}

/// The account id of a role ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn" && !parts[4].is_empty()).then(|| parts[4])
}

/// Why credentials could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    /// The standard chain found no credentials (message from aws-config).
    #[error("no AWS credentials: {0}")]
    Chain(String),
    /// `sts:AssumeRole` failed.
    #[error("sts:AssumeRole {role_arn}: {code}: {message}")]
    AssumeRole {
        /// The role that could not be assumed.
        role_arn: String,
        /// The STS error code (`AccessDenied`), or `Transport`.
        code: String,
        /// The message.
        message: String,
    },
}

type RoleKey = (String, Option<String>);
type RoleSlot = Arc<tokio::sync::Mutex<Option<Credentials>>>;

/// Base credentials plus a cache of assumed roles.
pub(crate) struct CredentialSource {
    base: SharedCredentialsProvider,
    base_cache: tokio::sync::Mutex<Option<Credentials>>,
    home_partition: String,
    sts: aws_sdk_sts::Client,
    roles: std::sync::Mutex<HashMap<RoleKey, RoleSlot>>,
    limiter: Arc<TokenBucket>,
}

/// An error and its sources, each once, joined with `: ` (the SDK's own context printer adds
/// Debug dumps of raw responses, too much for a one-line diagnostic).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn fresh(c: &Credentials) -> bool {
    match c.expiry() {
        None => true,
        Some(exp) => exp > SystemTime::now() + REFRESH_MARGIN,
    }
}

impl CredentialSource {
    pub(crate) fn new(
        sdk: &SdkConfig,
        base: SharedCredentialsProvider,
        sts_endpoint: Option<&str>,
        limiter: Arc<TokenBucket>,
    ) -> CredentialSource {
        let mut conf = aws_sdk_sts::config::Builder::from(sdk).credentials_provider(base.clone());
        if let Some(url) = sts_endpoint {
            conf = conf.endpoint_url(url);
        }
        let home_partition = sdk
            .region()
            .map(|r| crate::endpoints::partition_of(r.as_ref()).to_string())
            .unwrap_or_else(|| "aws".to_string());
        CredentialSource {
            base,
            base_cache: tokio::sync::Mutex::new(None),
            home_partition,
            sts: aws_sdk_sts::Client::from_conf(conf.build()),
            roles: std::sync::Mutex::new(HashMap::new()),
            limiter,
        }
    }

    /// The caller's own credentials.
    pub(crate) async fn base(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.base_cache.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let c = self
            .base
            .provide_credentials()
            .await
            .map_err(|e| CredentialsError::Chain(error_chain(&e)))?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// Drops the cached base credentials (the next call fetches them again).
    pub(crate) fn forget_base(&self) {
        if let Ok(mut c) = self.base_cache.try_lock() {
            *c = None;
        }
    }

    /// Drops the cached credentials of a role (the next call assumes it again).
    pub(crate) fn forget_role(&self, role_arn: &str, role: &RoleSpec) {
        let slot = {
            let roles = self.roles.lock().unwrap_or_else(|e| e.into_inner());
            roles
                .get(&(role_arn.to_string(), role.external_id.clone()))
                .cloned()
        };
        if let Some(slot) = slot
            && let Ok(mut c) = slot.try_lock()
        {
            *c = None;
        }
    }

    /// Credentials of `role` (an ARN), assumed once and cached until shortly before expiry.
    /// `region` is the target's: a role in another partition (aws-cn, aws-us-gov) is assumed
    /// through that partition's STS.
    pub(crate) async fn assumed(
        &self,
        role_arn: &str,
        role: &RoleSpec,
        region: &str,
    ) -> Result<Credentials, CredentialsError> {
        let slot = {
            let mut roles = self.roles.lock().unwrap_or_else(|e| e.into_inner());
            roles
                .entry((role_arn.to_string(), role.external_id.clone()))
                .or_default()
                .clone()
        };
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        self.limiter.acquire().await;
        let mut request = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(role.session_name.as_deref().unwrap_or("orgop"))
            .set_external_id(role.external_id.clone())
            .customize();
        if crate::endpoints::partition_of(region) != self.home_partition {
            request = request.config_override(
                aws_sdk_sts::config::Builder::default()
                    .region(aws_config::Region::new(region.to_string())),
            );
        }
        let out = request.send().await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let (code, message) = match e.as_service_error() {
                    Some(se) => (
                        se.code().unwrap_or("Unknown").to_string(),
                        se.message().unwrap_or_default().to_string(),
                    ),
                    None => {
                        if e.raw_response().is_some_and(|r| r.status().as_u16() == 429) {
                            self.limiter.on_throttle();
                        }
                        (
                            orgop_vocab::Code::Transport.name().to_string(),
                            error_chain(&e),
                        )
                    }
                };
                if code.contains("Throttl") {
                    self.limiter.on_throttle();
                }
                return Err(CredentialsError::AssumeRole {
                    role_arn: role_arn.to_string(),
                    code,
                    message,
                });
            }
        };
        self.limiter.on_success();
        let c = out
            .credentials()
            .ok_or_else(|| CredentialsError::AssumeRole {
                role_arn: role_arn.to_string(),
                code: orgop_vocab::Code::NoCredentials.name().to_string(),
                message: "AssumeRole answered without credentials".to_string(),
            })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "orgop-assume-role",
        );
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        let r = RoleSpec::new("OrgOpsAudit");
        assert_eq!(
            r.arn("aws", "111122223333"),
            "arn:aws:iam::111122223333:role/OrgOpsAudit"
        );
        assert_eq!(
            r.arn("aws-cn", "111122223333"),
            "arn:aws-cn:iam::111122223333:role/OrgOpsAudit"
        );
        let full = RoleSpec::new("arn:aws:iam::444455556666:role/x/y");
        assert_eq!(
            full.arn("aws", "111122223333"),
            "arn:aws:iam::444455556666:role/x/y"
        );
        assert_eq!(account_of_arn(&full.name), Some("444455556666"));
        assert_eq!(account_of_arn("nope"), None);
    }

    #[test]
    fn credentials_near_expiry_are_not_fresh() {
        let soon = Credentials::new(
            "a",
            "b",
            None,
            Some(SystemTime::now() + Duration::from_secs(60)),
            "t",
        );
        let later = Credentials::new(
            "a",
            "b",
            None,
            Some(SystemTime::now() + Duration::from_secs(3600)),
            "t",
        );
        assert!(!fresh(&soon));
        assert!(fresh(&later));
        assert!(fresh(&Credentials::new("a", "b", None, None, "t")));
    }
}
