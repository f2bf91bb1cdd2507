//! Signals read from the activities themselves, beyond delivering them.
//!
//! - The canary: every call the collector makes is recorded by the API as a
//!   `compliance_api_accessed` activity carrying the call's `request_id`. Finding a run's own calls
//!   in a later run's pages is end-to-end evidence that the feed is complete; not finding them
//!   (after the watermark passed them) raises `CanaryMissing`.
//! - Tamper: an `org_compliance_api_settings_updated` activity that switches the Compliance API
//!   or its logging off opens a gap that can never be recovered (`ComplianceLoggingDisabled`).
//!
//! Both look at the raw text first, so the parse costs nothing for other activities.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::Value;

pub const CANARY_TYPE: &str = "compliance_api_accessed";
pub const SETTINGS_TYPE: &str = "org_compliance_api_settings_updated";

// Every activity's text is searched for both names: searchers built once, SIMD-accelerated.
static CANARY_NAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(CANARY_TYPE));
static SETTINGS_NAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(SETTINGS_TYPE));

/// The `request_id` of a `compliance_api_accessed` activity.
pub fn canary_request_id(raw: &[u8]) -> Option<String> {
    CANARY_NAME.find(raw)?;
    #[derive(Deserialize)]
    struct Accessed {
        #[serde(rename = "type")]
        kind: String,
        request_id: Option<String>,
    }
    let a: Accessed = serde_json::from_slice(raw).ok()?;
    (a.kind == CANARY_TYPE).then_some(a.request_id).flatten()
}

/// Whether an activity records the Compliance API (or its logging) being switched off: a settings
/// update in which a field whose name says "enabled" (or "logging") becomes `false`, directly or as
/// the `new_value` of a change record.
pub fn disables_compliance_logging(raw: &[u8]) -> bool {
    if SETTINGS_NAME.find(raw).is_none() {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<Value>(raw) else { return false };
    value.get("type").and_then(Value::as_str) == Some(SETTINGS_TYPE) && switches_off(&value)
}

fn switches_off(value: &Value) -> bool {
    let about_logging = |name: &str| {
        let name = name.to_ascii_lowercase();
        name.contains("enabled") || name.contains("logging")
    };
    match value {
        Value::Object(map) => {
            let named_change = ["field", "name", "setting", "key"]
                .iter()
                .filter_map(|k| map.get(*k).and_then(Value::as_str))
                .any(about_logging);
            if named_change && map.get("new_value") == Some(&Value::Bool(false)) {
                return true;
            }
            map.iter()
                .any(|(k, v)| (about_logging(k) && *v == Value::Bool(false)) || switches_off(v))
        }
        Value::Array(items) => items.iter().any(switches_off),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_request_id_of_its_own_calls_only() {
        let own = r#"{"id":"activity_1","type":"compliance_api_accessed","request_id":"req_9","organization_id":null}"#;
        assert_eq!(canary_request_id(own.as_bytes()).as_deref(), Some("req_9"));
        let other =
            r#"{"id":"activity_2","type":"claude_chat_created","note":"compliance_api_accessed"}"#;
        assert_eq!(canary_request_id(other.as_bytes()), None);
    }

    #[test]
    fn recognises_the_compliance_api_being_switched_off() {
        for raw in [
            r#"{"id":"a","type":"org_compliance_api_settings_updated","updates":[{"field":"compliance_api_enabled","old_value":true,"new_value":false}]}"#,
            r#"{"id":"a","type":"org_compliance_api_settings_updated","settings":{"activity_logging_enabled":false}}"#,
        ] {
            assert!(disables_compliance_logging(raw.as_bytes()), "{raw}");
        }
        for raw in [
            r#"{"id":"a","type":"org_compliance_api_settings_updated","updates":[{"field":"compliance_api_enabled","old_value":false,"new_value":true}]}"#,
            r#"{"id":"a","type":"org_settings_updated","compliance_api_enabled":false}"#,
        ] {
            assert!(!disables_compliance_logging(raw.as_bytes()), "{raw}");
        }
    }
}
