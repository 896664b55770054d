//! `orgop catalog`: the catalog's README is generated from the runbooks, deterministic, and
//! checked in up to date (`ORGOP_UPDATE_CATALOG=1 cargo nextest run -p orgop-cli --test
//! catalog_readme` regenerates it); every catalog runbook has its offline cases.
use orgop_testkit::{TempDir, repo};
use std::path::Path;
use std::process::{Command, Output};

fn orgop_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .args(args)
        .current_dir(dir)
        .env_remove("ORGOP_MODELS_DIR")
        .output()
        .expect("orgop runs")
}

fn both(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The catalog's runbook files, sorted.
fn catalog() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_checked_in_catalog_readme_is_what_the_runbooks_generate() {
    let o = orgop_in(&repo().join("runbooks"), &["catalog", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let generated = String::from_utf8(o.stdout).unwrap();
    let path = repo().join("runbooks/README.md");
    if std::env::var_os("ORGOP_UPDATE_CATALOG").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "runbooks/README.md is not what the catalog generates: run `ORGOP_UPDATE_CATALOG=1 cargo nextest run -p orgop-cli --test catalog_readme` (or `orgop catalog runbooks/ --out runbooks/README.md`) and review the diff"
    );
}

#[test]
fn the_readme_is_the_same_bytes_from_any_folder_and_every_run() {
    let tmp = TempDir::new("catalog-readme");
    copy_dir(&repo().join("runbooks"), &tmp.path().join("runbooks"));
    let target = tmp.path().join("runbooks/README.md");
    std::fs::remove_file(&target).ok();
    let o = orgop_in(
        tmp.path(),
        &["catalog", "runbooks/", "--out", "runbooks/README.md"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let first = std::fs::read_to_string(&target).unwrap();
    let again = orgop_in(&tmp.path().join("runbooks"), &["catalog", "."]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), first);
    let shipped = orgop_in(&repo().join("runbooks"), &["catalog", "."]);
    assert_eq!(String::from_utf8(shipped.stdout).unwrap(), first);

    // One section per runbook, with what it reads, changes and needs.
    for f in catalog() {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(first.contains(&format!("\n## {name}\n")), "{name}");
        assert!(first.contains(&format!("]({name}.yaml)")), "{name}");
    }
    let sg = first.split("\n## sg-open-ingress\n").nth(1).unwrap();
    let sg = sg.split("\n## ").next().unwrap();
    assert!(
        sg.contains("- `OrgOpReadRole` (every run): `ec2:DescribeSecurityGroupRules`\n"),
        "{sg}"
    );
    assert!(
        sg.contains("- `OrgOpRemediationRole` (applied runs): `ec2:DescribeSecurityGroupRules`, `ec2:RevokeSecurityGroupIngress`\n"),
        "{sg}"
    );
    assert!(
        sg.contains("- `revoke`: `ec2:RevokeSecurityGroupIngress`, for each result of `rules`"),
        "{sg}"
    );
    // The shared data its expressions read.
    assert!(sg.contains("- `sensitive_ports`: `[22,3389,"), "{sg}");
    // A dependent action AWS documents (iam.rs), never written by hand.
    let inspector = first.split("\n## inspector-activation\n").nth(1).unwrap();
    assert!(
        inspector.contains("`iam:CreateServiceLinkedRole`"),
        "{inspector}"
    );
    // Parameters with their type, default and description.
    assert!(
        first.contains("| `min_age_days` | integer | `7` | Only volumes created at least this many days ago; 0 means any age. |"),
        "{first}"
    );

    // An invalid runbook: nothing written, status 1.
    let bad = tmp.path().join("runbooks/vpcs.yaml");
    let text = std::fs::read_to_string(&bad).unwrap();
    std::fs::write(
        &bad,
        text.replace(
            "select: VpcPeeringConnections[]",
            "select: VpcPeeringConnections[",
        ),
    )
    .unwrap();
    std::fs::remove_file(&target).unwrap();
    let o = orgop_in(
        tmp.path(),
        &["catalog", "runbooks", "--out", "runbooks/README.md"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(!target.exists());
}

#[test]
fn every_catalog_runbook_has_a_dry_run_case_and_an_apply_case_when_it_changes_things() {
    for f in catalog() {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let cases = repo().join("runbooks/tests").join(&name);
        assert!(
            cases.join("dry-run/case.yaml").is_file(),
            "{name}: no dry-run case"
        );
        let text = std::fs::read_to_string(&f).unwrap();
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first, "# yaml-language-server: $schema=../schema/runbook.schema.json",
            "{name}"
        );
        if text.contains("\nactions:") {
            let apply = std::fs::read_to_string(cases.join("apply/case.yaml"))
                .unwrap_or_else(|_| panic!("{name} has actions but no apply case"));
            assert!(apply.contains("\napply: true\n"), "{name}");
            assert!(text.contains("apply_name: OrgOpRemediationRole"), "{name}");
        }
    }
    // The command is in README.md's table.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("| `orgop catalog PATH... [--out FILE]"),
        "README.md's command table"
    );
}

/// A runbook reporting from several steps (`report.also`) says so under **Finds**, each source
/// with its id, and a call two actions send is listed once in the summary table.
#[test]
fn the_readme_names_every_source_of_findings_and_each_call_once() {
    let o = orgop_in(&repo().join("runbooks"), &["catalog", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let readme = String::from_utf8(o.stdout).unwrap();
    assert!(
        readme.contains("**Finds** one row per result of `instances` (identified by `InstanceId`), then `volumes` (identified by `VolumeId`), in one table"),
        "{readme}"
    );
    assert!(
        readme.contains("then `controls` (identified by `StandardsControlArn`), in one table"),
        "{readme}"
    );
    let row = readme
        .lines()
        .find(|l| l.starts_with("| [tag-remediation]"))
        .unwrap();
    assert!(row.ends_with("| `ec2:CreateTags` |"), "{row}");
}

/// Each action whose operation has an idempotency-token member (botocore's
/// `idempotencyToken`) says that orgop fills it, unless the runbook sets it itself.
#[test]
fn the_readme_names_the_idempotency_token_orgop_fills_per_action() {
    let o = orgop_in(&repo().join("runbooks"), &["catalog", "."]);
    let text = String::from_utf8(o.stdout).unwrap();
    let enable = text
        .lines()
        .find(|l| l.starts_with("- `enable`: `inspector2:Enable`"))
        .unwrap_or_else(|| panic!("no inspector2:Enable action line:\n{text}"));
    assert!(
        enable.contains("idempotent: orgop fills `clientToken`"),
        "{enable}"
    );
    // EC2's CreateTags has no token: nothing is claimed for it.
    let tag = text
        .lines()
        .find(|l| l.contains("`ec2:CreateTags`") && l.starts_with("- `"))
        .unwrap();
    assert!(!tag.contains("idempotent"), "{tag}");
    // A runbook that sets the token itself is not told orgop fills it.
    let tmp = TempDir::new("catalog-token");
    let source =
        std::fs::read_to_string(repo().join("runbooks/inspector-activation.yaml")).unwrap();
    let own = source.replacen(
        "    parameters:\n      accountIds: [\"{{ item.accountId }}\"]\n",
        "    parameters:\n      clientToken: fixed-by-the-author\n      accountIds: [\"{{ item.accountId }}\"]\n",
        1,
    );
    assert_ne!(own, source);
    std::fs::write(tmp.path().join("inspector-activation.yaml"), own).unwrap();
    let o = orgop_in(tmp.path(), &["catalog", "."]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("`inspector2:Enable`"), "{}", both(&o));
    assert!(!text.contains("idempotent"), "{text}");
}
