//! Lambda's SQS event source mapping, played locally: receive from a queue, invoke a
//! [`LambdaFunction`] with the SQS event through the Runtime API emulator, delete what succeeded.
//!
//! The rules are Lambda's with `FunctionResponseTypes: [ReportBatchItemFailures]`:
//! - a response without failures (`{}`, `null`, `{"batchItemFailures": []}`) deletes the batch;
//! - a response listing `batchItemFailures[].itemIdentifier` deletes every other message;
//! - a failure entry with an empty or unknown identifier, an invocation error, a timeout or a
//!   crash fails the whole batch: nothing is deleted.
//!
//! A message that is not deleted stays in flight and comes back after the queue's visibility
//! timeout, its `ApproximateReceiveCount` one higher; after the redrive policy's
//! `maxReceiveCount` SQS moves it to the dead-letter queue. The player never shortens a
//! visibility timeout: tests give the queue a short one.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::lambda::{Invocation, LambdaFunction, Outcome};
use crate::pubsub::{self, Message, Queue};

/// Lambda's default batch size for SQS.
pub const DEFAULT_BATCH_SIZE: i32 = 10;

/// What one invocation did to its batch.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub invocation: Invocation,
    /// The batch, in the order of the event's records.
    pub messages: Vec<Message>,
    pub settlement: Settlement,
}

/// Which messages of a batch are deleted and which stay for a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub deleted: Vec<String>,
    pub retried: Vec<String>,
}

/// The mapping from one queue to one function.
#[derive(Debug, Clone)]
pub struct SqsEventSource {
    sqs: aws_sdk_sqs::Client,
    queue: Queue,
    batch_size: i32,
}

impl SqsEventSource {
    /// A mapping with Lambda's default batch size (10).
    pub fn new(sqs: aws_sdk_sqs::Client, queue: Queue) -> SqsEventSource {
        SqsEventSource { sqs, queue, batch_size: DEFAULT_BATCH_SIZE }
    }

    /// Messages per invocation (1 to 10, what one ReceiveMessage gives).
    pub fn batch_size(mut self, batch_size: i32) -> SqsEventSource {
        self.batch_size = batch_size.clamp(1, 10);
        self
    }

    /// The queue it reads.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Receives one batch and, if there is one, invokes `function` with it (giving it `timeout`)
    /// and deletes what succeeded. `None` when no message is visible.
    pub async fn deliver_once(
        &self,
        function: &mut LambdaFunction,
        timeout: Duration,
    ) -> Result<Option<Delivery>, Error> {
        let messages = pubsub::receive(&self.sqs, &self.queue, self.batch_size).await?;
        if messages.is_empty() {
            return Ok(None);
        }
        let event = sqs_event(&self.queue.arn, &messages);
        let invocation = function.invoke(event, timeout).await?;
        let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
        let settlement = settle(&invocation.outcome, &ids);
        let deleted: Vec<&Message> =
            messages.iter().filter(|m| settlement.deleted.contains(&m.message_id)).collect();
        pubsub::delete(&self.sqs, &self.queue, &deleted).await?;
        Ok(Some(Delivery { invocation, messages, settlement }))
    }

    /// Delivers batches until the queue is empty (nothing visible, nothing in flight) or
    /// `patience` has passed; retried messages are waited for through their visibility timeout.
    /// Every delivery, in order.
    pub async fn drain(
        &self,
        function: &mut LambdaFunction,
        timeout: Duration,
        patience: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        let started = Instant::now();
        let mut deliveries = Vec::new();
        loop {
            if let Some(delivery) = self.deliver_once(function, timeout).await? {
                deliveries.push(delivery);
                continue;
            }
            if pubsub::queue_depth(&self.sqs, &self.queue).await? == (0, 0)
                || started.elapsed() >= patience
            {
                return Ok(deliveries);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The event Lambda sends for `messages` received from the queue `queue_arn`.
pub fn sqs_event(queue_arn: &str, messages: &[Message]) -> Value {
    let region = queue_arn.split(':').nth(3).unwrap_or(crate::aws::REGION);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let message_attributes: serde_json::Map<String, Value> = m
                .message_attributes
                .iter()
                .map(|(name, (data_type, value))| {
                    let attribute = json!({
                        "stringValue": value,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": data_type,
                    });
                    (name.clone(), attribute)
                })
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": m.attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// Lambda's reading of an outcome for a batch of `message_ids` (ReportBatchItemFailures).
pub fn settle(outcome: &Outcome, message_ids: &[&str]) -> Settlement {
    let all = |retry: bool| {
        let ids = message_ids.iter().map(|id| (*id).to_owned()).collect();
        if retry {
            Settlement { deleted: Vec::new(), retried: ids }
        } else {
            Settlement { deleted: ids, retried: Vec::new() }
        }
    };
    let Outcome::Response(body) = outcome else {
        return all(true);
    };
    let failures = match body.get("batchItemFailures") {
        None | Some(Value::Null) => return all(false),
        Some(Value::Array(failures)) => failures,
        Some(_) => return all(true),
    };
    let known: BTreeSet<&str> = message_ids.iter().copied().collect();
    let mut failed = BTreeSet::new();
    for failure in failures {
        match failure.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if known.contains(id) => {
                failed.insert(id);
            }
            // An empty, missing or unknown identifier: Lambda fails the whole batch.
            _ => return all(true),
        }
    }
    let (retried, deleted): (Vec<&str>, Vec<&str>) =
        message_ids.iter().partition(|id| failed.contains(**id));
    Settlement {
        deleted: deleted.into_iter().map(str::to_owned).collect(),
        retried: retried.into_iter().map(str::to_owned).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const IDS: [&str; 3] = ["m1", "m2", "m3"];

    fn answered(body: Value) -> Outcome {
        Outcome::Response(body)
    }

    #[test]
    fn a_response_without_failures_deletes_the_batch() {
        // GIVEN the answers that report no failure
        for body in [json!({}), Value::Null, json!({"batchItemFailures": []})] {
            // WHEN Lambda reads them THEN every message is deleted
            let s = settle(&answered(body.clone()), &IDS);
            assert_eq!((s.deleted.len(), s.retried.len()), (3, 0), "{body}");
        }
    }

    #[test]
    fn listed_failures_are_retried_and_the_rest_deleted() {
        // GIVEN an answer listing m2
        let body = json!({"batchItemFailures": [{"itemIdentifier": "m2"}]});
        // WHEN Lambda reads it
        let s = settle(&answered(body), &IDS);
        // THEN m2 stays and m1, m3 go
        assert_eq!(s.deleted, vec!["m1", "m3"]);
        assert_eq!(s.retried, vec!["m2"]);
    }

    #[test]
    fn an_unknown_or_empty_identifier_fails_the_whole_batch() {
        // GIVEN failures naming no message of the batch
        for failure in
            [json!({"itemIdentifier": "other"}), json!({"itemIdentifier": ""}), json!({})]
        {
            let body = json!({"batchItemFailures": [failure]});
            // WHEN Lambda reads them THEN nothing is deleted
            let s = settle(&answered(body.clone()), &IDS);
            assert_eq!((s.deleted.len(), s.retried.len()), (0, 3), "{body}");
        }
    }

    #[test]
    fn errors_timeouts_and_crashes_fail_the_whole_batch() {
        // GIVEN each way an invocation can fail
        let failed = [
            Outcome::Error { error_type: "X".into(), error_message: String::new() },
            Outcome::Timeout,
            Outcome::Crashed { status: Some(1) },
        ];
        for outcome in failed {
            // WHEN Lambda reads it THEN nothing is deleted
            let s = settle(&outcome, &IDS);
            assert!(s.deleted.is_empty(), "{outcome:?}");
        }
    }

    #[test]
    fn the_event_has_lambdas_record_shape() {
        // GIVEN a received message with a message attribute
        let message = Message {
            message_id: "m1".into(),
            receipt_handle: "rh".into(),
            body: "{}".into(),
            attributes: BTreeMap::from([("ApproximateReceiveCount".into(), "2".into())]),
            message_attributes: BTreeMap::from([(
                "level".into(),
                ("String".into(), "high".into()),
            )]),
        };
        // WHEN the event is built
        let event = sqs_event("arn:aws:sqs:eu-west-1:123456789012:q", &[message]);
        // THEN its record carries the fields Lambda's SQS event has
        let r = &event["Records"][0];
        assert_eq!(r["messageId"], "m1");
        assert_eq!(r["receiptHandle"], "rh");
        assert_eq!(r["body"], "{}");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:eu-west-1:123456789012:q");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(r["messageAttributes"]["level"]["stringValue"], "high");
        assert_eq!(r["messageAttributes"]["level"]["dataType"], "String");
    }
}
