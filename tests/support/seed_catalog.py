#!/usr/bin/env python3
"""Seeds an AWS emulator (moto server) that already holds an organization (seed_org.py) with
what the catalog's runbooks look for, in every given member account and region, and prints
what each runbook must find, as JSON: {"<runbook>": [[account, region, resource id], ...],
"ids": {...}} sorted, plus the ids the end-to-end test checks after applying.

Per account and region, matching resources and traps (the ones a runbook must NOT find):
- instances (default subnet, so each gets a public IPv4 address): `untagged` (no tags),
  `partial` (owner=team-a only), `compliant` (owner, cost-center and Name: the trap), each
  with an untagged root volume (found by tag-remediation);
- volumes: `vol_partial` (owner=team-c only) and `vol_compliant` (owner, cost-center and
  Name: the trap);
- a network interface with no public address (trap for public-ips);
- Elastic IPs: `idle` (unused), `kept` (unused, keep=true: trap), `associated` (to
  `compliant`: trap);
- a security group `orgop-catalog-open` with ingress 22/tcp from 0.0.0.0/0, 3389/tcp from ::/0,
  20-30/tcp from 0.0.0.0/0 (a range holding 22) and, as traps, 443/tcp from 0.0.0.0/0 (not
  sensitive), 22/tcp from 10.0.0.0/8 (not the world), 8000-8100/tcp from 0.0.0.0/0 and ICMP
  from 0.0.0.0/0; a group `orgop-catalog-all` with every protocol from 0.0.0.0/0;
- Lambda functions `current` (python3.12) and `old` (python3.8, deprecated);
- VPCs: one (tagged Name) peered with the next account's (cross-account: requested here,
  accepted there), and two peered with each other inside the account (trap); in the first, a
  subnet launching public addresses, an internet gateway and a route table `public-rt`
  associated with that subnet, routing 0.0.0.0/0 to the gateway and the next account's CIDR
  to the peering; in the default VPC, a route table `nat-rt` routing 0.0.0.0/0 to the `busy`
  NAT gateway. The vpcs runbook lists every VPC, subnet and route table (the default VPC's
  included, the management account's too: read after seeding) and the cross-account
  peerings;
- Inspector: EC2 scans enabled, ECR and Lambda not;
- public endpoints: an internet-facing and an internal (trap) application load balancer (both
  tagged Name, so `tags` finds them), a
  publicly accessible and a private (trap) RDS instance, a regional and a private (trap) API
  Gateway REST API;
- private NAT gateways (no Elastic IP, so the address runbooks see nothing new): `idle` (no
  datapoints), `zero` (a daily sum of 0 yesterday) and `busy` (12345 bytes out yesterday: the
  trap), with their `AWS/NATGateway` `BytesOutToDestination` data put into CloudWatch.
Everything tagged (instances, volumes, the named VPC, the two route tables, the load balancers)
is what `tags` must find.
Per account (CloudFront is global): a distribution serving HTTP (`allow-all`) and one
redirecting to HTTPS with an alias, both found by cloudfront-distributions (region `global`).

usage: seed_catalog.py --endpoint URL --accounts ID,ID,.. --regions us-east-1,eu-west-1
                       [--role OrgOpExecutionRole]
"""
import argparse, datetime, io, json, sys, zipfile
import boto3

p = argparse.ArgumentParser()
p.add_argument("--endpoint", required=True)
p.add_argument("--accounts", required=True)
p.add_argument("--regions", default="us-east-1,eu-west-1")
p.add_argument("--role", default="OrgOpExecutionRole")
args = p.parse_args()
accounts = args.accounts.split(",")
regions = args.regions.split(",")
creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
sts = boto3.client("sts", region_name="us-east-1", endpoint_url=args.endpoint, **creds)

sessions = {}
for a in accounts:
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{a}:role/{args.role}", RoleSessionName="seed")["Credentials"]
    sessions[a] = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])


def client(service, account, region):
    return boto3.client(service, region_name=region, endpoint_url=args.endpoint, **sessions[account])


expect = {k: [] for k in ["unused-eips", "public-ips", "sg-open-ingress", "tag-remediation", "lambda-functions", "vpcs", "tags", "inspector-activation", "cloudfront-distributions", "public-endpoints", "unused-nat-gateways"]}
ids = {"kept_rules": [], "revoked_rules": [], "partial": [], "untagged": [], "compliant": [], "deprecated": [], "allows_http": [], "busy_nat": [],
       "root_volumes": [], "vol_partial": [], "vol_compliant": [], "associated_eip": [], "inside_peering": [], "default_vpcs": [], "named_vpcs": [],
       "public_subnets": [], "public_rts": [], "nat_rts": []}
routes = {}  # route table id -> the `routes` column vpcs must show
yesterday = datetime.datetime.now(datetime.timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0) - datetime.timedelta(days=1)


def distribution(cf, n, policy, aliases):
    config = {
        "CallerReference": f"orgop-catalog-{n}",
        "Aliases": {"Quantity": len(aliases), "Items": aliases},
        "Origins": {"Quantity": 1, "Items": [{"Id": "origin", "DomainName": f"origin-{n}.example.com", "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": policy, "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
        "Comment": f"orgop catalog {n}",
        "Enabled": True,
        "PriceClass": "PriceClass_100",
    }
    return cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def tags(**kv):
    return [{"Key": k, "Value": v} for k, v in kv.items()]


def arn_of_instance(a, r, i):
    return f"arn:aws:ec2:{r}:{a}:instance/{i}"


zip_buf = io.BytesIO()
with zipfile.ZipFile(zip_buf, "w") as z:
    z.writestr("index.py", "def handler(event, context):\n    return event\n")
code = zip_buf.getvalue()

vpcs = {}  # (account, region) -> VPC to peer with the next account's
for n, a in enumerate(accounts):
    cf = client("cloudfront", a, "us-east-1")
    plain = distribution(cf, f"{n}-plain", "allow-all", [])
    secure = distribution(cf, f"{n}-secure", "redirect-to-https", [f"www{n}.example.com"])
    expect["cloudfront-distributions"] += [[a, "global", plain], [a, "global", secure]]
    ids["allows_http"].append([a, "global", plain])
    iam = client("iam", a, "us-east-1")
    role_arn = iam.create_role(RoleName="catalog-lambda", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    for r in regions:
        ec2 = client("ec2", a, r)
        image = ec2.describe_images()["Images"][0]["ImageId"]

        def instance(name_tags):
            spec = [{"ResourceType": "instance", "Tags": name_tags}] if name_tags else []
            i = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", TagSpecifications=spec)["Instances"][0]
            for bdm in i.get("BlockDeviceMappings", []):
                expect["tag-remediation"].append([a, r, bdm["Ebs"]["VolumeId"]])
                ids["root_volumes"].append([a, r, bdm["Ebs"]["VolumeId"]])
            return i["InstanceId"], i["NetworkInterfaces"][0]["NetworkInterfaceId"], i["SubnetId"]

        untagged, eni_u, subnet = instance([])
        partial, eni_p, _ = instance(tags(owner="team-a"))
        compliant, eni_c, _ = instance(tags(owner="team-b", **{"cost-center": "cc-1"}, Name="compliant"))
        expect["tag-remediation"] += [[a, r, untagged], [a, r, partial]]
        ids["untagged"].append([a, r, untagged])
        ids["partial"].append([a, r, partial])
        ids["compliant"].append([a, r, compliant])
        expect["tags"] += [[a, r, arn_of_instance(a, r, partial)], [a, r, arn_of_instance(a, r, compliant)]]
        az = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailabilityZone"]
        for kind, vol_tags in [("vol_partial", tags(owner="team-c")), ("vol_compliant", tags(owner="team-d", **{"cost-center": "cc-2"}, Name="compliant"))]:
            vol = ec2.create_volume(AvailabilityZone=az, Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": vol_tags}])["VolumeId"]
            ids[kind].append([a, r, vol])
            expect["tags"].append([a, r, f"arn:aws:ec2:{r}:{a}:volume/{vol}"])
            if kind == "vol_partial":
                expect["tag-remediation"].append([a, r, vol])
        # Every instance got a public address at launch; a bare interface has none.
        ec2.create_network_interface(SubnetId=subnet, Description="private only")
        expect["public-ips"] += [[a, r, eni_u], [a, r, eni_p], [a, r, eni_c]]

        idle = ec2.allocate_address(Domain="vpc")["AllocationId"]
        kept = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags(keep="true")}])["AllocationId"]
        assoc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.associate_address(AllocationId=assoc, InstanceId=compliant)
        ids["associated_eip"].append([a, r, assoc])
        expect["unused-eips"].append([a, r, idle])
        # (moto's tagging API lists no Elastic IPs, so the kept one's tag is not expected there)

        sg = ec2.create_security_group(GroupName="orgop-catalog-open", Description="catalog test")["GroupId"]
        everything = ec2.create_security_group(GroupName="orgop-catalog-all", Description="catalog test")["GroupId"]
        world4 = [{"CidrIp": "0.0.0.0/0"}]
        for perm, group in [
            ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": world4}, sg),
            ({"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, sg),
            ({"IpProtocol": "tcp", "FromPort": 20, "ToPort": 30, "IpRanges": world4}, sg),
            ({"IpProtocol": "-1", "IpRanges": world4}, everything),
        ]:
            ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
        for perm in [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": world4},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100, "IpRanges": world4},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": world4},
        ]:
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[perm])
        for rule in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg, everything]}])["SecurityGroupRules"]:
            if rule["IsEgress"]:
                continue
            open_ = rule.get("CidrIpv4") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0"
            sensitive = rule["IpProtocol"] == "-1" or (rule["IpProtocol"] == "tcp" and rule["FromPort"] <= 22 <= rule["ToPort"]) or rule["FromPort"] == 3389
            if open_ and sensitive:
                expect["sg-open-ingress"].append([a, r, rule["SecurityGroupRuleId"]])
                ids["revoked_rules"].append([a, r, rule["SecurityGroupRuleId"]])
            else:
                ids["kept_rules"].append([a, r, rule["SecurityGroupRuleId"]])

        lam = client("lambda", a, r)
        for name, runtime in [("current", "python3.12"), ("old", "python3.8")]:
            f = lam.create_function(FunctionName=name, Runtime=runtime, Role=role_arn, Handler="index.handler", Code={"ZipFile": code})
            expect["lambda-functions"].append([a, r, f["FunctionArn"]])
            if runtime == "python3.8":
                ids["deprecated"].append([a, r, f["FunctionArn"]])

        vpc = ec2.create_vpc(CidrBlock=f"10.{100 + n}.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags(Name=f"catalog-{n}")}])["Vpc"]["VpcId"]
        vpcs[(a, r)] = vpc
        ids["named_vpcs"].append([a, r, vpc])
        expect["tags"].append([a, r, f"arn:aws:ec2:{r}:{a}:vpc/{vpc}"])
        one = ec2.create_vpc(CidrBlock="10.201.0.0/16")["Vpc"]["VpcId"]
        two = ec2.create_vpc(CidrBlock="10.202.0.0/16")["Vpc"]["VpcId"]
        inside = ec2.create_vpc_peering_connection(VpcId=one, PeerVpcId=two)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=inside)
        ids["inside_peering"].append([a, r, inside])
        public = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{100 + n}.1.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=public, MapPublicIpOnLaunch={"Value": True})
        ids["public_subnets"].append([a, r, public])
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        rt = ec2.create_route_table(VpcId=vpc, TagSpecifications=[{"ResourceType": "route-table", "Tags": tags(Name="public-rt")}])["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=public)
        ids["public_rts"].append([a, r, rt])
        expect["tags"].append([a, r, f"arn:aws:ec2:{r}:{a}:route-table/{rt}"])
        routes[rt] = [f"0.0.0.0/0 {igw}"]
        ids["default_vpcs"] += [[a, r, v["VpcId"]] for v in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]]

        client("inspector2", a, r).enable(accountIds=[a], resourceTypes=["EC2"])
        expect["inspector-activation"].append([a, r, a])

        subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]][:2]
        elb = client("elbv2", a, r)
        for name, scheme in [("public-alb", "internet-facing"), ("internal-alb", "internal")]:
            # Tagged, so the tagging API lists them (moto lists load balancers never tagged
            # too; AWS does not): both are then found by `tags`.
            lb = elb.create_load_balancer(Name=name, Subnets=subnets, Scheme=scheme, Type="application", Tags=tags(Name=name))["LoadBalancers"][0]
            expect["tags"].append([a, r, lb["LoadBalancerArn"]])
            if scheme == "internet-facing":
                expect["public-endpoints"].append([a, r, lb["LoadBalancerArn"]])
        rds = client("rds", a, r)
        for name, public in [("public-db", True), ("private-db", False)]:
            db = rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="orgop", MasterUserPassword="not-a-secret-1", AllocatedStorage=20, PubliclyAccessible=public)["DBInstance"]
            if public:
                expect["public-endpoints"].append([a, r, db["DBInstanceArn"]])
        apigw = client("apigateway", a, r)
        for name, kind in [("regional-api", "REGIONAL"), ("private-api", "PRIVATE")]:
            api = apigw.create_rest_api(name=name, endpointConfiguration={"types": [kind]})["id"]
            if kind != "PRIVATE":
                expect["public-endpoints"].append([a, r, api])

        cw = client("cloudwatch", a, r)
        for name, sent in [("idle", None), ("zero", 0), ("busy", 12345)]:
            nat = ec2.create_nat_gateway(SubnetId=subnet, ConnectivityType="private")["NatGateway"]["NatGatewayId"]
            if sent is not None:
                cw.put_metric_data(Namespace="AWS/NATGateway", MetricData=[{"MetricName": "BytesOutToDestination", "Dimensions": [{"Name": "NatGatewayId", "Value": nat}], "Timestamp": yesterday, "Value": sent, "Unit": "Bytes"}])
            if sent:
                ids["busy_nat"].append([a, r, nat])
                default_vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
                rt = ec2.create_route_table(VpcId=default_vpc, TagSpecifications=[{"ResourceType": "route-table", "Tags": tags(Name="nat-rt")}])["RouteTable"]["RouteTableId"]
                ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
                ids["nat_rts"].append([a, r, rt])
                expect["tags"].append([a, r, f"arn:aws:ec2:{r}:{a}:route-table/{rt}"])
                routes[rt] = [f"0.0.0.0/0 {nat}"]
            else:
                expect["unused-nat-gateways"].append([a, r, nat])

# Cross-account peering: each account's VPC requests the next one's, which accepts.
if len(accounts) > 1:
    for n, a in enumerate(accounts):
        b = accounts[(n + 1) % len(accounts)]
        for r in regions:
            pcx = client("ec2", a, r).create_vpc_peering_connection(VpcId=vpcs[(a, r)], PeerVpcId=vpcs[(b, r)], PeerOwnerId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
            client("ec2", b, r).accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
            expect["vpcs"] += [[a, r, pcx], [b, r, pcx]]
            # The requester's public route table reaches the peer VPC through the peering.
            ec2 = client("ec2", a, r)
            rt = next(t for (x, y, t) in ids["public_rts"] if (x, y) == (a, r))
            peer_cidr = f"10.{100 + (n + 1) % len(accounts)}.0.0/16"
            ec2.create_route(RouteTableId=rt, DestinationCidrBlock=peer_cidr, VpcPeeringConnectionId=pcx)
            routes[rt].append(f"{peer_cidr} {pcx}")

# Every VPC, subnet and route table, the management account's (the caller's, whose default VPC
# only is there) included.
management = sts.get_caller_identity()["Account"]
sessions[management] = creds
for a in accounts + [management]:
    for r in regions:
        ec2 = client("ec2", a, r)
        expect["vpcs"] += [[a, r, v["VpcId"]] for v in ec2.describe_vpcs()["Vpcs"]]
        expect["vpcs"] += [[a, r, v["SubnetId"]] for v in ec2.describe_subnets()["Subnets"]]
        expect["vpcs"] += [[a, r, v["RouteTableId"]] for v in ec2.describe_route_tables()["RouteTables"]]

for k in expect:
    expect[k].sort()
for k in ids:
    ids[k].sort()
json.dump({"expect": expect, "ids": ids, "routes": routes}, sys.stdout, indent=1, sort_keys=True)
print()
