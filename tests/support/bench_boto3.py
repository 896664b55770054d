#!/usr/bin/env python3
"""The baseline for orgop's run benchmark: what a platform engineer writes by hand. A boto3
thread pool sweeps every ACTIVE account x region for unattached volumes not tagged
keep=true, assuming a role per account (credentials cached per account). Prints the number
of findings.

usage: bench_boto3.py --endpoint URL --regions a,b --workers 64 [--role OrgOpExecutionRole]
"""
import argparse, threading
from concurrent.futures import ThreadPoolExecutor
import boto3

p = argparse.ArgumentParser()
p.add_argument("--endpoint", required=True)
p.add_argument("--regions", required=True)
p.add_argument("--workers", type=int, default=64)
p.add_argument("--role", default="OrgOpExecutionRole")
args = p.parse_args()
base = dict(endpoint_url=args.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")

org = boto3.client("organizations", region_name="us-east-1", **base)
accounts = [a["Id"] for page in org.get_paginator("list_accounts").paginate() for a in page["Accounts"] if a["Status"] == "ACTIVE"]

sts = boto3.client("sts", region_name="us-east-1", **base)
# Credentials cached per account, each account's AssumeRole behind its own lock (a global
# lock would serialize 50 round trips).
creds, locks, guard = {}, {}, threading.Lock()
# One Session for the whole pool, so the ec2 model is loaded once; Session.client() is not
# thread-safe, so clients are created under a lock (clients themselves are thread-safe).
session, session_lock = boto3.session.Session(), threading.Lock()


def credentials_for(account):
    with guard:
        lock = locks.setdefault(account, threading.Lock())
    with lock:
        if account not in creds:
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{args.role}", RoleSessionName="bench")["Credentials"]
            creds[account] = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        return creds[account]


def item(account, region):
    c = credentials_for(account)
    with session_lock:
        ec2 = session.client("ec2", region_name=region, endpoint_url=args.endpoint, **c)
    found = 0
    for page in ec2.get_paginator("describe_volumes").paginate(Filters=[{"Name": "status", "Values": ["available"]}]):
        for v in page["Volumes"]:
            if {t["Key"]: t["Value"] for t in v.get("Tags", [])}.get("keep") != "true":
                found += 1
    return found


with ThreadPoolExecutor(args.workers) as pool:
    total = sum(pool.map(lambda ar: item(*ar), [(a, r) for a in accounts for r in args.regions.split(",")]))
print(total)
