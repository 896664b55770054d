//! `orgop run` loses nothing when it is stopped: SIGTERM and SIGINT write the result files
//! with what finished and every other item `not_run`; SIGKILL during `--apply` leaves an
//! actions journal that holds every action whose answer arrived (checked against what moto
//! shows was deleted) and marks those in flight as unknown; a second run into the same `--out`
//! is refused; what a killed run left is kept, not deleted. Against moto server, through the
//! fault proxy's `--latency-ms` so that runs are slow enough to stop part-way.
use orgop_testkit::{TempDir, moto, proxy, repo, seed_org};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REGIONS: &str = "us-east-1,eu-west-1";

/// `orgop ARGS --endpoint-url ENDPOINT`.
fn orgop<S: AsRef<std::ffi::OsStr>>(endpoint: &str, args: &[S]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orgop"));
    c.current_dir(repo())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("ORGOP_LOG")
        .args(["--endpoint-url", endpoint]);
    c
}

fn run_args(out: &Path) -> Vec<String> {
    [
        "run",
        "runbooks/unused-ebs.yaml",
        "--param",
        "min_age_days=0",
        "--concurrency",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// `orgop run` in the background, its stderr collected line by line.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Running {
    fn start(endpoint: &str, out: &Path, extra: &[&str]) -> Running {
        let args: Vec<String> = run_args(out)
            .into_iter()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect();
        let mut child = orgop(endpoint, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orgop starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (stderr, l) = (child.stderr.take().unwrap(), lines.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            lines,
            reader,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most 120 s) until `ready` holds of the lines so far.
    fn wait_for(&self, what: &str, ready: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if ready(&self.lines.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{what}: not seen in 120 s:\n{}", self.stderr());
    }

    fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(ok.success(), "kill -{sig} {}", self.pid());
    }

    /// Exit code (None when killed by a signal) and the whole stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("orgop did not end within 120 s:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = {
            let Running { reader, lines, .. } = self;
            reader.join().unwrap();
            lines.lock().unwrap().join("\n")
        };
        (status.code(), stderr)
    }
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Stops a dry run of 26 items with `sig` after 5 finished: exit `code`, the results hold
/// every item, the finished ones as they ended, the rest `not_run`.
fn stop_part_way(endpoint: &str, sig: &str, code: i32, also: impl FnOnce(&Running, &Path)) {
    let out = TempDir::new(&format!("interrupt-{sig}"));
    let run = Running::start(endpoint, out.path(), &[]);
    run.wait_for("5 items done", |l| {
        l.iter().filter(|l| l.starts_with('[')).count() >= 5
    });
    also(&run, out.path());
    run.signal(sig);
    let (status, stderr) = run.finish();
    assert_eq!(status, Some(code), "exit after SIG{sig}:\n{stderr}");
    let results = jsonl(&out.path().join("results.jsonl"));
    assert_eq!(results.len(), 26, "every item is accounted for:\n{stderr}");
    let by_status = |s: &str| results.iter().filter(|r| r["status"] == s).count();
    let (ok, not_run) = (by_status("ok"), by_status("not_run"));
    assert!(ok >= 5, "the 5 finished items are kept: {ok}\n{stderr}");
    assert!(not_run >= 1, "some items never ran: {not_run}\n{stderr}");
    assert_eq!(ok + not_run, 26, "{stderr}");
    for r in results.iter().filter(|r| r["status"] == "not_run") {
        assert_eq!(r["error"]["code"], "OrgOp.Interrupted", "{r}");
    }
    assert!(
        stderr.contains(&format!("not_run {not_run}")) && stderr.contains("not run (interrupted):"),
        "the summary lists what did not run:\n{stderr}"
    );
    assert!(stderr.contains(&format!("SIG{sig}")), "{stderr}");
    // The spool is gone once the two files are written; a dry run has no journal.
    assert_eq!(
        names(out.path()),
        BTreeSet::from(["findings.csv".to_string(), "results.jsonl".to_string()]),
    );
}

#[test]
fn sigterm_and_sigint_write_what_finished_and_a_second_run_is_refused() {
    let emulator = moto();
    seed_org(&emulator.url(), 12, REGIONS, 1);
    let slow = proxy(&emulator.url(), &["--latency-ms", "150"]);

    stop_part_way(&slow.url(), "TERM", 143, |first, out| {
        // A second run into the same folder while the first one runs: refused, naming it,
        // and the first run's spool is untouched.
        let o: Output = orgop(&slow.url(), &run_args(out))
            .output()
            .expect("orgop runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "in use by another orgop run (pid {})",
                first.pid()
            )),
            "{err}"
        );
        assert!(!err.contains("items to run"), "it ran nothing:\n{err}");
        assert!(out.join(".results.spool.jsonl").exists());
        // Each finished item is on disk as it finishes, not at the end.
        let spooled = jsonl(&out.join(".results.spool.jsonl")).len();
        assert!(spooled >= 5, "{spooled} items spooled");
    });
    stop_part_way(&slow.url(), "INT", 130, |_, _| {});

    // A second signal does not wait for the items in flight: each request takes 6 s here, and
    // the run must end well before (4 s, a margin for a loaded machine).
    let slower = proxy(&emulator.url(), &["--latency-ms", "6000"]);
    let out = TempDir::new("interrupt-twice");
    let run = Running::start(&slower.url(), out.path(), &[]);
    run.wait_for("the fanout", |l| {
        l.iter().any(|l| l.contains("items to run"))
    });
    std::thread::sleep(Duration::from_millis(300));
    run.signal("TERM");
    run.wait_for("the first signal", |l| {
        l.iter().any(|l| l.contains("SIGTERM:"))
    });
    let second = Instant::now();
    run.signal("TERM");
    let (status, stderr) = run.finish();
    assert!(
        second.elapsed() < Duration::from_millis(4000),
        "{:?} after the second signal:\n{stderr}",
        second.elapsed()
    );
    assert_eq!(status, Some(143), "{stderr}");
    assert!(stderr.contains("SIGTERM again"), "{stderr}");
    let results = jsonl(&out.path().join("results.jsonl"));
    assert_eq!(results.len(), 26);
    let abandoned = results
        .iter()
        .filter(|r| {
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("stopped while this item was running"))
        })
        .count();
    let messages: BTreeSet<&str> = results
        .iter()
        .map(|r| r["error"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        abandoned, 2,
        "the two items in flight: {messages:?}\n{stderr}"
    );
    assert!(results.iter().all(|r| r["status"] == "not_run"), "{stderr}");
}

/// Every volume id in one account and region, read with `orgop call`.
fn volumes(endpoint: &str, account: &str, region: &str) -> BTreeSet<String> {
    let role = format!("arn:aws:iam::{account}:role/OrgOpExecutionRole");
    let o = orgop(
        endpoint,
        &[
            "call",
            "ec2:DescribeVolumes",
            "--paginate",
            "--region",
            region,
            "--role-arn",
            &role,
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VolumeId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sigkill_during_apply_leaves_a_journal_of_every_answered_action() {
    let emulator = moto();
    let seed = seed_org(&emulator.url(), 4, REGIONS, 3);
    let slow = proxy(&emulator.url(), &["--latency-ms", "200"]);
    let out = TempDir::new("interrupt-kill");
    let journal_path = out.path().join(".actions.journal.jsonl");
    let run = Running::start(&slow.url(), out.path(), &["--apply"]);
    // Deletes whose answer arrived, as the journal says so far.
    let deletes_answered = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|j| j["event"] == "answered" && j["action"] == "delete")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    // Killed once some deletes were answered and some item finished (with concurrency 2 the
    // first three deletes can all belong to items still running).
    let spool_path = out.path().join(".results.spool.jsonl");
    let items_spooled = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .count()
    };
    while deletes_answered(&journal_path) < 3 || items_spooled(&spool_path) == 0 {
        assert!(Instant::now() < deadline, "no deletes:\n{}", run.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = run.pid();
    run.signal("KILL");
    let (status, stderr) = run.finish();
    assert_eq!(status, None, "killed:\n{stderr}");

    // The journal: every line whole, every answer after its `sent` record.
    let journal = jsonl(&journal_path);
    let mut sent: BTreeMap<u64, &Value> = BTreeMap::new();
    let mut outcome: BTreeMap<u64, &str> = BTreeMap::new();
    for j in &journal {
        let seq = j["seq"].as_u64().unwrap();
        match j["event"].as_str().unwrap() {
            "sent" => assert!(sent.insert(seq, j).is_none(), "{j}"),
            "answered" => {
                assert!(sent.contains_key(&seq), "answered before sent: {j}");
                outcome.insert(seq, j["outcome"].as_str().unwrap());
            }
            other => panic!("{other}"),
        }
    }
    let unknown: Vec<u64> = sent
        .keys()
        .filter(|s| !outcome.contains_key(s))
        .copied()
        .collect();
    assert!(
        unknown.len() <= 2,
        "at most one action in flight per item (concurrency 2): {unknown:?}"
    );
    let deletes = |pick: &dyn Fn(u64) -> bool| -> BTreeSet<String> {
        sent.iter()
            .filter(|(s, j)| j["call"] == "ec2:DeleteVolume" && pick(**s))
            .map(|(_, j)| j["parameters"]["VolumeId"].as_str().unwrap().to_string())
            .collect()
    };
    let done = deletes(&|s| outcome.get(&s) == Some(&"done"));
    let in_flight = deletes(&|s| !outcome.contains_key(&s));
    assert!(!done.is_empty(), "some deletes answered: {journal:?}");

    // What moto shows: a seeded unused volume that is gone was deleted by this run.
    let mut places = BTreeSet::new();
    let mut seeded = BTreeSet::new();
    for f in seed["findings"].as_array().unwrap() {
        places.insert((
            f["account_id"].as_str().unwrap().to_string(),
            f["region"].as_str().unwrap().to_string(),
        ));
        seeded.insert(f["volume_id"].as_str().unwrap().to_string());
    }
    let present: BTreeSet<String> = places
        .iter()
        .flat_map(|(a, r)| volumes(&emulator.url(), a, r))
        .collect();
    let deleted: BTreeSet<String> = seeded.difference(&present).cloned().collect();
    // Every delete whose answer arrived is recorded, and is really gone ...
    assert!(
        done.is_subset(&deleted),
        "done {done:?} vs deleted {deleted:?}"
    );
    // ... and nothing is gone that the journal does not hold: answered, or sent and unknown.
    let recorded: BTreeSet<String> = done.union(&in_flight).cloned().collect();
    assert!(
        deleted.is_subset(&recorded),
        "deleted {deleted:?}, recorded {recorded:?}"
    );

    // The items that finished are in the spool, their actions as the journal answered them.
    let answered: BTreeSet<(String, String, String, String)> = journal
        .iter()
        .filter(|j| j["event"] == "answered")
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap().to_string();
            (s("account_id"), s("region"), s("action"), s("resource_id"))
        })
        .collect();
    let spooled = jsonl(&out.path().join(".results.spool.jsonl"));
    assert!(!spooled.is_empty(), "finished items are on disk");
    for r in &spooled {
        for a in r["actions"].as_array().unwrap() {
            let key = (
                r["account_id"].as_str().unwrap().to_string(),
                r["region"].as_str().unwrap().to_string(),
                a["action"].as_str().unwrap().to_string(),
                a["resource_id"].as_str().unwrap().to_string(),
            );
            assert!(answered.contains(&key), "{key:?} is not in the journal");
        }
    }

    // The next run into the folder keeps what the killed one left and takes over its lock.
    let mut args = run_args(out.path());
    let account = seed["findings"][0]["account_id"].as_str().unwrap();
    args.extend(["--accounts", account, "--regions", "us-east-1"].map(String::from));
    let o = orgop(&slow.url(), &args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("took over the lock of run pid {killed}")),
        "{err}"
    );
    assert!(err.contains("kept what an interrupted run left"), "{err}");
    let kept = names(out.path());
    let journal_kept: Vec<&String> = kept
        .iter()
        .filter(|n| n.starts_with(".actions.journal.jsonl."))
        .collect();
    assert_eq!(journal_kept.len(), 1, "{kept:?}");
    assert_eq!(
        jsonl(&out.path().join(journal_kept[0])),
        journal,
        "kept as it was"
    );
    assert!(
        kept.iter().any(|n| n.starts_with(".results.spool.jsonl.")),
        "{kept:?}"
    );
}

/// `--max-duration`: the run stops by itself like SIGTERM, writes what finished, lists the
/// rest as not run and exits 1.
#[test]
fn max_duration_stops_the_run_and_lists_what_never_ran() {
    let emulator = moto();
    seed_org(&emulator.url(), 4, REGIONS, 1);
    let slow = proxy(&emulator.url(), &["--latency-ms", "300"]);
    let out = TempDir::new("interrupt-deadline");
    let mut args = run_args(out.path());
    args.extend(["--max-duration", "2"].map(String::from));
    let started = Instant::now();
    let o = orgop(&slow.url(), &args).output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("reached --max-duration (2 s)"), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let results = jsonl(&out.path().join("results.jsonl"));
    assert_eq!(
        results.len(),
        10,
        "4 members and the management account x 2 regions"
    );
    let not_run = results.iter().filter(|r| r["status"] == "not_run").count();
    assert!(not_run > 0 && not_run < 10, "{not_run} not run:\n{err}");
    for r in results.iter().filter(|r| r["status"] == "not_run") {
        assert_eq!(r["error"]["code"], "OrgOp.Interrupted", "{r}");
    }
    let bad = orgop(
        &slow.url(),
        &[&args[..args.len() - 1], &["0".to_string()]].concat(),
    )
    .output()
    .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("positive number of seconds"));
}
