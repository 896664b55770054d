//! `orgop start`: a run of a deployed runbook, through Step Functions (`aws-sdk-sfn`).
//!
//! Guarantees:
//! - the runbook is read, validated and lowered exactly as by `orgop run`, and `--param`,
//!   `--regions` and `--accounts` are checked the same way, before anything is sent: a bad
//!   runbook or flag is exit 2 with nothing started;
//! - the execution input is an [`ExecutionInput`] with every parameter resolved (defaults
//!   applied), so the execution's history says exactly what it ran with;
//! - the state machine is `orgop-<runbook name>` ([`state_machine_name`]) in the caller's account
//!   and region, unless `--state-machine-arn` names it; one that does not exist is exit 2,
//!   naming it;
//! - `--wait` polls until the execution ends, then reports its status and the run's
//!   [`ResultsSummary`] (from the output, or from the history when the state machine failed on
//!   `OrgOp.ItemsFailed`) and downloads `results.jsonl` and `findings.csv` into `--out`.
//!
//! The first half of this file talks to AWS and never prints ([`Deployed`], [`StartError`]);
//! the second half is the command.
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, load_all, out, render};
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use clap::Args;
use orgop_plan::contract::{ExecutionInput, ResultsSummary, fields, state_machine_name};
use orgop_statemachine::states;
use serde::Serialize;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most history pages read for one question: a Standard execution's history holds at
/// most 25,000 events, 25 pages of 1,000; more means the service repeats itself.
pub const MAX_HISTORY_PAGES: usize = 100;

/// Why `orgop start` could not do what it was asked (every one is exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The runbook's state machine is not deployed (or not in this account and region).
    #[error(
        "state machine {name} does not exist ({arn}): deploy the runbook first (`orgop deploy`), or name the state machine with --state-machine-arn"
    )]
    NoStateMachine {
        /// `orgop-<runbook name>`.
        name: String,
        /// The ARN that was looked for.
        arn: String,
    },
    /// AWS answered an error (access denied, throttled past the retries, ...).
    #[error("{operation}: {code}: {message}")]
    Aws {
        /// `states:StartExecution`, ...
        operation: &'static str,
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// No answer from AWS (connection, timeout, credentials).
    #[error("{operation}: {message}")]
    Unreached {
        /// `states:StartExecution`, ...
        operation: &'static str,
        /// What went wrong, with its causes.
        message: String,
    },
    /// The execution history ran past [`MAX_HISTORY_PAGES`] pages (a Standard execution has at
    /// most 25,000 events, 25 pages): the service repeats itself.
    #[error(
        "states:GetExecutionHistory: more than {0} pages of history; a Step Functions history has at most 25"
    )]
    HistoryTooLong(usize),
    /// The execution ended without a summary the results handler writes.
    #[error("the execution's summary is not orgop's ({0})")]
    Summary(String),
    /// A results URI that is not `s3://bucket/key`.
    #[error("`{0}` is not an s3://BUCKET/KEY location")]
    BadUri(String),
    /// A results file could not be downloaded.
    #[error("cannot download {uri}: {source}")]
    Download {
        /// `s3://bucket/key`.
        uri: String,
        /// Why.
        source: orgop_aws::CallError,
    },
    /// A results file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the deployed runbook is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// The runbook's name (its state machine is `orgop-<name>`).
    pub runbook: String,
    /// The state machine, instead of `orgop-<name>` in the caller's account and region.
    pub state_machine_arn: Option<String>,
    /// Region (else the ARN's, else the standard chain's, else `us-east-1`).
    pub region: Option<String>,
    /// Endpoint for every request (else `AWS_ENDPOINT_URL[_SFN]`).
    pub endpoint_url: Option<String>,
}

/// A deployed runbook's state machine.
#[derive(Debug, Clone)]
pub struct Deployed {
    sfn: aws_sdk_sfn::Client,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The region requests go to.
    pub region: String,
}

/// An execution as `DescribeExecution` tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    /// Its ARN.
    pub execution_arn: String,
    /// Its name (the ARN's last part).
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, `PENDING_REDRIVE`.
    pub status: String,
    /// The input, as started.
    pub input: Option<Value>,
    /// The output, when it succeeded.
    pub output: Option<Value>,
    /// The error name, when it failed.
    pub error: Option<String>,
    /// The error's cause.
    pub cause: Option<String>,
    /// When it started (RFC 3339).
    pub start: String,
    /// When it ended.
    pub stop: Option<String>,
    #[serde(skip)]
    seconds: Option<f64>,
}

impl Execution {
    /// Whether it has ended (a failed execution being redriven has not).
    pub fn ended(&self) -> bool {
        !matches!(self.status.as_str(), "RUNNING" | "PENDING_REDRIVE")
    }

    /// How long it ran, in seconds, once ended.
    pub fn seconds(&self) -> Option<f64> {
        self.seconds
    }
}

/// One row of `--list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRow {
    /// Name.
    pub name: String,
    /// ARN.
    pub execution_arn: String,
    /// Status.
    pub status: String,
    /// Start (RFC 3339).
    pub start: String,
    /// Stop, once ended.
    pub stop: Option<String>,
}

/// Items done so far, from the execution's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Items in the Map (0 until it started).
    pub items: usize,
    /// Items whose worker ended (or whose failure was recorded).
    pub done: usize,
    /// Of those, items that ended denied or error.
    pub failed: usize,
    last_event: i64,
}

impl Progress {
    /// Counts the events after the last one seen, oldest first.
    fn add(&mut self, events: &[HistoryEvent]) {
        let after = self.last_event;
        for e in events.iter().filter(|e| e.id() > after) {
            self.last_event = self.last_event.max(e.id());
            if let Some(d) = e.map_state_started_event_details() {
                self.items = usize::try_from(d.length()).unwrap_or(0);
            }
            let Some(d) = e.state_exited_event_details() else {
                continue;
            };
            if ![
                states::WORKER,
                states::RECORD_FAILURE,
                states::RECORD_FAILURE_CODE,
            ]
            .contains(&d.name())
            {
                continue;
            }
            // A worker's summary names its status; a worker whose failure is caught exits
            // with its input and the error instead, and is counted when `RecordFailure` (or,
            // when recording failed too, `RecordFailureCode`) is.
            let status = d
                .output()
                .and_then(|o| serde_json::from_str::<Value>(o).ok())
                .and_then(|o| o.get("status").and_then(Value::as_str).map(str::to_string));
            if let Some(status) = status {
                self.done += 1;
                if status == "denied" || status == "error" || status == "lost" {
                    self.failed += 1;
                }
            }
        }
    }
}

fn time(t: &DateTime) -> String {
    t.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| t.secs().to_string())
}

fn sdk_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> StartError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => StartError::Aws {
            operation,
            code: code.to_string(),
            message: e.message().unwrap_or_default().to_string(),
        },
        None => StartError::Unreached {
            operation,
            message: DisplayErrorContext(&e).to_string(),
        },
    }
}

/// `arn:<partition>:states:<region>:<account>:stateMachine:<name>`: the region is its 4th part.
fn arn_part(arn: &str, n: usize) -> Option<&str> {
    arn.split(':').nth(n).filter(|p| !p.is_empty())
}

impl Deployed {
    /// Loads credentials and region from the standard chain and finds the state machine: the
    /// given ARN, else `orgop-<runbook>` in the caller's account (`sts:GetCallerIdentity`).
    pub async fn connect(opts: &ConnectOptions) -> Result<Deployed, StartError> {
        let explicit = opts.region.clone().or_else(|| {
            opts.state_machine_arn
                .as_deref()
                .and_then(|a| arn_part(a, 3))
                .map(str::to_string)
        });
        let sdk = crate::sdk_config(explicit, opts.endpoint_url.as_deref()).await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        let state_machine_arn = match &opts.state_machine_arn {
            Some(arn) => arn.clone(),
            None => {
                let me = aws_sdk_sts::Client::new(&sdk)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| sdk_error("sts:GetCallerIdentity", e))?;
                let account = me.account().unwrap_or_default();
                let partition = me.arn().and_then(|a| arn_part(a, 1)).unwrap_or("aws");
                format!(
                    "arn:{partition}:states:{region}:{account}:stateMachine:{}",
                    state_machine_name(&opts.runbook)
                )
            }
        };
        Ok(Deployed {
            sfn: aws_sdk_sfn::Client::new(&sdk),
            state_machine_arn,
            region,
        })
    }

    fn missing(&self) -> StartError {
        StartError::NoStateMachine {
            name: self
                .state_machine_arn
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            arn: self.state_machine_arn.clone(),
        }
    }

    /// `sdk_error`, with a missing state machine named as such.
    fn error<E, R>(&self, operation: &'static str, e: SdkError<E, R>) -> StartError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match sdk_error(operation, e) {
            StartError::Aws { code, .. } if code == "StateMachineDoesNotExist" => self.missing(),
            other => other,
        }
    }

    /// Starts an execution named `name`; its ARN.
    pub async fn start(&self, name: &str, input: &ExecutionInput) -> Result<String, StartError> {
        let out = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(serde_json::to_string(input).expect("the input serializes"))
            .send()
            .await
            .map_err(|e| self.error("states:StartExecution", e))?;
        Ok(out.execution_arn().to_string())
    }

    /// The execution as it is now.
    pub async fn describe(&self, execution_arn: &str) -> Result<Execution, StartError> {
        let d = self
            .sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| self.error("states:DescribeExecution", e))?;
        let json = |s: Option<&str>| s.and_then(|s| serde_json::from_str(s).ok());
        Ok(Execution {
            execution_arn: d.execution_arn().to_string(),
            name: d
                .name()
                .map(str::to_string)
                .unwrap_or_else(|| execution_arn.rsplit(':').next().unwrap_or("").to_string()),
            status: d.status().as_str().to_string(),
            input: json(d.input()),
            output: json(d.output()),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
            start: time(d.start_date()),
            stop: d.stop_date().map(time),
            seconds: d
                .stop_date()
                .map(|s| s.as_secs_f64() - d.start_date().as_secs_f64()),
        })
    }

    /// The events after `after` (an event id), oldest first: read newest first, page by page,
    /// only as far back as needed, so polling a long history stays cheap.
    pub async fn events_since(
        &self,
        execution_arn: &str,
        after: i64,
    ) -> Result<Vec<HistoryEvent>, StartError> {
        let mut events = Vec::new();
        self.back(execution_arn, |e| {
            if e.id() <= after {
                return Some(());
            }
            events.push(e.clone());
            None
        })
        .await?;
        events.reverse();
        Ok(events)
    }

    /// Reads the history newest first until `found` answers; its answer. A service that
    /// ignores `reverseOrder` (moto server does) is read to the end, then searched newest first.
    async fn back<T>(
        &self,
        execution_arn: &str,
        mut found: impl FnMut(&HistoryEvent) -> Option<T>,
    ) -> Result<Option<T>, StartError> {
        let mut token = None;
        let mut oldest_first = Vec::new();
        for _ in 0..MAX_HISTORY_PAGES {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(execution_arn)
                .reverse_order(true)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error("states:GetExecutionHistory", e))?;
            let events = page.events();
            let ascending =
                events.first().map(HistoryEvent::id) < events.last().map(HistoryEvent::id);
            if ascending || !oldest_first.is_empty() {
                oldest_first.extend_from_slice(events);
            } else if let Some(t) = events.iter().find_map(&mut found) {
                return Ok(Some(t));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                oldest_first.sort_by_key(|e| std::cmp::Reverse(e.id()));
                return Ok(oldest_first.iter().find_map(found));
            }
        }
        Err(StartError::HistoryTooLong(MAX_HISTORY_PAGES))
    }

    /// The last task failure of the history, `(error, cause)`: for an execution that failed
    /// otherwise than on `OrgOp.ItemsFailed` (the fanout's, say), what went wrong.
    pub async fn task_failure(
        &self,
        execution_arn: &str,
    ) -> Result<Option<(String, String)>, StartError> {
        self.back(execution_arn, |e| {
            e.task_failed_event_details().map(|d| {
                (
                    d.error().unwrap_or_default().to_string(),
                    d.cause().unwrap_or_default().to_string(),
                )
            })
        })
        .await
    }

    /// Polls until the execution ends, backing off from 1 s to 5 s between polls. With
    /// `progress`, reads the new history events after each poll and passes the counts to
    /// `on_poll`.
    pub async fn wait(
        &self,
        execution_arn: &str,
        progress: bool,
        mut on_poll: impl FnMut(&Execution, Option<&Progress>),
    ) -> Result<Execution, StartError> {
        let mut delay = Duration::from_secs(1);
        let mut counts = Progress::default();
        loop {
            let e = self.describe(execution_arn).await?;
            if progress {
                let new = self.events_since(execution_arn, counts.last_event).await?;
                counts.add(&new);
                on_poll(&e, Some(&counts));
            } else {
                on_poll(&e, None);
            }
            if e.ended() {
                return Ok(e);
            }
            tokio::time::sleep(delay).await;
            delay = (delay.mul_f64(1.5)).min(Duration::from_secs(5));
        }
    }

    /// The run's summary: the output of a succeeded execution; for one that failed on
    /// `OrgOp.ItemsFailed`, the `Results` state's output in the history. `None` when the run
    /// never reached the results handler.
    pub async fn summary(&self, e: &Execution) -> Result<Option<ResultsSummary>, StartError> {
        let from = |v: &Value| -> Result<ResultsSummary, StartError> {
            let s = v.get(fields::SUMMARY).cloned().unwrap_or(Value::Null);
            serde_json::from_value(s).map_err(|err| StartError::Summary(err.to_string()))
        };
        if e.status == "SUCCEEDED" {
            return e.output.as_ref().map(from).transpose();
        }
        if e.error.as_deref() != Some(orgop_vocab::Code::ItemsFailed.name()) {
            return Ok(None);
        }
        let output = self
            .back(&e.execution_arn, |ev| {
                let d = ev.state_exited_event_details()?;
                (ev.r#type() == &HistoryEventType::TaskStateExited && d.name() == states::RESULTS)
                    .then(|| d.output().unwrap_or_default().to_string())
            })
            .await?
            .ok_or_else(|| StartError::Summary("no Results state in the history".into()))?;
        let v: Value =
            serde_json::from_str(&output).map_err(|err| StartError::Summary(err.to_string()))?;
        from(&v).map(Some)
    }

    /// The state machine's executions, newest first, at most `max`.
    pub async fn list(&self, max: usize) -> Result<Vec<ExecutionRow>, StartError> {
        let mut rows = Vec::new();
        let mut token = None;
        while rows.len() < max {
            let page = self
                .sfn
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .max_results(i32::try_from(max - rows.len()).unwrap_or(1000).min(1000))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error("states:ListExecutions", e))?;
            rows.extend(page.executions().iter().map(|x| {
                (
                    x.start_date().as_secs_f64(),
                    ExecutionRow {
                        name: x.name().to_string(),
                        execution_arn: x.execution_arn().to_string(),
                        status: x.status().as_str().to_string(),
                        start: time(x.start_date()),
                        stop: x.stop_date().map(time),
                    },
                )
            }));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        // Step Functions lists newest first; sorting keeps that promise whatever answers.
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(rows.into_iter().take(max).map(|(_, r)| r).collect())
    }
}

/// A name for a new execution: when it starts (UTC, to the second), whether it applies, and six
/// hex digits so that two started in the same second differ, e.g. `20250106T060000Z-dry-3fa2c1`.
/// Sorted by name, executions are sorted by start; the name is also the default results folder.
pub fn execution_name(apply: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp: String = DateTime::from_secs(i64::try_from(now.as_secs()).unwrap_or(0))
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(12)) & 0xff_ffff;
    format!("{stamp}-{}-{salt:06x}", if apply { "apply" } else { "dry" })
}

/// `s3://bucket/key` -> (bucket, key).
pub fn split_s3_uri(uri: &str) -> Result<(&str, &str), StartError> {
    uri.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| StartError::BadUri(uri.to_string()))
}

/// Downloads the summary's `results.jsonl` and `findings.csv` into `dir` (created when
/// missing) with orgop's own client; the files written.
pub async fn download(
    client: &orgop_aws::AwsClient,
    summary: &ResultsSummary,
    dir: &Path,
) -> Result<Vec<PathBuf>, StartError> {
    let wanted = [
        (summary.results_uri.as_deref(), "results.jsonl"),
        (summary.findings_uri.as_deref(), "findings.csv"),
    ];
    let mut written = Vec::new();
    for (uri, file) in wanted {
        let Some(uri) = uri else { continue };
        let (bucket, key) = split_s3_uri(uri)?;
        let body = client
            .get_object(bucket, key)
            .await
            .map_err(|source| StartError::Download {
                uri: uri.to_string(),
                source,
            })?;
        std::fs::create_dir_all(dir).map_err(|source| StartError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(file);
        std::fs::write(&path, body).map_err(|source| StartError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

// ---- the command ----

/// Shown after `orgop start --help`.
pub const AFTER_HELP: &str = "\
Starts the runbook's deployed state machine, orgop-<runbook name>, in the caller's account and
region (or --state-machine-arn), with the runbook's parameters resolved (defaults applied) as the
execution input, and prints the execution's ARN. Without --apply, actions are planned, never sent.

--wait polls the execution until it ends, then prints its status and summary and downloads
results.jsonl and findings.csv into --out (default orgop-results/<execution name>).
--max-wait SECONDS bounds the waiting (a Standard execution may run for a year): past it, orgop
says the execution is still running, leaves it running, and exits 1.
--list shows the state machine's executions, newest first.

Exit status: 0 started (with --wait: succeeded, every item ok or skipped); 1 with --wait, the
execution failed, timed out or was aborted, an item ended denied or error, or --max-wait passed
before it ended; 2 on usage or I/O
errors, or when AWS refused (the state machine does not exist, access denied).";

/// Arguments of `orgop start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// The runbook file (its name names the state machine).
    runbook: PathBuf,
    /// A runbook parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Send the actions. Without it they are only planned.
    #[arg(long)]
    apply: bool,
    /// Only these regions (comma-separated), instead of the runbook's.
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    regions: Option<Vec<String>>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    accounts: Option<Vec<String>>,
    /// Wait until the execution ends; print its summary and download its results.
    #[arg(long)]
    wait: bool,
    /// Where --wait writes results.jsonl and findings.csv [default: orgop-results/<execution name>].
    #[arg(long, value_name = "DIR", requires = "wait")]
    out: Option<PathBuf>,
    /// With --wait: stop waiting after this many seconds (the execution goes on); exit 1.
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    max_wait: Option<u64>,
    /// List the state machine's executions instead of starting one.
    #[arg(long, conflicts_with_all = ["params", "apply", "regions", "accounts", "wait"])]
    list: bool,
    /// With --list: at most this many executions.
    #[arg(long, value_name = "N", default_value_t = 20, requires = "list")]
    max: usize,
    /// The state machine, instead of orgop-<runbook name> in the caller's account and region.
    #[arg(long, value_name = "ARN")]
    state_machine_arn: Option<String>,
    /// Region (default: the state machine ARN's, AWS_REGION, the profile's, else us-east-1).
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// Send every AWS request to this endpoint (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// `json`: one JSON object on stdout (with --list, an array).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// The execution input, or the messages saying why there is none (nothing is sent then).
fn prepare(a: &StartArgs) -> std::io::Result<Result<(String, ExecutionInput), u8>> {
    let mut errors =
        crate::run::target_flag_errors(a.regions.as_deref(), a.accounts.as_deref(), &[], None);
    let checked = match load_all(std::slice::from_ref(&a.runbook)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(Err(EXIT_USAGE));
        }
    };
    let Some(lowered) = checked.reports.first().and_then(|r| r.lowered.clone()) else {
        render::report(&checked, "text")?;
        // A runbook that does not check is never started: a refusal, like a bad flag.
        return Ok(Err(EXIT_USAGE));
    };
    let params = match crate::run::parse_params(&lowered.plan.params, &a.params) {
        Ok(p) => p,
        Err(mut e) => {
            errors.append(&mut e);
            Default::default()
        }
    };
    if !errors.is_empty() {
        for e in errors {
            eprintln!("orgop: {e}");
        }
        return Ok(Err(EXIT_USAGE));
    }
    Ok(Ok((
        lowered.plan.runbook.clone(),
        ExecutionInput {
            params,
            apply: a.apply,
            regions: a.regions.clone(),
            accounts: a.accounts.clone(),
        },
    )))
}

/// Entry point. `Err` only when writing to stdout fails.
pub fn start(a: StartArgs) -> std::io::Result<u8> {
    let (runbook, input) = match prepare(&a)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    rt.block_on(async {
        let opts = ConnectOptions {
            runbook,
            state_machine_arn: a.state_machine_arn.clone(),
            region: a.region.clone(),
            endpoint_url: a.endpoint_url.clone(),
        };
        let deployed = match Deployed::connect(&opts).await {
            Ok(d) => d,
            Err(e) => return refused(&e),
        };
        if a.list {
            list(&a, &deployed).await
        } else {
            start_one(&a, &deployed, &input).await
        }
    })
}

fn refused(e: &StartError) -> std::io::Result<u8> {
    eprintln!("orgop start: {e}");
    Ok(EXIT_USAGE)
}

async fn list(a: &StartArgs, d: &Deployed) -> std::io::Result<u8> {
    let rows = match d.list(a.max).await {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    if a.format == "json" {
        out::println(&serde_json::to_string_pretty(&rows).expect("rows serialize"))?;
        return Ok(EXIT_OK);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut text = format!(
        "{:<width$}  {:<15}  {:<20}  STOP\n",
        "NAME", "STATUS", "START"
    );
    for r in &rows {
        text.push_str(&format!(
            "{:<width$}  {:<15}  {:<20}  {}\n",
            r.name,
            r.status,
            r.start,
            r.stop.as_deref().unwrap_or("-")
        ));
    }
    out::print(&text)?;
    if rows.is_empty() {
        eprintln!("no executions of {}", d.state_machine_arn);
    }
    Ok(EXIT_OK)
}

async fn start_one(a: &StartArgs, d: &Deployed, input: &ExecutionInput) -> std::io::Result<u8> {
    let arn = match d.start(&execution_name(input.apply), input).await {
        Ok(arn) => arn,
        Err(e) => return refused(&e),
    };
    let json = a.format == "json";
    if !json {
        out::println(&arn)?;
    }
    eprintln!(
        "started {}{}",
        d.state_machine_arn,
        if input.apply {
            ": APPLYING actions"
        } else {
            ": dry run, actions are planned, not sent"
        }
    );
    if !a.wait {
        if json {
            let v = serde_json::json!({
                "execution_arn": arn,
                "state_machine_arn": d.state_machine_arn,
                "status": "RUNNING",
                "input": input,
            });
            out::println(&serde_json::to_string_pretty(&v).expect("JSON serializes"))?;
        }
        return Ok(EXIT_OK);
    }
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let waiting = d.wait(&arn, tty, |e, p| {
        let Some(p) = p else { return };
        let items = if p.items > 0 {
            format!("items {}/{} done, {} failed", p.done, p.items, p.failed)
        } else {
            "listing accounts x regions".to_string()
        };
        let line = format!(
            "\r{} {items}, {}s   ",
            e.status,
            started.elapsed().as_secs()
        );
        let mut err = std::io::stderr();
        let _ = err.write_all(line.as_bytes());
        if e.ended() {
            let _ = err.write_all(b"\n");
        }
    });
    let waited = match a.max_wait {
        None => waiting.await,
        Some(s) => match tokio::time::timeout(Duration::from_secs(s), waiting).await {
            Ok(w) => w,
            Err(_) => {
                eprintln!(
                    "\norgop: {arn} is still running after --max-wait {s} s; stopped waiting, the \
                     execution goes on (follow it with `orgop start {} --list`)",
                    a.runbook.display()
                );
                return Ok(EXIT_INVALID);
            }
        },
    };
    let execution = match waited {
        Ok(e) => e,
        Err(e) => return refused(&e),
    };
    let summary = match d.summary(&execution).await {
        Ok(s) => s,
        Err(e) => return refused(&e),
    };
    // Why it failed, when the state machine's own error only points at the history.
    let task_failure = if summary.is_none() && execution.status == "FAILED" {
        d.task_failure(&execution.execution_arn)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let mut files = Vec::new();
    if let Some(s) = &summary {
        let dir = a
            .out
            .clone()
            .unwrap_or_else(|| Path::new("orgop-results").join(&execution.name));
        let client = orgop_aws::AwsClient::from_env(orgop_aws::ClientOptions {
            region: Some(d.region.clone()),
            endpoint_url: a.endpoint_url.clone(),
            ..orgop_aws::ClientOptions::default()
        })
        .await;
        match download(&client, s, &dir).await {
            Ok(f) => files = f,
            Err(e) => {
                report(&execution, summary.as_ref(), None, &[]);
                return refused(&e);
            }
        }
    }
    if json {
        let v = serde_json::json!({
            "execution_arn": execution.execution_arn,
            "state_machine_arn": d.state_machine_arn,
            "status": execution.status,
            "error": execution.error,
            "cause": execution.cause,
            "input": execution.input,
            "start": execution.start,
            "stop": execution.stop,
            "task_failure": task_failure.as_ref().map(|(error, cause)| serde_json::json!({"error": error, "cause": cause})),
            "summary": summary,
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        });
        out::println(&serde_json::to_string_pretty(&v).expect("JSON serializes"))?;
    }
    report(&execution, summary.as_ref(), task_failure.as_ref(), &files);
    let ok = execution.status == "SUCCEEDED" && summary.is_none_or(|s| s.failed == 0);
    Ok(if ok { EXIT_OK } else { EXIT_INVALID })
}

/// The end of a waited execution on stderr: status, summary, files.
fn report(
    e: &Execution,
    summary: Option<&ResultsSummary>,
    task_failure: Option<&(String, String)>,
    files: &[PathBuf],
) {
    let took = e
        .seconds()
        .map(|s| format!(" after {s:.0}s"))
        .unwrap_or_default();
    let mut text = format!("\n{} {}{took}\n", e.name, e.status);
    if let Some(err) = &e.error {
        text.push_str(&format!(
            "error     {err}: {}\n",
            e.cause.as_deref().unwrap_or("")
        ));
    }
    if let Some((error, cause)) = task_failure {
        text.push_str(&format!("task      {error}: {cause}\n"));
    }
    if let Some(s) = summary {
        let count = |st: orgop_vocab::Status| s.by_status.get(&st).copied().unwrap_or(0);
        // Only the deployed result handler finds lost items: shown when there are some.
        let lost = match count(orgop_vocab::Status::Lost) {
            0 => String::new(),
            n => format!("   lost {n}"),
        };
        text.push_str(&format!(
            "items     {:>5}   ok {}   denied {}   error {}   skipped {}{lost}\nfindings  {:>5}\n",
            s.items,
            count(orgop_vocab::Status::Ok),
            count(orgop_vocab::Status::Denied),
            count(orgop_vocab::Status::Error),
            count(orgop_vocab::Status::Skipped),
            s.findings
        ));
        let actions: Vec<String> = s.actions.iter().map(|(k, v)| format!("{k} {v}")).collect();
        text.push_str(&format!(
            "actions   {}\n",
            if actions.is_empty() {
                "none".to_string()
            } else {
                actions.join("   ")
            }
        ));
    }
    for f in files {
        text.push_str(&format!("wrote {}\n", f.display()));
    }
    eprint!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_into_bucket_and_key() {
        assert_eq!(
            split_s3_uri("s3://b/orgop/x/results.jsonl").unwrap(),
            ("b", "orgop/x/results.jsonl")
        );
        for bad in ["s3://b", "s3:///k", "https://b/k", "s3://b/"] {
            assert!(split_s3_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn execution_names_say_when_and_whether_applied() {
        let name = execution_name(false);
        assert_eq!(name.len(), "20250106T060000Z-dry-3fa2c1".len(), "{name}");
        assert!(name.contains("T") && name.contains("Z-dry-"), "{name}");
        assert!(execution_name(true).contains("Z-apply-"));
        // Step Functions refuses these in a name.
        assert!(!name.contains([':', ' ', '/']), "{name}");
    }

    #[test]
    fn progress_counts_items_from_the_history() {
        use aws_sdk_sfn::types::{MapStateStartedEventDetails, StateExitedEventDetails};
        let exited = |id: i64, state: &str, output: &str| {
            HistoryEvent::builder()
                .id(id)
                .r#type(HistoryEventType::TaskStateExited)
                .timestamp(DateTime::from_secs(0))
                .state_exited_event_details(
                    StateExitedEventDetails::builder()
                        .name(state)
                        .output(output)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let started = HistoryEvent::builder()
            .id(5)
            .r#type(HistoryEventType::MapStateStarted)
            .timestamp(DateTime::from_secs(0))
            .map_state_started_event_details(
                MapStateStartedEventDetails::builder().length(4).build(),
            )
            .build()
            .unwrap();
        let mut p = Progress::default();
        p.add(&[
            started,
            exited(6, states::WORKER, r#"{"status": "ok"}"#),
            exited(7, states::FANOUT, r#"{"status": "error"}"#),
            // A caught failure exits the worker with its input, then is recorded.
            exited(8, states::WORKER, r#"{"item": {}, "error": {}}"#),
            exited(9, states::RECORD_FAILURE, r#"{"status": "error"}"#),
        ]);
        assert_eq!((p.items, p.done, p.failed), (4, 2, 1));
        // Events already counted are not counted again.
        p.add(&[exited(9, states::RECORD_FAILURE, r#"{"status": "error"}"#)]);
        p.add(&[exited(10, states::WORKER, r#"{"status": "denied"}"#)]);
        assert_eq!((p.items, p.done, p.failed), (4, 3, 2));
    }

    #[test]
    fn arn_parts() {
        let arn = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:orgop-x";
        assert_eq!(arn_part(arn, 1), Some("aws-cn"));
        assert_eq!(arn_part(arn, 3), Some("cn-north-1"));
        assert_eq!(arn_part("nonsense", 3), None);
    }
}
