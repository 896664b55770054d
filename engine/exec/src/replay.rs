//! Answers calls from recorded responses, for offline runbook tests.
//!
//! Layout (the placebo convention): `DIR/<service>.<Operation>_<n>.json`, one file per call in
//! the order the calls are made, numbered from 1 per operation. A file holds either a list of
//! pages, one page (an object), or an error `{"Error": {"Code": "...", "Message": "..."}}`.
//! [`crate::RecordApi`] makes such recordings from a live run (`orgop record`, which scrubs
//! account ids and credentials before writing them); `orgop test` replays them.
use crate::api::{ApiError, AwsApi, Call};
use orgop_vocab::Code;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// A recorded AWS.
#[derive(Debug)]
pub struct ReplayApi {
    dir: PathBuf,
    seen: Mutex<HashMap<String, usize>>,
    log: Mutex<Vec<(String, Value)>>,
}

impl ReplayApi {
    /// Replays the recordings in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ReplayApi {
        ReplayApi {
            dir: dir.into(),
            seen: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    /// Every call made so far: `service.Operation` and its parameters.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.log.lock().expect("log lock").clone()
    }
}

impl AwsApi for ReplayApi {
    /// A replay does not wait: its recordings hold every poll already.
    async fn pause(&self, _d: std::time::Duration) {}

    async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        let name = format!("{}.{}", call.service, call.operation);
        self.log
            .lock()
            .expect("log lock")
            .push((name.clone(), call.params.clone()));
        let n = {
            let mut seen = self.seen.lock().expect("seen lock");
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let path = self.dir.join(format!("{name}_{n}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| ApiError {
            code: Code::NoRecording.name().into(),
            message: format!("{}: {e}", path.display()),
            kind: crate::api::ErrorKind::Invalid,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| ApiError {
            code: Code::BadRecording.name().into(),
            message: format!("{}: {e}", path.display()),
            kind: crate::api::ErrorKind::Invalid,
        })?;
        if let Some(err) = v.get("Error") {
            let code = err.get("Code").and_then(Value::as_str).unwrap_or("Unknown");
            let message = err
                .get("Message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(ApiError::from_code(code, message));
        }
        Ok(match v {
            Value::Array(pages) => pages,
            page => vec![page],
        })
    }
}
