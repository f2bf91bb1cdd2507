//! The sync core: from state and clock to delivered objects and a new state, knowing nothing of
//! AWS or HTTP. It is generic over the four ports (feed, object sink, state store, clock) so the
//! invariants are tested against in-memory fakes and the same code runs against S3 and DynamoDB.

pub mod advance;
pub mod backfill;
pub mod canary;
pub mod decide;
pub mod fetch;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod signals;
#[cfg(test)]
mod tests;
pub mod write;

pub use plan::{Horizons, Mode};
pub use reconcile::ReconcilePass;
pub use report::{ObjectRecord, PageRecord, RunReport, StopReason};
pub use run::{RunFailure, Settings, SyncError, run};
