//! Hostile runbooks end in a located error, in seconds and 64 MB, never an abort or a
//! hang: the limits of `orgop_syntax::limits` (file size, YAML depth) and `orgop_plan::limits`
//! (JMESPath depth, template fuel, recursion and output). Before, a 3,000-deep `select`
//! overflowed the stack in `run` (20,000: in `validate`), a doubling macro ran forever, and
//! `"x" * 100000000` took 4.7 GB for 8 items. Files small enough to check in are also in
//! tests/invalid/; these are generated.
use orgop_testkit::{Measured, TempDir, measure, moto, repo, seed_org};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Each ends in about 0.1-0.3 s on an idle machine (the figures are printed with
/// `--no-capture`); before the limits, the same inputs ran forever. The bound is far from both:
/// a shared CI machine under load was seen taking 1.08 s for one of them, and this is a test of
/// termination, not of speed (speed is measured in BENCHMARKS.md).
const MAX_TIME: Duration = Duration::from_secs(10);
const MAX_RSS_KIB: u64 = 64 * 1024;

fn orgop() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orgop"));
    c.current_dir(repo());
    c
}

fn stderr(m: &Measured) -> String {
    let s = String::from_utf8_lossy(&m.output.stderr);
    s.chars().take(4000).collect()
}

/// Ended by itself (not a signal: a stack overflow aborts) with `code`, in time and memory.
fn assert_bounded(m: &Measured, code: i32, what: &str) {
    let err = stderr(m);
    // Shown with --no-capture: the margins, for the record.
    eprintln!(
        "{what}: exit {:?} in {:?}, peak RSS {} KiB",
        m.output.status.code(),
        m.elapsed,
        m.peak_rss_kib
    );
    assert_eq!(m.output.status.code(), Some(code), "{what}: {err}");
    assert!(m.elapsed < MAX_TIME, "{what} took {:?}: {err}", m.elapsed);
    assert!(
        m.peak_rss_kib > 0 && m.peak_rss_kib < MAX_RSS_KIB,
        "{what} peaked at {} KiB",
        m.peak_rss_kib
    );
}

/// The catalog's unused-ebs runbook with `from` replaced by `to`, written to `dir`.
fn variant(dir: &Path, name: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    assert!(text.contains(from), "{from}");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path.to_str().unwrap().to_string()
}

fn validate(path: &str) -> Measured {
    measure(orgop().args(["validate", path]))
}

#[test]
fn jmespath_nested_20000_deep_is_refused_by_validate() {
    let dir = TempDir::new("limits-jmespath");
    let n = 20_000;
    let deep = format!("select: \"{}Volumes{}\"", "(".repeat(n), ")".repeat(n));
    let path = variant(dir.path(), "deep.yaml", "select: Volumes[]", &deep);
    let m = validate(&path);
    assert_bounded(&m, 1, "validate 20,000-deep JMESPath");
    assert!(
        stderr(&m).contains(&format!(
            "{path}:37:78: JMESPath in `select` nests deeper than 64 levels, the limit"
        )),
        "{}",
        stderr(&m)
    );
}

#[test]
fn a_100000_deep_jmespath_literal_is_refused_in_a_short_message() {
    let dir = TempDir::new("limits-literal");
    let n = 100_000;
    let deep = format!("select: \"`{}{}`\"", "[".repeat(n), "]".repeat(n));
    let path = variant(dir.path(), "literal.yaml", "select: Volumes[]", &deep);
    let m = validate(&path);
    assert_bounded(&m, 1, "validate 100,000-deep JMESPath literal");
    // The parser quotes the literal: cut, not 200 KB of stderr.
    assert!(m.output.stderr.len() < 2_000, "{}", stderr(&m));
    assert!(
        stderr(&m).contains("Unable to parse literal JSON"),
        "{}",
        stderr(&m)
    );
}

#[test]
fn yaml_nested_100000_deep_is_refused_by_validate() {
    let dir = TempDir::new("limits-yaml");
    let n = 100_000;
    let path = dir.path().join("deep.yaml");
    let text = format!("name: deep\nd: {}{}\n", "[".repeat(n), "]".repeat(n));
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let m = validate(path);
    assert_bounded(&m, 1, "validate 100,000-deep YAML");
    assert!(
        stderr(&m).contains(&format!("{path}:2:")) && stderr(&m).contains("deeper than 100 levels"),
        "{}",
        stderr(&m)
    );
}

#[test]
fn a_52_mb_file_is_refused_without_reading_it_whole() {
    let dir = TempDir::new("limits-size");
    let path = dir.path().join("big.yaml");
    let text = format!("name: big\ndescription: \"{}\"\n", "x".repeat(52 << 20));
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let m = validate(path);
    // Invalid (1), not unreadable (2): it was read as far as the limit.
    assert_bounded(&m, 1, "validate 52 MB file");
    assert!(
        stderr(&m).contains(&format!(
            "{path}:1:1: the file is larger than the limit of 1048576 bytes (1 MiB)"
        )),
        "{}",
        stderr(&m)
    );
    // Just under the limit is still read and checked.
    let small = dir.path().join("small.yaml");
    let text = format!("name: [\"{}\"\n", "x".repeat((1 << 20) - 100));
    std::fs::write(&small, text).unwrap();
    let m = validate(small.to_str().unwrap());
    assert!(stderr(&m).contains("invalid YAML"), "{}", stderr(&m));
}

/// Runs `path` dry against moto in one region,
/// and returns the measured run and its results.
fn run_dry(path: &str, endpoint: &str, out: &Path) -> (Measured, Vec<serde_json::Value>) {
    let m = measure(
        orgop()
            .args(["run", path, "--param", "min_age_days=0", "--regions"])
            .args(["us-east-1", "--out", out.to_str().unwrap()])
            .args(["--endpoint-url", endpoint])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL"),
    );
    let text = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_else(|e| panic!("no results ({e}): {}", stderr(&m)));
    let results = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (m, results)
}

#[test]
fn runaway_templates_are_item_errors_in_bounded_time_and_64_mb() {
    let emulator = moto();
    // 8 items (7 members and the management account), as in the report of 4.7 GB.
    seed_org(&emulator.url(), 7, "us-east-1", 1);
    let dir = TempDir::new("limits-templates");
    let cases = [
        (
            "macro.yaml",
            "Values: [available]",
            "Values: ['{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}\
             {% endmacro %}{{ f(40) }}']",
            "recursed deeper than the limit of 100",
        ),
        (
            "loops.yaml",
            "Values: [available]",
            "Values: ['{% for i in \"x\" * 100000 %}{% for j in \"x\" * 100000 %}{{ j }}\
             {% endfor %}{% endfor %}']",
            "more work than the limit of 200000 fuel",
        ),
        (
            "repeat.yaml",
            "Values: [available]",
            "Values: ['{{ \"x\" * 100000000 }}']",
            "more work than the limit of 200000 fuel",
        ),
        (
            "output.yaml",
            "Values: [available]",
            "Values: ['{% for i in \"x\" * 3000 %}{{ \"x\" * 1000 }}{% endfor %}']",
            "over the limit of 1048576 bytes",
        ),
    ];
    // A 3,000-deep select (tests/invalid/) is refused before anything runs, without an abort.
    let out = dir.path().join("deep-out");
    let m = measure(
        orgop()
            .args([
                "run",
                "tests/invalid/jmespath-nested-too-deep.yaml",
                "--out",
            ])
            .arg(&out)
            .args(["--endpoint-url", &emulator.url()]),
    );
    assert_bounded(&m, 1, "run 3,000-deep JMESPath");
    assert!(
        stderr(&m).contains("nests deeper than 64 levels"),
        "{}",
        stderr(&m)
    );
    for (name, from, to, why) in cases {
        let path = variant(dir.path(), name, from, to);
        let out = dir.path().join(name.replace(".yaml", "-out"));
        let v = validate(&path);
        assert_eq!(v.output.status.code(), Some(0), "{name}: {}", stderr(&v));
        let (m, results) = run_dry(&path, &emulator.url(), &out);
        assert_bounded(&m, 1, name);
        assert_eq!(results.len(), 8, "{name}");
        for r in &results {
            assert_eq!(r["status"], "error", "{name}: {r}");
            let message = r["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(why), "{name}: {message}");
        }
    }
}
