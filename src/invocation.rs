//! What an invocation asks for, from its JSON payload.
//!
//! | payload | meaning |
//! |---|---|
//! | `{}`, the classic EventBridge "Scheduled Event", `{"action": "collect"}` (the stack's Scheduler input, passed as is) | a scheduled run |
//! | `{"action": "verify"}` | check every dependency, change nothing |
//! | `{"action": "backfill", "from": RFC3339, "to": RFC3339}`, optional `"redeliver": true` | collect a past range, resumably, apart from the live state |
//! | `"dry_run": true` with any of them | fetch and count, write nothing |
//!
//! Anything else, an unknown field included, is refused with a message naming what is accepted,
//! before any I/O.

use jiff::Timestamp;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Collect what is new: the scheduled run.
    Collect,
    /// Check the secret, the key and its scope, the bucket, the table and the metrics.
    Verify,
    /// Collect `[from, to)`; with `redeliver`, again into objects of its own.
    Backfill { from: Timestamp, to: Timestamp, redeliver: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub action: Action,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvocationError {
    #[error(
        "the payload must be a JSON object such as {{}} or {{\"action\": \"collect\"}}, got {0}"
    )]
    NotAnObject(&'static str),
    #[error("\"{0}\" must be a {1}")]
    WrongType(&'static str, &'static str),
    #[error("unknown action {0:?}; accepted: \"collect\" (or none), \"verify\", \"backfill\"")]
    UnknownAction(String),
    #[error("a backfill needs \"{0}\" as an RFC 3339 time, e.g. \"2026-01-01T00:00:00Z\"")]
    MissingBound(&'static str),
    #[error("\"{field}\" is not an RFC 3339 time: {value:?}")]
    BadTime { field: &'static str, value: String },
    #[error(
        "a backfill ends where the scheduled collection began, and it has not run yet: invoke {{\"action\": \"collect\"}} once first (or add \"redeliver\": true)"
    )]
    BackfillBeforeLive,
    #[error("the backfill range holds nothing to collect")]
    EmptyBackfill,
    #[error("a backfill's \"from\" ({from}) must be before its \"to\" ({to})")]
    EmptyRange { from: Timestamp, to: Timestamp },
    #[error(
        "the backfill from {} to {} overlaps the backfill from {} to {}, made or under way: ask for the part outside it (or that same range, to resume it), or add \"redeliver\": true to deliver the range again on purpose",
        asked.0, asked.1, other.0, other.1
    )]
    BackfillOverlaps { asked: (Timestamp, Timestamp), other: (Timestamp, Timestamp) },
    #[error("unknown field {field:?}; accepted here: {accepted}")]
    UnknownField { field: String, accepted: &'static str },
}

impl Invocation {
    pub fn from_payload(payload: &Value) -> Result<Invocation, InvocationError> {
        let empty = Map::new();
        let object = match payload {
            Value::Object(o) => o,
            Value::Null => &empty,
            Value::Bool(_) => return Err(InvocationError::NotAnObject("a boolean")),
            Value::Number(_) => return Err(InvocationError::NotAnObject("a number")),
            Value::String(_) => return Err(InvocationError::NotAnObject("a string")),
            Value::Array(_) => return Err(InvocationError::NotAnObject("an array")),
        };
        let dry_run = flag(object, "dry_run")?;
        let action = match object.get("action") {
            None => Action::Collect,
            Some(Value::String(a)) => match a.as_str() {
                "collect" => Action::Collect,
                "verify" => Action::Verify,
                "backfill" => {
                    let from = time(object, "from")?;
                    let to = time(object, "to")?;
                    if from >= to {
                        return Err(InvocationError::EmptyRange { from, to });
                    }
                    Action::Backfill { from, to, redeliver: flag(object, "redeliver")? }
                }
                other => return Err(InvocationError::UnknownAction(other.to_owned())),
            },
            Some(_) => return Err(InvocationError::WrongType("action", "string")),
        };
        // A misspelt option must not go unnoticed: `{"dryRun": true}` would collect for real.
        // EventBridge's own envelope (the classic scheduled event) carries fields of its own.
        let envelope = object.contains_key("detail-type") || object.contains_key("source");
        if !envelope {
            let (fields, accepted): (&[&str], _) = match action {
                Action::Backfill { .. } => (
                    &["action", "dry_run", "from", "to", "redeliver"],
                    "action, dry_run, from, to, redeliver",
                ),
                Action::Collect | Action::Verify => (&["action", "dry_run"], "action, dry_run"),
            };
            if let Some(field) = object.keys().find(|k| !fields.contains(&k.as_str())) {
                return Err(InvocationError::UnknownField { field: field.clone(), accepted });
            }
        }
        Ok(Invocation { action, dry_run })
    }
}

fn flag(object: &Map<String, Value>, field: &'static str) -> Result<bool, InvocationError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(InvocationError::WrongType(field, "boolean")),
    }
}

fn time(object: &Map<String, Value>, field: &'static str) -> Result<Timestamp, InvocationError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(InvocationError::MissingBound(field)),
        Some(Value::String(s)) => {
            s.parse().map_err(|_| InvocationError::BadTime { field, value: s.clone() })
        }
        Some(_) => Err(InvocationError::WrongType(field, "string (RFC 3339)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collect() -> Invocation {
        Invocation { action: Action::Collect, dry_run: false }
    }

    #[test]
    fn scheduled_shapes_all_collect() {
        let classic = json!({
            "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
            "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
            "time": "2026-11-26T08:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}
        });
        for payload in [json!({}), classic, json!({"action": "collect"}), Value::Null] {
            assert_eq!(Invocation::from_payload(&payload), Ok(collect()), "{payload}");
        }
    }

    #[test]
    fn verify_backfill_and_dry_run() {
        assert_eq!(
            Invocation::from_payload(&json!({"action": "verify"})).unwrap().action,
            Action::Verify
        );
        let b = Invocation::from_payload(&json!({
            "action": "backfill", "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z",
            "redeliver": true, "dry_run": true
        }))
        .unwrap();
        assert!(b.dry_run);
        assert!(matches!(b.action, Action::Backfill { redeliver: true, .. }));
    }

    #[test]
    fn every_file_in_events_is_an_accepted_payload() {
        // events/detector-*.json are the detector's (checked in detector::event).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with("detector-") {
                continue;
            }
            let payload: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert!(Invocation::from_payload(&payload).is_ok(), "{}", path.display());
            n += 1;
        }
        assert!(n >= 3);
    }

    #[test]
    fn wrong_shapes_are_named() {
        assert_eq!(
            Invocation::from_payload(&json!([1])),
            Err(InvocationError::NotAnObject("an array"))
        );
        assert_eq!(
            Invocation::from_payload(&json!({"action": 3})),
            Err(InvocationError::WrongType("action", "string"))
        );
        assert_eq!(
            Invocation::from_payload(&json!({"action": "purge"})),
            Err(InvocationError::UnknownAction("purge".into()))
        );
        assert_eq!(
            Invocation::from_payload(
                &json!({"action": "backfill", "from": "2026-01-01T00:00:00Z"})
            ),
            Err(InvocationError::MissingBound("to"))
        );
        assert!(matches!(
            Invocation::from_payload(
                &json!({"action": "backfill", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
            ),
            Err(InvocationError::EmptyRange { .. })
        ));
        assert_eq!(
            Invocation::from_payload(&json!({"dry_run": "yes"})),
            Err(InvocationError::WrongType("dry_run", "boolean"))
        );
    }

    #[test]
    fn a_misspelt_or_misplaced_option_is_refused_not_ignored() {
        // A typo of dry_run would otherwise run a real collection that writes.
        assert_eq!(
            Invocation::from_payload(&json!({"dryRun": true})),
            Err(InvocationError::UnknownField {
                field: "dryRun".into(),
                accepted: "action, dry_run"
            })
        );
        assert!(matches!(
            Invocation::from_payload(&json!({"action": "collect", "from": "2026-01-01T00:00:00Z"})),
            Err(InvocationError::UnknownField { field, .. }) if field == "from"
        ));
        assert!(matches!(
            Invocation::from_payload(&json!({
                "action": "backfill", "from": "2026-01-01T00:00:00Z",
                "to": "2026-02-01T00:00:00Z", "re_deliver": true
            })),
            Err(InvocationError::UnknownField { field, .. }) if field == "re_deliver"
        ));
    }
}
