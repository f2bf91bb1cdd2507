//! The fault proxy in front of moto, through the Rust SDK: transparent forwarding, errors the SDK
//! classifies as the real services', the SDK's own retries made visible, delays, dropped answers
//! and the seeded random mode.

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudwatch::types::MetricDatum;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use testkit::aws::{self, Clients};
use testkit::fault_proxy::{AwsService, FaultAction, FaultProxy, FaultRule, RandomFaults};
use testkit::moto::Moto;
use testkit::unique_name;

/// Clients straight to moto, to arrange and to check what really happened.
fn direct() -> Clients {
    Clients::for_moto(Moto::shared())
}

async fn proxy() -> FaultProxy {
    FaultProxy::start(Moto::shared().endpoint()).await.unwrap()
}

/// Clients through the proxy that never retry, so each injected fault is seen as it is.
fn no_retries(proxy: &FaultProxy) -> Clients {
    let config = aws::sdk_config(proxy.endpoint())
        .into_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    Clients {
        s3: aws::s3(&config),
        dynamodb: aws::dynamodb(&config),
        secretsmanager: aws::secretsmanager(&config),
        cloudwatch: aws::cloudwatch(&config),
        sns: aws::sns(&config),
        sqs: aws::sqs(&config),
        config,
    }
}

async fn bucket(c: &Clients) -> String {
    let name = unique_name("proxy");
    aws::create_bucket(&c.s3, &name).await.unwrap();
    name
}

async fn put(c: &Clients, bucket: &str, key: &str) -> Result<(), String> {
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

async fn exists(bucket: &str, key: &str) -> bool {
    aws::get_object_bytes(&direct().s3, bucket, key).await.is_ok()
}

#[tokio::test]
async fn every_service_is_forwarded_unchanged_and_counted() {
    // GIVEN a proxy with no rules and clients going through it
    let proxy = proxy().await;
    let c = Clients::new(proxy.endpoint());
    // WHEN each of the four services is used through it
    let bucket = bucket(&c).await;
    put(&c, &bucket, "a/b.json.gz").await.unwrap();
    assert_eq!(aws::get_object_bytes(&c.s3, &bucket, "a/b.json.gz").await.unwrap(), b"x");
    let table = unique_name("proxy");
    aws::create_state_table(&c.dynamodb, &table).await.unwrap();
    c.dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("live".into()))
        .send()
        .await
        .unwrap();
    let secret = unique_name("proxy");
    aws::put_secret(&c.secretsmanager, &secret, "value").await.unwrap();
    c.secretsmanager.get_secret_value().secret_id(&secret).send().await.unwrap();
    c.cloudwatch
        .put_metric_data()
        .namespace(unique_name("proxy"))
        .metric_data(MetricDatum::builder().metric_name("M").value(1.0).build())
        .send()
        .await
        .unwrap();
    // THEN everything worked and every request was counted by service and operation
    for (service, operation) in [
        (AwsService::S3, "CreateBucket"),
        (AwsService::S3, "PutObject"),
        (AwsService::S3, "GetObject"),
        (AwsService::DynamoDb, "CreateTable"),
        (AwsService::DynamoDb, "PutItem"),
        (AwsService::SecretsManager, "CreateSecret"),
        (AwsService::SecretsManager, "GetSecretValue"),
        (AwsService::CloudWatch, "PutMetricData"),
    ] {
        assert_eq!(
            proxy.count(service, operation),
            1,
            "{service} {operation}: {:?}",
            proxy.counts()
        );
    }
    assert!(proxy.injected().is_empty());
    // AND the item is really in moto
    assert!(aws::get_item(&direct().dynamodb, &table, "live").await.unwrap().is_some());
}

#[tokio::test]
async fn injected_errors_carry_each_services_own_error_code() {
    // GIVEN one failing rule per service, and clients that do not retry
    let proxy = proxy().await;
    let c = no_retries(&proxy);
    let bucket = bucket(&direct()).await;
    let table = unique_name("proxy");
    aws::create_state_table(&direct().dynamodb, &table).await.unwrap();
    proxy.push(FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_slow_down()));
    proxy.push(FaultRule::new(AwsService::S3, "GetObject", FaultAction::s3_internal_error()));
    proxy.push(FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::dynamodb_throttled()));
    proxy.push(FaultRule::new(
        AwsService::DynamoDb,
        "GetItem",
        FaultAction::dynamodb_conditional_check_failed(),
    ));
    proxy.push(FaultRule::new(
        AwsService::SecretsManager,
        "GetSecretValue",
        FaultAction::internal_service_error(),
    ));
    proxy.push(FaultRule::new(
        AwsService::SecretsManager,
        "DescribeSecret",
        FaultAction::access_denied(),
    ));
    proxy.push(FaultRule::new(
        AwsService::CloudWatch,
        "PutMetricData",
        FaultAction::internal_service_error(),
    ));
    // WHEN each operation is called
    // THEN the SDK sees the service's error code and status
    assert_eq!(put(&c, &bucket, "k").await, Err("SlowDown".into()));
    let get = c.s3.get_object().bucket(&bucket).key("k").send().await.unwrap_err();
    assert_eq!(get.code(), Some("InternalError"));
    assert_eq!(get.raw_response().map(|r| r.status().as_u16()), Some(500));
    let put_item = c
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("x".into()))
        .send()
        .await
        .unwrap_err();
    assert!(
        put_item
            .as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception())
    );
    let get_item = c
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("x".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(get_item.code(), Some("ConditionalCheckFailedException"));
    let secret = c.secretsmanager.get_secret_value().secret_id("s").send().await.unwrap_err();
    assert!(secret.as_service_error().is_some_and(|e| e.is_internal_service_error()));
    let describe = c.secretsmanager.describe_secret().secret_id("s").send().await.unwrap_err();
    assert_eq!(describe.code(), Some("AccessDeniedException"));
    let metric = c
        .cloudwatch
        .put_metric_data()
        .namespace("n")
        .metric_data(MetricDatum::builder().metric_name("M").value(1.0).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(metric.code(), Some("InternalServiceError"), "{metric:?}");
    assert_eq!(metric.raw_response().map(|r| r.status().as_u16()), Some(500));
    // AND each rule hit once and nothing reached moto
    assert_eq!(proxy.rule_hits(), [1, 1, 1, 1, 1, 1, 1]);
    assert!(!exists(&bucket, "k").await);
}

#[tokio::test]
async fn the_sdks_own_retries_absorb_a_rule_that_hits_fewer_times_than_its_attempts() {
    // GIVEN standard-mode clients (3 attempts) through the proxy
    let proxy = proxy().await;
    let c = Clients::new(proxy.endpoint());
    let bucket = bucket(&direct()).await;
    // WHEN the first two attempts at a put meet SlowDown
    proxy.push(FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_slow_down()).times(2));
    put(&c, &bucket, "absorbed").await.unwrap();
    // THEN the third attempt landed, and the count shows all three
    assert_eq!(proxy.count(AwsService::S3, "PutObject"), 3);
    assert!(exists(&bucket, "absorbed").await);
    // AND three in a row outlast the retries
    proxy.clear();
    proxy.push(
        FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_internal_error()).times(3),
    );
    assert_eq!(put(&c, &bucket, "refused").await, Err("InternalError".into()));
    assert!(!exists(&bucket, "refused").await);
}

#[tokio::test]
async fn after_lets_the_first_matches_through() {
    let proxy = proxy().await;
    let c = no_retries(&proxy);
    let bucket = bucket(&direct()).await;
    proxy.push(FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_slow_down()).after(2));
    assert_eq!(put(&c, &bucket, "1").await, Ok(()));
    assert_eq!(put(&c, &bucket, "2").await, Ok(()));
    assert_eq!(put(&c, &bucket, "3").await, Err("SlowDown".into()));
    assert_eq!(put(&c, &bucket, "4").await, Ok(()));
    // a rule for any operation of another service never matched
    assert_eq!(proxy.rule_hits(), [1]);
}

#[tokio::test]
async fn a_dropped_answer_means_the_write_landed_but_the_client_never_heard() {
    // GIVEN a put whose answer is dropped
    let proxy = proxy().await;
    let c = no_retries(&proxy);
    let bucket = bucket(&direct()).await;
    proxy.push(FaultRule::new(AwsService::S3, "PutObject", FaultAction::Drop));
    // WHEN it is sent
    let result =
        c.s3.put_object().bucket(&bucket).key("k").body(ByteStream::from_static(b"x")).send().await;
    // THEN the client sees a transport failure, not a service error
    let error = result.unwrap_err();
    assert!(error.as_service_error().is_none(), "{error:?}");
    // AND the object is there all the same
    assert!(exists(&bucket, "k").await);
}

#[tokio::test]
async fn a_delayed_write_lands_even_after_its_client_timed_out() {
    // GIVEN a client with a 300 ms operation timeout and a put delayed 1 s
    let proxy = proxy().await;
    let config = aws::sdk_config(proxy.endpoint())
        .into_builder()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder().operation_timeout(Duration::from_millis(300)).build(),
        )
        .build();
    let s3 = aws::s3(&config);
    let bucket = bucket(&direct()).await;
    proxy.push(FaultRule::new(
        AwsService::S3,
        "PutObject",
        FaultAction::Delay(Duration::from_secs(1)),
    ));
    // WHEN it is sent
    let started = Instant::now();
    let result = s3
        .put_object()
        .bucket(&bucket)
        .key("late")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    // THEN the client gives up at its timeout, with nothing written yet
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_millis(900));
    assert!(!exists(&bucket, "late").await);
    // AND the write lands once the delay is over
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(exists(&bucket, "late").await);
}

#[tokio::test]
async fn a_held_answer_can_be_waited_for() {
    // GIVEN a put whose answer is held for a second
    let proxy = proxy().await;
    let c = Clients::new(proxy.endpoint());
    let bucket = bucket(&direct()).await;
    proxy.push(FaultRule::new(
        AwsService::S3,
        "PutObject",
        FaultAction::DelayAnswer(Duration::from_secs(1)),
    ));
    // WHEN it is sent in the background
    let started = Instant::now();
    let (s3, b) = (c.s3.clone(), bucket.clone());
    let sending = tokio::spawn(async move {
        s3.put_object().bucket(&b).key("held").body(ByteStream::from_static(b"x")).send().await
    });
    // THEN the test sees it arrive, and the object is written before the client hears so
    assert!(proxy.wait_for(AwsService::S3, "PutObject", 1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(exists(&bucket, "held").await);
    assert!(!sending.is_finished());
    sending.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(!proxy.wait_for(AwsService::S3, "PutObject", 2, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn the_random_mode_replays_the_same_faults_for_the_same_seed() {
    async fn run(seed: u64) -> Vec<bool> {
        let proxy = proxy().await;
        let c = no_retries(&proxy);
        let bucket = bucket(&direct()).await;
        proxy.set_random(Some(RandomFaults { seed, rate: 0.5 }));
        let mut outcomes = Vec::new();
        for i in 0..16 {
            let got = c.s3.get_object().bucket(&bucket).key(format!("k{i}")).send().await;
            // NoSuchKey is moto's answer; SlowDown and InternalError are the proxy's
            outcomes.push(got.is_err_and(|e| e.code() != Some("NoSuchKey")));
        }
        assert_eq!(
            outcomes.iter().filter(|o| **o).count(),
            proxy.injected().iter().filter(|i| i.random).count()
        );
        proxy.clear();
        assert!(c.s3.list_objects_v2().bucket(&bucket).send().await.is_ok());
        outcomes
    }
    let first = run(11).await;
    assert_eq!(first, run(11).await);
    assert!(first.iter().any(|o| *o) && first.iter().any(|o| !*o), "{first:?}");
}
