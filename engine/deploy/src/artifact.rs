//! Deployment artifacts in S3 (Lambda zips, templates over the inline limit).

use orgop_aws::{AwsClient, CallError, Target};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::DeployError;

/// The user metadata key under which [`upload_artifact`] records an object's SHA-256
/// (`x-amz-meta-orgop-sha256`).
const SHA_KEY: &str = "orgop-sha256";

/// What [`upload_artifact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactOutcome {
    /// The object was written.
    Uploaded {
        /// Its SHA-256, hex.
        sha256: String,
    },
    /// An object of the same size and SHA-256 was there already: nothing was sent.
    Unchanged {
        /// Its SHA-256, hex.
        sha256: String,
    },
}

/// Writes `body` to `s3://bucket/key` with the caller's own credentials, recording its
/// SHA-256 in the object's metadata; skipped when HeadObject shows an object of the same
/// size and recorded SHA-256 (an object written otherwise is always replaced once).
pub async fn upload_artifact(
    client: &AwsClient,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> Result<ArtifactOutcome, DeployError> {
    let name = format!("s3://{bucket}/{key}");
    let sha256 = hex::encode(Sha256::digest(body));
    let target = Target::own(client.default_region());
    let head = client
        .call(
            &target,
            "s3",
            "HeadObject",
            json!({"Bucket": bucket, "Key": key}),
        )
        .await;
    match head {
        Ok(h) => {
            let same_size =
                h.get("ContentLength").and_then(Value::as_u64) == Some(body.len() as u64);
            let same_sha = h
                .get("Metadata")
                .and_then(|m| m.get(SHA_KEY))
                .and_then(Value::as_str)
                == Some(sha256.as_str());
            if same_size && same_sha {
                return Ok(ArtifactOutcome::Unchanged { sha256 });
            }
        }
        Err(e) if is_missing(&e) => {}
        Err(e) => return Err(DeployError::call(&name, "HeadObject", e)),
    }
    let content_type = if key.ends_with(".json") {
        "application/json"
    } else if key.ends_with(".zip") {
        "application/zip"
    } else if key.ends_with(".yaml") || key.ends_with(".yml") {
        "text/yaml"
    } else {
        "application/octet-stream"
    };
    client
        .put_object_with(
            bucket,
            key,
            body.to_vec(),
            content_type,
            json!({"Metadata": {SHA_KEY: sha256}}),
        )
        .await
        .map_err(|e| DeployError::call(&name, "PutObject", e))?;
    Ok(ArtifactOutcome::Uploaded { sha256 })
}

/// HeadObject of an absent key: 404 without a body (the code is the status).
fn is_missing(e: &CallError) -> bool {
    e.aws_error()
        .is_some_and(|a| a.status == 404 || a.code == "NoSuchKey" || a.code == "NotFound")
}
