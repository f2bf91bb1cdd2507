//! The Activity Feed over HTTPS with reqwest: headers, timeouts, pacing and the retry loop.
//!
//! [`HttpClient`] is built once per cold start (connection pool, TLS, pacing state); each run
//! borrows it with the key it just read as an [`HttpFeed`]. A failed request never moves the
//! position: the same request is retried until it succeeds, fails permanently, or the next wait
//! would cross the run's deadline. Every response's `request-id` is logged; the key never is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};

use super::body_pool::BodyPool;
use super::budget::{BodyBudget, first_activity_id, halve};
use super::query::{ACTIVITIES_PATH, query_string};
use super::retry::{Backoff, Decision, Failure, decide};
use super::{ActivityFeed, BodySize, FeedClient, FeedError, Page, PageQuery, RequestStats};
use crate::clock::{Clock, Deadline};
// Also at its old path, for callers not yet moved to `crate::error` (the detector branch).
pub use crate::error::error_chain;
pub use response::FAILED_ATTEMPTS_FOR_UNAVAILABLE;
use response::*;

mod response;
use crate::secrets::ApiKey;

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const USER_AGENT: &str = concat!(
    "anthropic-compliance-collector/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/anthropic-compliance-collector)"
);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A 5000-record page of large records can take a while; no single request may take longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Below this much time left, a request is not worth starting.
const MIN_REQUEST_TIME: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client")]
pub struct BuildError(#[source] reqwest::Error);

/// The long-lived half: connection pool, base URL, pacing. Built once per cold start.
pub struct HttpClient<C> {
    http: reqwest::Client,
    endpoint: Url,
    clock: C,
    backoff: Backoff,
    /// The smallest gap between two requests, from `MAX_REQUESTS_PER_MINUTE`.
    min_interval: Duration,
    last_request: Mutex<Option<Timestamp>>,
    /// When the organization's shared budget runs low, no request before its reset.
    hold_until: Mutex<Option<Timestamp>>,
    /// Lowered to [`LEGACY_PAGE_LIMIT`] once a server refuses a larger page.
    page_limit_cap: AtomicU32,
    /// The retry back-off's jitter, from a seeded source ([`HttpClient::with_jitter_seed`]).
    jitter: Mutex<fastrand::Rng>,
    /// Buffers of earlier bodies for the next pages: a body of several MB is read into memory
    /// already mapped, not into a fresh allocation the kernel must fault in page by page.
    bodies: Arc<BodyPool>,
    /// No body larger than this is read whole (see [`super::budget`]).
    body_budget: BodyBudget,
}

/// At most this many body buffers are kept. The pool never holds more than were in use at once
/// (one per window collected concurrently: a backfill's parts); this only caps a burst.
const SPARE_BODIES: usize = 8;
/// A buffer larger than this (a page of very large activities) is freed, not kept.
const SPARE_BODY_BYTES: usize = 16 << 20;

/// Older servers cap `limit` at 1000 and answer a larger one with 400.
pub const LEGACY_PAGE_LIMIT: u32 = 1000;

impl<C: Clock> HttpClient<C> {
    pub fn new(
        base_url: &Url,
        max_requests_per_minute: u32,
        clock: C,
        backoff: Backoff,
    ) -> Result<HttpClient<C>, BuildError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .https_only(base_url.scheme() == "https")
            // A redirect would carry the key to another address (reqwest keeps `x-api-key` on
            // it), perhaps over plain HTTP: answered 3xx, the run fails and names the target.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(BuildError)?;
        let mut endpoint = base_url.clone();
        if !endpoint.path().ends_with('/') {
            endpoint.set_path(&format!("{}/", endpoint.path()));
        }
        let endpoint = endpoint.join(ACTIVITIES_PATH).unwrap_or(endpoint);
        Ok(HttpClient {
            http,
            endpoint,
            clock,
            backoff,
            min_interval: Duration::from_secs(60) / max_requests_per_minute.max(1),
            last_request: Mutex::new(None),
            hold_until: Mutex::new(None),
            page_limit_cap: AtomicU32::new(u32::MAX),
            bodies: BodyPool::new(SPARE_BODIES, SPARE_BODY_BYTES),
            jitter: Mutex::new(fastrand::Rng::new()),
            body_budget: BodyBudget::OUTSIDE_LAMBDA,
        })
    }

    /// This client with its retry jitter drawn from `seed`, so tests can repeat a schedule.
    pub fn with_jitter_seed(self, seed: u64) -> HttpClient<C> {
        HttpClient { jitter: Mutex::new(fastrand::Rng::with_seed(seed)), ..self }
    }

    /// This client with its page bodies bounded by `budget` (from the function's memory).
    pub fn with_body_budget(self, budget: BodyBudget) -> HttpClient<C> {
        HttpClient { body_budget: budget, ..self }
    }

    /// The URL of the page `query` names, asking for at most `limit` activities.
    fn page_url(&self, query: &PageQuery, limit: u32) -> Url {
        let mut url = self.endpoint.clone();
        url.set_query(Some(&query_string(&PageQuery { limit, ..query.clone() })));
        url
    }

    /// The next jitter, in `[0, 1)`.
    fn jitter(&self) -> f64 {
        self.jitter.lock().unwrap_or_else(|e| e.into_inner()).f64()
    }

    /// This client with one run's key, as the `x-api-key` header's value, marked sensitive so
    /// the HTTP stack never shows it either.
    pub fn with_key<'a>(&'a self, key: &'a ApiKey) -> HttpFeed<'a, C> {
        let key = HeaderValue::from_str(key.as_str()).ok().map(|mut header| {
            header.set_sensitive(true);
            header
        });
        HttpFeed { client: self, key, page_limit: AtomicU32::new(u32::MAX) }
    }

    /// Reads the `anthropic-ratelimit-*` headers: when less than a tenth of the organization's
    /// shared budget remains (a tenth or less), the collector yields to the customer's other tools until the reset.
    fn observe_rate_limit(&self, headers: &HeaderMap<HeaderValue>, remaining: Option<u32>) {
        let limit: Option<u32> =
            header_str(headers, "anthropic-ratelimit-requests-limit").and_then(|v| v.parse().ok());
        let reset: Option<Timestamp> =
            header_str(headers, "anthropic-ratelimit-requests-reset").and_then(|v| v.parse().ok());
        if let (Some(limit), Some(remaining), Some(reset)) = (limit, remaining, reset)
            && remaining.saturating_mul(10) <= limit
        {
            tracing::warn!(remaining, limit, reset = %reset, "the shared rate budget is low; holding until its reset");
            *self.hold_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(reset);
        }
    }

    /// Waits until the pacing interval since the previous request (and any hold from the rate
    /// headers) has passed; false when that would cross `deadline`.
    async fn pace(&self, deadline: Deadline) -> bool {
        let now = self.clock.now();
        let hold = self.hold_until.lock().unwrap_or_else(|e| e.into_inner()).filter(|h| *h > now);
        let wait = {
            let mut last = self.last_request.lock().unwrap_or_else(|e| e.into_inner());
            let next = last
                .and_then(|t| t.checked_add(SignedDuration::try_from(self.min_interval).ok()?).ok())
                .unwrap_or(now)
                .max(hold.unwrap_or(now));
            let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
            if wait + MIN_REQUEST_TIME > deadline.remaining(now) {
                return false;
            }
            *last = Some(next.max(now));
            wait
        };
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
        true
    }
}

/// One run's view of the feed: the shared client and the key read for this run.
impl<C: Clock> FeedClient for HttpClient<C> {
    type Feed<'a>
        = HttpFeed<'a, C>
    where
        C: 'a;

    fn with_key<'a>(&'a self, key: &'a ApiKey) -> HttpFeed<'a, C> {
        HttpClient::with_key(self, key)
    }
}

pub struct HttpFeed<'a, C> {
    client: &'a HttpClient<C>,
    /// `None` for a key that is no header value ([`crate::secrets::parse_secret`] admits none).
    key: Option<HeaderValue>,
    /// This run's largest `limit` since a body over the budget: halved at each such body, and
    /// doubled back after a full page that took at most a quarter of the budget
    /// ([`BodyBudget::may_grow`]). A run starts again from the query's own limit: a burst of
    /// large activities costs the next run one refused request, not its speed.
    page_limit: AtomicU32,
}

impl<C: Clock> ActivityFeed for HttpFeed<'_, C> {
    async fn fetch(
        &self,
        query: &PageQuery,
        deadline: Deadline,
    ) -> (Result<Page, FeedError>, RequestStats) {
        let mut stats = RequestStats::default();
        let Some(key) = &self.key else {
            let error_type = "invalid_api_key".to_owned();
            let message = "the key cannot be sent as an HTTP header".to_owned();
            return (Err(FeedError::Unauthorized { error_type, message, request_id: None }), stats);
        };
        let result = self.fetch_counting(key, query, deadline, &mut stats).await;
        (result, stats)
    }
}

impl<C: Clock> HttpFeed<'_, C> {
    /// A call the API served, which it records as a `compliance_api_accessed` activity.
    fn record_call(&self, stats: &mut RequestStats, request_id: Option<&str>) {
        if let Some(id) = request_id {
            stats.responses.push((id.to_owned(), self.client.clock.now()));
        }
    }

    async fn fetch_counting(
        &self,
        key: &HeaderValue,
        query: &PageQuery,
        deadline: Deadline,
        stats: &mut RequestStats,
    ) -> Result<Page, FeedError> {
        let client = self.client;
        let mut attempt = 0u32;
        let mut trying_legacy_limit = false;
        let mut last_failure: Option<Failed> = None;
        loop {
            attempt += 1;
            if !client.pace(deadline).await {
                return Err(out_of_time(attempt - 1, last_failure.take()));
            }
            let cap = if trying_legacy_limit {
                LEGACY_PAGE_LIMIT
            } else {
                client.page_limit_cap.load(Ordering::Relaxed)
            };
            let limit = query.limit.min(cap).min(self.page_limit.load(Ordering::Relaxed)).max(1);
            let url = client.page_url(query, limit);
            let timeout = REQUEST_TIMEOUT.min(deadline.remaining(client.clock.now()));
            stats.requests += 1;
            let failed = match self.attempt(key, &url, timeout).await {
                Ok(Attempt::Page { page, request_id, remaining, body_bytes }) => {
                    let served = Served { request_id, remaining, attempt, trying_legacy_limit };
                    self.maybe_grow(limit, &page, body_bytes);
                    return Ok(self.served(stats, page, served));
                }
                Ok(Attempt::TooLarge { request_id, remaining, size, id }) => {
                    self.record_call(stats, request_id.as_deref());
                    stats.pages_refused_too_large += 1;
                    stats.observe_remaining(remaining);
                    let budget = client.body_budget.bytes();
                    if limit <= 1 {
                        tracing::error!(
                            request_id = request_id.as_deref().unwrap_or("-"),
                            activity_id = id.as_deref().unwrap_or("-"),
                            cursor = query.after.as_deref().unwrap_or("-"),
                            bytes = size.bytes(),
                            budget,
                            "one activity alone is over the page body budget: the run stops here without advancing"
                        );
                        let after = query.after.clone();
                        let from = query.from;
                        return Err(FeedError::RecordTooLarge {
                            id,
                            after,
                            from,
                            size,
                            budget,
                            request_id,
                        });
                    }
                    let smaller = halve(limit);
                    self.page_limit.fetch_min(smaller, Ordering::Relaxed);
                    tracing::warn!(
                        request_id = request_id.as_deref().unwrap_or("-"),
                        body = %size,
                        budget,
                        limit,
                        new_limit = smaller,
                        "page body over the budget, not read; asking for the same page with a smaller limit"
                    );
                    // Not a failure: the same page again at once (paced), the retry count afresh.
                    attempt = 0;
                    last_failure = None;
                    continue;
                }
                Ok(Attempt::Invalid { request_id, source }) => {
                    return Err(self.unreadable(stats, request_id, source));
                }
                Ok(Attempt::Status(response)) => {
                    count_failed_response(stats, &response, attempt);
                    if response.status == 400 && limit > LEGACY_PAGE_LIMIT {
                        // Maybe a server that caps pages at 1000: ask again with that, once; the
                        // cap stays only if that succeeds (another 400 is about something else).
                        tracing::warn!(limit, "400 for a large page; retrying with limit 1000");
                        trying_legacy_limit = true;
                        continue;
                    }
                    AttemptFailed::response(response)
                }
                Err(e) if deadline.remaining(client.clock.now()) < MIN_REQUEST_TIME => {
                    // Cut short by the run's own stop line, not by a fault: a resumable stop.
                    tracing::info!(error = %error_chain(&e), attempt, "request cut at the deadline");
                    return Err(FeedError::DeadlineReached);
                }
                Err(e) => {
                    stats.transport_errors += 1;
                    tracing::warn!(error = %error_chain(&e), attempt, "request failed in transport");
                    AttemptFailed { failure: Failure::Transport, response: None, last: Box::new(e) }
                }
            };
            let (wait, last) = self.retry_or_stop(failed, attempt, deadline)?;
            last_failure = Some(last);
            client.clock.sleep(wait).await;
        }
    }

    /// After a full page far below the budget, the run's limit doubles back towards the query's.
    fn maybe_grow(&self, limit: u32, page: &Page, body_bytes: u64) {
        let current = self.page_limit.load(Ordering::Relaxed);
        let full = u32::try_from(page.activities.len()).is_ok_and(|n| n >= limit);
        if current == u32::MAX || !full || !self.client.body_budget.may_grow(body_bytes) {
            return;
        }
        let larger = limit.saturating_mul(2);
        if self
            .page_limit
            .compare_exchange(current, larger, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(
                body_bytes,
                limit,
                new_limit = larger,
                "pages well below the body budget; asking for more per page"
            );
        }
    }

    /// A page served: its call recorded, its request id and rate-limit reading kept.
    fn served(&self, stats: &mut RequestStats, page: Page, served: Served) -> Page {
        self.record_call(stats, served.request_id.as_deref());
        if served.trying_legacy_limit {
            // The 400 was about the page size: ask for 1000 from now on.
            self.client.page_limit_cap.store(LEGACY_PAGE_LIMIT, Ordering::Relaxed);
        }
        stats.request_id = served.request_id;
        stats.observe_remaining(served.remaining);
        tracing::info!(
            request_id = stats.request_id.as_deref().unwrap_or("-"),
            activities = page.activities.len(),
            has_more = page.has_more,
            attempt = served.attempt,
            "page fetched"
        );
        page
    }

    /// A 2xx the client cannot read: never retried or skipped, the run stops here.
    fn unreadable(
        &self,
        stats: &mut RequestStats,
        request_id: Option<String>,
        source: super::PageError,
    ) -> FeedError {
        self.record_call(stats, request_id.as_deref());
        tracing::error!(
            request_id = request_id.as_deref().unwrap_or("-"),
            error = %source,
            "unreadable page: the run stops here without advancing"
        );
        FeedError::InvalidPage { request_id, source }
    }

    /// After a failed attempt: how long to wait before the next, or the error to stop with (the
    /// retry policy gave up, or the wait does not fit before the deadline).
    fn retry_or_stop(
        &self,
        failed: AttemptFailed,
        attempt: u32,
        deadline: Deadline,
    ) -> Result<(Duration, Failed), FeedError> {
        let client = self.client;
        let AttemptFailed { failure, response, last } = failed;
        match decide(failure, attempt, client.backoff, client.jitter()) {
            Decision::GiveUp => Err(match response {
                Some(r) => r.into_error(attempt),
                None => FeedError::Unavailable { attempts: attempt, last },
            }),
            Decision::Retry(wait)
                if wait + MIN_REQUEST_TIME > deadline.remaining(client.clock.now()) =>
            {
                Err(match response {
                    Some(r) if r.status == 429 => {
                        FeedError::RateLimited { retry_after: r.retry_after }
                    }
                    _ => out_of_time(attempt, Some(last)),
                })
            }
            Decision::Retry(wait) => Ok((wait, last)),
        }
    }
}

impl<C: Clock> HttpFeed<'_, C> {
    async fn attempt(
        &self,
        key: &HeaderValue,
        url: &Url,
        timeout: Duration,
    ) -> Result<Attempt, reqwest::Error> {
        let response = self
            .client
            .http
            .get(url.clone())
            .timeout(timeout)
            .header("x-api-key", key.clone())
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("accept", "application/json")
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = header_str(&headers, "request-id").map(str::to_owned);
        let remaining = header_str(&headers, "anthropic-ratelimit-requests-remaining")
            .and_then(|v| v.parse().ok());
        self.client.observe_rate_limit(&headers, remaining);
        let budget = self.client.body_budget.bytes();
        if status.is_success()
            && let Some(announced) = response.content_length()
            && announced > budget
        {
            // Refused unread but for its first bytes, which may name the first activity.
            let head = read_head(response).await;
            let id = first_activity_id(&head);
            return Ok(Attempt::TooLarge {
                request_id,
                remaining,
                size: BodySize::Announced(announced),
                id,
            });
        }
        let mut body = self.client.bodies.take();
        let read = read_body(response, &mut body, budget).await?;
        if status.is_success() {
            if let BodyRead::Cut { read } = read {
                let id = first_activity_id(&body);
                drop(body);
                let size = BodySize::CutAfter(read);
                return Ok(Attempt::TooLarge { request_id, remaining, size, id });
            }
            let body_bytes = body.len() as u64;
            // The page's activities share the body; it returns to the pool once they are written.
            return Ok(match Page::parse(self.client.bodies.share(body)) {
                Ok(page) => Attempt::Page { page, request_id, remaining, body_bytes },
                Err(source) => Attempt::Invalid { request_id, source },
            });
        }
        let (error_type, message) = if status.is_redirection() {
            let to = header_str(&headers, "location").unwrap_or("-");
            let message = format!(
                "redirected to {to}: not followed, the key would go with it; set API_BASE_URL to the API's own address"
            );
            ("redirect".to_owned(), message)
        } else {
            error_body(&body, status)
        };
        Ok(Attempt::Status(ErrorResponse {
            status: status.as_u16(),
            error_type,
            message,
            request_id,
            retry_after: header_str(&headers, "retry-after").and_then(retry_after),
            should_retry: header_str(&headers, "x-should-retry").and_then(|v| v.parse().ok()),
            remaining,
        }))
    }
}
