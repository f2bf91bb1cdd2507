//! Writing a page's new activities: batch by batch, a write intent committed first, then the
//! objects, then their ids into the dedupe memory; and the recovery of the intent an interrupted
//! run left behind.
//!
//! Invariants: a batch holds at most [`MAX_OBJECTS_PER_INTENT`] objects, and its keys are in the
//! committed intent before any of its objects is put; no put starts after the intent's
//! [`WRITE_WINDOW`]; an id joins the memory only once its object is in the archive (written now or
//! found there); a recovering run counts an object of the intent as delivered only if it exists,
//! and sees the tamper signal in it as its writer would have.

use std::time::Duration;

use jiff::Timestamp;

use super::decide::Fresh;
use super::plan::signed;
use super::run::{Progress, Run, SyncError, WRITE_LEASE, WRITE_WINDOW};
use super::signals::disables_compliance_logging;
use crate::archive::{ObjectSink, PutOutcome, read_activities, split_by_objects};
use crate::clock::Clock;
use crate::feed::{Activity, ActivityFeed};
use crate::state::seen::id_hash;
use crate::state::{Pending, StateStore, SyncState};

/// At most this many objects (event hours) are written under one write intent. A page of a sparse
/// backfill spans up to one hour per activity: its keys must fit in the state item (about 100
/// bytes each) and its writes in [`WRITE_WINDOW`] (a put to S3 takes tens of milliseconds).
pub const MAX_OBJECTS_PER_INTENT: usize = 64;

/// Spare time a run keeps, beyond another run's lease, to be worth waiting that lease out.
const LEASE_WAIT_SPARE: Duration = Duration::from_secs(3);

/// Whether a page's new activities were all written, or the deadline came between two batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    All,
    Partly,
}

/// What a run does about the write intent it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The lease is over: its writer can put nothing more; recover at once.
    Over,
    /// The writer may still be alive: wait this long, then recover.
    Wait(Duration),
    /// The lease outlasts the time this run has: stop without doing anything.
    Held,
}

/// Decides about an intent leased until `lease_until`, at `now`, with `remaining` time to work.
pub fn lease(lease_until: Timestamp, now: Timestamp, remaining: Duration) -> Lease {
    if lease_until <= now {
        return Lease::Over;
    }
    let wait = Duration::try_from(lease_until.duration_since(now)).unwrap_or_default();
    if wait + LEASE_WAIT_SPARE > remaining { Lease::Held } else { Lease::Wait(wait) }
}

impl<F, S, St, C> Run<'_, F, S, St, C>
where
    F: ActivityFeed,
    S: ObjectSink,
    St: StateStore,
    C: Clock,
{
    /// Writes new activities in batches of at most [`MAX_OBJECTS_PER_INTENT`] objects, each one
    /// intent, objects, then the ids into the memory. The caller commits the state afterwards
    /// (with its cursor). Returns [`Written::Partly`] when the deadline came between batches: the
    /// state then holds the batches written, for the caller to commit without moving the cursor,
    /// so the page is read again and what was written is dropped as already seen.
    pub(super) async fn write_batches(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        fresh: &Fresh<'_>,
    ) -> Result<Written, SyncError> {
        for (i, part) in
            split_by_objects(&fresh.activities, MAX_OBJECTS_PER_INTENT).into_iter().enumerate()
        {
            if i > 0 && self.deadline.reached(self.clock.now()) {
                return Ok(Written::Partly);
            }
            let activities = &fresh.activities[part.clone()];
            self.write_batch(state, progress, activities, &fresh.hashes[part]).await?;
        }
        Ok(Written::All)
    }

    /// Writes one batch: intent, objects, then the ids into the memory.
    async fn write_batch(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        activities: &[&Activity],
        hashes: &[u64],
    ) -> Result<(), SyncError> {
        let objects = self
            .encoder
            .encode_batch(
                &self.settings.output_prefix,
                self.settings.object_tag.as_deref(),
                activities,
            )
            .map_err(SyncError::Encode)?;
        if self.settings.dry_run {
            for object in &objects {
                self.report.record_object(object, PutOutcome::Created);
            }
        } else {
            // Intent first: from here the objects may exist while their ids are not in `seen`.
            let lease_until = self.clock.now() + signed(WRITE_LEASE);
            state.pending = Some(Pending {
                keys: objects.iter().map(|o| o.key.clone()).collect(),
                lease_until,
                run_id: self.settings.run_id.clone(),
            });
            self.save(state, progress).await?;
            let last_put_start = lease_until - signed(WRITE_LEASE - WRITE_WINDOW);
            for object in &objects {
                if self.clock.now() >= last_put_start {
                    return Err(SyncError::LeaseExpired { key: object.key.clone() });
                }
                let outcome = self.sink.put_new(object).await?;
                if outcome == PutOutcome::AlreadyPresent {
                    tracing::info!(key = %object.key, "object already present; not written again");
                }
                self.report.record_object(object, outcome);
            }
        }
        for (&hash, a) in hashes.iter().zip(activities) {
            state.seen.insert(hash, a.created_at);
            if disables_compliance_logging(&a.raw) {
                self.switched_off(&a.id);
            }
        }
        state.pending = None;
        state.delivered_total += activities.len() as u64;
        self.report.delivered += activities.len() as u64;
        Ok(())
    }

    /// Accounts for the objects of an interrupted batch: those that exist are delivered, so their
    /// ids join the dedupe memory; those that do not were never written.
    pub(super) async fn recover(
        &mut self,
        pending: &Pending,
        state: &mut SyncState,
    ) -> Result<(), SyncError> {
        tracing::warn!(
            run = %pending.run_id,
            objects = pending.keys.len(),
            "recovering the write intent of an interrupted run"
        );
        for key in &pending.keys {
            let Some(body) = self.sink.get(key).await? else { continue };
            // Delivered, so looked at as the interrupted run would have: the tamper signal too.
            let mut delivered = 0u64;
            let mut switched_off = Vec::new();
            read_activities(&body, |id, created_at, line| {
                state.seen.insert(id_hash(&id), created_at);
                delivered += 1;
                if disables_compliance_logging(line.as_bytes()) {
                    switched_off.push(id);
                }
            })
            .map_err(|source| SyncError::Unrecoverable { key: key.clone(), source })?;
            for id in switched_off {
                self.switched_off(&id);
            }
            state.delivered_total += delivered;
            self.report.recovered_objects += 1;
            self.report.recovered_keys.push(key.clone());
        }
        Ok(())
    }

    /// A delivered activity switched the Compliance API or its logging off (the tamper signal).
    fn switched_off(&mut self, id: &str) {
        tracing::error!(activity = %id, "the Compliance API or its logging was switched off: activities in the gap can never be recovered");
        self.report.compliance_logging_disabled += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn an_intent_whose_lease_is_over_is_recovered_at_once() {
        // GIVEN a lease that ended at 00:00:10, at 00:00:10
        // THEN it is over, whatever time is left
        let at = ts("2026-01-01T00:00:10Z");
        assert_eq!(lease(at, at, Duration::ZERO), Lease::Over);
    }

    #[test]
    fn a_live_lease_is_waited_out_only_with_time_to_spare() {
        // GIVEN a lease with 20 s to run
        let (until, now) = (ts("2026-01-01T00:00:20Z"), ts("2026-01-01T00:00:00Z"));
        // WHEN the run has 23 s (20 + the spare) it waits; with less it stops
        assert_eq!(
            lease(until, now, Duration::from_secs(23)),
            Lease::Wait(Duration::from_secs(20))
        );
        assert_eq!(lease(until, now, Duration::from_secs(22)), Lease::Held);
    }
}
