#!/usr/bin/env python3
"""Benchmark: unused-ebs over 50 accounts x 4 regions x 20 volumes on moto behind a proxy
adding 50 ms per request, three ways in one script (same emulator, same proxy, same data):
  - orgop run --concurrency 64 (release build)
  - a boto3 thread pool of 64, credentials cached per account (tests/support/bench_boto3.py)
  - c7n-org at its defaults with --cache-period 0 (in .venv-bench: pip install c7n c7n-org)
Reported per tool: wall time, CPU time (user+sys of the whole process tree) and peak RSS (sum
over the process tree, sampled every 20 ms), medians of REPEAT runs (c7n-org: 1 run), and
ratios against the boto3 pool. Each tool must report exactly the seeded findings.

usage: python3 scripts/bench-run.py [--accounts 50] [--regions 4] [--repeat 3]
                                   [--tools orgop,boto3,c7n] [--orgop-baseline PATH]
--orgop-baseline runs another orgop binary (an earlier build) in the same command, so a change
to orgop is measured against what it replaces on the same emulator, proxy and minute.
"""
import argparse, json, os, pathlib, resource, shutil, socket, statistics, subprocess, sys, tempfile, time

root = pathlib.Path(__file__).resolve().parent.parent
os.chdir(root)
p = argparse.ArgumentParser()
p.add_argument("--accounts", type=int, default=50)
p.add_argument("--regions", type=int, default=4)
p.add_argument("--repeat", type=int, default=3)
p.add_argument("--latency-ms", type=int, default=50)
p.add_argument("--tools", default="orgop,boto3,c7n", help="comma-separated: orgop, boto3, c7n")
p.add_argument("--orgop-baseline", help="another orgop binary to measure beside this one")
args = p.parse_args()
tools = set(args.tools.split(","))
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "sa-east-1"][: args.regions]

subprocess.run(["bash", "scripts/moto-venv.sh"], check=True)
bench_py = root / ".venv-bench/bin/python"
if not (root / ".venv-bench/bin/c7n-org").exists():
    subprocess.run([sys.executable, "-m", "venv", ".venv-bench"], check=True)
    subprocess.run([str(bench_py), "-m", "pip", "install", "--quiet", "c7n", "c7n-org", "boto3", "psutil"], check=True)
subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "orgop-cli"], check=True)
import importlib.util
if importlib.util.find_spec("psutil") is None:
    os.execv(str(bench_py), [str(bench_py)] + sys.argv)
import psutil


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


work = pathlib.Path(tempfile.mkdtemp(prefix="orgop-bench-run-"))
moto_port = free_port()
moto = psutil.Popen([str(root / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
moto_url = f"http://127.0.0.1:{moto_port}"
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", moto_port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
print(f"seeding {args.accounts} accounts x {len(REGIONS)} regions x 20 volumes ...", flush=True)
seed = subprocess.run([str(root / ".venv/bin/python"), "tests/support/seed_org.py", "--endpoint", moto_url, "--accounts", str(args.accounts),
                       "--regions", ",".join(REGIONS), "--unattached", "16", "--kept", "4", "--attached", "0", "--threads", "8"],
                      check=True, capture_output=True, text=True)
expected = json.loads(seed.stdout)
want = len(expected["findings"])
proxy = psutil.Popen([str(root / ".venv/bin/python"), "tests/support/aws_proxy.py", "--upstream", moto_url, "--latency-ms", str(args.latency_ms)],
                     stdout=subprocess.PIPE, text=True)
proxy_url = f"http://127.0.0.1:{proxy.stdout.readline().split()[-1]}"
env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
           AWS_ENDPOINT_URL=proxy_url)
env.pop("AWS_PROFILE", None)


def measure(cmd, cwd=None):
    """(wall s, cpu s of the process tree, peak tree RSS MiB, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    emu_before = sum(moto.cpu_times()[:2])
    out_path = work / "stdout.txt"
    with open(out_path, "w") as out:
        t0 = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        peak = 0
        while proc.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [proc] + proc.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    emu = sum(moto.cpu_times()[:2]) - emu_before
    return wall, cpu, peak / 2**20, out_path.read_text(), emu, proc.returncode


def orgop_run(binary=root / "target/release/orgop"):
    out = work / "orgop-out"
    shutil.rmtree(out, ignore_errors=True)
    r = measure([str(binary), "run", "runbooks/unused-ebs.yaml", "--concurrency", "64", "--param", "min_age_days=0",
                 "--regions", ",".join(REGIONS), "--out", str(out), "--endpoint-url", proxy_url])
    found = sum(len(json.loads(l)["findings"]) for l in (out / "results.jsonl").read_text().splitlines())
    return r, found


def boto3_run():
    r = measure([str(bench_py), "tests/support/bench_boto3.py", "--endpoint", proxy_url, "--regions", ",".join(REGIONS), "--workers", "64"])
    return r, int(r[3].strip() or -1)


def c7n_run():
    cfg = work / "c7n"
    shutil.rmtree(cfg, ignore_errors=True)
    cfg.mkdir()
    accounts = [{"account_id": a, "name": n, "regions": REGIONS, "role": f"arn:aws:iam::{a}:role/OrgOpExecutionRole"} for a, n in expected["accounts"].items()]
    accounts.append({"account_id": "123456789012", "name": "management", "regions": REGIONS, "role": "arn:aws:iam::123456789012:role/OrgOpExecutionRole"})
    (cfg / "accounts.json").write_text(json.dumps({"accounts": accounts}))
    (cfg / "policy.json").write_text(json.dumps({"policies": [{"name": "unused-ebs", "resource": "aws.ebs",
                                                             "filters": [{"State": "available"}, {"not": [{"tag:keep": "true"}]}]}]}))
    r = measure([str(root / ".venv-bench/bin/c7n-org"), "run", "-c", str(cfg / "accounts.json"), "-u", str(cfg / "policy.json"),
                 "-s", str(cfg / "out"), "--cache-period", "0"])
    found = 0
    for f in (cfg / "out").rglob("resources.json"):
        found += len(json.loads(f.read_text()))
    return r, found


rows = {}
plan = []
if "orgop" in tools:
    plan.append(("orgop run --concurrency 64", orgop_run, args.repeat))
if args.orgop_baseline:
    plan.append(("orgop baseline (--orgop-baseline)", lambda: orgop_run(pathlib.Path(args.orgop_baseline).resolve()), args.repeat))
if "boto3" in tools:
    plan.append(("boto3 thread pool (64)", boto3_run, args.repeat))
if "c7n" in tools:
    plan.append(("c7n-org (defaults)", c7n_run, 1))
# Interleave the repeats (a, b, c, a, b, c, ...) so a noisy minute hurts every tool alike.
runs_of = {name: [] for name, _, _ in plan}
for i in range(max(n for _, _, n in plan)):
    for name, fn, n in plan:
        if i >= n:
            continue
        (wall, cpu, rss, _, emu, code), found = fn()
        assert found == want, f"{name} found {found}, expected {want}"
        runs_of[name].append((wall, cpu, rss, emu))
        print(f"  {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss:.0f} MiB peak, emulator {emu:.2f} s CPU", flush=True)
for name, runs in runs_of.items():
    rows[name] = tuple(statistics.median(x[i] for x in runs) for i in range(4))

items = args.accounts * len(REGIONS)
base = rows.get("boto3 thread pool (64)") or next(iter(rows.values()))
print(f"\n{args.accounts} accounts x {len(REGIONS)} regions x 20 volumes, {want} findings; proxy adds {args.latency_ms} ms per request; medians")
print(f"{'tool':30} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'wall/boto3':>11} {'CPU/boto3':>10} {'emulator CPU s':>15}")
for name, (wall, cpu, rss, emu) in rows.items():
    print(f"{name:30} {wall:8.2f} {cpu:8.2f} {rss:9.0f} {wall/base[0]:11.2f} {cpu/base[1]:10.3f} {emu:15.2f}   {cpu/items*1e3:.2f} ms CPU per item")
o = rows.get("orgop run --concurrency 64")
c = rows.get("c7n-org (defaults)")
if o and c:
    print(f"orgop vs c7n-org: wall {o[0]/c[0]:.3f}x, CPU {o[1]/c[1]:.3f}x, peak RSS {o[2]/c[2]:.3f}x")
b = rows.get("orgop baseline (--orgop-baseline)")
if o and b:
    print(f"orgop vs its baseline: wall {o[0]/b[0]:.3f}x, CPU {o[1]/b[1]:.3f}x, peak RSS {o[2]/b[2]:.3f}x")
proxy.kill()
moto.kill()
