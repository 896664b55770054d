//! One item with N findings and two actions per finding, interpreted against an in-memory
//! AWS (no I/O): the interpreter's own cost, which must grow linearly with the findings.
//!
//! `cargo bench -p orgop-exec --bench one_item` prints the median time per run at 1,000 and
//! 10,000 findings, per finding, and the ratio (10x the findings should cost about 10x).
use orgop_exec::{ActionBudget, ApiError, AwsApi, Call, Item, Prepared, RunFacts, run_item};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

const RUNBOOK: &str = r#"
name: bench
description: the interpreter benchmark
version: 1
targets: {regions: [us-east-1]}
role: {name: OrgOpExecutionRole}
params:
  min_age_days: {type: integer, default: 0}
shared:
  keep_tag: keep
steps:
  - id: volumes
    call: ec2:DescribeVolumes
    parameters:
      Filters: [{Name: status, Values: [available]}]
    select: Volumes[]
    where: "tag(Tags, shared('keep_tag')) != 'true' && age_days(CreateTime) >= param('min_age_days')"
actions:
  - id: snapshot
    call: ec2:CreateSnapshot
    for_each: volumes
    parameters:
      VolumeId: "{{ item.VolumeId }}"
      Description: "orgop {{ run.execution }}: {{ item.VolumeId }} in {{ account.id }}/{{ region }}"
  - id: delete
    call: ec2:DeleteVolume
    for_each: volumes
    when: "item.Size < 100000"
    parameters:
      VolumeId: "{{ item.VolumeId }}"
report:
  from: volumes
  resource_id: VolumeId
  columns: {size_gib: Size, created: CreateTime, az: AvailabilityZone, type: VolumeType}
"#;

/// Answers DescribeVolumes with `n` volumes (one in ten kept) and every action with `{}`.
struct Fake {
    page: Value,
}

impl AwsApi for Fake {
    async fn call(&self, call: Call<'_>) -> Result<Vec<Value>, ApiError> {
        Ok(vec![if call.operation == "DescribeVolumes" {
            self.page.clone()
        } else {
            json!({})
        }])
    }

    async fn pause(&self, _: std::time::Duration) {}
}

fn volumes(n: usize) -> Value {
    let v: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "VolumeId": format!("vol-{i:017x}"),
                "Size": 8 + i % 100,
                "CreateTime": "2026-01-01T00:00:00.000Z",
                "AvailabilityZone": "us-east-1a",
                "VolumeType": "gp3",
                "State": "available",
                "Tags": [{"Key": "keep", "Value": if i % 10 == 0 { "true" } else { "false" }},
                         {"Key": "team", "Value": "data"}],
            })
        })
        .collect();
    json!({ "Volumes": v })
}

fn time_one(
    prepared: &Prepared,
    api: &Fake,
    rt: &tokio::runtime::Runtime,
    runs: usize,
) -> Duration {
    let item = Item {
        account_id: "111122223333".into(),
        account_name: "bench".into(),
        region: "us-east-1".into(),
    };
    let facts = RunFacts {
        execution: "bench".into(),
        params: json!({"min_age_days": 0}).as_object().unwrap().clone(),
        apply: true,
        now: 1.8e9,
    };
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let r = rt.block_on(run_item(
                prepared,
                &item,
                &facts,
                api,
                &ActionBudget::new(None),
                &orgop_exec::NoHooks,
            ));
            let d = t.elapsed();
            assert_eq!(r.status, orgop_exec::Status::Ok, "{:?}", r.error);
            assert!(!r.findings.is_empty());
            d
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let checked = orgop_check::check_source("bench.yaml", RUNBOOK);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let lowered = checked.lowered.expect("lowered");
    let shared: Map<String, Value> = lowered.shared.clone().into_iter().collect();
    let prepared = Prepared::new(lowered.plan, shared).expect("prepares");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    // ORGOP_BENCH_SIZES=N (one size, one run) is for instruction counts under callgrind.
    let sizes: Vec<(usize, usize)> = match std::env::var("ORGOP_BENCH_SIZES") {
        Ok(n) => vec![(n.parse().expect("ORGOP_BENCH_SIZES=N"), 1)],
        Err(_) => vec![(1_000, 21), (10_000, 7)],
    };
    for (n, runs) in sizes {
        let api = Fake { page: volumes(n) };
        let findings = n - n / 10;
        let t = time_one(&prepared, &api, &rt, runs);
        println!(
            "{n:>6} volumes, {findings:>5} findings, {:>5} actions: median {:>8.2} ms, {:>6.2} us per finding",
            findings * 2,
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e6 / findings as f64
        );
        rows.push(t);
    }
    if let [small, large] = rows[..] {
        println!(
            "10x the findings costs {:.2}x the time (linear: 10x)",
            large.as_secs_f64() / small.as_secs_f64()
        );
    }
}
