//! [`StateStore`] over DynamoDB: one item per stream, written whole with a version condition.
//!
//! The item is readable by an operator in the console: timestamps as RFC 3339 strings, the cursor
//! as stored, counts as numbers; only the dedupe memory is binary (about 9 bytes an id). Loads
//! are strongly consistent so a run always sees the previous run's last commit.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use super::{Pending, StateError, StateStore, SyncState, Versioned, Window};
use crate::sync::seen::SeenSet;

/// DynamoDB's item size limit, less room for attribute names and rounding.
const ITEM_LIMIT: usize = 400 * 1024 - 2048;
const FORMAT: &str = "1";

pub struct DynamoStore {
    client: Client,
    table: String,
    pk: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, pk: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            pk: pk.into(),
        }
    }

    fn classify<E, R>(&self, e: SdkError<E, R>) -> StateError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let table = self.table.clone();
        match e.code() {
            Some("ResourceNotFoundException") => StateError::TableNotFound { table },
            Some("AccessDeniedException") | Some("UnrecognizedClientException") => {
                StateError::AccessDenied {
                    table,
                    source: Box::new(e),
                }
            }
            _ => StateError::Unavailable {
                table,
                source: Box::new(e),
            },
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> StateError {
        StateError::Corrupt {
            pk: self.pk.clone(),
            reason: reason.into(),
        }
    }
}

impl StateStore for DynamoStore {
    async fn load(&self) -> Result<Option<Versioned>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(self.pk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        match out.item {
            None => Ok(None),
            Some(item) => from_item(&item)
                .map(Some)
                .map_err(|reason| self.corrupt(reason)),
        }
    }

    async fn commit(&self, state: &SyncState, expected: Option<u64>) -> Result<u64, StateError> {
        let version = expected.unwrap_or(0) + 1;
        let item = to_item(&self.pk, state, version);
        let bytes = item_size(&item);
        if bytes > ITEM_LIMIT {
            return Err(StateError::TooLarge { bytes });
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(v) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(version),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(StateError::Conflict { expected })
            }
            Err(e) => Err(self.classify(e)),
        }
    }
}

fn to_item(pk: &str, state: &SyncState, version: u64) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::new();
    let s = |v: String| AttributeValue::S(v);
    let n = |v: u64| AttributeValue::N(v.to_string());
    item.insert("pk".into(), s(pk.to_owned()));
    item.insert("version".into(), n(version));
    item.insert("format".into(), AttributeValue::N(FORMAT.into()));
    if let Some(w) = state.watermark {
        item.insert("watermark".into(), s(w.to_string()));
    }
    if let Some(w) = &state.window {
        item.insert("window_from".into(), s(w.from.to_string()));
        item.insert("window_to".into(), s(w.to.to_string()));
        if let Some(c) = &w.cursor {
            item.insert("cursor".into(), s(c.clone()));
        }
        if let Some(p) = w.position {
            item.insert("position".into(), s(p.to_string()));
        }
    }
    item.insert(
        "seen".into(),
        AttributeValue::B(Blob::new(state.seen.encode())),
    );
    item.insert("seen_count".into(), n(state.seen.len() as u64));
    if let Some(p) = &state.pending {
        item.insert(
            "pending_keys".into(),
            AttributeValue::L(p.keys.iter().cloned().map(AttributeValue::S).collect()),
        );
        item.insert("pending_lease_until".into(), s(p.lease_until.to_string()));
        item.insert("pending_run_id".into(), s(p.run_id.clone()));
    }
    item.insert("delivered_total".into(), n(state.delivered_total));
    if let Some(t) = state.updated_at {
        item.insert("updated_at".into(), s(t.to_string()));
    }
    if let Some(r) = &state.updated_by {
        item.insert("updated_by".into(), s(r.clone()));
    }
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Versioned, String> {
    let text = |name: &str| -> Result<Option<&String>, String> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(format!("{name} is not a string")),
        }
    };
    let time = |name: &str| -> Result<Option<Timestamp>, String> {
        text(name)?
            .map(|v| {
                v.parse::<Timestamp>()
                    .map_err(|e| format!("{name} {v:?}: {e}"))
            })
            .transpose()
    };
    let number = |name: &str| -> Result<Option<u64>, String> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|e| format!("{name}: {e}")),
            Some(_) => Err(format!("{name} is not a number")),
        }
    };
    match item.get("format") {
        Some(AttributeValue::N(f)) if f == FORMAT => {}
        other => {
            return Err(format!(
                "unknown format {other:?}; written by a newer collector?"
            ));
        }
    }
    let version = number("version")?.ok_or("no version")?;
    let window = match (time("window_from")?, time("window_to")?) {
        (Some(from), Some(to)) => Some(Window {
            from,
            to,
            cursor: text("cursor")?.cloned(),
            position: time("position")?,
        }),
        (None, None) => None,
        _ => return Err("window_from and window_to must come together".into()),
    };
    let seen = match item.get("seen") {
        None => SeenSet::default(),
        Some(AttributeValue::B(b)) => SeenSet::decode(b.as_ref()).map_err(|e| e.to_string())?,
        Some(_) => return Err("seen is not binary".into()),
    };
    let pending = match item.get("pending_keys") {
        None => None,
        Some(AttributeValue::L(keys)) => Some(Pending {
            keys: keys
                .iter()
                .map(|k| {
                    k.as_s()
                        .cloned()
                        .map_err(|_| "pending_keys holds a non-string".to_owned())
                })
                .collect::<Result<_, _>>()?,
            lease_until: time("pending_lease_until")?.ok_or("pending without lease")?,
            run_id: text("pending_run_id")?.cloned().unwrap_or_default(),
        }),
        Some(_) => return Err("pending_keys is not a list".into()),
    };
    Ok(Versioned {
        state: SyncState {
            watermark: time("watermark")?,
            window,
            seen,
            pending,
            delivered_total: number("delivered_total")?.unwrap_or(0),
            updated_at: time("updated_at")?,
            updated_by: text("updated_by")?.cloned(),
        },
        version,
    })
}

/// DynamoDB's item size: attribute names plus values (numbers counted generously).
fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
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
    use crate::sync::seen::id_hash;

    #[test]
    fn every_field_round_trips_through_the_item() {
        let mut seen = SeenSet::default();
        seen.insert(
            id_hash("activity_1"),
            "2026-01-01T00:00:00Z".parse().unwrap(),
        );
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
        };
        let item = to_item("live", &state, 7);
        assert_eq!(from_item(&item).unwrap(), Versioned { state, version: 7 });
    }

    #[test]
    fn an_item_from_an_unknown_format_is_refused() {
        let mut item = to_item("live", &SyncState::default(), 1);
        item.insert("format".into(), AttributeValue::N("2".into()));
        assert!(from_item(&item).unwrap_err().contains("unknown format"));
    }
}
