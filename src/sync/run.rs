//! One run of the collector: recover, plan, then page → decide → write → advance → commit until
//! done. This file is the loop and its I/O; the decisions are pure functions beside it: the page's
//! ([`super::decide`]), the window's advance ([`super::advance`]), the canary's
//! ([`super::canary`]), the fetch of a page shared with reconciliation ([`super::fetch`]), and the writing of a batch ([`super::write`]) and of the hours
//! reconciled after it ([`super::reconcile`]).
//!
//! Invariants, in the order the code keeps them:
//! 1. Write, then advance: the cursor and the dedupe memory move only in a commit made after the
//!    objects they cover are in the archive.
//! 2. A batch's object keys are committed as a write intent before the objects are written, so a
//!    run that dies between write and commit leaves a trail: the next run reads those objects back
//!    and adds their ids to the dedupe memory before fetching again. Keys are fixed by content, so
//!    a rewrite of the same batch is refused by the archive rather than duplicated. A batch holds
//!    at most [`MAX_OBJECTS_PER_INTENT`](super::write::MAX_OBJECTS_PER_INTENT) objects: a page spanning more hours is written as several,
//!    and a deadline between two of them commits what was written without moving the cursor.
//! 3. Every commit is compare-and-swap on the version loaded: a run that loses the race stops.
//!    A write intent is also a short lease: its writer starts no put after [`WRITE_WINDOW`], and
//!    another run recovers the intent only once [`WRITE_LEASE`] has passed.
//! 4. The dedupe memory keeps only ids that a later page can serve again: those of the last page
//!    and after it, and those in the overlap before the window's end.
//! 5. The deadline is checked before every page; a stop leaves a committed cursor to resume from.
//! 6. A failure that needs a human (key, scope, bucket) happens before anything is committed.
//! 7. A dry run does all of the above in memory and writes and commits nothing.

use std::time::Duration;

use jiff::Timestamp;

use super::advance::{Advanced, advance, next_overlap_start, reread_from_position};
use super::canary::Canary;
use super::decide::decide;
use super::fetch::Fetched;
use super::plan::{Horizons, Mode, plan, settle_line, signed};
use super::reconcile::first_reconciled_hour;
use super::write::{Lease, Written, lease};
use super::{PageRecord, RunReport, StopReason};
use crate::archive::{Encoder, ObjectSink, SinkError};
use crate::clock::{Clock, Deadline};
#[cfg(doc)]
use crate::feed::PAGE_LIMIT;
use crate::feed::{ActivityFeed, FeedError, Page, PageQuery};
use crate::state::{Pending, StateError, StateStore, SyncState, Window};

/// How long a batch's write intent excludes other runs. The writer starts no put after
/// [`WRITE_WINDOW`] and each put is bounded by [`PUT_TIMEOUT`], so after the lease no object of the
/// batch can still land; a run that finds a crashed writer's intent waits at most this long.
pub const WRITE_LEASE: Duration = Duration::from_secs(25);
/// The part of the lease in which the writer may start puts.
pub const WRITE_WINDOW: Duration = Duration::from_secs(10);
/// The longest one object write may take (the S3 client's operation timeout).
pub const PUT_TIMEOUT: Duration = Duration::from_secs(10);
const _: () = assert!(WRITE_WINDOW.as_secs() + PUT_TIMEOUT.as_secs() < WRITE_LEASE.as_secs());

/// What a run needs besides its ports.
#[derive(Debug, Clone)]
pub struct Settings {
    pub horizons: Horizons,
    pub mode: Mode,
    /// The state item this run reads and commits ([`crate::state::LIVE_STREAM`] or a backfill's).
    pub stream: String,
    pub organization_ids: Vec<String>,
    pub output_prefix: String,
    /// Names this run in the state (`updated_by`, write intents) and in logs.
    pub run_id: String,
    /// Activities per page: [`PAGE_LIMIT`] in production.
    pub page_limit: u32,
    /// Fetch and count only: no object, no commit.
    pub dry_run: bool,
    /// Starts the names of this run's objects (a redelivery's must not meet the originals).
    pub object_tag: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Archive(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the write lease ran out before {key} could be written; the next run recovers the batch"
    )]
    LeaseExpired { key: String },
    #[error("cannot encode a batch")]
    Encode(#[source] std::io::Error),
    #[error("the object {key} of an interrupted batch exists but cannot be read back")]
    Unrecoverable {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// A failed run: what it did before failing (already durable) and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    pub report: RunReport,
    #[source]
    pub error: SyncError,
}

/// Runs the collector once. On failure the report still tells what was delivered and committed.
pub async fn run<F, S, St, C>(
    feed: &F,
    sink: &S,
    store: &St,
    clock: &C,
    deadline: Deadline,
    settings: &Settings,
) -> Result<RunReport, RunFailure>
where
    F: ActivityFeed,
    S: ObjectSink,
    St: StateStore,
    C: Clock,
{
    let mut run = Run {
        feed,
        sink,
        store,
        clock,
        deadline,
        settings,
        encoder: Encoder::default(),
        report: RunReport::default(),
    };
    run.report.dry_run = settings.dry_run;
    let result = run.go().await;
    let mut report = run.report;
    report.canary_checked = report.canary_checked || report.canary_missing > 0;
    match result {
        Ok(()) => Ok(report),
        Err(error) => Err(RunFailure { report, error }),
    }
}

/// One run in progress: its ports, its settings and what it has done so far.
pub(super) struct Run<'a, F, S, St, C> {
    pub(super) feed: &'a F,
    pub(super) sink: &'a S,
    pub(super) store: &'a St,
    pub(super) clock: &'a C,
    pub(super) deadline: Deadline,
    pub(super) settings: &'a Settings,
    /// One compressor for the run's objects.
    pub(super) encoder: Encoder,
    pub(super) report: RunReport,
}

/// The per-run bookkeeping of windows and commits.
pub(super) struct Progress {
    /// The state version this run holds (`None`: no item yet).
    version: Option<u64>,
    /// The watermark the run started from: activities older than it are late arrivals.
    previous_watermark: Option<Timestamp>,
    canary: Canary,
}

impl<F, S, St, C> Run<'_, F, S, St, C>
where
    F: ActivityFeed,
    S: ObjectSink,
    St: StateStore,
    C: Clock,
{
    async fn go(&mut self) -> Result<(), SyncError> {
        let loaded = self.store.load(&self.settings.stream).await?;
        let (mut state, version) = match loaded {
            Some(v) => (v.state, Some(v.version)),
            None => (SyncState::default(), None),
        };
        self.report.watermark = state.watermark;
        let now = self.clock.now();

        let recovering = state.pending.take();
        if let Some(pending) = &recovering
            && !self.wait_out_lease(pending, now).await
        {
            self.report.stop_reason = Some(StopReason::LeaseHeld);
            return Ok(());
        }
        // A missing bucket or a refused write fails the run here, before anything is committed.
        if !self.settings.dry_run {
            self.sink.probe().await?;
        }
        if let Some(pending) = &recovering {
            self.recover(pending, &mut state).await?;
        }

        let live = self.settings.mode == Mode::Live;
        let canary_on = live && self.settings.organization_ids.is_empty();
        let mut progress = Progress {
            version,
            previous_watermark: state.watermark,
            canary: Canary::new(canary_on, &state.canary),
        };
        self.collect_windows(&mut state, &mut progress, now).await?;
        self.report.final_cursor = state.window.as_ref().and_then(|w| w.cursor.clone());
        let caught_up =
            matches!(self.report.stop_reason, Some(StopReason::CaughtUp | StopReason::NothingNew));
        if live && caught_up && !self.settings.dry_run {
            self.reconcile_all(&mut state, &mut progress).await?;
        }
        Ok(())
    }

    /// Waits out the lease of an intent found, if it is live and there is time; returns whether
    /// the run may go on.
    async fn wait_out_lease(&self, pending: &Pending, now: Timestamp) -> bool {
        match lease(pending.lease_until, now, self.deadline.remaining(now)) {
            Lease::Over => true,
            Lease::Wait(wait) => {
                tracing::info!(holder = %pending.run_id, wait_ms = wait.as_millis() as u64, "waiting out a write lease");
                self.clock.sleep(wait).await;
                true
            }
            Lease::Held => {
                tracing::warn!(
                    holder = %pending.run_id,
                    lease_until = %pending.lease_until,
                    "another run holds the write lease; stopping without doing anything"
                );
                false
            }
        }
    }

    /// Collects window after window. A resumed window ends where an earlier run planned it; once
    /// it is done, a fresh one takes the run up to the settle line, so a completed run has
    /// delivered all that is due.
    async fn collect_windows(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        now: Timestamp,
    ) -> Result<(), SyncError> {
        let live = self.settings.mode == Mode::Live;
        self.report.stop_reason = Some(StopReason::NothingNew);
        while let Some(window) = plan(state, now, &self.settings.horizons, &self.settings.mode) {
            self.report.window_from.get_or_insert(window.from);
            self.report.window_to = Some(window.to);
            self.report.start_cursor.get_or_insert(window.cursor.clone());
            if state.origin.is_none() {
                state.origin = Some(window.from);
                if live {
                    let start = Some(first_reconciled_hour(&window));
                    state.reconciled_until = start;
                    state.rechecked_until = start;
                }
            }
            let reaches_settle_line = window.to >= settle_line(now, &self.settings.horizons);
            let end = self.collect_window(state, progress, window).await?;
            self.report.stop_reason = Some(end);
            if end != StopReason::CaughtUp || (live && reaches_settle_line) {
                break;
            }
        }
        Ok(())
    }

    /// Pages through one window until it is done or the run must stop; commits after every page.
    async fn collect_window(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        mut window: Window,
    ) -> Result<StopReason, SyncError> {
        let overlap_start = next_overlap_start(&window, signed(self.settings.horizons.overlap));
        let mut previous_last: Option<(Timestamp, String)> = None;
        loop {
            let query = self.query(window.from, window.to, window.cursor.clone());
            let last = previous_last.as_ref().map(|(t, id)| (*t, id.as_str()));
            let page = match self.fetch_page(&query, last).await? {
                Fetched::Page(page) => page,
                Fetched::Stop(reason) => return Ok(reason),
                Fetched::CursorRefused(e) => {
                    // Asked without a cursor, a 400 that comes again is final.
                    window = reread_from_position(&window);
                    tracing::warn!(
                        error = %e,
                        position = ?window.position,
                        from = %window.from,
                        "the API refused the cursor: reading the window again from its position"
                    );
                    self.report.cursor_restarts += 1;
                    previous_last = None;
                    continue;
                }
            };
            previous_last =
                page.activities.last().map(|a| (a.created_at, a.id.clone())).or(previous_last);
            if self.deliver_page(state, progress, &page).await? == Written::Partly {
                // The window as it stood before this page: the next run reads the page again.
                state.window = Some(window.clone());
                self.save(state, progress).await?;
                return Ok(StopReason::Deadline);
            }
            // Then advance: cursor, position, and the memory pruned to what can come again.
            self.report.canary_checked |= progress.canary.drop_found(&mut state.canary);
            let advanced = advance(state, &mut window, &page, overlap_start);
            if advanced == Advanced::Done {
                self.settle_canary(state, progress);
            }
            self.save(state, progress).await?;
            self.report.watermark = state.watermark;
            if advanced == Advanced::Done {
                return Ok(StopReason::CaughtUp);
            }
        }
    }

    /// Decides a page against the memory and writes what is new to it.
    async fn deliver_page(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        page: &Page,
    ) -> Result<Written, SyncError> {
        let seen = &state.seen;
        let decision = decide(
            page,
            |h| seen.contains(h),
            progress.previous_watermark,
            progress.canary.wanted(),
        );
        progress.canary.found(decision.canaries_found);
        self.report.duplicates_dropped += decision.duplicates;
        self.report.late_arrivals += decision.late;
        self.report.page_log.push(PageRecord {
            request_id: self.report.last_request_id.clone(),
            activities: page.activities.len(),
            new: decision.fresh.len(),
        });
        self.write_batches(state, progress, &decision.fresh).await
    }

    /// At a window's end: reports the earlier calls the watermark passed unseen, and remembers
    /// this run's calls for the next run.
    fn settle_canary(&mut self, state: &mut SyncState, progress: &Progress) {
        if !progress.canary.is_on() {
            return;
        }
        let calls = std::mem::take(&mut self.report.responses);
        for (id, at) in Canary::settle(&mut state.canary, state.watermark, calls) {
            tracing::warn!(request_id = %id, at = %at, "canary missing: this collector's own API call never appeared in the feed");
            self.report.canary_missing += 1;
        }
    }

    /// The query for one page of `[from, to)` after `cursor`, with the run's filters.
    pub(super) fn query(&self, from: Timestamp, to: Timestamp, after: Option<String>) -> PageQuery {
        PageQuery {
            from,
            to,
            after,
            organization_ids: self.settings.organization_ids.clone(),
            limit: self.settings.page_limit,
        }
    }

    /// Commits the state on the version this run holds, and holds the new one; a dry run
    /// commits nothing.
    pub(super) async fn save(
        &self,
        state: &mut SyncState,
        progress: &mut Progress,
    ) -> Result<(), SyncError> {
        if !self.settings.dry_run {
            state.updated_at = Some(self.clock.now());
            state.updated_by = Some(self.settings.run_id.clone());
            let committed = self.store.commit(&self.settings.stream, state, progress.version);
            progress.version = Some(committed.await?);
        }
        Ok(())
    }
}
