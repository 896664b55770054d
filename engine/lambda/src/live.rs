//! The handlers' dependencies on AWS: S3 and SNS through the model-driven client, DynamoDB
//! through aws-sdk-dynamodb, configured from the Lambda's environment.
use crate::handlers::Deps;
use crate::store::{DynamoStore, ObjectStore, StoreError, StoreErrorKind};
use base64::Engine as _;
use orgop_aws::{AwsClient, CallError, ClientOptions, Target};
use orgop_runner::LiveConnector;
use serde_json::{Value, json};
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
        let body = String::from_utf8(body).map_err(|e| {
            StoreError::permanent(format!(
                "s3://{bucket}/{key}: orgop writes text objects only: {e}"
            ))
            .with_source(e)
        })?;
        let target = Target::own(self.client.default_region());
        let params =
            json!({"Bucket": bucket, "Key": key, "Body": body, "ContentType": content_type});
        self.client
            .call(&target, "s3", "PutObject", params)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        let target = Target::own(self.client.default_region());
        let out = self
            .client
            .call(
                &target,
                "s3",
                "GetObject",
                json!({"Bucket": bucket, "Key": key}),
            )
            .await
            .map_err(store_error)?;
        let body = out.get("Body").and_then(Value::as_str).unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| {
                StoreError::permanent(format!("s3://{bucket}/{key}: body is not base64: {e}"))
                    .with_source(e)
            })
    }
}

/// Publishes a run's summary to an SNS topic.
pub async fn notify(
    client: &AwsClient,
    topic_arn: &str,
    subject: &str,
    message: &str,
) -> Result<(), CallError> {
    let region = topic_arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .unwrap_or(client.default_region())
        .to_string();
    let subject: String = subject.chars().take(100).collect();
    client
        .call(
            &Target::own(region),
            "sns",
            "Publish",
            json!({"TopicArn": topic_arn, "Subject": subject, "Message": message}),
        )
        .await
        .map(|_| ())
}

/// The live dependencies, from the environment: credentials, region and `AWS_ENDPOINT_URL`
/// as every AWS SDK reads them; `ORGOP_RESULTS_TABLE` (required), `ORGOP_RESULTS_BUCKET`,
/// `ORGOP_SNS_TOPIC_ARN`, `ORGOP_SLACK_WEBHOOK_URL`.
pub async fn deps_from_env()
-> Result<Deps<LiveConnector, DynamoStore<S3Objects>, S3Objects>, String> {
    let table = std::env::var("ORGOP_RESULTS_TABLE").map_err(|_| {
        "ORGOP_RESULTS_TABLE is not set: the worker stores results there".to_string()
    })?;
    let bucket = std::env::var("ORGOP_RESULTS_BUCKET")
        .ok()
        .filter(|b| !b.is_empty());
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
        ),
        objects: S3Objects::new(client.clone()),
        bucket,
        now: || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        },
        notify_topic: std::env::var("ORGOP_SNS_TOPIC_ARN")
            .ok()
            .filter(|t| !t.is_empty()),
        slack_webhook: std::env::var("ORGOP_SLACK_WEBHOOK_URL")
            .ok()
            .filter(|u| !u.is_empty()),
        client: Some(client),
    })
}
