//! `orgop run`: the local fan-out.
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, load_all, render};
use clap::Args;
use orgop_exec::{ActionOutcome, Status};
use orgop_runner::sink::{Spool, columns};
use orgop_runner::{Connector, Event, Overrides, ReplayConnector, RunOptions, Summary};
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shown after `orgop run --help`.
pub const AFTER_HELP: &str = "\
Without --apply, actions are planned and reported, never sent.

Writes DIR/results.jsonl (one JSON object per account x region: account_id, account_name,
region, status ok|denied|error|skipped, error, findings, actions, calls, duration_ms) and
DIR/findings.csv (account_id, account_name, region, resource_id, then the report's columns;
text a spreadsheet would run as a formula starts with '), both sorted by account and region. Each item is appended to DIR/.results.spool.jsonl (its
findings' CSV rows to DIR/.results.spool.csv) as it finishes (kept if the run is
interrupted, removed once the two files are written).
With --out s3://BUCKET/PREFIX both go to S3 instead, with your own credentials.

Exit status: 0 when every item ended ok or skipped; 1 when any item ended denied or error (or
the runbook is invalid); 2 on usage or I/O errors, or when the organization cannot be listed.";

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
    /// A runbook parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Send the actions. Without it they are only planned.
    #[arg(long)]
    apply: bool,
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

/// Logs to stderr for `-v` (or `ORGOP_LOG`): one line per AWS call, within a span naming the
/// item's account and region.
fn init_logging(verbose: bool) {
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
    use orgop_syntax::ids::{is_account_id, is_ou_id, is_region};
    const ACCOUNT: &str = "is not an AWS account id (12 digits)";
    let mut errors = Vec::new();
    let mut check = |flag: &str, values: Option<&Vec<String>>, ok: fn(&str) -> bool, what: &str| {
        for v in values.into_iter().flatten().filter(|v| !ok(v)) {
            errors.push(format!("{flag}: {v:?} {what}"));
        }
    };
    check(
        "--regions",
        a.regions.as_ref(),
        is_region,
        "is not a region name (regions look like `us-east-1`)",
    );
    check("--accounts", a.accounts.as_ref(), is_account_id, ACCOUNT);
    check(
        "--exclude-accounts",
        Some(&a.exclude_accounts),
        is_account_id,
        ACCOUNT,
    );
    check(
        "--ou",
        a.ou.as_ref(),
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
                    "\r[{done:>4}/{n}] ok {} denied {} error {} skipped {}",
                    m.get(&Status::Ok).unwrap_or(&0),
                    m.get(&Status::Denied).unwrap_or(&0),
                    m.get(&Status::Error).unwrap_or(&0),
                    m.get(&Status::Skipped).unwrap_or(&0)
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
    let to_s3 = a.out.starts_with("s3://");
    // Each result goes to a spool file as it is done: beside the results in DIR (left there,
    // with what finished, if the run is interrupted), or in the temporary directory for S3.
    let spool = if to_s3 {
        Spool::temporary(&lowered.plan.runbook, columns(&lowered.plan))
    } else {
        Spool::create(
            std::path::Path::new(&a.out).join(".results.spool.jsonl"),
            columns(&lowered.plan),
        )
    };
    let mut spool = match spool {
        Ok(s) => s,
        Err(e) => {
            eprintln!("orgop: cannot write results: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let ran = orgop_runner::run_each(lowered, connector, opts, on_event, |r| spool.push(r)).await;
    if let Err(e) = ran {
        eprintln!("orgop: {e}");
        let _ = spool.remove();
        return Ok(EXIT_USAGE);
    }
    let written = if to_s3 {
        let client = orgop_aws::AwsClient::from_env(orgop_aws::ClientOptions {
            endpoint_url: a.endpoint_url.clone(),
            ..orgop_aws::ClientOptions::default()
        })
        .await;
        spool.write_s3(&client, &a.out).await
    } else {
        spool
            .write_dir(std::path::Path::new(&a.out))
            .map(|f| f.iter().map(|p| p.display().to_string()).collect())
    };
    let files = match written {
        Ok(f) => f,
        Err(e) => {
            eprintln!("orgop: {e}");
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
    if let Err(e) = spool.remove() {
        eprintln!("orgop: {e}");
    }
    printed?;
    Ok(if summary.all_ran() {
        EXIT_OK
    } else {
        EXIT_INVALID
    })
}

fn summary_table(s: &Summary, failed: &[&orgop_exec::ItemResult], apply: bool) -> String {
    let mut out = format!(
        "\nitems     {:>5}   ok {}   denied {}   error {}   skipped {}\nfindings  {:>5}\n",
        s.items,
        s.count(Status::Ok),
        s.count(Status::Denied),
        s.count(Status::Error),
        s.count(Status::Skipped),
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
    out
}
