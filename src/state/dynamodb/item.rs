//! The state item's codec: [`SyncState`] to a DynamoDB item an operator can read in the console,
//! and back. Pure: no I/O, so every field's round trip is tested here.
//!
//! Invariants: every field of the state is written and read (the round-trip test sets them all);
//! an item of another `format` is refused, never half read; a field of the wrong type fails the
//! load with the field's name and the parser's own error as its cause.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use crate::state::seen::{DecodeError, SeenSet};
use crate::state::{Pending, SyncState, Versioned, Window};

const FORMAT: &str = "1";

/// Why a state item (or one of its chunks) cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("unknown format {0:?}; written by a newer collector?")]
    Format(Option<String>),
    #[error("{0} is not a {1}")]
    WrongType(&'static str, &'static str),
    #[error("{0}")]
    Incomplete(&'static str),
    #[error("{name} {value:?} is not an RFC 3339 time")]
    Time {
        name: &'static str,
        value: String,
        #[source]
        source: jiff::Error,
    },
    #[error("{name} {value:?} is not a whole number")]
    Number {
        name: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("the dedupe memory cannot be decoded")]
    Seen(#[source] DecodeError),
    #[error("chunk {index} of generation {generation} is missing")]
    ChunkMissing { index: usize, generation: u64 },
    #[error("chunk {index} has no binary data")]
    ChunkData { index: usize },
    #[error("seen_generation or seen_chunks is not a number of at most {most}")]
    ChunkCount { most: usize },
}

/// The state item; `seen` inline when given (else the memory is in chunk items). Absent values
/// are absent attributes.
pub(super) fn to_item(
    pk: &str,
    state: &SyncState,
    version: u64,
    seen: Option<Vec<u8>>,
) -> HashMap<String, AttributeValue> {
    let mut item = Item(HashMap::new());
    item.text("pk", Some(pk));
    item.number("version", version);
    item.0.insert("format".into(), AttributeValue::N(FORMAT.into()));
    item.time("watermark", state.watermark);
    if let Some(w) = &state.window {
        item.time("window_from", Some(w.from));
        item.time("window_to", Some(w.to));
        item.text("cursor", w.cursor.as_deref());
        item.time("position", w.position);
    }
    if let Some(seen) = seen {
        item.0.insert("seen".into(), AttributeValue::B(Blob::new(seen)));
    }
    item.number("seen_count", state.seen.len() as u64);
    if let Some(p) = &state.pending {
        // Always a list, even empty: its presence is what says an intent is pending.
        let keys = p.keys.iter().cloned().map(AttributeValue::S).collect();
        item.0.insert("pending_keys".into(), AttributeValue::L(keys));
        item.time("pending_lease_until", Some(p.lease_until));
        item.text("pending_run_id", Some(&p.run_id));
    }
    item.number("delivered_total", state.delivered_total);
    item.time("updated_at", state.updated_at);
    item.time("reconciled_until", state.reconciled_until);
    item.time("rechecked_until", state.rechecked_until);
    item.time("seen_from", state.seen_from);
    item.text("archive_prefix", state.archive_prefix.as_deref());
    item.time("origin", state.origin);
    item.list("canary", state.canary.iter().map(|(id, at)| format!("{id} {at}")));
    item.list("backfills", state.backfills.iter().map(|(f, t)| format!("{f} {t}")));
    item.text("updated_by", state.updated_by.as_deref());
    item.0
}

/// An item being written, attribute by attribute.
struct Item(HashMap<String, AttributeValue>);

impl Item {
    fn text(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.0.insert(name.into(), AttributeValue::S(v.to_owned()));
        }
    }

    fn time(&mut self, name: &str, value: Option<Timestamp>) {
        self.text(name, value.map(|t| t.to_string()).as_deref());
    }

    fn number(&mut self, name: &str, value: u64) {
        self.0.insert(name.into(), AttributeValue::N(value.to_string()));
    }

    /// A list of strings; none is no attribute.
    fn list(&mut self, name: &str, values: impl Iterator<Item = String>) {
        let values: Vec<AttributeValue> = values.map(AttributeValue::S).collect();
        if !values.is_empty() {
            self.0.insert(name.into(), AttributeValue::L(values));
        }
    }
}

/// Reads a state item back.
pub(super) fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Versioned, ItemError> {
    let fields = Fields(item);
    match item.get("format") {
        Some(AttributeValue::N(f)) if f == FORMAT => {}
        other => return Err(ItemError::Format(other.map(|v| format!("{v:?}")))),
    }
    let version = fields.number("version")?.ok_or(ItemError::Incomplete("no version"))?;
    let state = SyncState {
        watermark: fields.time("watermark")?,
        window: fields.window()?,
        seen: fields.seen()?,
        pending: fields.pending()?,
        delivered_total: fields.number("delivered_total")?.unwrap_or(0),
        updated_at: fields.time("updated_at")?,
        updated_by: fields.text("updated_by")?.cloned(),
        origin: fields.time("origin")?,
        reconciled_until: fields.time("reconciled_until")?,
        rechecked_until: fields.time("rechecked_until")?,
        archive_prefix: fields.text("archive_prefix")?.cloned(),
        seen_from: fields.time("seen_from")?,
        canary: fields.pairs("canary", "canary entry without time", |id, at| {
            Ok((id.to_owned(), time_of("canary", at)?))
        })?,
        backfills: fields.pairs("backfills", "backfill without its end", |from, to| {
            Ok((time_of("backfills", from)?, time_of("backfills", to)?))
        })?,
    };
    Ok(Versioned { state, version })
}

/// The attributes of one item, read by name and type.
struct Fields<'a>(&'a HashMap<String, AttributeValue>);

impl Fields<'_> {
    fn text(&self, name: &'static str) -> Result<Option<&String>, ItemError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(ItemError::WrongType(name, "string")),
        }
    }

    fn time(&self, name: &'static str) -> Result<Option<Timestamp>, ItemError> {
        self.text(name)?.map(|v| time_of(name, v)).transpose()
    }

    fn number(&self, name: &'static str) -> Result<Option<u64>, ItemError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|source| ItemError::Number {
                name,
                value: v.clone(),
                source,
            }),
            Some(_) => Err(ItemError::WrongType(name, "number")),
        }
    }

    /// A list of strings, `None` when absent.
    fn strings(&self, name: &'static str) -> Result<Option<Vec<&String>>, ItemError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttributeValue::L(entries)) => entries
                .iter()
                .map(|e| e.as_s().map_err(|_| ItemError::WrongType(name, "list of strings")))
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(ItemError::WrongType(name, "list")),
        }
    }

    /// A list of `"a b"` strings, each made into a value by `pair`.
    fn pairs<T>(
        &self,
        name: &'static str,
        incomplete: &'static str,
        pair: impl Fn(&str, &str) -> Result<T, ItemError>,
    ) -> Result<Vec<T>, ItemError> {
        let entries = self.strings(name)?.unwrap_or_default();
        entries
            .iter()
            .map(|e| {
                let (a, b) = e.split_once(' ').ok_or(ItemError::Incomplete(incomplete))?;
                pair(a, b)
            })
            .collect()
    }

    fn window(&self) -> Result<Option<Window>, ItemError> {
        match (self.time("window_from")?, self.time("window_to")?) {
            (Some(from), Some(to)) => Ok(Some(Window {
                from,
                to,
                cursor: self.text("cursor")?.cloned(),
                position: self.time("position")?,
            })),
            (None, None) => Ok(None),
            _ => Err(ItemError::Incomplete("window_from and window_to must come together")),
        }
    }

    fn seen(&self) -> Result<SeenSet, ItemError> {
        match self.0.get("seen") {
            None => Ok(SeenSet::default()),
            Some(AttributeValue::B(b)) => SeenSet::decode(b.as_ref()).map_err(ItemError::Seen),
            Some(_) => Err(ItemError::WrongType("seen", "binary")),
        }
    }

    fn pending(&self) -> Result<Option<Pending>, ItemError> {
        let Some(keys) = self.strings("pending_keys")? else {
            return Ok(None);
        };
        let lease_until = self.time("pending_lease_until")?;
        Ok(Some(Pending {
            keys: keys.into_iter().cloned().collect(),
            lease_until: lease_until.ok_or(ItemError::Incomplete("pending without lease"))?,
            run_id: self.text("pending_run_id")?.cloned().unwrap_or_default(),
        }))
    }
}

fn time_of(name: &'static str, value: &str) -> Result<Timestamp, ItemError> {
    value.parse().map_err(|source| ItemError::Time { name, value: value.to_owned(), source })
}

/// DynamoDB's item size: attribute names plus values (numbers counted generously).
pub(super) fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len() + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
            _ => 32,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::seen::id_hash;

    #[test]
    fn every_field_round_trips_through_the_item() {
        let mut seen = SeenSet::default();
        seen.insert(id_hash("activity_1"), "2026-01-01T00:00:00Z".parse().unwrap());
        let state = SyncState {
            watermark: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            window: Some(Window {
                from: "2026-01-01T00:00:00Z".parse().unwrap(),
                to: "2026-01-01T01:00:00Z".parse().unwrap(),
                cursor: Some("cur_1".into()),
                position: Some("2026-01-01T00:30:00.123Z".parse().unwrap()),
            }),
            seen,
            pending: Some(Pending {
                keys: vec!["a".into(), "b".into()],
                lease_until: "2026-01-01T00:05:00Z".parse().unwrap(),
                run_id: "run-1".into(),
            }),
            delivered_total: 42,
            updated_at: Some("2026-01-01T00:04:00Z".parse().unwrap()),
            updated_by: Some("run-1".into()),
            origin: Some("2025-12-25T00:00:00Z".parse().unwrap()),
            reconciled_until: Some("2025-12-26T00:00:00Z".parse().unwrap()),
            rechecked_until: Some("2025-12-25T01:00:00Z".parse().unwrap()),
            archive_prefix: Some("anthropic/activity/".into()),
            seen_from: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            canary: vec![("req_1".into(), "2026-01-01T00:03:00.5Z".parse().unwrap())],
            backfills: vec![(
                "2025-01-01T00:00:00Z".parse().unwrap(),
                "2025-06-01T12:00:00Z".parse().unwrap(),
            )],
        };
        let item = to_item("live", &state, 7, Some(state.seen.encode()));
        assert_eq!(from_item(&item).unwrap(), Versioned { state, version: 7 });
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_named_with_its_parsers_error_as_the_cause() {
        let mut item = to_item("live", &SyncState::default(), 1, None);
        item.insert("watermark".into(), AttributeValue::S("yesterday".into()));
        let e = from_item(&item).unwrap_err();
        assert!(e.to_string().contains("watermark \"yesterday\""), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn an_item_from_an_unknown_format_is_refused() {
        let mut item = to_item("live", &SyncState::default(), 1, None);
        item.insert("format".into(), AttributeValue::N("2".into()));
        assert!(from_item(&item).unwrap_err().to_string().contains("unknown format"));
    }
}
