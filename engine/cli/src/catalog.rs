//! `orgop catalog`: the catalog's README, generated from the runbooks themselves.
//!
//! Per runbook: what it finds (its description and report), what it reads, what it changes
//! when applied (its actions' calls), its parameters, schedule and regions, the IAM actions
//! its roles need (derived from its calls exactly as `orgop stacksets` grants them, through
//! [`orgop_stacksets::roles`] and so [`orgop_stacksets::iam::actions_of`]), and its offline
//! test cases. Nothing in it is written by hand, and the same runbooks always give the same
//! bytes.
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, out, render};
use clap::Args;
use orgop_plan::Lowered;
use orgop_syntax::model::Runbook;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const AFTER_HELP: &str = "Links are relative to the folder of --out (without it, to the current folder), so `orgop catalog runbooks/ --out runbooks/README.md` and `cd runbooks && orgop catalog .` print the same text.\n\nExit status: 0 written, 1 an invalid runbook (nothing written), 2 usage or I/O error.";

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// Runbook files, or folders searched for *.yaml / *.yml (test cases' case.yaml excepted).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Write the README here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// `text` or `json` diagnostics.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

pub fn catalog(a: &CatalogArgs) -> std::io::Result<u8> {
    let checked = match crate::load_all(&a.paths) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    if render::report(&checked, &a.format)? {
        eprintln!("orgop: nothing written: fix the runbooks above first");
        return Ok(if checked.unreadable > 0 {
            EXIT_USAGE
        } else {
            EXIT_INVALID
        });
    }
    let base = match &a.out {
        Some(f) => f
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        None => PathBuf::from("."),
    };
    let base = base.canonicalize().unwrap_or(base);
    let mut entries: Vec<Entry> = Vec::new();
    for r in checked.reports {
        if let (Some(runbook), Some(lowered)) = (r.runbook, r.lowered) {
            entries.push(Entry {
                path: PathBuf::from(&r.file),
                runbook,
                lowered,
            });
        }
    }
    entries.sort_by(|x, y| x.runbook.name.cmp(&y.runbook.name));
    let text = match readme(&entries, &base) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("orgop: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    match &a.out {
        None => out::print(&text).map(|()| EXIT_OK),
        Some(f) => match std::fs::write(f, text) {
            Ok(()) => {
                out::println(&f.display().to_string())?;
                Ok(EXIT_OK)
            }
            Err(e) => {
                eprintln!("orgop: cannot write {}: {e}", f.display());
                Ok(EXIT_USAGE)
            }
        },
    }
}

struct Entry {
    path: PathBuf,
    runbook: Runbook,
    lowered: Lowered,
}

/// `path` relative to `base` when it lies under it, `/`-separated.
fn relative(path: &Path, base: &Path) -> String {
    let full = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let shown = full.strip_prefix(base).unwrap_or(path);
    shown
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Text on one line: runs of whitespace (newlines too) become one space.
fn line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line of table text: `|` escaped.
fn cell(text: &str) -> String {
    line(text).replace('|', "\\|")
}

fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

fn codes<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let list: Vec<String> = items.into_iter().map(|s| code(s)).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn call_name(c: &orgop_plan::CallPlan) -> String {
    format!("{}:{}", c.service, c.operation)
}

/// The description of each case of `runbook` (`<its folder>/tests/<file stem>/<case>/`), by
/// case name, sorted.
fn cases_of(path: &Path) -> Vec<(String, String)> {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) else {
        return Vec::new();
    };
    let folder = dir.join("tests").join(stem);
    let Ok(read) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().join(crate::cases::CASE_FILE).is_file())
        .map(|e| {
            let text =
                std::fs::read_to_string(e.path().join(crate::cases::CASE_FILE)).unwrap_or_default();
            let description = serde_yaml::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("description").and_then(Value::as_str).map(line))
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), description)
        })
        .collect();
    out.sort();
    out
}

fn readme(entries: &[Entry], base: &Path) -> Result<String, String> {
    let mut s = String::new();
    let w = &mut s;
    // `write!` to a String cannot fail.
    let _ = writeln!(w, "# The catalog\n");
    let _ = writeln!(
        w,
        "<!-- Generated by `orgop catalog runbooks/ --out runbooks/README.md` from the runbooks: do not edit. A test fails when it is stale; `ORGOP_UPDATE_CATALOG=1 cargo nextest run -p orgop-cli --test catalog_readme` regenerates it. -->\n"
    );
    let _ = writeln!(
        w,
        "The runbooks shipped with orgop. Each runs in every targeted account and region (`orgop run`), or deployed on its schedule; without `--apply` its actions are only planned. The IAM actions are derived from each runbook's calls as `orgop stacksets` grants them to the member roles: the read role gets the steps' calls, the remediation role (assumed only by applied runs) the steps' and the actions' calls.\n"
    );
    let _ = writeln!(w, "| runbook | finds | schedule | when applied |");
    let _ = writeln!(w, "| --- | --- | --- | --- |");
    for e in entries {
        let l = &e.lowered;
        // Each call once: two actions may send the same call to different resources.
        let mut changes: Vec<String> = Vec::new();
        for call in l.plan.actions.iter().map(call_name) {
            if !changes.contains(&call) {
                changes.push(call);
            }
        }
        let _ = writeln!(
            w,
            "| [{n}](#{n}) | {d} | {s} | {c} |",
            n = e.runbook.name,
            d = cell(&e.runbook.description),
            s = l.schedule.as_deref().map_or("on demand".into(), code),
            c = if changes.is_empty() {
                "reports only".into()
            } else {
                codes(&changes)
            },
        );
    }
    for e in entries {
        section(w, e, base)?;
    }
    Ok(s)
}

/// The idempotency-token members of an action's input (botocore's `idempotencyToken`) that
/// its parameters leave for orgop to fill.
fn idempotency_tokens(a: &orgop_plan::CallPlan) -> Vec<String> {
    use orgop_awswire::ShapeKind;
    let Ok(svc) = orgop_aws::models::global().resolve(&a.service, &a.operation) else {
        return Vec::new();
    };
    let Some(input) = svc
        .operation(&a.operation)
        .ok()
        .and_then(|o| o.input.clone())
    else {
        return Vec::new();
    };
    let Some(ShapeKind::Structure(s)) = svc.model.shape(&input.shape).map(|s| &s.kind) else {
        return Vec::new();
    };
    s.members
        .iter()
        .filter(|(name, m)| {
            m.traits.idempotency_token == Some(true) && a.parameters.get(name.as_str()).is_none()
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// `, for each result of `a`` (or of `a` and `b`), or nothing.
fn for_each(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let named: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    format!(", for each result of {}", named.join(" and "))
}

fn section(w: &mut String, e: &Entry, base: &Path) -> Result<(), String> {
    let (r, l) = (&e.runbook, &e.lowered);
    let file = relative(&e.path, base);
    let _ = writeln!(w, "\n## {}\n", r.name);
    let _ = writeln!(w, "[`{file}`]({file}), version {}.\n", r.version);
    let _ = writeln!(w, "{}\n", line(&r.description));

    // What it reads and finds.
    let _ = writeln!(w, "**Reads**\n");
    for (step, plan) in r.steps.iter().zip(&l.plan.steps) {
        let over = for_each(&plan.for_each);
        let over = match &plan.item_as {
            Some(key) => format!("{over}, each result carrying its item as `{key}`"),
            None => over,
        };
        let what = step
            .description
            .as_deref()
            .map(|d| format!(": {}", line(d)))
            .unwrap_or_default();
        let _ = writeln!(w, "- `{}`: {}{over}{what}", step.id, code(&call_name(plan)));
    }
    let columns: Vec<String> = l
        .plan
        .report
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let sources: Vec<String> = std::iter::once((&l.plan.report.from, &l.plan.report.resource_id))
        .chain(l.plan.report.also.iter().map(|s| (&s.from, &s.resource_id)))
        .map(|(from, id)| format!("`{from}` (identified by {})", code(id)))
        .collect();
    if sources.len() == 1 {
        let _ = writeln!(
            w,
            "\n**Finds** one row per result of `{}`, identified by {}; columns: {}.\n",
            l.plan.report.from,
            code(&l.plan.report.resource_id),
            codes(&columns)
        );
    } else {
        let _ = writeln!(
            w,
            "\n**Finds** one row per result of {}, in one table; columns: {}.\n",
            sources.join(", then "),
            codes(&columns)
        );
    }

    // What it changes.
    let _ = writeln!(w, "**When applied**\n");
    if l.plan.actions.is_empty() {
        let _ = writeln!(w, "Nothing: this runbook only reports.\n");
    } else {
        for a in &l.plan.actions {
            let over = for_each(&a.for_each);
            let when = a
                .when
                .as_ref()
                .map(|c| format!(", when {}", code(&line(c))))
                .unwrap_or_default();
            let token = match idempotency_tokens(a).as_slice() {
                [] => String::new(),
                names => format!(
                    "; idempotent: orgop fills {} with a token derived from the execution, the account and region, the action and the resource, so a retried or re-applied call is not done twice",
                    codes(names)
                ),
            };
            let _ = writeln!(
                w,
                "- `{}`: {}{over}{when}{token}",
                a.id,
                code(&call_name(a))
            );
        }
        let _ = writeln!(
            w,
            "\nSent only with `--apply`{}.\n",
            if l.apply_on_schedule {
                " and on every scheduled run"
            } else {
                "; scheduled runs are dry runs"
            }
        );
    }

    // Parameters.
    let _ = writeln!(w, "**Parameters**\n");
    if r.params.is_empty() {
        let _ = writeln!(w, "None.\n");
    } else {
        let _ = writeln!(w, "| name | type | default | description |");
        let _ = writeln!(w, "| --- | --- | --- | --- |");
        for (name, spec) in &r.params {
            let ty = l
                .plan
                .params
                .get(name)
                .map_or_else(String::new, |d| d.ty.clone());
            let default = spec.default.as_ref().map_or_else(
                || "required".into(),
                |v| code(&serde_json::to_string(v).unwrap_or_default()),
            );
            let _ = writeln!(
                w,
                "| `{name}` | {ty} | {default} | {} |",
                cell(spec.description.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(w);
    }

    // Constant data the runbook's expressions read (`shared`).
    if !r.shared.is_empty() {
        let _ = writeln!(w, "**Shared data** (edit the runbook to change it)\n");
        for (k, v) in &r.shared {
            let _ = writeln!(
                w,
                "- `{k}`: {}",
                code(&serde_json::to_string(v).unwrap_or_default())
            );
        }
        let _ = writeln!(w);
    }

    // When and where.
    let schedule = l.schedule.as_deref().map_or_else(
        || "none: run on demand".into(),
        |s| format!("{} (EventBridge)", code(s)),
    );
    let regions = if l.targets.enabled_regions {
        "every region enabled in each account".into()
    } else {
        codes(&l.targets.regions)
    };
    let _ = writeln!(w, "**Schedule**: {schedule}. **Regions**: {regions}.\n");

    // IAM.
    let roles = orgop_stacksets::roles(&[l]).map_err(|e| e.to_string())?;
    let _ = writeln!(w, "**IAM actions**\n");
    let _ = writeln!(
        w,
        "- `{}` (every run): {}",
        roles.read.name,
        codes(&roles.read.actions)
    );
    if let Some(rem) = &roles.remediation
        && !l.plan.actions.is_empty()
    {
        let _ = writeln!(
            w,
            "- `{}` (applied runs): {}",
            rem.name,
            codes(&rem.actions)
        );
    }

    // Offline cases.
    let cases = cases_of(&e.path);
    let _ = writeln!(w, "\n**Offline cases** (run by `orgop test`)\n");
    if cases.is_empty() {
        let _ = writeln!(w, "None.");
    } else {
        let dir = e
            .path
            .parent()
            .zip(e.path.file_stem())
            .map(|(d, s)| relative(&d.join("tests").join(s), base))
            .unwrap_or_default();
        for (name, description) in cases {
            let _ = writeln!(w, "- [`{name}`]({dir}/{name}/): {description}");
        }
    }
    Ok(())
}
