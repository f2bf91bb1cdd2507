//! The AWS adapters against moto server on 127.0.0.1: the real SDK, the real wire protocols.

use anthropic_compliance_collector::archive::s3::S3Sink;
use anthropic_compliance_collector::archive::{
    EncodedObject, ObjectReader, ObjectWriter, PutOutcome, SinkError, encode_batch,
};
use anthropic_compliance_collector::feed::Activity;
use anthropic_compliance_collector::secrets::secretsmanager::SecretsManagerSource;
use anthropic_compliance_collector::secrets::{SecretError, SecretSource};
use anthropic_compliance_collector::state::dynamodb::DynamoStore;
use anthropic_compliance_collector::state::seen::id_hash;
use anthropic_compliance_collector::state::{StateError, StateStore, SyncState};
use anthropic_compliance_collector::telemetry::cloudwatch::CloudWatchMetrics;
use anthropic_compliance_collector::telemetry::{Datum, EVENTS_PROCESSED, MetricsSink};
use testkit::aws::{self, Clients};
use testkit::fault_proxy::{AwsService, FaultAction, FaultProxy, FaultRule};
use testkit::moto::Moto;
use testkit::unique_name;

fn clients() -> Clients {
    Clients::for_moto(Moto::shared())
}

fn object(ids: &[&str]) -> EncodedObject {
    let activities: Vec<Activity> = ids
        .iter()
        .map(|id| Activity {
            id: (*id).into(),
            created_at: "2026-02-03T04:05:06Z".parse().unwrap(),
            raw: format!(r#"{{"id":"{id}","created_at":"2026-02-03T04:05:06Z"}}"#).into(),
        })
        .collect();
    let refs: Vec<&Activity> = activities.iter().collect();
    encode_batch("anthropic/activity/", None, &refs).unwrap().remove(0)
}

#[tokio::test]
async fn s3_tells_a_missing_object_from_one_it_may_not_read_when_reads_are_refused() {
    // GIVEN an object under the prefix, and S3 answering every read with 403 AccessDenied: what a
    // role allowed to list only by prefix gets for a missing key, and what a bucket policy that
    // denies reads (or an object under a KMS key the role may not use) gives for an existing one
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    let proxy = FaultProxy::start(Moto::shared().endpoint()).await.unwrap();
    let s3 = aws::s3(&aws::sdk_config(proxy.endpoint()));
    let sink = S3Sink::new(s3, &bucket, "anthropic/activity/");
    let written = object(&["activity_a"]);
    sink.put_new(&written).await.unwrap();
    let denied = FaultAction::fail(403, "AccessDenied");
    proxy.push(FaultRule::new(AwsService::S3, "GetObject", denied).times(2));
    // WHEN both are read
    let missing = sink.get(&format!("{}x", written.key)).await;
    let existing = sink.get(&written.key).await;
    // THEN the missing one is absent, and the existing one is an error, never taken as absent
    // (its activities would be delivered again)
    assert_eq!(missing.unwrap(), None);
    assert!(matches!(existing, Err(SinkError::AccessDenied { .. })), "{existing:?}");
    assert_eq!(proxy.count(AwsService::S3, "GetObject"), 2);
}

#[tokio::test]
async fn s3_writes_an_object_once_and_refuses_a_second_write_of_its_key() {
    // GIVEN a bucket
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    let sink = S3Sink::new(c.s3.clone(), &bucket, "anthropic/activity/");
    let first = object(&["activity_a", "activity_b"]);
    // WHEN the same object is written twice
    assert_eq!(sink.put_new(&first).await.unwrap(), PutOutcome::Created);
    let other = object(&["activity_c"]);
    let mut altered = first.clone();
    (altered.body, altered.sha256) = (other.body, other.sha256);
    assert_eq!(sink.put_new(&altered).await.unwrap(), PutOutcome::AlreadyPresent);
    // THEN the first content stays, and reads back exactly
    assert_eq!(sink.get(&first.key).await.unwrap(), Some(first.body.to_vec()));
    assert_eq!(sink.get("anthropic/activity/nope.json.gz").await.unwrap(), None);
    let lines = aws::read_gzip_lines(&c.s3, &bucket, &first.key).await.unwrap();
    assert_eq!(lines.len(), 2);
    sink.probe().await.unwrap();
    let listed = sink.list("anthropic/activity/year=2026/month=02/").await.unwrap();
    assert_eq!(listed, vec![first.key.clone()]);
    assert!(sink.list("anthropic/activity/year=1999/").await.unwrap().is_empty());
}

#[tokio::test]
async fn s3_names_a_missing_bucket() {
    let sink = S3Sink::new(clients().s3, unique_name("missing"), "p/");
    assert!(matches!(sink.probe().await, Err(SinkError::BucketNotFound { .. })));
    assert!(matches!(sink.put_new(&object(&["a"])).await, Err(SinkError::BucketNotFound { .. })));
}

#[tokio::test]
async fn dynamodb_commits_compare_and_swap() {
    // GIVEN an empty state table
    let c = clients();
    let table = unique_name("state");
    aws::create_state_table(&c.dynamodb, &table).await.unwrap();
    let store = DynamoStore::new(c.dynamodb.clone(), &table);
    assert_eq!(store.load("live").await.unwrap(), None);
    // WHEN a state is committed, then another run's commits from the same version
    let mut state = SyncState {
        watermark: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        updated_by: Some("run-a".into()),
        updated_at: Some("2026-01-01T00:00:01Z".parse().unwrap()),
        ..Default::default()
    };
    state.seen.insert(id_hash("activity_1"), "2026-01-01T00:00:00Z".parse().unwrap());
    let other = SyncState { updated_by: Some("run-b".into()), ..state.clone() };
    assert_eq!(store.commit("live", &state, None).await.unwrap(), 1);
    assert!(matches!(
        store.commit("live", &other, None).await,
        Err(StateError::Conflict { expected: None })
    ));
    // AND a resend of the same commit (its answer lost) is recognised as this run's own
    assert_eq!(store.commit("live", &state, None).await.unwrap(), 1);
    assert_eq!(store.commit("live", &state, Some(1)).await.unwrap(), 2);
    assert!(matches!(
        store.commit("live", &other, Some(1)).await,
        Err(StateError::Conflict { .. })
    ));
    // THEN the stored item is the last state, readable by a person
    let loaded = store.load("live").await.unwrap().unwrap();
    assert_eq!((loaded.state, loaded.version), (state, 2));
    let item = aws::get_item(&c.dynamodb, &table, "live").await.unwrap().unwrap();
    assert_eq!(item["watermark"].as_s().unwrap(), "2026-01-01T00:00:00Z");
    assert_eq!(item["seen_count"].as_n().unwrap(), "1");
}

#[tokio::test]
async fn dynamodb_names_a_missing_table() {
    let store = DynamoStore::new(clients().dynamodb, unique_name("missing"));
    assert!(matches!(store.load("live").await, Err(StateError::TableNotFound { .. })));
}

#[tokio::test]
async fn secrets_manager_reads_the_string_and_names_a_missing_secret() {
    let c = clients();
    let name = unique_name("secret");
    aws::put_secret(&c.secretsmanager, &name, r#"{"api_key":"sk-ant-api01-x"}"#).await.unwrap();
    let source = SecretsManagerSource::new(c.secretsmanager.clone(), &name);
    assert_eq!(source.secret_string().await.unwrap(), r#"{"api_key":"sk-ant-api01-x"}"#);
    let missing = SecretsManagerSource::new(c.secretsmanager.clone(), unique_name("missing"));
    assert!(matches!(missing.secret_string().await, Err(SecretError::NotFound { .. })));
}

#[tokio::test]
async fn cloudwatch_receives_the_metric_through_the_current_sdk_protocol() {
    // GIVEN the current aws-sdk-cloudwatch (Smithy RPC v2 CBOR) pointed at moto's front
    let c = clients();
    let namespace = unique_name("ns");
    let metrics = CloudWatchMetrics::new(c.cloudwatch.clone(), &namespace, "fn-under-test");
    // WHEN two runs put their EventsProcessed, one of them zero
    for value in [0.0, 42.0] {
        metrics.put(&[Datum::count(EVENTS_PROCESSED, value)]).await.unwrap();
    }
    // THEN both datapoints are there under the FunctionName dimension
    let dims = [("FunctionName", "fn-under-test")];
    let sum = aws::metric_sum(&c.cloudwatch, &namespace, EVENTS_PROCESSED, &dims).await.unwrap();
    assert_eq!(sum, Some(42.0));
}

#[tokio::test]
async fn dynamodb_moves_a_large_dedupe_memory_to_chunk_items_and_back() {
    // GIVEN a burst: 80,000 ids in the overlap, far over DynamoDB's 400 KB item limit inline
    let c = clients();
    let table = unique_name("state");
    aws::create_state_table(&c.dynamodb, &table).await.unwrap();
    let store = DynamoStore::new(c.dynamodb.clone(), &table);
    let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut big = SyncState::default();
    for i in 0..80_000 {
        big.seen.insert(
            id_hash(&format!("activity_{i}")),
            t0 + jiff::SignedDuration::from_secs(i % 900),
        );
    }
    // WHEN it is committed, then committed unchanged (a write intent), then shrunk
    assert_eq!(store.commit("live", &big, None).await.unwrap(), 1);
    let chunk = |g: u64, i: usize| format!("live#seen#{g}#{i}");
    assert!(aws::get_item(&c.dynamodb, &table, &chunk(1, 1)).await.unwrap().is_some());
    // a fresh process reads it back whole
    let fresh = DynamoStore::new(c.dynamodb.clone(), &table);
    assert_eq!(fresh.load("live").await.unwrap().unwrap().state, big);
    let mut intent = big.clone();
    intent.delivered_total = 1;
    intent.updated_by = Some("run-2".into());
    assert_eq!(fresh.commit("live", &intent, Some(1)).await.unwrap(), 2);
    assert!(
        aws::get_item(&c.dynamodb, &table, &chunk(1, 0)).await.unwrap().is_some(),
        "unchanged memory keeps its chunks"
    );
    assert!(matches!(store.commit("live", &big, Some(1)).await, Err(StateError::Conflict { .. })));
    let small = SyncState::default();
    assert_eq!(fresh.commit("live", &small, Some(2)).await.unwrap(), 3);
    // THEN the state reads back each time, and the stale chunks are gone
    assert_eq!(fresh.load("live").await.unwrap().unwrap().state, small);
    assert!(aws::get_item(&c.dynamodb, &table, &chunk(1, 0)).await.unwrap().is_none());
}
