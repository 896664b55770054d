#!/bin/bash
# Measures what durability costs orgop run on a 26-item organization in moto.
set -u
# Needs .venv (scripts/moto-venv.sh), strace, and a built orgop (ORGOP=path, default target/debug/orgop).
mkdir -p "${BENCH_DIR:-/tmp/orgop-bench-durable}"
cd "$(dirname "$0")/.."
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p $PORT >/dev/null 2>&1 &
MOTO=$!
trap "kill $MOTO" EXIT
for i in $(seq 50); do curl -s http://127.0.0.1:$PORT/moto-api/ >/dev/null && break; sleep 0.2; done
EP=http://127.0.0.1:$PORT
.venv/bin/python tests/support/seed_org.py --endpoint $EP --accounts 12 --regions us-east-1,eu-west-1 --unattached 2 > ${BENCH_DIR:-/tmp/orgop-bench-durable}/seed.json
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
BIN=${ORGOP:-target/debug/orgop}
OUT=${BENCH_DIR:-/tmp/orgop-bench-durable}/out
run() { $BIN run runbooks/unused-ebs.yaml --param min_age_days=0 --endpoint-url $EP --out $OUT "$@"; }
echo "== dry runs, wall time"
for i in 1 2 3 4 5; do s=$(date +%s%N); run >/dev/null 2>&1; echo "rc=$? $(( ($(date +%s%N)-s)/1000000 )) ms"; done
echo "== dry run, fsync/fdatasync/write syscalls"
strace -f -c -e trace=fsync,fdatasync,rename,flock -o ${BENCH_DIR:-/tmp/orgop-bench-durable}/dry.strace $BIN run runbooks/unused-ebs.yaml --param min_age_days=0 --endpoint-url $EP --out $OUT >/dev/null 2>&1
cat ${BENCH_DIR:-/tmp/orgop-bench-durable}/dry.strace
echo "== apply run (48 actions), wall time and syscalls"
s=$(date +%s%N)
strace -f -c -e trace=fsync,fdatasync,rename,flock -o ${BENCH_DIR:-/tmp/orgop-bench-durable}/apply.strace $BIN run runbooks/unused-ebs.yaml --param min_age_days=0 --endpoint-url $EP --out $OUT --apply >/dev/null 2>${BENCH_DIR:-/tmp/orgop-bench-durable}/apply.err
echo "rc=$? $(( ($(date +%s%N)-s)/1000000 )) ms (under strace)"
tail -8 ${BENCH_DIR:-/tmp/orgop-bench-durable}/apply.err
cat ${BENCH_DIR:-/tmp/orgop-bench-durable}/apply.strace
