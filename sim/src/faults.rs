//! Scripted faults: what goes wrong, and how each kind changes one feed request.
//!
//! Faults wait in a FIFO queue of slots; each authenticated feed request that the rate limiter
//! admits takes the next slot before normal processing. A slot is a fault or nothing (`None`: the
//! request is served normally), so a schedule says exactly which request meets which fault. This
//! module is the one place that knows the kinds: a new kind is a [`Fault`] variant, a line in
//! [`FaultSpec`] for the control endpoint, and an arm in [`Fault::injection`] (with a
//! [`PageFault`] when it needs the page, e.g. a cursor that does not move or a record without
//! id). [`Fault::random_schedule`] draws a seeded, transient-heavy schedule for chaos tests.

use std::time::Duration;

use serde::Deserialize;

use crate::reply::{ErrorType, Reply};
use crate::rng::Rng;

/// Something to go wrong on one upcoming feed request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "FaultSpec")]
pub enum Fault {
    /// Answer with this status and an error body; `retry_after` sets `retry-after` (seconds),
    /// `should_retry` sets `x-should-retry`.
    Status { status: u16, error_type: String, retry_after: Option<u32>, should_retry: Option<bool> },
    /// Wait, then serve normally (slower than a client's timeout, it is a timeout).
    Delay(Duration),
    /// 200 with a body that is not JSON (a page cut short).
    MalformedBody,
    /// 200 with the page's headers (its full `content-length`) and the first half of its body,
    /// then the connection is dropped.
    ConnectionReset,
    /// The page is served with one record, the middle one, lacking `field`. An empty page is
    /// served as it is.
    MissingField { field: RecordField },
    /// 200 `{"data":[],"has_more":true,...}` whose cursor moves on by as little as can be: to
    /// just after the request's own cursor (or to the start of the range without one), so
    /// following it skips nothing and reads the records the page should have held.
    EmptyPageWithMore,
    /// The page's records with `has_more: true` and a `last_id` that does not advance: the
    /// request's own `after_id` (or, without one, the start of the range).
    StuckCursor,
    /// 400 `invalid_request_error` "after_id: invalid cursor", as for an unknown or expired
    /// cursor.
    InvalidCursor,
    /// The page with one byte of its first record replaced by 0xFF, which is not UTF-8. An empty
    /// page is served as it is.
    InvalidUtf8,
    /// Revokes the key that made the request: 401 now and for every later request with it.
    RevokeKey,
}

/// A field every activity has, for [`Fault::MissingField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordField {
    Id,
    CreatedAt,
}

impl RecordField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::CreatedAt => "created_at",
        }
    }
}

/// The message of the API's 400 for a cursor it does not know (or no longer knows).
pub(crate) const INVALID_CURSOR_MESSAGE: &str = "after_id: invalid cursor";

impl Fault {
    /// A status fault with the API's error type for that status and no extra headers.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            error_type: ErrorType::for_status(status).as_str().to_owned(),
            retry_after: None,
            should_retry: None,
        }
    }

    /// Whether a client following the documented retry policy should retry the request and
    /// succeed (429, 5xx except `x-should-retry: false`, 529, delays, resets). Everything else
    /// is a fault the client must report or handle: an unreadable page, a 4xx, a strange cursor.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, should_retry, .. } => match status {
                429 | 502 | 503 | 504 | 529 => true,
                500 => *should_retry != Some(false),
                _ => false,
            },
            Self::Delay(_) | Self::ConnectionReset => true,
            _ => false,
        }
    }

    /// A seeded schedule of `len` slots, `None` meaning "served normally", transient-heavy:
    /// about half the slots are clean, a third are transient faults (429 with and without
    /// `retry-after`, 500, 502, 503, 504, 529, resets, short delays) and the rest are faults a
    /// client must not retry blindly (500 with `x-should-retry: false`, 401, malformed JSON,
    /// missing fields, non-UTF-8 bytes, empty pages with more, stuck and invalid cursors).
    /// The same seed and length always give the same schedule.
    pub fn random_schedule(seed: u64, len: usize) -> Vec<Option<Fault>> {
        let mut rng = Rng::stream(seed, "fault schedule");
        (0..len).map(|_| Self::random(&mut rng)).collect()
    }

    fn random(rng: &mut Rng) -> Option<Fault> {
        let with = |status: u16, retry_after: Option<u32>, should_retry: Option<bool>| {
            Some(Fault::Status {
                status,
                error_type: ErrorType::for_status(status).as_str().to_owned(),
                retry_after,
                should_retry,
            })
        };
        // Weights out of 100; keep the table and the doc comment above in step.
        match rng.below(100) {
            0..50 => None,
            50..55 => with(429, Some(1), None),
            55..59 => with(429, None, None),
            59..63 => Some(Fault::status(500)),
            63..67 => Some(Fault::status(502)),
            67..72 => Some(Fault::status(503)),
            72..75 => Some(Fault::status(504)),
            75..79 => Some(Fault::status(529)),
            79..83 => Some(Fault::ConnectionReset),
            83..85 => Some(Fault::Delay(Duration::from_millis(200 + rng.below(1300)))),
            85..87 => with(500, None, Some(false)),
            87..89 => Some(Fault::MalformedBody),
            89 => Some(Fault::MissingField { field: RecordField::Id }),
            90 => Some(Fault::MissingField { field: RecordField::CreatedAt }),
            91..94 => Some(Fault::EmptyPageWithMore),
            94..97 => Some(Fault::StuckCursor),
            97 => Some(Fault::InvalidCursor),
            98 => Some(Fault::status(401)),
            _ => Some(Fault::InvalidUtf8),
        }
    }

    /// What this fault does to the request with `request_id`.
    pub(crate) fn injection(&self, request_id: &str) -> Injection {
        match self {
            Self::Status {
                status,
                error_type,
                retry_after,
                should_retry,
            } => {
                let mut reply = Reply::error(
                    *status,
                    error_type,
                    "injected fault (compliance-sim)",
                    request_id,
                );
                if let Some(secs) = retry_after {
                    reply = reply.with_header("retry-after", secs.to_string());
                }
                if let Some(retry) = should_retry {
                    reply = reply.with_header("x-should-retry", retry.to_string());
                }
                Injection::Replace(reply)
            }
            Self::Delay(wait) => Injection::DelayThenServe(*wait),
            Self::MalformedBody => Injection::Replace(Reply::ok(
                r#"{"data":[{"id":"activity_01XyDMpzjS89pFZXqSFUBDr6","created_at":"2026-04-10T08:0"#
                    .to_owned(),
            )),
            Self::ConnectionReset => Injection::Alter(PageFault::ResetMidBody),
            Self::MissingField { field } => Injection::Alter(PageFault::MissingField(*field)),
            Self::EmptyPageWithMore => Injection::Alter(PageFault::EmptyWithMore),
            Self::StuckCursor => Injection::Alter(PageFault::StuckCursor),
            Self::InvalidUtf8 => Injection::Alter(PageFault::InvalidUtf8),
            Self::InvalidCursor => Injection::Replace(Reply::error(
                400,
                ErrorType::InvalidRequest.as_str(),
                INVALID_CURSOR_MESSAGE,
                request_id,
            )),
            Self::RevokeKey => Injection::RevokeKey,
        }
    }
}

/// How a fault changes the request that takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Injection {
    /// Answer with this instead of serving the page.
    Replace(Reply),
    /// Sleep this long, then serve normally.
    DelayThenServe(Duration),
    /// Serve the page (if the request is valid), changed this way.
    Alter(PageFault),
    /// Revoke the presenting key and refuse the request as unauthenticated.
    RevokeKey,
}

/// A change to a page that is otherwise served normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageFault {
    ResetMidBody,
    MissingField(RecordField),
    EmptyWithMore,
    StuckCursor,
    InvalidUtf8,
}

/// The JSON form of a fault slot on `POST /_sim/faults` (an array; `null` is a clean slot):
/// exactly one of `status` (with optional `error_type`, `retry_after`, `should_retry`),
/// `delay_ms`, `malformed: true`, `connection_reset: true`, `missing_field: "id"|"created_at"`,
/// `empty_page_with_more: true`, `stuck_cursor: true`, `invalid_cursor: true`,
/// `invalid_utf8: true` or `revoke_key: true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    status: Option<u16>,
    error_type: Option<String>,
    retry_after: Option<u32>,
    should_retry: Option<bool>,
    delay_ms: Option<u64>,
    malformed: Option<bool>,
    connection_reset: Option<bool>,
    missing_field: Option<RecordField>,
    empty_page_with_more: Option<bool>,
    stuck_cursor: Option<bool>,
    invalid_cursor: Option<bool>,
    invalid_utf8: Option<bool>,
    revoke_key: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultSpecError {
    #[error(
        "a fault needs exactly one of status, delay_ms, malformed, connection_reset, missing_field, empty_page_with_more, stuck_cursor, invalid_cursor, invalid_utf8, revoke_key"
    )]
    NotExactlyOneKind,
    #[error("status {0} is not an HTTP error status (400..=599)")]
    Status(u16),
    #[error("error_type, retry_after and should_retry go only with status")]
    StatusFieldsWithoutStatus,
    #[error("{0} must be true when given")]
    FlagFalse(&'static str),
}

impl TryFrom<FaultSpec> for Fault {
    type Error = FaultSpecError;

    fn try_from(spec: FaultSpec) -> Result<Self, Self::Error> {
        let flags = [
            ("malformed", spec.malformed, Fault::MalformedBody),
            ("connection_reset", spec.connection_reset, Fault::ConnectionReset),
            ("empty_page_with_more", spec.empty_page_with_more, Fault::EmptyPageWithMore),
            ("stuck_cursor", spec.stuck_cursor, Fault::StuckCursor),
            ("invalid_cursor", spec.invalid_cursor, Fault::InvalidCursor),
            ("invalid_utf8", spec.invalid_utf8, Fault::InvalidUtf8),
            ("revoke_key", spec.revoke_key, Fault::RevokeKey),
        ];
        let kinds = usize::from(spec.status.is_some())
            + usize::from(spec.delay_ms.is_some())
            + usize::from(spec.missing_field.is_some())
            + flags.iter().filter(|(_, set, _)| set.is_some()).count();
        if kinds != 1 {
            return Err(FaultSpecError::NotExactlyOneKind);
        }
        let status_fields =
            spec.error_type.is_some() || spec.retry_after.is_some() || spec.should_retry.is_some();
        if let Some(status) = spec.status {
            if !(400..=599).contains(&status) {
                return Err(FaultSpecError::Status(status));
            }
            return Ok(Self::Status {
                status,
                error_type: spec
                    .error_type
                    .unwrap_or_else(|| ErrorType::for_status(status).as_str().to_owned()),
                retry_after: spec.retry_after,
                should_retry: spec.should_retry,
            });
        }
        if status_fields {
            return Err(FaultSpecError::StatusFieldsWithoutStatus);
        }
        if let Some(ms) = spec.delay_ms {
            return Ok(Self::Delay(Duration::from_millis(ms)));
        }
        if let Some(field) = spec.missing_field {
            return Ok(Self::MissingField { field });
        }
        // Exactly one flag is set (counted above).
        match flags.into_iter().find(|(_, set, _)| set.is_some()) {
            Some((_, Some(true), fault)) => Ok(fault),
            Some((name, _, _)) => Err(FaultSpecError::FlagFalse(name)),
            None => Err(FaultSpecError::NotExactlyOneKind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_json_forms_parse() {
        // GIVEN the control endpoint's example
        let json = r#"[{"status":503},{"status":429,"retry_after":1},{"status":500,"should_retry":false},{"delay_ms":2000},{"malformed":true}]"#;
        // WHEN parsed
        let faults: Vec<Fault> = serde_json::from_str(json).unwrap();
        // THEN each kind comes out with defaults filled in
        assert_eq!(
            faults,
            [
                Fault::status(503),
                Fault::Status {
                    status: 429,
                    error_type: "rate_limit_error".into(),
                    retry_after: Some(1),
                    should_retry: None
                },
                Fault::Status {
                    status: 500,
                    error_type: "api_error".into(),
                    retry_after: None,
                    should_retry: Some(false)
                },
                Fault::Delay(Duration::from_secs(2)),
                Fault::MalformedBody,
            ]
        );
    }

    #[test]
    fn the_json_forms_of_the_page_and_cursor_faults_parse_with_clean_slots() {
        // GIVEN a schedule with every newer kind and clean (null) slots
        let json = r#"[null,{"connection_reset":true},{"missing_field":"id"},{"missing_field":"created_at"},
            {"empty_page_with_more":true},{"stuck_cursor":true},{"invalid_cursor":true},
            {"invalid_utf8":true},{"revoke_key":true},null]"#;
        // WHEN parsed as slots
        let slots: Vec<Option<Fault>> = serde_json::from_str(json).unwrap();
        // THEN each comes out as its variant
        assert_eq!(
            slots,
            [
                None,
                Some(Fault::ConnectionReset),
                Some(Fault::MissingField { field: RecordField::Id }),
                Some(Fault::MissingField { field: RecordField::CreatedAt }),
                Some(Fault::EmptyPageWithMore),
                Some(Fault::StuckCursor),
                Some(Fault::InvalidCursor),
                Some(Fault::InvalidUtf8),
                Some(Fault::RevokeKey),
                None,
            ]
        );
    }

    #[test]
    fn ambiguous_or_unknown_fault_forms_are_refused() {
        for bad in [
            r#"{}"#,
            r#"{"status":503,"delay_ms":5}"#,
            r#"{"status":200}"#,
            r#"{"delay_ms":5,"retry_after":1}"#,
            r#"{"malformed":false}"#,
            r#"{"reset":true}"#,
            r#"{"stuck_cursor":false}"#,
            r#"{"missing_field":"type"}"#,
            r#"{"connection_reset":true,"invalid_utf8":true}"#,
            r#"{"revoke_key":true,"retry_after":1}"#,
        ] {
            assert!(serde_json::from_str::<Fault>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_status_fault_replaces_the_reply_with_its_headers() {
        // GIVEN a 429 fault with retry-after and a 500 that says do not retry
        let limited = Fault::Status {
            status: 429,
            error_type: "rate_limit_error".into(),
            retry_after: Some(3),
            should_retry: Some(false),
        };
        // WHEN injected
        let Injection::Replace(reply) = limited.injection("req_x") else {
            panic!("status faults replace the reply");
        };
        // THEN the status, headers and error body are there
        assert_eq!(reply.status, 429);
        assert!(reply.headers.contains(&("retry-after", "3".into())));
        assert!(reply.headers.contains(&("x-should-retry", "false".into())));
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["request_id"], "req_x");
    }

    #[test]
    fn a_malformed_body_is_not_json() {
        let Injection::Replace(reply) = Fault::MalformedBody.injection("req_x") else {
            panic!("malformed replaces the reply");
        };
        assert_eq!(reply.status, 200);
        assert!(serde_json::from_str::<serde_json::Value>(&reply.body).is_err());
    }

    #[test]
    fn an_invalid_cursor_is_the_apis_400() {
        let Injection::Replace(reply) = Fault::InvalidCursor.injection("req_x") else {
            panic!("an invalid cursor replaces the reply");
        };
        assert_eq!(reply.status, 400);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], INVALID_CURSOR_MESSAGE);
    }

    #[test]
    fn random_schedules_are_reproducible_and_transient_heavy() {
        // GIVEN two schedules from the same seed and one from another
        let a = Fault::random_schedule(42, 2000);
        let b = Fault::random_schedule(42, 2000);
        let c = Fault::random_schedule(43, 2000);
        // THEN the same seed gives the same schedule, another seed another one
        assert_eq!(a, b);
        assert_ne!(a, c);
        // AND about half the slots are clean, and transient faults outnumber the others
        let clean = a.iter().filter(|s| s.is_none()).count();
        let transient = a.iter().flatten().filter(|f| f.is_transient()).count();
        let other = a.len() - clean - transient;
        assert!((900..1100).contains(&clean), "{clean}");
        assert!(transient > 2 * other, "{transient} vs {other}");
        // AND every kind shows up in a long schedule
        for kind in [
            |f: &Fault| matches!(f, Fault::ConnectionReset),
            |f: &Fault| matches!(f, Fault::MissingField { .. }),
            |f: &Fault| matches!(f, Fault::EmptyPageWithMore),
            |f: &Fault| matches!(f, Fault::StuckCursor),
            |f: &Fault| matches!(f, Fault::InvalidCursor),
            |f: &Fault| matches!(f, Fault::InvalidUtf8),
            |f: &Fault| matches!(f, Fault::Delay(_)),
            |f: &Fault| matches!(f, Fault::MalformedBody),
        ] {
            assert!(a.iter().flatten().any(kind));
        }
    }
}
