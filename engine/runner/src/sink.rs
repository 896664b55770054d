//! Result files: `results.jsonl` (one JSON object per item, the contract in docs/DESIGN.md) and
//! `findings.csv` (stable columns: account_id, account_name, region, resource_id, then the
//! report's columns in the runbook's order). Both are sorted by account and region. A CSV
//! cell of text starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
//! `'` so a spreadsheet shows it instead of running it as a formula (OWASP's CSV injection
//! advice); JSON numbers such as `-5` are written as they are.
//!
//! A run of any size goes through a [`Spool`]: each result is appended to a file as it is
//! done and only its place is remembered, so memory does not grow with the organization and
//! an interrupted run leaves what it finished on disk.
use crate::Summary;
use orgop_exec::ItemResult;
use orgop_plan::Plan;
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The fixed leading columns of `findings.csv`.
pub use orgop_plan::contract::FIXED_COLUMNS;

/// The results file's name.
pub const RESULTS_JSONL: &str = "results.jsonl";
/// The findings file's name.
pub const FINDINGS_CSV: &str = "findings.csv";

/// Why result files could not be written; each names the file or object.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A local file (the spool, or an output file) could not be created, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A spooled result could not be read back.
    #[error("{}: a spooled result is not valid: {source}", path.display())]
    Spooled {
        /// The spool file.
        path: PathBuf,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// The findings CSV could not be written.
    #[error("{file}: {source}")]
    Csv {
        /// `findings.csv` or its object.
        file: String,
        /// What failed.
        source: csv::Error,
    },
    /// `--out` is not `s3://bucket[/prefix]`.
    #[error("{0}: not an s3://BUCKET[/PREFIX] URI")]
    NotS3(String),
    /// S3 refused an object.
    #[error("s3://{bucket}/{key}: {source}")]
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The client's error.
        source: Box<orgop_aws::CallError>,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One result file, ready to be stored: `results.jsonl` or `findings.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultFile {
    /// File name (the last part of the key or path).
    pub name: &'static str,
    /// Its content type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// `prefix/name`, or `name` alone under an empty prefix.
pub fn key_under(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

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
        Value::String(s) => text_cell(s),
        // A number (`-5`) is not a formula, and other JSON starts with `{`, `[`, `t`, `f`.
        other => other.to_string(),
    }
}

/// Text as a CSV cell: a leading `'` when a spreadsheet would read it as a formula.
fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The report's column names, in order.
pub fn columns(plan: &Plan) -> Vec<String> {
    plan.report.columns.iter().map(|c| c.name.clone()).collect()
}

fn csv_header<W: Write>(w: &mut csv::Writer<W>, columns: &[String]) -> Result<(), csv::Error> {
    let header = FIXED_COLUMNS
        .iter()
        .copied()
        .chain(columns.iter().map(String::as_str));
    w.write_record(header)
}

fn csv_rows<W: Write>(
    w: &mut csv::Writer<W>,
    columns: &[String],
    r: &ItemResult,
) -> Result<(), csv::Error> {
    for f in &r.findings {
        let mut row = vec![
            text_cell(&r.account_id),
            text_cell(&r.account_name),
            text_cell(&r.region),
            cell(&f.resource_id),
        ];
        row.extend(
            columns
                .iter()
                .map(|c| cell(f.columns.get(c).unwrap_or(&Value::Null))),
        );
        w.write_record(&row)?;
    }
    Ok(())
}

/// The findings CSV for `results`: the reference the spool is tested against.
#[cfg(test)]
fn csv(columns: &[String], results: &[ItemResult]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    csv_header(&mut w, columns).expect("writing to memory");
    for r in results {
        csv_rows(&mut w, columns, r).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("CSV of UTF-8 text")
}

/// Where one result sits in the spool: its line of JSON and its rows of CSV.
struct Entry {
    account_id: String,
    region: String,
    line: (u64, usize),
    rows: (u64, usize),
}

/// A file written only at its end, remembering how much it holds.
struct Appender {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
}

/// How often a spool is fsync'd while results come in (each result is written to the file
/// as it is done, so a killed process loses none; this bounds what a power cut can).
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Appender {
    fn create(path: PathBuf) -> Result<Appender, SinkError> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(Appender {
            path,
            file: BufWriter::new(file),
            written: 0,
        })
    }

    /// Appends `bytes`; answers where they are.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<(u64, usize)> {
        self.file.write_all(bytes)?;
        let at = self.written;
        self.written += bytes.len() as u64;
        Ok((at, bytes.len()))
    }

    /// Reads back what [`Appender::append`] placed at `(at, len)` into `buf`.
    fn read(&mut self, (at, len): (u64, usize), buf: &mut Vec<u8>) -> Result<(), SinkError> {
        buf.resize(len, 0);
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(buf))
            .map_err(io_error(&self.path))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.file.flush().map_err(io_error(&self.path))
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.flush()?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(io_error(&self.path))
    }

    /// Puts the file position back at the end, for further appends.
    fn rewind_to_end(&mut self) -> Result<(), SinkError> {
        self.file
            .get_mut()
            .seek(SeekFrom::End(0))
            .map(|_| ())
            .map_err(io_error(&self.path))
    }
}

/// Results as they are done, appended to a file (JSONL, completion order) and their findings'
/// CSV rows to another, with only their places, the running [`Summary`] and the items that
/// are not ok kept in memory; then written out sorted by account and region
/// ([`Spool::write_dir`], [`Spool::write_s3`], [`Spool::files`]) by copying bytes, never
/// parsing a result again.
pub struct Spool {
    lines: Appender,
    rows: Appender,
    columns: Vec<String>,
    /// The buffer every result's JSON line is made in.
    line: Vec<u8>,
    index: Vec<Entry>,
    summary: Summary,
    not_ok: Vec<ItemResult>,
    error: Option<SinkError>,
    synced: std::time::Instant,
}

impl Spool {
    /// A spool of its own in the temporary directory (`orgop-<label>-<pid>-<n>.spool.jsonl`),
    /// for results bound elsewhere than a local directory (S3). `columns` are the report's.
    pub fn temporary(label: &str, columns: Vec<String>) -> Result<Spool, SinkError> {
        static SPOOLS: AtomicU64 = AtomicU64::new(0);
        let n = SPOOLS.fetch_add(1, Ordering::Relaxed);
        let name = format!("orgop-{label}-{}-{n}.spool.jsonl", std::process::id());
        Spool::create(std::env::temp_dir().join(name), columns)
    }

    /// A spool at `path` (created, or truncated), with the findings' CSV rows beside it
    /// (`path` with the extension `csv`); `columns` are the report's. Remove both with
    /// [`Spool::remove`].
    pub fn create(path: PathBuf, columns: Vec<String>) -> Result<Spool, SinkError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        let rows = Appender::create(path.with_extension("csv"))?;
        Ok(Spool {
            lines: Appender::create(path)?,
            rows,
            columns,
            line: Vec::new(),
            index: Vec::new(),
            summary: Summary::new(),
            not_ok: Vec::new(),
            error: None,
            synced: std::time::Instant::now(),
        })
    }

    /// Takes one result: written to the spool's files at once (a killed process loses none),
    /// fsync'd at most every second and by [`Spool::sync`]. It is always counted; a failure to
    /// write it is kept and returned by [`Spool::error`] and the write methods, so the run
    /// itself goes on.
    pub fn push(&mut self, r: ItemResult) {
        self.summary.add(&r);
        if self.error.is_none()
            && let Err(e) = self.append(&r)
        {
            self.error = Some(e);
        }
        if r.status.is_failure() {
            self.not_ok.push(r);
        }
    }

    fn append(&mut self, r: &ItemResult) -> Result<(), SinkError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, r).expect("a result serializes");
        self.line.push(b'\n');
        let mut w = csv::Writer::from_writer(Vec::new());
        csv_rows(&mut w, &self.columns, r).map_err(|source| SinkError::Csv {
            file: self.rows.path.display().to_string(),
            source,
        })?;
        let rows = w
            .into_inner()
            .map_err(|e| io_error(&self.rows.path)(e.into_error()))?;
        let line = self
            .lines
            .append(&self.line)
            .map_err(io_error(&self.lines.path))?;
        let rows = self.rows.append(&rows).map_err(io_error(&self.rows.path))?;
        self.index.push(Entry {
            account_id: r.account_id.clone(),
            region: r.region.clone(),
            line,
            rows,
        });
        self.rows.flush()?;
        self.lines.flush()?;
        if self.synced.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Puts what the spool holds on disk (fsync).
    pub fn sync(&mut self) -> Result<(), SinkError> {
        self.rows.sync()?;
        self.lines.sync()?;
        self.synced = std::time::Instant::now();
        Ok(())
    }

    /// The first result that could not be spooled, if one could not.
    pub fn error(&self) -> Option<&SinkError> {
        self.error.as_ref()
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

    /// Writes `results.jsonl` (each line as spooled) and the findings CSV (each result's rows
    /// as spooled, under the header), both sorted by account and region. `names` name the
    /// two outputs in errors.
    fn write(
        &mut self,
        jsonl: &mut impl Write,
        csv: &mut impl Write,
        names: (&Path, &Path),
    ) -> Result<(), SinkError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.lines.flush()?;
        self.rows.flush()?;
        self.index
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        let mut header = csv::Writer::from_writer(Vec::new());
        csv_header(&mut header, &self.columns).map_err(|source| SinkError::Csv {
            file: names.1.display().to_string(),
            source,
        })?;
        let header = header
            .into_inner()
            .map_err(|e| io_error(names.1)(e.into_error()))?;
        csv.write_all(&header).map_err(io_error(names.1))?;
        let mut buf = Vec::new();
        for e in &self.index {
            self.lines.read(e.line, &mut buf)?;
            jsonl.write_all(&buf).map_err(io_error(names.0))?;
            self.rows.read(e.rows, &mut buf)?;
            csv.write_all(&buf).map_err(io_error(names.1))?;
        }
        jsonl.flush().map_err(io_error(names.0))?;
        csv.flush().map_err(io_error(names.1))?;
        self.lines.rewind_to_end()?;
        self.rows.rewind_to_end()
    }

    /// `results.jsonl` and `findings.csv`, in memory, sorted by account and region: for
    /// object stores, which take whole bodies.
    pub fn files(&mut self) -> Result<[ResultFile; 2], SinkError> {
        let (mut jsonl, mut csv) = (Vec::new(), Vec::new());
        let names = (Path::new(RESULTS_JSONL), Path::new(FINDINGS_CSV));
        self.write(&mut jsonl, &mut csv, names)?;
        Ok([
            ResultFile {
                name: RESULTS_JSONL,
                content_type: "application/x-ndjson",
                body: jsonl,
            },
            ResultFile {
                name: FINDINGS_CSV,
                content_type: "text/csv",
                body: csv,
            },
        ])
    }

    /// Writes `results.jsonl` and `findings.csv` into `dir`; returns their paths. Each is
    /// written beside its place (`.<name>.partial`), fsync'd, then renamed over it: a reader
    /// sees the previous file or the whole new one, never a part.
    pub fn write_dir(&mut self, dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let open = |name: &str| {
            let path = dir.join(format!(".{name}.partial"));
            File::create(&path)
                .map(|f| (BufWriter::new(f), path.clone()))
                .map_err(io_error(&path))
        };
        let (mut jsonl, jsonl_tmp) = open(RESULTS_JSONL)?;
        let (mut csv, csv_tmp) = open(FINDINGS_CSV)?;
        self.write(&mut jsonl, &mut csv, (&jsonl_tmp, &csv_tmp))?;
        let mut paths = Vec::new();
        for (w, tmp, name) in [
            (jsonl, jsonl_tmp, RESULTS_JSONL),
            (csv, csv_tmp, FINDINGS_CSV),
        ] {
            let file = w.into_inner().map_err(|e| io_error(&tmp)(e.into_error()))?;
            file.sync_all().map_err(io_error(&tmp))?;
            let path = dir.join(name);
            std::fs::rename(&tmp, &path).map_err(io_error(&tmp))?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Writes `results.jsonl` and `findings.csv` under `s3://bucket/prefix/` with the
    /// caller's own credentials; returns their URIs.
    pub async fn write_s3(
        &mut self,
        client: &orgop_aws::AwsClient,
        uri: &str,
    ) -> Result<Vec<String>, SinkError> {
        let (bucket, prefix) = s3_location(uri)?;
        let mut written = Vec::new();
        for f in self.files()? {
            let key = key_under(prefix, f.name);
            client
                .put_object(bucket, &key, f.body, f.content_type)
                .await
                .map_err(|e| SinkError::S3 {
                    bucket: bucket.to_string(),
                    key: key.clone(),
                    source: Box::new(e),
                })?;
            written.push(format!("s3://{bucket}/{key}"));
        }
        Ok(written)
    }

    /// Deletes the spool's two files.
    pub fn remove(self) -> Result<(), SinkError> {
        let Spool { lines, rows, .. } = self;
        for a in [lines, rows] {
            let Appender { path, file, .. } = a;
            drop(file);
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
        Ok(())
    }
}

/// `s3://bucket/prefix` → (bucket, prefix without a trailing slash).
fn s3_location(uri: &str) -> Result<(&str, &str), SinkError> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| SinkError::NotS3(uri.to_string()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(SinkError::NotS3(uri.to_string()));
    }
    Ok((bucket, prefix.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orgop_exec::{Finding, ItemError, Status};
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
        let cols = vec!["size_gib".to_string()];
        let mut spool = Spool::create(dir.join("spool.jsonl"), cols.clone()).unwrap();
        for r in results.iter().cloned() {
            spool.push(r);
        }
        assert!(
            dir.join("spool.csv").exists(),
            "the rows' spool is beside it"
        );
        let [j, c] = spool.files().unwrap();
        assert_eq!((j.name, c.name), (RESULTS_JSONL, FINDINGS_CSV));
        let (j, c) = (j.body, c.body);

        results.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        assert_eq!(String::from_utf8(j).unwrap(), jsonl(&results));
        assert_eq!(String::from_utf8(c).unwrap(), csv(&cols, &results));
        assert_eq!(spool.summary(), &Summary::of(&results));
        let not_ok: Vec<&str> = spool.not_ok().iter().map(|r| r.region.as_str()).collect();
        assert_eq!(not_ok, ["*"]);

        // More results after a write are kept, and a second write has them all.
        spool.push(ok("000000000000", "us-east-1", &["vol-0"]));
        let [j, c] = spool.files().unwrap();
        assert_eq!(String::from_utf8(c.body).unwrap().lines().count(), 5);
        let j = String::from_utf8(j.body).unwrap();
        assert_eq!(j.lines().count(), 5);
        assert!(j.starts_with(r#"{"account_id":"000000000000""#), "{j}");
        spool.remove().unwrap();
        assert!(!dir.join("spool.jsonl").exists() && !dir.join("spool.csv").exists());
    }

    #[test]
    fn text_a_spreadsheet_would_run_as_a_formula_is_quoted() {
        let mut r = ok("111111111111", "us-east-1", &[]);
        r.account_name = "=cmd".into();
        let cols: Vec<String> = ["link", "plus", "minus", "at", "tab", "cr", "n", "plain"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        r.findings = vec![Finding {
            resource_id: Value::from("-vol"),
            columns: [
                ("link", Value::from("=HYPERLINK(\"http://x\",\"y\")")),
                ("plus", Value::from("+1")),
                ("minus", Value::from("-x")),
                ("at", Value::from("@SUM(A1)")),
                ("tab", Value::from("\tx")),
                ("cr", Value::from("\rx")),
                ("n", Value::from(-5)),
                ("plain", Value::from("vol-1 = 8")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }];
        let out = csv(&cols, std::slice::from_ref(&r));
        let row: Vec<String> = csv::Reader::from_reader(out.as_bytes())
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(
            row,
            [
                "111111111111",
                "'=cmd",
                "us-east-1",
                "'-vol",
                "'=HYPERLINK(\"http://x\",\"y\")",
                "'+1",
                "'-x",
                "'@SUM(A1)",
                "'\tx",
                "'\rx",
                "-5",
                "vol-1 = 8",
            ]
        );

        // The spool writes the same escaped rows.
        let tmp = orgop_testkit::TempDir::new("spool-escape-test");
        let mut spool = Spool::create(tmp.path().join("spool.jsonl"), cols.clone()).unwrap();
        spool.push(r);
        let [_, c] = spool.files().unwrap();
        assert_eq!(String::from_utf8(c.body).unwrap(), out);
        spool.remove().unwrap();
    }
}
