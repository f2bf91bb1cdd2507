//! Answers one API request, in the order the real API checks things.
//!
//! 1. Path: only `GET /v1/compliance/activities` exists (else 404 / 405, unauthenticated).
//! 2. `x-api-key`: missing or unknown is 401; no quota used, nothing recorded in the feed.
//! 3. Rate limit: the request is counted, or refused with 429 and `retry-after`.
//! 4. Fault: the next queued fault slot, if it holds one, replaces, delays or damages the
//!    answer (a damaging fault applies only if the request is otherwise valid), or revokes the
//!    key (a revoked key is refused at step 2 from then on).
//! 5. Scope (403), `anthropic-version` (400), query parameters (400), then the page (200).
//!
//! From step 3 on the request is "authenticated": the answer carries the rate-limit headers
//! and a `compliance_api_accessed` activity with its final status is appended to the feed
//! (after the page is chosen, so a request never sees its own record). Every request, whatever
//! the outcome, gets a `request-id` header and a [`RequestRecord`].

use crate::access_log::{AccessedRequest, accessed_activity};
use crate::faults::{Injection, PageFault};
use crate::page;
use crate::query::FeedQuery;
use crate::ratelimit::{Admission, format_reset};
use crate::reply::{ErrorType, Reply, Wire};
use crate::simulator::{KeyInfo, RequestRecord, Simulator, State};
use crate::store::Record;

pub const FEED_PATH: &str = "/v1/compliance/activities";
/// The only accepted `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
const SCOPE: &str = "read:compliance_activities";

/// The parts of an HTTP request the feed looks at.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Raw query string, without `?`; `None` when the target had no `?`.
    pub(crate) query: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) anthropic_version: Option<String>,
    pub(crate) user_agent: Option<String>,
}

impl ApiRequest {
    fn url(&self) -> String {
        let host = self.host.as_deref().unwrap_or("127.0.0.1");
        match &self.query {
            Some(q) => format!("http://{host}{}?{q}", self.path),
            None => format!("http://{host}{}", self.path),
        }
    }
}

/// A request past authentication and the rate limiter.
struct Admitted {
    request_id: String,
    key: KeyInfo,
    admission: Admission,
}

enum Step {
    Done(Reply),
    /// Serve the page, after an optional delay, optionally damaged.
    Continue(Admitted, Option<std::time::Duration>, Option<PageFault>),
}

impl Simulator {
    /// Answers `request`, including the configured latency.
    pub(crate) async fn answer(&self, request: &ApiRequest) -> Reply {
        let first = {
            let mut state = self.lock();
            self.admit(&mut state, request)
        };
        let reply = match first {
            Step::Done(reply) => reply,
            Step::Continue(admitted, delay, damage) => {
                if let Some(wait) = delay {
                    tokio::time::sleep(wait).await;
                }
                let mut state = self.lock();
                self.serve_admitted(&mut state, request, &admitted, damage)
            }
        };
        let latency = self.inner.config.latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        tracing::debug!(
            method = %request.method,
            path = %request.path,
            status = reply.status,
            "api request answered"
        );
        reply
    }

    /// Steps 1 to 4.
    fn admit(&self, state: &mut State, request: &ApiRequest) -> Step {
        let request_id = state.next_request_id();
        let refuse = |state: &mut State, status, kind: ErrorType, message: &str| {
            let reply = Reply::error(status, kind.as_str(), message, &request_id);
            Step::Done(conclude_unauthenticated(state, request, &request_id, reply))
        };
        if request.path != FEED_PATH {
            return refuse(
                state,
                404,
                ErrorType::NotFound,
                &format!("no such endpoint: {}", request.path),
            );
        }
        if request.method != "GET" {
            return refuse(
                state,
                405,
                ErrorType::InvalidRequest,
                &format!("method {} not allowed; use GET", request.method),
            );
        }
        let Some(presented) = request.api_key.as_deref() else {
            return refuse(state, 401, ErrorType::Authentication, "x-api-key header is required");
        };
        let Some(key) = self.inner.keys.get(presented).cloned() else {
            return refuse(state, 401, ErrorType::Authentication, "invalid x-api-key");
        };
        if state.revoked.contains(presented) {
            return refuse(state, 401, ErrorType::Authentication, "invalid x-api-key");
        }

        let now = self.inner.config.clock.now();
        let admission = state.limiter.admit(now);
        let admitted = Admitted { request_id, key, admission };
        if let Some(secs) = admitted.admission.retry_after_secs {
            let reply = Reply::error(
                429,
                ErrorType::RateLimit.as_str(),
                "Number of request tokens has exceeded your per-minute rate limit",
                &admitted.request_id,
            )
            .with_header("retry-after", secs.to_string());
            return Step::Done(self.conclude(state, request, &admitted, reply));
        }

        match state.faults.pop_front().flatten().map(|f| f.injection(&admitted.request_id)) {
            Some(Injection::Replace(reply)) => {
                Step::Done(self.conclude(state, request, &admitted, reply))
            }
            Some(Injection::DelayThenServe(wait)) => Step::Continue(admitted, Some(wait), None),
            Some(Injection::Alter(damage)) => Step::Continue(admitted, None, Some(damage)),
            Some(Injection::RevokeKey) => {
                state.revoked.insert(presented.to_owned());
                let reply = Reply::error(
                    401,
                    ErrorType::Authentication.as_str(),
                    "invalid x-api-key",
                    &admitted.request_id,
                );
                Step::Done(conclude_unauthenticated(state, request, &admitted.request_id, reply))
            }
            None => Step::Continue(admitted, None, None),
        }
    }

    /// Step 5.
    fn serve_admitted(
        &self,
        state: &mut State,
        request: &ApiRequest,
        admitted: &Admitted,
        damage: Option<PageFault>,
    ) -> Reply {
        let invalid = |message: &str| {
            Reply::error(400, ErrorType::InvalidRequest.as_str(), message, &admitted.request_id)
        };
        let reply = if !admitted.key.has_scope {
            Reply::error(
                403,
                ErrorType::Permission.as_str(),
                &format!("Missing required scopes: {SCOPE}"),
                &admitted.request_id,
            )
        } else if request.anthropic_version.as_deref() != Some(API_VERSION) {
            invalid(&match &request.anthropic_version {
                None => "anthropic-version header is required".to_owned(),
                Some(v) => format!("anthropic-version: {v:?} is not supported; use {API_VERSION}"),
            })
        } else {
            match FeedQuery::parse(
                request.query.as_deref().unwrap_or(""),
                self.inner.config.max_page_size,
                &self.inner.cursors,
            ) {
                Err(error) => invalid(&error.to_string()),
                Ok(query) => {
                    let page = page::select(state.store.records(), &query);
                    match damage {
                        None if self.inner.config.chunked => {
                            Reply::ok(page.to_body(&self.inner.cursors)).with_wire(Wire::Chunked)
                        }
                        None => Reply::ok(page.to_body(&self.inner.cursors)),
                        Some(fault) => {
                            let (body, wire) =
                                page.to_faulty_body(&self.inner.cursors, &query, fault);
                            Reply::ok(body).with_wire(wire)
                        }
                    }
                }
            }
        };
        self.conclude(state, request, admitted, reply)
    }

    /// Finishes an authenticated answer: headers, the feed's own record, the request log.
    fn conclude(
        &self,
        state: &mut State,
        request: &ApiRequest,
        admitted: &Admitted,
        reply: Reply,
    ) -> Reply {
        let a = &admitted.admission;
        let reply = reply
            .with_header("request-id", admitted.request_id.clone())
            .with_header("anthropic-ratelimit-requests-limit", a.limit.to_string())
            .with_header("anthropic-ratelimit-requests-remaining", a.remaining.to_string())
            .with_header("anthropic-ratelimit-requests-reset", format_reset(a.reset));

        let activity_id = state.next_activity_id();
        let raw = accessed_activity(&AccessedRequest {
            activity_id: &activity_id,
            at: self.inner.config.clock.now(),
            api_key_id: &admitted.key.id,
            user_agent: request.user_agent.as_deref(),
            request_id: &admitted.request_id,
            url: &request.url(),
            status: reply.status,
        });
        match Record::from_raw(&raw, true) {
            Ok(record) => {
                if let Err(error) = state.store.insert(record) {
                    tracing::error!(%error, "compliance_api_accessed record refused");
                }
            }
            Err(error) => tracing::error!(%error, "compliance_api_accessed record invalid"),
        }
        state.requests.push(RequestRecord {
            path: request.path.clone(),
            query: request.query.clone().unwrap_or_default(),
            status: reply.status,
            request_id: admitted.request_id.clone(),
            api_key_id: Some(admitted.key.id.clone()),
        });
        reply
    }
}

/// Finishes an answer given before authentication succeeded.
fn conclude_unauthenticated(
    state: &mut State,
    request: &ApiRequest,
    request_id: &str,
    reply: Reply,
) -> Reply {
    state.requests.push(RequestRecord {
        path: request.path.clone(),
        query: request.query.clone().unwrap_or_default(),
        status: reply.status,
        request_id: request_id.to_owned(),
        api_key_id: None,
    });
    reply.with_header("request-id", request_id.to_owned())
}
