#!/usr/bin/env python3
"""Benchmark: `orgop run` over the whole catalog (every runbooks/*.yaml, dry) on moto server
seeded with an organization of ACCOUNTS member accounts x 2 regions (tests/support/seed_org.py:
4 volumes per account and region, then tests/support/seed_catalog.py: what every catalog
runbook looks for), behind tests/support/aws_proxy.py adding LATENCY ms to every request, as in
scripts/bench-run.py. Release build; each runbook at its own `concurrency` (20 in the catalog).

Per runbook: items, their statuses, findings, AWS calls (the sum of results.jsonl's `calls`),
wall time and CPU time (user+sys of orgop; the emulator's CPU beside it), medians of REPEAT
runs interleaved across runbooks (a noisy minute hurts them all alike), and the wall time's
ratio to unused-ebs's in the same command (the baseline: the runbook bench-run.py measures).
A runbook whose items are not all ok is still timed and its statuses printed
(securityhub-standards: moto has no Security Hub standards API, its items end in error).

usage: python3 scripts/bench-catalog.py [--accounts 20] [--repeat 3] [--latency-ms 50]
"""
import argparse, json, os, pathlib, resource, shutil, socket, statistics, subprocess, sys, tempfile, time
from collections import Counter

root = pathlib.Path(__file__).resolve().parent.parent
os.chdir(root)
p = argparse.ArgumentParser()
p.add_argument("--accounts", type=int, default=20)
p.add_argument("--repeat", type=int, default=3)
p.add_argument("--latency-ms", type=int, default=50)
args = p.parse_args()
REGIONS = ["us-east-1", "eu-west-1"]
PARAMS = {"unused-ebs": ["--param", "min_age_days=0"], "unused-nat-gateways": ["--param", "min_age_days=0"]}

subprocess.run(["bash", "scripts/moto-venv.sh"], check=True)
subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "orgop-cli"], check=True, env=dict(os.environ, CARGO_INCREMENTAL="0"))
orgop = root / "target/release/orgop"
venv_py = str(root / ".venv/bin/python")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_of(pid):
    """user+sys seconds of a live process, from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


work = pathlib.Path(tempfile.mkdtemp(prefix="orgop-bench-catalog-"))
moto_port = free_port()
moto = subprocess.Popen([str(root / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
proxy = None
try:
    moto_url = f"http://127.0.0.1:{moto_port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", moto_port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    t0 = time.perf_counter()
    org = json.loads(subprocess.run([venv_py, "tests/support/seed_org.py", "--endpoint", moto_url, "--accounts", str(args.accounts), "--regions", ",".join(REGIONS)],
                                    check=True, capture_output=True, text=True).stdout)
    members = sorted(org["accounts"])
    seed = json.loads(subprocess.run([venv_py, "tests/support/seed_catalog.py", "--endpoint", moto_url, "--accounts", ",".join(members), "--regions", ",".join(REGIONS)],
                                     check=True, capture_output=True, text=True).stdout)
    print(f"seeded {args.accounts} member accounts x {len(REGIONS)} regions in {time.perf_counter() - t0:.0f} s", flush=True)
    proxy = subprocess.Popen([venv_py, "tests/support/aws_proxy.py", "--upstream", moto_url, "--latency-ms", str(args.latency_ms)], stdout=subprocess.PIPE, text=True)
    proxy_url = f"http://127.0.0.1:{proxy.stdout.readline().split()[-1]}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    for k in ["AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"]:
        env.pop(k, None)

    runbooks = sorted(p.stem for p in (root / "runbooks").glob("*.yaml"))
    assert "unused-ebs" in runbooks

    def run(name):
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        emu = cpu_of(moto.pid)
        start = time.perf_counter()
        proc = subprocess.run([str(orgop), "run", f"runbooks/{name}.yaml", "--out", str(out), "--endpoint-url", proxy_url, *PARAMS.get(name, [])],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
        statuses = Counter(r["status"] for r in rows)
        findings = sum(len(r["findings"]) for r in rows)
        calls = sum(r["calls"] for r in rows)
        if proc.returncode not in (0, 1):
            sys.exit(f"{name}: exit {proc.returncode}\n{proc.stderr}")
        return wall, cpu, cpu_of(moto.pid) - emu, len(rows), statuses, findings, calls

    times = {n: [] for n in runbooks}
    shape = {}
    for i in range(args.repeat):
        for name in runbooks:
            wall, cpu, emu, items, statuses, findings, calls = run(name)
            times[name].append((wall, cpu, emu))
            seen = (items, dict(sorted(statuses.items())), findings, calls)
            assert shape.setdefault(name, seen) == seen, f"{name}: run {i + 1} differs: {seen} vs {shape[name]}"
            print(f"  [{i + 1}/{args.repeat}] {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, emulator {emu:.2f} s CPU", flush=True)
    med = {n: tuple(statistics.median(t[k] for t in ts) for k in range(3)) for n, ts in times.items()}
    base = med["unused-ebs"][0]
    print(f"\norgop run (release) over the catalog: {args.accounts} member accounts + the management account x {len(REGIONS)} regions "
          f"(global runbooks: once per account); proxy adds {args.latency_ms} ms per request; medians of {args.repeat}")
    print(f"{'runbook':26} {'items':>5} {'statuses':24} {'findings':>8} {'calls':>6} {'wall s':>7} {'/unused-ebs':>11} {'CPU s':>6} {'emulator CPU s':>14}")
    for name in runbooks:
        items, statuses, findings, calls = shape[name]
        wall, cpu, emu = med[name]
        st = " ".join(f"{k} {v}" for k, v in statuses.items())
        print(f"{name:26} {items:5} {st:24} {findings:8} {calls:6} {wall:7.2f} {wall / base:11.2f} {cpu:6.2f} {emu:14.2f}")
    total = sum(m[0] for m in med.values())
    print(f"{'whole catalog':26} {'':5} {'':24} {'':8} {'':6} {total:7.2f} {total / base:11.2f}")
finally:
    if proxy:
        proxy.kill()
    moto.kill()
    shutil.rmtree(work, ignore_errors=True)
