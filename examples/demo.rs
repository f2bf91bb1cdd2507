//! `make demo`: the collector's main job end to end on local services, and what landed.
//!
//! Starts moto (S3, DynamoDB, Secrets Manager, CloudWatch) and the compliance simulator on
//! 127.0.0.1, creates the bucket, table and secret, then invokes the built Lambda binary through
//! the Lambda Runtime API protocol twice, with new and late-indexed activities arriving between
//! the runs. Prints the run summaries, the objects, one decoded record, the state item and the
//! metric, checks exactly-once against the simulator, and stops everything it started.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use compliance_sim::{ApiKey, GenerateSpec, SimConfig, Simulator};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::aws::{self, Clients};
use testkit::lambda::{LambdaFunction, Outcome};
use testkit::moto::Moto;

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
    drop(server);
    drop(moto);
    println!("Stopped the function, the simulator and moto.");
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

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
