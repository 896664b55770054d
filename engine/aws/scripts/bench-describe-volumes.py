#!/usr/bin/env python3
"""CPU time to serialize, sign and parse an ec2:DescribeVolumes call answered with N volumes,
orgop (release build of engine/aws/examples/bench_describe_volumes.rs) beside botocore in
the same minute, plus each side's first-use load of the ec2 model.

Usage: engine/aws/scripts/bench-describe-volumes.py [--volumes 1000] [--iterations 50]
           [--python .venv/bin/python] [--no-build]

botocore comes from the python given (default: the repo's .venv, which has boto3 through
moto; `pip install botocore` elsewhere). Prints a markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

VOLUME = """    <item>
      <volumeId>vol-{i:017x}</volumeId>
      <size>{size}</size>
      <snapshotId>snap-{i:017x}</snapshotId>
      <availabilityZone>us-east-1{az}</availabilityZone>
      <status>available</status>
      <createTime>2026-11-{day:02d}T10:{m:02d}:00.000Z</createTime>
      <attachmentSet/>
      <tagSet>
        <item><key>team</key><value>team-{t}</value></item>
        <item><key>Name</key><value>data-{i}</value></item>
      </tagSet>
      <volumeType>gp3</volumeType>
      <iops>3000</iops>
      <encrypted>{enc}</encrypted>
      <multiAttachEnabled>false</multiAttachEnabled>
      <throughput>125</throughput>
    </item>
"""


def response(n):
    items = "".join(
        VOLUME.format(i=i, size=8 + i % 100, az="abc"[i % 3], day=1 + i % 28, m=i % 60,
                      t=i % 7, enc="true" if i % 2 else "false")
        for i in range(n)
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">\n'
            '  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>\n'
            '  <volumeSet>\n' + items + '  </volumeSet>\n</DescribeVolumesResponse>\n')


BOTOCORE = r'''
import json, sys, time
import botocore, botocore.loaders, botocore.model, botocore.serialize, botocore.parsers
from botocore.auth import SigV4Auth
from botocore.awsrequest import prepare_request_dict, create_request_object
from botocore.credentials import Credentials

path, iterations = sys.argv[1], int(sys.argv[2])
body = open(path, "rb").read()
t = time.process_time()
loader = botocore.loaders.Loader()
model = botocore.model.ServiceModel(loader.load_service_model("ec2", "service-2"), "ec2")
op = model.operation_model("DescribeVolumes")
model_load = time.process_time() - t

params = {"Filters": [{"Name": "status", "Values": ["available"]}], "MaxResults": 1000}
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG")
serializer = botocore.serialize.create_serializer("ec2", include_validation=True)
parser = botocore.parsers.create_parser("ec2")
# Each phase in its own loop, like the Rust side; the cheap phases run 20x as often.
cheap = iterations * 20
t0 = time.process_time()
for _ in range(cheap):
    req = serializer.serialize_to_request(params, op)
    prepare_request_dict(req, "https://ec2.us-east-1.amazonaws.com")
ser = (time.process_time() - t0) / 20
t0 = time.process_time()
for _ in range(cheap):
    aws_req = create_request_object(req)
    SigV4Auth(creds, "ec2", "us-east-1").add_auth(aws_req)
    aws_req.prepare()
sign = (time.process_time() - t0) / 20
t0 = time.process_time()
for _ in range(iterations):
    out = parser.parse({"status_code": 200, "headers": {}, "body": body}, op.output_shape)
    volumes = len(out["Volumes"])
parse = time.process_time() - t0
per = lambda s: s * 1000.0 / iterations
print(json.dumps({"implementation": "botocore " + botocore.__version__, "volumes": volumes,
                  "iterations": iterations, "model_load_ms": model_load * 1000.0,
                  "serialize_ms": per(ser), "sign_ms": per(sign), "parse_ms": per(parse),
                  "total_ms": per(ser + sign + parse)}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=1000)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--python", default=os.path.join(REPO, ".venv", "bin", "python"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "orgop-aws",
                               "--example", "bench_describe_volumes"], cwd=REPO)
    binary = os.path.join(REPO, "target", "release", "examples", "bench_describe_volumes")
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        f.write(response(args.volumes))
        path = f.name
    try:
        rows = []
        for cmd in ([binary, path, str(args.iterations)],
                    [args.python, "-c", BOTOCORE, path, str(args.iterations)]):
            out = subprocess.check_output(cmd)
            rows.append(json.loads(out))
    finally:
        os.unlink(path)
    for r in rows:
        assert r["volumes"] == args.volumes, r
    o, b = rows
    print("| %d volumes, %d iterations (CPU ms) | %s | %s | botocore / orgop |"
          % (args.volumes, args.iterations, o["implementation"], b["implementation"]))
    print("| --- | --- | --- | --- |")
    for key, label in (("serialize_ms", "validate + serialize request"),
                       ("sign_ms", "sign (SigV4)"), ("parse_ms", "parse response"),
                       ("total_ms", "total per call"),
                       ("model_load_ms", "first use of the ec2 model (once)")):
        print("| %s | %.3f | %.3f | %.1fx |" % (label, o[key], b[key], b[key] / max(o[key], 1e-9)))


if __name__ == "__main__":
    sys.exit(main())
