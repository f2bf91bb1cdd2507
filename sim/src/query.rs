//! Turns the raw query string of a feed request into a validated [`FeedQuery`], or the 400
//! the API gives for it.
//!
//! Strict on purpose: the simulator exists to catch client bugs, so anything the real API
//! documents as invalid is refused, and so is anything it does not document (unknown
//! parameters, `organization_ids` without brackets, a scalar given twice, empty values).
//! Keys and values are percent-decoded the standard form way (`%XX`, and `+` is a space, which
//! is why an unencoded `+01:00` offset fails as a timestamp). Time bounds are normalised to one
//! half-open nanosecond range `[from, until)`.

use jiff::Timestamp;

use crate::cursor::CursorCodec;
use crate::store::Position;

pub(crate) const DEFAULT_LIMIT: u32 = 100;

const LIST_PARAMETERS: [&str; 5] = [
    "organization_ids[]",
    "activity_types[]",
    "exclude_activity_types[]",
    "actor_ids[]",
    "user_ids[]",
];

/// Result order; the feed's default is newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Order {
    Asc,
    #[default]
    Desc,
}

/// Where a page starts, relative to a cursor's position, in result order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CursorBound {
    /// The records strictly after the position.
    After(Position),
    /// The records strictly before the position, the ones adjacent to it.
    Before(Position),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum TypeFilter {
    #[default]
    All,
    Only(Vec<String>),
    Except(Vec<String>),
}

/// A validated feed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedQuery {
    pub(crate) limit: usize,
    pub(crate) cursor: Option<CursorBound>,
    pub(crate) order: Order,
    /// Inclusive lower bound on `created_at`, in Unix nanoseconds.
    pub(crate) from_nanos: Option<i128>,
    /// Exclusive upper bound on `created_at`, in Unix nanoseconds.
    pub(crate) until_nanos: Option<i128>,
    /// Empty means every organization (and none).
    pub(crate) organization_ids: Vec<String>,
    pub(crate) types: TypeFilter,
    /// Empty means every actor.
    pub(crate) actor_ids: Vec<String>,
}

/// A request the API refuses with 400 `invalid_request_error`; the text is the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("the query string is not valid percent-encoded UTF-8")]
    Encoding,
    #[error("unknown query parameter: {name}{hint}")]
    UnknownParameter { name: String, hint: String },
    #[error("{0}: given more than once")]
    Repeated(String),
    #[error("{0}: must not be empty")]
    Empty(String),
    #[error("limit: must be an integer from 1 to {max}, got {value:?}")]
    Limit { value: String, max: u32 },
    #[error("after_id and before_id cannot be combined")]
    BothCursors,
    #[error("{0}: invalid cursor")]
    Cursor(&'static str),
    #[error("{param}: {value:?} is not an RFC 3339 timestamp")]
    Timestamp { param: &'static str, value: String },
    #[error("order: must be asc or desc, got {0:?}")]
    Order(String),
    #[error("activity_types[] and exclude_activity_types[] cannot be combined")]
    BothTypeFilters,
    #[error("{param}: {value:?} is not a user id (user_...)")]
    ActorId { param: &'static str, value: String },
    #[error("organization_ids[]: {0:?} is neither an org_ id nor an organization UUID")]
    OrganizationId(String),
}

#[derive(Default)]
struct Scalars {
    limit: Option<String>,
    after_id: Option<String>,
    before_id: Option<String>,
    order: Option<String>,
    gte: Option<String>,
    gt: Option<String>,
    lte: Option<String>,
    lt: Option<String>,
}

impl FeedQuery {
    /// Parses `raw` (the query string as received, without `?`).
    pub(crate) fn parse(
        raw: &str,
        max_page_size: u32,
        cursors: &CursorCodec,
    ) -> Result<Self, QueryError> {
        // A cap of 0 would make every page empty with has_more true: treat it as 1.
        let max_page_size = max_page_size.max(1);
        let mut scalars = Scalars::default();
        let mut organization_ids = Vec::new();
        let mut activity_types = Vec::new();
        let mut exclude_types = Vec::new();
        let mut actor_ids = Vec::new();

        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key).ok_or(QueryError::Encoding)?;
            let value = percent_decode(value).ok_or(QueryError::Encoding)?;
            if value.is_empty() {
                return Err(QueryError::Empty(key));
            }
            let slot = match key.as_str() {
                "limit" => &mut scalars.limit,
                "after_id" => &mut scalars.after_id,
                "before_id" => &mut scalars.before_id,
                "order" => &mut scalars.order,
                "created_at.gte" => &mut scalars.gte,
                "created_at.gt" => &mut scalars.gt,
                "created_at.lte" => &mut scalars.lte,
                "created_at.lt" => &mut scalars.lt,
                "organization_ids[]" => {
                    organization_ids.push(parse_organization_id(value)?);
                    continue;
                }
                "activity_types[]" => {
                    activity_types.push(value);
                    continue;
                }
                "exclude_activity_types[]" => {
                    exclude_types.push(value);
                    continue;
                }
                "actor_ids[]" | "user_ids[]" => {
                    let param = if key == "actor_ids[]" { "actor_ids[]" } else { "user_ids[]" };
                    actor_ids.push(parse_actor_id(param, value)?);
                    continue;
                }
                _ => return Err(unknown_parameter(key)),
            };
            if slot.is_some() {
                return Err(QueryError::Repeated(key));
            }
            *slot = Some(value);
        }

        let limit = match scalars.limit {
            None => DEFAULT_LIMIT.min(max_page_size),
            Some(text) => parse_limit(&text, max_page_size)?,
        };
        let cursor = match (scalars.after_id, scalars.before_id) {
            (Some(_), Some(_)) => return Err(QueryError::BothCursors),
            (Some(c), None) => Some(CursorBound::After(
                cursors.decode(&c).map_err(|_| QueryError::Cursor("after_id"))?,
            )),
            (None, Some(c)) => Some(CursorBound::Before(
                cursors.decode(&c).map_err(|_| QueryError::Cursor("before_id"))?,
            )),
            (None, None) => None,
        };
        let order = match scalars.order.as_deref() {
            None => Order::default(),
            Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(other) => return Err(QueryError::Order(other.to_owned())),
        };
        let types = match (activity_types.is_empty(), exclude_types.is_empty()) {
            (false, false) => return Err(QueryError::BothTypeFilters),
            (false, true) => TypeFilter::Only(activity_types),
            (true, false) => TypeFilter::Except(exclude_types),
            (true, true) => TypeFilter::All,
        };

        // gt t is gte t+1ns and lte t is lt t+1ns: one half-open range covers all four.
        let lower =
            [bound("created_at.gte", scalars.gte, 0)?, bound("created_at.gt", scalars.gt, 1)?];
        let upper =
            [bound("created_at.lt", scalars.lt, 0)?, bound("created_at.lte", scalars.lte, 1)?];

        Ok(Self {
            limit: limit as usize,
            cursor,
            order,
            from_nanos: lower.into_iter().flatten().max(),
            until_nanos: upper.into_iter().flatten().min(),
            organization_ids,
            types,
            actor_ids,
        })
    }
}

fn unknown_parameter(name: String) -> QueryError {
    let bracketed = format!("{name}[]");
    let hint = if LIST_PARAMETERS.contains(&bracketed.as_str()) {
        format!(" (list parameters take brackets: {bracketed})")
    } else {
        String::new()
    };
    QueryError::UnknownParameter { name, hint }
}

fn parse_limit(text: &str, max: u32) -> Result<u32, QueryError> {
    let refuse = || QueryError::Limit { value: text.to_owned(), max };
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(refuse()),
    }
}

fn parse_actor_id(param: &'static str, value: String) -> Result<String, QueryError> {
    if value.starts_with("user_") && value.len() > "user_".len() {
        Ok(value)
    } else {
        Err(QueryError::ActorId { param, value })
    }
}

fn parse_organization_id(value: String) -> Result<String, QueryError> {
    let is_org_id = value.starts_with("org_") && value.len() > "org_".len();
    if is_org_id || is_uuid(&value) { Ok(value) } else { Err(QueryError::OrganizationId(value)) }
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The bound in Unix nanoseconds plus `shift`, if the parameter was given.
fn bound(
    param: &'static str,
    value: Option<String>,
    shift: i128,
) -> Result<Option<i128>, QueryError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed = is_rfc3339(&value).then(|| value.parse::<Timestamp>().ok()).flatten();
    match parsed {
        Some(at) => Ok(Some(at.as_nanosecond() + shift)),
        None => Err(QueryError::Timestamp { param, value }),
    }
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`. jiff alone would also take
/// ISO 8601 variants the API does not document (no seconds, basic format, `[zone]` suffix).
pub(crate) fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range).is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let date_time = digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let rest = &b[i..];
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Standard form decoding: `%XX` is a byte, `+` is a space; `None` on a bad escape or on bytes
/// that are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<FeedQuery, QueryError> {
        FeedQuery::parse(raw, 5000, &CursorCodec::from_seed(1))
    }

    fn nanos(text: &str) -> i128 {
        text.parse::<Timestamp>().unwrap().as_nanosecond()
    }

    #[test]
    fn an_empty_query_gives_the_documented_defaults() {
        let q = parse("").unwrap();
        assert_eq!(q.limit, 100);
        assert_eq!(q.order, Order::Desc);
        assert_eq!(q.cursor, None);
        assert_eq!((q.from_nanos, q.until_nanos), (None, None));
        assert_eq!(q.types, TypeFilter::All);
        assert!(q.organization_ids.is_empty() && q.actor_ids.is_empty());
    }

    #[test]
    fn the_default_limit_never_exceeds_the_page_size_cap() {
        let q = FeedQuery::parse("", 50, &CursorCodec::from_seed(1)).unwrap();
        assert_eq!(q.limit, 50);
    }

    #[test]
    fn limit_accepts_1_to_max_and_nothing_else() {
        assert_eq!(parse("limit=1").unwrap().limit, 1);
        assert_eq!(parse("limit=5000").unwrap().limit, 5000);
        for bad in [
            "limit=0",
            "limit=5001",
            "limit=-1",
            "limit=+5",
            "limit=ten",
            "limit=1.5",
            "limit=99999999999",
        ] {
            assert!(matches!(parse(bad), Err(QueryError::Limit { .. })), "{bad}");
        }
    }

    #[test]
    fn list_parameters_repeat_and_are_percent_decoded() {
        // GIVEN repeated list keys, one with encoded brackets
        let q = parse(
            "activity_types[]=claude_chat_created&activity_types%5B%5D=claude_chat_viewed&user_ids[]=user_1&actor_ids[]=user_2",
        )
        .unwrap();
        // THEN each value is kept, and the alias joins actor_ids
        assert_eq!(
            q.types,
            TypeFilter::Only(vec!["claude_chat_created".into(), "claude_chat_viewed".into()])
        );
        assert_eq!(q.actor_ids, ["user_1", "user_2"]);
    }

    #[test]
    fn organization_ids_take_org_ids_and_uuids_only() {
        let q = parse(
            "organization_ids[]=org_01Wv6Q&organization_ids[]=5b236db4-3fb4-4bf3-a560-b5e266038a15",
        )
        .unwrap();
        assert_eq!(q.organization_ids.len(), 2);
        assert!(matches!(parse("organization_ids[]=acme"), Err(QueryError::OrganizationId(_))));
    }

    #[test]
    fn unknown_parameters_are_refused_by_name() {
        // GIVEN organization_ids without brackets
        let err = parse("organization_ids=org_1").unwrap_err();
        // THEN the message names it and hints at the brackets
        assert_eq!(
            err.to_string(),
            "unknown query parameter: organization_ids (list parameters take brackets: organization_ids[])"
        );
        assert_eq!(parse("page=2").unwrap_err().to_string(), "unknown query parameter: page");
    }

    #[test]
    fn a_scalar_given_twice_is_refused() {
        assert_eq!(parse("limit=1&limit=2"), Err(QueryError::Repeated("limit".into())));
    }

    #[test]
    fn empty_values_are_refused() {
        assert_eq!(parse("limit="), Err(QueryError::Empty("limit".into())));
        assert_eq!(parse("activity_types[]"), Err(QueryError::Empty("activity_types[]".into())));
    }

    #[test]
    fn both_cursors_are_refused() {
        let codec = CursorCodec::from_seed(1);
        let c = codec.encode(&Position { nanos: 0, id: "activity_a".into() });
        assert_eq!(parse(&format!("after_id={c}&before_id={c}")), Err(QueryError::BothCursors));
    }

    #[test]
    fn a_valid_cursor_becomes_its_position() {
        let codec = CursorCodec::from_seed(1);
        let pos = Position { nanos: 42, id: "activity_a".into() };
        let q = parse(&format!("before_id={}", codec.encode(&pos))).unwrap();
        assert_eq!(q.cursor, Some(CursorBound::Before(pos)));
    }

    #[test]
    fn an_activity_id_is_not_a_cursor() {
        assert_eq!(
            parse("after_id=activity_01XyDMpzjS89pFZXqSFUBDr6"),
            Err(QueryError::Cursor("after_id"))
        );
    }

    #[test]
    fn time_bounds_become_one_half_open_range() {
        // GIVEN gte and gt (the tighter wins) and lt and lte
        let q = parse("created_at.gte=2026-04-01T00:00:00Z&created_at.gt=2026-04-01T00:00:00Z&created_at.lte=2026-04-02T00:00:00Z&created_at.lt=2026-04-03T00:00:00Z").unwrap();
        // THEN the range is (gt, lte] expressed as [from, until)
        assert_eq!(q.from_nanos, Some(nanos("2026-04-01T00:00:00Z") + 1));
        assert_eq!(q.until_nanos, Some(nanos("2026-04-02T00:00:00Z") + 1));
    }

    #[test]
    fn an_encoded_offset_is_accepted_and_a_raw_plus_is_not() {
        let q = parse("created_at.gte=2026-04-01T02:00:00%2B02:00").unwrap();
        assert_eq!(q.from_nanos, Some(nanos("2026-04-01T00:00:00Z")));
        assert!(matches!(
            parse("created_at.gte=2026-04-01T02:00:00+02:00"),
            Err(QueryError::Timestamp { .. })
        ));
    }

    #[test]
    fn non_rfc3339_timestamps_are_refused() {
        for bad in [
            "created_at.lt=2026-04-01",
            "created_at.lt=2026-04-01T00:00Z",
            "created_at.lt=2026-04-01T00:00:00",
            "created_at.lt=20260401T000000Z",
            "created_at.lt=2026-04-01T00:00:00Z[UTC]",
            "created_at.lt=2026-04-01T00:00:00.Z",
            "created_at.lt=2026-13-01T00:00:00Z",
            "created_at.lt=1775001600",
        ] {
            assert!(matches!(parse(bad), Err(QueryError::Timestamp { .. })), "{bad}");
        }
    }

    #[test]
    fn order_accepts_asc_and_desc_only() {
        assert_eq!(parse("order=asc").unwrap().order, Order::Asc);
        assert_eq!(parse("order=desc").unwrap().order, Order::Desc);
        assert_eq!(parse("order=ASC"), Err(QueryError::Order("ASC".into())));
    }

    #[test]
    fn include_and_exclude_types_cannot_be_combined() {
        assert_eq!(
            parse("activity_types[]=a&exclude_activity_types[]=b"),
            Err(QueryError::BothTypeFilters)
        );
        assert_eq!(
            parse("exclude_activity_types[]=b").unwrap().types,
            TypeFilter::Except(vec!["b".into()])
        );
    }

    #[test]
    fn actor_ids_must_be_user_ids() {
        assert!(matches!(
            parse("actor_ids[]=apikey_1"),
            Err(QueryError::ActorId { param: "actor_ids[]", .. })
        ));
        assert!(matches!(
            parse("user_ids[]=bob"),
            Err(QueryError::ActorId { param: "user_ids[]", .. })
        ));
    }

    #[test]
    fn bad_percent_encoding_is_refused() {
        assert_eq!(parse("limit=%zz"), Err(QueryError::Encoding));
        assert_eq!(parse("limit=%4"), Err(QueryError::Encoding));
        assert_eq!(parse("activity_types[]=%ff"), Err(QueryError::Encoding));
    }

    #[test]
    fn percent_decode_handles_plus_and_multibyte() {
        assert_eq!(percent_decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("%"), None);
    }
}
