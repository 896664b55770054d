#!/usr/bin/env python3
"""Seeds an AWS emulator (moto server) with an organization for orgop's end-to-end tests,
demo and benchmarks, and prints what a correct `unused-ebs` run must find, as JSON.

Per member account and region it creates: one volume attached to an instance, unattached
volumes (one tagged keep=false), and one unattached volume tagged keep=true. Expected
findings are the unattached volumes without keep=true (moto dates volumes "now", so runs use
`--param min_age_days=0`).

usage: seed_org.py --endpoint http://127.0.0.1:PORT --accounts 12 --regions us-east-1,eu-west-1
                   [--unattached 2] [--kept 1] [--attached 1] [--role OrgOpExecutionRole] [--threads 8]
"""
import argparse, json, sys
from concurrent.futures import ThreadPoolExecutor
import boto3

p = argparse.ArgumentParser()
p.add_argument("--endpoint", required=True)
p.add_argument("--accounts", type=int, default=12)
p.add_argument("--regions", default="us-east-1,eu-west-1")
p.add_argument("--unattached", type=int, default=2)
p.add_argument("--kept", type=int, default=1)
p.add_argument("--attached", type=int, default=1)
p.add_argument("--threads", type=int, default=8)
p.add_argument("--role", default="OrgOpExecutionRole")
args = p.parse_args()
regions = args.regions.split(",")
creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


def client(service, region="us-east-1", **kw):
    return boto3.client(service, region_name=region, endpoint_url=args.endpoint, **{**creds, **kw})


org = client("organizations")
org.create_organization(FeatureSet="ALL")
accounts = []
for i in range(args.accounts):
    r = org.create_account(Email=f"member{i}@example.com", AccountName=f"member-{i:02}")
    accounts.append((r["CreateAccountStatus"]["AccountId"], f"member-{i:02}"))

sts = client("sts")
expected = {"accounts": {}, "findings": [], "kept": [], "attached": []}


def seed_item(account_id, member, region):
    out = {"findings": [], "kept": [], "attached": []}
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=args.endpoint, **member)
    az = f"{region}a"
    if args.attached:
        image = ec2.describe_images()["Images"][0]["ImageId"]
        inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", Placement={"AvailabilityZone": az})
        iid = inst["Instances"][0]["InstanceId"]
        for k in range(args.attached):
            v = ec2.create_volume(AvailabilityZone=az, Size=10)["VolumeId"]
            ec2.attach_volume(VolumeId=v, InstanceId=iid, Device=f"/dev/sd{chr(ord('f') + k)}")
            out["attached"].append(v)
    for k in range(args.unattached):
        tags = [{"ResourceType": "volume", "Tags": [{"Key": "keep", "Value": "false"}]}] if k == 0 else []
        v = ec2.create_volume(AvailabilityZone=az, Size=20 + k, TagSpecifications=tags)["VolumeId"]
        out["findings"].append({"account_id": account_id, "region": region, "volume_id": v})
    for _ in range(args.kept):
        v = ec2.create_volume(AvailabilityZone=az, Size=30, TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "keep", "Value": "true"}]}])["VolumeId"]
        out["kept"].append(v)
    return out


jobs = []
with ThreadPoolExecutor(args.threads) as pool:
    for account_id, name in accounts:
        expected["accounts"][account_id] = name
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{args.role}", RoleSessionName="seed")["Credentials"]
        member = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        for region in regions:
            jobs.append(pool.submit(seed_item, account_id, member, region))
    for j in jobs:
        r = j.result()
        for k in ("findings", "kept", "attached"):
            expected[k].extend(r[k])

expected["findings"].sort(key=lambda f: (f["account_id"], f["region"], f["volume_id"]))
json.dump(expected, sys.stdout, indent=1, sort_keys=True)
print()
