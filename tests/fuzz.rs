//! In-suite mutation fuzzing: every parser and evaluator that reads untrusted input gets
//! mutated inputs for a bounded time and must answer with a value or an error, never a panic,
//! an abort (stack overflow) or a hang.
//!
//! - runbooks: `orgop_check::check_source` (YAML loader, schema, semantic checks, lowering),
//!   then the compiler (`orgop_statemachine`) and the CloudFormation generator
//!   (`orgop_stacksets`) on whatever lowers;
//! - responses: `orgop_awswire::parse` for each protocol (ec2, query, json, rest-json,
//!   rest-xml, and error bodies) with the bundled models;
//! - expressions: JMESPath with orgop's functions (`orgop_exec::search`) and templates with
//!   orgop's minijinja environment (fuel, recursion and output limits).
//!
//! Seeds: the catalog, `tests/invalid`, `tests/compile`, `tests/fuzz/*` and
//! `tests/fuzz/regressions/*` (inputs that once failed; each is replayed first). The mutator
//! is deterministic for a seed (`ORGOP_FUZZ_SEED`, default 1); `ORGOP_FUZZ_SECONDS` (default
//! 2 per target) sets the budget. A failing input is written to `target/fuzz-crashes/`.
//! (`cargo fuzz` needs a nightly toolchain, which CI machines of this project do not have.)
use orgop_testkit::repo;
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to the formats fuzzed: structure, quoting, numbers, YAML and template
/// syntax, JMESPath operators.
const INTERESTING: &[u8] = b"{}[]()<>:,\"'`-|*&!%@$#?=.\\/\n\t 0123456789e+ab";

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                v.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                v.drain(i..i + n);
            }
            3 if len > 0 => {
                // Duplicate a slice: grows nesting and repetition.
                let i = rng.below(len);
                let n = rng.below((len - i).min(256)) + 1;
                let chunk: Vec<u8> = v[i..i + n].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            4 if !other.is_empty() => {
                // Splice in a piece of another seed.
                let i = rng.below(other.len());
                let n = rng.below((other.len() - i).min(256)) + 1;
                let at = rng.below(v.len() + 1);
                v.splice(at..at, other[i..i + n].iter().copied());
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 => {
                // A run of one structural byte: deep nesting.
                let b = b"[{(<"[rng.below(4)];
                let at = rng.below(len + 1);
                let n = rng.below(400);
                v.splice(at..at, std::iter::repeat_n(b, n));
            }
            _ => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
        }
    }
    v
}

fn seed() -> u64 {
    std::env::var("ORGOP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn budget() -> Duration {
    Duration::from_secs_f64(
        std::env::var("ORGOP_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0),
    )
}

fn read_dir(dir: &Path, ext: &[&str]) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ext.contains(&x))
    });
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Runs `target` on the regressions, the seeds, then mutants until the budget is spent, on a
/// thread with a tokio worker's 2 MiB stack; a panic or a hang fails the test with the input.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8])) -> usize {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let regressions = read_dir(&repo().join("tests/fuzz/regressions"), &[name]);
    let budget = budget();
    let last = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let shared = last.clone();
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || -> Result<usize, Vec<u8>> {
            let mut rng = Rng(seed() ^ 0x9E37_79B9_7F4A_7C15);
            let mut pool: Vec<Vec<u8>> = seeds.clone();
            let start = Instant::now();
            let mut runs = 0;
            let inputs = regressions.into_iter().chain(seeds.clone());
            let mut fixed = inputs.collect::<Vec<_>>().into_iter();
            loop {
                let input = match fixed.next() {
                    Some(i) => i,
                    None if start.elapsed() >= budget => break,
                    None => {
                        let a = &pool[rng.below(pool.len())];
                        let b = &seeds[rng.below(seeds.len())];
                        let m = mutate(&mut rng, a, b);
                        if pool.len() < 256 && m.len() < 256 * 1024 {
                            pool.push(m.clone());
                        } else if m.len() < 256 * 1024 {
                            let i = rng.below(pool.len());
                            pool[i] = m.clone();
                        }
                        m
                    }
                };
                *shared.lock().unwrap() = input.clone();
                if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                    return Err(input);
                }
                runs += 1;
            }
            Ok(runs)
        })
        .unwrap();
    let deadline = Instant::now() + budget + Duration::from_secs(60);
    while !worker.is_finished() {
        if Instant::now() > deadline {
            let input = last.lock().unwrap().clone();
            let path = save(name, &input);
            panic!(
                "{name}: no answer within 60 s on the input saved at {}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match worker.join() {
        Ok(Ok(runs)) => {
            eprintln!("fuzz {name}: {runs} inputs in {budget:?}, seed {}", seed());
            runs
        }
        Ok(Err(input)) => {
            let path = save(name, &input);
            panic!(
                "{name}: panicked on the input saved at {} ({:?})",
                path.display(),
                String::from_utf8_lossy(&input[..input.len().min(400)])
            );
        }
        Err(_) => panic!("{name}: the fuzz thread died"),
    }
}

fn save(name: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("target/fuzz-crashes");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("crash-{}.{name}", std::process::id()));
    std::fs::write(&path, input).unwrap();
    path
}

fn runbook_target(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let report = orgop_check::check_source("fuzz.yaml", text);
    if let Some(lowered) = &report.lowered {
        let asl = orgop_statemachine::compile(lowered);
        let _ = orgop_statemachine::to_json(&asl);
        let _ = orgop_stacksets::member_roles(&[lowered]);
        let _ = orgop_stacksets::operations(
            &[lowered],
            &orgop_stacksets::OperationsOptions {
                lambda_code_key: None,
            },
        );
    }
}

#[test]
fn runbooks_checked_compiled_and_generated() {
    let root = repo();
    let mut seeds = read_dir(&root.join("runbooks"), &["yaml"]);
    seeds.extend(read_dir(&root.join("tests/invalid"), &["yaml"]));
    seeds.extend(read_dir(&root.join("tests/compile"), &["yaml"]));
    seeds.extend(read_dir(&root.join("stacksets/tests/runbooks"), &["yaml"]));
    assert!(fuzz("yaml", seeds, runbook_target) > 10);
}

/// (file prefix, service, operation) of each response seed.
const RESPONSES: &[(&str, &str, &str)] = &[
    ("ec2-DescribeVolumes", "ec2", "DescribeVolumes"),
    ("query-sts-GetCallerIdentity", "sts", "GetCallerIdentity"),
    ("query-iam-ListRoles", "iam", "ListRoles"),
    ("json-dynamodb-ListTables", "dynamodb", "ListTables"),
    (
        "json-organizations-ListAccounts",
        "organizations",
        "ListAccounts",
    ),
    ("restjson-lambda-ListFunctions", "lambda", "ListFunctions"),
    ("restxml-s3-ListObjectsV2", "s3", "ListObjectsV2"),
    ("error-ec2", "ec2", "DeleteVolume"),
];

fn registry() -> &'static orgop_aws::ModelRegistry {
    static R: std::sync::OnceLock<orgop_aws::ModelRegistry> = std::sync::OnceLock::new();
    R.get_or_init(orgop_aws::ModelRegistry::bundled_only)
}

/// The first byte picks the operation (and whether the status is an error), the rest is
/// the body.
fn response_target(input: &[u8]) {
    let Some((&pick, body)) = input.split_first() else {
        return;
    };
    let (_, service, operation) = RESPONSES[pick as usize % RESPONSES.len()];
    let svc = registry().service(service).unwrap();
    let op = svc.model.operation(operation).unwrap();
    let json = matches!(service, "dynamodb" | "organizations" | "lambda");
    let resp = orgop_aws::HttpResponse {
        status: if pick & 0x80 != 0 { 400 } else { 200 },
        headers: vec![(
            "content-type".into(),
            if json {
                "application/x-amz-json-1.1"
            } else {
                "text/xml"
            }
            .into(),
        )],
        body: body.to_vec(),
    };
    let _ = orgop_awswire::parse(&svc.model, op, &resp);
}

#[test]
fn responses_of_every_protocol_parsed() {
    let dir = repo().join("tests/fuzz");
    let seeds: Vec<Vec<u8>> = RESPONSES
        .iter()
        .enumerate()
        .map(|(i, (file, _, _))| {
            let path = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(file))
                .unwrap_or_else(|| panic!("no seed {file}"));
            let mut v = vec![if file.starts_with("error") {
                i as u8 | 0x80
            } else {
                i as u8
            }];
            v.extend(std::fs::read(path).unwrap());
            v
        })
        .collect();
    assert!(fuzz("response", seeds, response_target) > 10);
}

fn context() -> Arc<orgop_exec::ExprContext> {
    Arc::new(orgop_exec::ExprContext {
        params: Arc::new(json!({"min_age_days": 7}).as_object().unwrap().clone()),
        shared: Arc::new(json!({"keep_tag": "keep"}).as_object().unwrap().clone()),
        account_id: "111122223333".into(),
        account_name: "prod".into(),
        region: "us-east-1".into(),
        now: 1.8e9,
    })
}

fn data() -> Value {
    json!({"Volumes": [
        {"VolumeId": "vol-1", "Size": 8, "CreateTime": "2026-11-01T06:00:00Z",
         "Tags": [{"Key": "keep", "Value": "true"}], "Attachments": []},
        {"VolumeId": "vol-2", "Size": 2000, "CreateTime": "not a date", "Tags": 42}
    ], "NextToken": null})
}

/// The first byte picks JMESPath (even) or a template (odd).
fn expression_target(input: &[u8]) {
    let Some((&pick, text)) = input.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if pick % 2 == 0 {
        let _ = orgop_exec::search(text, &data(), &context());
    } else {
        let env = orgop_plan::templates::environment();
        let ctx = json!({"params": {"min_age_days": 7}, "shared": {"keep_tag": "keep"},
            "item": data()["Volumes"][0], "account": {"id": "1", "name": "n"}, "region": "r",
            "run": {"apply": false, "execution": "e"}, "steps": {"volumes": data()["Volumes"]}});
        let _ = env.render_str(text, minijinja::Value::from(minijinja::value::Serde(&ctx)));
    }
}

#[test]
fn jmespath_and_templates_evaluated() {
    let jmespath = [
        "Volumes[?Attachments == `[]`] | [?tag(Tags, shared('keep_tag')) != 'true']",
        "Volumes[?age_days(CreateTime) >= param('min_age_days')].{id: VolumeId, size: Size}",
        "length(Volumes[*].Tags[]) && max_by(Volumes, &Size).VolumeId",
        "sort_by(Volumes, &VolumeId)[0:1] | [].join(',', [VolumeId, region(), account_id()])",
        "Volumes[].Tags[?Key=='keep'].Value | [0] || `\"none\"`",
    ];
    let templates = [
        "{{ item.VolumeId }}",
        "{% for v in steps.volumes %}{{ v.VolumeId|upper }}{% endfor %}",
        "{{ params.min_age_days * 2 }} {{ shared.keep_tag ~ '-' ~ region }}",
        "{% if run.apply %}{{ account.id }}{% else %}{{ item.Size > 100 }}{% endif %}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}",
    ];
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for e in jmespath {
        seeds.push([&[0u8][..], e.as_bytes()].concat());
    }
    for t in templates {
        seeds.push([&[1u8][..], t.as_bytes()].concat());
    }
    assert!(fuzz("expr", seeds, expression_target) > 10);
}
