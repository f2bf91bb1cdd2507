//! One run of the collector: recover, plan, then page → dedupe → write → commit until done.
//!
//! Invariants, in the order the code keeps them:
//! 1. Write, then advance: the cursor and the dedupe memory move only in a commit made after the
//!    objects they cover are in the archive.
//! 2. A batch's object keys are committed as a write intent before the objects are written, so a
//!    run that dies between write and commit leaves a trail: the next run reads those objects back
//!    and adds their ids to the dedupe memory before fetching again. Keys are fixed by content, so
//!    a rewrite of the same batch is refused by the archive rather than duplicated. A batch holds
//!    at most [`MAX_OBJECTS_PER_INTENT`] objects: a page spanning more hours is written as several,
//!    and a deadline between two of them commits what was written without moving the cursor.
//! 3. Every commit is compare-and-swap on the version loaded: a run that loses the race stops.
//!    A write intent is also a short lease: its writer starts no put after [`WRITE_WINDOW`], and
//!    another run recovers the intent only once [`WRITE_LEASE`] has passed.
//! 4. The dedupe memory keeps only ids that a later page can serve again: those of the last page
//!    and after it, and those in the overlap before the window's end.
//! 5. The deadline is checked before every page; a stop leaves a committed cursor to resume from.
//! 6. A failure that needs a human (key, scope, bucket) happens before anything is committed.
//! 7. A dry run does all of the above in memory and writes and commits nothing.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;

use super::plan::{Horizons, Mode, floor_second, plan, settle_line, signed};
use super::signals::{canary_request_id, disables_compliance_logging};
use super::{PageRecord, RunReport, StopReason};
use crate::archive::key::partition;
use crate::archive::{
    Encoder, ObjectSink, PutOutcome, SinkError, decode_activities, read_activities,
    split_by_objects,
};
use crate::clock::{Clock, Deadline};
#[cfg(doc)]
use crate::feed::PAGE_LIMIT;
use crate::feed::{Activity, ActivityFeed, FeedError, Page, PageError, PageQuery};
use crate::state::seen::id_hash;
use crate::state::{Pending, StateError, StateStore, SyncState, Window};

/// How long a batch's write intent excludes other runs. The writer starts no put after
/// [`WRITE_WINDOW`] and each put is bounded by [`PUT_TIMEOUT`], so after the lease no object of the
/// batch can still land; a run that finds a crashed writer's intent waits at most this long.
pub const WRITE_LEASE: Duration = Duration::from_secs(25);
/// The part of the lease in which the writer may start puts.
pub const WRITE_WINDOW: Duration = Duration::from_secs(10);
/// The longest one object write may take (the S3 client's operation timeout).
pub const PUT_TIMEOUT: Duration = Duration::from_secs(10);
const LEASE_WAIT_SPARE: Duration = Duration::from_secs(3);
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

struct Run<'a, F, S, St, C> {
    feed: &'a F,
    sink: &'a S,
    store: &'a St,
    clock: &'a C,
    deadline: Deadline,
    settings: &'a Settings,
    /// One compressor for the run's objects.
    encoder: Encoder,
    report: RunReport,
}

/// The activities of a page to write, with their id hashes (each id is hashed once).
struct Fresh<'a> {
    activities: Vec<&'a Activity>,
    hashes: Vec<u64>,
}

impl<'a> Fresh<'a> {
    fn with_capacity(n: usize) -> Self {
        Fresh { activities: Vec::with_capacity(n), hashes: Vec::with_capacity(n) }
    }

    fn push(&mut self, hash: u64, activity: &'a Activity) {
        self.hashes.push(hash);
        self.activities.push(activity);
    }
}

/// At most this many objects (event hours) are written under one write intent. A page of a sparse
/// backfill spans up to one hour per activity: its keys must fit in the state item (about 100
/// bytes each) and its writes in [`WRITE_WINDOW`] (a put to S3 takes tens of milliseconds).
pub const MAX_OBJECTS_PER_INTENT: usize = 64;

/// Whether a page's new activities were all written, or the deadline came between two batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    All,
    Partly,
}

/// The per-run bookkeeping of windows, commits and the canary.
struct Progress {
    /// Whether this run checks its own earlier API calls (live, unfiltered runs only).
    canary_on: bool,
    version: Option<u64>,
    previous_watermark: Option<Timestamp>,
    /// The canary ids this run looks for, and those it found.
    canary_wanted: HashSet<String>,
    canary_found: HashSet<String>,
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
        if let Some(pending) = recovering.as_ref().filter(|p| p.lease_until > now) {
            // The writer may still be alive: wait its short lease out if there is time.
            let wait =
                Duration::try_from(pending.lease_until.duration_since(now)).unwrap_or_default();
            if wait + LEASE_WAIT_SPARE > self.deadline.remaining(now) {
                tracing::warn!(
                    holder = %pending.run_id,
                    lease_until = %pending.lease_until,
                    "another run holds the write lease; stopping without doing anything"
                );
                self.report.stop_reason = Some(StopReason::LeaseHeld);
                return Ok(());
            }
            tracing::info!(holder = %pending.run_id, wait_ms = wait.as_millis() as u64, "waiting out a write lease");
            self.clock.sleep(wait).await;
        }
        // A missing bucket or a refused write fails the run here, before anything is committed.
        if !self.settings.dry_run {
            self.sink.probe().await?;
        }
        if let Some(pending) = &recovering {
            self.recover(pending, &mut state).await?;
        }

        let canary_on =
            self.settings.mode == Mode::Live && self.settings.organization_ids.is_empty();
        let mut progress = Progress {
            canary_on,
            version,
            previous_watermark: state.watermark,
            canary_wanted: if canary_on {
                state.canary.iter().map(|(id, _)| id.clone()).collect()
            } else {
                HashSet::new()
            },
            canary_found: HashSet::new(),
        };

        // A resumed window ends where an earlier run planned it; once it is done, a fresh one
        // takes the run up to the settle line, so a completed run has delivered all that is due.
        self.report.stop_reason = Some(StopReason::NothingNew);
        while let Some(window) = plan(&state, now, &self.settings.horizons, &self.settings.mode) {
            self.report.window_from.get_or_insert(window.from);
            self.report.window_to = Some(window.to);
            self.report.start_cursor.get_or_insert(window.cursor.clone());
            if state.origin.is_none() {
                state.origin = Some(window.from);
                if self.settings.mode == Mode::Live {
                    // The first window read its older hours long after they were indexed; only
                    // the last hours before it need reconciling.
                    let start = floor_hour(window.to) - RECONCILE_FIRST_HOURS;
                    let start = Some(start.max(ceil_hour(window.from)));
                    state.reconciled_until = start;
                    state.rechecked_until = start;
                }
            }
            let reaches_settle_line = window.to >= settle_line(now, &self.settings.horizons);
            let end = self.collect_window(&mut state, &mut progress, window).await?;
            self.report.stop_reason = Some(end);
            if end != StopReason::CaughtUp
                || (self.settings.mode == Mode::Live && reaches_settle_line)
            {
                break;
            }
        }
        self.report.final_cursor = state.window.as_ref().and_then(|w| w.cursor.clone());
        let caught_up =
            matches!(self.report.stop_reason, Some(StopReason::CaughtUp | StopReason::NothingNew));
        if self.settings.mode == Mode::Live && caught_up && !self.settings.dry_run {
            if self.follow_prefix_change(&mut state) {
                self.save(&mut state, &mut progress).await?;
            }
            for pass in ReconcilePass::ALL {
                self.reconcile(&mut state, &mut progress, pass).await?;
            }
        }
        Ok(())
    }

    /// Forgets the earlier calls found so far, with the page that found them: a later run that
    /// finishes the window does not read that page again.
    fn drop_found_canaries(&mut self, state: &mut SyncState, progress: &Progress) {
        if progress.canary_found.is_empty() {
            return;
        }
        let before = state.canary.len();
        state.canary.retain(|(id, _)| !progress.canary_found.contains(id));
        self.report.canary_checked |= state.canary.len() < before;
    }

    /// Checks the previous runs' own API calls against what this run found, and remembers this
    /// run's calls for the next run. An id is due once the watermark has passed its time.
    fn settle_canary(&mut self, state: &mut SyncState, progress: &Progress) {
        if !progress.canary_on {
            return;
        }
        let covered =
            state.watermark.map(|w| w - jiff::SignedDuration::from_secs(CANARY_GRACE_SECS));
        let mut kept = Vec::new();
        // Those found are gone already (`drop_found_canaries`, page by page).
        for (id, at) in state.canary.drain(..) {
            if covered.is_some_and(|c| at < c) {
                tracing::warn!(request_id = %id, at = %at, "canary missing: this collector's own API call never appeared in the feed");
                self.report.canary_missing += 1;
                continue;
            }
            kept.push((id, at));
        }
        kept.extend(std::mem::take(&mut self.report.responses));
        let excess = kept.len().saturating_sub(CANARY_KEEP);
        kept.drain(..excess);
        state.canary = kept;
    }

    /// Pages through one window until it is done or the run must stop; commits after every page.
    async fn collect_window(
        &mut self,
        state: &mut SyncState,
        progress: &mut Progress,
        mut window: Window,
    ) -> Result<StopReason, SyncError> {
        let overlap = signed(self.settings.horizons.overlap);
        let next_overlap_start = window.to.checked_sub(overlap).unwrap_or(window.from);
        let mut previous_last: Option<(Timestamp, String)> = None;
        loop {
            if self.deadline.reached(self.clock.now()) {
                return Ok(StopReason::Deadline);
            }
            let query = PageQuery {
                from: window.from,
                to: window.to,
                after: window.cursor.clone(),
                organization_ids: self.settings.organization_ids.clone(),
                limit: self.settings.page_limit,
            };
            let (fetched, stats) = self.feed.fetch(&query, self.deadline).await;
            self.report.add(stats);
            let page = match fetched {
                Ok(page) => page,
                Err(FeedError::DeadlineReached) => return Ok(StopReason::Deadline),
                Err(FeedError::RateLimited { .. }) => return Ok(StopReason::RateLimited),
                Err(e @ FeedError::Rejected { status: 400, .. }) if query.after.is_some() => {
                    // The API no longer takes the cursor (expired, or from before a change on its
                    // side). Its position is known, and the memory holds every id from the start
                    // of that second on: re-reading from there loses nothing and repeats nothing.
                    // Asked without a cursor, a 400 that comes again is final.
                    let from = window.position.map_or(window.from, floor_second).max(window.from);
                    tracing::warn!(
                        error = %e,
                        position = ?window.position,
                        from = %from,
                        "the API refused the cursor: reading the window again from its position"
                    );
                    self.report.cursor_restarts += 1;
                    window.cursor = None;
                    window.from = from;
                    previous_last = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.report.pages += 1;
            self.refuse_stuck_cursor(
                &query,
                &page,
                previous_last.as_ref().map(|(t, id)| (*t, id.as_str())),
            )?;
            previous_last =
                page.activities.last().map(|a| (a.created_at, a.id.clone())).or(previous_last);

            // One pass over the page: the canary among all its activities, then dedupe against
            // the memory and within the page itself.
            let mut in_page = HashSet::with_capacity(page.activities.len());
            let mut fresh = Fresh::with_capacity(page.activities.len());
            for a in &page.activities {
                if let Some(id) = canary_request_id(&a.raw)
                    && progress.canary_wanted.contains(id.as_str())
                {
                    progress.canary_found.insert(id);
                }
                let h = id_hash(&a.id);
                if !state.seen.contains(h) && in_page.insert(h) {
                    if progress.previous_watermark.is_some_and(|w| a.created_at < w) {
                        self.report.late_arrivals += 1;
                    }
                    fresh.push(h, a);
                } else {
                    self.report.duplicates_dropped += 1;
                }
            }
            self.report.page_log.push(PageRecord {
                request_id: self.report.last_request_id.clone(),
                activities: page.activities.len(),
                new: fresh.activities.len(),
            });
            if self.write_batches(state, progress, &fresh).await? == Written::Partly {
                // The window as it stood before this page: the next run reads the page again.
                state.window = Some(window.clone());
                self.save(state, progress).await?;
                return Ok(StopReason::Deadline);
            }

            // Then advance: cursor, position, and the memory pruned to what can come again.
            if let Some(last) = page.last_id {
                window.cursor = Some(last);
            }
            // The memory keeps this page's ids too, not only those after it: a page served again
            // (a cursor that did not really move) is then dropped, not delivered twice.
            let page_start = page.activities.first().map(|a| a.created_at);
            if let Some(last) = page.activities.last() {
                window.position = Some(last.created_at);
            }
            self.drop_found_canaries(state, progress);
            let done = !page.has_more;
            if done {
                state.watermark = Some(window.to);
                state.window = None;
                forget_before(state, next_overlap_start);
                self.settle_canary(state, progress);
            } else {
                let keep_from = page_start.or(window.position).unwrap_or(window.from);
                forget_before(state, keep_from.min(next_overlap_start));
                state.window = Some(window.clone());
            }
            self.save(state, progress).await?;
            self.report.watermark = state.watermark;
            if done {
                return Ok(StopReason::CaughtUp);
            }
        }
    }

    /// Writes new activities in batches of at most [`MAX_OBJECTS_PER_INTENT`] objects, each one
    /// intent, objects, then the ids into the memory. The caller commits the state afterwards
    /// (with its cursor). Returns [`Written::Partly`] when the deadline came between batches: the
    /// state then holds the batches written, for the caller to commit without moving the cursor,
    /// so the page is read again and what was written is dropped as already seen.
    async fn write_batches(
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

    /// Reconciles whole hours that left the overlap the pass's delay ago: reads back what the
    /// archive holds for the hour, re-reads the hour from the feed, and delivers what is missing —
    /// activities indexed later than the overlap, which would otherwise be lost without a trace.
    /// Costs about one request an hour and pass in steady state. An hour cut short by the
    /// deadline is redone whole next run (idempotent: the archive is the dedupe memory here).
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
            let end = hour + jiff::SignedDuration::from_hours(1);
            if end > horizon || self.deadline.reached(self.clock.now()) {
                return Ok(());
            }
            let mut archived = HashSet::new();
            let partition = partition(&self.settings.output_prefix, hour);
            for key in self.sink.list(&partition).await? {
                let Some(body) = self.sink.get(&key).await? else { continue };
                let activities = decode_activities(&body)
                    .map_err(|source| SyncError::Unrecoverable { key: key.clone(), source })?;
                archived.extend(activities.into_iter().map(|(id, _)| id_hash(&id)));
            }
            let mut cursor = None;
            loop {
                if self.deadline.reached(self.clock.now()) {
                    return Ok(());
                }
                let query = PageQuery {
                    from: hour,
                    to: end,
                    after: cursor.clone(),
                    organization_ids: self.settings.organization_ids.clone(),
                    limit: self.settings.page_limit,
                };
                let (fetched, stats) = self.feed.fetch(&query, self.deadline).await;
                self.report.add(stats);
                let page = match fetched {
                    Ok(page) => page,
                    Err(FeedError::DeadlineReached | FeedError::RateLimited { .. }) => {
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                };
                self.report.pages += 1;
                self.refuse_stuck_cursor(&query, &page, None)?;
                let mut missing = Fresh::with_capacity(0);
                for a in &page.activities {
                    let h = id_hash(&a.id);
                    if archived.insert(h) {
                        missing.push(h, a);
                    }
                }
                if let Some(first) = missing.activities.first() {
                    tracing::warn!(
                        hour = %hour,
                        pass = pass.name(),
                        activities = missing.activities.len(),
                        first = %first.id,
                        "activities indexed later than the overlap: delivering them now"
                    );
                    self.report.late_beyond_overlap += missing.activities.len() as u64;
                    let written = self.write_batches(state, progress, &missing).await?;
                    self.save(state, progress).await?;
                    if written == Written::Partly {
                        // The hour is read again next run, its archive with what was written.
                        return Ok(());
                    }
                }
                cursor = page.last_id.or(cursor);
                if !page.has_more {
                    break;
                }
            }
            *pass.marker(state) = Some(end);
            self.save(state, progress).await?;
        }
        Ok(())
    }

    /// After `OUTPUT_PREFIX` changed, no hour up to the watermark is reconciled: those hours are
    /// archived under the old prefix, which the new one cannot see (nor, with the stack's policy,
    /// read), and every activity of theirs would look missing and be written again. Returns
    /// whether the state changed (the caller commits it at once).
    fn follow_prefix_change(&self, state: &mut SyncState) -> bool {
        let prefix = &self.settings.output_prefix;
        if state.archive_prefix.as_ref() == Some(prefix) {
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
        state.archive_prefix = Some(prefix.clone());
        true
    }

    /// A page that says there is more but hands back the cursor it was asked after, or whose last
    /// activity is the previous page's or older, would have the run read the same records again
    /// and again: a protocol fault, never skipped over. The run stops without advancing.
    fn refuse_stuck_cursor(
        &self,
        query: &PageQuery,
        page: &Page,
        previous_last: Option<(Timestamp, &str)>,
    ) -> Result<(), SyncError> {
        // Ids of one instant are in the API's order, which it does not define: only an earlier
        // time, or the very same last activity, says the cursor did not move.
        let last = page.activities.last().map(|a| (a.created_at, a.id.as_str()));
        let went_back = matches!((last, previous_last), (Some(l), Some(p)) if l.0 < p.0 || l == p);
        if page.has_more && (went_back || (page.last_id.is_some() && page.last_id == query.after)) {
            tracing::error!(
                request_id = self.report.last_request_id.as_deref().unwrap_or("-"),
                cursor = query.after.as_deref().unwrap_or("-"),
                "the API returned the cursor it was asked after: stopping without advancing"
            );
            return Err(SyncError::Feed(FeedError::InvalidPage {
                request_id: self.report.last_request_id.clone(),
                source: PageError::StuckCursor,
            }));
        }
        Ok(())
    }

    /// Accounts for the objects of an interrupted batch: those that exist are delivered, so their
    /// ids join the dedupe memory; those that do not were never written.
    async fn recover(&mut self, pending: &Pending, state: &mut SyncState) -> Result<(), SyncError> {
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

    /// Commits the state on the version this run holds, and holds the new one; a dry run
    /// commits nothing.
    async fn save(&self, state: &mut SyncState, progress: &mut Progress) -> Result<(), SyncError> {
        if !self.settings.dry_run {
            progress.version = Some(self.commit(state, progress.version).await?);
        }
        Ok(())
    }

    async fn commit(&self, state: &mut SyncState, expected: Option<u64>) -> Result<u64, SyncError> {
        state.updated_at = Some(self.clock.now());
        state.updated_by = Some(self.settings.run_id.clone());
        Ok(self.store.commit(&self.settings.stream, state, expected).await?)
    }
}

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
const RECONCILE_HOURS_PER_RUN: usize = 2;

/// How many hours before the first window's end are reconciled.
const RECONCILE_FIRST_HOURS: jiff::SignedDuration = jiff::SignedDuration::from_hours(2);

/// Prunes the dedupe memory to the ids created from `cutoff`'s second on, and records from when it
/// is complete.
fn forget_before(state: &mut SyncState, cutoff: Timestamp) {
    state.seen.prune_before(cutoff);
    let cutoff = floor_second(cutoff);
    state.seen_from = Some(state.seen_from.map_or(cutoff, |from| from.max(cutoff)));
}

fn floor_hour(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(3600)).unwrap_or(t)
}

fn ceil_hour(t: Timestamp) -> Timestamp {
    let secs = t.as_second();
    Timestamp::from_second(secs + (3600 - secs.rem_euclid(3600)) % 3600).unwrap_or(t)
}

/// A canary id is due when the watermark is this far past its request: the feed indexes within a
/// minute.
const CANARY_GRACE_SECS: i64 = 60;
/// At most this many canary ids are remembered.
const CANARY_KEEP: usize = 32;
