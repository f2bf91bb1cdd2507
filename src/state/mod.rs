//! The collector's state: one typed record per stream, committed by compare-and-swap.
//!
//! [`SyncState`] is everything a run needs to resume: the watermark below which every activity is
//! delivered, the window in progress with its opaque cursor, the dedupe memory of the overlap
//! horizon, and the write intent of a batch whose objects may be in S3 without their ids being in
//! the dedupe memory yet. A commit succeeds only if the stored version is the one loaded, so two
//! runs can never both advance from the same state.

pub mod dynamodb;
pub mod seen;

use std::future::Future;

use jiff::Timestamp;

use seen::SeenSet;

/// The partition key of the scheduled collection's state item; a backfill's is
/// [`backfill_stream`].
pub const LIVE_STREAM: &str = "live";

/// The state item of the backfill of `[from, to)`: the same range resumes the same backfill.
pub fn backfill_stream(from: Timestamp, to: Timestamp, redeliver: bool) -> String {
    let kind = if redeliver { "redeliver" } else { "backfill" };
    format!("{kind}#{from}#{to}")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Every activity created before this (and indexed within the overlap) has been delivered.
    pub watermark: Option<Timestamp>,
    /// The window being collected, when a run stopped before finishing it.
    pub window: Option<Window>,
    /// Ids delivered within the overlap horizon.
    pub seen: SeenSet,
    /// `seen` holds every id delivered with a `created_at` from this second on; it only moves
    /// forward. No window starts before it, so a larger `OVERLAP_SECONDS` takes effect as the
    /// memory grows into it, never by re-reading what the memory has forgotten.
    pub seen_from: Option<Timestamp>,
    /// A batch being written: its objects may exist although their ids are not in `seen`.
    pub pending: Option<Pending>,
    /// Activities delivered by this stream since it began (informational).
    pub delivered_total: u64,
    /// When the state was last committed and by which run (informational).
    pub updated_at: Option<Timestamp>,
    pub updated_by: Option<String>,
    /// Where the stream's first window began: a backfill ends here, so it never meets live data.
    pub origin: Option<Timestamp>,
    /// The `request-id`s (and times) of this stream's own API calls whose
    /// `compliance_api_accessed` activities a later run should find in the feed.
    pub canary: Vec<(String, Timestamp)>,
    /// Every whole hour before this has been reconciled against the archive (first pass).
    pub reconciled_until: Option<Timestamp>,
    /// Every whole hour before this has been reconciled a second time, a day later.
    pub rechecked_until: Option<Timestamp>,
    /// The `OUTPUT_PREFIX` the reconciled hours are archived under. Reconciliation reads an hour
    /// back from the archive: after a change of prefix, the hours under the old one are not read
    /// against the new one (their activities would all look missing and be written again).
    pub archive_prefix: Option<String>,
    /// The live stream's ledger of backfills (not redeliveries): each range `[from, to)` as asked,
    /// claimed before its first run. A backfill may resume its own range but not overlap another,
    /// so no id is delivered twice by two backfills.
    pub backfills: Vec<(Timestamp, Timestamp)>,
}

/// A time window `[from, to)` collected oldest first, and how far the collection got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
    /// The opaque cursor after the last stored page; `None` before the first page.
    pub cursor: Option<String>,
    /// `created_at` of the last activity the cursor has passed.
    pub position: Option<Timestamp>,
}

/// The write intent of one batch, committed before its objects are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub keys: Vec<String>,
    /// The writing run's invocation deadline: until then the writer may still be alive.
    pub lease_until: Timestamp,
    pub run_id: String,
}

/// A state as loaded, with the version a commit must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub state: SyncState,
    pub version: u64,
}

/// The port the state is kept through, one item per stream (the live one, each backfill).
pub trait StateStore: Send + Sync {
    fn load(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<Versioned>, StateError>> + Send;
    /// Stores `state` if the stored version is still `expected` (`None`: no item yet); returns the
    /// new version.
    fn commit(
        &self,
        stream: &str,
        state: &SyncState,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<u64, StateError>> + Send;
}

/// What an operator does about a missing state table, and about a table the function may not use:
/// the one text both the error's message and verify's remedy give (template.yaml grants the same
/// actions).
pub const TABLE_CREATE: &str = "create it (partition key pk, String) or fix STATE_TABLE";
pub const TABLE_GRANT: &str =
    "grant dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem on it";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another run committed the state first (expected version {expected:?}); this run stops without writing more"
    )]
    Conflict { expected: Option<u64> },
    #[error("the state table {table:?} does not exist; {TABLE_CREATE}")]
    TableNotFound { table: String },
    #[error("not allowed to use the state table {table:?}; {TABLE_GRANT}")]
    AccessDenied {
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the state table {table:?} is unavailable")]
    Unavailable {
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the state item {pk:?} cannot be read")]
    Corrupt {
        pk: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the state item would be {bytes} bytes, over DynamoDB's 400 KB item limit")]
    TooLarge { bytes: usize },
}

#[cfg(test)]
mod remedy_tests {
    #[test]
    fn the_tables_remedy_grants_what_the_template_grants() {
        // GIVEN the collector's table policy in template.yaml
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
        let line = template
            .lines()
            .find(|l| l.contains("Action: [dynamodb:GetItem"))
            .expect("the collector's table actions");
        let granted: Vec<&str> = line
            .split(['[', ']', ','])
            .map(str::trim)
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        // THEN the remedy names exactly those actions
        assert_eq!(granted.len(), 3, "{line}");
        for action in &granted {
            assert!(super::TABLE_GRANT.contains(action), "{action} missing from the remedy");
        }
        assert_eq!(super::TABLE_GRANT.matches("dynamodb:").count(), granted.len());
    }
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`StateStore`] with the same compare-and-swap rule, for the core's tests.
    use super::*;
    use std::sync::Mutex;

    /// Runs at the start of every commit with the item of the stream committed, as the world
    /// outside a run would act then: a rival run's commit (change the item), a slow table (move a
    /// clock).
    pub type CommitHook = Box<dyn FnMut(&mut Option<Versioned>) + Send>;

    #[derive(Default)]
    pub struct MemoryStore {
        /// The live stream's item; other streams live in `others`.
        pub item: Mutex<Option<Versioned>>,
        pub others: Mutex<std::collections::HashMap<String, Versioned>>,
        pub commits: Mutex<u32>,
        /// Fail the commit with this number (1-based) once, as a crash would.
        pub fail_commit: Mutex<Option<u32>>,
        /// The most keys any committed write intent held.
        pub max_intent_keys: Mutex<usize>,
        pub on_commit: Mutex<Option<CommitHook>>,
        /// Answer every call as a table that does not exist would.
        pub missing_table: bool,
    }

    impl MemoryStore {
        pub fn state(&self) -> Option<SyncState> {
            self.item.lock().unwrap().as_ref().map(|v| v.state.clone())
        }

        /// Installs the hook every later commit runs first.
        pub fn on_commit(&self, hook: impl FnMut(&mut Option<Versioned>) + Send + 'static) {
            *self.on_commit.lock().unwrap() = Some(Box::new(hook));
        }

        fn table(&self) -> Result<(), StateError> {
            match self.missing_table {
                true => Err(StateError::TableNotFound { table: "memory".into() }),
                false => Ok(()),
            }
        }

        fn run_hook(&self, item: &mut Option<Versioned>) {
            if let Some(hook) = self.on_commit.lock().unwrap().as_mut() {
                hook(item);
            }
        }
    }

    impl StateStore for MemoryStore {
        async fn load(&self, stream: &str) -> Result<Option<Versioned>, StateError> {
            self.table()?;
            if stream != LIVE_STREAM {
                return Ok(self.others.lock().unwrap().get(stream).cloned());
            }
            Ok(self.item.lock().unwrap().clone())
        }
        async fn commit(
            &self,
            stream: &str,
            state: &SyncState,
            expected: Option<u64>,
        ) -> Result<u64, StateError> {
            self.table()?;
            let intent_keys = state.pending.as_ref().map_or(0, |p| p.keys.len());
            let mut max_intent_keys = self.max_intent_keys.lock().unwrap();
            *max_intent_keys = (*max_intent_keys).max(intent_keys);
            drop(max_intent_keys);
            if stream != LIVE_STREAM {
                let mut others = self.others.lock().unwrap();
                let mut item = others.remove(stream);
                self.run_hook(&mut item);
                if item.as_ref().map(|v| v.version) != expected {
                    others.extend(item.map(|v| (stream.to_owned(), v)));
                    return Err(StateError::Conflict { expected });
                }
                let version = expected.unwrap_or(0) + 1;
                others.insert(stream.to_owned(), Versioned { state: state.clone(), version });
                return Ok(version);
            }
            self.run_hook(&mut self.item.lock().unwrap());
            let mut n = self.commits.lock().unwrap();
            *n += 1;
            if *self.fail_commit.lock().unwrap() == Some(*n) {
                *self.fail_commit.lock().unwrap() = None;
                return Err(StateError::Unavailable {
                    table: "memory".into(),
                    source: "injected".into(),
                });
            }
            let mut item = self.item.lock().unwrap();
            if item.as_ref().map(|v| v.version) != expected {
                return Err(StateError::Conflict { expected });
            }
            let version = expected.unwrap_or(0) + 1;
            *item = Some(Versioned { state: state.clone(), version });
            Ok(version)
        }
    }
}
