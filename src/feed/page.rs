//! Parsing one page of the feed: the envelope, and per activity only `id` and `created_at`.
//!
//! Every other field stays in the activity's raw JSON text, kept as served so new activity types
//! and fields pass through untouched. The one change ever made is that a CR or LF byte between
//! tokens (legal JSON whitespace, the only place such bytes can appear) becomes a space, so each
//! activity fits on one NDJSON line.
//!
//! An activity's text is a view into the page's body, not a copy: a page costs its body and a few
//! dozen bytes an activity, and the body is freed (or reused) once the last activity is written.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One activity: the two fields the collector uses, and the record as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: String,
    pub created_at: Timestamp,
    /// The JSON object exactly as served, on one line: valid UTF-8, a view into the page's body.
    pub raw: Bytes,
}

/// One page of the feed in result order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub activities: Vec<Activity>,
    pub has_more: bool,
    /// Opaque cursor after the page's last record; `None` on an empty page.
    pub last_id: Option<String>,
}

/// How much of a bad record an error quotes.
pub const QUOTED_BYTES: usize = 200;

/// The start of `text`, cut at a character boundary, with `…` when cut.
fn quote(text: &str) -> String {
    if text.len() <= QUOTED_BYTES {
        return text.to_owned();
    }
    format!("{}…", &text[..text.floor_char_boundary(QUOTED_BYTES)])
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the body is not the feed's JSON envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("activity #{index} lacks a usable id or created_at: {source}; raw: {raw}")]
    Activity {
        index: usize,
        /// The record's first [`QUOTED_BYTES`] bytes: enough to find it, not the personal data of
        /// a whole record in an error message.
        raw: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("activity {id} has created_at {created_at:?}, which is not RFC 3339")]
    Timestamp { id: String, created_at: String },
    #[error("has_more is true but the page carries no cursor to continue from")]
    NoCursor,
    #[error(
        "has_more is true but the page's cursor is the one it was asked after: paging would not move"
    )]
    StuckCursor,
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
struct Head<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
}

impl Page {
    /// Parses a response body, which the page's activities then share. A page that cannot be read
    /// whole is an error, never a partial page.
    pub fn parse<B>(mut body: B) -> Result<Page, PageError>
    where
        B: AsRef<[u8]> + AsMut<[u8]> + Send + 'static,
    {
        let Unshared { mut activities, texts, has_more, last_id } = read_envelope(body.as_ref())?;
        // Validated JSON has CR and LF only between tokens: each becomes a space, in place.
        let bytes = body.as_mut();
        let mut from = 0;
        while let Some(at) = memchr::memchr2(b'\n', b'\r', &bytes[from..]) {
            bytes[from + at] = b' ';
            from += at + 1;
        }
        let body = Bytes::from_owner(body);
        for (activity, text) in activities.iter_mut().zip(texts) {
            activity.raw = body.slice(text);
        }
        Ok(Page { activities, has_more, last_id })
    }
}

/// What [`Page::parse`] reads before the body is shared: the activities without their text yet,
/// and where each one's text lies in the body.
struct Unshared {
    activities: Vec<Activity>,
    texts: Vec<Range<usize>>,
    has_more: bool,
    last_id: Option<String>,
}

/// Parses the envelope, and per record its head and where its text lies in `body`.
fn read_envelope(body: &[u8]) -> Result<Unshared, PageError> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(PageError::Envelope)?;
    let base = body.as_ptr() as usize;
    let mut activities = Vec::with_capacity(envelope.data.len());
    let mut texts = Vec::with_capacity(envelope.data.len());
    for (index, raw) in envelope.data.into_iter().enumerate() {
        let text = raw.get();
        // The fast path reads only the two fields; anything unusual takes serde's full parse,
        // which also gives the precise error.
        let head = match scan_head(text) {
            Some(head) => head,
            None => serde_json::from_str(text).map_err(|source| PageError::Activity {
                index,
                raw: quote(text),
                source,
            })?,
        };
        let Ok(created_at) = head.created_at.parse::<Timestamp>() else {
            return Err(PageError::Timestamp {
                id: head.id.into_owned(),
                created_at: head.created_at.into_owned(),
            });
        };
        activities.push(Activity { id: head.id.into_owned(), created_at, raw: Bytes::new() });
        // A borrowed raw value is a slice of `body`: its offset is the distance between them.
        let start = text.as_ptr() as usize - base;
        texts.push(start..start + text.len());
    }
    if envelope.has_more && envelope.last_id.is_none() {
        return Err(PageError::NoCursor);
    }
    Ok(Unshared { activities, texts, has_more: envelope.has_more, last_id: envelope.last_id })
}

/// Finds `id` and `created_at` among the top-level members of one record, without parsing the
/// rest: the envelope's parse has already checked the record is valid JSON, and the API sends
/// these two first, so a record costs a few dozen bytes of scanning instead of a second parse.
/// `None` when either is missing or not a plain string (the caller then parses in full).
fn scan_head(text: &str) -> Option<Head<'_>> {
    let bytes = text.as_bytes();
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let (mut id, mut created_at) = (None, None);
    loop {
        i = skip_ws(bytes, i);
        if bytes.get(i) != Some(&b'"') {
            return None; // `}`: the object ended without both
        }
        let key_end = string_end(bytes, i)?;
        let key = &text[i + 1..key_end];
        i = skip_ws(bytes, key_end + 1);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(bytes, i + 1);
        let value_end = value_end(bytes, i)?;
        let slot = match key {
            "id" => Some(&mut id),
            "created_at" => Some(&mut created_at),
            _ => None,
        };
        if let Some(slot) = slot {
            let token = &text[i..value_end];
            if !token.starts_with('"') {
                return None;
            }
            *slot = Some(if token.contains('\\') {
                Cow::Owned(serde_json::from_str::<String>(token).ok()?)
            } else {
                Cow::Borrowed(&token[1..token.len() - 1])
            });
        }
        if id.is_some() && created_at.is_some() {
            return Some(Head { id: id?, created_at: created_at? });
        }
        i = skip_ws(bytes, value_end);
        match bytes.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just after the value that starts at `start`.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => Some(string_end(bytes, start)? + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match bytes.get(i)? {
                    b'"' => i = string_end(bytes, i)?,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = start;
            while !matches!(
                bytes.get(i),
                None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            ) {
                i += 1;
            }
            Some(i)
        }
    }
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
        let page = Page::parse(body.as_bytes().to_vec()).unwrap();
        // THEN the raw text is exactly the served object
        assert_eq!(&page.activities[0].raw[..], rec.as_bytes());
        assert_eq!(page.activities[0].id, "activity_1");
        assert_eq!(page.activities[0].created_at.to_string(), "2026-04-10T08:09:10.123456Z");
        assert_eq!(page.last_id.as_deref(), Some("c2"));
    }

    #[test]
    fn activities_are_views_into_the_body_not_copies() {
        let body = br#"{"data":[{"id":"a","created_at":"2026-01-01T00:00:00Z"},{"id":"b","created_at":"2026-01-01T00:00:01Z"}],"has_more":false}"#.to_vec();
        let start = body.as_ptr() as usize;
        let page = Page::parse(body).unwrap();
        let offsets: Vec<usize> =
            page.activities.iter().map(|a| a.raw.as_ptr() as usize - start).collect();
        assert_eq!(offsets, [9, 56]);
    }

    #[test]
    fn the_fast_scan_agrees_with_a_full_parse() {
        for rec in [
            r#"{"id":"a1","created_at":"2026-01-01T00:00:00Z","x":1}"#,
            r#"{"type":"t","actor":{"id":"not this","n":[1,{"created_at":"no"}]},"s":"q\"}{","created_at":"2026-01-01T00:00:00.5Z","n":-1.5e3,"b":true,"id":"a\u00e92"}"#,
            r#" { "id" : "a3" , "created_at" : "2026-01-01T00:00:00Z" } "#,
        ] {
            let fast = scan_head(rec).unwrap();
            let full: Head<'_> = serde_json::from_str(rec).unwrap();
            assert_eq!((fast.id, fast.created_at), (full.id, full.created_at), "{rec}");
        }
        assert!(scan_head(r#"{"id":7,"created_at":"2026-01-01T00:00:00Z"}"#).is_none());
        assert!(scan_head(r#"{"created_at":"2026-01-01T00:00:00Z"}"#).is_none());
    }

    #[test]
    fn newlines_between_tokens_become_spaces() {
        let body = "{\"data\":[{\"id\":\"a\",\r\n\"created_at\":\"2026-01-01T00:00:00Z\"}],\"has_more\":false}";
        let page = Page::parse(body.as_bytes().to_vec()).unwrap();
        assert_eq!(
            &page.activities[0].raw[..],
            b"{\"id\":\"a\",  \"created_at\":\"2026-01-01T00:00:00Z\"}"
        );
    }

    #[test]
    fn a_record_without_id_fails_the_page_and_names_it() {
        let body =
            r#"{"data":[{"created_at":"2026-01-01T00:00:00Z","type":"x"}],"has_more":false}"#;
        let err = Page::parse(body.as_bytes().to_vec()).unwrap_err();
        assert!(err.to_string().contains(r#"raw: {"created_at""#), "{err}");
    }

    #[test]
    fn a_bad_record_is_quoted_in_part_only() {
        let long =
            format!(r#"{{"created_at":"2026-01-01T00:00:00Z","note":"{}"}}"#, "é".repeat(500));
        let body = format!(r#"{{"data":[{long}],"has_more":false}}"#);
        let err = Page::parse(body.into_bytes()).unwrap_err().to_string();
        assert!(err.contains(r#"raw: {"created_at""#) && err.ends_with('…'), "{err}");
        assert!(err.len() < QUOTED_BYTES + 200, "{} bytes", err.len());
    }

    #[test]
    fn a_bad_timestamp_fails_the_page() {
        let body = r#"{"data":[{"id":"a","created_at":"yesterday"}],"has_more":false}"#;
        assert!(matches!(Page::parse(body.as_bytes().to_vec()), Err(PageError::Timestamp { .. })));
    }

    #[test]
    fn has_more_without_cursor_is_an_error() {
        let body = r#"{"data":[],"has_more":true,"first_id":null,"last_id":null}"#;
        assert!(matches!(Page::parse(body.as_bytes().to_vec()), Err(PageError::NoCursor)));
    }

    #[test]
    fn malformed_json_is_an_envelope_error() {
        assert!(matches!(Page::parse(b"{\"data\":[{".to_vec()), Err(PageError::Envelope(_))));
    }
}
