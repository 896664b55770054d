//! Change plans: what a dry run (`orgop run --plan-out FILE`) would do, as a file an operator
//! reviews (`orgop plan show FILE`) and `orgop apply FILE` carries out exactly. The plan
//! itself, its digest and the collector live in `orgop-change` (the Lambda uses them too);
//! this module has the command.
use crate::{EXIT_OK, EXIT_USAGE};
use clap::{Args, Subcommand};
use orgop_change::PlanItem;
pub use orgop_change::{ChangePlan, Collector, RunbookRef, sha256_hex};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes `text` to `path` whole: a temporary file beside it, fsync, rename.
pub fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// `orgop plan ...`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Subcommand, Debug)]
enum PlanCommand {
    /// Show a plan for review: per account and region counts, then every action.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// The plan file (`orgop run RUNBOOK --plan-out FILE`).
    plan: PathBuf,
    /// `text`, or `json` (the plan and its counts on stdout).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// `orgop plan`. `Err` only when writing to stdout fails.
pub fn plan_command(a: PlanArgs) -> std::io::Result<u8> {
    let PlanCommand::Show(a) = a.command;
    let plan = match ChangePlan::read(&a.plan) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let counts = counts(&plan);
    if a.format == "json" {
        let v = serde_json::json!({
            "plan": plan,
            "counts": counts.iter().map(|((account, region), by)| serde_json::json!({
                "account_id": account,
                "region": region,
                "actions": by.values().sum::<usize>(),
                "by_action": by,
            })).collect::<Vec<_>>(),
        });
        crate::out::print(&orgop_plan::canonical::to_string(&v))?;
        return Ok(EXIT_OK);
    }
    crate::out::print(&render(&plan, &counts))?;
    Ok(EXIT_OK)
}

type Counts = BTreeMap<(String, String), BTreeMap<String, usize>>;

fn counts(plan: &ChangePlan) -> Counts {
    let mut c = Counts::new();
    for a in &plan.actions {
        *c.entry((a.account_id.clone(), a.region.clone()))
            .or_default()
            .entry(a.action.clone())
            .or_default() += 1;
    }
    c
}

fn render(plan: &ChangePlan, counts: &Counts) -> String {
    let mut out = format!(
        "plan {} for runbook {} v{} ({}, sha256 {})\norganization {}, execution {}, made {}\n",
        plan.digest,
        plan.runbook.name,
        plan.runbook.version,
        plan.runbook.path,
        &plan.runbook.sha256,
        if plan.organization_id.is_empty() {
            "unknown"
        } else {
            &plan.organization_id
        },
        plan.execution,
        plan.created_at
    );
    let params: Vec<String> = plan
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.push_str(&format!(
        "params   {}\n",
        if params.is_empty() {
            "none".into()
        } else {
            params.join(" ")
        }
    ));
    let not_ok: Vec<&PlanItem> = plan.items.iter().filter(|i| i.status != "ok").collect();
    out.push_str(&format!(
        "items    {} ({} not ok: their actions are not in this plan)\nactions  {}\n\n",
        plan.items.len(),
        not_ok.len(),
        plan.actions.len()
    ));
    for i in not_ok {
        out.push_str(&format!(
            "  not ok {} {} {}: {}\n",
            i.account_id,
            i.region,
            i.status,
            i.error.as_deref().unwrap_or("")
        ));
    }
    out.push_str("account       region          actions\n");
    for ((account, region), by) in counts {
        let detail: Vec<String> = by.iter().map(|(a, n)| format!("{a} {n}")).collect();
        out.push_str(&format!(
            "{account:<13} {region:<15} {:>7}  ({})\n",
            by.values().sum::<usize>(),
            detail.join(", ")
        ));
    }
    out.push('\n');
    for a in &plan.actions {
        out.push_str(&format!(
            "{} {} {} {} {} {}\n",
            a.account_id,
            a.region,
            a.action,
            a.call,
            match &a.resource_id {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            a.parameters
        ));
    }
    out
}
