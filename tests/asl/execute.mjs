// Executes a compiled orgop state machine with aws-local-stepfunctions, an independent ASL
// interpreter. The three Lambda tasks are answered by stand-ins that behave like the orgop
// Lambda's handlers at the boundary (they receive the exact payload the state machine builds
// and answer in the lambda:invoke integration's {Payload, StatusCode} shape), and record what
// they received so the Rust test can check it against orgop's own payload types.
//
// usage: node execute.mjs DEFINITION.json SCENARIO.json
// scenario: {"input": {...}, "items": [{account_id, account_name, region}], "fail_accounts": ["..."]}
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

const [definitionPath, scenarioPath] = process.argv.slice(2);
const definition = JSON.parse(fs.readFileSync(definitionPath, 'utf8'));
const scenario = JSON.parse(fs.readFileSync(scenarioPath, 'utf8'));
const failing = new Set(scenario.fail_accounts ?? []);

const seen = { fanout: null, workers: [], results: null };
const invoke = (payload) => ({ Payload: payload, StatusCode: 200, ExecutedVersion: '$LATEST' });

const handlers = {
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
const execution = machine.run(input, { overrides: { taskResourceLocalHandlers: handlers }, context });
let out;
try {
  const output = await execution.result;
  out = { status: 'SUCCEEDED', output };
} catch (e) {
  out = { status: 'FAILED', error: e?.cause?.name ?? e?.name, cause: String(e?.cause?.message ?? e?.message) };
}
process.stdout.write(JSON.stringify({ ...out, ...seen }));
