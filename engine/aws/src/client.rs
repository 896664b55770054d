//! The client the interpreter and the CLI use: any operation of any loaded service, on any
//! (account, region), from JSON parameters to a JSON result.
//!
//! Guarantees: an unknown service, operation or parameter fails before anything is sent
//! (with the close matches and the parameter's path); each attempt is re-signed and first
//! takes a token from the bucket of its (account, region, service); throttling, 5xx,
//! timeouts and connection errors are retried per the [`RetryPolicy`] while the target's
//! retry quota lasts; the error that ends a call says which of validation, service error,
//! access denied, throttled-after-retries or transport it was.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use futures_core::Stream;
use orgop_awswire::{AwsError, ParamError, UnknownName, WaiterState};
use serde_json::Value;

use crate::credentials::{CredentialSource, CredentialsError, RoleSpec};
use crate::endpoints::{self, Endpoint, EndpointOverrides};
use crate::http::{Timeouts, Transport, TransportError};
use crate::models::{LoadError, ModelRegistry, Service};
use crate::ratelimit::{BucketKey, RateConfig, RateLimiters};
use crate::retry::{FailureKind, RetryPolicy, classify};
use orgop_vocab::Code;
use orgop_vocab::aws::{ErrorClass, class_of, class_of_answer};

/// How to build an [`AwsClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The default region (for calls whose target names none and for STS); else the
    /// standard chain's (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// A named profile of the shared config files (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// An endpoint URL for every service (`--endpoint-url`), over the environment's.
    pub endpoint_url: Option<String>,
    /// Extra model directories in botocore's layout (`--models-dir`), over
    /// `ORGOP_MODELS_DIR` and the bundle.
    pub models_dirs: Vec<PathBuf>,
    /// Fixed credentials instead of the standard chain (tests, `--no-sign`-like uses).
    pub credentials: Option<Credentials>,
    /// Retry policy of every call.
    pub retry: RetryPolicy,
    /// Rate of each (account, region, service) bucket.
    pub rate: RateConfig,
    /// Rate of the run-wide `sts:AssumeRole` bucket (AWS's quota is 100/s per account).
    pub assume_role_rate: RateConfig,
    /// Connect and read timeouts.
    pub timeouts: Timeouts,
    /// Use FIPS endpoints (else `AWS_USE_FIPS_ENDPOINT` / the profile's `use_fips_endpoint`).
    pub use_fips: Option<bool>,
    /// Use dual-stack endpoints (else `AWS_USE_DUALSTACK_ENDPOINT` / the profile's).
    pub use_dualstack: Option<bool>,
    /// The most pages one paginated call may take before it is stopped with an error (else
    /// `ORGOP_MAX_PAGES`, else [`DEFAULT_MAX_PAGES`]).
    pub max_pages: Option<u32>,
    /// The largest response body one call reads, in bytes: larger ones are refused as they
    /// stream in, never buffered whole (else `ORGOP_MAX_RESPONSE_BYTES`, else
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: Option<u64>,
    /// The largest object [`AwsClient::get_object`] reads, in bytes (else
    /// `ORGOP_MAX_OBJECT_BYTES`, else [`DEFAULT_MAX_OBJECT_BYTES`]).
    pub max_object_bytes: Option<u64>,
}

/// Pages one paginated call may take by default: 10,000 pages of 1,000 items is ten million
/// resources of one kind in one account and region, past anything real; a service that keeps
/// answering new tokens is stopped there.
pub const DEFAULT_MAX_PAGES: u32 = 10_000;

/// The largest response body of one call by default: 64 MiB. The largest real AWS pages are
/// a few MB (a `DescribeInstances` page of 1,000 instances is about 5-10 MB of XML, a
/// `ListObjectsV2` page of 1,000 keys about 300 KB), so this leaves a tenfold margin while a
/// runaway or hostile body costs at most 64 MiB (per call in flight) before it is refused.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// The largest object [`AwsClient::get_object`] reads by default: 256 MiB. Objects are
/// orgop's own files (a run's `results.jsonl` and `findings.csv`, a distributed Map's items),
/// whose size grows with the organization and its findings rather than with a page size, so
/// they get their own, larger limit (about a million findings rows). The body is held in
/// memory once, as received (never as base64).
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 256 << 20;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            region: None,
            profile: None,
            endpoint_url: None,
            models_dirs: Vec::new(),
            credentials: None,
            retry: RetryPolicy::default(),
            rate: RateConfig::new(20.0, 20.0),
            assume_role_rate: RateConfig::new(50.0, 10.0),
            timeouts: Timeouts::default(),
            use_fips: None,
            use_dualstack: None,
            max_pages: None,
            max_response_bytes: None,
            max_object_bytes: None,
        }
    }
}

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The account (12 digits). With `role`, the account whose role is assumed; without,
    /// only a label for rate limiting (may be empty).
    pub account_id: String,
    /// The region.
    pub region: String,
    /// The role to assume in `account_id`, or `None` for the caller's own credentials.
    pub role: Option<RoleSpec>,
}

impl Target {
    /// The caller's own credentials in `region`.
    pub fn own(region: impl Into<String>) -> Target {
        Target {
            account_id: String::new(),
            region: region.into(),
            role: None,
        }
    }

    /// A role assumed in `account_id`, in `region`.
    pub fn assume(
        account_id: impl Into<String>,
        region: impl Into<String>,
        role: RoleSpec,
    ) -> Target {
        Target {
            account_id: account_id.into(),
            region: region.into(),
            role: Some(role),
        }
    }
}

/// An error answered by AWS for one call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{service}:{operation}: {error}")]
pub struct ApiError {
    /// botocore service name.
    pub service: String,
    /// Operation name.
    pub operation: String,
    /// Code, message, HTTP status, request id and modeled data.
    pub error: AwsError,
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The service name is not known (nothing was sent).
    #[error(transparent)]
    UnknownService(UnknownName),
    /// The operation is not in the service's model (nothing was sent).
    #[error("{service}: {source}")]
    UnknownOperation {
        /// botocore service name.
        service: String,
        /// The unknown operation with close matches.
        source: UnknownName,
    },
    /// The parameters do not fit the operation's input shape (nothing was sent).
    #[error("{service}:{operation}: invalid parameters: {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Validation {
        /// botocore service name.
        service: String,
        /// Operation name.
        operation: String,
        /// Every problem, each with its parameter path.
        errors: Vec<ParamError>,
    },
    /// The service's model file does not load (nothing was sent).
    #[error(transparent)]
    ModelFile(Arc<LoadError>),
    /// The service's model is not one orgop can use, e.g. its protocol (nothing was sent).
    #[error("{service}: {source}")]
    Model {
        /// botocore service name.
        service: String,
        /// What is wrong with the model.
        source: Arc<orgop_awswire::ModelError>,
    },
    /// No endpoint for the service in the region (nothing was sent).
    #[error(transparent)]
    Endpoint(#[from] endpoints::EndpointError),
    /// The region is not a region name (nothing was sent).
    #[error("`{0}` is not a region name (letters, digits and dashes)")]
    Region(String),
    /// The parameters could not be serialized for the protocol (nothing was sent).
    #[error("{service}:{operation}: {source}")]
    Serialize {
        /// botocore service name.
        service: String,
        /// Operation name.
        operation: String,
        /// What could not be serialized.
        source: Arc<orgop_awswire::SerializeError>,
    },
    /// The HTTP request could not be built (a header or URI the HTTP library refuses;
    /// nothing was sent).
    #[error("{service}: cannot build request: {message}")]
    Request {
        /// botocore service name.
        service: String,
        /// What the HTTP library refused.
        message: String,
    },
    /// The waiter is not in the service's `waiters-2.json` (nothing was sent).
    #[error(transparent)]
    UnknownWaiter(UnknownName),
    /// An object body that orgop cannot write or read (not text, not base64).
    #[error("s3://{bucket}/{key}: {message}")]
    Body {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What is wrong with the body.
        message: String,
    },
    /// The service answered with an error.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The service said the caller may not do this.
    #[error("access denied: {0}")]
    AccessDenied(Box<ApiError>),
    /// Still throttled when the retries ran out.
    #[error("throttled after {attempts} attempts: {error}")]
    Throttled {
        /// The last throttling error.
        error: Box<ApiError>,
        /// Attempts made.
        attempts: u32,
    },
    /// The network failed (connection, timeout) on the last attempt.
    #[error("{service}:{operation}: {error} (after {attempts} attempts)")]
    Transport {
        /// botocore service name.
        service: String,
        /// Operation name.
        operation: String,
        /// What failed.
        error: TransportError,
        /// Attempts made.
        attempts: u32,
    },
    /// No credentials, or the role could not be assumed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// A paginated call was stopped: the service repeated a token (it would loop forever), or
    /// the call passed the page limit.
    #[error("{service}:{operation}: {problem}")]
    Pagination {
        /// botocore service name.
        service: String,
        /// Operation name.
        operation: String,
        /// What happened.
        problem: PaginationProblem,
    },
    /// No answer within the call's deadline ([`Timeouts::call`]), every attempt included.
    #[error("{service}:{operation}: no answer within the call deadline of {} s (raise it with ORGOP_CALL_TIMEOUT, in seconds)", .limit.as_secs_f64())]
    Deadline {
        /// botocore service name.
        service: String,
        /// Operation name.
        operation: String,
        /// The deadline.
        limit: Duration,
    },
    /// The response body passed the byte limit: refused from its `Content-Length` before
    /// any of it was read, or as soon as the bytes received passed the limit. Not retried.
    #[error("{service}:{operation}: the response is larger than the limit of {limit} bytes ({}){} (raise it with {setting}, in bytes)", mib(*.limit), .declared.map(|d| format!("; its Content-Length is {d} bytes")).unwrap_or_default())]
    ResponseTooLarge {
        /// botocore service name.
        service: String,
        /// Operation name.
        operation: String,
        /// The limit, in bytes.
        limit: u64,
        /// The `Content-Length` the service declared, when that is what was refused.
        declared: Option<u64>,
        /// The environment variable that raises the limit (`ORGOP_MAX_RESPONSE_BYTES`, or
        /// `ORGOP_MAX_OBJECT_BYTES` for [`AwsClient::get_object`]).
        setting: &'static str,
    },
    /// A waiter reached a failure state, or gave up.
    #[error("waiter {waiter}: {message}")]
    Waiter {
        /// The waiter name.
        waiter: String,
        /// What happened.
        message: String,
    },
}

impl CallError {
    /// The error a call ends with when AWS answered `error` to its last attempt (of
    /// `attempts`): throttled, access denied or a service error, by the code table
    /// (`orgop_vocab::aws`) and the HTTP status. (A live call also reads the model's
    /// `retryable` trait.)
    pub fn answered(
        service: impl Into<String>,
        operation: impl Into<String>,
        error: AwsError,
        attempts: u32,
    ) -> CallError {
        let kind = classify(&error.code, error.status);
        let api = ApiError {
            service: service.into(),
            operation: operation.into(),
            error,
        };
        final_api_error(api, kind, attempts)
    }

    /// True when nothing was sent because the call itself is wrong.
    pub fn is_before_send(&self) -> bool {
        matches!(
            self,
            CallError::UnknownService(_)
                | CallError::UnknownOperation { .. }
                | CallError::Validation { .. }
        ) || self.is_invalid_request()
    }

    /// The request could not be made (model, endpoint, region, serialization, waiter):
    /// the errors reported as `InvalidRequest`, all before anything was sent.
    fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            CallError::ModelFile(_)
                | CallError::Model { .. }
                | CallError::Endpoint(_)
                | CallError::Region(_)
                | CallError::Serialize { .. }
                | CallError::Request { .. }
                | CallError::UnknownWaiter(_)
        )
    }

    /// The AWS error, when the service answered one.
    pub fn aws_error(&self) -> Option<&AwsError> {
        match self {
            CallError::Api(e)
            | CallError::AccessDenied(e)
            | CallError::Throttled { error: e, .. } => Some(&e.error),
            _ => None,
        }
    }

    /// The error code: the service's, or `Transport`, `Validation`, `Credentials`, ...
    pub fn code(&self) -> &str {
        match self {
            CallError::Api(e)
            | CallError::AccessDenied(e)
            | CallError::Throttled { error: e, .. } => &e.error.code,
            CallError::UnknownService(_) => Code::UnknownService.name(),
            CallError::UnknownOperation { .. } => Code::UnknownOperation.name(),
            CallError::Validation { .. } => Code::ValidationError.name(),
            CallError::Transport { .. } => Code::Transport.name(),
            CallError::Credentials(CredentialsError::AssumeRole { code, .. }) => code,
            CallError::Credentials(_) => Code::NoCredentials.name(),
            CallError::Waiter { .. } => Code::WaiterFailed.name(),
            CallError::Pagination { .. } => Code::PaginationError.name(),
            CallError::Deadline { .. } => Code::DeadlineExceeded.name(),
            CallError::ResponseTooLarge { .. } => Code::ResponseTooLarge.name(),
            // The request could not be made (`is_invalid_request`), or an object's body.
            _ => Code::InvalidRequest.name(),
        }
    }
}

/// A byte count in MiB or GiB, for messages.
fn mib(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    }
}

impl From<LoadError> for CallError {
    fn from(e: LoadError) -> CallError {
        match e {
            LoadError::Unknown(u) => CallError::UnknownService(u),
            LoadError::UnknownOperation { service, source } => {
                CallError::UnknownOperation { service, source }
            }
            e @ LoadError::Invalid { .. } => CallError::ModelFile(Arc::new(e)),
        }
    }
}

struct Inner {
    registry: ModelRegistry,
    overrides: EndpointOverrides,
    default_region: String,
    credentials: CredentialSource,
    limiters: RateLimiters,
    retry: RetryPolicy,
    transport: Transport,
    max_pages: u32,
    call_deadline: Duration,
    max_response_bytes: u64,
    max_object_bytes: u64,
}

/// The model-driven AWS client. Cheap to clone; share one per run.
#[derive(Clone)]
pub struct AwsClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("default_region", &self.inner.default_region)
            .finish_non_exhaustive()
    }
}

/// Why a paginated call was stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaginationProblem {
    /// The service answered a token it had answered before.
    #[error(
        "the service answered the pagination token {token} a second time, after {pages} pages: stopped, since following it would never end"
    )]
    RepeatedToken {
        /// The token(s), as JSON.
        token: String,
        /// Pages taken.
        pages: u32,
    },
    /// More pages than the limit.
    #[error("more than {limit} pages: stopped (raise the limit with ORGOP_MAX_PAGES)")]
    PageLimit {
        /// The limit.
        limit: u32,
    },
}

/// What a call's attempts share (see [`AwsClient::dispatch`]).
struct Dispatch<'p> {
    svc: &'p Service,
    op: &'p orgop_awswire::Operation,
    params: &'p Value,
    region: String,
    sign: bool,
    endpoint: Endpoint,
    request: orgop_awswire::HttpRequest,
    url: String,
    host: String,
    /// An S3 region redirect was followed already (once per call).
    redirected: bool,
    /// The largest body an attempt reads, and the variable that raises it.
    body_limit: (u64, &'static str),
    /// An object download: a successful body is handed back as received.
    object: bool,
}

/// How one attempt ended.
enum Answer {
    /// A result, with the HTTP status and, for an object download, the body as received
    /// (the result then holds the headers' members only).
    Parsed(Value, u16, Option<Vec<u8>>),
    /// An error the service answered.
    Failed(AwsError),
    /// No answer: the connection failed or timed out.
    Unreached(TransportError),
}

/// A prepared call: everything resolved and checked, nothing sent.
struct Prepared {
    service: Arc<Service>,
    operation: String,
    /// The parameters after botocore's customizations (see [`customize_params`]).
    params: Value,
    /// Bytes sent as the body instead of the serialized payload (an S3 object that is not
    /// text: parameters carry blobs as UTF-8 strings, so they cannot hold these).
    raw_body: Option<Vec<u8>>,
    /// Absent idempotency tokens are derived from this seed ([`idempotency_token`]) instead
    /// of drawn at random.
    token_seed: Option<String>,
    /// An object download ([`AwsClient::get_object`]): the object limit applies to its body
    /// instead of the response limit, and a successful body is handed back as it came, never
    /// turned into base64 in the result.
    object: bool,
}

impl AwsClient {
    /// A client with credentials and region from the standard chain (environment,
    /// `AWS_PROFILE`, shared config, web identity, container and instance metadata),
    /// endpoints overridable by `AWS_ENDPOINT_URL[_<SERVICE>]` and models from the bundle,
    /// `ORGOP_MODELS_DIR` and `opts.models_dirs`.
    pub async fn from_env(opts: ClientOptions) -> AwsClient {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(c) = &opts.credentials {
            loader = loader.credentials_provider(c.clone());
        }
        let sdk = loader.load().await;
        let default_region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let base = sdk
            .credentials_provider()
            .unwrap_or_else(|| SharedCredentialsProvider::new(Credentials::for_tests()));
        // Without extra directories every client shares the process-wide registry, so a
        // model is parsed once per process however many clients there are.
        let registry = if opts.models_dirs.is_empty() {
            crate::models::global().clone()
        } else {
            let r = ModelRegistry::from_env();
            for d in &opts.models_dirs {
                r.add_dir(d.clone());
            }
            r
        };
        let mut overrides = EndpointOverrides::from_env();
        overrides.endpoint_url = opts.endpoint_url.clone();
        overrides.use_fips = opts.use_fips.or(sdk.use_fips()).unwrap_or(false);
        overrides.use_dualstack = opts.use_dualstack.or(sdk.use_dual_stack()).unwrap_or(false);
        let limiters = RateLimiters::new(opts.rate, opts.assume_role_rate);
        let credentials = CredentialSource::new(
            &sdk,
            base,
            opts.endpoint_url.as_deref(),
            limiters.assume_role(),
        );
        AwsClient {
            inner: Arc::new(Inner {
                registry,
                overrides,
                default_region,
                credentials,
                limiters,
                retry: opts.retry,
                transport: Transport::new(Timeouts {
                    read: env_seconds("ORGOP_READ_TIMEOUT").unwrap_or(opts.timeouts.read),
                    ..opts.timeouts
                }),
                call_deadline: env_seconds("ORGOP_CALL_TIMEOUT").unwrap_or(opts.timeouts.call),
                max_pages: opts
                    .max_pages
                    .or_else(|| std::env::var("ORGOP_MAX_PAGES").ok()?.parse().ok())
                    .unwrap_or(DEFAULT_MAX_PAGES)
                    .max(1),
                max_response_bytes: opts
                    .max_response_bytes
                    .or_else(|| env_bytes("ORGOP_MAX_RESPONSE_BYTES"))
                    .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
                max_object_bytes: opts
                    .max_object_bytes
                    .or_else(|| env_bytes("ORGOP_MAX_OBJECT_BYTES"))
                    .unwrap_or(DEFAULT_MAX_OBJECT_BYTES),
            }),
        }
    }

    /// The largest response body one call reads, in bytes.
    pub fn max_response_bytes(&self) -> u64 {
        self.inner.max_response_bytes
    }

    /// The region used when a caller has none.
    pub fn default_region(&self) -> &str {
        &self.inner.default_region
    }

    /// The model registry (to list services and operations, or check a call offline).
    pub fn models(&self) -> &ModelRegistry {
        &self.inner.registry
    }

    /// Checks a call without sending it: the service, the operation and the parameters.
    pub fn check(&self, service: &str, operation: &str, params: &Value) -> Result<(), CallError> {
        self.prepare(service, operation, params).map(|_| ())
    }

    fn prepare(
        &self,
        service: &str,
        operation: &str,
        params: &Value,
    ) -> Result<Prepared, CallError> {
        let svc = self.inner.registry.resolve(service, operation)?;
        let op = svc
            .operation(operation)
            .map_err(|source| CallError::UnknownOperation {
                service: svc.name.clone(),
                source,
            })?;
        svc.model.protocol().map_err(|e| CallError::Model {
            service: svc.name.clone(),
            source: Arc::new(e),
        })?;
        let params = customize_params(&svc, op, params);
        orgop_awswire::validate(&svc.model, op, &params).map_err(|errors| {
            CallError::Validation {
                service: svc.name.clone(),
                operation: operation.to_string(),
                errors,
            }
        })?;
        Ok(Prepared {
            service: svc,
            operation: operation.to_string(),
            params,
            raw_body: None,
            token_seed: None,
            object: false,
        })
    }

    /// The endpoint a call of `service` in `region` goes to.
    pub fn endpoint(&self, service: &str, region: &str) -> Result<Endpoint, CallError> {
        let svc = self.inner.registry.service(service)?;
        Ok(endpoints::resolve(
            svc.model.metadata(),
            region,
            &self.inner.overrides,
        )?)
    }

    /// Makes one call: `service` as botocore or IAM names it (`ec2`, `elasticloadbalancing`),
    /// `operation` as the API reference spells it, `params` as its JSON input.
    pub async fn call(
        &self,
        target: &Target,
        service: &str,
        operation: &str,
        params: Value,
    ) -> Result<Value, CallError> {
        let prepared = self.prepare(service, operation, &params)?;
        self.send(target, &prepared).await.map(|(v, _)| v)
    }

    /// [`AwsClient::call`] for an action: an idempotency token the parameters leave out (a
    /// top-level `idempotencyToken` member, like `ec2:CreateVolume`'s `ClientToken`) is
    /// derived from `seed` ([`idempotency_token`]) instead of drawn at random, so that the
    /// same action sent again (a retry, a re-driven run) is one request to AWS.
    pub async fn call_with_token_seed(
        &self,
        target: &Target,
        service: &str,
        operation: &str,
        params: Value,
        seed: &str,
    ) -> Result<Value, CallError> {
        let mut prepared = self.prepare(service, operation, &params)?;
        prepared.token_seed = Some(seed.to_string());
        self.send(target, &prepared).await.map(|(v, _)| v)
    }

    /// Writes an object to S3 with the caller's own credentials: the one way orgop writes
    /// objects (result files, the distributed Map's items, deployment artifacts). The body is
    /// sent as it is, text or not (a Lambda zip).
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), CallError> {
        self.put_object_with(bucket, key, body, content_type, serde_json::json!({}))
            .await
            .map(|_| ())
    }

    /// [`AwsClient::put_object`] with more `PutObject` parameters (`Metadata`,
    /// `ServerSideEncryption`, ...); returns the `PutObject` result.
    pub async fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        extra: Value,
    ) -> Result<Value, CallError> {
        let target = Target::own(self.default_region());
        let mut params = serde_json::json!({
            "Bucket": bucket, "Key": key, "ContentType": content_type,
        });
        if let (Value::Object(p), Value::Object(extra)) = (&mut params, extra) {
            for (k, v) in extra {
                p.entry(k).or_insert(v);
            }
        }
        let mut prepared = self.prepare("s3", "PutObject", &params)?;
        prepared.raw_body = Some(body);
        self.send(&target, &prepared).await.map(|(v, _)| v)
    }

    /// Reads an object from S3 with the caller's own credentials: its bytes as received,
    /// at most the object limit ([`ClientOptions::max_object_bytes`]), held in memory once.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, CallError> {
        let target = Target::own(self.default_region());
        let params = serde_json::json!({"Bucket": bucket, "Key": key});
        let mut prepared = self.prepare("s3", "GetObject", &params)?;
        prepared.object = true;
        let (_, _, body) = self.send_full(&target, &prepared).await?;
        Ok(body.unwrap_or_default())
    }

    /// The pages of a paginated operation, driven by the service's `paginators-1.json`; an
    /// operation without a paginator yields its single result. The stream ends after the
    /// first error.
    pub fn pages(
        &self,
        target: &Target,
        service: &str,
        operation: &str,
        params: Value,
    ) -> impl Stream<Item = Result<Value, CallError>> + Send + 'static {
        enum State {
            Start,
            Next(Value),
            /// The walk is stopped: this error comes after the last page.
            Fail(CallError),
            Done,
        }
        struct Walk {
            state: State,
            /// Pages answered so far.
            pages: u32,
            /// The tokens of every page asked for, to stop a service that cycles.
            seen: std::collections::HashSet<String>,
        }
        let client = self.clone();
        let target = target.clone();
        let service = service.to_string();
        let operation = operation.to_string();
        let first = params;
        let start = Walk {
            state: State::Start,
            pages: 0,
            seen: Default::default(),
        };
        futures_util::stream::unfold(start, move |mut walk| {
            let client = client.clone();
            let target = target.clone();
            let service = service.clone();
            let operation = operation.clone();
            let first = first.clone();
            async move {
                let input = match std::mem::replace(&mut walk.state, State::Done) {
                    State::Done => return None,
                    State::Fail(e) => return Some((Err(e), walk)),
                    State::Start => first,
                    State::Next(v) => v,
                };
                let prepared = match client.prepare(&service, &operation, &input) {
                    Ok(p) => p,
                    Err(e) => return Some((Err(e), walk)),
                };
                let out = match client.send(&target, &prepared).await {
                    Ok((out, _)) => out,
                    Err(e) => return Some((Err(e), walk)),
                };
                walk.pages += 1;
                let Some(p) = prepared.service.paginators.get(&prepared.operation) else {
                    return Some((Ok(out), walk));
                };
                let stop = |problem| CallError::Pagination {
                    service: prepared.service.name.clone(),
                    operation: prepared.operation.clone(),
                    problem,
                };
                walk.seen.insert(p.tokens_of(&prepared.params).to_string());
                match p.next_page(&prepared.params, &out) {
                    orgop_awswire::NextPage::Done => {}
                    // The page itself is answered; the error comes after it and ends the walk.
                    orgop_awswire::NextPage::Repeated(token) => {
                        walk.state = State::Fail(stop(PaginationProblem::RepeatedToken {
                            token: token.to_string(),
                            pages: walk.pages,
                        }));
                    }
                    orgop_awswire::NextPage::Input(next) => {
                        let token = p.tokens_of(&next).to_string();
                        walk.state = if walk.seen.contains(&token) {
                            State::Fail(stop(PaginationProblem::RepeatedToken {
                                token,
                                pages: walk.pages,
                            }))
                        } else if walk.pages >= client.inner.max_pages {
                            State::Fail(stop(PaginationProblem::PageLimit {
                                limit: client.inner.max_pages,
                            }))
                        } else {
                            State::Next(next)
                        };
                    }
                }
                Some((Ok(out), walk))
            }
        })
    }

    /// The pages of a call as a list: every page when `paginate` (and the operation has a
    /// paginator), else the single result. The shape the interpreter's `AwsApi` answers.
    pub async fn call_pages(
        &self,
        target: &Target,
        service: &str,
        operation: &str,
        params: Value,
        paginate: bool,
    ) -> Result<Vec<Value>, CallError> {
        use futures_util::StreamExt;
        if !paginate {
            return Ok(vec![self.call(target, service, operation, params).await?]);
        }
        let mut pages = Vec::new();
        let mut stream = std::pin::pin!(self.pages(target, service, operation, params));
        while let Some(p) = stream.next().await {
            pages.push(p?);
        }
        Ok(pages)
    }

    /// Every page of a paginated operation merged into one result, the way
    /// `aws ... --paginate` prints it (result keys concatenated, the last page's other keys).
    pub async fn paginate_all(
        &self,
        target: &Target,
        service: &str,
        operation: &str,
        params: Value,
    ) -> Result<Value, CallError> {
        let svc = self.inner.registry.resolve(service, operation)?;
        let mut pages = self
            .call_pages(target, service, operation, params, true)
            .await?;
        Ok(match svc.paginators.get(operation) {
            Some(p) => p.aggregate(&pages),
            None => pages.pop().unwrap_or(Value::Null),
        })
    }

    /// Waits with a waiter of `waiters-2.json` (`ec2` `VolumeAvailable`): calls its operation
    /// every `delay` seconds until an acceptor says success (returns the last output) or
    /// failure, or `max_attempts` (or `max_wait`) runs out.
    pub async fn wait(
        &self,
        target: &Target,
        service: &str,
        waiter: &str,
        params: Value,
        max_wait: Option<Duration>,
    ) -> Result<Value, CallError> {
        let svc = self.inner.registry.service(service)?;
        let w = svc.waiters.get(waiter).ok_or_else(|| {
            CallError::UnknownWaiter(UnknownName::new("waiter", waiter, svc.waiters.names()))
        })?;
        let prepared = self.prepare(&svc.name, &w.operation, &params)?;
        let started = tokio::time::Instant::now();
        let delay = Duration::from_secs(w.delay.max(1));
        for attempt in 1..=w.max_attempts.max(1) {
            let result = self.send(target, &prepared).await;
            let (status, outcome) = match &result {
                Ok((v, status)) => (*status, Ok(v)),
                Err(e) => match e.aws_error() {
                    Some(a) => (a.status, Err(a)),
                    None => return result.map(|(v, _)| v),
                },
            };
            match w.evaluate(status, outcome) {
                Some(WaiterState::Success) => {
                    return Ok(match result {
                        Ok((v, _)) => v,
                        Err(_) => Value::Null,
                    });
                }
                Some(WaiterState::Failure) => {
                    return Err(CallError::Waiter {
                        waiter: waiter.to_string(),
                        message: match result {
                            Err(e) => format!("failed: {e}"),
                            Ok(_) => "reached a failure state".to_string(),
                        },
                    });
                }
                Some(WaiterState::Retry) | None => {}
            }
            if attempt == w.max_attempts || max_wait.is_some_and(|m| started.elapsed() + delay > m)
            {
                break;
            }
            tokio::time::sleep(delay).await;
        }
        Err(CallError::Waiter {
            waiter: waiter.to_string(),
            message: "gave up waiting".to_string(),
        })
    }

    fn forget_credentials(&self, target: &Target, region: &str) {
        match &target.role {
            None => self.inner.credentials.forget_base(),
            Some(role) => {
                let arn = role.arn(endpoints::partition_of(region), &target.account_id);
                self.inner.credentials.forget_role(&arn, role);
            }
        }
    }

    async fn credentials_for(
        &self,
        target: &Target,
        region: &str,
    ) -> Result<Credentials, CallError> {
        match &target.role {
            None => Ok(self.inner.credentials.base().await?),
            Some(role) => {
                let arn = role.arn(endpoints::partition_of(region), &target.account_id);
                Ok(self.inner.credentials.assumed(&arn, role, region).await?)
            }
        }
    }

    /// Sends a prepared call with retries; returns the parsed output and HTTP status.
    async fn send(&self, target: &Target, prepared: &Prepared) -> Result<(Value, u16), CallError> {
        self.send_full(target, prepared)
            .await
            .map(|(v, status, _)| (v, status))
    }

    /// [`AwsClient::send`], with an object download's body.
    async fn send_full(
        &self,
        target: &Target,
        prepared: &Prepared,
    ) -> Result<(Value, u16, Option<Vec<u8>>), CallError> {
        let limit = self.inner.call_deadline;
        tokio::time::timeout(limit, self.send_with_retries(target, prepared))
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Deadline {
                    service: prepared.service.name.clone(),
                    operation: prepared.operation.clone(),
                    limit,
                })
            })
    }

    /// [`AwsClient::send`] without its deadline: the retry loop.
    async fn send_with_retries(
        &self,
        target: &Target,
        prepared: &Prepared,
    ) -> Result<(Value, u16, Option<Vec<u8>>), CallError> {
        let mut call = self.dispatch(target, prepared)?;
        let key = BucketKey {
            account: target.account_id.clone(),
            region: call.region.clone(),
            service: call.svc.name.clone(),
        };
        let bucket = self.inner.limiters.bucket(key.clone());
        let quota = self.inner.limiters.retry_quota(key);
        let retry = self.inner.retry;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt(target, &mut call, &bucket).await? {
                Answer::Parsed(v, status, body) => {
                    bucket.on_success();
                    quota.on_success();
                    return Ok((v, status, body));
                }
                Answer::Failed(error) => {
                    let (kind, fresh_try) = self.failure_kind(target, &call, &error, attempts);
                    if kind == FailureKind::Throttling {
                        bucket.on_throttle();
                    }
                    if !(fresh_try
                        || (retry.should_retry(kind, attempts) && quota.try_acquire(kind)))
                    {
                        let api = ApiError {
                            service: call.svc.name.clone(),
                            operation: call.op.name.clone(),
                            error,
                        };
                        return Err(final_api_error(api, kind, attempts));
                    }
                }
                Answer::Unreached(error) => {
                    let kind = FailureKind::Transport;
                    // A mutating call whose request may have reached the server is not sent
                    // again: it may have acted already (a snapshot taken twice), and most AWS
                    // APIs have no idempotency token. Its outcome is unknown to the caller.
                    let unsafe_to_repeat = orgop_vocab::verbs::is_mutating(&call.op.name)
                        && error.may_have_reached_server();
                    if unsafe_to_repeat
                        || !(retry.should_retry(kind, attempts) && quota.try_acquire(kind))
                    {
                        return Err(CallError::Transport {
                            service: call.svc.name.clone(),
                            operation: call.op.name.clone(),
                            error,
                            attempts,
                        });
                    }
                }
            }
            tokio::time::sleep(retry.backoff(attempts)).await;
        }
    }

    /// Everything a call's attempts share: the region, the endpoint, the serialized request
    /// and its URL. Fails, before anything is sent, on a bad region, an endpoint that cannot
    /// be resolved or parameters that cannot be serialized.
    fn dispatch<'p>(
        &self,
        target: &Target,
        prepared: &'p Prepared,
    ) -> Result<Dispatch<'p>, CallError> {
        let svc = &*prepared.service;
        let params = &prepared.params;
        let op =
            svc.operation(&prepared.operation)
                .map_err(|source| CallError::UnknownOperation {
                    service: svc.name.clone(),
                    source,
                })?;
        let region = if target.region.is_empty() {
            self.inner.default_region.clone()
        } else {
            target.region.clone()
        };
        if !valid_region(&region) {
            return Err(CallError::Region(region));
        }
        let endpoint = endpoints::resolve(svc.model.metadata(), &region, &self.inner.overrides)?;
        let serialized = match &prepared.token_seed {
            Some(seed) => {
                let mut n = 0u32;
                orgop_awswire::serialize_with_token(&svc.model, op, params, &mut || {
                    n += 1;
                    idempotency_token(seed, n)
                })
            }
            None => orgop_awswire::serialize(&svc.model, op, params),
        };
        let mut request = serialized.map_err(|e| CallError::Serialize {
            service: svc.name.clone(),
            operation: op.name.clone(),
            source: Arc::new(e),
        })?;
        if let Some(body) = &prepared.raw_body {
            request.body.clone_from(body);
        }
        add_required_checksum(op, &mut request);
        if svc.name == "apigateway" && request.header("Accept").is_none() {
            // API Gateway answers HAL unless asked for JSON (botocore's add_accept_header).
            request
                .headers
                .push(("Accept".to_string(), "application/json".to_string()));
        }
        let (url, host) = build_url(&svc.name, &endpoint, &request, params)?;
        Ok(Dispatch {
            svc,
            op,
            params,
            region,
            sign: !matches!(op.authtype.as_deref(), Some("none"))
                && !op.auth.iter().any(|a| a == "smithy.api#noAuth"),
            endpoint,
            request,
            url,
            host,
            redirected: false,
            object: prepared.object,
            body_limit: if prepared.object {
                (self.inner.max_object_bytes, "ORGOP_MAX_OBJECT_BYTES")
            } else {
                (self.inner.max_response_bytes, "ORGOP_MAX_RESPONSE_BYTES")
            },
        })
    }

    /// One attempt: credentials, a token from the target's bucket, a fresh signature, the
    /// request, the parsed answer. An S3 bucket in another region is followed once, within
    /// the same attempt (botocore's S3RegionRedirector does not count it as a retry either).
    async fn attempt(
        &self,
        target: &Target,
        call: &mut Dispatch<'_>,
        bucket: &crate::ratelimit::TokenBucket,
    ) -> Result<Answer, CallError> {
        loop {
            let creds = self.credentials_for(target, &call.region).await?;
            bucket.acquire().await;
            let http_req = signed_request(
                &call.svc.name,
                &call.endpoint,
                &call.request,
                &call.url,
                &call.host,
                call.sign.then_some((&creds, SystemTime::now())),
            )?;
            let (limit, setting) = call.body_limit;
            let resp = match self.inner.transport.send_limited(http_req, limit).await {
                Ok(resp) => resp,
                // The same answer would come again: not retried.
                Err(TransportError::BodyTooLarge { limit, declared }) => {
                    return Err(CallError::ResponseTooLarge {
                        service: call.svc.name.clone(),
                        operation: call.op.name.clone(),
                        limit,
                        declared,
                        setting,
                    });
                }
                Err(e) => return Ok(Answer::Unreached(e)),
            };
            if call.object && resp.status < 300 {
                // The headers' members are parsed; the body is handed back untouched.
                let mut resp = resp;
                let body = std::mem::take(&mut resp.body);
                return Ok(
                    match orgop_awswire::parse(&call.svc.model, call.op, &resp) {
                        Ok(v) => Answer::Parsed(v, resp.status, Some(body)),
                        Err(error) => Answer::Failed(error),
                    },
                );
            }
            let error = match orgop_awswire::parse(&call.svc.model, call.op, &resp) {
                Ok(v) => return Ok(Answer::Parsed(v, resp.status, None)),
                Err(error) => error,
            };
            let Some(bucket_region) =
                s3_region_redirect(&call.svc.name, &resp, &call.endpoint, call.redirected)
            else {
                return Ok(Answer::Failed(error));
            };
            // Sign for (and, unless the endpoint is overridden, send to) the bucket's region.
            call.redirected = true;
            let moved = endpoints::resolve(
                call.svc.model.metadata(),
                &bucket_region,
                &self.inner.overrides,
            )?;
            call.endpoint = Endpoint {
                signing_region: bucket_region,
                ..moved
            };
            (call.url, call.host) =
                build_url(&call.svc.name, &call.endpoint, &call.request, call.params)?;
        }
    }

    /// How an answered error is retried: its class (codes, then the model's `retryable`
    /// trait), and whether it earns one fresh try whatever the policy says (credentials that
    /// expired early: revoked session, clock skew; the cached ones are dropped).
    fn failure_kind(
        &self,
        target: &Target,
        call: &Dispatch<'_>,
        error: &AwsError,
        attempts: u32,
    ) -> (FailureKind, bool) {
        if class_of(&error.code) == Some(ErrorClass::ExpiredCredentials) {
            self.forget_credentials(target, &call.region);
            return (FailureKind::Transient, attempts == 1);
        }
        (classify_with_model(&call.svc.model, call.op, error), false)
    }
}

/// A positive number of seconds from the environment; anything else (absent, not a number,
/// zero, negative, too large for a `Duration`) is ignored, never a panic.
fn env_seconds(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// The region S3 says a bucket lives in, when a request went to the wrong one (301, 307 or
/// 400 with `x-amz-bucket-region`) and has not been redirected yet.
fn s3_region_redirect(
    service: &str,
    resp: &orgop_awswire::HttpResponse,
    endpoint: &Endpoint,
    redirected: bool,
) -> Option<String> {
    if service != "s3" || redirected || !matches!(resp.status, 301 | 307 | 400) {
        return None;
    }
    let region = resp.header("x-amz-bucket-region")?;
    (region != endpoint.signing_region && valid_region(region)).then(|| region.to_string())
}

/// botocore's parameter customizations that runbook authors rely on, applied before
/// validation: Route 53 ids are accepted as the API returns them (`/hostedzone/Z123`,
/// `/change/C123`, `/delegationset/N123`) and sent bare.
fn customize_params(svc: &Service, op: &orgop_awswire::Operation, params: &Value) -> Value {
    let mut params = params.clone();
    if svc.name != "route53" {
        return params;
    }
    let Some(input) = op
        .input
        .as_ref()
        .and_then(|r| svc.model.shape(&r.shape))
        .and_then(orgop_awswire::Shape::as_structure)
    else {
        return params;
    };
    if let Value::Object(map) = &mut params {
        for (name, member) in &input.members {
            if matches!(
                member.shape.as_str(),
                "ResourceId" | "DelegationSetId" | "ChangeId"
            ) && let Some(Value::String(v)) = map.get_mut(name)
                && let Some((_, bare)) = v.rsplit_once('/')
            {
                *v = bare.to_string();
            }
        }
    }
    params
}

/// The `n`th idempotency token of an action whose seed is `seed`: SHA-256 of both, shaped as
/// a UUID (version 8, the RFC 9562 form for custom content), 36 characters, which every AWS
/// token member accepts (EC2's `ClientToken` takes up to 64 ASCII characters).
pub fn idempotency_token(seed: &str, n: u32) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"orgop-idempotency-token\n");
    h.update(seed.as_bytes());
    h.update(format!("\n{n}").as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A positive byte count from the environment variable `name`.
fn env_bytes(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
}

/// Whether a region name is safe to put in a host name.
fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 63
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The retry class of an error: the SDKs' code and status lists, then the model's
/// `retryable` trait on the error shape (`{"retryable": {"throttling": true}}`).
fn classify_with_model(
    model: &orgop_awswire::ServiceModel,
    op: &orgop_awswire::Operation,
    error: &AwsError,
) -> FailureKind {
    let by_code = classify(&error.code, error.status);
    if by_code != FailureKind::Permanent {
        return by_code;
    }
    match model
        .error_shape(op, &error.code)
        .and_then(|(_, s)| s.retryable.as_ref())
    {
        Some(r) if r.throttling => FailureKind::Throttling,
        Some(_) => FailureKind::Transient,
        None => FailureKind::Permanent,
    }
}

/// Operations that require a request checksum (`httpChecksumRequired`, or
/// `httpChecksum.requestChecksumRequired`, e.g. S3 `DeleteObjects`) get a CRC32 checksum
/// header, as botocore sends by default, unless the caller supplied one.
fn add_required_checksum(op: &orgop_awswire::Operation, request: &mut orgop_awswire::HttpRequest) {
    use base64::Engine;
    let required = op.http_checksum_required
        || op
            .http_checksum
            .as_ref()
            .is_some_and(|c| c.request_checksum_required);
    let present = request.headers.iter().any(|(k, _)| {
        let k = k.to_ascii_lowercase();
        k == "content-md5" || k.starts_with("x-amz-checksum-")
    });
    if !required || present {
        return;
    }
    let crc = crc32fast::hash(&request.body);
    let value = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
    request
        .headers
        .push(("x-amz-checksum-crc32".to_string(), value));
    request.headers.push((
        "x-amz-sdk-checksum-algorithm".to_string(),
        "CRC32".to_string(),
    ));
}

fn final_api_error(api: ApiError, kind: FailureKind, attempts: u32) -> CallError {
    let api = Box::new(api);
    if kind == FailureKind::Throttling {
        CallError::Throttled {
            error: api,
            attempts,
        }
    } else if class_of_answer(&api.error.code, api.error.status) == Some(ErrorClass::Denied) {
        CallError::AccessDenied(api)
    } else {
        CallError::Api(api)
    }
}

/// Whether an S3 bucket name can be a DNS label of a virtual-hosted URL.
fn dns_compatible_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !b.starts_with('-')
        && !b.ends_with('-')
}

fn is_ip_or_localhost(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok() || h.starts_with('[')
}

/// The full URL and Host header of a request: host prefix, S3 virtual-host addressing
/// (path-style when the endpoint is overridden or the bucket is not DNS-compatible).
fn build_url(
    service: &str,
    endpoint: &Endpoint,
    request: &orgop_awswire::HttpRequest,
    params: &Value,
) -> Result<(String, String), CallError> {
    let (scheme, rest) = endpoint
        .url
        .split_once("://")
        .ok_or_else(|| CallError::Request {
            service: service.to_string(),
            message: format!("endpoint `{}` has no scheme", endpoint.url),
        })?;
    let (authority, base_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut host = authority.to_string();
    let mut path = request.path_and_query.clone();
    if service == "s3"
        && !endpoint.overridden
        && let Some(bucket) = params.get("Bucket").and_then(Value::as_str)
        && dns_compatible_bucket(bucket)
    {
        let prefix = format!("/{bucket}");
        if let Some(rest) = path.strip_prefix(&prefix)
            && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        {
            host = format!("{bucket}.{host}");
            path = if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("/{rest}")
            };
        }
    }
    if let Some(prefix) = &request.host_prefix
        && !is_ip_or_localhost(&host)
    {
        host = format!("{prefix}{host}");
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok((format!("{scheme}://{host}{base_path}{path}"), host))
}

/// The signed HTTP request for a serialized call, exactly as [`AwsClient::call`] sends it:
/// the URL from `endpoint` (with host prefix and S3 virtual-host addressing), then SigV4 with
/// `creds` at the current time. `params` are the call's parameters (S3's `Bucket`). For
/// dry runs, debugging and benchmarks; sending is the caller's business.
pub fn sign_request(
    service: &str,
    endpoint: &Endpoint,
    request: &orgop_awswire::HttpRequest,
    params: &Value,
    creds: &Credentials,
) -> Result<http::Request<Vec<u8>>, CallError> {
    sign_request_at(service, endpoint, request, params, creds, SystemTime::now())
}

/// [`sign_request`] at a given time (for reproducible signatures).
pub fn sign_request_at(
    service: &str,
    endpoint: &Endpoint,
    request: &orgop_awswire::HttpRequest,
    params: &Value,
    creds: &Credentials,
    time: SystemTime,
) -> Result<http::Request<Vec<u8>>, CallError> {
    let (url, host) = build_url(service, endpoint, request, params)?;
    signed_request(service, endpoint, request, &url, &host, Some((creds, time)))
}

/// Builds the HTTP request and signs it with SigV4 (S3: single URI encoding, no path
/// normalization, `x-amz-content-sha256`).
fn signed_request(
    service: &str,
    endpoint: &Endpoint,
    request: &orgop_awswire::HttpRequest,
    url: &str,
    host: &str,
    creds: Option<(&Credentials, SystemTime)>,
) -> Result<http::Request<Vec<u8>>, CallError> {
    let invalid = |message: String| CallError::Request {
        service: service.to_string(),
        message,
    };
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length")
        })
        .cloned()
        .collect();
    headers.push(("host".to_string(), host.to_string()));
    headers.push((
        "user-agent".to_string(),
        concat!("orgop/", env!("CARGO_PKG_VERSION")).to_string(),
    ));
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(url);
    for (k, v) in &headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let mut req = builder
        .body(request.body.clone())
        .map_err(|e| invalid(e.to_string()))?;
    let Some((creds, time)) = creds else {
        return Ok(req);
    };
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let identity: Identity = creds.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&endpoint.signing_region)
        .name(&endpoint.signing_name)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| invalid(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method.as_str(),
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| invalid(e.to_string()))?;
    let (instructions, _sig) = sign(signable, &params)
        .map_err(|e| invalid(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut req);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str, overridden: bool) -> Endpoint {
        Endpoint {
            url: url.to_string(),
            signing_region: "us-east-1".into(),
            signing_name: "s3".into(),
            partition: "aws".into(),
            overridden,
        }
    }

    fn req(path: &str) -> orgop_awswire::HttpRequest {
        orgop_awswire::HttpRequest {
            method: "GET".into(),
            path_and_query: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn s3_is_virtual_hosted_unless_overridden() {
        let p = serde_json::json!({"Bucket": "my-bucket", "Key": "a/b.txt"});
        let (url, host) = build_url(
            "s3",
            &ep("https://s3.us-east-1.amazonaws.com", false),
            &req("/my-bucket/a/b.txt"),
            &p,
        )
        .unwrap();
        assert_eq!(url, "https://my-bucket.s3.us-east-1.amazonaws.com/a/b.txt");
        assert_eq!(host, "my-bucket.s3.us-east-1.amazonaws.com");
        let (url, _) = build_url(
            "s3",
            &ep("https://s3.us-east-1.amazonaws.com", false),
            &req("/my-bucket?list-type=2"),
            &p,
        )
        .unwrap();
        assert_eq!(
            url,
            "https://my-bucket.s3.us-east-1.amazonaws.com/?list-type=2"
        );
        let (url, _) = build_url(
            "s3",
            &ep("http://127.0.0.1:5000", true),
            &req("/my-bucket/a/b.txt"),
            &p,
        )
        .unwrap();
        assert_eq!(url, "http://127.0.0.1:5000/my-bucket/a/b.txt");
        let dotted = serde_json::json!({"Bucket": "my.bucket"});
        let (url, _) = build_url(
            "s3",
            &ep("https://s3.us-east-1.amazonaws.com", false),
            &req("/my.bucket"),
            &dotted,
        )
        .unwrap();
        assert_eq!(url, "https://s3.us-east-1.amazonaws.com/my.bucket");
    }

    #[test]
    fn host_prefixes_apply_except_to_ip_endpoints() {
        let mut r = req("/");
        r.host_prefix = Some("data.".into());
        let v = serde_json::json!({});
        let (url, _) = build_url(
            "x",
            &ep("https://svc.us-east-1.amazonaws.com", false),
            &r,
            &v,
        )
        .unwrap();
        assert_eq!(url, "https://data.svc.us-east-1.amazonaws.com/");
        let (url, _) = build_url("x", &ep("http://127.0.0.1:5000", true), &r, &v).unwrap();
        assert_eq!(url, "http://127.0.0.1:5000/");
    }

    #[test]
    fn s3_requests_carry_the_payload_hash() {
        let creds = Credentials::new("AKID", "SECRET", None, None, "test");
        let r = orgop_awswire::HttpRequest {
            method: "PUT".into(),
            path_and_query: "/b/k".into(),
            body: b"hello".to_vec(),
            ..Default::default()
        };
        let e = ep("http://127.0.0.1:1", true);
        let signed = signed_request(
            "s3",
            &e,
            &r,
            "http://127.0.0.1:1/b/k",
            "127.0.0.1:1",
            Some((&creds, SystemTime::now())),
        )
        .unwrap();
        assert_eq!(
            signed.headers()["x-amz-content-sha256"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let auth = signed.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
        let ec2 = signed_request(
            "ec2",
            &e,
            &r,
            "http://127.0.0.1:1/b/k",
            "127.0.0.1:1",
            Some((&creds, SystemTime::now())),
        )
        .unwrap();
        assert!(!ec2.headers().contains_key("x-amz-content-sha256"));
    }
}
