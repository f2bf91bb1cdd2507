//! The detector against in-memory ports: the guarantees of design.md's "Detections (contract)"
//! (one alert per match however often an object comes, a second publish only after a crash
//! between publish and record, no match lost, windows across objects, old matches findings
//! only) and the shell's rules (what is ignored, what fails a message, bad custom rules).

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use super::*;
use crate::archive::memory::MemorySink;
use crate::clock::fake::FakeClock;
use crate::detect::packs::PackSelection;
use crate::telemetry::memory::MemoryMetrics;
use ledger::memory::MemoryLedger;
use publish::memory::MemoryPublisher;

const NOW: &str = "2026-12-04T10:30:00Z";
const PREFIX: &str = "anthropic/activity/";
const ADMIN_KEY_RULE: &str = "36be6496-ff67-4a4c-9173-3a1f6f93b348";
const BURST_RULE: &str = "216b5e86-f8ee-4033-b343-d59ed655f44b";

type TestDetector = Detector<MemorySink, MemoryLedger, MemoryPublisher, MemoryMetrics, FakeClock>;

fn detector() -> TestDetector {
    Detector {
        config: DetectorConfig {
            output_bucket: "archive".into(),
            output_prefix: PREFIX.into(),
            state_table: "state".into(),
            alert_topic_arn: "arn:aws:sns:eu-west-1:123456789012:alerts".into(),
            packs: PackSelection::All,
            custom_rules_prefix: format!("{PREFIX}_rules/"),
            alert_max_age: std::time::Duration::from_secs(24 * 3600),
            metric_namespace: "AnthropicCompliance".into(),
        },
        archive: MemorySink::default(),
        ledger: MemoryLedger::default(),
        publisher: MemoryPublisher::default(),
        metrics: MemoryMetrics::default(),
        clock: FakeClock::at(NOW),
        rules: RulesCache::default(),
    }
}

fn admin_key_created(id: &str, at: &str) -> Value {
    json!({"id": id, "created_at": at, "organization_id": "org_01TEST", "type": "admin_api_key_created",
        "actor": {"type": "user_actor", "email_address": "alice@example.com", "ip_address": "203.0.113.7"},
        "admin_api_key_id": "admin_key_01NEW", "scopes": ["read:compliance_activities"]})
}

fn sso_failed(id: &str, at: &str) -> Value {
    json!({"id": id, "created_at": at, "organization_id": null, "type": "sso_login_failed",
        "actor": {"type": "unauthenticated_user_actor", "unauthenticated_email_address": "victim@example.com",
            "ip_address": "198.51.100.23", "user_agent": "Mozilla/5.0"}})
}

fn harmless(id: &str, at: &str) -> Value {
    json!({"id": id, "created_at": at, "type": "claude_chat_viewed",
        "actor": {"type": "user_actor", "email_address": "bob@example.com"}})
}

/// Puts an activity object (gzip NDJSON) in the archive's hour partition; its key.
fn land(d: &TestDetector, name: &str, activities: &[Value]) -> String {
    let key = format!("{PREFIX}year=2026/month=12/day=04/hour=10/{name}.json.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    for a in activities {
        writeln!(gz, "{a}").unwrap();
    }
    d.archive.objects.lock().unwrap().insert(key.clone(), gz.finish().unwrap());
    key
}

/// Failed SSO sign-ins for one email, the i-th at 10:0i, as one object; its key.
fn land_failures(d: &TestDetector, name: &str, minutes: std::ops::RangeInclusive<u32>) -> String {
    let failures: Vec<Value> =
        minutes.map(|i| sso_failed(&format!("f{i}"), &format!("2026-12-04T10:0{i}:00Z"))).collect();
    land(d, name, &failures)
}

fn notification(key: &str) -> String {
    json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "archive"}, "object": {"key": key.replace('=', "%3D")}}}]})
    .to_string()
}

fn batch(keys: &[&str]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| json!({"eventSource": "aws:sqs", "messageId": format!("m{i}"), "body": notification(k)}))
        .collect();
    json!({ "Records": records })
}

async fn deliver(d: &TestDetector, keys: &[&str]) -> Value {
    let deadline = d.clock.now() + jiff::SignedDuration::from_mins(5);
    d.handle(&batch(keys), deadline).await.unwrap()
}

fn failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Every findings line written so far.
fn findings(d: &TestDetector) -> Vec<Value> {
    use std::io::Read;
    let markers = d.archive.markers.lock().unwrap();
    let mut lines = Vec::new();
    for (key, body) in markers.iter().filter(|(k, _)| k.contains("_findings/")) {
        assert!(
            key.starts_with(&format!("{PREFIX}_findings/year=2026/month=12/day=04/hour=10/")),
            "{key}"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
        lines.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    lines
}

fn published_rules(d: &TestDetector) -> Vec<String> {
    d.publisher.messages.lock().unwrap().iter().map(|m| m.rule_id.clone()).collect()
}

#[tokio::test]
async fn a_dangerous_activity_is_published_once_and_recorded() {
    // GIVEN an object with an admin key creation among harmless activities
    let d = detector();
    let key = land(
        &d,
        "a",
        &[harmless("h1", "2026-12-04T10:00:00Z"), admin_key_created("k1", "2026-12-04T10:00:01Z")],
    );
    // WHEN its notification is delivered
    let answer = deliver(&d, &[&key]).await;
    // THEN nothing fails, one alert is published with the contract's subject and attributes
    assert!(failures(&answer).is_empty());
    let messages = d.publisher.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rule_id, ADMIN_KEY_RULE);
    assert_eq!((messages[0].level, messages[0].pack.as_str()), ("high", "credentials"));
    assert!(messages[0].subject.starts_with("[high] "), "{}", messages[0].subject);
    let body: Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(body["activity_ids"], json!(["k1"]));
    assert_eq!(body["activities"][0]["admin_api_key_id"], "admin_key_01NEW");
    assert_eq!(body["object_keys"], json!([key]));
    // AND the same alert is the one finding
    let found = findings(&d);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["alert_id"], body["alert_id"]);
    // AND the metrics say so
    let put = d.metrics.put.lock().unwrap();
    let published: f64 =
        put.iter().filter(|m| m.name == report::ALERTS_PUBLISHED).map(|m| m.value).sum();
    assert_eq!(published, 1.0);
    // AND a healthy invocation bills no zero health figure
    assert!(!put.iter().any(|m| m.name == report::DETECTOR_ERRORS), "{put:?}");
}

#[tokio::test]
async fn a_redelivered_object_gives_the_same_alert_and_no_second_publish() {
    // GIVEN an object delivered once
    let d = detector();
    let key = land(&d, "a", &[admin_key_created("k1", "2026-12-04T10:00:01Z")]);
    deliver(&d, &[&key]).await;
    // WHEN S3 notifies twice more and SQS delivers both in one batch
    let answer = deliver(&d, &[&key, &key]).await;
    // THEN nothing fails, nothing more is published, and the findings are unchanged
    assert!(failures(&answer).is_empty());
    assert_eq!(d.publisher.messages.lock().unwrap().len(), 1);
    assert_eq!(findings(&d).len(), 1);
}

#[tokio::test]
async fn a_crash_between_publish_and_record_publishes_the_same_alert_id_once_more() {
    // GIVEN a delivery whose alert is published but not marked (the function died)
    let d = detector();
    let key = land(&d, "a", &[admin_key_created("k1", "2026-12-04T10:00:01Z")]);
    *d.ledger.fail_next_mark.lock().unwrap() = true;
    let first = deliver(&d, &[&key]).await;
    assert_eq!(failures(&first), ["m0"]);
    // WHEN the message comes back after its visibility timeout (the claim's lease has run out)
    d.clock.advance(std::time::Duration::from_secs(1800));
    let second = deliver(&d, &[&key]).await;
    // AND once more
    let third = deliver(&d, &[&key]).await;
    // THEN the same alert_id was published twice, and only twice
    assert!(failures(&second).is_empty() && failures(&third).is_empty());
    let ids = d.publisher.alert_ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn a_delivery_meeting_a_live_claim_is_retried_not_published() {
    // GIVEN another delivery of the same object holding the alert's claim right now
    let d = detector();
    let key = land(&d, "a", &[admin_key_created("k1", "2026-12-04T10:00:01Z")]);
    *d.ledger.fail_next_mark.lock().unwrap() = true;
    deliver(&d, &[&key]).await; // claimed and published, never marked; lease still live
    // WHEN a second delivery comes within the lease
    let answer = deliver(&d, &[&key]).await;
    // THEN it is failed for a retry, and nothing more is published
    assert_eq!(failures(&answer), ["m0"]);
    assert_eq!(d.publisher.messages.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_publish_that_fails_loses_no_match() {
    // GIVEN the alert topic refusing the first publish
    let d = detector();
    let key = land(&d, "a", &[admin_key_created("k1", "2026-12-04T10:00:01Z")]);
    *d.publisher.refuse.lock().unwrap() = 1;
    let first = deliver(&d, &[&key]).await;
    // THEN the message is retried and the match is a finding already
    assert_eq!(failures(&first), ["m0"]);
    assert_eq!(findings(&d).len(), 1);
    // WHEN the retry comes after the lease THEN the alert is published
    d.clock.advance(std::time::Duration::from_secs(1800));
    deliver(&d, &[&key]).await;
    assert_eq!(published_rules(&d), [ADMIN_KEY_RULE]);
}

#[tokio::test]
async fn a_correlation_split_across_two_objects_alerts_once() {
    // GIVEN five failed sign-ins for one email within ten minutes, three in one object, two in
    // the next
    let d = detector();
    let (a, b) = (land_failures(&d, "a", 1..=3), land_failures(&d, "b", 4..=5));
    // WHEN they come in two invocations, and the second again
    deliver(&d, &[&a]).await;
    let burst = |d: &TestDetector| published_rules(d).iter().filter(|r| *r == BURST_RULE).count();
    assert_eq!(burst(&d), 0);
    deliver(&d, &[&b]).await;
    deliver(&d, &[&b, &a]).await;
    // THEN one burst alert, naming both objects and all five activities
    assert_eq!(burst(&d), 1);
    let messages = d.publisher.messages.lock().unwrap().clone();
    let alert: Value =
        serde_json::from_str(&messages.iter().find(|m| m.rule_id == BURST_RULE).unwrap().body)
            .unwrap();
    assert_eq!(alert["count"], 5);
    assert_eq!(alert["object_keys"], json!([a, b]));
    assert_eq!(alert["group"]["actor.unauthenticated_email_address"], "victim@example.com");
    assert_eq!(alert["first_seen"], "2026-12-04T10:01:00Z");
}

#[tokio::test]
async fn a_crash_after_the_window_is_committed_still_publishes_it() {
    // GIVEN the second object fires the window, but the topic fails (the function dies after
    // the correlation state was committed)
    let d = detector();
    let (a, b) = (land_failures(&d, "a", 1..=3), land_failures(&d, "b", 4..=5));
    deliver(&d, &[&a]).await;
    *d.publisher.refuse.lock().unwrap() = 1;
    assert_eq!(failures(&deliver(&d, &[&b]).await), ["m0"]);
    // WHEN b is redelivered
    d.clock.advance(std::time::Duration::from_secs(1800));
    deliver(&d, &[&b]).await;
    // THEN the burst is published, once
    assert_eq!(published_rules(&d).iter().filter(|r| *r == BURST_RULE).count(), 1);
}

#[tokio::test]
async fn a_match_older_than_the_max_age_is_a_finding_only() {
    // GIVEN an admin key created two days ago (a backfill landing it now)
    let d = detector();
    let key = land(&d, "a", &[admin_key_created("old", "2026-12-02T10:00:00Z")]);
    // WHEN delivered THEN it is recorded, not published
    deliver(&d, &[&key]).await;
    assert!(d.publisher.messages.lock().unwrap().is_empty());
    assert_eq!(findings(&d).len(), 1);
}

#[tokio::test]
async fn findings_manifests_and_other_buckets_are_ignored() {
    // GIVEN notifications of a findings object, a manifest and another bucket's object
    let d = detector();
    let body = json!({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "archive"}, "object": {"key": format!("{PREFIX}_findings/year%3D2026/x.json.gz")}}},
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "archive"}, "object": {"key": format!("{PREFIX}_runs/r.json")}}},
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "other"}, "object": {"key": format!("{PREFIX}year%3D2026/a.json.gz")}}}
    ]});
    let event = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m0", "body": body.to_string()}]});
    // WHEN delivered THEN nothing fails and nothing is read
    let answer =
        d.handle(&event, d.clock.now() + jiff::SignedDuration::from_mins(5)).await.unwrap();
    assert!(failures(&answer).is_empty());
    assert!(d.archive.markers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_message_that_is_no_notification_fails_alone() {
    // GIVEN a batch of a broken message and a good one
    let d = detector();
    let key = land(&d, "a", &[admin_key_created("k1", "2026-12-04T10:00:01Z")]);
    let event = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "bad", "body": "not json"},
        {"eventSource": "aws:sqs", "messageId": "good", "body": notification(&key)}
    ]});
    // WHEN delivered THEN only the broken one is retried (towards the dead-letter queue)
    let answer =
        d.handle(&event, d.clock.now() + jiff::SignedDuration::from_mins(5)).await.unwrap();
    assert_eq!(failures(&answer), ["bad"]);
    assert_eq!(published_rules(&d), [ADMIN_KEY_RULE]);
    let errors: f64 = d
        .metrics
        .put
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.name == report::DETECTOR_ERRORS)
        .map(|m| m.value)
        .sum();
    assert_eq!(errors, 1.0);
}

#[tokio::test]
async fn custom_rules_load_beside_the_packs_and_a_bad_one_is_counted() {
    // GIVEN a good custom rule and a broken one in the bucket
    let d = detector();
    let custom = "title: Harmless chat viewed by bob
id: 0b8a2f0e-7c55-4d3b-9a57-5f0d6f7f0c01
logsource: {product: anthropic, service: compliance}
detection:
  selection:
    type: claude_chat_viewed
    actor.email_address: bob@example.com
  condition: selection
level: low
tags: [attack.collection]
";
    d.archive
        .objects
        .lock()
        .unwrap()
        .insert(format!("{PREFIX}_rules/bob.yml"), custom.as_bytes().to_vec());
    d.archive
        .objects
        .lock()
        .unwrap()
        .insert(format!("{PREFIX}_rules/broken.yml"), b"title: [unclosed".to_vec());
    let key = land(
        &d,
        "a",
        &[harmless("h1", "2026-12-04T10:00:00Z"), admin_key_created("k1", "2026-12-04T10:00:01Z")],
    );
    // WHEN an object comes
    deliver(&d, &[&key]).await;
    // THEN the custom rule and the shipped one both alert, and the bad file is counted
    let mut rules = published_rules(&d);
    rules.sort();
    assert_eq!(rules, ["0b8a2f0e-7c55-4d3b-9a57-5f0d6f7f0c01", ADMIN_KEY_RULE]);
    let messages = d.publisher.messages.lock().unwrap().clone();
    assert!(messages.iter().any(|m| m.pack == "custom"));
    assert!(
        d.metrics
            .put
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.name == report::RULES_INVALID && m.value == 1.0)
    );
}

#[tokio::test]
async fn a_hunt_writes_findings_and_publishes_nothing() {
    // GIVEN last week's admin key creation in the archive
    let d = detector();
    land(&d, "a", &[admin_key_created("k1", "2026-12-04T10:00:01Z")]);
    let hunt =
        json!({"action": "hunt", "from": "2026-12-04T09:00:00Z", "to": "2026-12-04T11:00:00Z"});
    // WHEN hunted twice
    let answer = d.handle(&hunt, d.clock.now() + jiff::SignedDuration::from_mins(5)).await.unwrap();
    let again = d.handle(&hunt, d.clock.now() + jiff::SignedDuration::from_mins(5)).await.unwrap();
    // THEN one finding, tagged with the hunt, nothing published, and the second hunt wrote nothing
    assert_eq!(answer["status"], "complete");
    assert_eq!(
        (answer["matches"].as_u64(), answer["findings_objects_written"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(again["findings_objects_written"], 0);
    assert!(d.publisher.messages.lock().unwrap().is_empty());
    let markers = d.archive.markers.lock().unwrap();
    assert!(markers.keys().all(|k| k.contains("_hunt-")), "{markers:?}");
}
