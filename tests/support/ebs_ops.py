#!/usr/bin/env python3
"""EBS changes and counts inside moto server's member accounts, for tests/change.rs: each
command assumes a role in ACCOUNT (as seed_org.py does) and prints JSON.

usage: ebs_ops.py --endpoint URL delete ACCOUNT REGION VOLUME_ID
       ebs_ops.py --endpoint URL tag ACCOUNT REGION VOLUME_ID KEY VALUE
       ebs_ops.py --endpoint URL snapshots ACCOUNT,... REGION,...
           -> [{"account_id", "region", "snapshot_id", "volume_id"}] of every snapshot orgop took
              (tagged orgop:runbook)
       ebs_ops.py --endpoint URL volumes ACCOUNT,... REGION,...
           -> [{"account_id", "region", "volume_id", "size", "tags"}] of every volume
"""
import argparse, json, sys
import boto3

p = argparse.ArgumentParser()
p.add_argument("--endpoint", required=True)
p.add_argument("command")
p.add_argument("rest", nargs="*")
args = p.parse_args()
creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


def ec2(account, region):
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=args.endpoint, **creds)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrgOpTestRole", RoleSessionName="test")["Credentials"]
    return boto3.client("ec2", region_name=region, endpoint_url=args.endpoint, aws_access_key_id=c["AccessKeyId"],
                        aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])


out = []
if args.command == "delete":
    account, region, vol = args.rest
    ec2(account, region).delete_volume(VolumeId=vol)
elif args.command == "tag":
    account, region, vol, key, value = args.rest
    ec2(account, region).create_tags(Resources=[vol], Tags=[{"Key": key, "Value": value}])
elif args.command in ("snapshots", "volumes"):
    accounts, regions = (x.split(",") for x in args.rest)
    for a in accounts:
        for r in regions:
            c = ec2(a, r)
            if args.command == "snapshots":
                for s in c.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["orgop:runbook"]}])["Snapshots"]:
                    out.append({"account_id": a, "region": r, "snapshot_id": s["SnapshotId"], "volume_id": s.get("VolumeId")})
            else:
                for v in c.describe_volumes()["Volumes"]:
                    out.append({"account_id": a, "region": r, "volume_id": v["VolumeId"], "size": v["Size"],
                                "tags": {t["Key"]: t["Value"] for t in v.get("Tags", [])}})
else:
    sys.exit(f"unknown command {args.command}")
json.dump(out, sys.stdout, sort_keys=True)
print()
