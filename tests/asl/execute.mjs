// Executes a compiled orgop state machine with aws-local-stepfunctions, an independent ASL
// interpreter. The three Lambda tasks are answered by stand-ins that behave like the orgop
// Lambda's handlers at the boundary (they receive the exact payload the state machine builds
// and answer in the lambda:invoke integration's {Payload, StatusCode} shape), and record what
// they received so the Rust test can check it against orgop's own payload types.
//
// With "lambda" in the scenario, the tasks invoke that orgop-lambda binary instead
// (`orgop-lambda --invoke`, the real handlers, against whatever AWS its environment names).
//
// usage: node execute.mjs DEFINITION.json SCENARIO.json
// scenario: {"input": {...}, "items": [{account_id, account_name, region}], "fail_accounts": ["..."],
//            "lambda": "/path/to/orgop-lambda"}
// prints: {"status", "error", "output", "fanout": payload, "workers": [payloads], "results": payload}

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

const seen = { fanout: null, workers: [], results: null };
const invoke = (payload) => ({ Payload: payload, StatusCode: 200, ExecutedVersion: '$LATEST' });

// Runs the real handler binary on one payload.
const invokeBinary = (payload) => new Promise((resolve, reject) => {
  const child = spawn(scenario.lambda, ['--invoke'], { env: process.env });
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

const real = {
  Fanout: async (input) => { seen.fanout = input.Payload; return invokeBinary(input.Payload); },
  Worker: async (input) => { seen.workers.push(input.Payload); return invokeBinary(input.Payload); },
  Results: async (input) => { seen.results = input.Payload; return invokeBinary(input.Payload); },
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
    if (failing.has(request.item.account_id)) {
      const err = new Error('the results store refused the write');
      err.name = 'OrgOp.ResultsStore';
      throw err;
    }
    return invoke({ account_id: request.item.account_id, region: request.item.region, status: 'ok', findings: 1, actions: 0 });
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
};
const handlers = scenario.lambda ? real : standIns;
const execution = machine.run(input, { overrides: { taskResourceLocalHandlers: handlers }, context });
let out;
try {
  const output = await execution.result;
  out = { status: 'SUCCEEDED', output };
} catch (e) {
  out = { status: 'FAILED', error: e?.cause?.name ?? e?.name, cause: String(e?.cause?.message ?? e?.message) };
}
process.stdout.write(JSON.stringify({ ...out, ...seen }));
