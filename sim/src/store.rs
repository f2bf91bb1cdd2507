//! The activity store: every activity the simulator holds, visible or not, in sort order.
//!
//! Invariants: `records` is sorted ascending by [`Position`] (`created_at` instant, then id,
//! bytewise), ids are unique across the store's whole life (a removed id would still be
//! refused, though nothing removes), and each record's `raw` is the exact JSON text served.
//! The metadata beside `raw` (organization, type, actor user id) is read from `raw` itself
//! when the record is made, so filters can never disagree with the bytes.

use std::collections::HashSet;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A place in the feed's sort order. Ordering is by instant, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Position {
    pub(crate) nanos: i128,
    pub(crate) id: String,
}

/// Why an activity could not be added.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("activity is not a JSON object with string fields where expected")]
    Json(#[source] serde_json::Error),
    #[error("activity has no string `id`")]
    MissingId,
    #[error("activity has no string `created_at`")]
    MissingCreatedAt,
    #[error("activity `created_at` {value:?} is not an RFC 3339 timestamp")]
    InvalidCreatedAt {
        value: String,
        #[source]
        source: jiff::Error,
    },
    #[error("an activity with id {0} already exists (ids are never reused)")]
    DuplicateId(String),
}

/// One stored activity.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) position: Position,
    pub(crate) created_at: Timestamp,
    pub(crate) raw: Box<RawValue>,
    pub(crate) visible: bool,
    pub(crate) organization_id: Option<String>,
    pub(crate) organization_uuid: Option<String>,
    pub(crate) activity_type: String,
    pub(crate) actor_user_id: Option<String>,
}

#[derive(Deserialize)]
struct Head {
    id: Option<String>,
    created_at: Option<String>,
    organization_id: Option<String>,
    organization_uuid: Option<String>,
    #[serde(rename = "type")]
    activity_type: Option<String>,
    actor: Option<ActorHead>,
}

#[derive(Deserialize)]
struct ActorHead {
    user_id: Option<String>,
}

impl Record {
    /// Reads the fields the feed filters on out of `raw`, keeping `raw` (trimmed of
    /// surrounding whitespace) as the bytes to serve.
    pub(crate) fn from_raw(raw: &str, visible: bool) -> Result<Self, InsertError> {
        let raw = RawValue::from_string(raw.trim().to_owned()).map_err(InsertError::Json)?;
        let head: Head = serde_json::from_str(raw.get()).map_err(InsertError::Json)?;
        let id = head.id.ok_or(InsertError::MissingId)?;
        let created_at_text = head.created_at.ok_or(InsertError::MissingCreatedAt)?;
        let created_at: Timestamp = created_at_text.parse().map_err(|source| {
            InsertError::InvalidCreatedAt { value: created_at_text.clone(), source }
        })?;
        Ok(Self {
            position: Position { nanos: created_at.as_nanosecond(), id },
            created_at,
            raw,
            visible,
            organization_id: head.organization_id,
            organization_uuid: head.organization_uuid,
            activity_type: head.activity_type.unwrap_or_default(),
            actor_user_id: head.actor.and_then(|a| a.user_id),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.position.id
    }
}

/// All activities, sorted by position.
#[derive(Debug, Default)]
pub(crate) struct Store {
    records: Vec<Record>,
    ids: HashSet<String>,
}

impl Store {
    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }

    pub(crate) fn contains_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Adds one record at its place in the order.
    pub(crate) fn insert(&mut self, record: Record) -> Result<(), InsertError> {
        if !self.ids.insert(record.id().to_owned()) {
            return Err(InsertError::DuplicateId(record.id().to_owned()));
        }
        let at = self.records.partition_point(|r| r.position < record.position);
        self.records.insert(at, record);
        Ok(())
    }

    /// Adds many records at once (one sort instead of many shifts). Records whose id is
    /// already taken are refused as a whole batch, before anything is added.
    pub(crate) fn insert_batch(&mut self, batch: Vec<Record>) -> Result<(), InsertError> {
        let mut fresh = HashSet::with_capacity(batch.len());
        for record in &batch {
            if self.ids.contains(record.id()) || !fresh.insert(record.id()) {
                return Err(InsertError::DuplicateId(record.id().to_owned()));
            }
        }
        for record in batch {
            self.ids.insert(record.id().to_owned());
            self.records.push(record);
        }
        self.records.sort_unstable_by(|a, b| a.position.cmp(&b.position));
        Ok(())
    }

    /// Makes every hidden record visible; returns how many changed.
    pub(crate) fn reveal_all(&mut self) -> usize {
        self.reveal_where(|_| true)
    }

    /// Makes the hidden records whose id satisfies `pick` visible; returns how many.
    pub(crate) fn reveal_where(&mut self, pick: impl Fn(&str) -> bool) -> usize {
        let mut revealed = 0;
        for record in self.records.iter_mut().filter(|r| !r.visible && pick(r.id())) {
            record.visible = true;
            revealed += 1;
        }
        revealed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, created_at: &str) -> String {
        format!(r#"{{"id":"{id}","created_at":"{created_at}","organization_id":null,"type":"t"}}"#)
    }

    #[test]
    fn records_are_kept_in_instant_then_id_order() {
        // GIVEN records inserted out of order, two sharing an instant written differently
        let mut store = Store::default();
        for (id, at) in [
            ("activity_b", "2026-01-01T00:00:01Z"),
            ("activity_c", "2026-01-01T00:00:00.000Z"),
            ("activity_a", "2026-01-01T00:00:00Z"),
        ] {
            store.insert(Record::from_raw(&raw(id, at), true).unwrap()).unwrap();
        }
        // THEN they are sorted by instant, ties by id
        let ids: Vec<&str> = store.records().iter().map(Record::id).collect();
        assert_eq!(ids, ["activity_a", "activity_c", "activity_b"]);
    }

    #[test]
    fn an_id_is_never_accepted_twice() {
        // GIVEN a store holding activity_a
        let mut store = Store::default();
        store
            .insert(Record::from_raw(&raw("activity_a", "2026-01-01T00:00:00Z"), true).unwrap())
            .unwrap();
        // WHEN activity_a is added again, even at another time
        let again = Record::from_raw(&raw("activity_a", "2026-02-01T00:00:00Z"), true).unwrap();
        // THEN it is refused
        assert!(matches!(store.insert(again), Err(InsertError::DuplicateId(_))));
        assert_eq!(store.records().len(), 1);
    }

    #[test]
    fn raw_text_is_kept_exactly_but_trimmed() {
        // GIVEN raw JSON with escapes and surrounding whitespace
        let text = r#"{"id":"activity_a","created_at":"2026-01-01T00:00:00Z","name":"caf\u00e9 \/ \"x\""}"#;
        // WHEN it becomes a record
        let record = Record::from_raw(&format!("  {text}\n"), true).unwrap();
        // THEN the bytes are unchanged apart from the trimmed whitespace
        assert_eq!(record.raw.get(), text);
    }

    #[test]
    fn records_without_id_or_valid_created_at_are_refused() {
        assert!(matches!(
            Record::from_raw(r#"{"created_at":"2026-01-01T00:00:00Z"}"#, true),
            Err(InsertError::MissingId)
        ));
        assert!(matches!(
            Record::from_raw(r#"{"id":"activity_a"}"#, true),
            Err(InsertError::MissingCreatedAt)
        ));
        assert!(matches!(
            Record::from_raw(r#"{"id":"activity_a","created_at":"yesterday"}"#, true),
            Err(InsertError::InvalidCreatedAt { .. })
        ));
        assert!(matches!(Record::from_raw("[1,2]", true), Err(InsertError::Json(_))));
    }

    #[test]
    fn metadata_is_read_from_the_raw_json() {
        // GIVEN an activity with organization, type and a user actor
        let text = r#"{"id":"activity_a","created_at":"2026-01-01T00:00:00Z","organization_id":"org_1","organization_uuid":"u-1","actor":{"type":"user_actor","user_id":"user_1"},"type":"claude_chat_created"}"#;
        // WHEN it becomes a record
        let record = Record::from_raw(text, false).unwrap();
        // THEN the filter fields are read from it
        assert_eq!(record.organization_id.as_deref(), Some("org_1"));
        assert_eq!(record.organization_uuid.as_deref(), Some("u-1"));
        assert_eq!(record.activity_type, "claude_chat_created");
        assert_eq!(record.actor_user_id.as_deref(), Some("user_1"));
        assert!(!record.visible);
    }

    #[test]
    fn reveal_all_counts_only_hidden_records() {
        // GIVEN one visible and two hidden records
        let mut store = Store::default();
        for (id, visible) in [("activity_a", true), ("activity_b", false), ("activity_c", false)] {
            store
                .insert(Record::from_raw(&raw(id, "2026-01-01T00:00:00Z"), visible).unwrap())
                .unwrap();
        }
        // WHEN revealing, twice
        // THEN the first reveals two, the second none
        assert_eq!(store.reveal_all(), 2);
        assert_eq!(store.reveal_all(), 0);
        assert!(store.records().iter().all(|r| r.visible));
    }
}
