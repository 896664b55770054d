//! `orgop validate` as users and CI see it: the broken-runbook corpus under tests/invalid/
//! (each file ends with `# expect: LINE:COL message` lines naming every diagnostic it must
//! produce), the shipped catalog, exit codes and machine-readable output.
use orgop_testkit::{TempDir, repo};
use std::process::{Command, Output};

fn orgop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("orgop runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_broken_runbook_reports_each_expected_problem_where_it_is() {
    insta::glob!("invalid/*.yaml", |path| {
        let rel = path
            .strip_prefix(repo())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let out = orgop(&["validate", &rel]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{rel} must be invalid:\n{err}");

        let text = std::fs::read_to_string(path).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(!expected.is_empty(), "{rel} has no `# expect:` lines");
        let reported: Vec<&str> = err.lines().filter(|l| l.starts_with(&rel)).collect();
        assert_eq!(
            reported.len(),
            expected.len(),
            "{rel}: expected {expected:#?}\ngot:\n{err}"
        );
        for want in &expected {
            let (pos, message) = want.split_once(' ').unwrap();
            let prefix = format!("{rel}:{pos}: ");
            assert!(
                reported
                    .iter()
                    .any(|l| l.starts_with(&prefix) && l[prefix.len()..].starts_with(message)),
                "{rel}: no diagnostic `{pos}: {message}`; got:\n{err}"
            );
        }
        insta::assert_snapshot!(format!("exit: {:?}\n{err}", out.status.code()));
    });
}

#[test]
fn corpus_is_large_enough() {
    let n = std::fs::read_dir(repo().join("tests/invalid"))
        .unwrap()
        .count();
    assert!(
        n >= 25,
        "the issue asks for at least 25 broken runbooks, found {n}"
    );
}

#[test]
fn all_problems_of_a_file_are_reported_together() {
    let out = orgop(&["validate", "tests/invalid/many-problems.yaml"]);
    let err = stderr(&out);
    let n = err
        .lines()
        .filter(|l| l.starts_with("tests/invalid/many-problems.yaml:"))
        .count();
    assert_eq!(n, 4, "{err}");
    assert!(err.contains("(4 errors, 0 warnings)"), "{err}");
}

#[test]
fn the_model_corpus_covers_at_least_25_mistakes() {
    // tests/invalid/model-*.yaml: calls, parameters, pagination, JMESPath and `item` reads
    // checked against AWS's models (issue 11); each file is checked by the test above.
    let n = std::fs::read_dir(repo().join("tests/invalid"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("model-"))
        .count();
    assert!(n >= 25, "the issue asks for at least 25, found {n}");
}

/// The correct runbooks: tests/valid/ (lists, maps, timestamps, enums, nested filters,
/// pipes, functions, `for_each` chains) and the catalog.
fn clean_runbooks() -> Vec<String> {
    let mut files: Vec<String> = ["tests/valid", "runbooks"]
        .iter()
        .flat_map(|d| std::fs::read_dir(repo().join(d)).unwrap().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            p.strip_prefix(repo())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn correct_runbooks_pass_the_model_checks_without_a_warning() {
    let files = clean_runbooks();
    assert!(files.len() >= 15, "{files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = orgop(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "checked {n} runbooks: {n} valid, 0 invalid (0 errors, 0 warnings)",
            n = files.len()
        )),
        "{err}"
    );
}

#[test]
fn a_misspelled_field_in_each_correct_runbook_is_caught() {
    // The clean files pass because they are right, not because their reads go unchecked:
    // the field their report's resource id reads, misspelled, is an error in every one, which
    // needs the types of every step up to the report (chains, selections, pipes).
    let dir = TempDir::new("misspelled");
    for file in clean_runbooks() {
        let text = std::fs::read_to_string(repo().join(&file)).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("resource_id: "))
            .unwrap_or_else(|| panic!("{file} has no resource_id"));
        let field = line.trim_start().trim_start_matches("resource_id: ");
        let typo = format!("{}X", field.trim_matches('"'));
        let broken = text.replacen(line, &line.replace(field, &typo), 1);
        let path = dir.path().join(file.replace('/', "-"));
        std::fs::write(&path, broken).unwrap();
        let out = orgop(&["validate", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{file} with `{typo}`:\n{err}");
        // A path (`account.Id`) is reported at its last field.
        let last = typo.rsplit('.').next().unwrap_or(&typo);
        assert!(
            err.contains(&format!("has no field `{last}`")),
            "{file} with `{typo}`:\n{err}"
        );
    }
}

#[test]
fn the_catalog_is_valid() {
    let out = orgop(&["validate", "runbooks/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 invalid"));
}

#[test]
fn many_files_one_run_every_file_reported() {
    let out = orgop(&[
        "validate",
        "runbooks/unused-ebs.yaml",
        "tests/invalid/dangling-for-each.yaml",
        "tests/invalid/bad-call-format.yaml",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("tests/invalid/dangling-for-each.yaml:18:15:"),
        "{err}"
    );
    assert!(
        err.contains("tests/invalid/bad-call-format.yaml:12:11:"),
        "{err}"
    );
    assert!(
        err.contains("checked 3 runbooks: 1 valid, 2 invalid"),
        "{err}"
    );
}

#[test]
fn json_format_is_machine_readable() {
    let out = orgop(&[
        "validate",
        "--format",
        "json",
        "tests/invalid/dangling-for-each.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["file"], "tests/invalid/dangling-for-each.yaml");
    assert_eq!(v[0]["line"], 18);
    assert_eq!(v[0]["column"], 15);
    assert_eq!(v[0]["severity"], "error");
    assert_eq!(v[0]["hint"], "did you mean `volumes`?");
}

#[test]
fn usage_and_io_errors_exit_2() {
    assert_eq!(
        orgop(&["validate", "no/such/file.yaml"]).status.code(),
        Some(2)
    );
    assert_eq!(orgop(&["validate"]).status.code(), Some(2));
    assert_eq!(orgop(&["frobnicate"]).status.code(), Some(2));
    let empty = TempDir::new("test");
    let out = orgop(&["validate", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no *.yaml or *.yml runbooks"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn duplicate_runbook_names_are_rejected() {
    let dir = TempDir::new("test");
    let text = std::fs::read_to_string(repo().join("runbooks/unused-ebs.yaml")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), &text).unwrap();
    std::fs::write(dir.path().join("b.yaml"), &text).unwrap();
    let out = orgop(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("runbook name `unused-ebs` is also used by"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_documents_exit_codes() {
    let out = orgop(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Exit status: 0 success; 1 invalid runbook"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn the_readme_example_runbook_is_valid() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("```yaml\n").expect("README has a yaml example") + 8;
    let end = start + readme[start..].find("```").unwrap();
    let report = orgop_check::check_source("README.md", &readme[start..end]);
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    assert!(report.lowered.is_some());
}

#[test]
fn a_file_that_is_not_utf8_is_reported_and_the_others_still_checked() {
    let dir = TempDir::new("not-utf8");
    // `a.yaml` sorts first: before, its read error stopped validate before `b.yaml`.
    std::fs::write(dir.path().join("a.yaml"), b"name: x\nbad: \xff\xfe\n").unwrap();
    std::fs::write(dir.path().join("b.yaml"), "name: [unclosed\n").unwrap();
    let root = dir.path().to_string_lossy().replace('\\', "/");
    let out = orgop(&["validate", &root]);
    let err = stderr(&out);
    // An unreadable file is an I/O error (README: 2 usage or I/O error)...
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{root}/a.yaml:2:6: not UTF-8 text (byte 13)")),
        "{err}"
    );
    // ...and the other file's problems are still printed.
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("{root}/b.yaml:"))),
        "{err}"
    );
    assert!(
        err.contains("checked 2 runbooks: 0 valid, 2 invalid"),
        "{err}"
    );
}

#[test]
fn a_huge_one_line_file_gets_a_short_excerpt() {
    // Before, the excerpt printed the whole line: a 52 MB line made 104 MB of stderr.
    let dir = TempDir::new("huge-line");
    let path = dir.path().join("huge.yaml");
    let text = format!(
        "{{name: huge, description: \"{}\", ]}}\n",
        // Just under the 1 MiB a runbook may have.
        "x".repeat((1 << 20) - 100)
    );
    std::fs::write(&path, text).unwrap();
    let out = orgop(&["validate", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 10_000, "{} bytes of stderr", err.len());
    assert!(err.contains(": invalid YAML: "), "{err}");
    // The caret stands under the character the error is at: the `]`.
    let lines: Vec<&str> = err.lines().collect();
    let caret = lines.iter().position(|l| l.contains('^')).expect("a caret");
    let col = lines[caret].find('^').unwrap();
    let source = lines[caret - 1];
    assert!(source.contains('…'), "{source}");
    assert_eq!(
        source.chars().nth(lines[caret][..col].chars().count()),
        Some(']'),
        "{err}"
    );
}
