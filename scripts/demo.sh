#!/usr/bin/env bash
# The main job: an emulated AWS organization swept by `orgop run runbooks/unused-ebs.yaml`.
# Builds orgop, starts moto server (the AWS emulator) on 127.0.0.1, seeds an organization of
# a few accounts with attached, unattached and keep-tagged volumes, runs the runbook (dry run,
# then applied, then again to show nothing is left), stops the emulator. Then compiles the
# catalog to Step Functions state machines and has asl-validator check them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/moto-venv.sh
npm ci --prefix tests/asl --no-audit --no-fund --loglevel=error
cargo build --quiet --bin orgop
orgop=target/debug/orgop
work=$(mktemp -d)

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -s "$endpoint/moto-api/" >/dev/null && break; sleep 0.1; done

echo "== seeding an organization in moto ($endpoint): 4 member accounts x 2 regions"
.venv/bin/python tests/support/seed_org.py --endpoint "$endpoint" --accounts 4 --regions us-east-1,eu-west-1 >"$work/expected.json"
echo "   $(.venv/bin/python -c 'import json,sys; e=json.load(open(sys.argv[1])); print(len(e["findings"]), "unattached volumes to find,", len(e["kept"]), "kept (keep=true),", len(e["attached"]), "attached")' "$work/expected.json")"

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
echo
echo "== orgop run runbooks/unused-ebs.yaml (dry run; moto dates volumes now, so min_age_days=0)"
$orgop run runbooks/unused-ebs.yaml --endpoint-url "$endpoint" --param min_age_days=0 --out "$work/dry"
echo
head -4 "$work/dry/findings.csv"
echo
echo "== the same with --apply: snapshot, then delete"
$orgop run runbooks/unused-ebs.yaml --endpoint-url "$endpoint" --param min_age_days=0 --out "$work/apply" --apply
echo
echo "== and once more: nothing left to find"
$orgop run runbooks/unused-ebs.yaml --endpoint-url "$endpoint" --param min_age_days=0 --out "$work/again"

kill $moto_pid 2>/dev/null || true
echo
echo "== orgop compile runbooks/ --out $work/asl, checked by asl-validator"
$orgop compile runbooks/ --out "$work/asl"
for f in "$work"/asl/*.asl.json; do tests/asl/node_modules/.bin/asl-validator --json-path "$f"; done
echo
echo "results and state machines are in $work"
