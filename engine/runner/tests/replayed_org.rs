//! The runner over a recorded organization: fanout (ACTIVE only, excludes, OUs, tags),
//! bounded concurrency, a denied account recorded and never stopping the others, sinks.
use orgop_exec::Status;
use orgop_runner::{Event, Overrides, ReplayConnector, RunOptions, Summary, run, sink};
use orgop_testkit::TempDir;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn write(path: PathBuf, v: Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, v.to_string()).unwrap();
}

fn account(id: &str, name: &str, state: &str) -> Value {
    json!({"Id": id, "Name": name, "Status": state, "Arn": format!("arn:aws:organizations::000000000000:account/o-x/{id}")})
}

/// An org of 5 accounts (one suspended), two regions, 2 volumes per item (one old), one
/// account whose role cannot be assumed. Removed when the returned folder is dropped.
fn recorded_org() -> TempDir {
    let dir = TempDir::new("org");
    let root = dir.path();
    let accounts = [
        ("111111111111", "prod", "ACTIVE"),
        ("222222222222", "dev", "ACTIVE"),
        ("333333333333", "old", "SUSPENDED"),
        ("444444444444", "locked", "ACTIVE"),
        ("555555555555", "sandbox", "ACTIVE"),
    ];
    let all: Vec<Value> = accounts.iter().map(|(i, n, s)| account(i, n, s)).collect();
    write(
        root.join("org/organizations.ListAccounts_1.json"),
        json!([{"Accounts": all[..3]}, {"Accounts": all[3..]}]),
    );
    write(
        root.join("444444444444/assume-role-error.json"),
        json!({"Error": {"Code": "AccessDenied", "Message": "User is not authorized to perform: sts:AssumeRole"}}),
    );
    for (id, _, _) in accounts {
        for region in ["us-east-1", "eu-west-1"] {
            write(
                root.join(id)
                    .join(region)
                    .join("ec2.DescribeVolumes_1.json"),
                json!({"Volumes": [
                    {"VolumeId": format!("vol-{id}-{region}-old"), "Size": 10, "VolumeType": "gp3", "AvailabilityZone": format!("{region}a"), "CreateTime": "2025-01-01T00:00:00Z"},
                    {"VolumeId": format!("vol-{id}-{region}-new"), "Size": 10, "VolumeType": "gp3", "AvailabilityZone": format!("{region}a"), "CreateTime": "2026-01-30T00:00:00Z"}
                ]}),
            );
        }
    }
    dir
}

fn lowered() -> orgop_plan::Lowered {
    let path = orgop_testkit::repo().join("runbooks/unused-ebs.yaml");
    let r = orgop_check::check_source(
        "runbooks/unused-ebs.yaml",
        &std::fs::read_to_string(path).unwrap(),
    );
    r.lowered.unwrap()
}

fn opts(overrides: Overrides) -> RunOptions {
    RunOptions {
        overrides,
        concurrency: 3,
        params: json!({"min_age_days": 7}).as_object().unwrap().clone(),
        apply: false,
        execution: "test".into(),
        now: 1_769_817_600.0, // 2026-01-31T00:00:00Z
    }
}

#[tokio::test]
async fn every_active_account_and_region_is_accounted_for() {
    let org = recorded_org();
    let root = org.path();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let results = run(
        &lowered(),
        Arc::new(ReplayConnector::new(root)),
        opts(Overrides::default()),
        move |e| ev.lock().unwrap().push(e),
    )
    .await
    .unwrap();
    // 4 active accounts x 2 regions, and the suspended one listed as skipped in each region
    // (never run: it has no recordings).
    assert_eq!(results.len(), 10);
    let skipped: Vec<_> = results
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .collect();
    assert_eq!(skipped.len(), 2);
    assert!(skipped.iter().all(|r| {
        let e = r.error.as_ref().unwrap();
        r.account_id == "333333333333"
            && e.code == "OrgOp.AccountNotActive"
            && e.message.contains("SUSPENDED")
    }));
    let denied: Vec<_> = results
        .iter()
        .filter(|r| r.status == Status::Denied)
        .collect();
    assert_eq!(denied.len(), 2);
    assert!(denied.iter().all(
        |r| r.account_id == "444444444444" && r.error.as_ref().unwrap().code == "AccessDenied"
    ));
    let ok: Vec<_> = results.iter().filter(|r| r.status == Status::Ok).collect();
    assert_eq!(ok.len(), 6);
    assert!(ok.iter().all(|r| {
        r.findings.len() == 1
            && r.findings[0]
                .resource_id
                .as_str()
                .unwrap()
                .ends_with("-old")
    }));
    let s = Summary::of(&results);
    assert!(!s.all_ran());
    assert_eq!(
        (s.items, s.findings, s.actions.get("planned").copied()),
        (10, 6, Some(12))
    );
    assert_eq!(s.actions_sent(), 0);
    let events = events.lock().unwrap();
    assert!(matches!(
        events[0],
        Event::Planned {
            items: 8,
            failed: 2
        }
    ));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::ItemDone { .. }))
            .count(),
        10
    );

    let out = root.join("out");
    let mut spool = sink::Spool::create(
        out.join(".results.spool.jsonl"),
        sink::columns(&lowered().plan),
    )
    .unwrap();
    results.iter().cloned().for_each(|r| spool.push(r));
    let files = spool.write_dir(&out).unwrap();
    let jsonl = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(jsonl.lines().count(), 10);
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    for key in [
        "account_id",
        "account_name",
        "region",
        "status",
        "error",
        "findings",
        "actions",
    ] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    let csv = std::fs::read_to_string(&files[1]).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "account_id,account_name,region,resource_id,size_gib,volume_type,availability_zone,created,age_days"
    );
    assert_eq!(lines.count(), 6);
}

#[tokio::test]
async fn overrides_narrow_the_targets_and_unknown_accounts_are_reported() {
    let org = recorded_org();
    let root = org.path();
    let o = Overrides {
        regions: Some(vec!["eu-west-1".into()]),
        accounts: Some(vec![
            "111111111111".into(),
            "222222222222".into(),
            "999999999999".into(),
        ]),
        exclude_accounts: vec!["222222222222".into()],
        organizational_units: None,
    };
    let results = run(
        &lowered(),
        Arc::new(ReplayConnector::new(root)),
        opts(o),
        |_| {},
    )
    .await
    .unwrap();
    let keys: Vec<_> = results
        .iter()
        .map(|r| (r.account_id.as_str(), r.region.as_str(), r.status))
        .collect();
    assert_eq!(
        keys,
        [
            ("111111111111", "eu-west-1", Status::Ok),
            ("999999999999", "*", Status::Error)
        ]
    );
    assert_eq!(
        results[1].error.as_ref().unwrap().code,
        "OrgOp.AccountNotFound"
    );
}
