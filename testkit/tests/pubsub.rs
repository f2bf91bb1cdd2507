//! moto's S3 → SNS → SQS delivery in server mode, and the SQS event source player driving
//! `echo-lambda`.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};
use testkit::aws::Clients;
use testkit::event_source::SqsEventSource;
use testkit::lambda::LambdaFunction;
use testkit::moto::Moto;
use testkit::pubsub::{self, Queue, QueueOptions, SnsNotification};
use testkit::{aws, unique_name};

const TIMEOUT: Duration = Duration::from_secs(10);

fn clients() -> Clients {
    Clients::for_moto(Moto::shared())
}

async fn queue(c: &Clients, options: &QueueOptions) -> Queue {
    pubsub::create_queue(&c.sqs, &unique_name("queue"), options).await.unwrap()
}

async fn put(c: &Clients, bucket: &str, key: &str) {
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_object_created_under_the_prefix_reaches_a_raw_subscription_as_an_s3_event() {
    // GIVEN a bucket notifying a topic for `p/` + `.json.gz`, a queue subscribed raw
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    let topic = pubsub::create_topic(&c.sns, &unique_name("topic")).await.unwrap();
    let queue = queue(&c, &QueueOptions::default()).await;
    pubsub::subscribe_queue(&c.sns, &topic, &queue, true, None).await.unwrap();
    pubsub::notify_topic_on_object_created(&c.s3, &bucket, &topic, "p/year=", ".json.gz")
        .await
        .unwrap();
    // WHEN one matching and two non-matching objects are written
    put(&c, &bucket, "p/year=2026/month=01/a b.json.gz").await;
    put(&c, &bucket, "p/_findings/year=2026/f.json.gz").await;
    put(&c, &bucket, "p/year=2026/notes.txt").await;
    // THEN the queue holds S3's test event (sent when the notification was set) and exactly one
    // object event, for the matching key, form-URL-encoded (moto encodes `/` too, S3 does not)
    let messages = pubsub::drain(&c.sqs, &queue).await.unwrap();
    let events: Vec<Value> =
        messages.iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["Event"], "s3:TestEvent");
    let record = &events[1]["Records"][0];
    assert_eq!(record["eventSource"], "aws:s3");
    assert_eq!(record["eventName"], "ObjectCreated:Put");
    assert_eq!(record["s3"]["bucket"]["name"], json!(bucket));
    let key = record["s3"]["object"]["key"].as_str().unwrap();
    assert_eq!(form_decode(key), "p/year=2026/month=01/a b.json.gz", "{key}");
}

/// `application/x-www-form-urlencoded` decoding of an ASCII key.
fn form_decode(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&encoded[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_non_raw_subscription_gets_the_envelope_with_subject_and_attributes() {
    // GIVEN a topic and a queue subscribed without raw delivery
    let c = clients();
    let topic = pubsub::create_topic(&c.sns, &unique_name("topic")).await.unwrap();
    let queue = queue(&c, &QueueOptions::default()).await;
    pubsub::subscribe_queue(&c.sns, &topic, &queue, false, None).await.unwrap();
    // WHEN a message with a subject and a message attribute is published
    let level = aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("high")
        .build()
        .unwrap();
    c.sns
        .publish()
        .topic_arn(&topic)
        .subject("[high] t")
        .message("{\"a\":1}")
        .message_attributes("level", level)
        .send()
        .await
        .unwrap();
    // THEN the queue holds the envelope, which parses back into all three
    let messages = pubsub::drain(&c.sqs, &queue).await.unwrap();
    assert_eq!(messages.len(), 1);
    let n = SnsNotification::parse(&messages[0].body).unwrap();
    assert_eq!(n.subject.as_deref(), Some("[high] t"));
    assert_eq!(n.message, "{\"a\":1}");
    assert_eq!(n.message_attributes.get("level").map(String::as_str), Some("high"));
}

#[tokio::test]
async fn a_filter_policy_on_level_routes_only_the_levels_it_names() {
    // GIVEN a subscription filtered to high and critical
    let c = clients();
    let topic = pubsub::create_topic(&c.sns, &unique_name("topic")).await.unwrap();
    let queue = queue(&c, &QueueOptions::default()).await;
    let policy = r#"{"level": ["high", "critical"]}"#;
    pubsub::subscribe_queue(&c.sns, &topic, &queue, true, Some(policy)).await.unwrap();
    // WHEN a low and a critical message are published
    for level in ["low", "critical"] {
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(level)
            .build()
            .unwrap();
        c.sns
            .publish()
            .topic_arn(&topic)
            .message(level)
            .message_attributes("level", attribute)
            .send()
            .await
            .unwrap();
    }
    // THEN only the critical one arrives
    let bodies: Vec<String> =
        pubsub::drain(&c.sqs, &queue).await.unwrap().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, vec!["critical"]);
}

#[tokio::test]
async fn the_player_deletes_successes_and_redelivers_reported_failures_after_the_visibility_timeout()
 {
    // GIVEN a queue with a 1 s visibility timeout holding an ordinary message and one the
    // function reports as failed
    let c = clients();
    let options =
        QueueOptions { visibility_timeout: Some(Duration::from_secs(1)), ..Default::default() };
    let queue = queue(&c, &options).await;
    for body in ["ok", "fail"] {
        c.sqs.send_message().queue_url(&queue.url).message_body(body).send().await.unwrap();
    }
    let mut function =
        LambdaFunction::start(env!("CARGO_BIN_EXE_echo-lambda").into(), Vec::new()).unwrap();
    let source = SqsEventSource::new(c.sqs.clone(), queue.clone());
    // WHEN one batch is delivered
    let first = source.deliver_once(&mut function, TIMEOUT).await.unwrap().unwrap();
    // THEN the function saw both, "ok" was deleted and "fail" kept
    assert_eq!(first.messages.len(), 2, "{:?}", first.messages);
    assert_eq!(first.settlement.deleted.len(), 1);
    let failed = &first.settlement.retried;
    assert_eq!(failed.len(), 1);
    assert_eq!(pubsub::queue_depth(&c.sqs, &queue).await.unwrap(), (0, 1));
    // WHEN the visibility timeout passes and the next batch is delivered
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = source.deliver_once(&mut function, TIMEOUT).await.unwrap().unwrap();
    // THEN the failed message came back alone, received a second time
    assert_eq!(second.messages.len(), 1);
    assert_eq!(&second.messages[0].message_id, &failed[0]);
    assert_eq!(second.messages[0].body, "fail");
    assert_eq!(second.messages[0].receive_count(), 2);
}

#[tokio::test]
async fn a_failed_invocation_keeps_the_batch_until_the_redrive_policy_moves_it_to_the_dead_letter_queue()
 {
    // GIVEN a queue whose messages go to a dead-letter queue after 2 receives
    let c = clients();
    let dead_letter = queue(&c, &QueueOptions::default()).await;
    let options = QueueOptions {
        visibility_timeout: Some(Duration::from_secs(1)),
        dead_letter: Some((dead_letter.clone(), 2)),
    };
    let queue = queue(&c, &options).await;
    c.sqs
        .send_message()
        .queue_url(&queue.url)
        .message_body("{\"fail\": true}")
        .send()
        .await
        .unwrap();
    // AND a function that fails every invocation with an error (not a batch item failure)
    let mut function =
        LambdaFunction::start(env!("CARGO_BIN_EXE_echo-lambda").into(), Vec::new()).unwrap();
    let source = SqsEventSource::new(c.sqs.clone(), queue.clone());
    let failing = |mut event: Value| {
        event["fail"] = json!(true);
        event
    };
    // WHEN the queue is drained with the records rewritten to fail
    let mut receives = 0;
    for _ in 0..4 {
        let messages = pubsub::receive(&c.sqs, &queue, 10).await.unwrap();
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            continue;
        }
        receives += 1;
        let event = failing(testkit::event_source::sqs_event(&queue.arn, &messages));
        let invocation = function.invoke(event, TIMEOUT).await.unwrap();
        let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
        let settlement = testkit::event_source::settle(&invocation.outcome, &ids);
        // THEN nothing of a failed invocation is deleted
        assert!(settlement.deleted.is_empty(), "{:?}", invocation.outcome);
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // AND after two receives the message sits in the dead-letter queue
    assert_eq!(receives, 2);
    let dead = pubsub::drain(&c.sqs, &dead_letter).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(source.deliver_once(&mut function, TIMEOUT).await.unwrap().is_none());
}
