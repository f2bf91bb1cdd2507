//! The alert: one match of one rule, the JSON of the SNS message, of a findings line and of an
//! `evaluate` output line (design.md, "Detections (contract)").
//!
//! `alert_id` is a pure function of what matched, never of when or how often it was seen: the rule
//! id and the activity id for a detection, the rule id, the group and the window's first activity
//! for a correlation. A redelivered object therefore gives the same ids, which is what lets the
//! state table publish each alert once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::rules::RuleMeta;

/// At most this many matched activities ride in one alert (ids are all listed).
pub const MAX_ACTIVITIES: usize = 10;

/// The rule part of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRule {
    pub id: String,
    pub title: String,
    pub level: &'static str,
    pub pack: String,
    pub tags: Vec<String>,
}

impl From<&RuleMeta> for AlertRule {
    fn from(meta: &RuleMeta) -> AlertRule {
        AlertRule {
            id: meta.id.clone(),
            title: meta.title.clone(),
            level: meta.level,
            pack: meta.pack.clone(),
            tags: meta.tags.clone(),
        }
    }
}

/// One alert, as published and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub alert_id: String,
    pub rule: AlertRule,
    pub activity_ids: Vec<String>,
    /// The matched activities exactly as the API served them.
    pub activities: Vec<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<BTreeMap<String, Value>>,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub object_keys: Vec<String>,
    /// `last_seen` as a time, for the age check (not serialised: `last_seen` says it).
    #[serde(skip)]
    pub last_seen_at: Timestamp,
}

/// A matched activity: its id, its `created_at` (as served and parsed) and its raw JSON.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    pub id: &'a str,
    pub created_at: &'a str,
    pub at: Timestamp,
    pub raw: &'a RawValue,
}

impl Alert {
    /// The alert of a detection rule on one activity.
    pub fn detection(meta: &RuleMeta, activity: &Matched<'_>, object_key: &str) -> Alert {
        Alert {
            alert_id: detection_alert_id(&meta.id, activity.id),
            rule: AlertRule::from(meta),
            activity_ids: vec![activity.id.to_owned()],
            activities: vec![activity.raw.to_owned()],
            group: None,
            count: 1,
            first_seen: activity.created_at.to_owned(),
            last_seen: activity.created_at.to_owned(),
            object_keys: vec![object_key.to_owned()],
            last_seen_at: activity.at,
        }
    }

    /// The JSON text of the alert (the SNS message, one findings or `evaluate` line).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// `alert_id` of a detection: 32 hex digits of SHA-256 over the rule id and the activity id.
pub fn detection_alert_id(rule_id: &str, activity_id: &str) -> String {
    digest(&[b"detection", rule_id.as_bytes(), activity_id.as_bytes()])
}

/// `alert_id` of a correlation: over the rule id, the group (canonical JSON) and the window.
pub fn correlation_alert_id(rule_id: &str, group: &str, window: &str) -> String {
    digest(&[b"correlation", rule_id.as_bytes(), group.as_bytes(), window.as_bytes()])
}

/// 32 hex digits of SHA-256 over the parts, each length-prefixed so no two splits collide.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let mut out = String::with_capacity(32);
    for byte in &hasher.finalize()[..16] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RuleMeta {
        RuleMeta {
            id: "rule-1".to_owned(),
            title: "Admin key created".to_owned(),
            level: "high",
            pack: "credentials".to_owned(),
            tags: vec!["attack.persistence".to_owned()],
            file: "credentials/admin_key.yml".to_owned(),
        }
    }

    #[test]
    fn a_detection_alert_carries_the_contract_fields() {
        // GIVEN one matched activity
        let raw = RawValue::from_string(
            r#"{"id":"act_1","created_at":"2026-03-07T09:41:05.123Z","type":"x"}"#.to_owned(),
        )
        .unwrap();
        let activity = Matched {
            id: "act_1",
            created_at: "2026-03-07T09:41:05.123Z",
            at: "2026-03-07T09:41:05.123Z".parse().unwrap(),
            raw: &raw,
        };
        // WHEN its alert is built and serialised
        let alert = Alert::detection(&meta(), &activity, "p/year=2026/a.json.gz");
        let json: Value = serde_json::from_str(&alert.to_json().unwrap()).unwrap();
        // THEN the fields are those of design.md and the activity is as served
        assert_eq!(json["alert_id"], detection_alert_id("rule-1", "act_1"));
        assert_eq!(json["rule"]["level"], "high");
        assert_eq!(json["rule"]["pack"], "credentials");
        assert_eq!(json["rule"]["tags"][0], "attack.persistence");
        assert_eq!(json["activity_ids"][0], "act_1");
        assert_eq!(json["activities"][0]["type"], "x");
        assert_eq!(json["count"], 1);
        assert_eq!(json["first_seen"], "2026-03-07T09:41:05.123Z");
        assert_eq!(json["last_seen"], "2026-03-07T09:41:05.123Z");
        assert_eq!(json["object_keys"][0], "p/year=2026/a.json.gz");
        assert!(json.get("group").is_none());
        assert!(json.get("last_seen_at").is_none());
    }

    #[test]
    fn alert_ids_depend_on_exactly_what_matched() {
        // GIVEN the same and different inputs THEN ids are equal exactly when the inputs are
        assert_eq!(detection_alert_id("r", "a"), detection_alert_id("r", "a"));
        assert_ne!(detection_alert_id("r", "a"), detection_alert_id("r", "b"));
        assert_ne!(detection_alert_id("ra", "b"), detection_alert_id("r", "ab"));
        assert_ne!(correlation_alert_id("r", "[\"x\"]", "w"), detection_alert_id("r", "w"));
        assert_eq!(detection_alert_id("r", "a").len(), 32);
    }
}
