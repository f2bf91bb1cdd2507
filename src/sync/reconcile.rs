//! Reconciliation: whole hours that left the overlap are read back from the archive and again from
//! the feed, and what the archive lacks is delivered: activities indexed later than the overlap,
//! which would otherwise be lost without a trace. Each hour gets two passes ([`ReconcilePass`]).
//!
//! Invariants: only a live run that caught up reconciles, and never in a dry run; a pass's marker
//! moves past an hour only once the hour was read to its end and its missing activities were
//! written and committed; an hour cut short (deadline, rate limit) is redone whole next run, which
//! is idempotent because the archive is the dedupe memory here; after a change of `OUTPUT_PREFIX`
//! no hour archived under the old prefix is reconciled (all of it would look missing). At most
//! [`RECONCILE_HOURS_PER_RUN`] hours a pass and run: about one request an hour and pass.

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::decide::decide;
use super::fetch::Fetched;
use super::plan::signed;
use super::run::{Progress, Run, SyncError};
use super::write::Written;
use crate::archive::key::partition;
use crate::archive::{ObjectSink, decode_activities};
use crate::clock::Clock;
use crate::feed::ActivityFeed;
use crate::state::seen::id_hash;
use crate::state::{StateStore, SyncState, Window};

/// The passes over each hour, by how long after leaving the overlap the hour is re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcilePass {
    /// An hour after: catches activities indexed up to about an hour late.
    First,
    /// A day (and half an hour) after: catches those held back longer, e.g. by an indexing
    /// incident at the API. The half hour keeps the two passes in different runs, so a run in
    /// steady state makes at most two requests.
    Second,
}

impl ReconcilePass {
    pub const ALL: [ReconcilePass; 2] = [ReconcilePass::First, ReconcilePass::Second];

    /// How long an hour has been out of the overlap when this pass reads it again.
    pub fn after(self) -> Duration {
        match self {
            ReconcilePass::First => Duration::from_secs(3600),
            ReconcilePass::Second => Duration::from_secs(24 * 3600 + 1800),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ReconcilePass::First => "first",
            ReconcilePass::Second => "second",
        }
    }

    /// Every whole hour before the marker has had this pass.
    fn marker(self, state: &mut SyncState) -> &mut Option<Timestamp> {
        match self {
            ReconcilePass::First => &mut state.reconciled_until,
            ReconcilePass::Second => &mut state.rechecked_until,
        }
    }
}

/// At most this many hours are reconciled per run and pass (a backlog of hours drains over runs).
pub const RECONCILE_HOURS_PER_RUN: usize = 2;

/// How many hours before the first window's end are reconciled.
const RECONCILE_FIRST_HOURS: SignedDuration = SignedDuration::from_hours(2);

const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// Where a live stream's reconciliation begins: the first window read its older hours long after
/// they were indexed, so only the last hours before its end need reconciling.
pub fn first_reconciled_hour(first_window: &Window) -> Timestamp {
    (floor_hour(first_window.to) - RECONCILE_FIRST_HOURS).max(ceil_hour(first_window.from))
}

/// After `OUTPUT_PREFIX` changed, no hour up to the watermark is reconciled: those hours are
/// archived under the old prefix, which the new one cannot see (nor, with the stack's policy,
/// read), and every activity of theirs would look missing and be written again. Returns whether
/// the state changed (the caller commits it at once).
pub fn follow_prefix_change(state: &mut SyncState, prefix: &str) -> bool {
    if state.archive_prefix.as_deref() == Some(prefix) {
        return false;
    }
    if let Some(old) = state.archive_prefix.take() {
        let from = state.watermark.map(ceil_hour);
        for pass in ReconcilePass::ALL {
            let marker = pass.marker(state);
            *marker = (*marker).max(from);
        }
        tracing::warn!(
            old = %old,
            new = %prefix,
            reconciled_from = ?from.map(|t| t.to_string()),
            "OUTPUT_PREFIX changed: the hours archived under the old prefix are not reconciled"
        );
    }
    state.archive_prefix = Some(prefix.to_owned());
    true
}

impl<F, S, St, C> Run<'_, F, S, St, C>
where
    F: ActivityFeed,
    S: ObjectSink,
    St: StateStore,
    C: Clock,
{
    /// Reconciles what is due, both passes, after following a change of prefix.
    pub(super) async fn reconcile_all(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
    ) -> Result<(), SyncError> {
        if follow_prefix_change(state, &self.settings.output_prefix) {
            self.save(state, progress).await?;
        }
        for pass in ReconcilePass::ALL {
            self.reconcile(state, progress, pass).await?;
        }
        Ok(())
    }

    /// Reconciles the whole hours that left the overlap the pass's delay ago, oldest first.
    async fn reconcile(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        pass: ReconcilePass,
    ) -> Result<(), SyncError> {
        let (Some(watermark), Some(origin)) = (state.watermark, state.origin) else {
            return Ok(());
        };
        let horizon = watermark - signed(self.settings.horizons.overlap) - signed(pass.after());
        for _ in 0..RECONCILE_HOURS_PER_RUN {
            let hour = pass.marker(state).unwrap_or(ceil_hour(origin)).max(ceil_hour(origin));
            let end = hour + HOUR;
            if end > horizon || self.deadline.reached(self.clock.now()) {
                return Ok(());
            }
            if !self.reconcile_hour(state, progress, pass, hour).await? {
                return Ok(());
            }
            *pass.marker(state) = Some(end);
            self.save(state, progress).await?;
        }
        Ok(())
    }

    /// Delivers what the archive lacks of one hour; returns whether the hour was read to its end.
    async fn reconcile_hour(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        pass: ReconcilePass,
        hour: Timestamp,
    ) -> Result<bool, SyncError> {
        let mut archived = self.archived_ids(hour).await?;
        let no_canary = HashSet::new();
        let mut cursor = None;
        loop {
            let query = self.query(hour, hour + HOUR, cursor.clone());
            let page = match self.fetch_page(&query, None).await? {
                Fetched::Page(page) => page,
                Fetched::Stop(_) => return Ok(false),
                Fetched::CursorRefused(e) => return Err(e.into()),
            };
            let missing = decide(&page, |h| archived.contains(&h), None, &no_canary).fresh;
            archived.extend(&missing.hashes);
            if let Some(first) = missing.activities.first() {
                tracing::warn!(
                    hour = %hour,
                    pass = pass.name(),
                    activities = missing.len(),
                    first = %first.id,
                    "activities indexed later than the overlap: delivering them now"
                );
                self.report.late_beyond_overlap += missing.len() as u64;
                let written = self.write_batches(state, progress, &missing).await?;
                self.save(state, progress).await?;
                if written == Written::Partly {
                    // The hour is read again next run, its archive with what was written.
                    return Ok(false);
                }
            }
            cursor = page.last_id.or(cursor);
            if !page.has_more {
                return Ok(true);
            }
        }
    }

    /// The id hashes of every activity the archive holds for `hour`.
    async fn archived_ids(&self, hour: Timestamp) -> Result<HashSet<u64>, SyncError> {
        let mut archived = HashSet::new();
        for key in self.sink.list(&partition(&self.settings.output_prefix, hour)).await? {
            let Some(body) = self.sink.get(&key).await? else { continue };
            let activities = decode_activities(&body)
                .map_err(|source| SyncError::Unrecoverable { key: key.clone(), source })?;
            archived.extend(activities.into_iter().map(|(id, _)| id_hash(&id)));
        }
        Ok(archived)
    }
}

fn floor_hour(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(3600)).unwrap_or(t)
}

fn ceil_hour(t: Timestamp) -> Timestamp {
    let secs = t.as_second();
    Timestamp::from_second(secs + (3600 - secs.rem_euclid(3600)) % 3600).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(from: &str, to: &str) -> Window {
        Window { from: ts(from), to: ts(to), cursor: None, position: None }
    }

    #[test]
    fn a_first_window_is_reconciled_from_two_hours_before_its_end() {
        // GIVEN a first window over a day, and one shorter than two hours
        let long = window("2026-01-01T00:00:00Z", "2026-01-02T05:30:00Z");
        let short = window("2026-01-02T04:10:00Z", "2026-01-02T05:30:00Z");
        // WHEN reconciliation's start is taken from them
        // THEN it is the whole hour two hours before the end, never before the window's first
        // whole hour
        assert_eq!(first_reconciled_hour(&long), ts("2026-01-02T03:00:00Z"));
        assert_eq!(first_reconciled_hour(&short), ts("2026-01-02T05:00:00Z"));
    }

    #[test]
    fn a_change_of_prefix_moves_both_markers_past_the_watermark() {
        // GIVEN hours reconciled under "p/" up to 01:00, and a watermark at 03:20
        let mut state = SyncState {
            archive_prefix: Some("p/".into()),
            watermark: Some(ts("2026-01-01T03:20:00Z")),
            reconciled_until: Some(ts("2026-01-01T01:00:00Z")),
            rechecked_until: None,
            ..SyncState::default()
        };
        // WHEN the same prefix is followed, nothing changes
        assert!(!follow_prefix_change(&mut state, "p/"));
        // WHEN the prefix becomes "q/"
        assert!(follow_prefix_change(&mut state, "q/"));
        // THEN neither pass reads an hour up to the watermark's next whole hour
        assert_eq!(state.archive_prefix.as_deref(), Some("q/"));
        assert_eq!(state.reconciled_until, Some(ts("2026-01-01T04:00:00Z")));
        assert_eq!(state.rechecked_until, Some(ts("2026-01-01T04:00:00Z")));
    }

    #[test]
    fn a_first_prefix_is_recorded_without_moving_the_markers() {
        // GIVEN a stream that has never recorded its prefix
        let mut state =
            SyncState { watermark: Some(ts("2026-01-01T03:20:00Z")), ..SyncState::default() };
        // WHEN it follows its prefix
        // THEN the state changes (to be committed) but no hour is skipped
        assert!(follow_prefix_change(&mut state, "p/"));
        assert_eq!((state.reconciled_until, state.rechecked_until), (None, None));
    }

    #[test]
    fn hours_round_to_whole_hours() {
        assert_eq!(floor_hour(ts("2026-01-01T03:59:59Z")), ts("2026-01-01T03:00:00Z"));
        assert_eq!(ceil_hour(ts("2026-01-01T03:00:01Z")), ts("2026-01-01T04:00:00Z"));
        assert_eq!(ceil_hour(ts("2026-01-01T03:00:00Z")), ts("2026-01-01T03:00:00Z"));
    }
}
