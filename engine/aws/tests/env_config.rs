//! Configuration from the environment, as every AWS SDK reads it: credentials and region
//! from the standard chain, `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`, and
//! `ORGOP_MODELS_DIR`. The environment of a running test cannot be changed safely, so the
//! parent test starts moto and re-runs this test binary with the variables set, selecting
//! only `child_process_with_configured_environment`, which does the calls.

use std::process::Command;

use orgop_aws::{AwsClient, CallError, ClientOptions, Target};
use serde_json::json;

const CHILD: &str = "ORGOP_AWS_TEST_CHILD";

#[test]
fn endpoints_credentials_region_and_models_come_from_the_environment() {
    let moto = orgop_testkit::moto();
    // A models directory in botocore's layout with a service the bundle lacks: STS's model
    // under another name, so a call through it can only work if the directory was read.
    let models = orgop_testkit::TempDir::new("env-models");
    let dir = models.path();
    let vdir = dir.join("sts-copy").join("2011-06-15");
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::copy(
        orgop_testkit::repo().join("engine/models/models/sts/2011-06-15/service-2.json.gz"),
        vdir.join("service-2.json.gz"),
    )
    .unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_with_configured_environment",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        // DynamoDB's own variable wins over AWS_ENDPOINT_URL: nothing listens there.
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            format!("http://127.0.0.1:{dead}"),
        )
        .env("ORGOP_MODELS_DIR", dir)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .output()
        .expect("the test binary runs again");
    drop(models);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn child_process_with_configured_environment() {
    if std::env::var_os(CHILD).is_none() {
        return; // Only meaningful when started by the test above.
    }
    let c = AwsClient::from_env(ClientOptions {
        retry: orgop_aws::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
        ..ClientOptions::default()
    })
    .await;
    assert_eq!(c.default_region(), "eu-west-1");
    let t = Target::own("");
    let vol = c
        .call(
            &t,
            "ec2",
            "CreateVolume",
            json!({"AvailabilityZone": "eu-west-1a", "Size": 3}),
        )
        .await
        .expect("ec2 through AWS_ENDPOINT_URL with environment credentials");
    assert_eq!(vol["AvailabilityZone"], "eu-west-1a");
    let me = c
        .call(&t, "sts-copy", "GetCallerIdentity", json!({}))
        .await
        .expect("a service from ORGOP_MODELS_DIR");
    assert_eq!(me["Account"], "123456789012");
    let err = c
        .call(&t, "dynamodb", "ListTables", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Transport { .. }), "{err}");
}
