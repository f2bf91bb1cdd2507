//! Picks one page of the feed for a validated query and writes its envelope.
//!
//! Pure: a sorted slice of records and a [`FeedQuery`] in, a [`Page`] out. Only visible
//! records are served. Semantics (all in "result order", asc or desc):
//! - no cursor: the first `limit` matching records;
//! - `after_id=c`: the first `limit` matching records strictly after position `c`;
//! - `before_id=c`: the `limit` matching records strictly before `c` that are closest to it,
//!   still listed in result order;
//! - `has_more`: more matching records exist beyond the page in the direction being paged
//!   (further before `c` for `before_id`, further after otherwise).
//!
//! The envelope embeds each record's stored bytes verbatim (`RawValue`), never re-serialised.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::cursor::CursorCodec;
use crate::faults::PageFault;
use crate::query::{CursorBound, FeedQuery, Order, TypeFilter};
use crate::reply::Wire;
use crate::store::{Position, Record};

/// The records of one page, in result order.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    pub(crate) records: Vec<&'a Record>,
    pub(crate) has_more: bool,
}

#[derive(Serialize)]
struct Envelope<'a> {
    data: Vec<&'a RawValue>,
    has_more: bool,
    first_id: Option<String>,
    last_id: Option<String>,
}

/// Selects the page `query` asks for from `records` (sorted ascending by position).
pub(crate) fn select<'a>(records: &'a [Record], query: &FeedQuery) -> Page<'a> {
    // Narrow to an index range first: time bounds and the cursor are both position bounds.
    let mut start = 0;
    let mut end = records.len();
    if let Some(from) = query.from_nanos {
        start = start.max(records.partition_point(|r| r.position.nanos < from));
    }
    if let Some(until) = query.until_nanos {
        end = end.min(records.partition_point(|r| r.position.nanos < until));
    }
    let at_or_before = |c: &Position| records.partition_point(|r| r.position <= *c);
    let before = |c: &Position| records.partition_point(|r| r.position < *c);
    // Which way to walk from the cursor, in ascending index terms, and whether the walk runs
    // against result order (before_id), so the page must be reversed afterwards.
    let (ascending_walk, reverse) = match (&query.cursor, query.order) {
        (None | Some(CursorBound::After(_)), Order::Asc) => (true, false),
        (None | Some(CursorBound::After(_)), Order::Desc) => (false, false),
        (Some(CursorBound::Before(_)), Order::Asc) => (false, true),
        (Some(CursorBound::Before(_)), Order::Desc) => (true, true),
    };
    if let Some(CursorBound::After(c) | CursorBound::Before(c)) = &query.cursor {
        if ascending_walk {
            start = start.max(at_or_before(c));
        } else {
            end = end.min(before(c));
        }
    }
    let window = records.get(start..end).unwrap_or_default();

    let wanted = query.limit.saturating_add(1);
    let matching = |r: &&Record| r.visible && matches(r, query);
    let mut picked: Vec<&Record> = if ascending_walk {
        window.iter().filter(matching).take(wanted).collect()
    } else {
        window.iter().rev().filter(matching).take(wanted).collect()
    };
    let has_more = picked.len() > query.limit;
    picked.truncate(query.limit);
    if reverse {
        picked.reverse();
    }
    Page { records: picked, has_more }
}

fn matches(record: &Record, query: &FeedQuery) -> bool {
    let organization_ok = query.organization_ids.is_empty()
        || query.organization_ids.iter().any(|wanted| {
            record.organization_id.as_deref() == Some(wanted.as_str())
                || record.organization_uuid.as_deref() == Some(wanted.as_str())
        });
    let type_ok = match &query.types {
        TypeFilter::All => true,
        TypeFilter::Only(types) => types.contains(&record.activity_type),
        TypeFilter::Except(types) => !types.contains(&record.activity_type),
    };
    let actor_ok = query.actor_ids.is_empty()
        || record.actor_user_id.as_ref().is_some_and(|user| query.actor_ids.contains(user));
    organization_ok && type_ok && actor_ok
}

impl Page<'_> {
    /// The response body: `{"data":[...],"has_more":..,"first_id":..,"last_id":..}`.
    pub(crate) fn to_body(&self, cursors: &CursorCodec) -> String {
        let envelope = Envelope {
            data: self.records.iter().map(|r| r.raw.as_ref()).collect(),
            has_more: self.has_more,
            first_id: self.records.first().map(|r| cursors.encode(&r.position)),
            last_id: self.records.last().map(|r| cursors.encode(&r.position)),
        };
        // Serialising strings, bools and raw values that are already valid JSON cannot fail.
        envelope_body(&envelope)
    }

    /// The body of this page for `query`, damaged by `fault`, and how it must go on the wire.
    pub(crate) fn to_faulty_body(
        &self,
        cursors: &CursorCodec,
        query: &FeedQuery,
        fault: PageFault,
    ) -> (String, Wire) {
        let whole = |body: String| (body, Wire::Whole);
        let start = || cursors.encode(&start_position(query));
        match fault {
            PageFault::ResetMidBody => {
                let body = self.to_body(cursors);
                let cut = body.len() / 2;
                (body, Wire::ResetAfter(cut))
            }
            PageFault::EmptyWithMore => {
                // A cursor that moves, but not past any record: just after where the request
                // started (a cursor's position, or the range's edge).
                let mut next = start_position(query);
                if query.cursor.is_some() {
                    next.id.push('\u{0}');
                }
                let cursor = cursors.encode(&next);
                whole(envelope_body(&Envelope {
                    data: Vec::new(),
                    has_more: true,
                    first_id: Some(cursor.clone()),
                    last_id: Some(cursor),
                }))
            }
            PageFault::StuckCursor => whole(envelope_body(&Envelope {
                data: self.records.iter().map(|r| r.raw.as_ref()).collect(),
                has_more: true,
                first_id: Some(
                    self.records.first().map_or_else(start, |r| cursors.encode(&r.position)),
                ),
                last_id: Some(start()),
            })),
            PageFault::MissingField(field) => {
                let middle = self.records.len() / 2;
                let Some(damaged) = self
                    .records
                    .get(middle)
                    .and_then(|r| without_field(r.raw.get(), field.as_str()))
                else {
                    return whole(self.to_body(cursors));
                };
                let mut data: Vec<&RawValue> =
                    self.records.iter().map(|r| r.raw.as_ref()).collect();
                data[middle] = &damaged;
                whole(envelope_body(&Envelope {
                    data,
                    has_more: self.has_more,
                    first_id: self.records.first().map(|r| cursors.encode(&r.position)),
                    last_id: self.records.last().map(|r| cursors.encode(&r.position)),
                }))
            }
            PageFault::InvalidUtf8 => {
                let body = self.to_body(cursors);
                // The first record starts right after `{"data":[`; damage the first byte of its
                // first non-empty string value.
                let offset = r#"{"data":["#.len();
                let at = self
                    .records
                    .first()
                    .and_then(|r| first_string_value_byte(r.raw.get()))
                    .map(|i| offset + i);
                match at {
                    Some(at) if body.len() > at => (body, Wire::NonUtf8At(at)),
                    _ => whole(body),
                }
            }
        }
    }
}

fn envelope_body(envelope: &Envelope<'_>) -> String {
    // Serialising strings, bools and raw values that are already valid JSON cannot fail.
    serde_json::to_string(envelope).unwrap_or_else(|_| {
        r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#.to_owned()
    })
}

/// Where a request's page starts: its cursor's position, or the edge of its time range in
/// result order. A cursor to it reads the same range again.
fn start_position(query: &FeedQuery) -> Position {
    match &query.cursor {
        Some(CursorBound::After(c) | CursorBound::Before(c)) => c.clone(),
        None => Position {
            nanos: match query.order {
                Order::Asc => query.from_nanos.unwrap_or(i128::MIN),
                Order::Desc => query.until_nanos.unwrap_or(i128::MAX),
            },
            // Sorts before every id at that instant.
            id: String::new(),
        },
    }
}

/// `raw` (a JSON object) without `field`; `None` when it has no such field. Keys come out
/// sorted: the damaged record is not served byte for byte anyway.
fn without_field(raw: &str, field: &str) -> Option<Box<RawValue>> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    object.remove(field)?;
    RawValue::from_string(serde_json::to_string(&object).ok()?).ok()
}

/// The offset in `raw` of the first byte of its first non-empty string value (after `":"`).
fn first_string_value_byte(raw: &str) -> Option<usize> {
    let bytes = raw.as_bytes();
    raw.match_indices(r#"":""#)
        .map(|(i, m)| i + m.len())
        .find(|&at| bytes.get(at).is_some_and(|b| *b != b'"' && *b != b'\\'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::FeedQuery;

    /// Five visible records one second apart (t0..t4) plus a hidden one at t2.
    fn records() -> Vec<Record> {
        let mut store = crate::store::Store::default();
        for (i, id) in ["activity_0", "activity_1", "activity_2", "activity_3", "activity_4"]
            .iter()
            .enumerate()
        {
            let raw = format!(
                r#"{{"id":"{id}","created_at":"2026-01-01T00:00:0{i}Z","organization_id":"org_{o}","actor":{{"type":"user_actor","user_id":"user_{i}"}},"type":"t{t}"}}"#,
                o = i % 2,
                t = i % 3
            );
            store.insert(Record::from_raw(&raw, true).unwrap()).unwrap();
        }
        let hidden = r#"{"id":"activity_h","created_at":"2026-01-01T00:00:02Z","type":"t0"}"#;
        store.insert(Record::from_raw(hidden, false).unwrap()).unwrap();
        store.records().to_vec()
    }

    fn query(raw: &str) -> FeedQuery {
        FeedQuery::parse(raw, 5000, &CursorCodec::from_seed(1)).unwrap()
    }

    fn ids(page: &Page<'_>) -> Vec<String> {
        page.records.iter().map(|r| r.id().to_owned()).collect()
    }

    fn cursor_of(records: &[Record], id: &str) -> String {
        let record = records.iter().find(|r| r.id() == id).unwrap();
        CursorCodec::from_seed(1).encode(&record.position)
    }

    #[test]
    fn desc_is_the_default_and_hidden_records_are_skipped() {
        let recs = records();
        let page = select(&recs, &query("limit=3"));
        assert_eq!(ids(&page), ["activity_4", "activity_3", "activity_2"]);
        assert!(page.has_more);
    }

    #[test]
    fn after_id_continues_in_desc_order() {
        let recs = records();
        let c = cursor_of(&recs, "activity_2");
        let page = select(&recs, &query(&format!("limit=3&after_id={c}")));
        assert_eq!(ids(&page), ["activity_1", "activity_0"]);
        assert!(!page.has_more);
    }

    #[test]
    fn before_id_in_desc_order_gives_the_newer_records_adjacent_to_the_cursor() {
        // GIVEN the cursor of activity_1
        let recs = records();
        let c = cursor_of(&recs, "activity_1");
        // WHEN asking for 2 records before it in desc order
        let page = select(&recs, &query(&format!("limit=2&before_id={c}")));
        // THEN the two closest newer records, newest first, with more beyond
        assert_eq!(ids(&page), ["activity_3", "activity_2"]);
        assert!(page.has_more);
    }

    #[test]
    fn before_id_in_asc_order_gives_the_older_records_adjacent_to_the_cursor() {
        let recs = records();
        let c = cursor_of(&recs, "activity_3");
        let page = select(&recs, &query(&format!("order=asc&limit=2&before_id={c}")));
        assert_eq!(ids(&page), ["activity_1", "activity_2"]);
        assert!(page.has_more);
    }

    #[test]
    fn filters_and_bounds_apply_together_with_cursors() {
        // GIVEN asc order after activity_0, only org_0, only before t4
        let recs = records();
        let c = cursor_of(&recs, "activity_0");
        let page = select(
            &recs,
            &query(&format!(
                "order=asc&after_id={c}&organization_ids[]=org_0&created_at.lt=2026-01-01T00:00:04Z"
            )),
        );
        // THEN only activity_2 remains
        assert_eq!(ids(&page), ["activity_2"]);
        assert!(!page.has_more);
    }

    #[test]
    fn an_empty_page_has_null_cursors() {
        let recs = records();
        let page = select(&recs, &query("activity_types[]=nothing"));
        assert_eq!(
            page.to_body(&CursorCodec::from_seed(1)),
            r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#
        );
    }

    #[test]
    fn the_body_embeds_raw_bytes_verbatim() {
        let recs = records();
        let page = select(&recs, &query("limit=1"));
        let body = page.to_body(&CursorCodec::from_seed(1));
        assert!(body.starts_with(&format!("{{\"data\":[{}]", recs[5].raw.get())));
    }
}
