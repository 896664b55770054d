//! The shipped runbooks, run offline against recorded responses (runbooks/tests/<name>/<case>),
//! for what a case file cannot say: a plan edited after checking (protected tags, a mutating
//! step, a deep expression), a run-wide action budget shared by two items, and the hooks (the
//! actions journal, a stopping run). What an item produces from its recordings is asserted by
//! each case's case.yaml, run by `orgop test` (tests/cases.rs).
use aws_smithy_types::date_time::{DateTime, Format};
use orgop_exec::{
    ActionBudget, ActionOutcome, Item, Prepared, ReplayApi, RunFacts, Status, run_item,
};
use orgop_plan::Lowered;
use orgop_testkit::repo;
use serde_json::{Map, Value, json};

fn lowered(runbook: &str) -> Lowered {
    let text = std::fs::read_to_string(repo().join(runbook)).unwrap();
    let r = orgop_check::check_source(runbook, &text);
    assert!(!r.has_errors(), "{:#?}", r.diagnostics);
    r.lowered.unwrap()
}

fn facts(apply: bool, params: Value) -> RunFacts {
    RunFacts {
        execution: "local-test".into(),
        params: params.as_object().unwrap().clone(),
        apply,
        now: DateTime::from_str("2026-01-31T00:00:00Z", Format::DateTime)
            .unwrap()
            .as_secs_f64(),
    }
}

fn item() -> Item {
    Item {
        account_id: "123456789012".into(),
        account_name: "test".into(),
        region: "us-east-1".into(),
    }
}

fn prepared(l: &Lowered) -> Prepared {
    let shared: Map<String, Value> = l.shared.clone().into_iter().collect();
    Prepared::new(l.plan.clone(), shared).expect("a checked plan prepares")
}

#[tokio::test]
async fn caps_and_protected_tags_hold_back_actions() {
    let mut l = lowered("runbooks/unused-ebs.yaml");
    l.plan
        .safety
        .protected_tags
        .insert("team".into(), vec!["data".into()]);
    let api = ReplayApi::new(repo().join("runbooks/tests/unused-ebs/dry-run"));
    let budget = ActionBudget::new(Some(1));
    let r = run_item(
        &prepared(&l),
        &item(),
        &facts(false, json!({"min_age_days": 7})),
        &api,
        &budget,
        &orgop_exec::NoHooks,
    )
    .await;
    let by: Vec<_> = r
        .actions
        .iter()
        .map(|a| (a.resource_id.as_str().unwrap(), a.outcome, a.reason.clone()))
        .collect();
    assert_eq!(
        by[0],
        ("vol-0aaa0000000000001", ActionOutcome::Planned, None)
    );
    assert_eq!(
        by[1],
        (
            "vol-0aaa0000000000004",
            ActionOutcome::Skipped,
            Some("protected by tag team=data".into())
        )
    );
    // The run-wide budget of one resource is spent by the first volume.
    let again = run_item(
        &prepared(&l),
        &item(),
        &facts(false, json!({"min_age_days": 7})),
        &ReplayApi::new(repo().join("runbooks/tests/unused-ebs/dry-run")),
        &budget,
        &orgop_exec::NoHooks,
    )
    .await;
    assert_eq!(again.actions[0].outcome, ActionOutcome::Skipped);
    assert_eq!(
        again.actions[0].reason.as_deref(),
        Some("max_actions_per_run reached")
    );
}

#[tokio::test]
async fn a_mutating_step_is_refused_before_it_is_sent() {
    let mut l = lowered("runbooks/unused-ebs.yaml");
    l.plan.steps[0].operation = "DeleteVolume".into();
    l.plan.steps[0].mutating = true;
    let api = ReplayApi::new(repo().join("runbooks/tests/unused-ebs/dry-run"));
    let r = run_item(
        &prepared(&l),
        &item(),
        &facts(true, json!({"min_age_days": 7})),
        &api,
        &ActionBudget::new(None),
        &orgop_exec::NoHooks,
    )
    .await;
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.error.unwrap().code, "OrgOp.MutatingStep");
    assert!(api.calls().is_empty());
}

/// A plan need not come from the checker (a state machine can be edited by hand): a select
/// nested 3,000 or 20,000 deep is refused when the plan is prepared, on a runtime worker's
/// 2 MiB stack, instead of overflowing it there or when an item runs.
#[test]
fn a_hand_edited_plan_with_a_deep_expression_is_refused_when_prepared() {
    for n in [3_000, 20_000] {
        let mut l = lowered("runbooks/unused-ebs.yaml");
        l.plan.steps[0].select = Some(format!("{}Volumes{}", "[".repeat(n), "]".repeat(n)));
        let shared: Map<String, Value> = l.shared.clone().into_iter().collect();
        let err = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || Prepared::new(l.plan, shared).map(|_| ()))
            .unwrap()
            .join()
            .expect("no overflow")
            .unwrap_err();
        assert_eq!(err.kind, orgop_exec::PrepareErrorKind::Expression);
        assert_eq!(err.step, "volumes");
        assert!(
            err.message
                .contains("nests deeper than 64 levels, the limit"),
            "{err}"
        );
    }
}

/// Records what the interpreter tells its hooks, and the calls made by then.
struct Recorder<'a> {
    api: &'a ReplayApi,
    events: std::sync::Mutex<Vec<String>>,
    refuse_after: usize,
    stop_after_calls: usize,
}

impl orgop_exec::ItemHooks for Recorder<'_> {
    fn stopping(&self) -> bool {
        self.api.calls().len() >= self.stop_after_calls
    }
    fn before_send(&self, _: &Item, r: &orgop_exec::ActionRecord) -> std::io::Result<u64> {
        let mut ev = self.events.lock().unwrap();
        if ev.len() / 2 >= self.refuse_after {
            return Err(std::io::Error::other("disk full"));
        }
        // Written before the request: the replay has not seen it yet.
        let calls = self.api.calls().len();
        ev.push(format!(
            "sent {} {} after {calls} calls",
            r.action, r.resource_id
        ));
        Ok(ev.len() as u64)
    }
    fn answered(&self, token: u64, _: &Item, r: &orgop_exec::ActionRecord) {
        let calls = self.api.calls().len();
        self.events.lock().unwrap().push(format!(
            "{token} {} {} after {calls} calls",
            r.action,
            r.outcome.as_str()
        ));
    }
}

fn recorder(api: &ReplayApi, refuse_after: usize, stop_after_calls: usize) -> Recorder<'_> {
    Recorder {
        api,
        events: std::sync::Mutex::new(Vec::new()),
        refuse_after,
        stop_after_calls,
    }
}

#[tokio::test]
async fn every_action_is_journalled_before_it_is_sent_and_after_its_answer() {
    let l = lowered("runbooks/unused-ebs.yaml");
    let api = ReplayApi::new(repo().join("runbooks/tests/unused-ebs/apply"));
    let hooks = recorder(&api, usize::MAX, usize::MAX);
    let r = run_item(
        &prepared(&l),
        &item(),
        &facts(true, json!({"min_age_days": 7})),
        &api,
        &ActionBudget::new(None),
        &hooks,
    )
    .await;
    assert_eq!(r.status, Status::Ok, "{r:#?}");
    let events = hooks.events.into_inner().unwrap();
    let sent: Vec<_> = r
        .actions
        .iter()
        .filter(|a| a.outcome != ActionOutcome::Planned)
        .collect();
    assert_eq!(events.len(), 2 * sent.len(), "{events:#?}");
    for (i, pair) in events.chunks(2).enumerate() {
        // One DescribeVolumes, then each action's call between its two records.
        assert!(
            pair[0].ends_with(&format!("after {} calls", i + 1)),
            "{pair:?}"
        );
        assert!(
            pair[1].ends_with(&format!("after {} calls", i + 2)),
            "{pair:?}"
        );
        assert!(pair[1].starts_with(&format!("{} ", 2 * i + 1)), "{pair:?}");
    }
}

#[tokio::test]
async fn an_action_the_journal_cannot_hold_is_not_sent() {
    let l = lowered("runbooks/unused-ebs.yaml");
    let api = ReplayApi::new(repo().join("runbooks/tests/unused-ebs/apply"));
    let hooks = recorder(&api, 1, usize::MAX);
    let r = run_item(
        &prepared(&l),
        &item(),
        &facts(true, json!({"min_age_days": 7})),
        &api,
        &ActionBudget::new(None),
        &hooks,
    )
    .await;
    assert_eq!(r.status, Status::Error, "{r:#?}");
    assert_eq!(r.error.as_ref().unwrap().code, "OrgOp.Internal");
    let sent = api
        .calls()
        .iter()
        .filter(|(c, _)| c != "ec2.DescribeVolumes")
        .count();
    assert_eq!(
        sent,
        1,
        "only the journalled action was sent: {:?}",
        api.calls()
    );
    assert_eq!(r.actions[1].outcome, ActionOutcome::Skipped);
    assert!(
        r.actions[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("disk full")
    );
}

#[tokio::test]
async fn a_stopping_run_makes_no_further_call_and_keeps_what_it_did() {
    let l = lowered("runbooks/unused-ebs.yaml");
    let api = ReplayApi::new(repo().join("runbooks/tests/unused-ebs/apply"));
    // Stop once the read and two actions are made.
    let hooks = recorder(&api, usize::MAX, 3);
    let r = run_item(
        &prepared(&l),
        &item(),
        &facts(true, json!({"min_age_days": 7})),
        &api,
        &ActionBudget::new(None),
        &hooks,
    )
    .await;
    assert_eq!(r.status, Status::NotRun, "{r:#?}");
    assert_eq!(r.error.as_ref().unwrap().code, "OrgOp.Interrupted");
    assert_eq!(api.calls().len(), 3);
    assert_eq!(r.actions.len(), 2, "the two actions sent are in the result");
    assert!(!r.findings.is_empty());
}

/// `item_as` joins an item into objects only: a plan edited so that a join step selects
/// strings, or objects that already have the key, fails its item with a clear error instead
/// of dropping the item or overwriting a field.
#[tokio::test]
async fn a_join_of_results_that_cannot_hold_the_item_fails_the_item() {
    for (select, says) in [
        ("Tags[].Key", "needs each result to be an object"),
        (
            "{Tags: Tags, account: Tags}",
            "already has a field `account`",
        ),
    ] {
        let mut l = lowered("runbooks/accounts.yaml");
        let tagged = l.plan.steps.iter_mut().find(|s| s.id == "tagged").unwrap();
        tagged.select = Some(select.into());
        let api = ReplayApi::new(repo().join("runbooks/tests/accounts/dry-run"));
        let r = run_item(
            &prepared(&l),
            &item(),
            &facts(false, json!({"include_suspended": true})),
            &api,
            &ActionBudget::new(None),
            &orgop_exec::NoHooks,
        )
        .await;
        assert_eq!(r.status, Status::Error, "{select}");
        let e = r.error.unwrap();
        assert_eq!(e.code, "OrgOp.Expression", "{select}");
        assert_eq!(e.step.as_deref(), Some("tagged"));
        assert!(e.message.contains(says), "{select}: {}", e.message);
    }
}
