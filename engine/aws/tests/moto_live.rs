//! Live calls in every protocol against moto server (the AWS emulator), started on
//! 127.0.0.1 per test by `orgop-testkit` (from the `.venv` that `scripts/moto-venv.sh`
//! makes) and killed when the test ends.

use orgop_aws::{AwsClient, CallError, ClientOptions, Credentials, RoleSpec, Target};
use orgop_testkit::Server;
use serde_json::{Value, json};

async fn moto() -> (Server, AwsClient) {
    let server = tokio::task::spawn_blocking(orgop_testkit::moto)
        .await
        .expect("moto starts");
    let client = AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url()),
        credentials: Some(Credentials::new("testing", "testing", None, None, "test")),
        ..ClientOptions::default()
    })
    .await;
    (server, client)
}

fn own() -> Target {
    Target::own("us-east-1")
}

async fn call(c: &AwsClient, t: &Target, svc: &str, op: &str, params: Value) -> Value {
    c.call(t, svc, op, params)
        .await
        .unwrap_or_else(|e| panic!("{svc}:{op}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_volumes_tags_delete_and_not_found() {
    let (_moto, c) = moto().await;
    let t = own();
    let vol = call(
        &c,
        &t,
        "ec2",
        "CreateVolume",
        json!({"AvailabilityZone": "us-east-1a", "Size": 8}),
    )
    .await;
    let id = vol["VolumeId"].as_str().expect("a volume id").to_string();
    assert_eq!(vol["Size"], 8);
    call(
        &c,
        &t,
        "ec2",
        "CreateTags",
        json!({"Resources": [id], "Tags": [{"Key": "team", "Value": "ops"}]}),
    )
    .await;
    let listed = call(
        &c,
        &t,
        "ec2",
        "DescribeVolumes",
        json!({"Filters": [{"Name": "tag:team", "Values": ["ops"]}]}),
    )
    .await;
    let vols = listed["Volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0]["VolumeId"], id);
    assert_eq!(vols[0]["Tags"], json!([{"Key": "team", "Value": "ops"}]));
    assert_eq!(vols[0]["State"], "available");

    call(&c, &t, "ec2", "DeleteVolume", json!({"VolumeId": id})).await;
    let err = c
        .call(&t, "ec2", "DescribeVolumes", json!({"VolumeIds": [id]}))
        .await
        .unwrap_err();
    let e = err
        .aws_error()
        .unwrap_or_else(|| panic!("an AWS error, got {err}"));
    assert_eq!(e.code, "InvalidVolume.NotFound");
    assert!(e.message.contains(&id), "{}", e.message);
    assert_eq!(e.status, 400);
    assert!(matches!(err, CallError::Api(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_and_sts_query_protocol() {
    let (_moto, c) = moto().await;
    let t = own();
    call(
        &c,
        &t,
        "iam",
        "CreateUser",
        json!({"UserName": "alice", "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .await;
    let users = call(&c, &t, "iam", "ListUsers", json!({})).await;
    assert_eq!(users["Users"][0]["UserName"], "alice");
    assert!(
        users["Users"][0]["CreateDate"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z'))
    );
    let me = call(&c, &t, "sts", "GetCallerIdentity", json!({})).await;
    assert_eq!(me["Account"], "123456789012");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_accounts_paginate_across_pages() {
    let (_moto, c) = moto().await;
    let t = own();
    call(
        &c,
        &t,
        "organizations",
        "CreateOrganization",
        json!({"FeatureSet": "ALL"}),
    )
    .await;
    for i in 0..6 {
        call(
            &c,
            &t,
            "organizations",
            "CreateAccount",
            json!({"AccountName": format!("member-{i}"), "Email": format!("m{i}@example.com")}),
        )
        .await;
    }
    use futures_util::StreamExt;
    let pages: Vec<Value> = c
        .pages(
            &t,
            "organizations",
            "ListAccounts",
            json!({"MaxResults": 2}),
        )
        .map(|p| p.expect("a page"))
        .collect()
        .await;
    assert!(
        pages.len() >= 4,
        "7 accounts, 2 per page: {} pages",
        pages.len()
    );
    let mut names: Vec<String> = pages
        .iter()
        .flat_map(|p| p["Accounts"].as_array().cloned().unwrap_or_default())
        .map(|a| a["Name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "{names:?}");
    for i in 0..6 {
        assert!(names.contains(&format!("member-{i}")), "{names:?}");
    }
    let all = c
        .paginate_all(
            &t,
            "organizations",
            "ListAccounts",
            json!({"MaxResults": 2}),
        )
        .await
        .unwrap();
    assert_eq!(all["Accounts"].as_array().unwrap().len(), 7);
    assert!(all.get("NextToken").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_json_protocol() {
    let (_moto, c) = moto().await;
    let t = own();
    call(
        &c,
        &t,
        "dynamodb",
        "CreateTable",
        json!({
            "TableName": "orders",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    )
    .await;
    call(
        &c,
        &t,
        "dynamodb",
        "PutItem",
        json!({"TableName": "orders", "Item": {"id": {"S": "o-1"}, "n": {"N": "3"}}}),
    )
    .await;
    let got = call(
        &c,
        &t,
        "dynamodb",
        "GetItem",
        json!({"TableName": "orders", "Key": {"id": {"S": "o-1"}}}),
    )
    .await;
    assert_eq!(got["Item"]["n"], json!({"N": "3"}));
    let tables = call(&c, &t, "dynamodb", "ListTables", json!({})).await;
    assert_eq!(tables["TableNames"], json!(["orders"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_rest_json_protocol() {
    let (_moto, c) = moto().await;
    let fns = call(&c, &own(), "lambda", "ListFunctions", json!({})).await;
    assert_eq!(fns["Functions"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_put_get_list_rest_xml() {
    let (_moto, c) = moto().await;
    let t = own();
    call(
        &c,
        &t,
        "s3",
        "CreateBucket",
        json!({"Bucket": "orgop-results"}),
    )
    .await;
    call(
        &c,
        &t,
        "s3",
        "PutObject",
        json!({"Bucket": "orgop-results", "Key": "runs/a b.json", "Body": "{\"ok\":true}", "ContentType": "application/json"}),
    )
    .await;
    let got = call(
        &c,
        &t,
        "s3",
        "GetObject",
        json!({"Bucket": "orgop-results", "Key": "runs/a b.json"}),
    )
    .await;
    // Blob payloads come back as base64 (orgop-awswire's convention).
    assert_eq!(got["Body"], "eyJvayI6dHJ1ZX0=");
    assert_eq!(got["ContentType"], "application/json");
    let listed = call(
        &c,
        &t,
        "s3",
        "ListObjectsV2",
        json!({"Bucket": "orgop-results", "Prefix": "runs/"}),
    )
    .await;
    assert_eq!(listed["KeyCount"], 1);
    assert_eq!(listed["Contents"][0]["Key"], "runs/a b.json");
    let buckets = call(&c, &t, "s3", "ListBuckets", json!({})).await;
    assert_eq!(buckets["Buckets"][0]["Name"], "orgop-results");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_object_sends_binary_bodies_as_they_are() {
    let (_moto, c) = moto().await;
    call(
        &c,
        &own(),
        "s3",
        "CreateBucket",
        json!({"Bucket": "artifacts"}),
    )
    .await;
    // Not UTF-8 (a zip's header and a stray 0xff): parameters could not carry it.
    let body = vec![0x50, 0x4b, 0x03, 0x04, 0xff, 0x00, 0x80, 0x7f];
    c.put_object("artifacts", "lambda.zip", body.clone(), "application/zip")
        .await
        .expect("put_object");
    assert_eq!(c.get_object("artifacts", "lambda.zip").await.unwrap(), body);
    let out = c
        .put_object_with(
            "artifacts",
            "with-meta.zip",
            body.clone(),
            "application/zip",
            json!({"Metadata": {"sha256": "abc"}}),
        )
        .await
        .expect("put_object_with");
    assert!(out["ETag"].is_string(), "{out}");
    let head = call(
        &c,
        &own(),
        "s3",
        "HeadObject",
        json!({"Bucket": "artifacts", "Key": "with-meta.zip"}),
    )
    .await;
    assert_eq!(head["Metadata"]["sha256"], "abc");
    assert_eq!(head["ContentLength"], 8);
    assert_eq!(head["ContentType"], "application/zip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assumed_role_credentials_see_only_their_account() {
    let (_moto, c) = moto().await;
    let mine = own();
    let member = Target::assume("111111111111", "us-east-1", RoleSpec::new("OrgOpsAudit"));
    call(
        &c,
        &mine,
        "ec2",
        "CreateVolume",
        json!({"AvailabilityZone": "us-east-1a", "Size": 1}),
    )
    .await;

    let who = call(&c, &member, "sts", "GetCallerIdentity", json!({})).await;
    assert_eq!(who["Account"], "111111111111");
    assert!(
        who["Arn"]
            .as_str()
            .unwrap()
            .contains("assumed-role/OrgOpsAudit/orgop"),
        "{who}"
    );

    let theirs = call(&c, &member, "ec2", "DescribeVolumes", json!({})).await;
    assert_eq!(
        theirs["Volumes"],
        json!([]),
        "the member account has no volumes"
    );
    call(
        &c,
        &member,
        "ec2",
        "CreateVolume",
        json!({"AvailabilityZone": "us-east-1a", "Size": 2}),
    )
    .await;
    let theirs = call(&c, &member, "ec2", "DescribeVolumes", json!({})).await;
    let mine_now = call(&c, &mine, "ec2", "DescribeVolumes", json!({})).await;
    assert_eq!(theirs["Volumes"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["Volumes"][0]["Size"], 2);
    assert_eq!(mine_now["Volumes"].as_array().unwrap().len(), 1);
    assert_eq!(mine_now["Volumes"][0]["Size"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_poll_until_the_acceptor_matches() {
    let (_moto, c) = moto().await;
    let t = own();
    let vol = call(
        &c,
        &t,
        "ec2",
        "CreateVolume",
        json!({"AvailabilityZone": "us-east-1a", "Size": 1}),
    )
    .await;
    let id = vol["VolumeId"].as_str().unwrap();
    let out = c
        .wait(
            &t,
            "ec2",
            "VolumeAvailable",
            json!({"VolumeIds": [id]}),
            None,
        )
        .await
        .expect("moto volumes are available at once");
    assert_eq!(out["Volumes"][0]["State"], "available");
    let err = c
        .wait(&t, "ec2", "VolumeAvailble", json!({}), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("VolumeAvailable"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_operations_that_require_a_checksum_are_sent_with_one() {
    let (_moto, c) = moto().await;
    let t = own();
    call(&c, &t, "s3", "CreateBucket", json!({"Bucket": "scratch"})).await;
    for k in ["a", "b", "c"] {
        call(
            &c,
            &t,
            "s3",
            "PutObject",
            json!({"Bucket": "scratch", "Key": k, "Body": k}),
        )
        .await;
    }
    let deleted = call(
        &c,
        &t,
        "s3",
        "DeleteObjects",
        json!({"Bucket": "scratch", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b"}]}}),
    )
    .await;
    assert_eq!(
        deleted["Deleted"].as_array().map(Vec::len),
        Some(2),
        "{deleted}"
    );
    let left = call(&c, &t, "s3", "ListObjectsV2", json!({"Bucket": "scratch"})).await;
    assert_eq!(left["Contents"][0]["Key"], "c");
    assert_eq!(left["KeyCount"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_stops_on_a_failure_state() {
    let (_moto, c) = moto().await;
    let t = own();
    let vol = call(
        &c,
        &t,
        "ec2",
        "CreateVolume",
        json!({"AvailabilityZone": "us-east-1a", "Size": 1}),
    )
    .await;
    let id = vol["VolumeId"].as_str().unwrap().to_string();
    call(&c, &t, "ec2", "DeleteVolume", json!({"VolumeId": id})).await;
    // VolumeInUse has no acceptor for InvalidVolume.NotFound: the wait fails at once (a retry
    // would take its 15 s delay; the bound leaves room for a loaded machine).
    let started = std::time::Instant::now();
    let err = c
        .wait(&t, "ec2", "VolumeInUse", json!({"VolumeIds": [id]}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Waiter { .. }), "{err}");
    assert!(err.to_string().contains("InvalidVolume.NotFound"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // VolumeDeleted treats InvalidVolume.NotFound as success.
    c.wait(&t, "ec2", "VolumeDeleted", json!({"VolumeIds": [id]}), None)
        .await
        .expect("a deleted volume satisfies VolumeDeleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route53_ids_are_accepted_as_the_api_returns_them() {
    let (_moto, c) = moto().await;
    let t = own();
    let zone = call(
        &c,
        &t,
        "route53",
        "CreateHostedZone",
        json!({"Name": "example.com.", "CallerReference": "orgop-test-1"}),
    )
    .await;
    let id = zone["HostedZone"]["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with("/hostedzone/"), "{id}");
    // Fed back as returned, like a runbook chaining two steps.
    let got = call(&c, &t, "route53", "GetHostedZone", json!({"Id": id})).await;
    assert_eq!(got["HostedZone"]["Name"], "example.com.");
    let records = call(
        &c,
        &t,
        "route53",
        "ListResourceRecordSets",
        json!({"HostedZoneId": id}),
    )
    .await;
    assert!(
        records["ResourceRecordSets"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
}
