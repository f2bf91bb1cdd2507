//! The detector end to end, every part real but AWS: the collector writes objects to moto S3,
//! whose notification goes to an SNS topic, raw to the detector's SQS queue (with its dead-letter
//! queue), from which Lambda's event source mapping (testkit's player) invokes the built
//! `anthropic-compliance-detector` through the Runtime API; its alerts go to an alert topic that
//! an SQS queue subscribes to, as a pager or SIEM would.

use std::time::Duration;

use compliance_sim::Seed;
use serde_json::{Value, json};
use testkit::aws;
use testkit::event_source::SqsEventSource;
use testkit::lambda::LambdaFunction;
use testkit::pubsub::{self, Queue, QueueOptions, SnsNotification};
use testkit::unique_name;

use crate::support::{Options, PREFIX, Stack, ago};

const ADMIN_KEY_RULE: &str = "36be6496-ff67-4a4c-9173-3a1f6f93b348";
const BURST_RULE: &str = "216b5e86-f8ee-4033-b343-d59ed655f44b";
const INVOCATION: Duration = Duration::from_secs(60);
const PATIENCE: Duration = Duration::from_secs(60);

/// The collector's stack plus the detector's part of the template.
struct DetectorStack {
    stack: Stack,
    detector: LambdaFunction,
    source: SqsEventSource,
    dead_letters: Queue,
    alerts: Queue,
}

impl DetectorStack {
    async fn new() -> DetectorStack {
        let stack = Stack::new(Options::default()).await;
        let c = &stack.clients;
        let objects = pubsub::create_topic(&c.sns, &unique_name("objects")).await.unwrap();
        pubsub::notify_topic_on_object_created(
            &c.s3,
            &stack.bucket,
            &objects,
            &format!("{PREFIX}year="),
            ".json.gz",
        )
        .await
        .unwrap();
        let dead_letters =
            pubsub::create_queue(&c.sqs, &unique_name("detector-dlq"), &QueueOptions::default())
                .await
                .unwrap();
        let options = QueueOptions {
            visibility_timeout: Some(Duration::from_secs(2)),
            dead_letter: Some((dead_letters.clone(), 5)),
        };
        let queue = pubsub::create_queue(&c.sqs, &unique_name("detector"), &options).await.unwrap();
        pubsub::subscribe_queue(&c.sns, &objects, &queue, true, None).await.unwrap();
        let alert_topic = pubsub::create_topic(&c.sns, &unique_name("alerts")).await.unwrap();
        let alerts = pubsub::create_queue(&c.sqs, &unique_name("pager"), &QueueOptions::default())
            .await
            .unwrap();
        pubsub::subscribe_queue(&c.sns, &alert_topic, &alerts, false, None).await.unwrap();
        let mut env = aws::env_for(testkit::moto::Moto::shared().endpoint());
        for (k, v) in [
            ("OUTPUT_BUCKET", stack.bucket.clone()),
            ("STATE_TABLE", stack.table.clone()),
            ("ALERT_TOPIC_ARN", alert_topic),
            ("METRIC_NAMESPACE", stack.namespace.clone()),
            ("RUST_LOG", "info".into()),
        ] {
            env.push((k.into(), v));
        }
        let binary = env!("CARGO_BIN_EXE_anthropic-compliance-detector").into();
        let detector = LambdaFunction::start(binary, env).unwrap();
        let source = SqsEventSource::new(c.sqs.clone(), queue);
        DetectorStack { stack, detector, source, dead_letters, alerts }
    }

    /// Collects once, then lets the event source mapping drain the detector's queue.
    async fn collect_and_detect(&mut self) {
        self.stack.collect().await;
        self.detect().await;
    }

    async fn detect(&mut self) {
        let deliveries = self.source.drain(&mut self.detector, INVOCATION, PATIENCE).await.unwrap();
        for d in &deliveries {
            assert!(
                d.settlement.retried.is_empty(),
                "a batch failed: {:?}\n{}",
                d.invocation.outcome,
                d.invocation.logs.join("\n")
            );
        }
    }

    /// Every alert that reached the alert topic since the last call.
    async fn alerts(&self) -> Vec<SnsNotification> {
        let messages = pubsub::drain(&self.stack.clients.sqs, &self.alerts).await.unwrap();
        messages.iter().map(|m| SnsNotification::parse(&m.body).unwrap()).collect()
    }
}

fn of_rule<'a>(alerts: &'a [SnsNotification], rule: &str) -> Vec<&'a SnsNotification> {
    alerts
        .iter()
        .filter(|a| a.message_attributes.get("rule_id").map(String::as_str) == Some(rule))
        .collect()
}

fn sso_failure(minutes_ago: i64) -> Seed {
    Seed::new("sso_login_failed", ago(minutes_ago))
        .with("actor", json!({"type": "unauthenticated_user_actor", "unauthenticated_email_address": "victim@example.com", "ip_address": "198.51.100.23", "user_agent": "Mozilla/5.0"}))
}

#[tokio::test]
async fn dangerous_activities_reach_the_alert_topic_once_with_their_attributes() {
    // GIVEN a stack with the detector, an admin key created among ordinary traffic, and three of
    // five failed sign-ins for one email
    let mut d = DetectorStack::new().await;
    d.stack.generate(200, 30, 3);
    let key_id = d
        .stack
        .sim
        .seed(
            &Seed::new("admin_api_key_created", ago(8)).with("admin_api_key_id", "admin_key_01E2E"),
        )
        .unwrap();
    for m in [9, 8, 7] {
        d.stack.sim.seed(&sso_failure(m)).unwrap();
    }
    // WHEN the collector runs and the detector drains its queue
    d.collect_and_detect().await;
    let first = d.alerts().await;
    // THEN the admin key alert arrives once, routed by its attributes, with the activity as served
    let admin = of_rule(&first, ADMIN_KEY_RULE);
    assert_eq!(admin.len(), 1, "{first:#?}");
    let attributes = &admin[0].message_attributes;
    assert_eq!(
        (attributes["level"].as_str(), attributes["pack"].as_str()),
        ("high", "credentials")
    );
    assert_eq!(admin[0].subject.as_deref(), Some("[high] Admin API key created"));
    let alert: Value = serde_json::from_str(&admin[0].message).unwrap();
    assert_eq!(alert["activity_ids"], json!([key_id]));
    assert_eq!(alert["activities"][0]["admin_api_key_id"], "admin_key_01E2E");
    assert!(alert["object_keys"][0].as_str().unwrap().starts_with(&format!("{PREFIX}year=")));
    // AND no burst yet: three failures are not five
    assert!(of_rule(&first, BURST_RULE).is_empty());

    // WHEN two more failures land in a later object
    for m in [6, 5] {
        d.stack.sim.seed(&sso_failure(m)).unwrap();
    }
    d.collect_and_detect().await;
    let second = d.alerts().await;
    // THEN the burst fires once, counted across both objects
    let burst = of_rule(&second, BURST_RULE);
    assert_eq!(burst.len(), 1, "{second:#?}");
    let alert: Value = serde_json::from_str(&burst[0].message).unwrap();
    assert_eq!(alert["count"], 5);
    // (two objects, or three when the seeded minutes straddle the top of an hour: objects are
    // per event hour)
    let objects = alert["object_keys"].as_array().unwrap().len();
    assert!((2..=3).contains(&objects), "{alert}");
    assert!(of_rule(&second, ADMIN_KEY_RULE).is_empty());

    // AND every match is a finding in the bucket; nothing reached the dead-letter queue
    let findings = aws::list_objects(
        &d.stack.clients.s3,
        &d.stack.bucket,
        &format!("{PREFIX}_findings/year="),
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for object in &findings {
        for line in
            aws::read_gzip_lines(&d.stack.clients.s3, &d.stack.bucket, &object.key).await.unwrap()
        {
            let finding: Value = serde_json::from_str(&line).unwrap();
            ids.push(finding["alert_id"].as_str().unwrap().to_owned());
        }
    }
    for alert in first.iter().chain(&second) {
        let id = serde_json::from_str::<Value>(&alert.message).unwrap()["alert_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ids.contains(&id), "alert {id} has no finding");
    }
    assert_eq!(pubsub::queue_depth(&d.stack.clients.sqs, &d.dead_letters).await.unwrap(), (0, 0));
}

#[tokio::test]
async fn a_redelivered_object_raises_no_second_alert() {
    // GIVEN an admin key creation detected once
    let mut d = DetectorStack::new().await;
    d.stack.sim.seed(&Seed::new("admin_api_key_created", ago(8))).unwrap();
    d.stack.collect().await;
    let notifications = pubsub::receive(&d.stack.clients.sqs, d.source.queue(), 10).await.unwrap();
    assert!(!notifications.is_empty());
    // (the notifications are read, then left to come back after their visibility timeout)
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.detect().await;
    assert_eq!(of_rule(&d.alerts().await, ADMIN_KEY_RULE).len(), 1);
    // WHEN S3 delivers each notification again (at-least-once) and the detector drains them
    for n in &notifications {
        d.stack
            .clients
            .sqs
            .send_message()
            .queue_url(&d.source.queue().url)
            .message_body(&n.body)
            .send()
            .await
            .unwrap();
    }
    d.detect().await;
    // THEN no second alert reaches the topic
    assert!(d.alerts().await.is_empty());
}

#[tokio::test]
async fn every_detector_event_in_events_is_answered() {
    // GIVEN the detector deployed and the payloads a user invokes it with by hand
    let mut d = DetectorStack::new().await;
    let dir = testkit::workspace_root().join("events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("detector-"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4);
    for file in files {
        // WHEN each is invoked
        let payload: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let invocation = d.detector.invoke(payload, INVOCATION).await.unwrap();
        // THEN each is answered: a hunt with its summary, an SQS event with no failure (its
        // example object is in another bucket: skipped, not retried)
        let answer = invocation.outcome.response().unwrap_or_else(|| {
            panic!("{}: {:?}\n{}", file.display(), invocation.outcome, invocation.logs.join("\n"))
        });
        match answer.get("status") {
            Some(status) => assert_eq!(status, "complete", "{}", file.display()),
            None => assert_eq!(answer["batchItemFailures"], json!([]), "{}", file.display()),
        }
    }
}
