//! The sync core: from state and clock to delivered objects and a new state, knowing nothing of
//! AWS or HTTP. It is generic over the four ports (feed, object sink, state store, clock) so the
//! invariants are tested against in-memory fakes and the same code runs against S3 and DynamoDB.

pub mod plan;
pub mod run;
pub mod seen;
#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde::Serialize;

pub use plan::Horizons;
pub use run::{RunFailure, Settings, SyncError, run};

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
}
