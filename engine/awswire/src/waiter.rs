//! Waiters from botocore's `waiters-2.json`.
//!
//! Input: the waiters document of a service. Guarantees: every acceptor's JMESPath argument
//! is compiled when the document is parsed; [`Waiter::evaluate`] applies the acceptors in
//! order exactly as botocore does (first match wins; `path`, `pathAll`, `pathAny` look at a
//! successful output, `status` at the HTTP status, `error` at the error code, with `true` /
//! `false` meaning "any error" / "no error"), and an error that no acceptor matches is a
//! failure. Deciding when to call again (`delay`, `max_attempts`) is the caller's job.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::AwsError;

/// An invalid waiters document.
#[derive(Debug, thiserror::Error)]
pub enum WaiterError {
    /// Not JSON of the waiters layout.
    #[error("invalid waiters document: {0}")]
    Json(#[from] serde_json::Error),
    /// An acceptor argument that is not valid JMESPath.
    #[error("waiter {waiter}: invalid expression `{expression}`: {message}")]
    Expression {
        /// Waiter name.
        waiter: String,
        /// The expression.
        expression: String,
        /// The parser's message.
        message: String,
    },
}

/// What a matching acceptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaiterState {
    /// The wait is over: the resource reached the wanted state.
    Success,
    /// The wait is over: the resource can no longer reach the wanted state.
    Failure,
    /// Keep waiting.
    Retry,
}

/// The kind of test an acceptor applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Matcher {
    /// `argument` evaluated on the output equals `expected`.
    Path,
    /// Every element of the (non-empty) list `argument` equals `expected`.
    PathAll,
    /// Some element of the list `argument` equals `expected`.
    PathAny,
    /// The HTTP status equals `expected`.
    Status,
    /// The error code equals `expected` (`true`: any error; `false`: no error).
    Error,
}

/// One acceptor of a waiter.
#[derive(Debug, Clone, Deserialize)]
pub struct Acceptor {
    /// The test.
    pub matcher: Matcher,
    /// The expected value.
    pub expected: Value,
    /// The state when the test matches.
    pub state: WaiterState,
    /// JMESPath expression for the path matchers.
    #[serde(default)]
    pub argument: Option<String>,
    #[serde(skip)]
    compiled: Option<jmespath::Expression<'static>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWaiter {
    operation: String,
    delay: u64,
    max_attempts: u32,
    acceptors: Vec<Acceptor>,
}

#[derive(Deserialize)]
struct RawWaiters {
    #[serde(default)]
    waiters: IndexMap<String, RawWaiter>,
}

/// The waiters of one service.
#[derive(Debug, Clone, Default)]
pub struct Waiters {
    by_name: IndexMap<String, Waiter>,
}

impl Waiters {
    /// Parses a `waiters-2.json` document.
    pub fn from_json(bytes: &[u8]) -> Result<Waiters, WaiterError> {
        let raw: RawWaiters = serde_json::from_slice(bytes)?;
        let mut by_name = IndexMap::new();
        for (name, mut w) in raw.waiters {
            for a in &mut w.acceptors {
                if let Some(arg) = &a.argument {
                    a.compiled =
                        Some(jmespath::compile(arg).map_err(|e| WaiterError::Expression {
                            waiter: name.clone(),
                            expression: arg.clone(),
                            message: e.to_string(),
                        })?);
                }
            }
            by_name.insert(
                name.clone(),
                Waiter {
                    name,
                    operation: w.operation,
                    delay: w.delay,
                    max_attempts: w.max_attempts,
                    acceptors: w.acceptors,
                },
            );
        }
        Ok(Waiters { by_name })
    }

    /// A waiter by name (`VolumeAvailable`).
    pub fn get(&self, name: &str) -> Option<&Waiter> {
        self.by_name.get(name)
    }

    /// All waiter names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// One waiter: the operation to poll and how to judge each answer.
#[derive(Debug, Clone)]
pub struct Waiter {
    /// Waiter name.
    pub name: String,
    /// Operation to call.
    pub operation: String,
    /// Seconds between attempts.
    pub delay: u64,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Acceptors, applied in order.
    pub acceptors: Vec<Acceptor>,
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Waiter {
    /// Judges one attempt: `status` is the HTTP status of the answer and `result` the parsed
    /// output or the error. `None` means no acceptor matched and the caller should try again;
    /// an error that no acceptor matches is `Some(Failure)`.
    pub fn evaluate(&self, status: u16, result: Result<&Value, &AwsError>) -> Option<WaiterState> {
        for a in &self.acceptors {
            let matched = match (a.matcher, result) {
                (Matcher::Status, _) => a.expected.as_u64() == Some(u64::from(status)),
                (Matcher::Error, Err(e)) => match &a.expected {
                    Value::Bool(b) => *b,
                    Value::String(code) => *code == e.code,
                    _ => false,
                },
                (Matcher::Error, Ok(_)) => a.expected == Value::Bool(false),
                (_, Err(_)) => false,
                (m, Ok(out)) => {
                    let Some(expr) = &a.compiled else { continue };
                    let found = expr
                        .search(out)
                        .ok()
                        .and_then(|v| serde_json::to_value(&*v).ok())
                        .unwrap_or(Value::Null);
                    match m {
                        Matcher::Path => same(&found, &a.expected),
                        Matcher::PathAll => match &found {
                            Value::Array(items) => {
                                !items.is_empty() && items.iter().all(|x| same(x, &a.expected))
                            }
                            _ => false,
                        },
                        Matcher::PathAny => match &found {
                            Value::Array(items) => items.iter().any(|x| same(x, &a.expected)),
                            _ => false,
                        },
                        _ => false,
                    }
                }
            };
            if matched {
                return Some(a.state);
            }
        }
        result.err().map(|_| WaiterState::Failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn waiters() -> Waiters {
        Waiters::from_json(
            json!({"version": 2, "waiters": {
                "VolumeAvailable": {"delay": 15, "operation": "DescribeVolumes", "maxAttempts": 40,
                    "acceptors": [
                        {"expected": "available", "matcher": "pathAll", "state": "success", "argument": "Volumes[].State"},
                        {"expected": "deleted", "matcher": "pathAny", "state": "failure", "argument": "Volumes[].State"}
                    ]},
                "VolumeDeleted": {"delay": 15, "operation": "DescribeVolumes", "maxAttempts": 40,
                    "acceptors": [
                        {"expected": "deleted", "matcher": "pathAll", "state": "success", "argument": "Volumes[].State"},
                        {"expected": "InvalidVolume.NotFound", "matcher": "error", "state": "success"}
                    ]},
                "BucketExists": {"delay": 5, "operation": "HeadBucket", "maxAttempts": 20,
                    "acceptors": [
                        {"expected": 200, "matcher": "status", "state": "success"},
                        {"expected": 404, "matcher": "status", "state": "retry"}
                    ]},
                "StackDone": {"delay": 30, "operation": "DescribeStacks", "maxAttempts": 120,
                    "acceptors": [
                        {"expected": "CREATE_COMPLETE", "matcher": "path", "state": "success", "argument": "Stacks[0].StackStatus"},
                        {"expected": true, "matcher": "error", "state": "failure"}
                    ]}
            }})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn err(code: &str, status: u16) -> AwsError {
        AwsError {
            code: code.into(),
            message: String::new(),
            status,
            request_id: None,
            data: json!({}),
        }
    }

    #[test]
    fn path_all_and_any() {
        let ws = waiters();
        let w = ws.get("VolumeAvailable").unwrap();
        assert_eq!((w.delay, w.max_attempts), (15, 40));
        let all = json!({"Volumes": [{"State": "available"}, {"State": "available"}]});
        assert_eq!(w.evaluate(200, Ok(&all)), Some(WaiterState::Success));
        let some = json!({"Volumes": [{"State": "available"}, {"State": "creating"}]});
        assert_eq!(w.evaluate(200, Ok(&some)), None);
        let gone = json!({"Volumes": [{"State": "deleted"}, {"State": "creating"}]});
        assert_eq!(w.evaluate(200, Ok(&gone)), Some(WaiterState::Failure));
        // pathAll on an empty list does not match.
        assert_eq!(w.evaluate(200, Ok(&json!({"Volumes": []}))), None);
        // An unmatched error fails the wait.
        assert_eq!(
            w.evaluate(500, Err(&err("InternalError", 500))),
            Some(WaiterState::Failure)
        );
    }

    #[test]
    fn error_and_status_matchers() {
        let ws = waiters();
        let w = ws.get("VolumeDeleted").unwrap();
        assert_eq!(
            w.evaluate(400, Err(&err("InvalidVolume.NotFound", 400))),
            Some(WaiterState::Success)
        );
        let w = ws.get("BucketExists").unwrap();
        assert_eq!(w.evaluate(200, Ok(&json!({}))), Some(WaiterState::Success));
        assert_eq!(
            w.evaluate(404, Err(&err("404", 404))),
            Some(WaiterState::Retry)
        );
        let w = ws.get("StackDone").unwrap();
        let done = json!({"Stacks": [{"StackStatus": "CREATE_COMPLETE"}]});
        assert_eq!(w.evaluate(200, Ok(&done)), Some(WaiterState::Success));
        let busy = json!({"Stacks": [{"StackStatus": "CREATE_IN_PROGRESS"}]});
        assert_eq!(w.evaluate(200, Ok(&busy)), None);
        assert_eq!(
            w.evaluate(400, Err(&err("ValidationError", 400))),
            Some(WaiterState::Failure)
        );
    }
}
