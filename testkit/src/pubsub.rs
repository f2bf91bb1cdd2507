//! SNS topics, SQS queues and the S3 notification between them, as the detector's deployment
//! wires them (template.yaml): bucket → object-created topic → detector queue (raw delivery, with
//! a dead-letter queue), and alert topic → a reader queue a test drains to see the alerts.
//!
//! moto delivers in-process and at once: a PutObject that matches the bucket's notification
//! publishes to the topic, and the topic sends to every subscribed queue, before PutObject
//! answers. So a test that wrote an object can receive its notification right away, no polling.
//!
//! Fixtures set up (`create_topic`, `create_queue`, `subscribe_queue`,
//! `notify_topic_on_object_created`) or read back (`receive`, `drain`, `queue_depth`,
//! [`SnsNotification::parse`] for what a non-raw subscription delivers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    S3KeyFilter, TopicConfiguration,
};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;

use crate::Error;
use crate::aws::sdk_error;

/// An SQS queue: its URL (for the API) and ARN (for subscriptions and redrive policies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// How a queue is made.
#[derive(Debug, Clone, Default)]
pub struct QueueOptions {
    /// `VisibilityTimeout`: how long a received message stays hidden; `None` = SQS's 30 s.
    pub visibility_timeout: Option<Duration>,
    /// `RedrivePolicy`: after `max_receive_count` receives a message moves to this queue.
    pub dead_letter: Option<(Queue, u32)>,
}

/// A received SQS message, with what the Lambda SQS event carries of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, ...).
    pub attributes: BTreeMap<String, String>,
    /// Message attributes: name → (data type, string value).
    pub message_attributes: BTreeMap<String, (String, String)>,
}

impl Message {
    /// How many times SQS has handed this message out, this receive included.
    pub fn receive_count(&self) -> u32 {
        self.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

/// Creates a standard SNS topic; returns its ARN.
pub async fn create_topic(sns: &aws_sdk_sns::Client, name: &str) -> Result<String, Error> {
    let output =
        sns.create_topic().name(name).send().await.map_err(|e| sdk_error("CreateTopic", e))?;
    output.topic_arn.ok_or_else(|| Error::Contract(format!("CreateTopic {name} returned no ARN")))
}

/// Creates a standard SQS queue.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    options: &QueueOptions,
) -> Result<Queue, Error> {
    let mut request = sqs.create_queue().queue_name(name);
    if let Some(timeout) = options.visibility_timeout {
        request = request
            .attributes(QueueAttributeName::VisibilityTimeout, timeout.as_secs().to_string());
    }
    if let Some((dead_letter, max_receive_count)) = &options.dead_letter {
        let policy = serde_json::json!({
            "deadLetterTargetArn": dead_letter.arn,
            "maxReceiveCount": max_receive_count,
        });
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let output = request.send().await.map_err(|e| sdk_error("CreateQueue", e))?;
    let url = output
        .queue_url
        .ok_or_else(|| Error::Contract(format!("CreateQueue {name} returned no URL")))?;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| Error::Contract(format!("queue {name} has no QueueArn")))?;
    Ok(Queue { url, arn })
}

/// Subscribes `queue` to `topic_arn`: `raw` sets RawMessageDelivery (the body is the published
/// message itself, not the SNS envelope); `filter_policy` a FilterPolicy on message attributes.
/// Returns the subscription ARN.
pub async fn subscribe_queue(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    queue: &Queue,
    raw: bool,
    filter_policy: Option<&str>,
) -> Result<String, Error> {
    let mut request = sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(&queue.arn);
    if raw {
        request = request.attributes("RawMessageDelivery", "true");
    }
    if let Some(policy) = filter_policy {
        request = request.attributes("FilterPolicy", policy);
    }
    let output = request.send().await.map_err(|e| sdk_error("Subscribe", e))?;
    output
        .subscription_arn
        .ok_or_else(|| Error::Contract(format!("Subscribe to {topic_arn} returned no ARN")))
}

/// Sets the bucket's notification, as template.yaml does: `s3:ObjectCreated:*` on keys starting
/// with `prefix` and ending with `suffix`, to `topic_arn`.
pub async fn notify_topic_on_object_created(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    topic_arn: &str,
    prefix: &str,
    suffix: &str,
) -> Result<(), Error> {
    let rule = |name, value: &str| FilterRule::builder().name(name).value(value).build();
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(rule(FilterRuleName::Prefix, prefix))
                .filter_rules(rule(FilterRuleName::Suffix, suffix))
                .build(),
        )
        .build();
    let topic = TopicConfiguration::builder()
        .topic_arn(topic_arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .map_err(|e| sdk_error("PutBucketNotificationConfiguration (topic)", e))?;
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder().topic_configurations(topic).build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("PutBucketNotificationConfiguration", e))?;
    Ok(())
}

/// Receives up to `max` (1 to 10) visible messages, without waiting, with every attribute; they
/// stay hidden for the queue's visibility timeout unless deleted.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue: &Queue,
    max: i32,
) -> Result<Vec<Message>, Error> {
    let output = sqs
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(max)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| sdk_error("ReceiveMessage", e))?;
    Ok(output.messages.unwrap_or_default().into_iter().map(message_from_sdk).collect())
}

fn message_from_sdk(m: aws_sdk_sqs::types::Message) -> Message {
    let attributes = m
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    let message_attributes = m
        .message_attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, (v.data_type, v.string_value.unwrap_or_default())))
        .collect();
    Message {
        message_id: m.message_id.unwrap_or_default(),
        receipt_handle: m.receipt_handle.unwrap_or_default(),
        body: m.body.unwrap_or_default(),
        attributes,
        message_attributes,
    }
}

/// Deletes received messages by their receipt handles.
pub async fn delete(
    sqs: &aws_sdk_sqs::Client,
    queue: &Queue,
    messages: &[&Message],
) -> Result<(), Error> {
    for message in messages {
        sqs.delete_message()
            .queue_url(&queue.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteMessage", e))?;
    }
    Ok(())
}

/// Every message visible now, received and deleted (a reader's view of a queue).
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue: &Queue) -> Result<Vec<Message>, Error> {
    let mut all = Vec::new();
    loop {
        let batch = receive(sqs, queue, 10).await?;
        if batch.is_empty() {
            return Ok(all);
        }
        delete(sqs, queue, &batch.iter().collect::<Vec<_>>()).await?;
        all.extend(batch);
    }
}

/// Messages in the queue: (visible, in flight, i.e. received and not yet deleted).
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue: &Queue) -> Result<(u64, u64), Error> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?;
    let attributes = output.attributes.unwrap_or_default();
    let count = |name: QueueAttributeName| {
        attributes.get(&name).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
    };
    Ok((
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// Waits until the queue holds no message at all (none visible, none in flight), up to `timeout`;
/// whether it got there.
pub async fn wait_until_empty(
    sqs: &aws_sdk_sqs::Client,
    queue: &Queue,
    timeout: Duration,
) -> Result<bool, Error> {
    let started = Instant::now();
    loop {
        if queue_depth(sqs, queue).await? == (0, 0) {
            return Ok(true);
        }
        if started.elapsed() >= timeout {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a topic delivers to a subscription without raw message delivery: the SNS envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct SnsNotification {
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    /// The published message, as published.
    pub message: String,
    /// Message attributes: name → string value.
    pub message_attributes: BTreeMap<String, String>,
}

impl SnsNotification {
    /// Parses an SQS body holding an SNS envelope (`"Type": "Notification"`).
    pub fn parse(body: &str) -> Result<SnsNotification, Error> {
        let envelope: Value = serde_json::from_str(body).map_err(|e| {
            Error::Contract(format!("an SNS envelope that is not JSON: {e}: {body}"))
        })?;
        if envelope["Type"] != "Notification" {
            return Err(Error::Contract(format!("not an SNS notification: {body}")));
        }
        let text = |field: &str| envelope[field].as_str().map(str::to_owned);
        let message_attributes = envelope["MessageAttributes"]
            .as_object()
            .map(|attributes| {
                attributes
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v["Value"].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(SnsNotification {
            message_id: text("MessageId").unwrap_or_default(),
            topic_arn: text("TopicArn").unwrap_or_default(),
            subject: text("Subject"),
            message: text("Message").ok_or_else(|| {
                Error::Contract(format!("an SNS envelope without Message: {body}"))
            })?,
            message_attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sns_envelope_parses_into_subject_message_and_attributes() {
        // GIVEN the body SNS sends to a non-raw SQS subscription
        let body = r#"{"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
            "Subject": "[high] Admin API key created", "Message": "{\"alert_id\":\"a\"}",
            "MessageAttributes": {"level": {"Type": "String", "Value": "high"}}}"#;
        // WHEN it is parsed
        let n = SnsNotification::parse(body).unwrap();
        // THEN every part is there, the message untouched
        assert_eq!(n.subject.as_deref(), Some("[high] Admin API key created"));
        assert_eq!(n.message, r#"{"alert_id":"a"}"#);
        assert_eq!(n.message_attributes.get("level").map(String::as_str), Some("high"));
        assert_eq!(n.topic_arn, "arn:aws:sns:us-east-1:123456789012:alerts");
    }

    #[test]
    fn a_raw_body_is_not_an_sns_envelope() {
        // GIVEN a raw S3 notification (RawMessageDelivery)
        let body = r#"{"Records": [{"eventSource": "aws:s3"}]}"#;
        // WHEN it is parsed as an envelope THEN it is refused
        assert!(SnsNotification::parse(body).is_err());
    }
}
