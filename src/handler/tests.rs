//! The handler over in-memory fakes of every port: a scheduled run, a backfill that resumes, an
//! overlap refused, a human error that writes no manifest, and verify with each check failing.

use std::sync::Mutex;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::archive::memory::MemorySink;
use crate::clock::fake::FakeClock;
use crate::feed::{Activity, ActivityFeed, Page, PageQuery, RequestStats};
use crate::secrets::SecretError;
use crate::state::memory::MemoryStore;
use crate::telemetry::memory::MemoryMetrics;
use crate::telemetry::{Datum, EVENTS_PROCESSED};

// ---------------------------------------------------------------------------------------------
// Fakes

/// Serves its activities within a query's bounds in one page, or the next failure queued.
#[derive(Default)]
struct ScriptedFeed {
    activities: Vec<Activity>,
    failures: Mutex<Vec<fn() -> FeedError>>,
    keys_used: Mutex<Vec<String>>,
}

impl ActivityFeed for ScriptedFeed {
    async fn fetch(
        &self,
        query: &PageQuery,
        _deadline: Deadline,
    ) -> (Result<Page, FeedError>, RequestStats) {
        let stats = RequestStats { requests: 1, ..RequestStats::default() };
        if let Some(fail) = self.failures.lock().unwrap().pop() {
            return (Err(fail()), stats);
        }
        let activities: Vec<Activity> = self
            .activities
            .iter()
            .filter(|a| a.created_at >= query.from && a.created_at < query.to)
            .cloned()
            .collect();
        let last_id = activities.last().map(|a| a.id.clone());
        (Ok(Page { activities, has_more: false, last_id }), stats)
    }
}

impl FeedClient for ScriptedFeed {
    type Feed<'a> = &'a ScriptedFeed;

    fn with_key<'a>(&'a self, key: &'a ApiKey) -> &'a ScriptedFeed {
        self.keys_used.lock().unwrap().push(key.as_str().to_owned());
        self
    }
}

/// A secret that holds a key, or does not exist.
struct Secret(Option<&'static str>);

impl SecretSource for Secret {
    async fn secret_string(&self) -> Result<String, SecretError> {
        self.0.map(str::to_owned).ok_or(SecretError::NotFound { secret_id: "s".into() })
    }
}

type TestCollector =
    Collector<ScriptedFeed, Secret, MemorySink, MemoryStore, MemoryMetrics, FakeClock>;

const NOW: &str = "2026-01-10T00:00:00Z";
const KEY: &str = "sk-ant-api01-test";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn activity(id: &str, at: &str) -> Activity {
    let raw = format!(r#"{{"id":"{id}","created_at":"{at}","type":"claude_chat_created"}}"#);
    Activity { id: id.into(), created_at: ts(at), raw: raw.into() }
}

fn collector(activities: Vec<Activity>) -> TestCollector {
    let env = |name: &str| match name {
        "API_KEY_SECRET_ID" => Some("s".to_owned()),
        "STATE_TABLE" => Some("t".to_owned()),
        "OUTPUT_BUCKET" => Some("b".to_owned()),
        _ => None,
    };
    Collector {
        config: Config::from_lookup(env).unwrap(),
        identity: Identity { function_name: "f".into(), function_version: "1".into() },
        secrets: Secret(Some(KEY)),
        keys: KeyCache::default(),
        feed: ScriptedFeed { activities, ..ScriptedFeed::default() },
        sink: MemorySink::default(),
        store: MemoryStore::default(),
        metrics: MemoryMetrics::default(),
        clock: FakeClock::at(NOW),
    }
}

/// Three activities of the last day, and two from before the live stream's first window.
fn world() -> Vec<Activity> {
    vec![
        activity("old_1", "2026-01-01T01:00:00Z"),
        activity("old_2", "2026-01-01T02:00:00Z"),
        activity("a", "2026-01-09T10:00:00Z"),
        activity("b", "2026-01-09T11:00:00Z"),
        activity("c", "2026-01-09T12:00:00Z"),
    ]
}

async fn invoke(c: &TestCollector, payload: Value) -> Result<Value, RunError> {
    c.handle(&payload, ts("2026-01-10T00:05:00Z"), "req-1").await
}

fn backfill() -> Value {
    json!({"action": "backfill", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T05:00:00Z"})
}

fn events_processed(c: &TestCollector) -> Vec<f64> {
    let put = c.metrics.put.lock().unwrap();
    put.iter().filter(|d| d.name == EVENTS_PROCESSED).map(|d: &Datum| d.value).collect()
}

fn manifests(c: &TestCollector) -> Vec<String> {
    let markers = c.sink.markers.lock().unwrap();
    markers.keys().filter(|k| k.contains("_manifests/")).cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// Collecting

#[tokio::test]
async fn a_scheduled_run_delivers_writes_its_manifest_and_puts_its_metrics() {
    // GIVEN a feed with three activities in the lookback
    let c = collector(world());
    // WHEN the schedule invokes the function
    let summary = invoke(&c, json!({})).await.unwrap();
    // THEN the three are delivered with the secret's key, a manifest names the run, and
    // EventsProcessed says 3
    assert_eq!((summary["status"].as_str(), summary["delivered"].as_u64()), (Some("ok"), Some(3)));
    assert_eq!(c.sink.ids(), ["a", "b", "c"]);
    assert_eq!(c.feed.keys_used.lock().unwrap()[0], KEY);
    let manifests = manifests(&c);
    assert_eq!(manifests.len(), 1);
    assert!(manifests[0].contains("_manifests/live/"), "{manifests:?}");
    assert_eq!(summary["manifest_key"].as_str(), Some(manifests[0].as_str()));
    assert_eq!(events_processed(&c), [3.0]);
}

#[tokio::test]
async fn a_backfill_that_stops_resumes_from_its_own_state_and_delivers_once() {
    // GIVEN a live stream that began after two old activities
    let c = collector(world());
    invoke(&c, json!({})).await.unwrap();
    // WHEN a backfill of their range is cut short by the rate limit, then invoked again
    c.feed.failures.lock().unwrap().push(|| FeedError::RateLimited { retry_after: None });
    let first = invoke(&c, backfill()).await.unwrap();
    let second = invoke(&c, backfill()).await.unwrap();
    // THEN the first stops resumably having delivered nothing, the second delivers both, and the
    // range is claimed once in the live stream's ledger
    assert_eq!(first["stop_reason"].as_str(), Some("rate_limited"));
    assert_eq!(first["delivered"].as_u64(), Some(0));
    assert_eq!(second["delivered"].as_u64(), Some(2));
    let mut ids = c.sink.ids();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c", "old_1", "old_2"]);
    let ledger = c.store.state().unwrap().backfills;
    assert_eq!(ledger, [(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T05:00:00Z"))]);
}

#[tokio::test]
async fn a_backfill_overlapping_another_is_refused_before_it_writes() {
    // GIVEN a live stream and a claimed backfill
    let c = collector(world());
    invoke(&c, json!({})).await.unwrap();
    invoke(&c, backfill()).await.unwrap();
    let objects = c.sink.objects.lock().unwrap().len();
    // WHEN a range overlapping it is asked for
    let overlapping =
        json!({"action": "backfill", "from": "2026-01-01T04:00:00Z", "to": "2026-01-01T08:00:00Z"});
    let refused = invoke(&c, overlapping).await.unwrap_err();
    // THEN the invocation is refused as invalid and writes nothing
    assert_eq!(refused.error_type(), "InvocationInvalid");
    assert!(refused.chain().contains("overlaps"), "{}", refused.chain());
    assert_eq!(c.sink.objects.lock().unwrap().len(), objects);
    assert_eq!(c.store.state().unwrap().backfills.len(), 1);
}

#[tokio::test]
async fn a_rejected_key_fails_the_run_writes_no_manifest_and_still_puts_zero_metrics() {
    // GIVEN an API that rejects the key
    let c = collector(world());
    c.feed.failures.lock().unwrap().push(|| FeedError::Unauthorized {
        error_type: "authentication_error".into(),
        message: "invalid x-api-key".into(),
        request_id: None,
    });
    // WHEN the schedule invokes the function
    let failed = invoke(&c, json!({})).await.unwrap_err();
    // THEN the invocation fails with the stable type, nothing is written, not even a manifest,
    // no state is committed, and EventsProcessed says 0
    assert_eq!(failed.error_type(), "ApiKeyRejected");
    assert!(c.sink.objects.lock().unwrap().is_empty());
    assert!(manifests(&c).is_empty());
    assert_eq!(c.store.state(), None);
    assert_eq!(events_processed(&c), [0.0]);
}

#[tokio::test]
async fn a_run_without_a_key_fails_and_puts_zero_metrics() {
    // GIVEN a secret that does not exist
    let c = Collector { secrets: Secret(None), ..collector(world()) };
    // WHEN the schedule invokes the function
    let failed = invoke(&c, json!({})).await.unwrap_err();
    // THEN it fails naming the secret, and the alarms are still fed a zero
    assert_eq!(failed.error_type(), "SecretNotFound");
    assert_eq!(events_processed(&c), [0.0]);
    assert!(manifests(&c).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Verify

async fn verify(c: &TestCollector) -> Value {
    invoke(c, json!({"action": "verify"})).await.unwrap()
}

/// The names of the checks that failed.
fn failed(report: &Value) -> Vec<&str> {
    let checks = report["checks"].as_array().unwrap();
    checks.iter().filter(|c| c["ok"] == false).map(|c| c["check"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn verify_passes_every_check_when_every_dependency_works() {
    let report = verify(&collector(world())).await;
    assert_eq!(report["status"], "ok");
    assert!(failed(&report).is_empty(), "{report}");
}

#[tokio::test]
async fn verify_reports_a_missing_secret_and_does_not_try_the_key() {
    let c = Collector { secrets: Secret(None), ..collector(world()) };
    let report = verify(&c).await;
    assert_eq!(report["status"], "failed");
    assert_eq!(failed(&report), ["secret", "api"]);
    assert!(report["checks"][1]["detail"].as_str().unwrap().contains("not tried"));
}

#[tokio::test]
async fn verify_reports_a_key_without_its_scope() {
    let c = collector(world());
    c.feed.failures.lock().unwrap().push(|| FeedError::Forbidden {
        error_type: "permission_error".into(),
        message: "missing scope".into(),
        request_id: None,
    });
    let report = verify(&c).await;
    assert_eq!(failed(&report), ["api"]);
    assert!(report["checks"][1]["remedy"].as_str().unwrap().contains("403"));
}

#[tokio::test]
async fn verify_reports_a_missing_bucket() {
    let c = Collector {
        sink: MemorySink { missing_bucket: true, ..MemorySink::default() },
        ..collector(world())
    };
    let report = verify(&c).await;
    assert_eq!(failed(&report), ["bucket"]);
    assert!(report["checks"][2]["remedy"].as_str().unwrap().contains("OUTPUT_BUCKET"));
}

#[tokio::test]
async fn verify_reports_a_missing_state_table() {
    let c = Collector {
        store: MemoryStore { missing_table: true, ..MemoryStore::default() },
        ..collector(world())
    };
    let report = verify(&c).await;
    assert_eq!(failed(&report), ["state_table"]);
    assert!(report["checks"][3]["remedy"].as_str().unwrap().contains("STATE_TABLE"));
}

#[tokio::test]
async fn verify_reports_metrics_it_cannot_put() {
    let c = Collector {
        metrics: MemoryMetrics { fail: true, ..MemoryMetrics::default() },
        ..collector(world())
    };
    let report = verify(&c).await;
    assert_eq!(failed(&report), ["metrics"]);
    assert!(report["checks"][4]["remedy"].as_str().unwrap().contains("PutMetricData"));
}

#[tokio::test]
async fn a_dry_run_verify_writes_nothing_and_puts_no_metric() {
    let c = collector(world());
    let report = invoke(&c, json!({"action": "verify", "dry_run": true})).await.unwrap();
    assert!(failed(&report).is_empty(), "{report}");
    assert!(c.sink.markers.lock().unwrap().is_empty());
    assert!(c.metrics.put.lock().unwrap().is_empty());
    assert!(c.store.others.lock().unwrap().is_empty());
}
