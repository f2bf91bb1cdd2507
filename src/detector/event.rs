//! What the detector is invoked with (design.md, "Detections (contract)"):
//! - an SQS event whose record bodies are S3 event notifications (raw delivery) or SNS
//!   notifications wrapping one; S3's test event is ignored;
//! - `{"action": "hunt", "from", "to"}`: the packs over a past range of the archive.
//!
//! S3 event keys are URL-encoded (`year%3D2026/…`, `+` for a space): they are decoded here, so
//! every other part of the detector sees the object's real key.

use jiff::Timestamp;
use serde_json::Value;

/// One object an S3 notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// One SQS message: its id (what a batch failure names) and the objects it announces, or why
/// its body announces none (such a message fails, so it reaches the dead-letter queue and its
/// alarm rather than vanish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub objects: Result<Vec<ObjectRef>, BodyError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectorInvocation {
    Batch(Vec<Message>),
    Hunt { from: Timestamp, to: Timestamp },
}

/// A payload the detector cannot act on. A bad message inside a batch is not this: it fails
/// that message alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("unknown payload: expected an SQS event or {{\"action\": \"hunt\", \"from\", \"to\"}}")]
    Unknown,
    #[error("hunt: {0}")]
    Hunt(String),
}

/// A message body that is no S3 notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {message_id}: {reason}")]
pub struct BodyError {
    pub message_id: String,
    pub reason: String,
}

impl DetectorInvocation {
    pub fn from_payload(payload: &Value) -> Result<DetectorInvocation, EventError> {
        if payload.get("action").and_then(Value::as_str) == Some("hunt") {
            let time = |name: &str| -> Result<Timestamp, EventError> {
                let text = payload
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| EventError::Hunt(format!("{name:?} is required (RFC 3339)")))?;
                text.parse().map_err(|e| EventError::Hunt(format!("{name:?}: {e}")))
            };
            let (from, to) = (time("from")?, time("to")?);
            if from >= to {
                return Err(EventError::Hunt(format!("from {from} is not before to {to}")));
            }
            return Ok(DetectorInvocation::Hunt { from, to });
        }
        let records =
            payload.get("Records").and_then(Value::as_array).ok_or(EventError::Unknown)?;
        let mut messages = Vec::new();
        for record in records {
            match record.get("eventSource").and_then(Value::as_str) {
                Some("aws:sqs") => {
                    let id = record.get("messageId").and_then(Value::as_str).unwrap_or_default();
                    let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
                    messages.push((id.to_owned(), body.to_owned()));
                }
                // An S3 notification invoking the function directly (by hand): one message.
                Some("aws:s3") => {
                    messages.push((String::new(), payload.to_string()));
                    break;
                }
                _ => return Err(EventError::Unknown),
            }
        }
        Ok(DetectorInvocation::Batch(
            messages
                .into_iter()
                .map(|(message_id, body)| {
                    let objects = objects_of_body(&message_id, &body);
                    Message { message_id, objects }
                })
                .collect(),
        ))
    }
}

/// The objects one message body announces: an S3 notification, raw or inside an SNS one.
/// An S3 test event announces none.
pub fn objects_of_body(message_id: &str, body: &str) -> Result<Vec<ObjectRef>, BodyError> {
    let fail =
        |reason: &str| BodyError { message_id: message_id.to_owned(), reason: reason.to_owned() };
    let value: Value = serde_json::from_str(body).map_err(|_| fail("the body is not JSON"))?;
    let value = match value.get("Type").and_then(Value::as_str) {
        Some("Notification") => {
            let inner = value
                .get("Message")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("an SNS notification without Message"))?;
            serde_json::from_str(inner).map_err(|_| fail("the SNS message is not JSON"))?
        }
        _ => value,
    };
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let records =
        value.get("Records").and_then(Value::as_array).ok_or_else(|| fail("no S3 Records"))?;
    let mut objects = Vec::new();
    for record in records {
        let name = record.get("eventName").and_then(Value::as_str).unwrap_or_default();
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let s3 = record.get("s3").ok_or_else(|| fail("an S3 record without s3"))?;
        let bucket = s3.pointer("/bucket/name").and_then(Value::as_str);
        let key = s3.pointer("/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(fail("an S3 record without bucket name or object key"));
        };
        objects.push(ObjectRef { bucket: bucket.to_owned(), key: decode_key(key) });
    }
    Ok(objects)
}

/// An S3 event key as the object's key: `+` is a space, `%XX` a byte.
pub fn decode_key(encoded: &str) -> String {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn s3_event(key: &str) -> Value {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 10}}}]})
    }

    fn sqs(bodies: &[String]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(
                |(i, b)| json!({"eventSource": "aws:sqs", "messageId": format!("m{i}"), "body": b}),
            )
            .collect();
        json!({ "Records": records })
    }

    #[test]
    fn raw_and_sns_wrapped_notifications_name_the_decoded_key() {
        // GIVEN one raw S3 notification and one inside an SNS notification
        let raw = s3_event("p/year%3D2026/a+b.json.gz").to_string();
        let wrapped = json!({"Type": "Notification", "Message": raw.clone()}).to_string();
        // WHEN the SQS event is read
        let DetectorInvocation::Batch(messages) =
            DetectorInvocation::from_payload(&sqs(&[raw, wrapped])).unwrap()
        else {
            panic!("a batch")
        };
        // THEN both name the object by its real key
        for (m, id) in messages.iter().zip(["m0", "m1"]) {
            assert_eq!(m.message_id, id);
            assert_eq!(
                m.objects,
                Ok(vec![ObjectRef { bucket: "b".into(), key: "p/year=2026/a b.json.gz".into() }])
            );
        }
    }

    #[test]
    fn the_s3_test_event_and_other_events_announce_nothing() {
        // GIVEN S3's test event and a delete
        let test =
            json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}).to_string();
        let mut delete = s3_event("k");
        delete["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
        // THEN neither names an object, and neither is an error
        assert_eq!(objects_of_body("m", &test), Ok(Vec::new()));
        assert_eq!(objects_of_body("m", &delete.to_string()), Ok(Vec::new()));
        // AND a body that is not JSON is an error naming the message
        assert_eq!(objects_of_body("m9", "nope").unwrap_err().message_id, "m9");
    }

    #[test]
    fn every_detector_event_in_events_is_understood() {
        // GIVEN events/detector-*.json (what a user invokes the deployed detector with)
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.file_name().unwrap().to_string_lossy().starts_with("detector-") {
                continue;
            }
            let payload: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            // THEN each is a hunt or a batch whose every message is read
            match DetectorInvocation::from_payload(&payload) {
                Ok(DetectorInvocation::Hunt { .. }) => {}
                Ok(DetectorInvocation::Batch(messages)) => {
                    assert!(messages.iter().all(|m| m.objects.is_ok()), "{}", path.display())
                }
                Err(e) => panic!("{}: {e}", path.display()),
            }
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn a_hunt_needs_an_ordered_range() {
        // GIVEN a hunt, one without to, one backwards
        let ok =
            json!({"action": "hunt", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"});
        assert!(matches!(
            DetectorInvocation::from_payload(&ok),
            Ok(DetectorInvocation::Hunt { .. })
        ));
        let no_to = json!({"action": "hunt", "from": "2026-01-01T00:00:00Z"});
        assert!(matches!(DetectorInvocation::from_payload(&no_to), Err(EventError::Hunt(_))));
        let backwards =
            json!({"action": "hunt", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"});
        assert!(matches!(DetectorInvocation::from_payload(&backwards), Err(EventError::Hunt(_))));
        // AND anything else is refused
        assert_eq!(DetectorInvocation::from_payload(&json!({"x": 1})), Err(EventError::Unknown));
    }
}
