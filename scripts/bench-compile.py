#!/usr/bin/env python3
"""Benchmark: validate and compile 100 runbooks with the release `orgop`.

Figures are ratios against baselines run in the same process, because the machines are shared
and noisy:
  - startup: `orgop --version` (process start, no work);
  - one:     `orgop compile` of a single runbook;
  - asl-validator (Node.js, what many pipelines already run) checking the 100 compiled files.
Each command runs REPEAT times; the median wall time is reported.

  - baseline: with `--baseline BIN`, `orgop validate` of the same 100 runbooks by another
    build (e.g. one from before a change), for the ratio of the two.
Each command runs REPEAT times; the median wall time is reported.

usage: python3 scripts/bench-compile.py [--baseline BIN]   (builds target/release/orgop first)
"""
import argparse, os, pathlib, shutil, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--baseline", help="another orgop binary to time `validate` of the same runbooks with")
args = ap.parse_args()

REPEAT = 15
root = pathlib.Path(__file__).resolve().parent.parent
os.chdir(root)
subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "orgop-cli"], check=True)
orgop = str(root / "target/release/orgop")
validator = root / "tests/asl/node_modules/.bin/asl-validator"
if not validator.exists():
    subprocess.run(["npm", "ci", "--prefix", "tests/asl", "--no-audit", "--no-fund", "--loglevel=error"], check=True)

sources = (sorted(pathlib.Path("runbooks").glob("*.yaml")) + sorted(pathlib.Path("tests/compile").glob("*.yaml"))
           + sorted(pathlib.Path("tests/valid").glob("*.yaml")))
work = pathlib.Path(tempfile.mkdtemp(prefix="orgop-bench-"))
books = work / "runbooks"
books.mkdir()
for i in range(100):
    src = sources[i % len(sources)]
    text = src.read_text()
    name = next(l for l in text.splitlines() if l.startswith("name: "))[6:].strip()
    (books / f"{i:03}-{name}.yaml").write_text(text.replace(f"name: {name}", f"name: {name}-{i:03}", 1))
one = books / "000-unused-ebs.yaml"

def median(cmd):
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)

out = work / "asl"
startup = median([orgop, "--version"])
validate100 = median([orgop, "validate", str(books)])
baseline100 = median([args.baseline, "validate", str(books)]) if args.baseline else None
compile1 = median([orgop, "compile", str(one), "--out", str(out / "one")])
compile100 = median([orgop, "compile", str(books), "--out", str(out / "all")])
asl_files = sorted(str(p) for p in (out / "all").glob("*.asl.json"))
assert len(asl_files) == 100, len(asl_files)
node = median([str(validator)] + [a for f in asl_files for a in ("--json-path", f)] + ["--silent"])

print(f"runbooks: 100 ({len(sources)} distinct shapes), repeats: {REPEAT}, medians")
print(f"orgop --version (startup)          {startup*1000:8.1f} ms   1.00x")
print(f"orgop validate 100 runbooks        {validate100*1000:8.1f} ms   {validate100/startup:5.2f}x startup")
if baseline100:
    print(f"baseline validate 100 runbooks     {baseline100*1000:8.1f} ms   orgop validate / baseline: {validate100/baseline100:5.2f}x")
print(f"orgop compile 1 runbook            {compile1*1000:8.1f} ms   {compile1/startup:5.2f}x startup")
print(f"orgop compile 100 runbooks         {compile100*1000:8.1f} ms   {compile100/startup:5.2f}x startup, {compile100/compile1:5.2f}x one runbook")
print(f"asl-validator on the 100 outputs   {node*1000:8.1f} ms   {node/compile100:6.1f}x orgop compile 100")
print(f"per runbook (compile 100 - startup) / 100: {(compile100-startup)*10:6.2f} ms")
shutil.rmtree(work)
