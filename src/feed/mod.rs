//! The Activity Feed port: what the sync core needs from the Compliance API, and nothing of HTTP.
//!
//! A [`PageQuery`] names one page (window bounds, cursor, filters); the feed answers with a
//! [`Page`] whose activities keep their raw JSON exactly as served. Cursors are opaque strings that
//! the core stores and hands back, never parses. Errors are classified once, here, so the retry
//! policy, the run's outcome and the operator's message all agree on what a failure means.

pub mod body_pool;
pub mod budget;
pub mod http;
pub mod page;
pub mod query;
pub mod retry;

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use crate::clock::Deadline;
use crate::secrets::ApiKey;
pub use page::{Activity, Page, PageError};

/// One page request: oldest first, within `[from, to)`, after `cursor` when resuming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    pub after: Option<String>,
    pub organization_ids: Vec<String>,
    pub limit: u32,
}

/// What the collector asks for per page: the API's maximum, so a poll costs one or two requests.
pub const PAGE_LIMIT: u32 = 5000;

/// What the feed reports about the requests it made for one page, for logs, metrics and summaries;
/// a run adds them up in its report ([`crate::sync::RunReport::add`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Every HTTP request sent, retries included.
    pub requests: u32,
    /// Responses with status 429.
    pub throttled: u32,
    /// The `request-id` of the response the page came from.
    pub request_id: Option<String>,
    /// `anthropic-ratelimit-requests-remaining` of the last response, when sent.
    pub rate_limit_remaining: Option<u32>,
    /// Failed responses by class (429s are counted in `throttled`).
    pub server_errors: u32,
    pub client_errors: u32,
    pub transport_errors: u32,
    /// Pages whose body was over the body budget ([`budget::BodyBudget`]): refused by their
    /// `content-length` or cut while streaming, then asked for again with half the `limit`.
    pub pages_refused_too_large: u32,
    /// The `request-id` and time of every page served (2xx): each is recorded by the API as a
    /// `compliance_api_accessed` activity (the canary).
    pub responses: Vec<(String, Timestamp)>,
}

impl RequestStats {
    /// Keeps a response's `anthropic-ratelimit-requests-remaining`: the newest reading wins, and
    /// a response without the header leaves the last one.
    pub fn observe_remaining(&mut self, remaining: Option<u32>) {
        self.rate_limit_remaining = remaining.or(self.rate_limit_remaining);
    }
}

/// The port the sync core fetches through.
pub trait ActivityFeed: Send + Sync {
    /// Fetches one page, retrying transient failures for as long as `deadline` allows. The stats
    /// count every request made, whether the page came or not.
    fn fetch(
        &self,
        query: &PageQuery,
        deadline: Deadline,
    ) -> impl Future<Output = (Result<Page, FeedError>, RequestStats)> + Send;
}

impl<T: ActivityFeed> ActivityFeed for &T {
    fn fetch(
        &self,
        query: &PageQuery,
        deadline: Deadline,
    ) -> impl Future<Output = (Result<Page, FeedError>, RequestStats)> + Send {
        (**self).fetch(query, deadline)
    }
}

/// The port a collector reaches the feed through: built once per cold start, it lends each run
/// an [`ActivityFeed`] that uses the key the run just read.
pub trait FeedClient: Send + Sync {
    type Feed<'a>: ActivityFeed
    where
        Self: 'a;
    fn with_key<'a>(&'a self, key: &'a ApiKey) -> Self::Feed<'a>;
}

/// A failed fetch, by what the operator or the run should do about it.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// 401: the key is invalid, revoked or missing.
    #[error(
        "the Compliance API rejected the API key (401 {error_type}, request-id {request_id:?}): {message}"
    )]
    Unauthorized { error_type: String, message: String, request_id: Option<String> },
    /// 403: a valid key without `read:compliance_activities`.
    #[error(
        "the API key lacks the read:compliance_activities scope (403 {error_type}, request-id {request_id:?}): {message}"
    )]
    Forbidden { error_type: String, message: String, request_id: Option<String> },
    /// 400 or 404: the request itself is wrong; retrying cannot help.
    #[error(
        "the Compliance API refused the request ({status} {error_type}, request-id {request_id:?}): {message}"
    )]
    Rejected { status: u16, error_type: String, message: String, request_id: Option<String> },
    /// 429 that could not be waited out before the deadline: stop and resume next run.
    #[error(
        "rate limited by the Compliance API; retry-after {retry_after:?} does not fit before the deadline"
    )]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, 529, timeouts and broken connections that retries within the deadline did not cure;
    /// `last` is the last attempt's failure (an error response, or the transport's error with
    /// its own causes).
    #[error("the Compliance API is unavailable after {attempts} attempt(s)")]
    Unavailable {
        attempts: u32,
        #[source]
        last: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A 2xx response the client cannot understand: never skipped, the run stops here.
    #[error("the Compliance API sent a page the collector cannot read (request-id {request_id:?})")]
    InvalidPage {
        request_id: Option<String>,
        #[source]
        source: PageError,
    },
    /// One activity alone is larger than the page body budget: even a page of `limit=1` is over
    /// it. The run stops without advancing past it; `id` is the activity's when the body's first
    /// bytes name it, `after` the cursor it follows (`None`: the start of the window at `from`).
    #[error(
        "an activity ({}) after cursor {} (window from {from}) alone is {size}, more than the page body budget of {budget} bytes (a quarter of AWS_LAMBDA_FUNCTION_MEMORY_SIZE); raise the function's memory (request-id {request_id:?})",
        id.as_deref().map_or_else(|| "id unknown: its body does not start with it".to_owned(), |id| format!("id {id}")),
        after.as_deref().unwrap_or("none")
    )]
    RecordTooLarge {
        id: Option<String>,
        after: Option<String>,
        from: jiff::Timestamp,
        size: BodySize,
        budget: u64,
        request_id: Option<String>,
    },
    /// No time was left to even try.
    #[error("no time left before the invocation's deadline to fetch a page")]
    DeadlineReached,
}

/// How much of a body over the budget was known: its announced length, or the bytes read when
/// it was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    /// Refused by its `content-length`, nothing read.
    Announced(u64),
    /// Chunked (no `content-length`): cut once this many bytes had come.
    CutAfter(u64),
}

impl std::fmt::Display for BodySize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodySize::Announced(n) => write!(f, "{n} bytes (content-length)"),
            BodySize::CutAfter(n) => write!(f, "more than {n} bytes (cut while streaming)"),
        }
    }
}

impl BodySize {
    pub fn bytes(self) -> u64 {
        match self {
            BodySize::Announced(n) | BodySize::CutAfter(n) => n,
        }
    }
}
