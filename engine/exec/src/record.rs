//! Records the calls made through another [`AwsApi`] in the layout [`crate::ReplayApi`]
//! answers from, for `orgop record`.
//!
//! Each call becomes one recording named `<service>.<Operation>_<n>.json` (numbered from 1
//! per operation, in the order the calls are made): its pages (a list when the call followed
//! pagination, else the one page) or its error (`{"Error": {"Code": .., "Message": ..}}`).
//! Nothing is written here: the caller scrubs the recordings and writes them.
use crate::api::{ApiError, AwsApi, Call};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The file it is replayed from: `<service>.<Operation>_<n>.json`.
    pub file: String,
    /// What the file holds.
    pub body: Value,
}

/// The file name of the `n`th call (from 1) of `service:operation`.
pub fn recording_file(service: &str, operation: &str, n: usize) -> String {
    format!("{service}.{operation}_{n}.json")
}

/// An [`AwsApi`] that passes every call to `inner` and keeps its answer.
#[derive(Debug)]
pub struct RecordApi<A> {
    inner: A,
    state: Mutex<(HashMap<String, usize>, Vec<Recording>)>,
}

impl<A> RecordApi<A> {
    /// Records what `inner` answers.
    pub fn new(inner: A) -> RecordApi<A> {
        RecordApi {
            inner,
            state: Mutex::new((HashMap::new(), Vec::new())),
        }
    }

    /// Every call answered so far, in the order answered.
    pub fn recordings(&self) -> Vec<Recording> {
        self.state.lock().expect("recordings lock").1.clone()
    }
}

/// What a recording file holds for an answer.
pub fn recording_body(paginate: bool, answer: &Result<Vec<Value>, ApiError>) -> Value {
    match answer {
        Ok(pages) if !paginate && pages.len() == 1 => pages[0].clone(),
        Ok(pages) => Value::Array(pages.clone()),
        Err(e) => json!({"Error": {"Code": e.code, "Message": e.message}}),
    }
}

impl<A: AwsApi> RecordApi<A> {
    /// The number of this call of its operation, taken when the call is made, so that calls
    /// answered out of order still replay in the order the interpreter asked for them.
    fn number(&self, call: Call<'_>) -> usize {
        let mut state = self.state.lock().expect("recordings lock");
        let n = state
            .0
            .entry(format!("{}.{}", call.service, call.operation))
            .or_insert(0);
        *n += 1;
        *n
    }

    fn keep(&self, call: Call<'_>, n: usize, answer: &Result<Vec<Value>, ApiError>) {
        let recording = Recording {
            file: recording_file(call.service, call.operation, n),
            body: recording_body(call.paginate, answer),
        };
        self.state
            .lock()
            .expect("recordings lock")
            .1
            .push(recording);
    }
}

impl<A: AwsApi> AwsApi for RecordApi<A> {
    async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        let n = self.number(call);
        let answer = self.inner.call(call).await;
        self.keep(call, n, &answer);
        answer
    }

    /// Recorded like [`AwsApi::call`]; the seed goes on to the inner API.
    async fn call_action(&self, call: Call<'_>, seed: &str) -> Result<Vec<Value>, ApiError> {
        let n = self.number(call);
        let answer = self.inner.call_action(call, seed).await;
        self.keep(call, n, &answer);
        answer
    }

    async fn pause(&self, d: std::time::Duration) {
        self.inner.pause(d).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplayApi;

    struct Fixed;

    impl AwsApi for Fixed {
        async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
            match call.operation {
                "Fails" => Err(ApiError::from_code("Nope", "no")),
                _ => Ok(vec![json!({"p": 1}), json!({"p": 2})]),
            }
        }

        async fn pause(&self, _: std::time::Duration) {}
    }

    #[test]
    fn recordings_replay_as_they_were_answered() {
        let api = RecordApi::new(Fixed);
        let p = json!({});
        let rt = |c: Call<'_>| now_or_never(api.call(c));
        let call = |operation, paginate| Call {
            service: "ec2",
            operation,
            params: &p,
            paginate,
        };
        let a = rt(call("DescribeVolumes", true));
        let b = rt(call("Fails", false));
        let c = rt(call("DescribeVolumes", true));
        let recs = api.recordings();
        let names: Vec<&str> = recs.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(
            names,
            [
                "ec2.DescribeVolumes_1.json",
                "ec2.Fails_1.json",
                "ec2.DescribeVolumes_2.json"
            ]
        );
        let dir = std::env::temp_dir().join(format!("orgop-record-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for r in &recs {
            std::fs::write(dir.join(&r.file), r.body.to_string()).unwrap();
        }
        let replay = ReplayApi::new(&dir);
        assert_eq!(now_or_never(replay.call(call("DescribeVolumes", true))), a);
        assert_eq!(now_or_never(replay.call(call("Fails", false))), b);
        assert_eq!(now_or_never(replay.call(call("DescribeVolumes", true))), c);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Polls a future that never waits (both APIs here answer at once).
    fn now_or_never<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the future waited"),
        }
    }
}
