//! Result files: `results.jsonl` (one JSON object per item, the contract in DESIGN.md) and
//! `findings.csv` (stable columns: account_id, account_name, region, resource_id, then the
//! report's columns in the runbook's order).
use orgop_exec::ItemResult;
use orgop_plan::Plan;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The JSONL text for `results`.
pub fn jsonl(results: &[ItemResult]) -> String {
    let mut out = String::new();
    for r in results {
        out.push_str(&serde_json::to_string(r).expect("a result serializes"));
        out.push('\n');
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The report's column names, in order.
pub fn columns(plan: &Plan) -> Vec<String> {
    plan.report.columns.iter().map(|c| c.name.clone()).collect()
}

/// The findings CSV for `results`: the fixed four columns, then `columns`.
pub fn csv(columns: &[String], results: &[ItemResult]) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = vec!["account_id", "account_name", "region", "resource_id"];
    header.extend(columns.iter().map(String::as_str));
    w.write_record(&header).map_err(|e| e.to_string())?;
    for r in results {
        for f in &r.findings {
            let mut row = vec![
                r.account_id.clone(),
                r.account_name.clone(),
                r.region.clone(),
                cell(&f.resource_id),
            ];
            row.extend(
                columns
                    .iter()
                    .map(|c| cell(f.columns.get(c).unwrap_or(&Value::Null))),
            );
            w.write_record(&row).map_err(|e| e.to_string())?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Writes `results.jsonl` and `findings.csv` into `dir`; returns their paths.
pub fn write_dir(dir: &Path, plan: &Plan, results: &[ItemResult]) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in [
        ("results.jsonl", jsonl(results)),
        ("findings.csv", csv(&columns(plan), results)?),
    ] {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `results.jsonl` and `findings.csv` under `s3://bucket/prefix/` with the caller's
/// own credentials; returns their URIs.
pub async fn write_s3(
    client: &orgop_aws::AwsClient,
    uri: &str,
    plan: &Plan,
    results: &[ItemResult],
) -> Result<Vec<String>, String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri}: not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{uri}: no bucket"));
    }
    let prefix = prefix.trim_end_matches('/');
    let target = orgop_aws::Target::own(client.default_region());
    let mut written = Vec::new();
    for (name, text, content_type) in [
        ("results.jsonl", jsonl(results), "application/x-ndjson"),
        ("findings.csv", csv(&columns(plan), results)?, "text/csv"),
    ] {
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let params = serde_json::json!({"Bucket": bucket, "Key": key, "Body": text, "ContentType": content_type});
        client
            .call(&target, "s3", "PutObject", params)
            .await
            .map_err(|e| format!("s3://{bucket}/{key}: {e}"))?;
        written.push(format!("s3://{bucket}/{key}"));
    }
    Ok(written)
}
