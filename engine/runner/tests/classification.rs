//! The same AWS error is classified the same way live and under replay: for every code of the
//! one table (`orgop_vocab::aws::ERROR_CODES`), for the not-found forms and for an ordinary
//! code, the kind the interpreter sees from the live client's error equals the kind it sees
//! from a recording of the same answer.
use orgop_aws::{AwsError, CallError};
use orgop_exec::{AwsApi, Call, ErrorKind, ReplayApi};
use orgop_runner::api_error;
use orgop_testkit::TempDir;
use orgop_vocab::aws::{ERROR_CODES, ErrorClass, class_of};
use serde_json::{Value, json};

fn live(code: &str) -> ErrorKind {
    let answer = AwsError {
        code: code.into(),
        message: "m".into(),
        status: 400,
        request_id: None,
        data: json!({}),
    };
    api_error(&CallError::answered("ec2", "DescribeVolumes", answer, 5)).kind
}

async fn replayed(dir: &TempDir, code: &str) -> ErrorKind {
    std::fs::write(
        dir.path().join("ec2.DescribeVolumes_1.json"),
        json!({"Error": {"Code": code, "Message": "m"}}).to_string(),
    )
    .unwrap();
    let err = ReplayApi::new(dir.path())
        .call(Call {
            service: "ec2",
            operation: "DescribeVolumes",
            params: &Value::Null,
            paginate: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, code);
    err.kind
}

#[tokio::test]
async fn every_code_is_classified_alike_live_and_replayed() {
    let dir = TempDir::new("classification");
    let extra = [
        "InvalidVolume.NotFound",
        "ResourceNotFoundException",
        "NoSuchBucket",
        "InvalidParameterValue",
    ];
    let codes: Vec<&str> = ERROR_CODES.iter().map(|(c, _)| *c).chain(extra).collect();
    let mut differ = Vec::new();
    for code in codes {
        let (l, r) = (live(code), replayed(&dir, code).await);
        if l != r {
            differ.push(format!("{code}: live {l:?}, replayed {r:?}"));
        }
        // And the kind is the table's meaning, not an accident of either path.
        let want = match class_of(code) {
            Some(ErrorClass::Denied) => ErrorKind::Denied,
            Some(ErrorClass::Throttling) => ErrorKind::Throttled,
            Some(ErrorClass::NotFound) => ErrorKind::NotFound,
            Some(ErrorClass::NotEnabled) => ErrorKind::NotEnabled,
            Some(ErrorClass::Transient | ErrorClass::ExpiredCredentials) | None => ErrorKind::Other,
        };
        assert_eq!(r, want, "{code}");
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
