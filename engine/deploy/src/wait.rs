//! Bounded waits: a botocore waiter for stacks and change sets, a poll with backoff for
//! StackSet operations (botocore has no waiter for them).

use std::time::Duration;

use orgop_aws::{AwsClient, CallError, Target};
use serde_json::Value;

use crate::DeployError;

/// Waits with `waiter` of CloudFormation's `waiters-2.json` for at most `limit`. Whatever the
/// waiter concluded (success, a failure state, gave up), the caller looks at the resource
/// afterwards to decide; only a call that failed (denied, network) is an error here.
pub(crate) async fn cfn_waiter(
    client: &AwsClient,
    target: &Target,
    waiter: &str,
    params: Value,
    limit: Duration,
) -> Result<(), CallError> {
    match client
        .wait(target, "cloudformation", waiter, params, Some(limit))
        .await
    {
        Ok(_) | Err(CallError::Waiter { .. }) => Ok(()),
        // A waiter's failure acceptor on an error code (ValidationError) ends the wait too.
        Err(e) if e.aws_error().is_some_and(|a| a.code == "ValidationError") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The pauses of a poll: `initial`, doubling up to `max`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            next: initial.max(Duration::from_millis(10)),
            max: max.max(initial),
        }
    }

    /// The next pause.
    pub(crate) fn pause(&mut self) -> Duration {
        let p = self.next;
        self.next = (self.next * 2).min(self.max);
        p
    }
}

/// Polls `poll` until it answers `Some`, pausing per `backoff`, for at most `limit` (the
/// limit named `limit_name` in [`crate::DeployOptions`]).
pub(crate) async fn poll_until<T, F, Fut>(
    waiting_for: &str,
    limit_name: &'static str,
    limit: Duration,
    mut backoff: Backoff,
    mut poll: F,
) -> Result<T, DeployError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, DeployError>>,
{
    let started = tokio::time::Instant::now();
    loop {
        if let Some(done) = poll().await? {
            return Ok(done);
        }
        let pause = backoff.pause();
        if started.elapsed() + pause > limit {
            return Err(DeployError::Timeout {
                waiting_for: waiting_for.to_string(),
                limit_name,
                limit,
            });
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_max() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(10));
        let pauses: Vec<u64> = (0..5).map(|_| b.pause().as_secs()).collect();
        assert_eq!(pauses, [2, 4, 8, 10, 10]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_that_never_ends_times_out_naming_its_limit() {
        let mut polls = 0;
        let err = poll_until::<(), _, _>(
            "operation 1 of stack set s",
            "operation_timeout",
            Duration::from_secs(60),
            Backoff::new(Duration::from_secs(2), Duration::from_secs(30)),
            || {
                polls += 1;
                async { Ok(None) }
            },
        )
        .await
        .unwrap_err();
        // At 0, 2, 6, 14, 30 and 60 s: the next pause (30 s) would pass the limit.
        assert_eq!(polls, 6);
        let text = err.to_string();
        assert!(text.contains("operation_timeout"), "{text}");
        assert!(text.contains("after 60 s"), "{text}");
    }
}
