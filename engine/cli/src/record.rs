//! `orgop record`: runs a runbook in one account and region against AWS (or an emulator),
//! keeps every response, scrubs them, and writes them as an offline test case whose
//! expectations come from replaying the scrubbed recordings (see [`crate::cases`]).
use crate::cases::{self, CaseAccount, CaseDir, CaseFile};
use crate::scrub::Scrubber;
use crate::testcmd::{self, Runbooks, Verdict};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, load_all, out, render};
use aws_smithy_types::date_time::{DateTime, Format};
use clap::Args;
use orgop_aws::{AwsClient, ClientOptions, Target};
use orgop_exec::{ActionBudget, ItemHooks, NoHooks, Prepared, RecordApi, RunFacts, run_item};
use orgop_plan::contract::Item;
use orgop_runner::outdir::{ACTIONS_JOURNAL, Journal};
use orgop_runner::{Connector, LiveConnector};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Shown after `orgop record --help`.
pub const AFTER_HELP: &str = "\
Runs RUNBOOK once, in one account and region, with the same credentials and role as
`orgop run` (the runbook's role is assumed in the account), and writes every response, one
file per call, to <runbook folder>/tests/<runbook file name>/NAME/ with a case.yaml whose
`expect` is what replaying those files produces: the new case passes `orgop test` by
construction. Without --apply, actions are planned, not sent (and not recorded). WITH --apply
THE ACTIONS ARE REALLY SENT, exactly as `orgop run --apply` would send them, and their answers
are recorded; each is journalled in NAME/.actions.journal.jsonl before it is sent and after its
answer (removed once the run is done, kept by a record that dies).

Everything written is scrubbed: the run's account ids (the item's, the caller's, and any
other 12-digit account id in an ARN or an owner/account field) become 111111111111,
222222222222, ...; access key ids become AKIAEXAMPLE000000001-style ids; secret access keys
and session tokens become SCRUBBED-... placeholders; the same real value always becomes the
same placeholder. Read the files before committing them: names, tags and other data of your
resources are kept as they are.

Exit status: 0 when the case is written and passes; 1 when the runbook is invalid or the
written case does not replay as recorded; 2 on usage or I/O errors, when the case exists
(without --force), or when the caller's account cannot be found.";

#[derive(Args, Debug)]
pub struct RecordArgs {
    /// The runbook file.
    runbook: PathBuf,
    /// The case's name: its folder under <runbook folder>/tests/<runbook>/.
    #[arg(long = "case", value_name = "NAME")]
    case: String,
    /// The account to run in (default: the caller's, from sts:GetCallerIdentity).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// The account's name in the case (default: its name in Organizations when the caller may
    /// read it, else `recorded`).
    #[arg(long, value_name = "NAME")]
    account_name: Option<String>,
    /// The region (default: AWS_REGION, else the runbook's first target region).
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// A runbook parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Send the actions (they are really sent) and record their answers. Without it they are
    /// only planned.
    #[arg(long)]
    apply: bool,
    /// The case's description.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Replace the case if it exists (its recordings and case.yaml; other files are kept).
    #[arg(long)]
    force: bool,
    /// Send every AWS request to this endpoint (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Named profile of the shared AWS config files.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

/// A case name: a plain folder name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Entry point. `Err` only when writing to stdout fails.
pub fn record(a: RecordArgs) -> std::io::Result<u8> {
    use orgop_syntax::ids::{is_account_id, is_region};
    let mut usage = Vec::new();
    if !valid_name(&a.case) {
        usage.push(format!(
            "--case {:?}: a case name is a folder name: letters, digits, `.`, `_`, `-`",
            a.case
        ));
    }
    if let Some(id) = a.account.as_deref().filter(|id| !is_account_id(id)) {
        usage.push(format!(
            "--account: {id:?} is not an AWS account id (12 digits)"
        ));
    }
    if let Some(r) = a.region.as_deref().filter(|r| !is_region(r)) {
        usage.push(format!(
            "--region: {r:?} is not a region name (regions look like `us-east-1`)"
        ));
    }
    if !usage.is_empty() {
        for e in usage {
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
    let Some(lowered) = checked
        .reports
        .first()
        .filter(|r| !r.has_errors())
        .and_then(|r| r.lowered.clone())
    else {
        render::report(&checked, "text")?;
        return Ok(if checked.unreadable > 0 {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        });
    };
    let params = match crate::run::parse_params(&lowered.plan.params, &a.params) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                eprintln!("orgop: {e}");
            }
            return Ok(EXIT_USAGE);
        }
    };
    let dir = cases::cases_of_runbook(&a.runbook).join(&a.case);
    if dir.join(cases::CASE_FILE).exists() || has_recordings(&dir) {
        if !a.force {
            eprintln!(
                "orgop: {}: the case exists; choose another --case, or --force to replace it",
                dir.display()
            );
            return Ok(EXIT_USAGE);
        }
        if let Err(e) = clear(&dir) {
            eprintln!("orgop: cannot replace {}: {e}", dir.display());
            return Ok(EXIT_USAGE);
        }
    }
    let Some(rt) = crate::runtime() else {
        return Ok(EXIT_USAGE);
    };
    rt.block_on(record_case(&a, &lowered, params, &dir))
}

fn has_recordings(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".json"))
    })
}

/// Removes a case's recordings and case file, and nothing else.
fn clear(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_file() && (name.ends_with(".json") || name == cases::CASE_FILE) {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

async fn record_case(
    a: &RecordArgs,
    lowered: &orgop_plan::Lowered,
    params: Map<String, Value>,
    dir: &Path,
) -> std::io::Result<u8> {
    let region = a
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .or_else(|| lowered.targets.regions.first().cloned());
    let client = AwsClient::from_env(ClientOptions {
        region: region.clone(),
        profile: a.profile.clone(),
        endpoint_url: a.endpoint_url.clone(),
        ..ClientOptions::default()
    })
    .await;
    let region = region.unwrap_or_else(|| client.default_region().to_string());
    let own = Target::own(client.default_region());
    let caller = client
        .call(&own, "sts", "GetCallerIdentity", json!({}))
        .await
        .map(|v| v["Account"].as_str().map(str::to_string));
    let caller = match (caller, &a.account) {
        (Ok(Some(c)), _) => Some(c),
        (_, Some(_)) => None,
        (Ok(None), None) => {
            eprintln!("orgop: sts:GetCallerIdentity answered no Account: give --account");
            return Ok(EXIT_USAGE);
        }
        (Err(e), None) => {
            eprintln!(
                "orgop: sts:GetCallerIdentity: {e}: cannot tell the caller's account; give --account"
            );
            return Ok(EXIT_USAGE);
        }
    };
    let Some(account) = a.account.clone().or_else(|| caller.clone()) else {
        return Ok(EXIT_USAGE);
    };
    let account_name = match &a.account_name {
        Some(n) => n.clone(),
        None => client
            .call(
                &own,
                "organizations",
                "DescribeAccount",
                json!({"AccountId": account}),
            )
            .await
            .ok()
            .and_then(|v| v["Account"]["Name"].as_str().map(str::to_string))
            .unwrap_or_else(|| "recorded".into()),
    };
    let apply = a.apply;
    eprintln!(
        "orgop record {} in {account} {region} as case {}{}",
        lowered.plan.runbook,
        a.case,
        if apply {
            ": APPLYING actions"
        } else {
            ": dry run, actions are planned, not sent"
        }
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let shared: Map<String, Value> = lowered.shared.clone().into_iter().collect();
    let prepared = match Prepared::new(lowered.plan.clone(), shared) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("orgop: {}: {e}", a.runbook.display());
            return Ok(EXIT_INVALID);
        }
    };
    let connector = LiveConnector::new(client);
    let role = lowered.plan.role.for_run(apply);
    // A runbook of the operations account runs with the caller's own credentials.
    let session = if lowered.plan.operations {
        connector.own(&account, &region).await
    } else {
        connector.item(&account, &region, &role).await
    };
    let api = match session {
        Ok(api) => api,
        Err(e) => {
            eprintln!("orgop: assuming role {} in {account}: {e}", role.name);
            return Ok(EXIT_INVALID);
        }
    };
    let recorder = RecordApi::new(api);
    let item = Item {
        account_id: account.clone(),
        account_name: account_name.clone(),
        region: region.clone(),
    };
    let facts = RunFacts {
        execution: format!("record-{}-{now}", lowered.plan.runbook),
        params: params.clone(),
        apply,
        now: now as f64,
    };
    let budget = ActionBudget::new(lowered.plan.safety.max_actions_per_run);
    // Applied, each action is journalled before it is sent and after its answer, as by
    // `orgop run --apply`: a record that dies leaves in the case folder what it sent.
    let journal = if apply {
        let path = dir.join(ACTIONS_JOURNAL);
        if path.exists() {
            eprintln!(
                "orgop: {} is left by an interrupted record: check the actions it lists, then \
                 remove it",
                path.display()
            );
            return Ok(EXIT_USAGE);
        }
        match std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| Journal::create(path).map_err(|e| e.to_string()))
        {
            Ok(j) => Some(j),
            Err(e) => {
                eprintln!("orgop: cannot write the actions journal: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    } else {
        None
    };
    let hooks: &dyn ItemHooks = match &journal {
        Some(j) => j,
        None => &NoHooks,
    };
    let live = run_item(&prepared, &item, &facts, &recorder, &budget, hooks).await;
    if let Some(j) = journal {
        match j.finish() {
            Ok(()) => {
                if let Err(e) = j.remove() {
                    eprintln!("orgop: {e}");
                }
            }
            Err(e) => {
                eprintln!("orgop: {e}; kept {}", j.path().display());
            }
        }
    }
    let recordings = recorder.recordings();

    // Scrub: the item's account first, then the caller's, then whatever the data holds.
    let mut scrubber = Scrubber::new();
    scrubber.account(&account);
    if let Some(c) = &caller {
        scrubber.account(c);
    }
    for (var, stem) in [
        ("AWS_SECRET_ACCESS_KEY", "SECRET-ACCESS-KEY"),
        ("AWS_SESSION_TOKEN", "SESSION-TOKEN"),
        ("AWS_ACCESS_KEY_ID", "ACCESS-KEY-ID"),
    ] {
        if let Ok(v) = std::env::var(var) {
            scrubber.secret(&v, stem);
        }
    }
    let description = a.description.clone().unwrap_or_else(|| {
        format!(
            "Recorded by `orgop record` ({}).",
            if apply { "applied" } else { "dry run" }
        )
    });
    let inputs = json!({"params": params, "description": description, "name": account_name});
    scrubber.discover(&inputs);
    for r in &recordings {
        scrubber.discover(&r.body);
    }
    let inputs = scrubber.scrub(&inputs);
    let scrubbed_params = inputs["params"].as_object().cloned().unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("orgop: cannot create {}: {e}", dir.display());
        return Ok(EXIT_USAGE);
    }
    for r in &recordings {
        let body = scrubber.scrub(&r.body);
        let text = serde_json::to_string_pretty(&body).expect("JSON serializes") + "\n";
        let path = dir.join(&r.file);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("orgop: cannot write {}: {e}", path.display());
            return Ok(EXIT_USAGE);
        }
    }
    let runbook_ext = a.runbook.extension().and_then(|e| e.to_str());
    let mut file = CaseFile {
        description: inputs["description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        now: DateTime::from_secs(now as i64)
            .fmt(Format::DateTime)
            .unwrap_or_default(),
        apply,
        params: scrubbed_params.clone(),
        account: CaseAccount {
            id: scrubber
                .account_placeholder_of(&account)
                .unwrap_or(&account)
                .to_string(),
            name: inputs["name"].as_str().unwrap_or_default().to_string(),
        },
        region: region.clone(),
        runbook: match runbook_ext {
            Some("yaml") => None,
            _ => a
                .runbook
                .file_name()
                .map(|n| format!("../../../{}", n.to_string_lossy())),
        },
        expect: cases::Expect {
            status: live.status,
            error: None,
            findings: Vec::new(),
            actions: Vec::new(),
            requests: None,
        },
    };
    // The expectations: what the scrubbed recordings replay to, by the code `orgop test` runs.
    let replayed = match cases::replay(dir, lowered, &file, scrubbed_params).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orgop: replaying {}: {e}", dir.display());
            return Ok(EXIT_USAGE);
        }
    };
    file.expect = cases::expect_of(&replayed);
    let header = format!(
        "Recorded by `orgop record` from {} (scrubbed): orgop test {}",
        lowered.plan.runbook,
        dir.display()
    );
    let case_path = dir.join(cases::CASE_FILE);
    if let Err(e) = std::fs::write(&case_path, cases::to_yaml(&file, &header)) {
        eprintln!("orgop: cannot write {}: {e}", case_path.display());
        return Ok(EXIT_USAGE);
    }
    let counts = scrubber.counts();
    eprintln!(
        "recorded {} call{}: status {}, {} finding{}, {} action record{}; scrubbed {} account id{}, {} access key id{}, {} secret{}",
        recordings.len(),
        plural(recordings.len()),
        live.status.as_str(),
        live.findings.len(),
        plural(live.findings.len()),
        live.actions.len(),
        plural(live.actions.len()),
        counts.accounts,
        plural(counts.accounts),
        counts.keys,
        plural(counts.keys),
        counts.secrets,
        plural(counts.secrets),
    );
    if let Some(e) = &live.error {
        eprintln!(
            "orgop: note: the run ended {}: {}: {} (the case expects that)",
            live.status.as_str(),
            e.code,
            e.message
        );
    }
    let r = &replayed.result;
    if (r.status, r.findings.len(), r.actions.len())
        != (live.status, live.findings.len(), live.actions.len())
    {
        eprintln!(
            "orgop: note: the scrubbed recordings replay to status {}, {} findings, {} actions, \
             where the live run had {}, {}, {}: something the runbook compares was scrubbed",
            r.status.as_str(),
            r.findings.len(),
            r.actions.len(),
            live.status.as_str(),
            live.findings.len(),
            live.actions.len()
        );
    }
    // The case as `orgop test` sees it.
    let case = CaseDir::new(dir.to_path_buf());
    match testcmd::run_case(&case, &mut Runbooks::default()).await {
        Verdict::Pass => {
            out::println(&dir.display().to_string())?;
            Ok(EXIT_OK)
        }
        Verdict::Fail(problems) => {
            eprintln!(
                "orgop: the case written to {} does not pass `orgop test`:",
                dir.display()
            );
            for p in problems {
                eprintln!("  {}", p.message);
            }
            Ok(EXIT_INVALID)
        }
        Verdict::Error(e) => {
            eprintln!("orgop: the case written cannot be run: {e}");
            Ok(EXIT_INVALID)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn case_names_are_folder_names() {
        for ok in ["dry-run", "a.b_c-1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
