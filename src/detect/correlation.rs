//! Correlation as a pure transition: one group's state plus newly matched events gives the next
//! state and the windows that fired. The caller keeps the state (the state table in AWS, a map in
//! `evaluate`), so a window spans objects and runs.
//!
//! Invariants: an (activity id, member rule) already in the state is never counted again, so
//! re-feeding a redelivered object changes nothing and fires nothing; a fired window's entries are
//! consumed (Sigma's reset-on-fire), so the same activities never fire the same correlation twice;
//! the state holds only the last `timespan` before its newest event and at most [`MAX_ENTRIES`]
//! entries, oldest dropped first, which bounds the item however much traffic the group sees.
//! Windows are sliding: a window is the `timespan` ending at an event's `created_at`.
//!
//! A fired window is also kept in the state (the last [`MAX_FIRED`], each with at most
//! [`MAX_FIRED_ENTRIES`] entries), named by the object whose event fired it. Re-feeding that
//! object finds it there ([`GroupState::fired_by`]): a crash after the state was committed but
//! before the alert was recorded and published loses nothing, and the alert rebuilt is the same.

use std::collections::BTreeSet;

use rsigma_parser::{ConditionExpr, Quantifier, SelectorPattern, detection_name_matches};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rules::{Correlation, CorrelationKind};

/// Most entries one group keeps (about 200 bytes each in the state table).
pub const MAX_ENTRIES: usize = 256;
/// Fired windows one group remembers, newest kept.
pub const MAX_FIRED: usize = 8;
/// Entries a remembered window keeps (its `count` is the whole window's); with the limits above
/// a group's item stays under about 160 KB, well inside DynamoDB's 400 KB.
pub const MAX_FIRED_ENTRIES: usize = 64;

/// One matched activity as the correlation remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub created_at: String,
    /// `created_at` in Unix seconds (what windows are measured in).
    pub at: i64,
    /// Index of the member rule that matched, in the correlation's `rules`.
    pub member: u16,
    /// Hash of the `value_count` field's value, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    pub object_key: String,
    /// Counted in a window that fired already.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consumed: bool,
}

/// The state of one (correlation, group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub entries: Vec<Entry>,
    /// The windows that fired, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<Fired>,
}

/// A window that met the correlation's condition: its entries, oldest first (at most
/// [`MAX_FIRED_ENTRIES`]), its count, and the object whose event fired it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    pub entries: Vec<Entry>,
    pub count: u64,
    pub by: String,
}

impl Fired {
    /// What names the window in the `alert_id`: its first activity's time and id.
    pub fn window(&self) -> String {
        self.entries.first().map(|e| format!("{}/{}", e.created_at, e.id)).unwrap_or_default()
    }
}

impl GroupState {
    /// Newest `created_at` (Unix seconds) in the state.
    pub fn newest(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.at).max()
    }

    /// The remembered windows that an event of `object_key` fired.
    pub fn fired_by<'s>(&'s self, object_key: &'s str) -> impl Iterator<Item = &'s Fired> + 's {
        self.fired.iter().filter(move |f| f.by == object_key)
    }
}

/// The group of an event: the `group-by` values (absent fields as null), as canonical JSON.
pub fn group_json(values: &[Option<String>]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

/// 16 hex digits naming a group in the state table's key.
pub fn group_hash(group_json: &str) -> String {
    let digest = Sha256::digest(group_json.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash a `value_count` value is remembered by.
pub fn value_hash(value: &str) -> u64 {
    let digest = Sha256::digest(value.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// Applies `events` (any order) to `state`: the next state and every window that fired.
pub fn advance(
    correlation: &Correlation,
    state: &GroupState,
    events: &[Entry],
) -> (GroupState, Vec<Fired>) {
    let span = correlation.timespan_seconds;
    let mut entries = state.entries.clone();
    let mut new: Vec<&Entry> = events.iter().collect();
    new.sort_by(|a, b| (a.at, &a.id, a.member).cmp(&(b.at, &b.id, b.member)));
    let mut fired = Vec::new();
    for event in new {
        let newest = entries.iter().map(|e| e.at).max();
        if newest.is_some_and(|n| event.at < n.saturating_sub(span)) {
            continue; // older than anything the state can still count
        }
        if entries.iter().any(|e| e.id == event.id && e.member == event.member) {
            continue; // seen before: a redelivery
        }
        let at = entries
            .partition_point(|e| (e.at, &e.id, e.member) < (event.at, &event.id, event.member));
        entries.insert(at, Entry { consumed: false, ..event.clone() });
        let horizon = entries.iter().map(|e| e.at).max().unwrap_or(event.at).saturating_sub(span);
        entries.retain(|e| e.at >= horizon);
        if entries.len() > MAX_ENTRIES {
            let excess = entries.len() - MAX_ENTRIES;
            entries.drain(..excess);
        }
        if let Some(window) = first_firing_window(correlation, &entries, event.at) {
            let mut taken = Vec::new();
            for i in window.indices {
                entries[i].consumed = true;
                if taken.len() < MAX_FIRED_ENTRIES {
                    taken.push(entries[i].clone());
                }
            }
            fired.push(Fired { entries: taken, count: window.count, by: event.object_key.clone() });
        }
    }
    let mut remembered = state.fired.clone();
    remembered.extend(fired.iter().cloned());
    let excess = remembered.len().saturating_sub(MAX_FIRED);
    remembered.drain(..excess);
    (GroupState { entries, fired: remembered }, fired)
}

struct Window {
    indices: Vec<usize>,
    count: u64,
}

/// The first window containing `at` (ending at an entry within `timespan` after it) whose unconsumed
/// entries meet the condition.
fn first_firing_window(correlation: &Correlation, entries: &[Entry], at: i64) -> Option<Window> {
    let span = correlation.timespan_seconds;
    let ends: BTreeSet<i64> = entries
        .iter()
        .filter(|e| !e.consumed && e.at >= at && e.at <= at.saturating_add(span))
        .map(|e| e.at)
        .collect();
    for end in ends {
        let indices: Vec<usize> = (0..entries.len())
            .filter(|&i| {
                let e = &entries[i];
                !e.consumed && e.at <= end && e.at >= end.saturating_sub(span)
            })
            .collect();
        let window: Vec<&Entry> = indices.iter().map(|&i| &entries[i]).collect();
        if let Some(count) = satisfied(correlation, &window) {
            return Some(Window { indices, count });
        }
    }
    None
}

/// The window's count when it meets the correlation's condition.
fn satisfied(correlation: &Correlation, window: &[&Entry]) -> Option<u64> {
    let events = window.iter().map(|e| e.id.as_str()).collect::<BTreeSet<_>>().len() as u64;
    match &correlation.kind {
        CorrelationKind::EventCount => correlation.threshold_met(events).then_some(events),
        CorrelationKind::ValueCount { .. } => {
            let values =
                window.iter().filter_map(|e| e.value).collect::<BTreeSet<_>>().len() as u64;
            correlation.threshold_met(values).then_some(values)
        }
        CorrelationKind::Temporal { condition } => {
            let present: BTreeSet<usize> = window.iter().map(|e| usize::from(e.member)).collect();
            let met = match condition {
                None => present.len() == correlation.members.len(),
                Some(expr) => holds(expr, correlation, &present),
            };
            met.then_some(events)
        }
    }
}

/// A temporal correlation's boolean expression over its member rules' names.
fn holds(expr: &ConditionExpr, correlation: &Correlation, present: &BTreeSet<usize>) -> bool {
    let named = |pattern: &str| -> Vec<bool> {
        correlation
            .member_names
            .iter()
            .enumerate()
            .filter(|(_, names)| names.iter().any(|n| detection_name_matches(pattern, n)))
            .map(|(i, _)| present.contains(&i))
            .collect()
    };
    match expr {
        ConditionExpr::And(parts) => parts.iter().all(|p| holds(p, correlation, present)),
        ConditionExpr::Or(parts) => parts.iter().any(|p| holds(p, correlation, present)),
        ConditionExpr::Not(inner) => !holds(inner, correlation, present),
        ConditionExpr::Identifier(name) => named(name).into_iter().any(|p| p),
        ConditionExpr::Selector { quantifier, pattern } => {
            let members = match pattern {
                SelectorPattern::Them => named("*"),
                SelectorPattern::Pattern(p) => named(p),
            };
            let hits = members.iter().filter(|p| **p).count() as u64;
            match quantifier {
                Quantifier::Any => hits >= 1,
                Quantifier::All => hits == members.len() as u64 && hits > 0,
                Quantifier::Count(n) => hits >= *n,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::RuleMeta;
    use rsigma_parser::ConditionOperator;

    fn correlation(kind: CorrelationKind, members: usize, gte: u64) -> Correlation {
        Correlation {
            meta: RuleMeta {
                id: "corr".to_owned(),
                title: "Burst".to_owned(),
                level: "high",
                pack: "identity".to_owned(),
                tags: Vec::new(),
                file: "identity/burst.yml".to_owned(),
            },
            kind,
            members: (0..members).map(|i| format!("rule-{i}")).collect(),
            member_names: (0..members).map(|i| vec![format!("rule_{i}")]).collect(),
            group_by: vec!["actor.email_address".to_owned()],
            timespan_seconds: 600,
            predicates: vec![(ConditionOperator::Gte, gte)],
        }
    }

    fn entry(id: &str, at: i64) -> Entry {
        Entry {
            id: id.to_owned(),
            created_at: format!("t{at}"),
            at,
            member: 0,
            value: None,
            object_key: "k".to_owned(),
            consumed: false,
        }
    }

    #[test]
    fn a_count_reached_across_two_batches_fires_once() {
        // GIVEN a >= 3 in 10 minutes correlation and two events in a first object
        let c = correlation(CorrelationKind::EventCount, 1, 3);
        let (state, fired) = advance(&c, &GroupState::default(), &[entry("a", 0), entry("b", 60)]);
        assert!(fired.is_empty());
        // WHEN a second object brings the third within the window
        let (state, fired) = advance(&c, &state, &[entry("c", 120)]);
        // THEN one window fires with the three activities, oldest first
        assert_eq!(fired.len(), 1);
        let ids: Vec<_> = fired[0].entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(fired[0].count, 3);
        assert_eq!(fired[0].window(), "t0/a");
        // AND a fourth event does not fire again on the consumed ones
        let (_, fired) = advance(&c, &state, &[entry("d", 130)]);
        assert!(fired.is_empty());
    }

    #[test]
    fn a_fired_window_is_remembered_by_the_object_that_fired_it() {
        // GIVEN a window fired by the third event, which came in object k2
        let c = correlation(CorrelationKind::EventCount, 1, 3);
        let (state, _) = advance(&c, &GroupState::default(), &[entry("a", 0), entry("b", 60)]);
        let third = Entry { object_key: "k2".to_owned(), ..entry("c", 120) };
        let (state, fired) = advance(&c, &state, std::slice::from_ref(&third));
        // WHEN k2 is fed again (a redelivery after a crash)
        let (again, refired) = advance(&c, &state, &[third]);
        // THEN nothing fires anew, and the state still names the window k2 fired, unchanged
        assert!(refired.is_empty());
        let remembered: Vec<_> = again.fired_by("k2").cloned().collect();
        assert_eq!(remembered, fired);
        assert_eq!(again.fired_by("k").count(), 0);
    }

    #[test]
    fn remembered_windows_are_bounded() {
        // GIVEN a threshold of one, so every event fires its own window
        let c = correlation(CorrelationKind::EventCount, 1, 1);
        let events: Vec<_> = (0..40).map(|i| entry(&format!("id{i:02}"), i)).collect();
        let (state, fired) = advance(&c, &GroupState::default(), &events);
        // THEN all fired, and the state keeps the newest MAX_FIRED windows
        assert_eq!(fired.len(), 40);
        assert_eq!(state.fired.len(), MAX_FIRED);
        assert_eq!(state.fired.last().map(|f| f.entries[0].id.as_str()), Some("id39"));
    }

    #[test]
    fn re_feeding_the_same_activities_changes_nothing() {
        // GIVEN a state that already fired on a, b, c
        let c = correlation(CorrelationKind::EventCount, 1, 3);
        let batch = [entry("a", 0), entry("b", 60), entry("c", 120)];
        let (state, fired) = advance(&c, &GroupState::default(), &batch);
        assert_eq!(fired.len(), 1);
        // WHEN the same batch comes again (a redelivered object)
        let (again, fired) = advance(&c, &state, &batch);
        // THEN nothing fires and the state is unchanged
        assert!(fired.is_empty());
        assert_eq!(again, state);
    }

    #[test]
    fn events_farther_apart_than_the_timespan_do_not_fire() {
        // GIVEN three events spread over 20 minutes for a 10-minute window
        let c = correlation(CorrelationKind::EventCount, 1, 3);
        let (state, fired) = advance(
            &c,
            &GroupState::default(),
            &[entry("a", 0), entry("b", 500), entry("c", 1200)],
        );
        // THEN nothing fires and the state forgot what left the window
        assert!(fired.is_empty());
        let ids: Vec<_> = state.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["c"]);
    }

    #[test]
    fn the_state_is_bounded() {
        // GIVEN far more events within one window than the cap, for a threshold never reached
        let c = correlation(CorrelationKind::EventCount, 1, 10_000);
        let events: Vec<_> = (0..1000).map(|i| entry(&format!("id{i:04}"), i / 10)).collect();
        let (state, _) = advance(&c, &GroupState::default(), &events);
        // THEN the state keeps the newest MAX_ENTRIES only
        assert_eq!(state.entries.len(), MAX_ENTRIES);
        assert_eq!(state.entries.last().map(|e| e.id.as_str()), Some("id0999"));
    }

    #[test]
    fn value_count_counts_distinct_values() {
        // GIVEN a >= 2 distinct values correlation and three events with two values
        let c =
            correlation(CorrelationKind::ValueCount { field: "actor.ip_address".to_owned() }, 1, 2);
        let with =
            |id: &str, at: i64, v: &str| Entry { value: Some(value_hash(v)), ..entry(id, at) };
        let (_, fired) = advance(
            &c,
            &GroupState::default(),
            &[with("a", 0, "1.1.1.1"), with("b", 1, "1.1.1.1")],
        );
        assert!(fired.is_empty());
        let (_, fired) = advance(
            &c,
            &GroupState::default(),
            &[with("a", 0, "1.1.1.1"), with("b", 1, "1.1.1.1"), with("c", 2, "2.2.2.2")],
        );
        // THEN it fires once the second value appears
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].count, 2);
    }

    #[test]
    fn temporal_needs_every_member_rule_in_the_window() {
        // GIVEN a temporal correlation of two rules
        let c = correlation(CorrelationKind::Temporal { condition: None }, 2, 0);
        let second = Entry { member: 1, ..entry("b", 30) };
        // WHEN only the first matched THEN nothing; WHEN both THEN one alert
        let (state, fired) = advance(&c, &GroupState::default(), &[entry("a", 0)]);
        assert!(fired.is_empty());
        let (_, fired) = advance(&c, &state, &[second]);
        assert_eq!(fired.len(), 1);
    }

    #[test]
    fn groups_are_named_by_their_values() {
        // GIVEN two groups THEN their names differ, and null differs from the empty string
        let a = group_json(&[Some("a@x".to_owned())]);
        assert_eq!(a, r#"["a@x"]"#);
        assert_ne!(group_hash(&a), group_hash(&group_json(&[Some("b@x".to_owned())])));
        assert_ne!(group_json(&[None]), group_json(&[Some(String::new())]));
        assert_eq!(group_hash(&a).len(), 16);
    }
}
