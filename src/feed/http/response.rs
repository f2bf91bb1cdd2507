//! What one HTTP attempt came back with, and how a failed one is counted and kept: error
//! responses and their bodies, `retry-after`, the body read into a pooled buffer, and the failure
//! a fetch given up on reports as its source.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;

use super::super::retry::Failure;
use super::super::{BodySize, FeedError, Page, PageError, RequestStats};

/// What a served page came with.
pub(super) struct Served {
    pub(super) request_id: Option<String>,
    pub(super) remaining: Option<u32>,
    pub(super) attempt: u32,
    pub(super) trying_legacy_limit: bool,
}

/// One failed attempt: its class for the retry policy, the response if there was one, and the
/// failure itself.
pub(super) struct AttemptFailed {
    pub(super) failure: Failure,
    pub(super) response: Option<ErrorResponse>,
    pub(super) last: Failed,
}

impl AttemptFailed {
    pub(super) fn response(response: ErrorResponse) -> AttemptFailed {
        let failure = Failure::Status {
            status: response.status,
            retry_after: response.retry_after,
            should_retry: response.should_retry,
        };
        let last = Box::new(response.failed());
        AttemptFailed { failure, response: Some(response), last }
    }
}

/// Counts an error response by class and logs it. Not a canary: the feed documents the calls it
/// served (`status_code` 200); a throttled call or one an edge failed may never be recorded.
pub(super) fn count_failed_response(
    stats: &mut RequestStats,
    response: &ErrorResponse,
    attempt: u32,
) {
    stats.observe_remaining(response.remaining);
    match response.status {
        429 => stats.throttled += 1,
        400..=499 => stats.client_errors += 1,
        _ => stats.server_errors += 1,
    }
    tracing::warn!(
        request_id = response.request_id.as_deref().unwrap_or("-"),
        status = response.status,
        error_type = %response.error_type,
        attempt,
        "request failed"
    );
}

/// A run that has no time left to retry a transient failure (5xx, transport) stops resumably
/// while fewer than this many attempts failed: one 503 in a run's last seconds is the deadline's
/// doing, and is counted in `ApiErrors`. With as many failures the API is failing: the run fails.
pub const FAILED_ATTEMPTS_FOR_UNAVAILABLE: u32 = 3;

/// The failure of one attempt, kept whole as the source of [`FeedError::Unavailable`].
pub(super) type Failed = Box<dyn std::error::Error + Send + Sync>;

/// An error response, as the last failure of a fetch given up on.
#[derive(Debug, thiserror::Error)]
#[error("{status} {error_type}: {message} (request-id {request_id:?})")]
pub(super) struct StatusFailed {
    pub(super) status: u16,
    pub(super) error_type: String,
    pub(super) message: String,
    pub(super) request_id: Option<String>,
}

pub(super) fn out_of_time(failed_attempts: u32, last: Option<Failed>) -> FeedError {
    match last {
        Some(last) if failed_attempts >= FAILED_ATTEMPTS_FOR_UNAVAILABLE => {
            FeedError::Unavailable { attempts: failed_attempts, last }
        }
        _ => FeedError::DeadlineReached,
    }
}

pub(super) enum Attempt {
    Page {
        page: Page,
        request_id: Option<String>,
        remaining: Option<u32>,
        body_bytes: u64,
    },
    /// A 2xx whose body is over the budget: refused by its length or cut while it streamed.
    TooLarge {
        request_id: Option<String>,
        remaining: Option<u32>,
        size: BodySize,
        id: Option<String>,
    },
    Invalid {
        request_id: Option<String>,
        source: PageError,
    },
    Status(ErrorResponse),
}

pub(super) struct ErrorResponse {
    pub(super) status: u16,
    pub(super) error_type: String,
    pub(super) message: String,
    pub(super) request_id: Option<String>,
    pub(super) retry_after: Option<Duration>,
    pub(super) should_retry: Option<bool>,
    pub(super) remaining: Option<u32>,
}

impl ErrorResponse {
    pub(super) fn failed(&self) -> StatusFailed {
        StatusFailed {
            status: self.status,
            error_type: self.error_type.clone(),
            message: self.message.clone(),
            request_id: self.request_id.clone(),
        }
    }

    pub(super) fn into_error(self, attempts: u32) -> FeedError {
        let ErrorResponse { status, error_type, message, request_id, .. } = self;
        match status {
            401 => FeedError::Unauthorized { error_type, message, request_id },
            403 => FeedError::Forbidden { error_type, message, request_id },
            400..=499 => FeedError::Rejected { status, error_type, message, request_id },
            _ => {
                let last = StatusFailed { status, error_type, message, request_id };
                FeedError::Unavailable { attempts, last: Box::new(last) }
            }
        }
    }
}

/// Whether a body came whole or was cut at the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyRead {
    Whole,
    /// More than `budget` bytes came: `body` holds the first `budget` of the `read` received,
    /// and the rest was never read (the connection is dropped with the response).
    Cut {
        read: u64,
    },
}

/// Reads a body into `body` (empty), sized first from its `content-length`, chunk by chunk: a page
/// of several MB is copied once, never held twice or grown by doubling (the run's peak memory is
/// a page's body and its activities). No more than `budget` bytes are kept: a chunked body is cut
/// as soon as its bytes pass it.
pub(super) async fn read_body(
    mut response: reqwest::Response,
    body: &mut Vec<u8>,
    budget: u64,
) -> Result<BodyRead, reqwest::Error> {
    let announced = response.content_length().unwrap_or(0).min(PRESIZE_LIMIT).min(budget);
    body.reserve_exact(usize::try_from(announced).unwrap_or(0));
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > budget {
            let read = (body.len() + chunk.len()) as u64;
            let room = budget.saturating_sub(body.len()).min(chunk.len());
            body.extend_from_slice(&chunk[..room]);
            return Ok(BodyRead::Cut { read });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(BodyRead::Whole)
}

/// The first bytes of a body refused by its length, enough to hold the first activity's id;
/// a failure to read them only means the id stays unknown.
pub(super) async fn read_head(mut response: reqwest::Response) -> Vec<u8> {
    let mut head = Vec::new();
    while head.len() < HEAD_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                head.extend_from_slice(&chunk[..chunk.len().min(HEAD_BYTES - head.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    head
}

/// Enough for `{"data":[{"id":"activity_…"` with room to spare.
const HEAD_BYTES: usize = 4096;

/// A `content-length` is trusted for the buffer's first size only up to this.
pub(super) const PRESIZE_LIMIT: u64 = 64 << 20;

/// `retry-after` in seconds (fractions allowed), capped at an hour: no longer wait is one a run
/// could sit out anyway, and a value past `Duration`'s range must not panic.
pub(super) fn retry_after(value: &str) -> Option<Duration> {
    let seconds = value.trim().parse::<f64>().ok().filter(|s| *s >= 0.0)?;
    Some(Duration::try_from_secs_f64(seconds).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub(super) fn header_str<'h>(headers: &'h HeaderMap<HeaderValue>, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `error.type` and `error.message` from either documented error body form.
pub(super) fn error_body(body: &[u8], status: StatusCode) -> (String, String) {
    #[derive(Deserialize)]
    struct Wrapper {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Wrapper>(body) {
        Ok(w) => (w.error.kind, w.error.message),
        Err(_) => (
            format!("http_{}", status.as_u16()),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    }
}
