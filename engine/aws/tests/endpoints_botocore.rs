//! Endpoints checked against boto3: for every bundled service in five regions across the
//! aws, aws-cn and aws-us-gov partitions, orgop's URL must be the one a boto3 client of the
//! same botocore release would use. boto3 comes from the `.venv` that
//! `scripts/moto-venv.sh` makes.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use orgop_aws::ModelRegistry;
use orgop_aws::endpoints::{self, EndpointOverrides};

const REGIONS: [&str; 5] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "cn-north-1",
    "us-gov-west-1",
];

const BOTO3_ENDPOINTS: &str = r#"
import json, sys, warnings
import boto3
warnings.filterwarnings("ignore")
services, regions = json.load(sys.stdin)
session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
out = {}
for svc in services:
    for region in regions:
        try:
            out[svc + " " + region] = session.client(svc, region_name=region).meta.endpoint_url
        except Exception as e:
            out[svc + " " + region] = "error: " + type(e).__name__
print(json.dumps(out))
"#;

#[test]
fn every_bundled_service_resolves_like_boto3() {
    let registry = ModelRegistry::bundled_only();
    let services = registry.service_names();
    let mut child = Command::new(orgop_testkit::venv_python())
        .args(["-c", BOTO3_ENDPOINTS])
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &(&services, REGIONS)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boto3: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    let mut differences = Vec::new();
    let mut compared = 0;
    for svc in &services {
        let s = registry.service(svc).unwrap();
        for region in REGIONS {
            let theirs = &boto3[&format!("{svc} {region}")];
            if theirs.starts_with("error:") {
                continue; // not offered in that partition
            }
            compared += 1;
            if (svc.as_str(), region) == ("s3", "us-east-1") {
                // boto3 keeps S3's legacy global endpoint (s3.amazonaws.com) for us-east-1
                // unless `s3_us_east_1_regional_endpoint = regional`; orgop uses the regional
                // one AWS recommends (the global one redirects buckets of other regions).
                assert_eq!(theirs, "https://s3.amazonaws.com");
                continue;
            }
            let ours =
                endpoints::resolve(s.model.metadata(), region, &EndpointOverrides::default()).url;
            if &ours != theirs {
                differences.push(format!("{svc} {region}: orgop {ours}, boto3 {theirs}"));
            }
        }
    }
    assert!(compared > 100, "only {compared} endpoints compared");
    assert!(
        differences.is_empty(),
        "{} of {compared} differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
