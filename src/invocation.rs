//! What an invocation asks for, from its JSON payload.
//!
//! Accepted as a scheduled collection: `{}`, the classic EventBridge "Scheduled Event" envelope
//! (its fields are ignored), and what the stack's EventBridge Scheduler sends as its `Input`
//! (`{"action": "collect"}`, which Scheduler passes as is). Anything else is refused with a
//! message naming what is accepted, before any I/O.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Collect what is new: the scheduled run.
    Collect,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvocationError {
    #[error(
        "the payload must be a JSON object such as {{}} or {{\"action\": \"collect\"}}, got {0}"
    )]
    NotAnObject(&'static str),
    #[error("\"action\" must be a string, e.g. \"collect\"")]
    ActionNotAString,
    #[error("unknown action {0:?}; this version accepts \"collect\" (or no action)")]
    UnknownAction(String),
}

impl Invocation {
    pub fn from_payload(payload: &Value) -> Result<Invocation, InvocationError> {
        let object = match payload {
            Value::Object(o) => o,
            Value::Null => return Ok(Invocation::Collect),
            Value::Bool(_) => return Err(InvocationError::NotAnObject("a boolean")),
            Value::Number(_) => return Err(InvocationError::NotAnObject("a number")),
            Value::String(_) => return Err(InvocationError::NotAnObject("a string")),
            Value::Array(_) => return Err(InvocationError::NotAnObject("an array")),
        };
        match object.get("action") {
            None => Ok(Invocation::Collect),
            Some(Value::String(a)) if a == "collect" => Ok(Invocation::Collect),
            Some(Value::String(a)) => Err(InvocationError::UnknownAction(a.clone())),
            Some(_) => Err(InvocationError::ActionNotAString),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_shapes_all_collect() {
        let classic = json!({
            "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
            "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
            "time": "2026-11-26T08:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": {}
        });
        for payload in [
            json!({}),
            classic,
            json!({"action": "collect"}),
            Value::Null,
        ] {
            assert_eq!(
                Invocation::from_payload(&payload),
                Ok(Invocation::Collect),
                "{payload}"
            );
        }
    }

    #[test]
    fn wrong_shapes_are_named() {
        assert_eq!(
            Invocation::from_payload(&json!([1])),
            Err(InvocationError::NotAnObject("an array"))
        );
        assert_eq!(
            Invocation::from_payload(&json!({"action": 3})),
            Err(InvocationError::ActionNotAString)
        );
        assert_eq!(
            Invocation::from_payload(&json!({"action": "purge"})),
            Err(InvocationError::UnknownAction("purge".into()))
        );
    }
}
