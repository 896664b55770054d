#!/usr/bin/env python3
"""Regenerate orgop-models's embedded model bundle from a botocore release on PyPI.

Usage: engine/models/scripts/update-models.py [--botocore-version X.Y.Z] [--wheel PATH]

For every service in SERVICES it takes the newest API version's service-2.json,
paginators-1.json and waiters-2.json (plain or .json.gz, whichever the release ships),
applies botocore's *.sdk-extras.json merges, strips documentation, minifies and gzips
each into engine/models/models/<service>/<api-version>/ (botocore's own data layout), together
with botocore's endpoints.json (partitions, regions, per-service endpoints) and a manifest. It also
writes engine/models/src/bundled.rs, the include_bytes! table the crate embeds.

Python 3 standard library only, plus `pip download` to fetch the wheel.
"""

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

SERVICES = [
    "ec2", "s3", "rds", "iam", "lambda", "organizations", "account", "sts", "dynamodb",
    "cloudfront", "securityhub", "inspector2", "guardduty", "config", "elbv2", "elb",
    "ecs", "eks", "kms", "logs", "ssm", "sns", "sqs", "cloudtrail", "cloudformation",
    "route53", "acm", "apigateway", "apigatewayv2", "elasticache", "autoscaling",
    "backup", "secretsmanager", "resourcegroupstaggingapi", "stepfunctions", "cloudwatch",
]

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
OUT = os.path.join(CRATE, "models")
BUNDLED_RS = os.path.join(CRATE, "src", "bundled.rs")

# Keys whose string values are prose for humans only.
DOC_KEYS = {"documentation", "documentationUrl", "deprecatedMessage"}


def strip_docs(node):
    """Remove documentation strings (never a member or shape that happens to share a name)."""
    if isinstance(node, dict):
        return {
            k: strip_docs(v)
            for k, v in node.items()
            if not (k in DOC_KEYS and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip_docs(v) for v in node]
    return node


def deep_merge(base, extra):
    """botocore's ExtrasProcessor: dicts merge recursively, anything else replaces."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v


def fetch_wheel(version):
    tmp = tempfile.mkdtemp(prefix="orgop-botocore-")
    spec = "botocore==%s" % version if version else "botocore"
    subprocess.check_call(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, spec]
    )
    wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
    if len(wheels) != 1:
        sys.exit("expected one botocore wheel in %s, found %r" % (tmp, wheels))
    return os.path.join(tmp, wheels[0])


class Wheel:
    def __init__(self, path):
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())

    def load(self, stem):
        """Load botocore/data/<stem>.json or .json.gz; None when neither exists."""
        for name, gz in (("botocore/data/%s.json" % stem, False),
                         ("botocore/data/%s.json.gz" % stem, True)):
            if name in self.names:
                raw = self.zip.read(name)
                if gz:
                    raw = gzip.decompress(raw)
                return json.loads(raw)
        return None

    def api_versions(self, service):
        prefix = "botocore/data/%s/" % service
        return sorted({n[len(prefix):].split("/")[0] for n in self.names
                       if n.startswith(prefix) and n.count("/") >= 4})

    def botocore_version(self):
        for n in self.names:
            if n.endswith(".dist-info/METADATA"):
                for line in self.zip.read(n).decode().splitlines():
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
        return "unknown"


def with_extras(wheel, stem, kind):
    doc = wheel.load(stem + "/" + kind)
    if doc is None:
        return None
    extras = wheel.load(stem + "/" + kind + ".sdk-extras")
    if extras and isinstance(extras.get("merge"), dict):
        deep_merge(doc, extras["merge"])
    return doc


def minified(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def write_gz(path, data):
    # mtime=0 and no file name: the bundle is byte-for-byte reproducible.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return len(buf.getvalue())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--botocore-version", default=None, help="default: newest on PyPI")
    ap.add_argument("--wheel", default=None, help="use this botocore wheel instead of pip download")
    args = ap.parse_args()

    wheel = Wheel(args.wheel or fetch_wheel(args.botocore_version))
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)

    manifest = {"botocore_version": wheel.botocore_version(), "services": {}}
    total = 0
    rows = []
    for service in SERVICES:
        versions = wheel.api_versions(service)
        if not versions:
            sys.exit("botocore has no service %r" % service)
        api_version = versions[-1]
        stem = "%s/%s" % (service, api_version)
        os.makedirs(os.path.join(OUT, stem))
        files = {}
        for kind in ("service-2", "paginators-1", "waiters-2"):
            doc = with_extras(wheel, stem, kind)
            if doc is None:
                if kind == "service-2":
                    sys.exit("no service-2 for %s" % stem)
                continue
            rel = "%s/%s.json.gz" % (stem, kind)
            total += write_gz(os.path.join(OUT, rel), minified(strip_docs(doc)))
            files[kind] = rel
        manifest["services"][service] = {"api_version": api_version}
        rows.append((service, api_version, files))

    total += write_gz(os.path.join(OUT, "endpoints.json.gz"), minified(wheel.load("endpoints")))

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")

    def inc(rel):
        return 'include_bytes!("../models/%s")' % rel

    with open(BUNDLED_RS, "w") as f:
        f.write("//! Generated by engine/models/scripts/update-models.py; do not edit.\n")
        f.write("//!\n//! The embedded botocore %s models in botocore's data layout, each file\n"
                % manifest["botocore_version"])
        f.write("//! gzipped, minified, documentation stripped and sdk-extras already merged.\n\n")
        f.write("/// botocore release the bundle was made from.\n")
        f.write("pub(crate) const BOTOCORE_VERSION: &str = %s;\n\n"
                % json.dumps(manifest["botocore_version"]))
        f.write("/// botocore's endpoints.json, gzipped.\n")
        f.write("pub(crate) static ENDPOINTS: &[u8] = %s;\n\n" % inc("endpoints.json.gz"))
        f.write("/// One bundled service: (botocore name, API version, service-2, paginators-1,\n")
        f.write("/// waiters-2), all gzipped.\n")
        f.write("pub(crate) type Bundled = (\n    &'static str,\n    &'static str,\n"
                "    &'static [u8],\n    Option<&'static [u8]>,\n    Option<&'static [u8]>,\n);\n\n")
        f.write("/// The bundled services, sorted by name.\n")
        f.write("pub(crate) static SERVICES: &[Bundled] = &[\n")
        for service, api_version, files in sorted(rows):
            opt = lambda k: ("Some(%s)" % inc(files[k])) if k in files else "None"
            f.write("    (\n        %s,\n        %s,\n        %s,\n        %s,\n        %s,\n    ),\n"
                    % (json.dumps(service), json.dumps(api_version), inc(files["service-2"]),
                       opt("paginators-1"), opt("waiters-2")))
        f.write("];\n")

    # Leave the generated table as `cargo fmt` would, so regenerating changes no line twice.
    try:
        subprocess.call(["rustfmt", "--edition", "2024", BUNDLED_RS])
    except OSError:
        print("rustfmt not found: run `cargo fmt -p orgop-models`", file=sys.stderr)

    print("botocore %s: %d services, %.1f KiB compressed"
          % (manifest["botocore_version"], len(SERVICES), total / 1024.0))


if __name__ == "__main__":
    main()
