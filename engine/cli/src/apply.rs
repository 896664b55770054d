//! `orgop apply PLAN`: carries out exactly the actions of a reviewed plan.
//!
//! Each account x region of the plan runs the runbook's own steps again (reads), and an
//! action is sent only when it is in the plan for the same resource, the element it came from
//! reads the same as when the plan was made, and its parameters render the same. Every other
//! planned action is reported: `changed` (the resource is still there but no longer matches
//! the selection, or reads differently) or `gone` (the steps no longer return it). Anything
//! the steps find now that is not in the plan is skipped (`not planned`).
use crate::changeplan::{ChangePlan, sha256_hex};
use crate::run::{GRACE, init_logging, on_signals, prepare_dir};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, load_all, render};
use clap::Args;
use orgop_change::Admission;
use orgop_exec::{ActionOutcome, ActionRecord, Item, ItemHooks};
use orgop_runner::outdir::{ACTIONS_JOURNAL, Journal, OutLock, SPOOL};
use orgop_runner::sink::{Spool, columns};
use orgop_runner::{Control, Event, Interrupt, Overrides, RunOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// Shown after `orgop apply --help`.
pub const AFTER_HELP: &str = "\
Refuses (exit 2) a plan whose digest does not match its content (edited by hand), or whose
runbook file (--runbook, else the path stored in the plan) is not byte for byte the one the
plan was made from. Takes the apply lock of the runbook in the organization (see
`orgop run --help`: a lock file, or with --lock-table / ORGOP_LOCK_TABLE an item of that
DynamoDB table, shared with the deployed state machine); a held lock refuses the apply
(exit 2), naming its holder and, in a table, when its lock expires.

Writes DIR/results.jsonl, DIR/findings.csv and the actions journal like `orgop run --apply`.
A planned action not sent has outcome `skipped` and a reason starting with `changed:`,
`gone:` or `not run:`; a resource found now that is not in the plan, `not planned:`.

Exit status: 0 every planned action was applied (done or already done); 1 an action failed, or
was skipped as changed or gone, or its item could not run; 2 usage, a refused plan, the lock
held, or I/O errors; 130/143 after SIGINT/SIGTERM.";

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The plan file (`orgop run RUNBOOK --plan-out FILE`).
    plan: PathBuf,
    /// The runbook file, when not at the path stored in the plan; it must be the same bytes.
    #[arg(long, value_name = "FILE")]
    runbook: Option<PathBuf>,
    /// Items at once (default: the runbook's `concurrency`).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Send every AWS request to this endpoint (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Where to write results.jsonl, findings.csv and the actions journal.
    #[arg(long, value_name = "DIR", default_value = "orgop-results")]
    out: PathBuf,
    /// Remove the apply lock file first if no process holds it (a held one is never removed;
    /// with a lock table: the lock item if it expired).
    #[arg(long)]
    force_unlock: bool,
    /// Take the apply lock in this DynamoDB table (the operations stack's results table)
    /// instead of a local lock file, as `orgop run --apply --lock-table`. Default:
    /// ORGOP_LOCK_TABLE.
    #[arg(long, value_name = "NAME")]
    lock_table: Option<String>,
    /// With --force-unlock and a lock table: also remove a live lock, if and only if its
    /// holder id is HOLDER (as the refusal printed it). Stop that holder first.
    #[arg(long, value_name = "HOLDER", requires = "force_unlock")]
    force_unlock_holder: Option<String>,
    /// Print the outcome of every planned action as JSON on stdout.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Log every AWS call to stderr (as `orgop run -v`).
    #[arg(short, long)]
    verbose: bool,
}

/// Now, UTC, `20260102T030405Z`.
pub fn utc_now() -> String {
    crate::run::utc_stamp()
}

/// The plan's re-check ([`Admission`], shared with the Lambda), with the actions journal
/// written before each action is sent and after its answer.
struct Book {
    admission: Admission,
    journal: Arc<Journal>,
}

impl ItemHooks for Book {
    fn before_send(&self, item: &Item, record: &ActionRecord) -> std::io::Result<u64> {
        self.journal.before_send(item, record)
    }

    fn answered(&self, token: u64, item: &Item, record: &ActionRecord) {
        self.journal.answered(token, item, record)
    }

    fn admit(
        &self,
        item: &Item,
        record: &ActionRecord,
        element: Option<&Value>,
    ) -> Result<(), orgop_exec::NotAdmitted> {
        self.admission.admit(item, record, element)
    }

    fn wants_unselected(&self) -> bool {
        self.admission.wants_unselected()
    }

    fn unselected(&self, item: &Item, resource_id: &Value) {
        self.admission.unselected(item, resource_id)
    }
}

/// How each planned action ended, by kind.
#[derive(Debug, Default, serde::Serialize)]
struct Tally {
    applied: usize,
    failed: usize,
    changed: usize,
    gone: usize,
    not_run: usize,
    skipped: usize,
    not_planned: usize,
}

impl Tally {
    fn kind(record: &ActionRecord) -> &'static str {
        let reason = record.reason.as_deref().unwrap_or("");
        match record.outcome {
            ActionOutcome::Done | ActionOutcome::AlreadyDone => "applied",
            ActionOutcome::Failed => "failed",
            ActionOutcome::Planned => "skipped",
            ActionOutcome::Skipped if reason.starts_with("changed:") => "changed",
            ActionOutcome::Skipped if reason.starts_with("gone:") => "gone",
            ActionOutcome::Skipped if reason.starts_with("not run:") => "not_run",
            ActionOutcome::Skipped if reason.starts_with("not planned:") => "not_planned",
            ActionOutcome::Skipped => "skipped",
        }
    }

    fn add(&mut self, kind: &str) {
        let n = match kind {
            "applied" => &mut self.applied,
            "failed" => &mut self.failed,
            "changed" => &mut self.changed,
            "gone" => &mut self.gone,
            "not_run" => &mut self.not_run,
            "not_planned" => &mut self.not_planned,
            _ => &mut self.skipped,
        };
        *n += 1;
    }

    fn all_applied(&self) -> bool {
        self.failed + self.changed + self.gone + self.not_run + self.skipped == 0
    }
}

/// Entry point. `Err` only when writing to stdout fails.
pub fn apply(a: ApplyArgs) -> std::io::Result<u8> {
    let plan = match ChangePlan::read(&a.plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let runbook = a
        .runbook
        .clone()
        .unwrap_or_else(|| PathBuf::from(&plan.runbook.path));
    let bytes = match std::fs::read(&runbook) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "orgop: the plan's runbook {}: {e}: give it with --runbook FILE",
                runbook.display()
            );
            return Ok(EXIT_USAGE);
        }
    };
    let digest = sha256_hex(&bytes);
    if digest != plan.runbook.sha256 {
        eprintln!(
            "orgop: {}: the runbook changed since the plan was made (sha256 {digest}, the plan's {}): refused; make a new plan with `orgop run {} --plan-out FILE`",
            runbook.display(),
            plan.runbook.sha256,
            runbook.display()
        );
        return Ok(EXIT_USAGE);
    }
    let checked = match load_all(std::slice::from_ref(&runbook)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let Some(lowered) = checked.reports.first().and_then(|r| r.lowered.clone()) else {
        render::report(&checked, "text")?;
        return Ok(EXIT_USAGE);
    };
    if lowered.plan.runbook != plan.runbook.name {
        eprintln!(
            "orgop: {}: runbook {:?}, the plan is for {:?}: refused",
            runbook.display(),
            lowered.plan.runbook,
            plan.runbook.name
        );
        return Ok(EXIT_USAGE);
    }
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    rt.block_on(async {
        let client = orgop_aws::AwsClient::from_env(orgop_aws::ClientOptions {
            endpoint_url: a.endpoint_url.clone(),
            ..orgop_aws::ClientOptions::default()
        })
        .await;
        execute(
            &a,
            &plan,
            &lowered,
            Arc::new(orgop_runner::LiveConnector::new(client)),
        )
        .await
    })
}

async fn execute<C: orgop_runner::Connector>(
    a: &ApplyArgs,
    plan: &ChangePlan,
    lowered: &orgop_plan::Lowered,
    connector: Arc<C>,
) -> std::io::Result<u8> {
    init_logging(a.verbose);
    let org = crate::applylock::organization_id(&*connector).await;
    if !plan.organization_id.is_empty() && org.as_deref() != Some(plan.organization_id.as_str()) {
        eprintln!(
            "orgop: the plan was made in organization {}, these credentials are in {}: refused",
            plan.organization_id,
            org.as_deref().unwrap_or("no organization that can be read")
        );
        return Ok(EXIT_USAGE);
    }
    let choice = crate::tablelock::TableChoice::new(
        a.lock_table.as_deref(),
        a.endpoint_url.as_deref(),
        a.force_unlock_holder.as_deref(),
    );
    let apply_lock =
        match crate::applylock::take(&plan.runbook.name, org.as_deref(), a.force_unlock, &choice)
            .await
        {
            Ok(l) => l,
            Err(code) => return Ok(code),
        };
    eprintln!(
        "orgop apply {} ({} planned actions in {}): APPLYING exactly the plan",
        plan.runbook.name,
        plan.actions.len(),
        a.plan.display()
    );
    let dir = a.out.as_path();
    let out_lock = match prepare_dir(dir) {
        Ok(l) => l,
        Err(code) => {
            drop(apply_lock);
            return Ok(code);
        }
    };
    let done = |out_lock: OutLock, apply_lock: crate::applylock::Held, code: u8| {
        if let Err(e) = out_lock.release() {
            eprintln!("orgop: {e}");
        }
        drop(apply_lock);
        Ok(code)
    };
    let mut spool = match Spool::create(dir.join(SPOOL), columns(&lowered.plan)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("orgop: cannot write results: {e}");
            return done(out_lock, apply_lock, EXIT_USAGE);
        }
    };
    let journal = match Journal::create(dir.join(ACTIONS_JOURNAL)) {
        Ok(j) => Arc::new(j),
        Err(e) => {
            eprintln!("orgop: cannot write the actions journal: {e}");
            let _ = spool.remove();
            return done(out_lock, apply_lock, EXIT_USAGE);
        }
    };
    // The plan's items, and its actions per item.
    let admission = Admission::new(&plan.actions);
    let items = admission.items();
    let book = Arc::new(Book {
        admission,
        journal: journal.clone(),
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let opts = RunOptions {
        overrides: Overrides::default(),
        concurrency: a.concurrency.unwrap_or(lowered.concurrency as usize),
        params: plan.params.clone(),
        apply: true,
        // The plan's execution: the same idempotency tokens however often it is applied.
        execution: plan.execution.clone(),
        now,
    };
    let interrupt = Interrupt::new(GRACE);
    let signal = Arc::new(AtomicI32::new(0));
    let listener = tokio::spawn(on_signals(interrupt.clone(), signal.clone()));
    let n = items.len();
    eprintln!("{n} account x region items to re-read and apply");
    let on_event = move |e: Event| {
        if let Event::ItemDone {
            account_id,
            region,
            status,
            error,
            ..
        } = e
        {
            eprintln!(
                "{:<7} {account_id} {region}{}",
                status.as_str(),
                error.map(|e| format!(" error={e}")).unwrap_or_default()
            );
        }
    };
    let control = Control {
        hooks: book.clone(),
        interrupt,
    };
    let mut tally = Tally::default();
    let mut outcomes = Vec::new();
    let ran = orgop_runner::run_items(
        lowered,
        items,
        connector,
        opts,
        control,
        on_event,
        |mut r| {
            book.admission.complete(&mut r);
            for rec in &r.actions {
                let kind = Tally::kind(rec);
                tally.add(kind);
                outcomes.push(serde_json::json!({
                    "account_id": r.account_id,
                    "region": r.region,
                    "action": rec.action,
                    "resource_id": rec.resource_id,
                    "result": kind,
                    "reason": rec.reason,
                }));
            }
            spool.push(r)
        },
    )
    .await;
    listener.abort();
    let signal = signal.load(Ordering::SeqCst);
    if let Err(e) = ran {
        eprintln!("orgop: {e}");
        let _ = spool.remove();
        return done(out_lock, apply_lock, EXIT_USAGE);
    }
    let files = match spool.write_dir(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("orgop: {e}");
            let _ = spool.sync();
            let _ = journal.finish();
            eprintln!(
                "orgop: the actions sent are in {}",
                journal.path().display()
            );
            return done(out_lock, apply_lock, EXIT_USAGE);
        }
    };
    let _ = spool.remove();
    drop(book);
    let io_failed = crate::run::close_journal(journal, signal != 0);
    outcomes.sort_by_key(|o| o.to_string());
    for o in &outcomes {
        if o["result"] != "applied" {
            eprintln!(
                "  {} {} {} {} {}: {}",
                o["result"].as_str().unwrap_or(""),
                o["account_id"].as_str().unwrap_or(""),
                o["region"].as_str().unwrap_or(""),
                o["action"].as_str().unwrap_or(""),
                o["resource_id"],
                o["reason"].as_str().unwrap_or("")
            );
        }
    }
    eprintln!(
        "\nplanned  {}\napplied  {}   failed {}   changed {}   gone {}   not run {}   skipped {}\nnot planned (found now, left alone) {}",
        plan.actions.len(),
        tally.applied,
        tally.failed,
        tally.changed,
        tally.gone,
        tally.not_run,
        tally.skipped,
        tally.not_planned
    );
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    let printed = if a.format == "json" {
        crate::out::println(
            &serde_json::to_string_pretty(&serde_json::json!({
                "plan": plan.digest,
                "tally": tally,
                "actions": outcomes,
            }))
            .expect("JSON serializes"),
        )
    } else {
        Ok(())
    };
    let code = if signal != 0 {
        128 + signal as u8
    } else if io_failed {
        EXIT_USAGE
    } else if tally.all_applied() {
        EXIT_OK
    } else {
        EXIT_INVALID
    };
    let code = done(out_lock, apply_lock, code);
    printed?;
    code
}
