//! The detector's records in the state table, through the [`Ledger`] port: one item per alert
//! (`detector#alert#<alert_id>`: is it published?) and one per correlation group
//! (`detector#correlation#<rule_id>#<group hash>`: its window, versioned).
//!
//! The alert record is what makes a publish happen once. A publisher first *claims* the alert
//! (created if absent, or taken over when an earlier claim's lease ran out), publishes, then marks
//! it published. Two deliveries of one object at once: one claims, the other finds it held and
//! retries later. A crash between publish and mark: the lease runs out and a redelivery publishes
//! again, the only second publish the contract allows. Every item expires by DynamoDB's TTL
//! (`expires_at`), which bounds the table.

use std::future::Future;

use jiff::Timestamp;

use crate::detect::correlation::GroupState;

/// The alert record's key.
pub fn alert_key(alert_id: &str) -> String {
    format!("detector#alert#{alert_id}")
}

/// The correlation group's key.
pub fn group_key(rule_id: &str, group_hash: &str) -> String {
    format!("detector#correlation#{rule_id}#{group_hash}")
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This publisher holds the alert until the lease given: publish it, then mark it.
    Claimed,
    /// Published before: nothing to do.
    Published,
    /// Another publisher holds a live claim (a concurrent delivery): try again later.
    Held,
}

/// A correlation group as loaded, with the version a commit must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedGroup {
    pub state: GroupState,
    pub version: u64,
}

/// The port the detector's records go through.
pub trait Ledger: Send + Sync {
    fn claim(
        &self,
        alert_id: &str,
        now: Timestamp,
        lease_until: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Claim, LedgerError>> + Send;
    fn mark_published(
        &self,
        alert_id: &str,
        message_id: &str,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
    fn load_group(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<VersionedGroup>, LedgerError>> + Send;
    /// Stores `state` if the stored version is still `expected` (`None`: no item yet).
    fn commit_group(
        &self,
        key: &str,
        state: &GroupState,
        expected: Option<u64>,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<u64, LedgerError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("another delivery changed {key} first (expected version {expected:?})")]
    Conflict { key: String, expected: Option<u64> },
    #[error("the state table {table:?} refused {key}")]
    Unavailable {
        table: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the state item {key} cannot be read")]
    Corrupt {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`Ledger`] with the same claim and version rules, for the core's tests.
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlertRecord {
        pub published: bool,
        pub lease_until: Timestamp,
        pub message_id: Option<String>,
        pub expires_at: Timestamp,
    }

    #[derive(Default)]
    pub struct MemoryLedger {
        pub alerts: Mutex<HashMap<String, AlertRecord>>,
        pub groups: Mutex<HashMap<String, (VersionedGroup, Timestamp)>>,
        /// Fail the next `mark_published` once, as a crash right after the publish would.
        pub fail_next_mark: Mutex<bool>,
    }

    impl Ledger for MemoryLedger {
        async fn claim(
            &self,
            alert_id: &str,
            now: Timestamp,
            lease_until: Timestamp,
            expires_at: Timestamp,
        ) -> Result<Claim, LedgerError> {
            let mut alerts = self.alerts.lock().unwrap();
            match alerts.get(alert_id) {
                Some(r) if r.published => return Ok(Claim::Published),
                Some(r) if r.lease_until > now => return Ok(Claim::Held),
                _ => {}
            }
            let record =
                AlertRecord { published: false, lease_until, message_id: None, expires_at };
            alerts.insert(alert_id.to_owned(), record);
            Ok(Claim::Claimed)
        }

        async fn mark_published(
            &self,
            alert_id: &str,
            message_id: &str,
            expires_at: Timestamp,
        ) -> Result<(), LedgerError> {
            if std::mem::take(&mut *self.fail_next_mark.lock().unwrap()) {
                return Err(LedgerError::Unavailable {
                    table: "memory".into(),
                    key: alert_key(alert_id),
                    source: "injected".into(),
                });
            }
            let record = AlertRecord {
                published: true,
                lease_until: Timestamp::UNIX_EPOCH,
                message_id: Some(message_id.to_owned()),
                expires_at,
            };
            self.alerts.lock().unwrap().insert(alert_id.to_owned(), record);
            Ok(())
        }

        async fn load_group(&self, key: &str) -> Result<Option<VersionedGroup>, LedgerError> {
            Ok(self.groups.lock().unwrap().get(key).map(|(g, _)| g.clone()))
        }

        async fn commit_group(
            &self,
            key: &str,
            state: &GroupState,
            expected: Option<u64>,
            expires_at: Timestamp,
        ) -> Result<u64, LedgerError> {
            let mut groups = self.groups.lock().unwrap();
            if groups.get(key).map(|(g, _)| g.version) != expected {
                return Err(LedgerError::Conflict { key: key.to_owned(), expected });
            }
            let version = expected.unwrap_or(0) + 1;
            groups.insert(
                key.to_owned(),
                (VersionedGroup { state: state.clone(), version }, expires_at),
            );
            Ok(version)
        }
    }
}
