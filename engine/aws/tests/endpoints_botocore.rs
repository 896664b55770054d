//! Endpoints checked against boto3: for every bundled service in five regions across the
//! aws, aws-cn and aws-us-gov partitions, and with FIPS and dual-stack endpoints in a few,
//! orgop's URL must be the one a boto3 client of the same botocore release would use (or both
//! must find none). boto3 comes from the `.venv` that `scripts/moto-venv.sh` makes.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use orgop_aws::ModelRegistry;
use orgop_aws::endpoints::{self, EndpointOverrides};

/// (variant, regions): the plain endpoints everywhere, the variants where they matter.
const SETTINGS: [(&str, &[&str]); 3] = [
    (
        "plain",
        &[
            "us-east-1",
            "eu-west-1",
            "ap-southeast-2",
            "cn-north-1",
            "us-gov-west-1",
        ],
    ),
    ("fips", &["us-east-1", "us-gov-west-1"]),
    ("dualstack", &["us-east-1", "eu-west-1"]),
];

const BOTO3_ENDPOINTS: &str = r#"
import json, sys, warnings
import boto3
from botocore.config import Config
warnings.filterwarnings("ignore")
services, settings = json.load(sys.stdin)
session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
configs = {"plain": Config(), "fips": Config(use_fips_endpoint=True),
           "dualstack": Config(use_dualstack_endpoint=True)}
out = {}
for variant, regions in settings:
    for svc in services:
        for region in regions:
            key = " ".join([variant, svc, region])
            try:
                client = session.client(svc, region_name=region, config=configs[variant])
                out[key] = client.meta.endpoint_url
            except Exception as e:
                out[key] = "error: " + type(e).__name__
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
        .env_remove("AWS_USE_FIPS_ENDPOINT")
        .env_remove("AWS_USE_DUALSTACK_ENDPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &(&services, SETTINGS)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boto3: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    let mut differences = Vec::new();
    let mut compared = BTreeMap::new();
    for (variant, regions) in SETTINGS {
        let settings = EndpointOverrides {
            use_fips: variant == "fips",
            use_dualstack: variant == "dualstack",
            ..EndpointOverrides::default()
        };
        for svc in &services {
            let s = registry.service(svc).unwrap();
            for region in regions {
                let theirs = &boto3[&format!("{variant} {svc} {region}")];
                let ours = endpoints::resolve(s.model.metadata(), region, &settings);
                if (variant, svc.as_str(), *region) == ("plain", "s3", "us-east-1") {
                    // boto3 keeps S3's legacy global endpoint (s3.amazonaws.com) for us-east-1
                    // unless `s3_us_east_1_regional_endpoint = regional`; orgop uses the
                    // regional one AWS recommends (the global one redirects other regions).
                    assert_eq!(theirs, "https://s3.amazonaws.com");
                    continue;
                }
                if (variant, svc.as_str(), *region) == ("fips", "s3", "us-east-1") {
                    // The same legacy global endpoint makes boto3 build a host for the
                    // pseudo-region `aws-global` that does not exist; S3's FIPS endpoint in
                    // us-east-1 is s3-fips.us-east-1.amazonaws.com.
                    assert_eq!(theirs, "https://s3-fips.aws-global.amazonaws.com");
                    assert_eq!(ours.unwrap().url, "https://s3-fips.us-east-1.amazonaws.com");
                    continue;
                }
                *compared.entry(variant).or_insert(0) += 1;
                match ours {
                    Ok(e) if &e.url == theirs => {}
                    Err(_) if theirs.starts_with("error:") => {}
                    Ok(e) => differences.push(format!(
                        "{variant} {svc} {region}: orgop {}, boto3 {theirs}",
                        e.url
                    )),
                    Err(e) => differences.push(format!(
                        "{variant} {svc} {region}: orgop `{e}`, boto3 {theirs}"
                    )),
                }
            }
        }
    }
    assert!(compared["plain"] > 150, "{compared:?}");
    assert!(
        differences.is_empty(),
        "{} differ ({compared:?} compared):\n{}",
        differences.len(),
        differences.join("\n")
    );
}
