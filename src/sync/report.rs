//! What a run did, and the arithmetic of it: the one place where a fetch's request figures join
//! a run's ([`RunReport::add`]), where two runs' reports add up ([`RunReport::merge`], the parts
//! of a backfill) and where an object written is accounted for ([`RunReport::record_object`]).
//!
//! Invariant: every counter is added in exactly one function, so a new figure is summed
//! everywhere once it is summed here (the merge test lists them all).

use jiff::Timestamp;
use serde::Serialize;

use crate::archive::{EncodedObject, PutOutcome};
use crate::feed::RequestStats;

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The window reached the settle line: everything collectable now is delivered.
    CaughtUp,
    /// The watermark was already at the settle line.
    NothingNew,
    /// The deadline came first; the next run resumes from the committed cursor.
    Deadline,
    /// The API's rate limit asked for a longer wait than the deadline allows.
    RateLimited,
    /// Another run holds the write lease (or crashed within its lease); nothing was done.
    LeaseHeld,
}

/// What one run did: the run summary's figures, the log line's and the metrics'.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// New activities written to the archive (the `EventsProcessed` metric).
    pub delivered: u64,
    /// Activities the feed served again that were already delivered (overlap, retries).
    pub duplicates_dropped: u64,
    /// Delivered activities older than the previous watermark: found only thanks to the overlap.
    pub late_arrivals: u64,
    pub objects_written: u64,
    /// Objects whose key existed already (a repeated batch): nothing was written twice.
    pub objects_already_present: u64,
    pub bytes_written: u64,
    pub pages: u32,
    pub requests: u32,
    pub throttled: u32,
    /// Objects of an interrupted earlier batch found and accounted for.
    pub recovered_objects: u32,
    pub window_from: Option<Timestamp>,
    pub window_to: Option<Timestamp>,
    pub watermark: Option<Timestamp>,
    pub stop_reason: Option<StopReason>,
    pub last_request_id: Option<String>,
    pub rate_limit_remaining: Option<u32>,
    /// Failed API responses by class (429s are in `throttled`).
    pub api_server_errors: u32,
    pub api_client_errors: u32,
    pub api_transport_errors: u32,
    /// Earlier runs' own API calls found in the feed, and those that never appeared.
    pub canary_checked: bool,
    pub canary_missing: u32,
    /// Activities indexed later than the overlap, found by reconciling an hour against the archive
    /// and delivered then.
    pub late_beyond_overlap: u64,
    /// Pages over the body budget, asked for again with half the `limit`.
    pub pages_refused_too_large: u32,
    /// Times the API refused a cursor (400) and the window was read again from its position.
    pub cursor_restarts: u32,
    /// Activities that record the Compliance API or its logging being switched off.
    pub compliance_logging_disabled: u32,
    /// A dry run: the figures say what would have been written; nothing was.
    pub dry_run: bool,
    /// The cursor the run started from (`null`: the window's start) and where it left off.
    pub start_cursor: Option<Option<String>>,
    pub final_cursor: Option<String>,
    /// For the manifest: every page and object, and recovered objects of an earlier batch.
    #[serde(skip)]
    pub page_log: Vec<PageRecord>,
    #[serde(skip)]
    pub object_log: Vec<ObjectRecord>,
    #[serde(skip)]
    pub recovered_keys: Vec<String>,
    /// This run's API calls (request-id and time), for the next run's canary check.
    #[serde(skip)]
    pub responses: Vec<(String, Timestamp)>,
}

impl RunReport {
    /// Adds one fetch's request figures; its request id and rate-limit reading are the latest.
    pub fn add(&mut self, stats: RequestStats) {
        self.requests += stats.requests;
        self.throttled += stats.throttled;
        self.api_server_errors += stats.server_errors;
        self.api_client_errors += stats.client_errors;
        self.api_transport_errors += stats.transport_errors;
        self.pages_refused_too_large += stats.pages_refused_too_large;
        if stats.request_id.is_some() {
            self.last_request_id = stats.request_id;
        }
        self.rate_limit_remaining = stats.rate_limit_remaining.or(self.rate_limit_remaining);
        self.responses.extend(stats.responses);
    }

    /// Adds a later run's report (another part of one backfill): the figures summed, the window
    /// spanning both, the stop reason the one that says most (a stop beats caught-up beats
    /// nothing-new; of two stops the first). The cursors stay this run's.
    pub fn merge(&mut self, other: RunReport) {
        self.delivered += other.delivered;
        self.duplicates_dropped += other.duplicates_dropped;
        self.late_arrivals += other.late_arrivals;
        self.objects_written += other.objects_written;
        self.objects_already_present += other.objects_already_present;
        self.bytes_written += other.bytes_written;
        self.pages += other.pages;
        self.requests += other.requests;
        self.throttled += other.throttled;
        self.recovered_objects += other.recovered_objects;
        self.api_server_errors += other.api_server_errors;
        self.api_client_errors += other.api_client_errors;
        self.api_transport_errors += other.api_transport_errors;
        self.canary_missing += other.canary_missing;
        self.late_beyond_overlap += other.late_beyond_overlap;
        self.cursor_restarts += other.cursor_restarts;
        self.pages_refused_too_large += other.pages_refused_too_large;
        self.compliance_logging_disabled += other.compliance_logging_disabled;
        self.canary_checked |= other.canary_checked;
        self.dry_run |= other.dry_run;
        self.window_from = match (self.window_from, other.window_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.window_to = self.window_to.max(other.window_to);
        self.watermark = self.watermark.max(other.watermark);
        self.stop_reason = match (self.stop_reason, other.stop_reason) {
            (Some(StopReason::NothingNew), other) | (other, Some(StopReason::NothingNew)) => other,
            (Some(StopReason::CaughtUp), other) | (other, Some(StopReason::CaughtUp)) => other,
            (first, _) => first,
        };
        self.last_request_id = other.last_request_id.or(self.last_request_id.take());
        self.rate_limit_remaining = other.rate_limit_remaining.or(self.rate_limit_remaining);
        self.page_log.extend(other.page_log);
        self.object_log.extend(other.object_log);
        self.recovered_keys.extend(other.recovered_keys);
        self.responses.extend(other.responses);
    }

    /// Accounts for one object of a batch, written now or found already there.
    pub fn record_object(&mut self, object: &EncodedObject, outcome: PutOutcome) {
        let bytes = object.body.len() as u64;
        match outcome {
            PutOutcome::Created => {
                self.objects_written += 1;
                self.bytes_written += bytes;
            }
            PutOutcome::AlreadyPresent => self.objects_already_present += 1,
        }
        self.object_log.push(ObjectRecord {
            key: object.key.clone(),
            activities: object.activities,
            first_id: object.first_id.clone(),
            last_id: object.last_id.clone(),
            sha256: hex(&object.sha256),
            bytes,
            already_present: outcome == PutOutcome::AlreadyPresent,
        });
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One page fetched, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageRecord {
    pub request_id: Option<String>,
    pub activities: usize,
    /// Activities not delivered before (the rest were duplicates).
    pub new: usize,
}

/// One object written (or found already present), as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRecord {
    pub key: String,
    pub activities: usize,
    pub first_id: String,
    pub last_id: String,
    pub sha256: String,
    pub bytes: u64,
    pub already_present: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A report with every figure set, each to a value of its own.
    fn busy(stop_reason: StopReason, window: (&str, &str)) -> RunReport {
        RunReport {
            delivered: 1,
            duplicates_dropped: 2,
            late_arrivals: 3,
            objects_written: 4,
            objects_already_present: 5,
            bytes_written: 6,
            pages: 7,
            requests: 8,
            throttled: 9,
            recovered_objects: 10,
            window_from: Some(ts(window.0)),
            window_to: Some(ts(window.1)),
            watermark: Some(ts(window.1)),
            stop_reason: Some(stop_reason),
            last_request_id: Some(format!("req_{}", window.0)),
            rate_limit_remaining: Some(11),
            api_server_errors: 12,
            api_client_errors: 13,
            api_transport_errors: 14,
            canary_checked: false,
            canary_missing: 15,
            late_beyond_overlap: 16,
            cursor_restarts: 17,
            pages_refused_too_large: 19,
            compliance_logging_disabled: 18,
            dry_run: false,
            start_cursor: Some(None),
            final_cursor: Some(format!("cursor_{}", window.1)),
            page_log: vec![PageRecord { request_id: None, activities: 1, new: 1 }],
            object_log: vec![],
            recovered_keys: vec![format!("key_{}", window.0)],
            responses: vec![("req".into(), ts(window.0))],
        }
    }

    #[test]
    fn merging_two_reports_adds_every_figure() {
        // GIVEN two parts of a backfill, every figure set
        let first = busy(StopReason::CaughtUp, ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"));
        let second = busy(StopReason::Deadline, ("2025-12-01T00:00:00Z", "2025-12-02T00:00:00Z"));
        // WHEN they are merged
        let mut merged = first.clone();
        merged.merge(second.clone());
        // THEN every counter of the summary is the sum of the two
        let (a, b, m) = (json(&first), json(&second), json(&merged));
        let mut counters = 0;
        for (name, value) in &m {
            let (Some(x), Some(y)) = (a[name].as_u64(), b[name].as_u64()) else { continue };
            if name == "rate_limit_remaining" {
                assert_eq!(value.as_u64(), Some(y), "the later reading wins");
                continue;
            }
            assert_eq!(value.as_u64(), Some(x + y), "{name}");
            counters += 1;
        }
        assert_eq!(counters, 18, "{m:?}");
        // AND the window spans both, the stop says the run did not catch up, the logs are joined
        assert_eq!(merged.window_from, second.window_from);
        assert_eq!((merged.window_to, merged.watermark), (first.window_to, first.watermark));
        assert_eq!(merged.stop_reason, Some(StopReason::Deadline));
        assert_eq!(merged.last_request_id, second.last_request_id);
        assert_eq!(
            (merged.start_cursor, merged.final_cursor),
            (first.start_cursor, first.final_cursor)
        );
        assert_eq!(merged.page_log.len(), 2);
        assert_eq!(merged.recovered_keys, [first.recovered_keys, second.recovered_keys].concat());
        assert_eq!(merged.responses.len(), 2);
    }

    #[test]
    fn the_merged_stop_reason_is_the_one_that_says_most() {
        use StopReason::*;
        for (a, b, merged) in [
            (NothingNew, CaughtUp, CaughtUp),
            (CaughtUp, NothingNew, CaughtUp),
            (CaughtUp, RateLimited, RateLimited),
            (NothingNew, LeaseHeld, LeaseHeld),
            (Deadline, RateLimited, Deadline),
            (NothingNew, NothingNew, NothingNew),
        ] {
            // GIVEN two reports stopped for reasons a and b
            let mut first = RunReport { stop_reason: Some(a), ..RunReport::default() };
            // WHEN merged
            first.merge(RunReport { stop_reason: Some(b), ..RunReport::default() });
            // THEN the merged reason is the more telling one
            assert_eq!(first.stop_reason, Some(merged), "{a:?} + {b:?}");
        }
    }

    #[test]
    fn a_fetch_adds_its_requests_and_keeps_the_last_request_id() {
        // GIVEN a report after one fetch
        let mut report = RunReport::default();
        let at = ts("2026-01-01T00:00:00Z");
        report.add(RequestStats {
            requests: 3,
            throttled: 1,
            request_id: Some("req_1".into()),
            rate_limit_remaining: Some(40),
            server_errors: 1,
            client_errors: 0,
            transport_errors: 1,
            pages_refused_too_large: 1,
            responses: vec![("req_1".into(), at)],
        });
        // WHEN a second fetch came without a page (no request id, no rate-limit reading)
        report.add(RequestStats { requests: 2, client_errors: 2, ..RequestStats::default() });
        // THEN the counts add up and the readings of the last page served stay
        assert_eq!((report.requests, report.throttled), (5, 1));
        assert_eq!(
            (report.api_server_errors, report.api_client_errors, report.api_transport_errors),
            (1, 2, 1)
        );
        assert_eq!(report.last_request_id.as_deref(), Some("req_1"));
        assert_eq!(report.rate_limit_remaining, Some(40));
        assert_eq!(report.pages_refused_too_large, 1);
        assert_eq!(report.responses, [("req_1".to_owned(), at)]);
    }

    fn json(report: &RunReport) -> serde_json::Map<String, Value> {
        match serde_json::to_value(report).unwrap() {
            Value::Object(map) => map,
            other => panic!("a report serialises as an object, not {other}"),
        }
    }
}
