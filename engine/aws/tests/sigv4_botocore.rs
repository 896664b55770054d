//! Signatures checked against botocore's signer: the same requests (as orgop serializes
//! them for ec2, query, json, rest-json and rest-xml services, S3 keys with characters that
//! need encoding, a global service, session credentials) signed at the same instant must
//! carry the same `Authorization` header. botocore comes from the `.venv` that
//! `scripts/moto-venv.sh` makes (boto3 is a dependency of moto).

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use base64::Engine;
use orgop_aws::endpoints::{self, EndpointOverrides};
use orgop_aws::{Credentials, ModelRegistry};
use serde_json::{Value, json};

const BOTOCORE_SIGNER: &str = r#"
import base64, json, sys
from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
out = []
for case in json.load(sys.stdin):
    creds = Credentials(case["access_key"], case["secret_key"], case["token"])
    req = AWSRequest(method=case["method"], url=case["url"],
                     headers=dict(case["headers"]), data=base64.b64decode(case["body"]))
    req.context["timestamp"] = case["timestamp"]
    auth = (S3SigV4Auth if case["s3"] else SigV4Auth)(creds, case["service"], case["region"])
    # add_auth without its clock: the same steps at the given timestamp.
    auth._modify_request_before_signing(req)
    canonical = auth.canonical_request(req)
    signature = auth.signature(auth.string_to_sign(req, canonical), req)
    auth._inject_signature_to_request(req, signature)
    out.append(req.headers["Authorization"])
print(json.dumps(out))
"#;

struct Case {
    service: &'static str,
    operation: &'static str,
    region: &'static str,
    params: Value,
    token: Option<&'static str>,
}

#[test]
fn orgop_signs_like_botocore() {
    let cases = [
        Case {
            service: "ec2",
            operation: "DescribeVolumes",
            region: "eu-west-1",
            params: json!({"Filters": [{"Name": "tag:team", "Values": ["ops & data", "a=b"]}]}),
            token: None,
        },
        Case {
            service: "iam",
            operation: "ListUsers",
            region: "eu-central-1",
            params: json!({"PathPrefix": "/teams/"}),
            token: Some("FwoGZXIvYXdzEXAMPLE+/=token"),
        },
        Case {
            service: "dynamodb",
            operation: "GetItem",
            region: "us-west-2",
            params: json!({"TableName": "orders", "Key": {"id": {"S": "o-1"}}}),
            token: None,
        },
        Case {
            service: "lambda",
            operation: "GetFunction",
            region: "us-east-1",
            params: json!({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f", "Qualifier": "$LATEST"}),
            token: None,
        },
        Case {
            service: "s3",
            operation: "PutObject",
            region: "us-east-1",
            params: json!({"Bucket": "orgop-results", "Key": "runs/a b+c~d=(1).json", "Body": "hello", "ContentType": "application/json"}),
            token: Some("session-token"),
        },
        Case {
            service: "s3",
            operation: "ListObjectsV2",
            region: "ap-southeast-2",
            params: json!({"Bucket": "my.dotted.bucket", "Prefix": "a b/c+d", "MaxKeys": 10}),
            token: None,
        },
        Case {
            service: "route53",
            operation: "ListResourceRecordSets",
            region: "eu-west-1",
            params: json!({"HostedZoneId": "Z123EXAMPLE", "StartRecordName": "www.example.com."}),
            token: None,
        },
    ];
    let registry = ModelRegistry::bundled_only();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let timestamp = aws_smithy_types::DateTime::from(time)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
        .replace(['-', ':'], "");
    let mut inputs = Vec::new();
    let mut ours = Vec::new();
    for c in &cases {
        let svc = registry.resolve(c.service, c.operation).unwrap();
        let op = svc.operation(c.operation).unwrap();
        let request = orgop_awswire::serialize(&svc.model, op, &c.params).unwrap();
        let endpoint = endpoints::resolve(
            svc.model.metadata(),
            c.region,
            &EndpointOverrides::default(),
        )
        .unwrap();
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            c.token.map(str::to_string),
            None,
            "test",
        );
        let signed =
            orgop_aws::sign_request_at(c.service, &endpoint, &request, &c.params, &creds, time)
                .unwrap();
        let unsigned: Vec<(String, String)> = signed
            .headers()
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "authorization"
                        | "x-amz-date"
                        | "x-amz-security-token"
                        | "x-amz-content-sha256"
                        | "user-agent"
                )
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        inputs.push(json!({
            "method": signed.method().as_str(),
            "url": signed.uri().to_string(),
            "headers": unsigned,
            "body": base64::engine::general_purpose::STANDARD.encode(signed.body()),
            "timestamp": timestamp,
            "access_key": "AKIDEXAMPLE",
            "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "token": c.token,
            "service": endpoint.signing_name,
            "region": endpoint.signing_region,
            "s3": c.service == "s3",
        }));
        ours.push((
            format!("{}:{} {}", c.service, c.operation, signed.uri()),
            signed.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_string(),
        ));
    }
    let mut child = Command::new(orgop_testkit::venv_python())
        .args(["-c", BOTOCORE_SIGNER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &inputs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for ((what, mine), botocore) in ours.iter().zip(&theirs) {
        assert_eq!(mine, botocore, "{what}");
    }
}
