//! The sync core: from state and clock to delivered objects and a new state, knowing nothing of
//! AWS or HTTP. It is generic over the four ports (feed, object sink, state store, clock) so the
//! invariants are tested against in-memory fakes and the same code runs against S3 and DynamoDB.

pub mod plan;
pub mod run;
pub mod signals;
#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde::Serialize;

pub use plan::{Horizons, Mode};
pub use run::{ReconcilePass, RunFailure, Settings, SyncError, run};

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
