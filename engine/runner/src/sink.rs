//! Result files: `results.jsonl` (one JSON object per item, the contract in docs/DESIGN.md) and
//! `findings.csv` (stable columns: account_id, account_name, region, resource_id, then the
//! report's columns in the runbook's order). Both are sorted by account and region.
//!
//! A run of any size goes through a [`Spool`]: each result is appended to a file as it is
//! done and only its place is remembered, so memory does not grow with the organization and
//! an interrupted run leaves what it finished on disk.
use crate::Summary;
use orgop_exec::{ItemResult, Status};
use orgop_plan::Plan;
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The fixed leading columns of `findings.csv`.
const FIXED_COLUMNS: [&str; 4] = ["account_id", "account_name", "region", "resource_id"];

/// The JSONL text for `results`: the reference the spool is tested against.
#[cfg(test)]
fn jsonl(results: &[ItemResult]) -> String {
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

fn csv_header<W: Write>(w: &mut csv::Writer<W>, columns: &[String]) -> Result<(), String> {
    let header = FIXED_COLUMNS
        .iter()
        .copied()
        .chain(columns.iter().map(String::as_str));
    w.write_record(header).map_err(|e| e.to_string())
}

fn csv_rows<W: Write>(
    w: &mut csv::Writer<W>,
    columns: &[String],
    r: &ItemResult,
) -> Result<(), String> {
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
    Ok(())
}

/// The findings CSV for `results`: the reference the spool is tested against.
#[cfg(test)]
fn csv(columns: &[String], results: &[ItemResult]) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    csv_header(&mut w, columns)?;
    for r in results {
        csv_rows(&mut w, columns, r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Where one result sits in the spool file.
struct Entry {
    account_id: String,
    region: String,
    at: u64,
    len: usize,
}

/// Results as they are done, appended to a file (JSONL, completion order) with only their
/// place, the running [`Summary`] and the items that are not ok kept in memory; then written
/// out sorted by account and region ([`Spool::write_dir`], [`Spool::write_s3`]).
pub struct Spool {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
    index: Vec<Entry>,
    summary: Summary,
    not_ok: Vec<ItemResult>,
    error: Option<String>,
}

impl Spool {
    /// A spool of its own in the temporary directory (`orgop-<label>-<pid>-<n>.spool.jsonl`),
    /// for results bound elsewhere than a local directory (S3).
    pub fn temporary(label: &str) -> Result<Spool, String> {
        static SPOOLS: AtomicU64 = AtomicU64::new(0);
        let n = SPOOLS.fetch_add(1, Ordering::Relaxed);
        let name = format!("orgop-{label}-{}-{n}.spool.jsonl", std::process::id());
        Spool::create(std::env::temp_dir().join(name))
    }

    /// A spool at `path` (created, or truncated). Remove it with [`Spool::remove`].
    pub fn create(path: PathBuf) -> Result<Spool, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Spool {
            path,
            file: BufWriter::new(file),
            written: 0,
            index: Vec::new(),
            summary: Summary::new(),
            not_ok: Vec::new(),
            error: None,
        })
    }

    /// Takes one result. It is always counted; a failure to write it is kept and returned by
    /// the write methods, so the run itself goes on.
    pub fn push(&mut self, r: ItemResult) {
        self.summary.add(&r);
        let mut line = serde_json::to_vec(&r).expect("a result serializes");
        line.push(b'\n');
        match self.file.write_all(&line) {
            Ok(()) => {
                self.index.push(Entry {
                    account_id: r.account_id.clone(),
                    region: r.region.clone(),
                    at: self.written,
                    len: line.len(),
                });
                self.written += line.len() as u64;
            }
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("{}: {e}", self.path.display()));
            }
        }
        if matches!(r.status, Status::Denied | Status::Error) {
            self.not_ok.push(r);
        }
    }

    /// Counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The items that ended `denied` or `error`, sorted by account and region.
    pub fn not_ok(&self) -> Vec<&ItemResult> {
        let mut v: Vec<&ItemResult> = self.not_ok.iter().collect();
        v.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        v
    }

    /// Writes `results.jsonl` (each line as spooled) and the findings CSV with `columns`,
    /// both sorted by account and region.
    pub fn write(
        &mut self,
        columns: &[String],
        jsonl: &mut impl Write,
        csv: impl Write,
    ) -> Result<(), String> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let spool_err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        self.file.flush().map_err(spool_err)?;
        let file = self.file.get_mut();
        self.index
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        let mut w = csv::Writer::from_writer(csv);
        csv_header(&mut w, columns)?;
        let mut line = Vec::new();
        for e in &self.index {
            line.resize(e.len, 0);
            file.seek(SeekFrom::Start(e.at))
                .and_then(|_| file.read_exact(&mut line))
                .map_err(spool_err)?;
            jsonl.write_all(&line).map_err(|e| e.to_string())?;
            let r: ItemResult = serde_json::from_slice(&line)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            csv_rows(&mut w, columns, &r)?;
        }
        w.flush().map_err(|e| e.to_string())?;
        jsonl.flush().map_err(|e| e.to_string())?;
        // The file position is left at the end for any further pushes.
        file.seek(SeekFrom::End(0)).map_err(spool_err)?;
        Ok(())
    }

    /// Writes `results.jsonl` and `findings.csv` into `dir`; returns their paths.
    pub fn write_dir(&mut self, dir: &Path, plan: &Plan) -> Result<Vec<PathBuf>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let open = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map(|f| (BufWriter::new(f), path.clone()))
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        let (mut jsonl, jsonl_path) = open("results.jsonl")?;
        let (csv, csv_path) = open("findings.csv")?;
        self.write(&columns(plan), &mut jsonl, csv)?;
        Ok(vec![jsonl_path, csv_path])
    }

    /// Writes `results.jsonl` and `findings.csv` under `s3://bucket/prefix/` with the
    /// caller's own credentials; returns their URIs.
    pub async fn write_s3(
        &mut self,
        client: &orgop_aws::AwsClient,
        uri: &str,
        plan: &Plan,
    ) -> Result<Vec<String>, String> {
        let (bucket, prefix) = s3_location(uri)?;
        let (mut jsonl, mut csv) = (Vec::new(), Vec::new());
        self.write(&columns(plan), &mut jsonl, &mut csv)?;
        let target = orgop_aws::Target::own(client.default_region());
        let mut written = Vec::new();
        for (name, bytes, content_type) in [
            ("results.jsonl", jsonl, "application/x-ndjson"),
            ("findings.csv", csv, "text/csv"),
        ] {
            let key = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
            let params = serde_json::json!({"Bucket": bucket, "Key": key, "Body": text, "ContentType": content_type});
            client
                .call(&target, "s3", "PutObject", params)
                .await
                .map_err(|e| format!("s3://{bucket}/{key}: {e}"))?;
            written.push(format!("s3://{bucket}/{key}"));
        }
        Ok(written)
    }

    /// Deletes the spool file.
    pub fn remove(self) -> Result<(), String> {
        let Spool { path, file, .. } = self;
        drop(file);
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `s3://bucket/prefix` → (bucket, prefix without a trailing slash).
fn s3_location(uri: &str) -> Result<(&str, &str), String> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri}: not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{uri}: no bucket"));
    }
    Ok((bucket, prefix.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orgop_exec::{Finding, ItemError};
    use orgop_plan::contract::Item;

    fn item(account: &str, name: &str, region: &str) -> Item {
        Item {
            account_id: account.into(),
            account_name: name.into(),
            region: region.into(),
        }
    }

    fn ok(account: &str, region: &str, volumes: &[&str]) -> ItemResult {
        let mut r = ItemResult::failed(
            item(account, "member", region),
            Status::Ok,
            ItemError::new("", ""),
        );
        r.error = None;
        r.findings = volumes
            .iter()
            .map(|v| Finding {
                resource_id: Value::from(*v),
                columns: [("size_gib".to_string(), Value::from(8))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        r
    }

    #[test]
    fn the_spool_writes_what_the_in_memory_writers_write_sorted() {
        let mut results = vec![
            ok("222222222222", "us-east-1", &["vol-3"]),
            ItemResult::failed(
                item("111111111111", "a", "*"),
                Status::Denied,
                ItemError::new("AccessDenied", "no"),
            ),
            ok("111111111111", "us-east-1", &["vol-1", "vol-2"]),
            ok("111111111111", "eu-west-1", &[]),
        ];
        let tmp = orgop_testkit::TempDir::new("spool-test");
        let dir = tmp.path();
        let mut spool = Spool::create(dir.join("spool.jsonl")).unwrap();
        for r in results.iter().cloned() {
            spool.push(r);
        }
        let cols = vec!["size_gib".to_string()];
        let (mut j, mut c) = (Vec::new(), Vec::new());
        spool.write(&cols, &mut j, &mut c).unwrap();

        results.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        assert_eq!(String::from_utf8(j).unwrap(), jsonl(&results));
        assert_eq!(String::from_utf8(c).unwrap(), csv(&cols, &results).unwrap());
        assert_eq!(spool.summary(), &Summary::of(&results));
        let not_ok: Vec<&str> = spool.not_ok().iter().map(|r| r.region.as_str()).collect();
        assert_eq!(not_ok, ["*"]);

        // More results after a write are kept, and a second write has them all.
        spool.push(ok("000000000000", "us-east-1", &["vol-0"]));
        let (mut j, mut c) = (Vec::new(), Vec::new());
        spool.write(&cols, &mut j, &mut c).unwrap();
        let j = String::from_utf8(j).unwrap();
        assert_eq!(j.lines().count(), 5);
        assert!(j.starts_with(r#"{"account_id":"000000000000""#), "{j}");
        spool.remove().unwrap();
        assert!(!dir.join("spool.jsonl").exists());
    }
}
