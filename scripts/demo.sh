#!/usr/bin/env bash
# The main job, as far as it goes today: check the runbook catalog, show what a mistake looks
# like, compile every runbook to a Step Functions state machine, have asl-validator check it,
# and execute the compiled state machine in aws-local-stepfunctions.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --prefix tests/asl --no-audit --no-fund --loglevel=error
cargo build --quiet --bin orgop
orgop=target/debug/orgop
out=$(mktemp -d)

echo "== orgop validate runbooks/"
$orgop validate runbooks/

echo
echo "== a broken runbook: every problem, with file:line:col (exit status 1 is expected)"
$orgop validate tests/invalid/many-problems.yaml || true

echo
echo "== orgop compile runbooks/ tests/compile/ --out $out"
$orgop compile runbooks/ tests/compile/ --out "$out"

echo
echo "== asl-validator"
for f in "$out"/*.asl.json; do tests/asl/node_modules/.bin/asl-validator --json-path "$f"; done

echo
echo "== the inline state machine, executed by aws-local-stepfunctions (Lambda stand-ins)"
cat > "$out/scenario.json" <<'JSON'
{"input": {"apply": false},
 "items": [{"account_id": "111111111111", "account_name": "prod", "region": "us-east-1"},
           {"account_id": "222222222222", "account_name": "dev", "region": "us-east-1"},
           {"account_id": "333333333333", "account_name": "sandbox", "region": "eu-west-1"}],
 "fail_accounts": ["333333333333"]}
JSON
(cd tests/asl && node execute.mjs "$out/inline-explicit-accounts.asl.json" "$out/scenario.json") |
  python3 -c 'import json,sys
r = json.load(sys.stdin)
print("execution:", r["status"], r.get("error") or "")
print("workers invoked:", len(r["workers"]), "- each got the plan and shared data from the ItemSelector")
for s in r["results"]["items"]:
    print("  {account_id} {region}: {status} {error}".format(error=s.get("error_code", ""), **s))'
echo
echo "compiled definitions are in $out"
