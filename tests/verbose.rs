//! `orgop run -v`: every AWS call is a log line on stderr with its account, region, step,
//! operation and duration, and never its parameters; without `-v` there are none.
use orgop_testkit::TempDir;
use serde_json::json;
use std::process::Command;

/// A recorded organization of one account with one volume in one region.
fn recorded_org() -> TempDir {
    let dir = TempDir::new("verbose-org");
    let write = |rel: &str, v: serde_json::Value| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, v.to_string()).unwrap();
    };
    write(
        "org/organizations.ListAccounts_1.json",
        json!({"Accounts": [{"Id": "111111111111", "Name": "prod", "Status": "ACTIVE",
                             "Arn": "arn:aws:organizations::000000000000:account/o-x/111111111111"}]}),
    );
    write(
        "111111111111/us-east-1/ec2.DescribeVolumes_1.json",
        json!({"Volumes": [{"VolumeId": "vol-1", "Size": 10, "VolumeType": "gp3",
                            "AvailabilityZone": "us-east-1a", "CreateTime": "2025-01-01T00:00:00Z"}]}),
    );
    dir
}

fn run(verbose: bool) -> (String, std::process::ExitStatus) {
    let org = recorded_org();
    let out = TempDir::new("verbose-out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgop"));
    cmd.current_dir(orgop_testkit::repo())
        .env_remove("ORGOP_LOG")
        .args([
            "run",
            "runbooks/unused-ebs.yaml",
            "--regions",
            "us-east-1",
            "--replay",
        ])
        .arg(org.path())
        .arg("--out")
        .arg(out.path());
    if verbose {
        cmd.arg("-v");
    }
    let o = cmd.output().expect("orgop runs");
    (String::from_utf8_lossy(&o.stderr).into_owned(), o.status)
}

#[test]
fn verbose_runs_log_each_call_without_its_parameters() {
    let (stderr, status) = run(true);
    assert!(status.success(), "{stderr}");
    let call = stderr
        .lines()
        .find(|l| {
            l.contains("operation=\"DescribeVolumes\"") || l.contains("operation=DescribeVolumes")
        })
        .unwrap_or_else(|| panic!("no call line in:\n{stderr}"));
    for field in [
        "account=111111111111",
        "region=us-east-1",
        "step=",
        "duration_ms=",
        "pages=1",
    ] {
        assert!(call.contains(field), "{field} missing in {call}");
    }
    // The runbook's DescribeVolumes parameters (`Filters: status=available`) stay out of logs.
    assert!(
        !stderr.contains("Filters") && !stderr.contains("available"),
        "{stderr}"
    );
}

#[test]
fn quiet_runs_log_no_calls() {
    let (stderr, status) = run(false);
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("DescribeVolumes"), "{stderr}");
}
