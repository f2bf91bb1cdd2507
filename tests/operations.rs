//! Operating the collector: verify, dry runs, backfills and redeliveries, run manifests, health
//! metrics and the rate budget — the built binary through the Runtime API, on the simulator and
//! moto.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_s3::types::ChecksumMode;
use compliance_sim::GenerateSpec;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testkit::aws;
use testkit::fault_proxy::{AwsService, FaultAction, FaultRule};
use testkit::lambda::Outcome;

use crate::support::{KEY, LONG, Options, Stack, ago, watermark};

async fn ok(stack: &mut Stack, payload: Value) -> Value {
    let invocation = stack.invoke(payload.clone(), LONG).await;
    match invocation.outcome {
        Outcome::Response(v) => v,
        other => panic!("{payload} failed: {other:?}\n{}", invocation.logs.join("\n")),
    }
}

fn env(pairs: &[(&'static str, &str)]) -> Options {
    Options { env: pairs.iter().map(|(k, v)| (*k, v.to_string())).collect(), ..Options::default() }
}

async fn objects_under(stack: &Stack, prefix: &str) -> Vec<String> {
    aws::list_objects(&stack.clients.s3, &stack.bucket, prefix)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

async fn metric(stack: &Stack, name: &str) -> Option<f64> {
    let dims = [("FunctionName", stack.function.function_name())];
    aws::metric_sum(&stack.clients.cloudwatch, &stack.namespace, name, &dims).await.unwrap()
}

#[tokio::test]
async fn verify_checks_everything_and_changes_no_state() {
    let mut stack = Stack::new(Options::default()).await;
    let report = ok(&mut stack, json!({"action": "verify"})).await;
    assert_eq!(report["status"], "ok", "{report:#}");
    let names: Vec<&str> =
        report["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(names, ["secret", "api", "bucket", "state_table", "metrics"]);
    assert!(report["checks"][0]["detail"].as_str().unwrap().contains("Compliance Access Key"));
    assert_eq!(stack.state_item().await, None, "the live state is not touched");
    assert!(stack.delivered().await.is_empty());
    assert_eq!(objects_under(&stack, "anthropic/activity/_collector/verify/").await.len(), 1);
    assert!(report["checks"][2]["detail"].as_str().unwrap().contains("read back"), "{report:#}");
    assert!(!format!("{report}").contains(KEY));
}

#[tokio::test]
async fn a_dry_run_verify_reads_but_writes_nothing() {
    let mut stack = Stack::new(Options::default()).await;
    let report = ok(&mut stack, json!({"action": "verify", "dry_run": true})).await;
    assert_eq!(report["status"], "ok", "{report:#}");
    assert!(report["checks"][4]["detail"].as_str().unwrap().contains("not tried"), "{report:#}");
    assert!(objects_under(&stack, "").await.is_empty(), "no marker");
    assert_eq!(metric(&stack, "VerifyRuns").await, None, "no metric");
}

#[tokio::test]
async fn verify_fails_the_bucket_check_when_what_it_wrote_cannot_be_read_back() {
    // GIVEN a bucket the function may write to but not read from (a write-only bucket policy)
    let mut stack = Stack::new(Options::default()).await;
    let denied = FaultAction::fail(403, "AccessDenied");
    stack.proxy.push(FaultRule::new(AwsService::S3, "GetObject", denied).times(1000));
    // WHEN verify runs
    let report = ok(&mut stack, json!({"action": "verify"})).await;
    // THEN the bucket check fails with its remedy: runs read objects back
    assert_eq!(report["status"], "failed", "{report:#}");
    let bucket = &report["checks"][2];
    assert_eq!((bucket["check"].as_str(), bucket["ok"].as_bool()), (Some("bucket"), Some(false)));
    assert!(bucket["remedy"].as_str().unwrap().contains("s3:GetObject"), "{bucket}");
    stack.proxy.clear();
}

#[tokio::test]
async fn verify_names_each_failing_check_with_its_remedy() {
    let mut stack = Stack::new(Options {
        secret: Some("sk-ant-api01-revoked".into()),
        create_bucket: false,
        ..Options::default()
    })
    .await;
    let report = ok(&mut stack, json!({"action": "verify"})).await;
    assert_eq!(report["status"], "failed");
    let by_name: HashMap<&str, &Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c))
        .collect();
    assert_eq!(by_name["secret"]["ok"], true);
    assert_eq!(by_name["api"]["ok"], false);
    assert!(by_name["api"]["remedy"].as_str().unwrap().contains("401"));
    assert_eq!(by_name["bucket"]["ok"], false);
    assert!(by_name["bucket"]["detail"].as_str().unwrap().contains("does not exist"));
    assert_eq!(by_name["state_table"]["ok"], true);
}

#[tokio::test]
async fn a_dry_run_fetches_and_counts_but_writes_nothing() {
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 120, from: ago(90), to: ago(5), hidden: false });
    let summary = ok(&mut stack, json!({"dry_run": true})).await;
    assert_eq!(summary["dry_run"], true);
    assert!(summary["delivered"].as_u64().unwrap() >= 120, "{summary}");
    assert!(summary["objects_written"].as_u64().unwrap() >= 1);
    assert_eq!(summary["manifest_key"], Value::Null);
    assert!(objects_under(&stack, "").await.is_empty(), "no object, no manifest");
    assert_eq!(stack.state_item().await, None);
    assert_eq!(metric(&stack, "EventsProcessed").await, None, "no metric either");
}

#[tokio::test]
async fn a_backfill_fills_the_past_before_live_collection_once_and_resumably() {
    // GIVEN a live collection that looked back 1 hour over 6 hours of history
    let mut stack = Stack::new(env(&[("INITIAL_LOOKBACK_HOURS", "1")])).await;
    stack.sim.generate(&GenerateSpec { count: 2000, from: ago(360), to: ago(2), hidden: false });
    let from = (Timestamp::now() - SignedDuration::from_hours(7)).to_string();
    let to = Timestamp::now().to_string();
    let backfill = json!({"action": "backfill", "from": from, "to": to});
    let refused = stack.invoke(backfill.clone(), LONG).await;
    assert!(
        matches!(&refused.outcome, Outcome::Error { error_type, .. } if error_type == "InvocationInvalid"),
        "{:?}",
        refused.outcome
    );
    let live = stack.collect().await;
    let live_delivered = live["delivered"].as_u64().unwrap();
    assert!(live_delivered < 2000);
    // WHEN the backfill runs (twice: the second finds it complete)
    let first = ok(&mut stack, backfill.clone()).await;
    assert_eq!(first["stop_reason"], "caught_up", "{first}");
    assert!(first["stream"].as_str().unwrap().starts_with("backfill#"));
    assert_eq!(first["window_to"], live["window_from"], "ends where live began");
    let again = ok(&mut stack, backfill).await;
    assert_eq!(
        (again["delivered"].as_u64(), again["stop_reason"].as_str()),
        (Some(0), Some("nothing_new"))
    );
    // THEN live + backfill hold every activity once, and the live state is untouched by it
    stack.assert_exactly_once(watermark(&live)).await;
    assert_eq!(
        first["delivered"].as_u64().unwrap() + live_delivered,
        stack.delivered().await.len() as u64
    );
}

#[tokio::test]
async fn a_backfill_of_a_sparse_history_writes_pages_of_hundreds_of_hours_in_bounded_batches() {
    // GIVEN a quiet organization: 1,000 activities over 53 days, about one an hour, before the
    // week the live collection looks back over
    let mut stack = Stack::new(Options::default()).await;
    let day = 24 * 60;
    stack.sim.generate(&GenerateSpec {
        count: 1000,
        from: ago(61 * day),
        to: ago(8 * day),
        hidden: false,
    });
    let live = stack.collect().await;
    assert_eq!(live["delivered"], 0, "{live}");
    // WHEN one page of the backfill spans about 700 hours: one object each
    let from = (Timestamp::now() - SignedDuration::from_hours(62 * 24)).to_string();
    let backfill =
        ok(&mut stack, json!({"action": "backfill", "from": from, "to": live["window_from"]}))
            .await;
    // THEN it is written as several write intents, each within the state item and the write
    // window, and every activity is delivered once
    assert_eq!(backfill["stop_reason"], "caught_up", "{backfill}");
    assert_eq!(backfill["delivered"], 1000, "{backfill}");
    let objects = backfill["objects_written"].as_u64().unwrap();
    assert!(objects > 4 * 64, "one object per hour with an activity: {objects}");
    stack.assert_exactly_once(watermark(&live)).await;
}

#[tokio::test]
async fn a_backfill_overlapping_another_is_refused_so_no_id_is_delivered_twice() {
    // GIVEN a live collection that looked back an hour over 6 hours of history, and a backfill of
    // the 3 hours before it
    let mut stack = Stack::new(env(&[("INITIAL_LOOKBACK_HOURS", "1")])).await;
    stack.sim.generate(&GenerateSpec { count: 600, from: ago(360), to: ago(2), hidden: false });
    let live = stack.collect().await;
    let origin: Timestamp = live["window_from"].as_str().unwrap().parse().unwrap();
    let before = |hours| (origin - SignedDuration::from_hours(hours)).to_string();
    let first_range = json!({"action": "backfill", "from": before(3), "to": origin.to_string()});
    let first = ok(&mut stack, first_range.clone()).await;
    // WHEN another backfill overlaps it
    let overlapping = json!({"action": "backfill", "from": before(5), "to": before(2)});
    let refused = stack.invoke(overlapping, LONG).await;
    // THEN it is refused before any request, naming the first
    match &refused.outcome {
        Outcome::Error { error_type, error_message } => {
            assert_eq!(error_type, "InvocationInvalid");
            assert!(error_message.contains(&before(3)), "{error_message}");
        }
        other => panic!("expected InvocationInvalid, got {other:?}"),
    }
    // AND the first range resumes, the part before it is taken, and every id is delivered once
    let again = ok(&mut stack, first_range).await;
    assert_eq!(again["delivered"], 0, "{again}");
    let rest =
        ok(&mut stack, json!({"action": "backfill", "from": before(5), "to": before(3)})).await;
    assert!(rest["delivered"].as_u64().unwrap() > 0, "{rest}");
    stack.assert_exactly_once(watermark(&live)).await;
    let delivered: u64 =
        [&live, &first, &rest].iter().map(|s| s["delivered"].as_u64().unwrap()).sum();
    assert_eq!(delivered, stack.delivered().await.len() as u64);
}

#[tokio::test]
async fn a_redelivery_writes_the_range_again_into_objects_of_its_own() {
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 300, from: ago(120), to: ago(5), hidden: false });
    let live = stack.collect().await;
    let from = (Timestamp::now() - SignedDuration::from_hours(3)).to_string();
    let summary = ok(
        &mut stack,
        json!({"action": "backfill", "from": from, "to": live["watermark"], "redeliver": true}),
    )
    .await;
    assert_eq!(summary["delivered"], live["delivered"], "{summary}");
    let keys = objects_under(&stack, "anthropic/activity/year=").await;
    let (redelivered, originals): (Vec<_>, Vec<_>) =
        keys.iter().partition(|k| k.contains("/redelivery-"));
    assert!(!redelivered.is_empty() && !originals.is_empty());
}

#[tokio::test]
async fn the_manifests_of_a_series_of_runs_account_for_every_delivered_activity() {
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 900, from: ago(300), to: ago(5), hidden: false });
    stack.collect().await;
    stack.sim.generate(&GenerateSpec {
        count: 50,
        from: ago(4),
        to: Timestamp::now() - SignedDuration::from_secs(2),
        hidden: false,
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack.collect().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack.collect().await;
    // every manifest, every object it names
    let mut accounted: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut runs = 0;
    for key in objects_under(&stack, "anthropic/activity/_manifests/live/").await {
        runs += 1;
        let manifest: Value = serde_json::from_slice(
            &aws::get_object_bytes(&stack.clients.s3, &stack.bucket, &key).await.unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["outcome"], "ok");
        assert!(
            manifest["pages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["request_id"].as_str().is_some_and(|r| r.starts_with("req_")))
        );
        for o in manifest["objects"].as_array().unwrap() {
            accounted.insert(
                o["key"].as_str().unwrap().into(),
                (o["activities"].as_u64().unwrap(), o["sha256"].as_str().unwrap().into()),
            );
        }
    }
    assert_eq!(runs, 3);
    let objects = objects_under(&stack, "anthropic/activity/year=").await;
    assert_eq!(objects.len(), accounted.len(), "every object is in a manifest");
    let mut total = 0;
    for key in objects {
        let body = aws::get_object_bytes(&stack.clients.s3, &stack.bucket, &key).await.unwrap();
        let (count, sha) = &accounted[&key];
        let digest: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&digest, sha, "{key}");
        // S3 was given the same digest to check the upload against, and keeps it with the object
        let head = stack
            .clients
            .s3
            .head_object()
            .bucket(&stack.bucket)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let kept = aws_smithy_types::base64::encode(Sha256::digest(&body));
        assert_eq!(head.checksum_sha256(), Some(kept.as_str()), "{key}");
        total += count;
    }
    assert_eq!(total, stack.delivered().await.len() as u64);
}

#[tokio::test]
async fn health_metrics_canary_and_tamper_signal_are_emitted() {
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 200, from: ago(60), to: ago(5), hidden: false });
    stack.sim.insert_raw(
        &json!({"id": "activity_tamper0000000000000001", "created_at": (Timestamp::now() - SignedDuration::from_mins(3)).to_string(),
            "organization_id": "org_x", "organization_uuid": null, "type": "org_compliance_api_settings_updated",
            "actor": {"type": "user_actor", "email_address": "owner@example.com"},
            "updates": [{"field": "compliance_api_enabled", "old_value": true, "new_value": false}]}).to_string(),
        false,
    ).unwrap();
    let first = stack.collect().await;
    assert_eq!(first["compliance_logging_disabled"], 1);
    // past the settle line (1 s, whole seconds) of the first run's own call
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let second = stack.collect().await;
    assert_eq!(
        (second["canary_checked"].as_bool(), second["canary_missing"].as_u64()),
        (Some(true), Some(0)),
        "{second}"
    );
    // one request, and a second in the runs that reconcile an hour (one run an hour)
    assert!(
        second["requests"].as_u64().unwrap() <= 2,
        "a steady-state run costs at most two requests"
    );
    // Every run puts EventsProcessed (0 included) and its lag; a count only when it counts
    // something (CloudWatch bills each series per hour it is put in); the rest is in the log.
    for name in ["EventsProcessed", "LagSeconds"] {
        assert!(metric(&stack, name).await.is_some(), "{name} missing");
    }
    assert_eq!(metric(&stack, "ComplianceLoggingDisabled").await, Some(1.0));
    for name in ["CanaryMissing", "ApiThrottled", "ApiRequests", "DuplicatesDropped"] {
        assert_eq!(metric(&stack, name).await, None, "{name} put although zero or log-only");
    }
}

#[tokio::test]
async fn requests_are_paced_within_max_requests_per_minute() {
    // GIVEN a budget of 30 requests a minute (one every 2 s) and a backlog of three pages
    let mut stack = Stack::new(env(&[("MAX_REQUESTS_PER_MINUTE", "30")])).await;
    stack.sim.generate(&GenerateSpec { count: 12_000, from: ago(300), to: ago(5), hidden: false });
    let started = std::time::Instant::now();
    let summary = stack.collect().await;
    // THEN three requests took at least the two gaps between them
    // (a fourth when the run also reconciles an hour that left the overlap)
    assert!(summary["requests"].as_u64().unwrap() >= 3, "{summary}");
    assert!(started.elapsed() >= Duration::from_secs(4), "{:?}", started.elapsed());
}
