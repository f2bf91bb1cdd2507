//! `make demo`: the collector's main job end to end on local services, and what landed.
//!
//! Starts moto (S3, DynamoDB, Secrets Manager, CloudWatch) and the compliance simulator on
//! 127.0.0.1, creates the bucket, table and secret, then invokes the built Lambda binary through
//! the Lambda Runtime API protocol twice, with new and late-indexed activities arriving between
//! the runs. Prints the run summaries, the objects, one decoded record, the state item and the
//! metric, checks exactly-once against the simulator, and stops everything it started.
//!
//! The detector runs too, as deployed: the bucket notifies an SNS topic, raw to the detector's SQS
//! queue, from which Lambda's event source mapping (testkit's player) invokes the built
//! `anthropic-compliance-detector`; its alerts go to an alert topic that an SQS queue subscribes
//! to. A few dangerous activities are seeded in the feed, and the demo shows the alerts that
//! reached the topic, one of them decoded.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use compliance_sim::{ApiKey, GenerateSpec, Seed, SimConfig, Simulator};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::aws::{self, Clients};
use testkit::event_source::SqsEventSource;
use testkit::lambda::{LambdaFunction, Outcome};
use testkit::moto::Moto;
use testkit::pubsub::{self, QueueOptions, SnsNotification};

const KEY: &str = "sk-ant-api01-demo-key-never-logged";
const BUCKET: &str = "demo-activity-archive";
const TABLE: &str = "demo-collector-state";
const SECRET: &str = "demo/anthropic-compliance-api-key";
const PREFIX: &str = "anthropic/activity/";
const NAMESPACE: &str = "AnthropicCompliance";
const SETTLE_SECONDS: i64 = 5;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    println!(
        "anthropic-compliance-collector demo: everything runs on 127.0.0.1 and stops at the end\n"
    );

    let moto = Moto::start()?;
    let sim = Simulator::new(SimConfig {
        seed: 42,
        keys: vec![ApiKey { key: KEY.into(), has_scope: true }],
        ..SimConfig::default()
    });
    let server = sim.spawn().await?;
    println!("  moto (AWS)            {}", moto.endpoint());
    println!("  compliance simulator  {}", server.base_url);

    let clients = Clients::for_moto(&moto);
    aws::create_bucket(&clients.s3, BUCKET).await?;
    aws::create_state_table(&clients.dynamodb, TABLE).await?;
    aws::put_secret(&clients.secretsmanager, SECRET, &json!({"api_key": KEY}).to_string()).await?;
    println!("  created bucket {BUCKET}, table {TABLE}, secret {SECRET}\n");

    let now = Timestamp::now();
    sim.generate(&GenerateSpec {
        count: 2500,
        from: now - hours(24),
        to: now - mins(10),
        hidden: false,
    });
    let late = sim.generate(&GenerateSpec {
        count: 40,
        from: now - mins(9),
        to: now - mins(1),
        hidden: true,
    });
    println!(
        "The feed holds 2,500 activities of the last 24 hours; 40 more exist but are not indexed yet.\n"
    );
    let dangerous = seed_dangerous(&sim, now)?;
    println!(
        "Among them, {dangerous} dangerous ones: an admin API key created, SSO switched off, the"
    );
    println!(
        "primary owner transferred, an artifact shared publicly, six failed SSO sign-ins for one email.\n"
    );

    // The detector's part of the template: object-created topic -> raw SQS queue -> detector;
    // alert topic -> a subscriber's queue (a pager, a SIEM).
    let objects_topic = pubsub::create_topic(&clients.sns, "demo-object-created").await?;
    pubsub::notify_topic_on_object_created(
        &clients.s3,
        BUCKET,
        &objects_topic,
        &format!("{PREFIX}year="),
        ".json.gz",
    )
    .await?;
    let queue_options =
        QueueOptions { visibility_timeout: Some(Duration::from_secs(5)), dead_letter: None };
    let detector_queue =
        pubsub::create_queue(&clients.sqs, "demo-detector", &queue_options).await?;
    pubsub::subscribe_queue(&clients.sns, &objects_topic, &detector_queue, true, None).await?;
    let alert_topic = pubsub::create_topic(&clients.sns, "demo-alerts").await?;
    let pager = pubsub::create_queue(&clients.sqs, "demo-pager", &QueueOptions::default()).await?;
    pubsub::subscribe_queue(&clients.sns, &alert_topic, &pager, false, None).await?;
    let mut detector_env = aws::env_for(moto.endpoint());
    for (k, v) in [
        ("OUTPUT_BUCKET", BUCKET.to_owned()),
        ("STATE_TABLE", TABLE.into()),
        ("ALERT_TOPIC_ARN", alert_topic.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", "anthropic-compliance-detector-demo".into()),
        ("RUST_LOG", "warn".into()),
    ] {
        detector_env.push((k.into(), v));
    }
    let mut detector =
        LambdaFunction::start(testkit::binary_path("anthropic-compliance-detector"), detector_env)?;
    let event_source = SqsEventSource::new(clients.sqs.clone(), detector_queue);
    println!(
        "  the detector: bucket -> SNS demo-object-created -> SQS demo-detector -> detector -> SNS demo-alerts -> SQS demo-pager\n"
    );

    let mut env = aws::env_for(moto.endpoint());
    for (k, v) in [
        ("API_KEY_SECRET_ID", SECRET.to_owned()),
        ("STATE_TABLE", TABLE.into()),
        ("OUTPUT_BUCKET", BUCKET.into()),
        ("API_BASE_URL", server.base_url.clone()),
        // The demo settles 5 s instead of the default 120 s so it need not wait two minutes.
        ("SETTLE_SECONDS", SETTLE_SECONDS.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "anthropic-compliance-collector-demo".into()),
        ("RUST_LOG", "warn".into()),
    ] {
        env.push((k.into(), v));
    }
    let binary = testkit::binary_path("anthropic-compliance-collector");
    let mut function = LambdaFunction::start(binary, env)?;

    let first = invoke(
        &mut function,
        "run 1: scheduled invocation (cold start)",
        json!({"action": "collect"}),
    )
    .await?;

    println!(
        "Between the runs: the 40 late activities get indexed (created before run 1's watermark),"
    );
    println!("and 300 new ones happen.\n");
    sim.reveal_all();
    let watermark1: Timestamp = first["watermark"].as_str().unwrap_or_default().parse()?;
    sim.generate(&GenerateSpec {
        count: 300,
        from: watermark1,
        to: Timestamp::now(),
        hidden: false,
    });
    tokio::time::sleep(Duration::from_secs(SETTLE_SECONDS as u64 + 1)).await;

    let second = invoke(&mut function, "run 2: the next tick (warm)", json!({})).await?;

    // What landed.
    let (objects, markers): (Vec<_>, Vec<_>) = aws::list_objects(&clients.s3, BUCKET, "")
        .await?
        .into_iter()
        .partition(|o| !o.key.split('/').any(|segment| segment.starts_with('_')));
    let mut lines_by_id: HashMap<String, String> = HashMap::new();
    let mut per_object = Vec::new();
    let mut delivered: Vec<String> = Vec::new();
    for object in &objects {
        let lines = aws::read_gzip_lines(&clients.s3, BUCKET, &object.key).await?;
        for line in &lines {
            let value: Value = serde_json::from_str(line)?;
            let id = value["id"].as_str().unwrap_or_default().to_owned();
            delivered.push(id.clone());
            lines_by_id.insert(id, line.clone());
        }
        per_object.push((object.key.clone(), object.size, lines.len()));
    }
    println!(
        "Objects in s3://{BUCKET}/{PREFIX} ({} objects, Hive partitions by event hour):",
        objects.len()
    );
    println!("  {:<84} {:>8} {:>6}", "key", "bytes", "lines");
    for (key, size, lines) in per_object.iter().take(6) {
        println!("  {key:<84} {size:>8} {lines:>6}");
    }
    if per_object.len() > 8 {
        println!("  … {} more …", per_object.len() - 8);
    }
    for (key, size, lines) in per_object.iter().skip(6.max(per_object.len().saturating_sub(2))) {
        println!("  {key:<84} {size:>8} {lines:>6}");
    }
    let total_bytes: i64 = per_object.iter().map(|(_, s, _)| s).sum();
    println!("  total: {} activities in {} bytes of gzip\n", delivered.len(), total_bytes);

    println!("Beside them, under `_` segments that Athena and the SIEMs skip, the run manifests:");
    for marker in &markers {
        println!("  {}", marker.key);
    }
    if let Some(manifest) = markers.last() {
        let body = aws::get_object_bytes(&clients.s3, BUCKET, &manifest.key).await?;
        let manifest: Value = serde_json::from_slice(&body)?;
        println!(
            "  the last one: window {} .. {}, {} page(s) with request ids {:?}, {} object(s) with SHA-256\n",
            manifest["window_from"],
            manifest["window_to"],
            manifest["pages"].as_array().map_or(0, Vec::len),
            manifest["pages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["request_id"].as_str().unwrap_or("-"))
                .collect::<Vec<_>>(),
            manifest["objects"].as_array().map_or(0, Vec::len),
        );
    }

    if let Some(line) = late.first().and_then(|id| lines_by_id.get(id)) {
        let value: Value = serde_json::from_str(line)?;
        println!("One record (a late-indexed one): its line, the API's JSON exactly as served,");
        println!("    {line}");
        println!("and decoded (keys sorted):");
        println!("{}\n", indent(&serde_json::to_string_pretty(&value)?));
    }

    if let Some(item) = aws::get_item(&clients.dynamodb, TABLE, "live").await? {
        println!("The state item (DynamoDB {TABLE}, pk = live):");
        let shown: BTreeMap<_, _> = item.iter().collect();
        for (name, value) in shown {
            let text = match value {
                aws_sdk_dynamodb::types::AttributeValue::S(s) => s.clone(),
                aws_sdk_dynamodb::types::AttributeValue::N(n) => n.clone(),
                aws_sdk_dynamodb::types::AttributeValue::B(b) => {
                    format!("<{} bytes: dedupe memory>", b.as_ref().len())
                }
                other => format!("{other:?}"),
            };
            println!("  {name:<16} {text}");
        }
        println!();
    }

    show_alerts(&clients, BUCKET, &event_source, &mut detector, &pager).await?;

    let dims = [("FunctionName", function.function_name())];
    let points =
        aws::metric_datapoints(&clients.cloudwatch, NAMESPACE, "EventsProcessed", &dims).await?;
    println!(
        "CloudWatch {NAMESPACE}/EventsProcessed (FunctionName={}): {points:?}\n",
        function.function_name()
    );

    // The proof: exactly once against what the simulator served.
    let watermark2: Timestamp = second["watermark"].as_str().unwrap_or_default().parse()?;
    let due: Vec<String> = sim
        .activities()
        .into_iter()
        .filter(|a| a.visible && a.created_at < watermark2)
        .map(|a| a.id)
        .collect();
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for id in &delivered {
        *counts.entry(id).or_default() += 1;
    }
    let duplicates = counts.values().filter(|n| **n > 1).count();
    let missing = due.iter().filter(|id| !counts.contains_key(id.as_str())).count();
    println!(
        "Exactly once: {} activities were due before the watermark; {} delivered, {} missing, {} duplicated.",
        due.len(),
        delivered.len(),
        missing,
        duplicates
    );
    drop(function);
    drop(detector);
    drop(server);
    drop(moto);
    println!("Stopped the functions, the simulator and moto.");
    if missing > 0 || duplicates > 0 {
        return Err("the demo found a gap or a duplicate".into());
    }
    Ok(())
}

async fn invoke(
    function: &mut LambdaFunction,
    title: &str,
    payload: Value,
) -> Result<Value, Error> {
    println!("── {title}: payload {payload}");
    let invocation = function.invoke(payload, Duration::from_secs(60)).await?;
    match invocation.outcome {
        Outcome::Response(summary) => {
            for field in [
                "delivered",
                "duplicates_dropped",
                "late_arrivals",
                "objects_written",
                "pages",
                "requests",
                "window_from",
                "window_to",
                "watermark",
                "stop_reason",
                "duration_ms",
            ] {
                println!("   {field:<20} {}", summary[field]);
            }
            println!();
            Ok(summary)
        }
        other => Err(format!("{title} failed: {other:?}\n{}", invocation.logs.join("\n")).into()),
    }
}

/// The dangerous activities the demo's feed holds; how many.
fn seed_dangerous(sim: &Simulator, now: Timestamp) -> Result<usize, Error> {
    let user = json!({"type": "user_actor", "email_address": "mallory@example.com", "user_id": "user_01DEMOMALLORY", "ip_address": "203.0.113.66", "user_agent": "Mozilla/5.0"});
    let mut seeds = vec![
        Seed::new("admin_api_key_created", now - mins(50)).with("actor", user.clone()),
        Seed::new("org_sso_toggled", now - mins(45))
            .with("actor", user.clone())
            .with("enabled", false),
        Seed::new("primary_owner_transferred", now - mins(40)).with("actor", user.clone()),
        Seed::new("claude_artifact_sharing_updated", now - mins(35))
            .with("actor", user)
            .with("audience", json!([{"type": "public"}])),
    ];
    for i in 0..6 {
        seeds.push(Seed::new("sso_login_failed", now - mins(30) + SignedDuration::from_secs(40 * i)).with(
            "actor",
            json!({"type": "unauthenticated_user_actor", "unauthenticated_email_address": "ceo@example.com", "ip_address": "198.51.100.9", "user_agent": "python-requests/2.32"}),
        ));
    }
    for seed in &seeds {
        sim.seed(seed)?;
    }
    Ok(seeds.len())
}

/// Lets the event source mapping drain the detector's queue, then prints what reached the alert
/// topic and the findings written.
async fn show_alerts(
    clients: &Clients,
    bucket: &str,
    source: &SqsEventSource,
    detector: &mut LambdaFunction,
    pager: &pubsub::Queue,
) -> Result<(), Error> {
    let deliveries =
        source.drain(detector, Duration::from_secs(60), Duration::from_secs(60)).await?;
    let retried: usize = deliveries.iter().map(|d| d.settlement.retried.len()).sum();
    println!(
        "The detector: {} invocation(s) over the object-created notifications, {retried} message(s) retried.",
        deliveries.len()
    );
    let alerts: Vec<SnsNotification> = pubsub::drain(&clients.sqs, pager)
        .await?
        .iter()
        .map(|m| SnsNotification::parse(&m.body))
        .collect::<Result<_, _>>()?;
    println!(
        "Alerts on the alert topic ({}), as a subscriber receives them (subject, attributes):",
        alerts.len()
    );
    for alert in &alerts {
        let a = &alert.message_attributes;
        println!(
            "  {:<60} level={:<9} pack={:<15} rule_id={}",
            alert.subject.as_deref().unwrap_or("-"),
            a.get("level").map_or("-", String::as_str),
            a.get("pack").map_or("-", String::as_str),
            a.get("rule_id").map_or("-", String::as_str),
        );
    }
    let decoded = alerts
        .iter()
        .find(|a| {
            a.message_attributes.get("level").map(String::as_str) == Some("high")
                && a.message.contains("\"group\"")
        })
        .or_else(|| alerts.first());
    if let Some(alert) = decoded {
        let mut body: Value = serde_json::from_str(&alert.message)?;
        if let Some(activities) = body["activities"].as_array_mut() {
            let n = activities.len();
            activities.truncate(1);
            if n > 1 {
                activities.push(Value::from(format!("… {} more", n - 1)));
            }
        }
        println!("One alert decoded (the message body; activities trimmed to the first):");
        println!("{}", indent(&serde_json::to_string_pretty(&body)?));
    }
    let findings = aws::list_objects(&clients.s3, bucket, &format!("{PREFIX}_findings/")).await?;
    println!(
        "Every match is also a finding: {} object(s) under {PREFIX}_findings/.\n",
        findings.len()
    );
    if alerts.is_empty() {
        return Err("the demo's dangerous activities raised no alert".into());
    }
    Ok(())
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
