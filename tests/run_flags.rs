//! `orgop run`'s target flags: an empty or malformed region, account id or OU id is a usage
//! error (exit 2, naming the flag and the value) before anything runs, not an item.
use orgop_testkit::{TempDir, repo};
use serde_json::json;
use std::process::{Command, Output};

fn run(replay: &TempDir, flags: &[&str]) -> Output {
    let out = TempDir::new("run-flags-out");
    Command::new(env!("CARGO_BIN_EXE_orgop"))
        .current_dir(repo())
        .env_remove("ORGOP_LOG")
        .args(["run", "runbooks/unused-ebs.yaml"])
        .args(flags)
        .arg("--replay")
        .arg(replay.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("orgop runs")
}

#[test]
fn malformed_target_flags_exit_2_before_anything_runs() {
    // An empty replay root: any call would fail, so a clean exit 2 means none was made.
    let empty = TempDir::new("run-flags-empty");
    for (flag, value) in [
        ("--regions", ""),
        ("--regions", "us-east-1,,"),
        ("--regions", "US_EAST"),
        ("--accounts", "12345"),
        ("--exclude-accounts", "1234567890123"),
        ("--ou", "ou-"),
    ] {
        let o = run(&empty, &[flag, value]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value:?}:\n{err}");
        assert!(
            err.contains(&format!("{flag}: ")),
            "{flag} {value:?}:\n{err}"
        );
        assert!(
            !err.contains("dry run"),
            "nothing ran: {flag} {value:?}:\n{err}"
        );
    }
    let o = run(&empty, &["--regions", "US_EAST"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("\"US_EAST\""),
        "the bad value is named"
    );
}

#[test]
fn well_formed_target_flags_still_run() {
    let org = TempDir::new("run-flags-org");
    let write = |rel: &str, v: serde_json::Value| {
        let path = org.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, v.to_string()).unwrap();
    };
    write(
        "org/organizations.ListAccounts_1.json",
        json!({"Accounts": [{"Id": "111111111111", "Name": "p", "Status": "ACTIVE"}]}),
    );
    write(
        "111111111111/us-east-1/ec2.DescribeVolumes_1.json",
        json!({"Volumes": []}),
    );
    let o = run(
        &org,
        &["--regions", "us-east-1", "--accounts", "111111111111"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("1 account x region items to run"), "{err}");
}
