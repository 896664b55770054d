//! The handlers' dependencies on AWS: S3 and SNS through the model-driven client, DynamoDB
//! through aws-sdk-dynamodb, the Slack webhook through the client's HTTP transport,
//! configured from the Lambda's environment.
use crate::handlers::Deps;
use crate::store::{
    ApprovalNotice, DynamoStore, Notifier, NotifyError, NotifyErrorKind, ObjectStore, RunNotice,
    StoreError, StoreErrorKind,
};
use orgop_aws::{AwsClient, CallError, ClientOptions, Target, Timeouts, Transport};
use orgop_runner::LiveConnector;
use serde_json::json;
use std::sync::Arc;

/// S3 objects through the model-driven client, with the function's own credentials.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: AwsClient,
}

impl S3Objects {
    /// Objects through `client`.
    pub fn new(client: AwsClient) -> S3Objects {
        S3Objects { client }
    }
}

fn store_error(e: CallError) -> StoreError {
    let kind = match e {
        CallError::Throttled { .. } => StoreErrorKind::Throttled,
        CallError::Transport { .. } => StoreErrorKind::Transient,
        _ => StoreErrorKind::Permanent,
    };
    StoreError::new(kind, e.to_string()).with_source(e)
}

impl ObjectStore for S3Objects {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object(bucket, key, body, content_type)
            .await
            .map_err(store_error)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        self.client
            .get_object(bucket, key)
            .await
            .map_err(store_error)
    }
}

/// Publishes a run's summary to an SNS topic (`sns:Publish` with the function's credentials,
/// in the topic's region).
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: AwsClient,
    topic_arn: String,
}

impl SnsTopic {
    /// Publishes to `topic_arn` through `client`.
    pub fn new(client: AwsClient, topic_arn: impl Into<String>) -> SnsTopic {
        SnsTopic {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl Notifier for SnsTopic {
    async fn notify(&self, notice: &RunNotice) -> Result<(), NotifyError> {
        let message = serde_json::to_string_pretty(&notice.summary).unwrap_or_default();
        self.publish(&notice.subject, &message).await
    }

    async fn approval(&self, notice: &ApprovalNotice) -> Result<(), NotifyError> {
        self.publish(&notice.subject, &notice.text).await
    }
}

impl SnsTopic {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), NotifyError> {
        let topic = &self.topic_arn;
        let region = topic
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .unwrap_or(self.client.default_region())
            .to_string();
        let subject: String = subject.chars().take(100).collect();
        self.client
            .call(
                &Target::own(region),
                "sns",
                "Publish",
                json!({"TopicArn": topic, "Subject": subject, "Message": message}),
            )
            .await
            .map(|_| ())
            .map_err(|e| NotifyError {
                kind: if matches!(e, CallError::Throttled { .. }) {
                    NotifyErrorKind::Throttled
                } else {
                    NotifyErrorKind::Transient
                },
                message: format!("notifying {topic}: {e}"),
            })
    }
}

/// Posts a run's summary line to a Slack incoming webhook. The URL is a secret: it is never
/// printed, in errors or in `Debug`.
#[derive(Clone)]
pub struct SlackWebhook {
    transport: Transport,
    url: String,
}

impl std::fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackWebhook(<redacted>)")
    }
}

impl SlackWebhook {
    /// Posts to `url` through its own connection pool.
    pub fn new(url: impl Into<String>) -> SlackWebhook {
        SlackWebhook {
            transport: Transport::new(Timeouts::default()),
            url: url.into(),
        }
    }
}

impl Notifier for SlackWebhook {
    async fn notify(&self, notice: &RunNotice) -> Result<(), NotifyError> {
        self.post(&notice.text()).await
    }

    async fn approval(&self, notice: &ApprovalNotice) -> Result<(), NotifyError> {
        self.post(&format!("{}\n{}", notice.subject, notice.text))
            .await
    }
}

impl SlackWebhook {
    async fn post(&self, text: &str) -> Result<(), NotifyError> {
        let transient = |message: String| NotifyError {
            kind: NotifyErrorKind::Transient,
            message,
        };
        let body = serde_json::to_vec(&json!({ "text": text })).unwrap_or_default();
        let req = http::Request::builder()
            .method("POST")
            .uri(&self.url)
            .header("content-type", "application/json")
            .header("host", self.url.split('/').nth(2).unwrap_or_default())
            .body(body)
            .map_err(|e| transient(format!("the Slack webhook URL is not valid: {e}")))?;
        match self.transport.send(req).await {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) if r.status == 429 => Err(NotifyError {
                kind: NotifyErrorKind::Throttled,
                message: "the Slack webhook answered HTTP 429".into(),
            }),
            Ok(r) => Err(transient(format!(
                "the Slack webhook answered HTTP {}",
                r.status
            ))),
            Err(e) => Err(transient(format!("the Slack webhook: {e}"))),
        }
    }
}

/// The configured notifications: Slack, then SNS, each optional.
#[derive(Debug, Clone, Default)]
pub struct LiveNotifier {
    /// `ORGOP_SLACK_WEBHOOK_URL`.
    pub slack: Option<SlackWebhook>,
    /// `ORGOP_SNS_TOPIC_ARN`.
    pub sns: Option<SnsTopic>,
}

impl Notifier for LiveNotifier {
    async fn notify(&self, notice: &RunNotice) -> Result<(), NotifyError> {
        self.slack.notify(notice).await?;
        self.sns.notify(notice).await
    }

    async fn approval(&self, notice: &ApprovalNotice) -> Result<(), NotifyError> {
        self.slack.approval(notice).await?;
        self.sns.approval(notice).await
    }
}

/// Why the Lambda cannot start: a setting it needs is missing from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSetting {
    /// The environment variable.
    pub name: &'static str,
    /// What it is for.
    pub purpose: &'static str,
    /// It is set, to a value that cannot be used.
    pub invalid: bool,
}

impl std::fmt::Display for MissingSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let problem = if self.invalid {
            "is not valid"
        } else {
            "is not set"
        };
        write!(f, "{} {problem}: {}", self.name, self.purpose)
    }
}

impl std::error::Error for MissingSetting {}

/// The live dependencies, from the environment: credentials, region and `AWS_ENDPOINT_URL`
/// as every AWS SDK reads them; `ORGOP_RESULTS_TABLE` (required), `ORGOP_RESULTS_BUCKET`,
/// `ORGOP_SNS_TOPIC_ARN`, `ORGOP_SLACK_WEBHOOK_URL`, `ORGOP_RESULTS_TTL_DAYS` (days a result
/// is kept in the table: its TTL attribute `expires_at`; a value that is not a whole number of
/// days is an error, not ignored), `ORGOP_LOCK_TTL_SECONDS` (an applying execution's lock
/// lifetime, default [`orgop_lock::EXECUTION_TTL_SECS`]).
pub async fn deps_from_env()
-> Result<Deps<LiveConnector, DynamoStore<S3Objects>, S3Objects, LiveNotifier>, MissingSetting> {
    let table = std::env::var("ORGOP_RESULTS_TABLE").map_err(|_| MissingSetting {
        name: "ORGOP_RESULTS_TABLE",
        purpose: "the worker stores results there",
        invalid: false,
    })?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let bucket = env("ORGOP_RESULTS_BUCKET");
    let retention_days = match env("ORGOP_RESULTS_TTL_DAYS") {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| MissingSetting {
            name: "ORGOP_RESULTS_TTL_DAYS",
            purpose: "a whole number of days results are kept",
            invalid: true,
        })?),
    };
    let lock_ttl =
        orgop_lock::ttl_from_env(orgop_lock::EXECUTION_TTL_SECS).map_err(|_| MissingSetting {
            name: orgop_lock::TTL_ENV,
            purpose: "the apply lock's lifetime in whole seconds (1 to 604800)",
            invalid: true,
        })?;
    let client = AwsClient::from_env(ClientOptions::default()).await;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    Ok(Deps {
        connector: Arc::new(LiveConnector::new(client.clone())),
        store: DynamoStore::new(
            dynamo,
            table,
            S3Objects::new(client.clone()),
            bucket.clone(),
        )
        .with_retention_days(retention_days)
        .with_lock_ttl(lock_ttl),
        objects: S3Objects::new(client.clone()),
        bucket,
        now: || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        },
        notifier: LiveNotifier {
            slack: env("ORGOP_SLACK_WEBHOOK_URL").map(SlackWebhook::new),
            sns: env("ORGOP_SNS_TOPIC_ARN").map(|topic| SnsTopic::new(client, topic)),
        },
    })
}
