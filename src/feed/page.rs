//! Parsing one page of the feed: the envelope, and per activity only `id` and `created_at`.
//!
//! Every other field stays in the activity's raw JSON text, kept as served so new activity types
//! and fields pass through untouched. The one change ever made is that a CR or LF byte between
//! tokens (legal JSON whitespace, the only place such bytes can appear) becomes a space, so each
//! activity fits on one NDJSON line.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One activity: the two fields the collector uses, and the record as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: String,
    pub created_at: Timestamp,
    /// The JSON object exactly as served, on one line.
    pub raw: Box<str>,
}

/// One page of the feed in result order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub activities: Vec<Activity>,
    pub has_more: bool,
    /// Opaque cursor after the page's last record; `None` on an empty page.
    pub last_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the body is not the feed's JSON envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("activity #{index} lacks a usable id or created_at: {source}; raw: {raw}")]
    Activity {
        index: usize,
        raw: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("activity {id} has created_at {created_at:?}, which is not RFC 3339")]
    Timestamp { id: String, created_at: String },
    #[error("has_more is true but the page carries no cursor to continue from")]
    NoCursor,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct Head {
    id: String,
    created_at: String,
}

impl Page {
    /// Parses a response body. A page that cannot be read whole is an error, never a partial page.
    pub fn parse(body: &[u8]) -> Result<Page, PageError> {
        let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(PageError::Envelope)?;
        let mut activities = Vec::with_capacity(envelope.data.len());
        for (index, raw) in envelope.data.into_iter().enumerate() {
            let text = raw.get();
            let head: Head = serde_json::from_str(text).map_err(|source| PageError::Activity {
                index,
                raw: text.to_owned(),
                source,
            })?;
            let created_at = head.created_at.parse::<Timestamp>().map_err(|_| {
                PageError::Timestamp { id: head.id.clone(), created_at: head.created_at.clone() }
            })?;
            activities.push(Activity { id: head.id, created_at, raw: one_line(text) });
        }
        if envelope.has_more && envelope.last_id.is_none() {
            return Err(PageError::NoCursor);
        }
        Ok(Page { activities, has_more: envelope.has_more, last_id: envelope.last_id })
    }
}

fn one_line(text: &str) -> Box<str> {
    if text.contains(['\n', '\r']) { text.replace(['\n', '\r'], " ").into() } else { text.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_record_byte_for_byte() {
        // GIVEN a page whose records have unknown fields, unicode and odd spacing
        let rec = r#"{"id":"activity_1","created_at":"2026-04-10T08:09:10.123456Z","type":"brand_new_type","x": {"é":"日本語 \"q\""} }"#;
        let body = format!(r#"{{"data":[{rec}],"has_more":false,"first_id":"c1","last_id":"c2"}}"#);
        // WHEN parsed
        let page = Page::parse(body.as_bytes()).unwrap();
        // THEN the raw text is exactly the served object
        assert_eq!(&*page.activities[0].raw, rec);
        assert_eq!(page.activities[0].id, "activity_1");
        assert_eq!(page.activities[0].created_at.to_string(), "2026-04-10T08:09:10.123456Z");
        assert_eq!(page.last_id.as_deref(), Some("c2"));
    }

    #[test]
    fn newlines_between_tokens_become_spaces() {
        let body = "{\"data\":[{\"id\":\"a\",\r\n\"created_at\":\"2026-01-01T00:00:00Z\"}],\"has_more\":false}";
        let page = Page::parse(body.as_bytes()).unwrap();
        assert_eq!(
            &*page.activities[0].raw,
            "{\"id\":\"a\",  \"created_at\":\"2026-01-01T00:00:00Z\"}"
        );
    }

    #[test]
    fn a_record_without_id_fails_the_page_and_names_it() {
        let body =
            r#"{"data":[{"created_at":"2026-01-01T00:00:00Z","type":"x"}],"has_more":false}"#;
        let err = Page::parse(body.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(r#"raw: {"created_at""#), "{err}");
    }

    #[test]
    fn a_bad_timestamp_fails_the_page() {
        let body = r#"{"data":[{"id":"a","created_at":"yesterday"}],"has_more":false}"#;
        assert!(matches!(Page::parse(body.as_bytes()), Err(PageError::Timestamp { .. })));
    }

    #[test]
    fn has_more_without_cursor_is_an_error() {
        let body = r#"{"data":[],"has_more":true,"first_id":null,"last_id":null}"#;
        assert!(matches!(Page::parse(body.as_bytes()), Err(PageError::NoCursor)));
    }

    #[test]
    fn malformed_json_is_an_envelope_error() {
        assert!(matches!(Page::parse(b"{\"data\":[{"), Err(PageError::Envelope(_))));
    }
}
