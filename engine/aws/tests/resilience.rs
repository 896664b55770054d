//! Retries, backoff, rate limiting and pre-send validation, against an in-process HTTP
//! server on 127.0.0.1 that speaks DynamoDB's JSON protocol and misbehaves on purpose.

mod common;

use std::time::Duration;

use common::{Answer, TestServer};
use orgop_aws::{
    AwsClient, CallError, ClientOptions, Credentials, RateConfig, RetryPolicy, Target, Timeouts,
};
use serde_json::json;

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;

async fn client(url: &str, retry: RetryPolicy, rate: RateConfig) -> AwsClient {
    AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.to_string()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        retry,
        rate,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(5),
            call: Duration::from_secs(30),
        },
        ..ClientOptions::default()
    })
    .await
}

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(40),
        max_backoff: Duration::from_millis(400),
    }
}

#[tokio::test]
async fn throttling_and_503s_are_retried_with_backoff_until_success() {
    let server = TestServer::start(|i, _| match i {
        0 | 1 => Answer::json(400, THROTTLED),
        2 => Answer::json(503, ""),
        _ => Answer::json(200, r#"{"TableNames":["orders"]}"#),
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(5),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let out = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .expect("succeeds on the fourth attempt");
    assert_eq!(out, json!({"TableNames": ["orders"]}));
    assert_eq!(server.count(), 4, "three failures, then the success");
    // The wait before retry n is drawn from [0, 40ms * 2^(n-1)] (full jitter): each gap
    // between attempts stays under its ceiling (plus slack for a loaded machine), and the
    // waits are not all zero (three uniform draws summing under 1 ms: p < 1e-6).
    let t = server.times();
    let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let slack = Duration::from_millis(300);
    for (n, (gap, ceiling)) in gaps.iter().zip([40u64, 80, 160]).enumerate() {
        assert!(
            *gap <= Duration::from_millis(ceiling) + slack,
            "wait before retry {}: {gap:?}",
            n + 1
        );
    }
    assert!(
        gaps.iter().sum::<Duration>() >= Duration::from_millis(1),
        "{gaps:?}"
    );
    // Every request was signed afresh.
    for s in server.seen.lock().unwrap().iter() {
        assert!(
            s.head
                .contains("X-Amz-Target: DynamoDB_20120810.ListTables")
                || s.head
                    .to_ascii_lowercase()
                    .contains("x-amz-target: dynamodb_20120810.listtables"),
            "{}",
            s.head
        );
        assert!(
            s.head
                .to_ascii_lowercase()
                .contains("authorization: aws4-hmac-sha256"),
            "{}",
            s.head
        );
    }
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_reported_as_such() {
    let server = TestServer::start(|_, _| Answer::json(400, THROTTLED)).await;
    let c = client(
        &server.url,
        quick_retries(3),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let err = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .unwrap_err();
    match &err {
        CallError::Throttled { error, attempts } => {
            assert_eq!(*attempts, 3);
            assert_eq!(error.error.code, "ThrottlingException");
            assert_eq!(error.error.message, "Rate exceeded");
            assert_eq!(error.error.status, 400);
        }
        other => panic!("expected Throttled, got {other}"),
    }
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = TestServer::start(|_, _| {
        Answer::json(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#,
        )
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(5),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let err = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "DescribeTable",
            json!({"TableName": "nope"}),
        )
        .await
        .unwrap_err();
    let e = err.aws_error().expect("an AWS error");
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(e.request_id.as_deref(), Some("req-test-1"));
    assert!(matches!(err, CallError::Api(_)), "{err}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn access_denied_is_its_own_kind() {
    let server = TestServer::start(|_, _| {
        Answer::json(
            400,
            r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User is not authorized"}"#,
        )
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(5),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let err = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::AccessDenied(_)), "{err}");
    assert_eq!(err.code(), "AccessDeniedException");
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported_as_transport() {
    // Bind then drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(
        &format!("http://127.0.0.1:{port}"),
        quick_retries(3),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let err = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .unwrap_err();
    match err {
        CallError::Transport { attempts, .. } => assert_eq!(attempts, 3),
        other => panic!("expected Transport, got {other}"),
    }
}

#[tokio::test]
async fn a_burst_is_held_under_the_configured_rate() {
    let server = TestServer::start(|_, _| Answer::json(200, r#"{"TableNames":[]}"#)).await;
    // 10 requests per second with a burst of 3, per (account, region, service).
    let c = client(&server.url, quick_retries(1), RateConfig::new(10.0, 3.0)).await;
    let target = Target::own("us-east-1");
    let calls = (0..13).map(|_| c.call(&target, "dynamodb", "ListTables", json!({})));
    let started = std::time::Instant::now();
    for r in futures_util::future::join_all(calls).await {
        r.expect("call succeeds");
    }
    let elapsed = started.elapsed();
    // 3 at once, then 10 more at 10/s: about one second, never faster.
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    let times = server.times();
    assert_eq!(times.len(), 13);
    // In any window of 500 ms, at most burst + rate * 0.5 = 8 requests arrived.
    for (i, t) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .filter(|u| **u - *t < Duration::from_millis(500))
            .count();
        assert!(within <= 8, "{within} requests within 500 ms");
    }
    // Another service in the same account and region has its own, still full, bucket: three
    // calls go at once there, while three more on the drained bucket take ~300 ms.
    let t0 = std::time::Instant::now();
    for _ in 0..3 {
        c.call(&target, "sqs", "ListQueues", json!({})).await.ok();
    }
    let other = t0.elapsed();
    let t1 = std::time::Instant::now();
    for _ in 0..3 {
        c.call(&target, "dynamodb", "ListTables", json!({}))
            .await
            .unwrap();
    }
    let same = t1.elapsed();
    assert!(same >= Duration::from_millis(250), "{same:?}");
    assert!(
        other < same,
        "other service {other:?}, same service {same:?}"
    );
}

#[tokio::test]
async fn bad_input_fails_before_any_request_with_close_matches() {
    let server = TestServer::start(|_, _| Answer::json(200, "{}")).await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let t = Target::own("us-east-1");

    let err = c
        .call(&t, "dynamodbb", "ListTables", json!({}))
        .await
        .unwrap_err();
    match &err {
        CallError::UnknownService(u) => {
            assert!(u.suggestions.contains(&"dynamodb".to_string()), "{u}")
        }
        other => panic!("{other}"),
    }
    let err = c
        .call(&t, "dynamodb", "ListTable", json!({}))
        .await
        .unwrap_err();
    match &err {
        CallError::UnknownOperation { source, .. } => {
            assert_eq!(source.suggestions[0], "ListTables")
        }
        other => panic!("{other}"),
    }
    let err = c
        .call(
            &t,
            "ec2",
            "DescribeVolumes",
            json!({"Filters": [{"Name": "status", "Value": ["available"]}]}),
        )
        .await
        .unwrap_err();
    match &err {
        CallError::Validation { errors, .. } => {
            assert_eq!(errors[0].path, "Filters[0].Value");
            assert!(err.to_string().contains("Values"), "{err}");
        }
        other => panic!("{other}"),
    }
    let err = c
        .call(&t, "dynamodb", "DescribeTable", json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TableName"), "{err}");
    assert!(err.is_before_send());
    assert_eq!(server.count(), 0, "nothing was sent");
}

fn assume_role_answer(expires_in: Duration) -> Answer {
    let exp = aws_smithy_types::DateTime::from(std::time::SystemTime::now() + expires_in)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let body = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAASSUMED{n}</AccessKeyId>
      <SecretAccessKey>secret{n}</SecretAccessKey>
      <SessionToken>token{n}</SessionToken>
      <Expiration>{exp}</Expiration>
    </Credentials>
    <AssumedRoleUser><AssumedRoleId>AROA:orgop</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/R/orgop</Arn></AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>sts-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
    );
    Answer {
        status: 200,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: body.into_bytes(),
    }
}

fn is_assume_role(s: &common::Seen) -> bool {
    String::from_utf8_lossy(&s.body).contains("Action=AssumeRole")
}

fn assume_role_requests(server: &TestServer) -> Vec<String> {
    server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| is_assume_role(s))
        .map(|s| String::from_utf8_lossy(&s.body).to_string())
        .collect()
}

#[tokio::test]
async fn assumed_roles_are_cached_per_account_and_role() {
    let server = TestServer::start(|_, s| {
        if is_assume_role(s) {
            assume_role_answer(Duration::from_secs(3600))
        } else {
            Answer::json(200, r#"{"TableNames":[]}"#)
        }
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let role = orgop_aws::RoleSpec {
        name: "OrgOpsAudit".into(),
        external_id: Some("ext-42".into()),
        session_name: Some("run-7".into()),
    };
    let a = Target::assume("111111111111", "us-east-1", role.clone());
    let b = Target::assume("222222222222", "eu-west-1", role);
    for _ in 0..3 {
        c.call(&a, "dynamodb", "ListTables", json!({}))
            .await
            .unwrap();
        c.call(&b, "dynamodb", "ListTables", json!({}))
            .await
            .unwrap();
    }
    let assumed = assume_role_requests(&server);
    assert_eq!(assumed.len(), 2, "one AssumeRole per account: {assumed:?}");
    assert!(
        assumed[0].contains("RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2FOrgOpsAudit"),
        "{}",
        assumed[0]
    );
    assert!(assumed[0].contains("ExternalId=ext-42"), "{}", assumed[0]);
    assert!(
        assumed[0].contains("RoleSessionName=run-7"),
        "{}",
        assumed[0]
    );
    // The calls were signed with the assumed credentials and carried the session token.
    let seen = server.seen.lock().unwrap();
    let ddb: Vec<&common::Seen> = seen.iter().filter(|s| !is_assume_role(s)).collect();
    assert_eq!(ddb.len(), 6);
    for s in ddb {
        let head = s.head.to_ascii_lowercase();
        assert!(head.contains("credential=asiaassumed"), "{}", s.head);
        assert!(head.contains("x-amz-security-token: token"), "{}", s.head);
    }
}

#[tokio::test]
async fn assumed_roles_near_expiry_are_refreshed() {
    let server = TestServer::start(|_, s| {
        if is_assume_role(s) {
            // Valid for two minutes: inside the five-minute refresh margin.
            assume_role_answer(Duration::from_secs(120))
        } else {
            Answer::json(200, r#"{"TableNames":[]}"#)
        }
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let a = Target::assume("111111111111", "us-east-1", orgop_aws::RoleSpec::new("R"));
    c.call(&a, "dynamodb", "ListTables", json!({}))
        .await
        .unwrap();
    c.call(&a, "dynamodb", "ListTables", json!({}))
        .await
        .unwrap();
    assert_eq!(assume_role_requests(&server).len(), 2);
}

#[tokio::test]
async fn a_refused_assume_role_is_a_credentials_error() {
    let server = TestServer::start(|_, _| Answer {
        status: 403,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: br#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>"#.to_vec(),
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let a = Target::assume("111111111111", "us-east-1", orgop_aws::RoleSpec::new("R"));
    let err = c
        .call(&a, "dynamodb", "ListTables", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AccessDenied", "{err}");
    assert!(
        err.to_string().contains("arn:aws:iam::111111111111:role/R"),
        "{err}"
    );
}

#[tokio::test]
async fn expired_assumed_credentials_are_dropped_and_the_call_retried_once() {
    let failed_once = std::sync::atomic::AtomicBool::new(false);
    let server = TestServer::start(move |_, s| {
        if is_assume_role(s) {
            assume_role_answer(Duration::from_secs(3600))
        } else if !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Answer::json(
                400,
                r#"{"__type":"com.amazon.coral.service#ExpiredTokenException","message":"The security token included in the request is expired"}"#,
            )
        } else {
            Answer::json(200, r#"{"TableNames":[]}"#)
        }
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let a = Target::assume("333333333333", "us-east-1", orgop_aws::RoleSpec::new("R"));
    // One attempt allowed by the policy, yet the expired token earns a second one.
    c.call(&a, "dynamodb", "ListTables", json!({}))
        .await
        .unwrap();
    assert_eq!(
        assume_role_requests(&server).len(),
        2,
        "assumed again after expiry"
    );
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn s3_requests_for_a_bucket_in_another_region_are_redirected_once() {
    let server = TestServer::start(|i, _| {
        if i == 0 {
            Answer {
                status: 301,
                headers: vec![
                    ("Content-Type".into(), "application/xml".into()),
                    ("x-amz-bucket-region".into(), "eu-west-1".into()),
                ],
                body: br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><RequestId>r1</RequestId></Error>"#.to_vec(),
            }
        } else {
            Answer {
                status: 200,
                headers: vec![("Content-Type".into(), "application/xml".into())],
                body: br#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>far-away</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"#.to_vec(),
            }
        }
    })
    .await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    let out = c
        .call(
            &Target::own("us-east-1"),
            "s3",
            "ListObjectsV2",
            json!({"Bucket": "far-away"}),
        )
        .await
        .expect("answered after the redirect");
    assert_eq!(out["Name"], "far-away");
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let auth = |s: &common::Seen| {
        s.head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        auth(&seen[0]).contains("/us-east-1/s3/aws4_request"),
        "{}",
        auth(&seen[0])
    );
    assert!(
        auth(&seen[1]).contains("/eu-west-1/s3/aws4_request"),
        "{}",
        auth(&seen[1])
    );
    assert!(
        seen[1]
            .head
            .to_ascii_lowercase()
            .contains("x-amz-content-sha256: e3b0c442"),
        "{}",
        seen[1].head
    );
}

#[tokio::test]
async fn connections_are_reused() {
    let server = TestServer::start(|_, _| Answer::json(200, r#"{"TableNames":[]}"#)).await;
    let c = client(
        &server.url,
        quick_retries(1),
        RateConfig::new(1000.0, 100.0),
    )
    .await;
    for _ in 0..5 {
        c.call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .unwrap();
    }
    assert_eq!(server.count(), 5);
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "five sequential calls over one pooled connection"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_and_is_retried() {
    let server = TestServer::silent().await;
    let c = AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url.clone()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        retry: quick_retries(2),
        timeouts: Timeouts {
            connect: Duration::from_millis(200),
            read: Duration::from_millis(300),
            call: Duration::from_secs(30),
        },
        ..ClientOptions::default()
    })
    .await;
    let started = std::time::Instant::now();
    let err = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .unwrap_err();
    match &err {
        CallError::Transport {
            error: orgop_aws::TransportError::Timeout(_),
            attempts,
            ..
        } => {
            assert_eq!(*attempts, 2)
        }
        other => panic!("expected a timeout, got {other}"),
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A ListTables page naming `next` as the token to continue from.
fn tables_page(name: &str, next: &str) -> Answer {
    Answer::json(
        200,
        &json!({"TableNames": [name], "LastEvaluatedTableName": next}).to_string(),
    )
}

async fn walk(
    server: &TestServer,
    max_pages: Option<u32>,
) -> Result<Vec<serde_json::Value>, CallError> {
    let c = AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url.clone()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        retry: quick_retries(1),
        rate: RateConfig::new(1000.0, 100.0),
        max_pages,
        ..ClientOptions::default()
    })
    .await;
    c.call_pages(
        &Target::own("us-east-1"),
        "dynamodb",
        "ListTables",
        json!({}),
        true,
    )
    .await
}

#[tokio::test]
async fn a_repeated_pagination_token_is_an_error_not_a_silent_duplicate() {
    // The second page answers the token it was sent.
    let server = TestServer::start(|i, _| tables_page(&format!("tbl{i}"), "tbl0")).await;
    let err = walk(&server, None).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CallError::Pagination {
                problem: orgop_aws::PaginationProblem::RepeatedToken { pages: 2, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), "PaginationError");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_pagination_cycle_is_stopped() {
    // Tokens tbl0 -> tbl1 -> tbl0: the third page sends the walk back to a page it asked for.
    let server = TestServer::start(|i, _| {
        tables_page(&format!("tbl{i}"), ["tbl0", "tbl1", "tbl0"][i.min(2)])
    })
    .await;
    let err = walk(&server, None).await.unwrap_err();
    assert!(
        err.to_string().contains("a second time, after 3 pages"),
        "{err}"
    );
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn a_service_answering_new_tokens_forever_is_stopped_at_the_page_limit() {
    let server =
        TestServer::start(|i, _| tables_page(&format!("tbl{i}"), &format!("tbl{i}"))).await;
    let err = walk(&server, Some(5)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CallError::Pagination {
                problem: orgop_aws::PaginationProblem::PageLimit { limit: 5 },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ORGOP_MAX_PAGES"), "{err}");
    assert_eq!(server.count(), 5, "no page past the limit is asked for");
    // A walk that ends by itself within the limit is whole.
    let server = TestServer::start(|i, _| match i {
        0 => tables_page("aaa", "aaa"),
        _ => Answer::json(200, r#"{"TableNames":["bbb"]}"#),
    })
    .await;
    assert_eq!(walk(&server, Some(5)).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_silent_server_fails_the_call_at_its_deadline_whatever_the_retries() {
    let server = TestServer::silent().await;
    let c = AwsClient::from_env(ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(server.url.clone()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        // Five attempts of 10 s each would take 50 s; the call's deadline stops it first.
        retry: quick_retries(5),
        timeouts: Timeouts {
            connect: Duration::from_millis(200),
            read: Duration::from_secs(10),
            call: Duration::from_millis(800),
        },
        ..ClientOptions::default()
    })
    .await;
    let started = std::time::Instant::now();
    let err = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "ListTables",
            json!({}),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
    assert_eq!(err.code(), "DeadlineExceeded");
    assert!(err.to_string().contains("ORGOP_CALL_TIMEOUT"), "{err}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn the_default_call_deadline_is_at_most_a_minute() {
    let t = Timeouts::default();
    assert!(t.call <= Duration::from_secs(60));
    assert!(
        t.connect + t.read <= t.call,
        "one attempt fits in the deadline"
    );
}

fn client_for(url: &str, attempts: u32) -> ClientOptions {
    ClientOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.to_string()),
        credentials: Some(Credentials::new("AKIDTEST", "secret", None, None, "test")),
        retry: quick_retries(attempts),
        timeouts: Timeouts {
            connect: Duration::from_millis(200),
            read: Duration::from_millis(300),
            call: Duration::from_secs(30),
        },
        ..ClientOptions::default()
    }
}

/// A mutating call whose request may have reached the server (no answer came) is not sent
/// again: it may have acted. A read is retried; so is a mutating call that never connected.
#[tokio::test]
async fn a_mutating_call_that_may_have_reached_the_server_is_not_repeated() {
    let server = TestServer::silent().await;
    let c = AwsClient::from_env(client_for(&server.url, 3)).await;
    let delete = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "DeleteTable",
            json!({"TableName": "t"}),
        )
        .await
        .unwrap_err();
    match &delete {
        CallError::Transport { attempts, .. } => assert_eq!(*attempts, 1, "{delete}"),
        other => panic!("expected a transport error, got {other}"),
    }
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sent once"
    );

    // Nothing listens here: the request never leaves, so even a delete is retried.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let c = AwsClient::from_env(client_for(&closed, 3)).await;
    let refused = c
        .call(
            &Target::own("us-east-1"),
            "dynamodb",
            "DeleteTable",
            json!({"TableName": "t"}),
        )
        .await
        .unwrap_err();
    match &refused {
        CallError::Transport {
            error: orgop_aws::TransportError::NotConnected(_),
            attempts,
            ..
        } => assert_eq!(*attempts, 3, "{refused}"),
        other => panic!("expected a refused connection, got {other}"),
    }
}
