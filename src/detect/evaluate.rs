//! Evaluation of one activity object: NDJSON lines in, detection alerts and correlation entries
//! out.
//!
//! Lines are streamed (one parsed line at a time, whatever the object's size); only what matched
//! is kept: the alert of a detection rule, and for a correlation the compact [`Entry`] plus the
//! activity's raw JSON for the first few entries of each group (an alert carries at most
//! [`MAX_ACTIVITIES`] activities). A line whose `type` no rule can match is not parsed at all
//! ([`super::prefilter`]). rsigma's engine indexes the rules by their exact-match values,
//! so a line is only tried against the rules its `type` and other fields can match.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use jiff::Timestamp;
use rsigma_eval::JsonEvent;
use serde_json::Value;
use serde_json::value::RawValue;

use super::alert::{Alert, MAX_ACTIVITIES, Matched, correlation_alert_id};
use super::correlation::{Entry, Fired, group_json, value_hash};
use super::rules::{CorrelationKind, RuleSet};

/// Raw activities kept per correlation group while an object is evaluated.
const RAW_PER_GROUP: usize = 4 * MAX_ACTIVITIES;

/// A line of an object could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("reading {object_key}")]
    Read {
        object_key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{object_key} line {line} is not JSON")]
    Json {
        object_key: String,
        line: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("{object_key} line {line} has no {field}")]
    Activity { object_key: String, line: u64, field: &'static str },
}

/// The matched entries of one (correlation, group) and the raw activities kept for them.
#[derive(Debug, Default)]
pub struct Pending {
    pub group: Vec<Option<String>>,
    pub entries: Vec<Entry>,
    pub raws: HashMap<String, Box<RawValue>>,
}

/// Correlation entries by (correlation index, group JSON).
pub type PendingGroups = BTreeMap<(usize, String), Pending>;

/// What evaluating one or more objects found.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Alerts of detection rules, in line order.
    pub alerts: Vec<Alert>,
    pub pending: PendingGroups,
    pub activities: u64,
}

/// The value at a field path: the flat key if present, else the dotted path into nested objects.
pub fn field<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(v) = event.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(event, |v, part| v.get(part))
}

/// A field's value as text for grouping and counting (strings bare, others as JSON; null absent).
fn field_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl RuleSet {
    /// The ids of every detection rule `event` matches, including those that only feed a
    /// correlation (what a rule's own test cases count).
    pub fn matching_rule_ids(&self, event: &Value) -> Vec<String> {
        self.engine
            .evaluate(&JsonEvent::borrow(event))
            .into_iter()
            .filter_map(|result| result.header.rule_id.clone())
            .collect()
    }

    /// Evaluates every line of `reader` (the object `object_key`), adding to `into`. Lines are
    /// taken from the reader's own buffer where they lie whole in it (all of them, for an object
    /// decompressed whole), and copied only when one straddles two reads.
    pub fn evaluate_object(
        &self,
        object_key: &str,
        mut reader: impl BufRead,
        into: &mut Evaluation,
    ) -> Result<(), EvaluateError> {
        let read_error = |source| EvaluateError::Read { object_key: object_key.to_owned(), source };
        let mut partial = Vec::new();
        let mut number = 0u64;
        loop {
            let buf = match reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            if buf.is_empty() {
                if !partial.is_empty() {
                    number += 1;
                    self.evaluate_text(object_key, number, &partial, into)?;
                }
                return Ok(());
            }
            let mut used = 0;
            while let Some(end) = memchr::memchr(b'\n', &buf[used..]) {
                number += 1;
                let line = &buf[used..used + end];
                if partial.is_empty() {
                    self.evaluate_text(object_key, number, line, into)?;
                } else {
                    partial.extend_from_slice(line);
                    self.evaluate_text(object_key, number, &partial, into)?;
                    partial.clear();
                }
                used += end + 1;
            }
            partial.extend_from_slice(&buf[used..]);
            let consumed = buf.len();
            reader.consume(consumed);
        }
    }

    /// One line, blank ones skipped.
    fn evaluate_text(
        &self,
        object_key: &str,
        number: u64,
        line: &[u8],
        into: &mut Evaluation,
    ) -> Result<(), EvaluateError> {
        let text = line.trim_ascii();
        if text.is_empty() {
            return Ok(());
        }
        self.evaluate_line(object_key, number, text, into)
    }

    fn evaluate_line(
        &self,
        object_key: &str,
        number: u64,
        text: &[u8],
        into: &mut Evaluation,
    ) -> Result<(), EvaluateError> {
        let json_error = |source| EvaluateError::Json {
            object_key: object_key.to_owned(),
            line: number,
            source,
        };
        if !self.may_match(text) {
            // Its type is one no rule is about: counted, not parsed (so not checked as JSON
            // either: the collector wrote it from a page it parsed).
            into.activities += 1;
            return Ok(());
        }
        let event: Value = serde_json::from_slice(text).map_err(json_error)?;
        into.activities += 1;
        let results = self.engine.evaluate(&JsonEvent::borrow(&event));
        if results.is_empty() {
            return Ok(());
        }
        let missing = |field| EvaluateError::Activity {
            object_key: object_key.to_owned(),
            line: number,
            field,
        };
        let id = event.get("id").and_then(Value::as_str).ok_or_else(|| missing("id"))?;
        let created_at =
            event.get("created_at").and_then(Value::as_str).ok_or_else(|| missing("created_at"))?;
        let at: Timestamp = created_at.parse().map_err(|_| missing("valid created_at"))?;
        // The bytes as served, borrowed from the line (an alert copies them).
        let raw: &RawValue = serde_json::from_slice(text).map_err(json_error)?;
        let activity = Matched { id, created_at, at, raw };
        for result in results {
            let Some(route) = result.header.rule_id.as_deref().and_then(|id| self.routes.get(id))
            else {
                continue;
            };
            if route.alerts
                && let Some(meta) = route.meta.map(|i| &self.metas[i])
            {
                into.alerts.push(Alert::detection(meta, &activity, object_key));
            }
            for &(index, member) in &route.feeds {
                let correlation = &self.correlations[index];
                let group: Vec<Option<String>> = correlation
                    .group_by
                    .iter()
                    .map(|path| field_text(field(&event, path)))
                    .collect();
                let value = match &correlation.kind {
                    CorrelationKind::ValueCount { field: path } => {
                        match field_text(field(&event, path)) {
                            Some(v) => Some(value_hash(&v)),
                            None => continue, // no value to count
                        }
                    }
                    _ => None,
                };
                let pending = into.pending.entry((index, group_json(&group))).or_default();
                pending.group = group;
                pending.entries.push(Entry {
                    id: id.to_owned(),
                    created_at: created_at.to_owned(),
                    at: at.as_second(),
                    member: u16::try_from(member).unwrap_or(u16::MAX),
                    value,
                    object_key: object_key.to_owned(),
                    consumed: false,
                });
                if pending.raws.len() < RAW_PER_GROUP {
                    pending.raws.entry(id.to_owned()).or_insert_with(|| raw.to_owned());
                }
            }
        }
        Ok(())
    }

    /// The alert of a fired correlation window of the group `pending`.
    pub fn correlation_alert(&self, index: usize, pending: &Pending, fired: &Fired) -> Alert {
        let correlation = &self.correlations[index];
        let group_text = group_json(&pending.group);
        let mut ids: Vec<String> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for e in &fired.entries {
            if !ids.contains(&e.id) {
                ids.push(e.id.clone());
            }
            if !keys.contains(&e.object_key) {
                keys.push(e.object_key.clone());
            }
        }
        let activities = ids
            .iter()
            .filter_map(|id| pending.raws.get(id).cloned())
            .take(MAX_ACTIVITIES)
            .collect();
        let group = correlation
            .group_by
            .iter()
            .zip(&pending.group)
            .map(|(name, v)| (name.clone(), v.clone().map_or(Value::Null, Value::String)))
            .collect();
        let first = fired.entries.first();
        let last = fired.entries.last();
        Alert {
            alert_id: correlation_alert_id(&correlation.meta.id, &group_text, &fired.window()),
            rule: (&correlation.meta).into(),
            activity_ids: ids,
            activities,
            group: Some(group),
            count: fired.count,
            first_seen: first.map(|e| e.created_at.clone()).unwrap_or_default(),
            last_seen: last.map(|e| e.created_at.clone()).unwrap_or_default(),
            object_keys: keys,
            last_seen_at: last
                .and_then(|e| e.created_at.parse().ok())
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::RuleSource;

    const RULES: &str = include_str!("../../tests/fixtures/rules/sample.yml");

    fn rules() -> RuleSet {
        let (set, errors) =
            RuleSet::load([RuleSource { pack: "custom", file: "sample.yml", yaml: RULES }]);
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    fn line(id: &str, ty: &str, email: &str) -> String {
        format!(
            r#"{{"id":"{id}","created_at":"2026-03-07T09:41:0{}Z","type":"{ty}","actor":{{"type":"user_actor","email_address":"{email}"}}}}"#,
            id.len() % 10
        )
    }

    #[test]
    fn a_matching_line_gives_an_alert_with_the_activity_as_served() {
        // GIVEN an object with one admin key creation and one harmless activity
        let text = format!(
            "{}\n{}\n",
            line("a1", "admin_api_key_created", "x@y"),
            line("a2", "chat_created", "x@y")
        );
        let mut out = Evaluation::default();
        // WHEN it is evaluated
        rules().evaluate_object("p/a.json.gz", text.as_bytes(), &mut out).unwrap();
        // THEN exactly the creation alerts, carrying its raw line
        assert_eq!(out.activities, 2);
        assert_eq!(out.alerts.len(), 1);
        assert_eq!(out.alerts[0].activity_ids, ["a1"]);
        assert_eq!(out.alerts[0].activities[0].get(), line("a1", "admin_api_key_created", "x@y"));
    }

    #[test]
    fn nested_fields_group_correlation_entries() {
        // GIVEN failed sign-ins by two users
        let text = [
            line("f1", "sso_login_failed", "a@x"),
            line("f2", "sso_login_failed", "b@x"),
            line("f3", "sso_login_failed", "a@x"),
        ]
        .join("\n");
        let mut out = Evaluation::default();
        // WHEN evaluated
        rules().evaluate_object("k", text.as_bytes(), &mut out).unwrap();
        // THEN the entries are grouped by actor.email_address and the base rule raises nothing
        assert!(out.alerts.is_empty());
        let groups: Vec<_> =
            out.pending.values().map(|p| (p.group.clone(), p.entries.len())).collect();
        assert_eq!(groups, [(vec![Some("a@x".to_owned())], 2), (vec![Some("b@x".to_owned())], 1)]);
    }

    #[test]
    fn lines_that_straddle_reads_are_evaluated_as_whole_ones() {
        // GIVEN an object with blank lines and no final newline, read whole and 7 bytes at a time
        let text = format!(
            "{}\n\n{}\n{}",
            line("a1", "admin_api_key_created", "x@y"),
            line("a2", "chat_created", "x@y"),
            line("a3", "admin_api_key_created", "z@y")
        );
        let (mut whole, mut pieces) = (Evaluation::default(), Evaluation::default());
        rules().evaluate_object("k", text.as_bytes(), &mut whole).unwrap();
        let small = std::io::BufReader::with_capacity(7, text.as_bytes());
        rules().evaluate_object("k", small, &mut pieces).unwrap();
        // THEN the same activities and alerts, each carrying its line whole
        for out in [&whole, &pieces] {
            assert_eq!(out.activities, 3);
            let ids: Vec<&str> = out.alerts.iter().map(|a| a.activity_ids[0].as_str()).collect();
            assert_eq!(ids, ["a1", "a3"]);
            assert_eq!(
                out.alerts[1].activities[0].get(),
                line("a3", "admin_api_key_created", "z@y")
            );
        }
        // AND a broken line is still named by its number, blank lines counted
        let broken = format!("{}\n\n{{\"id\":", line("a1", "chat_created", "x@y"));
        let small = std::io::BufReader::with_capacity(5, broken.as_bytes());
        let e = rules().evaluate_object("k", small, &mut Evaluation::default());
        assert!(matches!(e, Err(EvaluateError::Json { line: 3, .. })), "{e:?}");
    }

    #[test]
    fn a_line_that_is_not_json_names_the_object_and_line() {
        // GIVEN a second line that is broken
        let text = format!("{}\n{{\"id\":\n", line("a1", "chat_created", "x@y"));
        // WHEN evaluated THEN the error says where
        let e = rules().evaluate_object("p/b.json.gz", text.as_bytes(), &mut Evaluation::default());
        assert!(
            matches!(e, Err(EvaluateError::Json { line: 2, ref object_key, .. }) if object_key == "p/b.json.gz")
        );
    }

    #[test]
    fn dotted_paths_reach_nested_fields_and_flat_keys_win() {
        // GIVEN a nested and a flat field THEN both are found
        let v: Value =
            serde_json::json!({"actor": {"email_address": "n@x"}, "a.b": 1, "a": {"b": 2}});
        assert_eq!(field(&v, "actor.email_address"), Some(&Value::from("n@x")));
        assert_eq!(field(&v, "a.b"), Some(&Value::from(1)));
        assert_eq!(field(&v, "actor.nope"), None);
    }
}
