//! The apply lock on a results table in moto server: taken, refused naming its holder,
//! taken over once expired, extended only by its holder, released only by its holder,
//! force-unlocked only when expired or when its live holder is named.
use orgop_lock::aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use orgop_lock::aws_sdk_dynamodb::{self, types::AttributeValue as A};
use orgop_lock::{DynamoLock, LockError, LockKey};

async fn table(url: &str) -> aws_sdk_dynamodb::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name("orgop-results")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("execution"))
        .attribute_definitions(attr("item"))
        .key_schema(key("execution", KeyType::Hash))
        .key_schema(key("item", KeyType::Range))
        .send()
        .await
        .unwrap();
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn one_holder_at_a_time_an_expired_lock_is_taken_over() {
    let emulator = orgop_testkit::moto();
    let client = table(&emulator.url()).await;
    let locks = DynamoLock::new(client.clone(), "orgop-results");
    let key = LockKey::new("unused-ebs", Some("o-abc123"));
    let now = 1_800_000_000;
    let a = "arn:aws:states:us-east-1:1:execution:m:a";
    let b = "4242@host/1800000000";

    let taken = locks
        .acquire(&key, a, &format!("execution {a}"), now, 3600)
        .await
        .unwrap();
    assert_eq!(taken.replaced, None);
    assert_eq!(taken.holder.expires_at, now + 3600);
    // The holder taking it again (a retried fanout) keeps it.
    locks
        .acquire(&key, a, &format!("execution {a}"), now + 5, 3600)
        .await
        .unwrap();
    // Anyone else is refused, with the holder and the expiry.
    let refused = locks
        .acquire(&key, b, "pid 4242 on host (orgop run)", now + 10, 900)
        .await
        .unwrap_err();
    match &refused {
        LockError::Held { holder, .. } => {
            assert_eq!(holder.id, a);
            assert_eq!(holder.expires_at, now + 5 + 3600);
        }
        other => panic!("{other:?}"),
    }
    assert!(refused.to_string().contains(&format!("execution {a}")));
    assert!(refused.to_string().contains("expires at"));
    // Only the holder extends or releases it; a live lock is not force-unlocked unless named.
    assert!(matches!(
        locks.extend(&key, b, now + 20, 900).await,
        Err(LockError::Lost {
            holder: Some(_),
            ..
        })
    ));
    assert_eq!(locks.extend(&key, a, now + 20, 3600).await, Ok(now + 3620));
    assert_eq!(locks.release(&key, b).await, Ok(false));
    assert!(matches!(
        locks.force_unlock(&key, now + 30, None).await,
        Err(LockError::Held { .. })
    ));
    assert!(matches!(
        locks.force_unlock(&key, now + 30, Some(b)).await,
        Err(LockError::Held { .. })
    ));
    assert_eq!(locks.read(&key).await.unwrap().unwrap().id, a);

    // Past its expiry (a crashed holder never released it), the next taker takes it over.
    let later = now + 3620 + 1;
    let taken = locks
        .acquire(&key, b, "pid 4242 on host (orgop run)", later, 900)
        .await
        .unwrap();
    assert_eq!(taken.replaced.unwrap().id, a);
    assert!(matches!(
        locks.extend(&key, a, later, 3600).await,
        Err(LockError::Lost { .. })
    ));
    assert_eq!(locks.release(&key, a).await, Ok(false));
    assert_eq!(locks.release(&key, b).await, Ok(true));
    assert_eq!(locks.read(&key).await.unwrap(), None);
    assert_eq!(locks.force_unlock(&key, later, None).await, Ok(None));

    // An expired lock is force-unlocked; a live one when its holder is named.
    locks.acquire(&key, a, "x", now, 60).await.unwrap();
    assert_eq!(
        locks
            .force_unlock(&key, now + 61, None)
            .await
            .unwrap()
            .unwrap()
            .id,
        a
    );
    locks.acquire(&key, a, "x", now, 60).await.unwrap();
    assert_eq!(
        locks
            .force_unlock(&key, now + 1, Some(a))
            .await
            .unwrap()
            .unwrap()
            .id,
        a
    );
    assert_eq!(locks.read(&key).await.unwrap(), None);

    // Result items of an execution are never touched: another partition.
    client
        .put_item()
        .table_name("orgop-results")
        .item("execution", A::S(a.into()))
        .item("item", A::S("111111111111#us-east-1".into()))
        .send()
        .await
        .unwrap();
    locks.acquire(&key, a, "x", now, 60).await.unwrap();
    locks.release(&key, a).await.unwrap();
    let left = client
        .scan()
        .table_name("orgop-results")
        .send()
        .await
        .unwrap();
    assert_eq!(left.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_a_permanent_error_naming_it() {
    let emulator = orgop_testkit::moto();
    let client = table(&emulator.url()).await;
    let locks = DynamoLock::new(client, "no-such-table");
    let e = locks
        .acquire(&LockKey::new("r", None), "me", "me", 1, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            LockError::Store {
                failure: orgop_lock::Failure::Permanent,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("no-such-table"), "{e}");
}
