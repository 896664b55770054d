//! `orgop run`: the local fan-out.
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, load_all, render};
use clap::Args;
use orgop_exec::{ActionOutcome, Status};
use orgop_exec::{ItemHooks, NoHooks};
use orgop_runner::outdir::{ACTIONS_JOURNAL, Journal, LockError, OutLock, SPOOL, keep_leftovers};
use orgop_runner::sink::{FINDINGS_CSV, RESULTS_JSONL, Spool, columns};
use orgop_runner::{
    Connector, Control, Event, Interrupt, Overrides, ReplayConnector, RunOptions, Summary,
};
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

/// How long items in flight get to end after SIGINT/SIGTERM.
pub(crate) const GRACE: Duration = Duration::from_secs(20);

/// Shown after `orgop run --help`.
pub const AFTER_HELP: &str = "\
Without --apply, actions are planned and reported, never sent.

Writes DIR/results.jsonl (one JSON object per account x region: account_id, account_name,
region, status ok|denied|error|skipped, error, findings, actions, calls, duration_ms) and
DIR/findings.csv (account_id, account_name, region, resource_id, then the report's columns;
text a spreadsheet would run as a formula starts with '), both sorted by account and region.
The previous run's two files are removed when a run starts. Each item is written to
DIR/.results.spool.jsonl (its findings' CSV rows to DIR/.results.spool.csv) as it finishes:
a killed run leaves what it finished there.
With --apply, DIR/.actions.journal.jsonl gets a `sent` record (account_id, region, action,
call, resource_id, parameters, seq) on disk before each action's request goes out, and an
`answered` record (seq, outcome, reason) after: a `sent` seq with no `answered` one is an
action whose outcome is unknown. It is removed after a complete run, kept otherwise.
One run at a time per DIR (DIR/.orgop.lock holds its pid; a lock left by a dead run is taken
over). What an interrupted run left (spool, journal) is renamed to NAME.<UTC time> by the
next run, never deleted.
SIGINT/SIGTERM: no new item starts; items in flight end after their current call (at most
20 s; a second signal stops them at once); the two files are written with what finished and
every other item as status not_run.
With --out s3://BUCKET/PREFIX both go to S3 instead, with your own credentials.
--plan-out FILE (a dry run) also writes the planned actions as a change plan: review it with
`orgop plan show FILE`, carry it out exactly with `orgop apply FILE`.
With --apply, one applier per runbook and organization: a lock file under
ORGOP_STATE_DIR (else $XDG_STATE_HOME/orgop, else ~/.local/state/orgop)/locks/, held with
flock (a killed holder never blocks the next run) and naming its holder; a second applier
exits 2. --force-unlock removes such a file when no process holds it.
With --lock-table NAME (or ORGOP_LOCK_TABLE), the lock is an item of that DynamoDB table (the
operations stack's results table, where the deployed state machine's applying executions take
the same lock) instead: taken with a conditional write, naming its holder (pid, host, command),
living 15 minutes (ORGOP_LOCK_TTL_SECONDS) and extended every 5 while the run goes on, so a
crashed applier blocks the next one until it expires; released at the end. --force-unlock
removes an expired lock item; a live one only with --force-unlock-holder ID, its holder id
exactly as the refusal printed it (stop that holder first). Dry runs never lock and never
touch the table.

Exit status: 0 when every item ended ok or skipped; 1 when any item ended denied or error (or
the runbook is invalid); 2 on usage or I/O errors (writing results too), when DIR is in use by
another run, or when the organization cannot be listed; 130 after SIGINT, 143 after SIGTERM.";

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The runbook file.
    runbook: PathBuf,
    /// Only these regions (comma-separated), instead of the runbook's.
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    regions: Option<Vec<String>>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    accounts: Option<Vec<String>>,
    /// Never these accounts (comma-separated), in addition to the runbook's exclusions.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    exclude_accounts: Vec<String>,
    /// Only the accounts under these OUs (comma-separated, walked recursively).
    #[arg(long, value_delimiter = ',', value_name = "OU,...")]
    ou: Option<Vec<String>>,
    /// Items at once (default: the runbook's `concurrency`, else 10).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Stop the run after this many seconds, as SIGTERM would: no new item starts, items in
    /// flight end after their current call, the rest are listed as not run (exit 1).
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    max_duration: Option<f64>,
    /// A runbook parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Send the actions. Without it they are only planned.
    #[arg(long)]
    apply: bool,
    /// Write the planned actions to FILE, a change plan to review (`orgop plan show`) and
    /// apply (`orgop apply`). A dry run only.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    plan_out: Option<PathBuf>,
    /// With --apply: first remove the runbook's apply lock file if no process holds it (with
    /// a lock table: the lock item if it expired).
    #[arg(long, requires = "apply")]
    force_unlock: bool,
    /// With --apply: take the apply lock in this DynamoDB table (the operations stack's
    /// results table) instead of a local lock file. Default: ORGOP_LOCK_TABLE. Dry runs never
    /// lock.
    #[arg(long, value_name = "NAME")]
    lock_table: Option<String>,
    /// With --force-unlock and a lock table: also remove a live lock, if and only if its
    /// holder id is HOLDER (as the refusal printed it). Stop that holder first.
    #[arg(long, value_name = "HOLDER", requires = "force_unlock")]
    force_unlock_holder: Option<String>,
    /// Send every AWS request to this endpoint (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Where to write results.jsonl and findings.csv.
    #[arg(
        long,
        value_name = "DIR|s3://BUCKET/PREFIX",
        default_value = "orgop-results"
    )]
    out: String,
    /// Answer every call from a recorded organization instead of AWS (ROOT/org/ for
    /// Organizations, ROOT/<account>/<region>/ per item, placebo layout).
    #[arg(long, value_name = "ROOT")]
    replay: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Log every AWS call to stderr: account, region, step, operation, pages or error code,
    /// duration (never parameters). `ORGOP_LOG` (e.g. `debug`, `orgop_exec=debug`) sets the
    /// filter instead.
    #[arg(short, long)]
    verbose: bool,
}

/// Ends an applied run's actions journal (`orgop run --apply`, `orgop apply`): flushed, then
/// removed after a complete run and kept after an interrupted one or a write error, saying
/// so. True when something could not be written or removed.
pub(crate) fn close_journal(j: Arc<Journal>, interrupted: bool) -> bool {
    match j.finish() {
        Err(e) => {
            eprintln!("orgop: {e}");
            eprintln!("orgop: kept {}", j.path().display());
            true
        }
        Ok(()) if interrupted => {
            eprintln!(
                "orgop: kept the actions journal {} (interrupted run; see `orgop run --help`)",
                j.path().display()
            );
            false
        }
        Ok(()) => match Arc::into_inner(j).map(Journal::remove) {
            Some(Err(e)) => {
                eprintln!("orgop: {e}");
                true
            }
            _ => false,
        },
    }
}

/// Logs to stderr for `-v` (or `ORGOP_LOG`): one line per AWS call, within a span naming the
/// item's account and region.
pub(crate) fn init_logging(verbose: bool) {
    let filter = match std::env::var("ORGOP_LOG") {
        Ok(f) if !f.is_empty() => f,
        _ if verbose => "orgop_exec=debug,orgop_runner=debug".to_string(),
        _ => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

pub(crate) fn parse_params(
    defs: &std::collections::BTreeMap<String, orgop_plan::ParamDef>,
    raw: &[String],
) -> Result<Map<String, Value>, Vec<String>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for p in raw {
        let Some((name, value)) = p.split_once('=') else {
            errors.push(format!("--param {p}: expected NAME=VALUE"));
            continue;
        };
        match defs.get(name) {
            Some(def) => match orgop_plan::params::parse_text(def, value) {
                Ok(v) => {
                    out.insert(name.to_string(), v);
                }
                Err(e) => errors.push(format!("--param {name}: {e}")),
            },
            None => {
                out.insert(name.to_string(), Value::String(value.to_string()));
            }
        }
    }
    let resolved = orgop_plan::params::resolve(defs, &out);
    match (errors.is_empty(), resolved) {
        (true, Ok(p)) => Ok(p),
        (_, Err(mut e)) => {
            errors.append(&mut e);
            Err(errors)
        }
        (false, Ok(_)) => Err(errors),
    }
}

/// Every `--regions`, `--accounts`, `--exclude-accounts` and `--ou` value that is not the shape
/// the runbook checker accepts in `targets` (the same rule, `orgop_syntax::ids`), one message
/// each: an empty or misspelt value would otherwise become an item, or a filter, and reach AWS.
fn bad_target_flags(a: &RunArgs) -> Vec<String> {
    target_flag_errors(
        a.regions.as_deref(),
        a.accounts.as_deref(),
        &a.exclude_accounts,
        a.ou.as_deref(),
    )
}

/// Every `--regions`, `--accounts`, `--exclude-accounts` and `--ou` value that is not the
/// shape the runbook checker accepts (shared by `orgop run` and `orgop start`).
pub(crate) fn target_flag_errors(
    regions: Option<&[String]>,
    accounts: Option<&[String]>,
    exclude_accounts: &[String],
    ou: Option<&[String]>,
) -> Vec<String> {
    use orgop_syntax::ids::{is_account_id, is_ou_id, is_region};
    const ACCOUNT: &str = "is not an AWS account id (12 digits)";
    let mut errors = Vec::new();
    let mut check = |flag: &str, values: Option<&[String]>, ok: fn(&str) -> bool, what: &str| {
        for v in values.into_iter().flatten().filter(|v| !ok(v)) {
            errors.push(format!("{flag}: {v:?} {what}"));
        }
    };
    check(
        "--regions",
        regions,
        is_region,
        "is not a region name (regions look like `us-east-1`)",
    );
    check("--accounts", accounts, is_account_id, ACCOUNT);
    check(
        "--exclude-accounts",
        Some(exclude_accounts),
        is_account_id,
        ACCOUNT,
    );
    check(
        "--ou",
        ou,
        is_ou_id,
        "is not an organizational unit id (`ou-ab12-cd34ef56`, or the root `r-ab12`)",
    );
    errors
}

/// Entry point. `Err` only when writing to stdout fails.
pub fn run(a: RunArgs) -> std::io::Result<u8> {
    let bad = bad_target_flags(&a);
    if !bad.is_empty() {
        for e in bad {
            eprintln!("orgop: {e}");
        }
        return Ok(EXIT_USAGE);
    }
    let checked = match load_all(std::slice::from_ref(&a.runbook)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let Some(lowered) = checked.reports.first().and_then(|r| r.lowered.clone()) else {
        render::report(&checked, "text")?;
        return Ok(if checked.unreadable > 0 {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        });
    };
    if lowered.targets.global && a.regions.is_some() {
        eprintln!(
            "note: every call of {} is to a global service, so it runs once per account \
             (region `global` in the results): --regions is ignored",
            lowered.plan.runbook
        );
    }
    let params = match parse_params(&lowered.plan.params, &a.params) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                eprintln!("orgop: {e}");
            }
            return Ok(EXIT_USAGE);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let opts = RunOptions {
        overrides: Overrides {
            regions: a.regions.clone(),
            accounts: a.accounts.clone(),
            exclude_accounts: a.exclude_accounts.clone(),
            organizational_units: a.ou.clone(),
        },
        concurrency: a.concurrency.unwrap_or(lowered.concurrency as usize),
        params,
        apply: a.apply,
        execution: format!("local-{}-{}", lowered.plan.runbook, now as u64),
        now,
    };
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    match &a.replay {
        Some(root) => rt.block_on(execute(
            &a,
            &lowered,
            Arc::new(ReplayConnector::new(root)),
            opts,
        )),
        None => rt.block_on(async {
            let client = orgop_aws::AwsClient::from_env(orgop_aws::ClientOptions {
                endpoint_url: a.endpoint_url.clone(),
                ..orgop_aws::ClientOptions::default()
            })
            .await;
            execute(
                &a,
                &lowered,
                Arc::new(orgop_runner::LiveConnector::new(client)),
                opts,
            )
            .await
        }),
    }
}

async fn execute<C: Connector>(
    a: &RunArgs,
    lowered: &orgop_plan::Lowered,
    connector: Arc<C>,
    opts: RunOptions,
) -> std::io::Result<u8> {
    init_logging(a.verbose);
    // Log lines and a progress line rewritten in place do not mix.
    let tty = std::io::stderr().is_terminal() && !a.verbose;
    let total = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        Status,
        usize,
    >::new()));
    let (t, c) = (total.clone(), counts.clone());
    let apply = opts.apply;
    eprintln!(
        "orgop run {} ({}){}",
        lowered.plan.runbook,
        a.runbook.display(),
        if apply {
            ": APPLYING actions"
        } else {
            ": dry run, actions are planned, not sent"
        }
    );
    let on_event = move |e: Event| match e {
        Event::Planned { items, failed } => {
            t.store(items + failed, Ordering::SeqCst);
            eprintln!(
                "{items} account x region items to run{}",
                if failed > 0 {
                    format!(", {failed} failed before running")
                } else {
                    String::new()
                }
            );
        }
        Event::ItemDone {
            account_id,
            region,
            status,
            findings,
            error,
        } => {
            let mut m = c.lock().expect("counts lock");
            *m.entry(status).or_default() += 1;
            let done: usize = m.values().sum();
            let n = t.load(Ordering::SeqCst);
            if tty {
                let line = format!(
                    "\r[{done:>4}/{n}] ok {} denied {} error {} skipped {}{}",
                    m.get(&Status::Ok).unwrap_or(&0),
                    m.get(&Status::Denied).unwrap_or(&0),
                    m.get(&Status::Error).unwrap_or(&0),
                    m.get(&Status::Skipped).unwrap_or(&0),
                    match m.get(&Status::NotRun) {
                        Some(n) => format!(" not_run {n}"),
                        None => String::new(),
                    }
                );
                let mut err = std::io::stderr();
                let _ = err.write_all(line.as_bytes());
                if done == n {
                    let _ = err.write_all(b"\n");
                }
            } else {
                eprintln!(
                    "[{done}/{n}] {:<7} {account_id} {region} findings={findings}{}",
                    status.as_str(),
                    error.map(|e| format!(" error={e}")).unwrap_or_default()
                );
            }
        }
    };
    // One applier per runbook and organization; a dry run that writes a plan notes the
    // organization in it.
    let org = if apply || a.plan_out.is_some() {
        crate::applylock::organization_id(&*connector).await
    } else {
        None
    };
    // A replay sends nothing to AWS: there is nothing for a lock to protect.
    let _apply_lock = if apply && a.replay.is_none() {
        let choice = crate::tablelock::TableChoice::new(
            a.lock_table.as_deref(),
            a.endpoint_url.as_deref(),
            a.force_unlock_holder.as_deref(),
        );
        match crate::applylock::take(
            &lowered.plan.runbook,
            org.as_deref(),
            a.force_unlock,
            &choice,
        )
        .await
        {
            Ok(l) => Some(l),
            Err(code) => return Ok(code),
        }
    } else {
        None
    };
    let collector = a
        .plan_out
        .as_ref()
        .map(|_| Arc::new(crate::changeplan::Collector::default()));
    let (plan_params, plan_execution, plan_started) =
        (opts.params.clone(), opts.execution.clone(), utc_stamp());
    let to_s3 = a.out.starts_with("s3://");
    let dir = Path::new(&a.out);
    let lock = if to_s3 {
        None
    } else {
        match prepare_dir(dir) {
            Ok(lock) => Some(lock),
            Err(code) => return Ok(code),
        }
    };
    let release = |lock: Option<OutLock>| {
        if let Some(Err(e)) = lock.map(OutLock::release) {
            eprintln!("orgop: {e}");
        }
    };
    // Each result goes to a spool file as it is done: beside the results in DIR (left there,
    // with what finished, if the run is killed), or in the temporary directory for S3.
    let spool = if to_s3 {
        Spool::temporary(&lowered.plan.runbook, columns(&lowered.plan))
    } else {
        Spool::create(dir.join(SPOOL), columns(&lowered.plan))
    };
    let mut spool = match spool {
        Ok(s) => s,
        Err(e) => {
            eprintln!("orgop: cannot write results: {e}");
            release(lock);
            return Ok(EXIT_USAGE);
        }
    };
    // The write-ahead journal of the actions sent, only when they are.
    let journal = if !apply {
        None
    } else {
        let path = if to_s3 {
            std::env::temp_dir().join(format!(
                "orgop-{}-{}{ACTIONS_JOURNAL}",
                lowered.plan.runbook,
                std::process::id()
            ))
        } else {
            dir.join(ACTIONS_JOURNAL)
        };
        match Journal::create(path) {
            Ok(j) => Some(Arc::new(j)),
            Err(e) => {
                eprintln!("orgop: cannot write the actions journal: {e}");
                let _ = spool.remove();
                release(lock);
                return Ok(EXIT_USAGE);
            }
        }
    };
    let hooks: Arc<dyn ItemHooks> = match (&journal, &collector) {
        (Some(j), _) => j.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => Arc::new(NoHooks),
    };
    let interrupt = Interrupt::new(GRACE);
    let signal = Arc::new(AtomicI32::new(0));
    let listener = tokio::spawn(on_signals(interrupt.clone(), signal.clone()));
    let deadline = a.max_duration.map(|secs| {
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
            if !interrupt.stopping() {
                eprintln!(
                    "orgop: the run reached --max-duration ({secs} s): no new item starts; items \
                     in flight end after their current call (at most {} s)",
                    GRACE.as_secs()
                );
                interrupt.stop();
            }
        })
    });
    let control = Control { hooks, interrupt };
    let ran = orgop_runner::run_each(lowered, connector, opts, control, on_event, |r| {
        if let Some(c) = &collector {
            c.item(&r);
        }
        spool.push(r)
    })
    .await;
    listener.abort();
    if let Some(d) = deadline {
        d.abort();
    }
    let signal = signal.load(Ordering::SeqCst);
    if let Err(e) = ran {
        eprintln!("orgop: {e}");
        let _ = spool.remove();
        if let Some(j) = journal.and_then(Arc::into_inner) {
            let _ = j.remove();
        }
        release(lock);
        return Ok(EXIT_USAGE);
    }
    let mut io_failed = false;
    let written = if to_s3 {
        let client = orgop_aws::AwsClient::from_env(orgop_aws::ClientOptions {
            endpoint_url: a.endpoint_url.clone(),
            ..orgop_aws::ClientOptions::default()
        })
        .await;
        spool.write_s3(&client, &a.out).await
    } else {
        spool
            .write_dir(dir)
            .map(|f| f.iter().map(|p| p.display().to_string()).collect())
    };
    let files = match written {
        Ok(f) => f,
        Err(e) => {
            // The spool (and the journal) stay: they are all there is of this run.
            eprintln!("orgop: {e}");
            let _ = spool.sync();
            if let Some(j) = &journal {
                let _ = j.finish();
                eprintln!("orgop: the actions sent are in {}", j.path().display());
            }
            release(lock);
            return Ok(EXIT_USAGE);
        }
    };
    let summary = spool.summary().clone();
    // The files are written: a failed write to stdout still leaves the summary on stderr and
    // the spool removed before it ends the command.
    let printed = if a.format == "json" {
        crate::out::println(&serde_json::to_string_pretty(&summary).expect("summary serializes"))
    } else {
        Ok(())
    };
    eprintln!("{}", summary_table(&summary, &spool.not_ok(), apply));
    for f in files {
        eprintln!("wrote {f}");
    }
    if let (Some(path), Some(c)) = (&a.plan_out, &collector) {
        let runbook = crate::changeplan::RunbookRef {
            name: lowered.plan.runbook.clone(),
            version: lowered.plan.version,
            path: a.runbook.to_string_lossy().into_owned(),
            sha256: std::fs::read(&a.runbook)
                .map(|b| crate::changeplan::sha256_hex(&b))
                .unwrap_or_default(),
        };
        let org = org.clone().unwrap_or_default();
        let plan = c.finish(
            runbook,
            lowered,
            org,
            plan_execution,
            plan_started,
            plan_params,
        );
        match crate::changeplan::write_whole(path, &plan.to_text()) {
            Ok(()) => eprintln!(
                "wrote plan {} ({} actions, {}): review it with `orgop plan show {0}`, then `orgop apply {0}`",
                path.display(),
                plan.actions.len(),
                plan.digest
            ),
            Err(e) => {
                eprintln!("orgop: cannot write the plan {}: {e}", path.display());
                io_failed = true;
            }
        }
    }
    if let Err(e) = spool.remove() {
        eprintln!("orgop: {e}");
        io_failed = true;
    }
    if let Some(j) = journal {
        io_failed |= close_journal(j, signal != 0);
    }
    release(lock);
    printed?;
    Ok(if signal != 0 {
        eprintln!(
            "orgop: interrupted by {}: exit {}",
            if signal == 2 { "SIGINT" } else { "SIGTERM" },
            128 + signal
        );
        128 + signal as u8
    } else if io_failed {
        EXIT_USAGE
    } else if summary.all_ran() {
        EXIT_OK
    } else {
        EXIT_INVALID
    })
}

/// Locks `dir` for this run, keeps what an interrupted run left there, and removes the
/// previous run's results (so that a run that dies leaves no results that are not its own).
/// `Err`: the exit status, the reason already printed.
pub(crate) fn prepare_dir(dir: &Path) -> Result<OutLock, u8> {
    let lock = match OutLock::acquire(dir) {
        Ok((lock, stale)) => {
            if let Some(pid) = stale {
                eprintln!(
                    "orgop: {}: took over the lock of run pid {pid}, which is no longer running",
                    dir.display()
                );
            }
            lock
        }
        Err(e @ LockError::Busy { .. }) => {
            eprintln!("orgop: {e}: wait for it to end, or choose another --out");
            return Err(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("orgop: cannot lock the results folder: {e}");
            return Err(EXIT_USAGE);
        }
    };
    let fail = |lock: OutLock, e: &dyn std::fmt::Display| {
        eprintln!("orgop: {e}");
        let _ = lock.release();
        Err(EXIT_USAGE)
    };
    match keep_leftovers(dir, &utc_stamp()) {
        Ok(kept) => {
            for (from, to) in kept {
                eprintln!(
                    "orgop: kept what an interrupted run left: {} -> {}",
                    from.display(),
                    to.display()
                );
            }
        }
        Err(e) => return fail(lock, &e),
    }
    for name in [RESULTS_JSONL, FINDINGS_CSV] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return fail(lock, &format!("{}: {e}", path.display())),
        }
    }
    Ok(lock)
}

/// `--max-duration`: a positive number of seconds a `Duration` can hold.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && std::time::Duration::try_from_secs_f64(v).is_ok() => Ok(v),
        _ => Err(format!("`{s}`: expected a positive number of seconds")),
    }
}

/// Listens for SIGINT and SIGTERM for the whole run: each asks `interrupt` to stop (the
/// first gently, the second at once); the first one's number is kept in `signal`.
pub(crate) async fn on_signals(interrupt: Interrupt, signal: Arc<AtomicI32>) {
    use tokio::signal::unix::{SignalKind, signal as listen};
    let (Ok(mut int), Ok(mut term)) = (
        listen(SignalKind::interrupt()),
        listen(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let (n, name) = tokio::select! {
            _ = int.recv() => (2, "SIGINT"),
            _ = term.recv() => (15, "SIGTERM"),
        };
        if signal
            .compare_exchange(0, n, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            eprintln!(
                "orgop: {name}: no new item starts; items in flight end after their current \
                 call (at most {} s; send it again to stop them at once)",
                GRACE.as_secs()
            );
        } else {
            eprintln!("orgop: {name} again: stopping the items in flight now");
        }
        interrupt.stop();
    }
}

/// Now in UTC as `20260102T030405Z`, for the names of kept leftovers.
pub(crate) fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn summary_table(s: &Summary, failed: &[&orgop_exec::ItemResult], apply: bool) -> String {
    let mut out = format!(
        "\nitems     {:>5}   ok {}   denied {}   error {}   skipped {}{}\nfindings  {:>5}\n",
        s.items,
        s.count(Status::Ok),
        s.count(Status::Denied),
        s.count(Status::Error),
        s.count(Status::Skipped),
        match s.count(Status::NotRun) {
            0 => String::new(),
            n => format!("   not_run {n}"),
        },
        s.findings
    );
    let actions: Vec<String> = s.actions.iter().map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!(
        "actions   {}\n",
        if actions.is_empty() {
            "none".to_string()
        } else {
            actions.join("   ")
        }
    ));
    if !apply
        && s.actions
            .get(ActionOutcome::Planned.as_str())
            .copied()
            .unwrap_or(0)
            > 0
    {
        out.push_str("          (dry run: run again with --apply to send the planned actions)\n");
    }
    let (never, failed): (Vec<&orgop_exec::ItemResult>, Vec<&orgop_exec::ItemResult>) =
        failed.iter().partition(|r| r.status == Status::NotRun);
    if !failed.is_empty() {
        out.push_str("not ok:\n");
        for r in failed {
            let e = r.error.as_ref();
            out.push_str(&format!(
                "  {} {:<14} {:<6} {}: {}\n",
                r.account_id,
                r.region,
                r.status.as_str(),
                e.map(|e| e.code.as_str()).unwrap_or("?"),
                e.map(|e| e.message.as_str()).unwrap_or("")
            ));
        }
    }
    if !never.is_empty() {
        out.push_str("not run (interrupted):\n");
        for r in never {
            out.push_str(&format!(
                "  {} {:<14} {}\n",
                r.account_id,
                r.region,
                r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
            ));
        }
    }
    out
}
