//! Hand-picked activities: a [`Seed`] names a type, an instant and the fields that matter (the
//! admin key created, `is_enabled: false`, the new primary owner), and the simulator makes the
//! rest realistic, as `generate` would.
//!
//! The fields are set over the generated activity by dotted path (`actor.email_address`), keeping
//! its field order: a field that exists keeps its place, a new one goes last in its object. `id`,
//! `created_at` and `type` are the seed's own and cannot be set this way.

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// One activity to add: `activity_type` at `created_at`, with `fields` set over the generated
/// ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub activity_type: String,
    pub created_at: Timestamp,
    /// `(dotted path, value)`, applied in order.
    pub fields: Vec<(String, Value)>,
    /// Not yet indexed (a late arrival): invisible until revealed.
    pub hidden: bool,
}

impl Seed {
    /// A realistic `activity_type` at `created_at`, visible.
    pub fn new(activity_type: &str, created_at: Timestamp) -> Seed {
        Seed {
            activity_type: activity_type.to_owned(),
            created_at,
            fields: Vec::new(),
            hidden: false,
        }
    }

    /// Sets `path` (dotted: `actor.email_address`) to `value`.
    pub fn with(mut self, path: &str, value: impl Into<Value>) -> Seed {
        self.fields.push((path.to_owned(), value.into()));
        self
    }
}

/// Why a seed's fields could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("field {0:?} belongs to the seed itself (id, created_at and type cannot be set)")]
    Reserved(String),
    #[error("field path {0:?} is empty or has an empty segment")]
    BadPath(String),
    #[error("the generated activity is not a JSON object")]
    Json(#[source] serde_json::Error),
    #[error("the seeded activity was refused")]
    Insert(#[from] crate::store::InsertError),
}

/// `raw` with each of `fields` set, in order (see the module doc).
pub(crate) fn overlay(raw: &str, fields: &[(String, Value)]) -> Result<String, SeedError> {
    let mut out = raw.to_owned();
    for (path, value) in fields {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(SeedError::BadPath(path.clone()));
        }
        if segments.len() == 1 && ["id", "created_at", "type"].contains(&segments[0]) {
            return Err(SeedError::Reserved(path.clone()));
        }
        out = set(&out, &segments, value)?;
    }
    Ok(out)
}

/// The object `raw` with `path` set to `value`, other entries untouched and in place.
fn set(raw: &str, path: &[&str], value: &Value) -> Result<String, SeedError> {
    let Ordered(mut entries) = serde_json::from_str(raw).map_err(SeedError::Json)?;
    let (head, rest) = match path {
        [head, rest @ ..] => (*head, rest),
        [] => return Ok(value.to_string()),
    };
    let position = entries.iter().position(|(k, _)| k == head);
    let current = position.map(|i| entries[i].1.get().to_owned());
    let text = match (rest, current) {
        ([], _) => value.to_string(),
        (_, Some(inner)) if inner.trim_start().starts_with('{') => set(&inner, rest, value)?,
        // Missing, or not an object: a new object holding just the rest of the path.
        (_, _) => set("{}", rest, value)?,
    };
    let text = RawValue::from_string(text).map_err(SeedError::Json)?;
    match position {
        Some(i) => entries[i].1 = text,
        None => entries.push((head.to_owned(), text)),
    }
    let body: Vec<String> =
        entries.iter().map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v.get())).collect();
    Ok(format!("{{{}}}", body.join(",")))
}

/// A JSON object's entries in document order, values as their raw text.
struct Ordered(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ordered, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RAW: &str = r#"{"id":"activity_1","created_at":"2026-01-01T00:00:00Z","actor":{"type":"user_actor","email_address":"a@x.io"},"type":"t","is_enabled":true}"#;

    #[test]
    fn an_existing_field_is_replaced_in_place() {
        // GIVEN an activity with is_enabled true
        // WHEN is_enabled is set to false
        let out = overlay(RAW, &[("is_enabled".into(), json!(false))]).unwrap();
        // THEN only that value changed, in its place
        assert_eq!(out, RAW.replace(r#""is_enabled":true"#, r#""is_enabled":false"#));
    }

    #[test]
    fn a_nested_field_is_set_through_its_dotted_path_and_new_fields_go_last() {
        // GIVEN an activity with an actor
        // WHEN the actor's email and a new nested field are set
        let fields = [
            ("actor.email_address".into(), json!("mallory@x.io")),
            ("new_owner.email_address".into(), json!("eve@x.io")),
        ];
        let out = overlay(RAW, &fields).unwrap();
        // THEN the email changed in place and the new object was appended
        assert_eq!(
            out,
            RAW.replace("a@x.io", "mallory@x.io").replace(
                r#""is_enabled":true}"#,
                r#""is_enabled":true,"new_owner":{"email_address":"eve@x.io"}}"#
            )
        );
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["actor"]["type"], "user_actor");
    }

    #[test]
    fn the_seeds_own_fields_and_empty_segments_are_refused() {
        // GIVEN paths that would change the identity of the activity, or name nothing
        for path in ["id", "created_at", "type", "", "actor..email"] {
            // WHEN they are set THEN the overlay refuses them
            assert!(overlay(RAW, &[(path.into(), json!(1))]).is_err(), "{path}");
        }
    }
}
