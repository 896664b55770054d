// Executes a compiled orgop state machine with aws-local-stepfunctions, an independent ASL
// interpreter. The three Lambda tasks are answered by stand-ins that behave like the orgop
// Lambda's handlers at the boundary (they receive the exact payload the state machine builds
// and answer in the lambda:invoke integration's {Payload, StatusCode} shape), and record what
// they received so the Rust test can check it against orgop's own payload types.
//
// With "lambda" in the scenario, the tasks invoke that orgop-lambda binary instead
// (`orgop-lambda --invoke`, the real handlers, against whatever AWS its environment names);
// workers of "fail_accounts" still fail (an always-failing worker). With "failure_lambda", only
// RecordFailure invokes that binary. A failing worker's cause is "cause_bytes" long (default:
// a short message). Workers of "unstored_accounts" answer ok without running or storing a
// result.
//
// aws-local-stepfunctions has no distributed Map (ItemReader, ResultWriter): a distributed
// definition runs with the Map made inline, and this script does what Step Functions would
// around it, against the S3 the environment names (AWS_ENDPOINT_URL, moto server): the
// fanout's items.json is read from S3 as the ItemReader would, and the children's results are
// written to S3 as the ResultWriter documents them (SUCCEEDED_0.json, manifest.json under
// `<Prefix>/<map run id>/`), the Map's output becoming {MapRunArn, ResultWriterDetails}.
// "results_bucket" substitutes ${ResultsBucket}.
//
// Approval (runbooks with `approval`, executed with the real handlers): aws-local-stepfunctions
// 3.0.0 has no `.waitForTaskToken` (it calls the local handler and takes its answer as the
// task's result at once) and sets no `$$.Task.Token`. This script emulates exactly that part:
// the context carries a `Task.Token` (one approval task per execution), and the Approval
// task's local handler (1) invokes the real handler binary with the payload the definition
// builds (it stores the token in DynamoDB and publishes to SNS, in moto), (2) runs the
// scenario's "between" boto3 script (a change between plan and decision), (3) starts the
// scenario's "decision" command (the real `orgop approve`/`orgop reject` binary) with
// AWS_ENDPOINT_URL_SFN pointed at a SendTaskSuccess/SendTaskFailure endpoint this script
// serves on 127.0.0.1 (AWS JSON 1.0, `AWSStepFunctions.*` targets, as Step Functions does),
// and (4) waits until that endpoint receives the task's token: SendTaskSuccess's output
// becomes the task's result, SendTaskFailure's error and cause its failure. A token that no
// longer waits is answered `TaskTimedOut`, as Step Functions answers. The state's
// TimeoutSeconds is enforced by aws-local-stepfunctions itself (States.Timeout);
// "approval_timeout_seconds" shortens it (and the payload's timeout_seconds) for the test.
// Scenario: "decision": [program, args...] (none: nobody answers), "between": python script,
// "approval_timeout_seconds": N. Prints also "decision": {code, stdout, stderr}, "approval":
// the handler's payload, "sfn_requests": [{target, body}] the endpoint received.
//
// usage: node execute.mjs DEFINITION.json SCENARIO.json
// scenario: {"input": {...}, "items": [{account_id, account_name, region}], "fail_accounts": ["..."],
//            "cause_bytes": N, "lambda": "/path/to/orgop-lambda", "failure_lambda": "...",
//            "results_bucket": "...", "python": "/path/to/venv/python" (for the S3 part)}
// prints: {"status", "error", "output", "fanout": payload, "workers": [payloads],
//          "failures": [payloads], "results": payload, "results_answer": (real handlers),
//          "state_errors": [{state, error, cause}] (the first 20 states that failed),
//          "payloads": {"max_bytes", "state", "kind"}: the largest state input or output}

// aws-local-stepfunctions 3 uses Promise.withResolvers (Node 22); Node 20 lacks it.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

const { StateMachine } = await import('aws-local-stepfunctions');
const fs = await import('node:fs');
const { spawn } = await import('node:child_process');

const [definitionPath, scenarioPath] = process.argv.slice(2);
const definition = JSON.parse(fs.readFileSync(definitionPath, 'utf8'));
const scenario = JSON.parse(fs.readFileSync(scenarioPath, 'utf8'));
const failing = new Set(scenario.fail_accounts ?? []);

const seen = { fanout: null, workers: [], failures: [], results: null, state_errors: [] };
const invoke = (payload) => ({ Payload: payload, StatusCode: 200, ExecutedVersion: '$LATEST' });

// Runs the real handler binary on one payload.
const invokeBinary = (payload, binary = scenario.lambda) => new Promise((resolve, reject) => {
  const child = spawn(binary, ['--invoke'], { env: process.env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  child.on('close', (code) => {
    if (code === 0) return resolve(invoke(JSON.parse(out)));
    let e;
    try {
      const j = JSON.parse(err.trim().split('\n').pop());
      e = new Error(j.errorMessage);
      e.name = j.errorType;
    } catch {
      e = new Error(err);
      e.name = 'OrgOp.Internal';
    }
    reject(e);
  });
  child.stdin.end(JSON.stringify(payload));
});

// A worker of "fail_accounts": fails the way a crashed Lambda does, with a cause of
// "cause_bytes".
const failWorker = () => {
  const err = new Error(scenario.cause_bytes ? 'x'.repeat(scenario.cause_bytes) : 'the results store refused the write');
  err.name = 'OrgOp.ResultsStore';
  throw err;
};

// The distributed Map's S3 side (see the top of this file).
const mapState = Object.values(definition.States).find((st) => st.Type === 'Map');
const distributed = mapState?.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED';
const childInputs = new Map();
// S3 through boto3 ("python": the test venv's interpreter), signed like every AWS client.
const { spawnSync } = await import('node:child_process');
const boto3 = (script, args, stdin) => {
  const r = spawnSync(scenario.python, ['-c', `import boto3, os, sys\ns3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])\n${script}`, ...args], { input: stdin ?? '', env: process.env, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`boto3: ${r.stderr}`);
  return r.stdout.toString();
};
const s3get = async (bucket, key) =>
  JSON.parse(boto3('sys.stdout.write(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])["Body"].read().decode())', [bucket, key]));
const s3put = async (bucket, key, value) => {
  const body = JSON.stringify(value);
  boto3('s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.stdin.buffer.read(), ContentType="application/json")', [bucket, key], body);
  return Buffer.byteLength(body);
};
let resultWriter = null;
if (distributed) {
  resultWriter = mapState.ResultWriter.Parameters;
  for (const k of ['ItemReader', 'ResultWriter', 'ToleratedFailurePercentage', 'Label']) delete mapState[k];
  mapState.ItemProcessor.ProcessorConfig = { Mode: 'INLINE' };
  mapState.ItemsPath = '$.distributed_items';
  definition.States.Fanout.ResultSelector['distributed_items.$'] = '$.Payload.distributed_items';
}
// The ItemReader: the items the fanout wrote.
const readItems = async (answer) => {
  if (!distributed) return answer;
  const at = answer.Payload.items_location;
  return { ...answer, Payload: { ...answer.Payload, distributed_items: await s3get(at.bucket, at.key) } };
};
// The ResultWriter: every child's input and output to S3, the Map's output their manifest.
const writeResults = async (payload) => {
  if (!distributed) return payload;
  const bucket = resultWriter.Bucket.replace('${ResultsBucket}', scenario.results_bucket);
  const mapRun = 'arn:aws:states:us-east-1:123456789012:mapRun:orgop-test/Accounts:0b9d4a6e-0000-4000-8000-000000000001';
  const prefix = `${resultWriter.Prefix}/0b9d4a6e-0000-4000-8000-000000000001`;
  const children = payload.map_results.map((output, i) => {
    const input = childInputs.get(`${output.account_id}#${output.region}`);
    return {
      ExecutionArn: `${mapRun}:${i}`, Name: String(i), StateMachineArn: mapRun,
      Input: JSON.stringify(input), InputDetails: { Included: true },
      Output: JSON.stringify(output), OutputDetails: { Included: true },
      StartDate: '2026-01-01T00:00:00.000Z', StopDate: '2026-01-01T00:00:01.000Z',
      RedriveCount: 0, RedriveStatus: 'NOT_REDRIVABLE', Status: 'SUCCEEDED',
    };
  });
  const size = await s3put(bucket, `${prefix}/SUCCEEDED_0.json`, children);
  const manifest = {
    DestinationBucket: bucket, MapRunArn: mapRun,
    ResultFiles: { FAILED: [], PENDING: [], SUCCEEDED: [{ Key: `${prefix}/SUCCEEDED_0.json`, Size: size }] },
  };
  await s3put(bucket, `${prefix}/manifest.json`, manifest);
  return { ...payload, map_results: { MapRunArn: mapRun, ResultWriterDetails: { Bucket: bucket, Key: `${prefix}/manifest.json` } } };
};

// The approval emulation (see the top of this file).
const http = await import('node:http');
const { randomUUID } = await import('node:crypto');
const taskToken = `orgop-test-token-${randomUUID()}`;
const waiting = new Map();
seen.sfn_requests = [];
const sfnServer = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const answer = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(value));
    };
    let request;
    try { request = JSON.parse(body || '{}'); } catch { return answer(400, { __type: 'SerializationException', message: 'not JSON' }); }
    seen.sfn_requests.push({ target, body: { ...request, taskToken: request.taskToken === taskToken ? '<the task token>' : request.taskToken } });
    const op = target.replace('AWSStepFunctions.', '');
    if (op !== 'SendTaskSuccess' && op !== 'SendTaskFailure') return answer(400, { __type: 'UnknownOperationException', message: `${target} is not emulated` });
    const task = waiting.get(request.taskToken);
    if (!task) return answer(400, { __type: 'TaskTimedOut', message: 'Task Timed Out' });
    waiting.delete(request.taskToken);
    if (op === 'SendTaskSuccess') task.resolve(JSON.parse(request.output));
    else {
      const e = new Error(request.cause ?? '');
      e.name = request.error ?? 'States.TaskFailed';
      task.reject(e);
    }
    return answer(200, {});
  });
});
const approvalTasks = definition.States.Approval !== undefined;
if (approvalTasks) {
  await new Promise((resolve) => sfnServer.listen(0, '127.0.0.1', resolve));
  if (scenario.approval_timeout_seconds) {
    definition.States.Approval.TimeoutSeconds = scenario.approval_timeout_seconds;
    definition.States.Approval.Parameters.Payload.timeout_seconds = scenario.approval_timeout_seconds;
  }
}
const sfnUrl = () => `http://127.0.0.1:${sfnServer.address().port}`;
// Runs the decision command without blocking the event loop (the endpoint must answer it).
const runDecision = (argv) => new Promise((resolve) => {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, AWS_ENDPOINT_URL_SFN: sfnUrl() } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
});
const approvalTask = async (input) => {
  const payload = input.Payload;
  seen.approval = { ...payload, token: payload.token === taskToken ? '<the task token>' : payload.token };
  const { promise, resolve, reject } = Promise.withResolvers();
  waiting.set(payload.token, { resolve, reject });
  // The answer may come while the decision command still runs: handled when returned below.
  promise.catch(() => {});
  await invokeBinary(payload);
  if (scenario.between) boto3(scenario.between, []);
  if (scenario.decision) seen.decision = await runDecision(scenario.decision);
  return promise;
};

const real = {
  Fanout: async (input) => { seen.fanout = input.Payload; return readItems(await invokeBinary(input.Payload)); },
  Worker: async (input) => {
    const request = input.Payload;
    seen.workers.push(request);
    childInputs.set(`${request.item.account_id}#${request.item.region}`, request);
    if (failing.has(request.item.account_id)) failWorker();
    // A worker that answers ok but whose result never reaches the results store.
    if ((scenario.unstored_accounts ?? []).includes(request.item.account_id)) {
      return invoke({ account_id: request.item.account_id, region: request.item.region, status: 'ok', findings: 0, actions: 0 });
    }
    return invokeBinary(request);
  },
  RecordFailure: async (input) => { seen.failures.push(input.Payload); return invokeBinary(input.Payload); },
  // The plan phase (runbooks with `approval`): its workers and failure recorder, the plan
  // handler, and the approval task.
  PlanWorker: async (input) => { (seen.plan_workers ??= []).push(input.Payload); return invokeBinary(input.Payload); },
  PlanRecordFailure: async (input) => { seen.failures.push(input.Payload); return invokeBinary(input.Payload); },
  Plan: async (input) => { const answer = await invokeBinary(input.Payload); seen.plan = answer.Payload; return answer; },
  Approval: approvalTask,
  // Not approved: the release handler lets the fanout's apply lock go.
  ReleaseLock: async (input) => { const answer = await invokeBinary(input.Payload); seen.release = answer.Payload; return answer; },
  Results: async (input) => {
    const payload = await writeResults(input.Payload);
    seen.results = payload;
    const answer = await invokeBinary(payload);
    seen.results_answer = answer.Payload;
    return answer;
  },
};

const standIns = {
  Fanout: async (input) => {
    seen.fanout = input.Payload;
    const run = { execution: input.Payload.execution, params: input.Payload.input.params ?? {}, apply: input.Payload.input.apply ?? false };
    return invoke({ run, count: scenario.items.length, items: scenario.items });
  },
  Worker: async (input) => {
    const request = input.Payload;
    seen.workers.push(request);
    if (failing.has(request.item.account_id)) failWorker();
    return invoke({ account_id: request.item.account_id, region: request.item.region, status: 'ok', findings: 1, actions: 0 });
  },
  RecordFailure: async (input) => {
    seen.failures.push(input.Payload);
    if (scenario.failure_lambda) return invokeBinary(input.Payload, scenario.failure_lambda);
    const { item, error } = input.Payload;
    return invoke({ account_id: item.account_id, region: item.region, status: 'error', findings: 0, actions: 0, error_code: error, error_message: 'stand-in' });
  },
  Results: async (input) => {
    seen.results = input.Payload;
    const summaries = input.Payload.items ?? [];
    const failed = summaries.filter((s) => s.status === 'denied' || s.status === 'error').length;
    return invoke({ items: summaries.length, failed });
  },
};

const machine = new StateMachine(definition, { validationOptions: { checkArn: false } });
const input = scenario.input ?? {};
const context = {
  Execution: {
    Id: 'arn:aws:states:us-east-1:123456789012:execution:orgop-test:run-1',
    Name: 'run-1',
    Input: input,
    StartTime: '2026-01-01T00:00:00.000Z',
    RoleArn: 'arn:aws:iam::123456789012:role/orgop-test',
  },
  StateMachine: { Id: 'arn:aws:states:us-east-1:123456789012:stateMachine:orgop-test', Name: 'orgop-test' },
  // The one waitForTaskToken task's token (see the top of this file).
  Task: { Token: taskToken },
};
const handlers = scenario.lambda ? real : standIns;
const execution = machine.run(input, { overrides: { taskResourceLocalHandlers: handlers }, context });
// The largest state input or output, in bytes of its JSON text (Step Functions' 256 KiB
// limit applies to each).
const payloads = { max_bytes: 0, state: null, kind: null };
const measured = (async () => {
  for await (const event of execution.eventLogs) {
    if (event.type === 'StateFailed' && seen.state_errors.length < 20) {
      seen.state_errors.push({ state: event.state.name, error: event.Error, cause: String(event.Cause).slice(0, 500) });
    }
    if (event.type !== 'StateEntered' && event.type !== 'StateExited') continue;
    for (const kind of ['input', 'output']) {
      const value = event.state[kind];
      if (value === undefined) continue;
      const bytes = Buffer.byteLength(JSON.stringify(value));
      if (bytes > payloads.max_bytes) Object.assign(payloads, { max_bytes: bytes, state: event.state.name, kind });
    }
  }
})();
let out;
try {
  const output = await execution.result;
  out = { status: 'SUCCEEDED', output };
} catch (e) {
  out = { status: 'FAILED', error: e?.cause?.name ?? e?.name, cause: String(e?.cause?.message ?? e?.message) };
}
await measured;
if (approvalTasks) sfnServer.close();
process.stdout.write(JSON.stringify({ ...out, ...seen, payloads }));
