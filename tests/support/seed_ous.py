#!/usr/bin/env python3
"""Arranges an organization already in an AWS emulator (moto server) into OUs, five levels
deep as Organizations allows, and tags accounts, for the accounts inventory's test.

Accounts, by the order ListAccounts gives the members (the management account stays under
the root): the first stays under the root, untagged; the second goes to Workloads/Prod,
tagged env=prod and team=web; the third to Workloads/Prod/Web/Blue/Canary (level 5); any
others to Sandbox. Prints {account id: {"ou_path": "Root/...", "tags": ["k=v", ...]}}
for every account, the management account included.

usage: seed_ous.py --endpoint http://127.0.0.1:PORT
"""
import argparse, json
import boto3

p = argparse.ArgumentParser()
p.add_argument("--endpoint", required=True)
args = p.parse_args()
org = boto3.client("organizations", region_name="us-east-1", endpoint_url=args.endpoint,
                   aws_access_key_id="testing", aws_secret_access_key="testing")

root = org.list_roots()["Roots"][0]
master = org.describe_organization()["Organization"]["MasterAccountId"]


def ou(parent, name):
    return org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]


workloads = ou(root["Id"], "Workloads")
prod = ou(workloads, "Prod")
web = ou(prod, "Web")
blue = ou(web, "Blue")
canary = ou(blue, "Canary")
sandbox = ou(root["Id"], "Sandbox")

members = [a["Id"] for a in org.list_accounts()["Accounts"] if a["Id"] != master]
expected = {master: {"ou_path": root["Name"], "tags": []}}
places = [
    (None, root["Name"], []),
    (prod, f"{root['Name']}/Workloads/Prod", [("env", "prod"), ("team", "web")]),
    (canary, f"{root['Name']}/Workloads/Prod/Web/Blue/Canary", [("cost-center", "42")]),
]
for i, account in enumerate(members):
    target, path, tags = places[i] if i < len(places) else (sandbox, f"{root['Name']}/Sandbox", [])
    if target:
        org.move_account(AccountId=account, SourceParentId=root["Id"], DestinationParentId=target)
    if tags:
        org.tag_resource(ResourceId=account, Tags=[{"Key": k, "Value": v} for k, v in tags])
    expected[account] = {"ou_path": path, "tags": [f"{k}={v}" for k, v in tags]}
print(json.dumps(expected))
