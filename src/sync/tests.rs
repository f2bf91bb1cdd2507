//! The sync core's invariants, over in-memory fakes of every port.
//!
//! Contents:
//! - a fake feed with the API's paging semantics (order, bounds, opaque position cursors,
//!   late indexing, at-least-once re-serving, injected failures);
//! - one test per invariant of design.md: no gaps, no duplicates, write then advance,
//!   compare-and-swap, bounded dedupe memory, deadline stops, nothing touched on human errors;
//! - a seeded randomised test mixing all of it over many runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::archive::memory::MemorySink;
use crate::clock::fake::FakeClock;
use crate::clock::{Clock, Deadline};
use crate::feed::{Activity, ActivityFeed, FeedError, Page, PageQuery, RequestStats};
use crate::state::memory::MemoryStore;

// ---------------------------------------------------------------------------------------------
// The fake feed

#[derive(Default)]
struct FakeFeed {
    /// (activity, visible)
    data: Mutex<Vec<(Activity, bool)>>,
    fetches: Mutex<u32>,
    /// Fail fetch number n (1-based) with this error.
    fail_at: Mutex<HashMap<u32, fn() -> FeedError>>,
    /// Re-serve the previous page's last activity at the head of the next page (at-least-once).
    reserve: bool,
    /// Advance this clock by this much on every fetch.
    tick: Option<(&'static FakeClock, Duration)>,
    /// Answer every request with a cursor with 400, as for a cursor the API no longer takes.
    refuse_cursors: Mutex<bool>,
    /// Order ids of the same instant ignoring case (the API does not say how it orders them).
    fold_case_ids: bool,
}

impl FakeFeed {
    fn add(&self, id: &str, created_at: Timestamp, visible: bool) {
        let raw =
            format!(r#"{{"id":"{id}","created_at":"{created_at}","type":"claude_chat_created"}}"#);
        self.data
            .lock()
            .unwrap()
            .push((Activity { id: id.into(), created_at, raw: raw.into() }, visible));
    }
    fn reveal_all(&self) {
        for (_, v) in self.data.lock().unwrap().iter_mut() {
            *v = true;
        }
    }
    fn cursor(a: &Activity) -> String {
        format!("pos:{}:{}", a.created_at.as_nanosecond(), a.id)
    }
}

impl ActivityFeed for FakeFeed {
    async fn fetch(
        &self,
        q: &PageQuery,
        _deadline: Deadline,
    ) -> (Result<Page, FeedError>, RequestStats) {
        (self.serve(q), RequestStats { requests: 1, ..Default::default() })
    }
}

impl FakeFeed {
    fn serve(&self, q: &PageQuery) -> Result<Page, FeedError> {
        let n = {
            let mut f = self.fetches.lock().unwrap();
            *f += 1;
            *f
        };
        if let Some((clock, d)) = self.tick {
            clock.advance(d);
        }
        if let Some(make) = self.fail_at.lock().unwrap().remove(&n) {
            return Err(make());
        }
        if q.after.is_some() && *self.refuse_cursors.lock().unwrap() {
            return Err(FeedError::Rejected {
                status: 400,
                error_type: "invalid_request_error".into(),
                message: "invalid cursor".into(),
                request_id: None,
            });
        }
        let mut rows: Vec<Activity> = self
            .data
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, v)| *v && a.created_at >= q.from && a.created_at < q.to)
            .map(|(a, _)| a.clone())
            .collect();
        let order = |t: Timestamp, id: &str| {
            (t, if self.fold_case_ids { id.to_lowercase() } else { id.to_owned() })
        };
        rows.sort_by_key(|a| order(a.created_at, &a.id));
        let start = match &q.after {
            None => 0,
            Some(c) => {
                let mut parts = c.splitn(3, ':');
                let (_, nanos, id) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
                let pos = order(Timestamp::from_nanosecond(nanos.parse().unwrap()).unwrap(), id);
                let after = rows
                    .iter()
                    .position(|a| order(a.created_at, &a.id) > pos)
                    .unwrap_or(rows.len());
                if self.reserve && after > 0 { after - 1 } else { after }
            }
        };
        let end = (start + q.limit as usize).min(rows.len());
        let page_rows = rows[start..end].to_vec();
        let page = Page {
            has_more: end < rows.len(),
            last_id: page_rows.last().map(FakeFeed::cursor),
            activities: page_rows,
        };
        Ok(page)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn leak_clock(t: &str) -> &'static FakeClock {
    Box::leak(Box::new(FakeClock::at(t)))
}

fn settings(page_limit: u32) -> Settings {
    Settings {
        horizons: Horizons {
            settle: Duration::from_secs(120),
            overlap: Duration::from_secs(900),
            initial_lookback: Duration::from_secs(24 * 3600),
        },
        mode: Mode::Live,
        stream: crate::state::LIVE_STREAM.into(),
        organization_ids: vec![],
        output_prefix: "p/".into(),
        run_id: "run".into(),
        page_limit,
        dry_run: false,
        object_tag: None,
    }
}

struct World {
    feed: FakeFeed,
    sink: MemorySink,
    store: MemoryStore,
    clock: &'static FakeClock,
    settings: Settings,
}

impl World {
    fn new(now: &str, page_limit: u32) -> World {
        World {
            feed: FakeFeed::default(),
            sink: MemorySink::default(),
            store: MemoryStore::default(),
            clock: leak_clock(now),
            settings: settings(page_limit),
        }
    }

    async fn run_for(&self, budget: Duration) -> Result<RunReport, RunFailure> {
        let now = self.clock.now();
        let deadline = Deadline::new(now, now + SignedDuration::try_from(budget).unwrap());
        run(&self.feed, &self.sink, &self.store, self.clock, deadline, &self.settings).await
    }

    async fn run(&self) -> Result<RunReport, RunFailure> {
        self.run_for(Duration::from_secs(300)).await
    }

    /// Every delivered id must be unique; returns how many.
    fn assert_no_duplicates(&self) -> usize {
        let ids = self.sink.ids();
        let mut counts: BTreeMap<&String, u32> = BTreeMap::new();
        for id in &ids {
            *counts.entry(id).or_default() += 1;
        }
        let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "delivered more than once: {dups:?}");
        ids.len()
    }

    /// Every visible activity created before `until` must be delivered.
    fn assert_no_gaps(&self, until: Timestamp) {
        let delivered: std::collections::HashSet<String> = self.sink.ids().into_iter().collect();
        for (a, visible) in self.feed.data.lock().unwrap().iter() {
            if *visible && a.created_at < until {
                assert!(
                    delivered.contains(&a.id),
                    "{} ({}) was never delivered",
                    a.id,
                    a.created_at
                );
            }
        }
    }
}

fn minutes(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

// ---------------------------------------------------------------------------------------------
// One behaviour each

#[tokio::test]
async fn the_first_run_delivers_the_lookback_and_nothing_unsettled() {
    // GIVEN activities from 30 h ago to just now
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    let now = w.clock.now();
    w.feed.add("too_old", now - SignedDuration::from_hours(30), true);
    w.feed.add("old_enough", now - SignedDuration::from_hours(23), true);
    w.feed.add("settled", now - minutes(3), true);
    w.feed.add("unsettled", now - minutes(1), true);
    // WHEN the first run runs
    let report = w.run().await.unwrap();
    // THEN it delivers what lies between the lookback and the settle line
    let mut ids = w.sink.ids();
    ids.sort();
    assert_eq!(ids, ["old_enough", "settled"]);
    assert_eq!(report.stop_reason, Some(StopReason::CaughtUp));
    assert_eq!(report.watermark, Some(ts("2026-01-01T23:58:00Z")));
    assert_eq!(report.delivered, 2);
}

#[tokio::test]
async fn a_run_with_nothing_new_writes_nothing() {
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    w.run().await.unwrap();
    let objects = w.sink.objects.lock().unwrap().len();
    // WHEN five minutes later a run finds only what it delivered (in the overlap)
    w.clock.advance(Duration::from_secs(300));
    let report = w.run().await.unwrap();
    // THEN it drops it as a duplicate and writes no object
    assert_eq!((report.delivered, report.duplicates_dropped), (0, 1));
    assert_eq!(w.sink.objects.lock().unwrap().len(), objects);
    assert_eq!(report.watermark, Some(ts("2026-01-02T00:03:00Z")));
}

#[tokio::test]
async fn late_indexed_activities_within_the_overlap_are_delivered_once() {
    // GIVEN a first run, then an activity created before its watermark but indexed after it
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("on_time", w.clock.now() - minutes(5), true);
    w.feed.add("late", w.clock.now() - minutes(6), false);
    w.run().await.unwrap();
    w.feed.reveal_all();
    // WHEN the next run comes
    w.clock.advance(Duration::from_secs(300));
    let report = w.run().await.unwrap();
    // THEN the late one is delivered, counted as late, and nothing twice
    assert_eq!((report.delivered, report.late_arrivals), (1, 1));
    assert_eq!(w.assert_no_duplicates(), 2);
}

#[tokio::test]
async fn a_run_stopped_by_its_deadline_resumes_where_it_stopped() {
    // GIVEN 50 activities, pages of 5, and a clock that moves 2 s per fetch in a 20 s budget
    let mut w = World::new("2026-01-02T00:00:00Z", 5);
    let clock = w.clock;
    w.feed.tick = Some((clock, Duration::from_secs(2)));
    for i in 0..50 {
        w.feed.add(&format!("a{i:02}"), clock.now() - SignedDuration::from_mins(600 - i), true);
    }
    // WHEN the first run runs out of time
    let first = w.run_for(Duration::from_secs(20)).await.unwrap();
    assert_eq!(first.stop_reason, Some(StopReason::Deadline));
    assert!(first.delivered > 0 && first.delivered < 50, "{first:?}");
    let state = w.store.state().unwrap();
    assert!(state.window.as_ref().is_some_and(|w| w.cursor.is_some()));
    assert_eq!(state.watermark, None);
    // THEN later runs resume from the cursor until everything is delivered once
    let mut runs = 1;
    while w.store.state().unwrap().window.is_some() {
        w.run_for(Duration::from_secs(20)).await.unwrap();
        runs += 1;
        assert!(runs < 20);
    }
    assert_eq!(w.assert_no_duplicates(), 50);
    let _ = &mut w;
}

#[tokio::test]
async fn an_earlier_call_found_by_a_run_that_stops_early_is_not_reported_missing_later() {
    // GIVEN an earlier run's API call to look for, recorded by the feed among 50 activities, and
    // runs that each read a few pages of 5 before their deadline
    let mut w = World::new("2026-01-02T00:00:00Z", 5);
    let clock = w.clock;
    w.feed.tick = Some((clock, Duration::from_secs(2)));
    let start = clock.now() - SignedDuration::from_mins(600);
    for i in 0..50 {
        w.feed.add(&format!("a{i:02}"), start + SignedDuration::from_mins(i), true);
    }
    let call_at = start + SignedDuration::from_secs(150);
    let raw = format!(
        r#"{{"id":"call","created_at":"{call_at}","type":"compliance_api_accessed","request_id":"req_earlier"}}"#
    );
    let call = Activity { id: "call".into(), created_at: call_at, raw: raw.into() };
    w.feed.data.lock().unwrap().push((call, true));
    let earlier = crate::state::SyncState {
        canary: vec![("req_earlier".into(), call_at)],
        ..Default::default()
    };
    *w.store.item.lock().unwrap() = Some(crate::state::Versioned { state: earlier, version: 1 });
    // WHEN the first run finds the call on its first page but stops before the window's end, and
    // later runs finish the window without reading that page again
    let mut reports = vec![w.run_for(Duration::from_secs(20)).await.unwrap()];
    assert_eq!(reports[0].stop_reason, Some(StopReason::Deadline));
    while w.store.state().unwrap().window.is_some() {
        reports.push(w.run_for(Duration::from_secs(20)).await.unwrap());
        assert!(reports.len() < 20);
    }
    // THEN the call counts as found, never as missing
    assert_eq!(reports.iter().map(|r| r.canary_missing).sum::<u32>(), 0, "{reports:?}");
    assert!(reports[0].canary_checked);
    assert!(w.store.state().unwrap().canary.iter().all(|(id, _)| id != "req_earlier"));
    let _ = &mut w;
}

#[tokio::test]
async fn pages_that_order_ids_of_one_instant_differently_from_byte_order_are_read_through() {
    // GIVEN three activities of the same second whose ids the API orders ignoring case
    // (a_b, a_C, a_d: in byte order a_C comes first), served a page of one at a time
    let mut w = World::new("2026-01-02T00:00:00Z", 1);
    w.feed.fold_case_ids = true;
    let at = w.clock.now() - minutes(10);
    for id in ["a_d", "a_C", "a_b"] {
        w.feed.add(id, at, true);
    }
    // WHEN a run pages through them
    let report = w.run().await.unwrap();
    // THEN no page is taken for a cursor that went back, and each is delivered once
    assert_eq!(report.stop_reason, Some(StopReason::CaughtUp));
    assert_eq!(w.assert_no_duplicates(), 3);
}

#[tokio::test]
async fn a_cursor_the_api_no_longer_takes_is_replaced_by_its_position() {
    // GIVEN 60 activities, three in each second, pages of 5 (so pages end inside a second), and a
    // first run stopped by its deadline with a cursor stored
    let mut w = World::new("2026-01-02T00:00:00Z", 5);
    let clock = w.clock;
    w.feed.tick = Some((clock, Duration::from_secs(2)));
    let start = clock.now() - SignedDuration::from_hours(5);
    for i in 0..60 {
        let at = start + SignedDuration::from_secs(i / 3) + SignedDuration::from_millis(i % 3);
        w.feed.add(&format!("a{i:02}"), at, true);
    }
    let first = w.run_for(Duration::from_secs(12)).await.unwrap();
    assert_eq!(first.stop_reason, Some(StopReason::Deadline));
    assert!(w.store.state().unwrap().window.is_some_and(|w| w.cursor.is_some()));
    // WHEN the API stops taking cursors (every one is a 400 from now on)
    *w.feed.refuse_cursors.lock().unwrap() = true;
    let mut restarts = 0;
    let mut runs = 0;
    while w.store.state().unwrap().window.is_some() {
        let report = w.run_for(Duration::from_secs(12)).await.unwrap();
        restarts += report.cursor_restarts;
        runs += 1;
        assert!(runs < 30, "no progress: {report:?}");
    }
    // THEN each refused cursor was replaced by its position: all delivered, none twice
    assert!(restarts > 0);
    assert_eq!(w.assert_no_duplicates(), 60);
    w.assert_no_gaps(w.store.state().unwrap().watermark.unwrap());
    let _ = &mut w;
}

#[tokio::test]
async fn a_request_refused_without_a_cursor_fails_the_run_without_advancing() {
    // GIVEN a window in progress, and an API that refuses the cursor and then the plain request
    let w = World::new("2026-01-02T00:00:00Z", 2);
    for i in 0..6 {
        w.feed.add(&format!("a{i}"), w.clock.now() - minutes(60 - i), true);
    }
    let rejected = || FeedError::Rejected {
        status: 400,
        error_type: "invalid_request_error".into(),
        message: "bad request".into(),
        request_id: None,
    };
    w.feed.fail_at.lock().unwrap().extend([(2, rejected as fn() -> FeedError), (3, rejected)]);
    // WHEN the run meets them
    let failed = w.run().await.unwrap_err();
    // THEN it fails with the API's refusal, having kept the first page and its cursor
    assert!(matches!(failed.error, SyncError::Feed(FeedError::Rejected { .. })), "{failed:?}");
    let state = w.store.state().unwrap();
    assert!(state.window.is_some_and(|w| w.cursor.is_some()));
    assert_eq!(w.sink.ids().len(), 2);
}

#[tokio::test]
async fn an_activity_over_the_body_budget_fails_the_run_and_nothing_past_it_is_committed() {
    // GIVEN a window of six activities read two a page, whose third activity alone is over the
    // page body budget (the feed client's RecordTooLarge, on the second and every later fetch)
    let w = World::new("2026-01-02T00:00:00Z", 2);
    for i in 0..6 {
        w.feed.add(&format!("a{i}"), w.clock.now() - minutes(60 - i), true);
    }
    let too_large = || FeedError::RecordTooLarge {
        id: Some("a2".into()),
        after: Some("pos:a1".into()),
        from: "2026-01-01T22:45:00Z".parse().unwrap(),
        size: crate::feed::BodySize::CutAfter(33 << 20),
        budget: 32 << 20,
        request_id: None,
    };
    w.feed.fail_at.lock().unwrap().extend((2..6).map(|n| (n, too_large as fn() -> FeedError)));
    // WHEN a run meets it
    let failed = w.run().await.unwrap_err();
    // THEN the run fails naming the activity, with the stable error type of an oversized one
    assert!(
        matches!(&failed.error, SyncError::Feed(FeedError::RecordTooLarge { id: Some(id), .. }) if id == "a2"),
        "{failed:?}"
    );
    let message = failed.error.to_string();
    assert!(message.contains("id a2"), "{message}");
    assert_eq!(crate::error::RunError::Sync(failed.error).error_type(), "ActivityTooLarge");
    // AND only the page before it is delivered and committed: the cursor stops at a1, no
    // watermark passes it, no write intent is left open
    assert_eq!(w.sink.ids(), ["a0", "a1"]);
    let state = w.store.state().unwrap();
    assert!(state.pending.is_none());
    assert_eq!(state.watermark, None);
    let cursor = state.window.and_then(|w| w.cursor).unwrap();
    assert!(cursor.ends_with(":a1"), "{cursor}");
    // AND once the function has the memory for it (the failures end), the next run carries on
    // from there: every activity once, none missing
    w.feed.fail_at.lock().unwrap().clear();
    w.run().await.unwrap();
    assert_eq!(w.assert_no_duplicates(), 6);
    w.assert_no_gaps(w.store.state().unwrap().watermark.unwrap());
}

#[tokio::test]
async fn a_lost_commit_after_the_write_never_duplicates_even_when_pages_shift() {
    // GIVEN a run that writes a page and then fails to commit it (a crash)
    let w = World::new("2026-01-02T00:00:00Z", 3);
    for i in 0..6 {
        w.feed.add(&format!("a{i}"), w.clock.now() - minutes(60 - i), true);
    }
    // commit 1 = intent of page 1, commit 2 = page 1 done: lose it
    *w.store.fail_commit.lock().unwrap() = Some(2);
    let failed = w.run().await.unwrap_err();
    assert!(matches!(failed.error, SyncError::State(_)));
    assert_eq!(w.sink.ids().len(), 3);
    // AND before the retry a late activity lands in the middle of that page, shifting pages
    w.feed.add("late", w.clock.now() - SignedDuration::from_secs(60 * 59 + 30), true);
    // WHEN the next run comes after the lease
    w.clock.advance(Duration::from_secs(600));
    let report = w.run().await.unwrap();
    // THEN the interrupted batch was recovered and everything is delivered exactly once
    assert_eq!(report.recovered_objects, 1);
    assert_eq!(w.assert_no_duplicates(), 7);
}

#[tokio::test]
async fn a_write_that_fails_after_the_intent_loses_nothing() {
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    *w.sink.fail_after_puts.lock().unwrap() = Some(0);
    assert!(w.run().await.is_err());
    assert!(w.sink.ids().is_empty());
    *w.sink.fail_after_puts.lock().unwrap() = None;
    w.clock.advance(Duration::from_secs(600));
    w.run().await.unwrap();
    assert_eq!(w.sink.ids(), ["a"]);
}

#[tokio::test]
async fn a_run_within_another_runs_lease_does_nothing_when_it_cannot_wait() {
    // GIVEN a run that died after writing its intent and objects
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    *w.store.fail_commit.lock().unwrap() = Some(2);
    assert!(w.run().await.is_err());
    // WHEN another run starts at once with too little time to wait the lease out
    let report = w.run_for(Duration::from_secs(20)).await.unwrap();
    // THEN it stops at once, leaving the intent in place
    assert_eq!(report.stop_reason, Some(StopReason::LeaseHeld));
    assert!(w.store.state().unwrap().pending.is_some());
}

#[tokio::test]
async fn a_run_with_time_to_spare_waits_out_a_dead_writers_lease_and_recovers() {
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    *w.store.fail_commit.lock().unwrap() = Some(2);
    assert!(w.run().await.is_err());
    let before = w.clock.now();
    let report = w.run().await.unwrap();
    assert!(w.clock.now() >= before + SignedDuration::try_from(run::WRITE_LEASE).unwrap());
    assert_eq!((report.recovered_objects, report.delivered), (1, 0));
    assert_eq!(w.assert_no_duplicates(), 1);
}

#[tokio::test]
async fn a_switch_off_in_a_batch_whose_commit_was_lost_is_still_signalled_when_recovered() {
    // GIVEN a page holding the Compliance API being switched off, and a run that dies after
    // writing it but before its commit
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    let at = w.clock.now() - minutes(10);
    let raw = format!(
        r#"{{"id":"off","created_at":"{at}","type":"org_compliance_api_settings_updated","updates":[{{"field":"compliance_api_enabled","old_value":true,"new_value":false}}]}}"#
    );
    let off = Activity { id: "off".into(), created_at: at, raw: raw.into() };
    w.feed.data.lock().unwrap().push((off, true));
    *w.store.fail_commit.lock().unwrap() = Some(2);
    let failed = w.run().await.unwrap_err();
    // WHEN the next run recovers the batch (its activity already delivered)
    let report = w.run().await.unwrap();
    // THEN the recovering run signals the switch-off too: a killed writer never put its metrics
    // (this one, alive, did: the alarm may count it twice, never not at all)
    assert_eq!(failed.report.compliance_logging_disabled, 1, "seen before the commit was lost");
    assert_eq!((report.recovered_objects, report.compliance_logging_disabled), (1, 1));
    assert_eq!(w.assert_no_duplicates(), 1);
}

#[tokio::test]
async fn a_writer_past_its_write_window_stops_before_the_next_put() {
    // GIVEN a state store so slow that the write window has passed when the intent is committed
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    let clock = w.clock;
    w.store.on_commit(move |_| clock.advance(run::WRITE_WINDOW));
    // WHEN a run writes the page
    let failed = w.run().await.unwrap_err();
    // THEN it fails on the lease before putting the object
    assert!(matches!(failed.error, SyncError::LeaseExpired { .. }), "{failed}");
    assert!(w.sink.ids().is_empty());
}

/// A sparse organization's history: one activity an hour for `hours` hours before `now`.
fn sparse_world(hours: i64) -> World {
    let mut w = World::new("2026-03-01T00:00:00Z", 5000);
    w.settings.horizons.initial_lookback = Duration::from_secs(40 * 24 * 3600);
    let now = w.clock.now();
    for h in 1..=hours {
        w.feed.add(&format!("h{h:04}"), now - SignedDuration::from_hours(h) + minutes(7), true);
    }
    w
}

#[tokio::test]
async fn a_page_spanning_hundreds_of_hours_is_written_in_batches_that_fit_the_state_item() {
    // GIVEN one page of 700 activities, each in an hour of its own (700 objects)
    let w = sparse_world(700);
    // WHEN a run collects it
    let report = w.run().await.unwrap();
    // THEN every activity is delivered once, and no write intent held more than the cap of keys
    assert_eq!((report.delivered, report.objects_written), (700, 700));
    assert_eq!(w.assert_no_duplicates(), 700);
    let intent = *w.store.max_intent_keys.lock().unwrap();
    assert_eq!(intent, write::MAX_OBJECTS_PER_INTENT, "the largest write intent");
}

#[tokio::test]
async fn a_deadline_between_batches_of_a_page_stops_resumably_and_reads_the_page_again() {
    // GIVEN one page of 700 hours (11 write intents), and a state store that takes 8 s a commit
    let w = sparse_world(700);
    let clock = w.clock;
    w.store.on_commit(move |_| clock.advance(Duration::from_secs(8)));
    let mut stops = Vec::new();
    let mut first_window = None;
    for _ in 0..20 {
        // WHEN runs of one minute each (a stop margin of 2 s) collect it
        let report = w.run_for(Duration::from_secs(60)).await.unwrap();
        stops.push((report.stop_reason, report.delivered, report.duplicates_dropped));
        if stops.len() == 1 {
            first_window = w.store.state().unwrap().window;
        }
        if report.stop_reason == Some(StopReason::CaughtUp) {
            break;
        }
    }
    // THEN the first runs stop part-way through the page, each later one drops what the earlier
    // ones wrote, and together they deliver every activity once
    assert_eq!(stops[0].0, Some(StopReason::Deadline), "{stops:?}");
    assert_eq!(
        first_window.as_ref().map(|w| w.cursor.clone()),
        Some(None),
        "the page's own window"
    );
    assert!(stops[0].1 >= write::MAX_OBJECTS_PER_INTENT as u64 && stops[0].1 < 700, "{stops:?}");
    assert_eq!(stops[1].2, stops[0].1, "{stops:?}");
    assert_eq!(stops.last().unwrap().0, Some(StopReason::CaughtUp), "{stops:?}");
    assert_eq!(stops.iter().map(|s| s.1).sum::<u64>(), 700);
    assert_eq!(w.assert_no_duplicates(), 700);
    w.assert_no_gaps(w.clock.now() - minutes(3));
}

#[tokio::test]
async fn a_run_that_loses_the_compare_and_swap_stops_without_writing() {
    // GIVEN a stored state at version 1
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.run().await.unwrap();
    w.feed.add("a", w.clock.now() - minutes(1), true);
    w.clock.advance(Duration::from_secs(300));
    // WHEN another run commits between this run's load and its first commit
    let mut raced = false;
    w.store.on_commit(move |item| {
        if let Some(rival) = item.as_mut().filter(|_| !std::mem::replace(&mut raced, true)) {
            rival.state.updated_by = Some("rival".into());
            rival.version += 1;
        }
    });
    let failed = w.run().await.unwrap_err();
    // THEN it fails as a concurrent run and wrote nothing
    assert!(matches!(failed.error, SyncError::State(crate::state::StateError::Conflict { .. })));
    assert!(w.sink.ids().is_empty());
}

#[tokio::test]
async fn an_activity_served_twice_is_delivered_once() {
    // GIVEN a feed that re-serves the last record of each page at the head of the next
    let mut w = World::new("2026-01-02T00:00:00Z", 2);
    w.feed.reserve = true;
    for i in 0..7 {
        w.feed.add(&format!("a{i}"), w.clock.now() - minutes(30 - i), true);
    }
    let report = w.run().await.unwrap();
    assert_eq!(w.assert_no_duplicates(), 7);
    assert!(report.duplicates_dropped > 0);
    let _ = &mut w;
}

#[tokio::test]
async fn a_rejected_key_changes_nothing() {
    let w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    w.feed.fail_at.lock().unwrap().insert(1, || FeedError::Unauthorized {
        error_type: "authentication_error".into(),
        message: "invalid x-api-key".into(),
        request_id: None,
    });
    let failed = w.run().await.unwrap_err();
    assert!(matches!(failed.error, SyncError::Feed(FeedError::Unauthorized { .. })));
    assert!(w.store.state().is_none(), "the state item must not be touched");
    assert!(w.sink.ids().is_empty());
}

#[tokio::test]
async fn a_missing_bucket_changes_nothing() {
    let mut w = World::new("2026-01-02T00:00:00Z", 5000);
    w.sink.missing_bucket = true;
    w.feed.add("a", w.clock.now() - minutes(10), true);
    let failed = w.run().await.unwrap_err();
    assert!(matches!(
        failed.error,
        SyncError::Archive(crate::archive::SinkError::BucketNotFound { .. })
    ));
    assert!(w.store.state().is_none());
    let _ = &mut w;
}

#[tokio::test]
async fn a_bucket_gone_with_nothing_new_to_write_changes_nothing_either() {
    // GIVEN a collection that has begun, and then the bucket is deleted
    let mut w = World::new("2026-01-02T00:00:00Z", 5000);
    w.feed.add("a", w.clock.now() - minutes(10), true);
    w.run().await.unwrap();
    let before = w.store.item.lock().unwrap().clone();
    w.sink.missing_bucket = true;
    // WHEN a run finds nothing new
    w.clock.advance(Duration::from_secs(300));
    let failed = w.run().await.unwrap_err();
    // THEN it fails on the bucket without committing its watermark
    assert!(matches!(
        failed.error,
        SyncError::Archive(crate::archive::SinkError::BucketNotFound { .. })
    ));
    assert_eq!(*w.store.item.lock().unwrap(), before);
}

#[tokio::test]
async fn rate_limiting_stops_resumably() {
    let w = World::new("2026-01-02T00:00:00Z", 1);
    for i in 0..3 {
        w.feed.add(&format!("a{i}"), w.clock.now() - minutes(30 - i), true);
    }
    w.feed.fail_at.lock().unwrap().insert(2, || FeedError::RateLimited { retry_after: None });
    let report = w.run().await.unwrap();
    assert_eq!((report.stop_reason, report.delivered), (Some(StopReason::RateLimited), 1));
    w.run().await.unwrap();
    assert_eq!(w.assert_no_duplicates(), 3);
}

#[tokio::test]
async fn the_dedupe_memory_stays_bounded_by_the_overlap() {
    // GIVEN one activity a minute for 12 hours, collected every 5 minutes
    let w = World::new("2026-01-01T00:00:00Z", 5000);
    let start = w.clock.now();
    for i in 0..(12 * 60) {
        w.feed.add(&format!("a{i:04}"), start + minutes(i), true);
    }
    let mut largest = 0;
    for _ in 0..(12 * 12) {
        w.clock.advance(Duration::from_secs(300));
        w.run().await.unwrap();
        largest = largest.max(w.store.state().unwrap().seen.len());
    }
    // THEN the memory never held more than the overlap's worth (15 + the window's 5 + 1)
    assert!(largest <= 21, "largest seen set: {largest}");
    w.assert_no_duplicates();
    w.assert_no_gaps(w.store.state().unwrap().watermark.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Randomised: arrivals, late indexing within the overlap, crashes, deadlines, re-serving

#[tokio::test]
async fn seeded_schedules_never_lose_or_duplicate() {
    for seed in 1..=60u64 {
        eprintln!("seed {seed}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut w = World::new("2026-01-01T00:00:00Z", 1 + rng.u32(1..8));
        w.feed.reserve = rng.bool();
        let clock = w.clock;
        let mut next = 0;
        for _ in 0..40 {
            // new activities; a fifth are indexed late, by at most 300 + 400 s (< the 900 s overlap)
            for _ in 0..rng.usize(0..12) {
                let visible = rng.u8(0..5) != 0;
                let age = SignedDuration::from_secs(rng.i64(0..300));
                w.feed.add(&format!("a{next:05}"), clock.now() - age, visible);
                next += 1;
            }
            // crashes: a lost commit, or a failed write
            match rng.u8(0..10) {
                0 => {
                    *w.store.fail_commit.lock().unwrap() =
                        Some(*w.store.commits.lock().unwrap() + 1 + rng.u32(0..4))
                }
                1 => *w.sink.fail_after_puts.lock().unwrap() = Some(rng.usize(0..3)),
                _ => {}
            }
            let budget = Duration::from_secs(rng.u64(3..60));
            let r = w.run_for(budget).await;
            if std::env::var("TRACE").is_ok() {
                eprintln!(
                    "now {} -> {:?}",
                    clock.now(),
                    r.as_ref()
                        .map(|r| (r.delivered, r.window_from, r.window_to, r.stop_reason))
                        .map_err(|e| e.to_string())
                );
            }
            *w.store.fail_commit.lock().unwrap() = None;
            *w.sink.fail_after_puts.lock().unwrap() = None;
            let reveal_before_advance = rng.bool();
            if reveal_before_advance {
                w.feed.reveal_all();
            }
            clock.advance(Duration::from_secs(rng.u64(60..400)));
            if !reveal_before_advance {
                w.feed.reveal_all();
            }
        }
        w.feed.reveal_all();
        // drain: healthy runs until caught up
        for _ in 0..50 {
            clock.advance(Duration::from_secs(300));
            let r = w.run().await.unwrap_or_else(|f| panic!("seed {seed}: {f}"));
            if std::env::var("TRACE").is_ok() {
                eprintln!(
                    "drain now {} -> {:?} state {:?}",
                    clock.now(),
                    r,
                    w.store.state().map(|s| (s.watermark, s.window, s.pending))
                );
            }
            if r.stop_reason == Some(StopReason::CaughtUp)
                && w.store.state().unwrap().window.is_none()
            {
                break;
            }
        }
        let watermark = w.store.state().unwrap().watermark.unwrap();
        w.assert_no_duplicates();
        w.assert_no_gaps(watermark);
        let _ = &mut w;
    }
}

#[tokio::test]
async fn activities_indexed_later_than_the_overlap_are_found_by_reconciliation_and_delivered_once()
{
    // GIVEN collection every 5 minutes, and an activity that the API indexes two hours late
    let w = World::new("2026-01-01T00:00:00Z", 5000);
    let start = w.clock.now();
    for i in 0..(8 * 12) {
        w.feed.add(&format!("a{i:03}"), start + minutes(5 * i), true);
    }
    w.feed.add("very_late", start + minutes(65), false);
    let mut late_beyond = 0;
    for step in 0..(8 * 12) {
        w.clock.advance(Duration::from_secs(300));
        if step == 36 {
            w.feed.reveal_all(); // at 3 h, long after its hour left the 15-minute overlap
        }
        let report = w.run().await.unwrap();
        late_beyond += report.late_beyond_overlap;
    }
    // THEN reconciliation delivered it, once, and said so; nothing else was delivered twice
    assert_eq!(late_beyond, 1);
    w.assert_no_duplicates();
    w.assert_no_gaps(w.store.state().unwrap().watermark.unwrap());
    assert!(w.store.state().unwrap().reconciled_until.is_some());
}

#[tokio::test]
async fn a_larger_overlap_never_rereads_what_the_memory_has_forgotten() {
    // GIVEN an hour collected every 5 minutes with a 15-minute overlap
    let mut w = World::new("2026-01-01T00:00:00Z", 5000);
    let start = w.clock.now();
    for i in 0..(3 * 60) {
        w.feed.add(&format!("a{i:03}"), start + minutes(i), true);
    }
    for _ in 0..12 {
        w.clock.advance(Duration::from_secs(300));
        w.run().await.unwrap();
    }
    // WHEN the overlap is raised to an hour and collection goes on
    w.settings.horizons.overlap = Duration::from_secs(3600);
    let mut windows = Vec::new();
    for _ in 0..18 {
        w.clock.advance(Duration::from_secs(300));
        let report = w.run().await.unwrap();
        windows.push((report.window_from.unwrap(), report.watermark.unwrap()));
    }
    // THEN nothing is delivered twice, and the re-read stretch grows to the new overlap
    w.assert_no_duplicates();
    let (first_from, first_watermark) = windows[0];
    assert!(first_from >= first_watermark - minutes(25), "{windows:?}");
    let (last_from, _) = windows[17];
    let previous_watermark = windows[16].1;
    assert_eq!(last_from, previous_watermark - minutes(60), "{windows:?}");
}

#[tokio::test]
async fn a_change_of_output_prefix_does_not_have_the_hours_under_the_old_one_written_again() {
    // GIVEN four hours collected every 5 minutes under one prefix, their hours not yet reconciled
    let mut w = World::new("2026-01-01T00:00:00Z", 5000);
    let start = w.clock.now();
    for i in 0..(10 * 12) {
        w.feed.add(&format!("a{i:03}"), start + minutes(5 * i), true);
    }
    for _ in 0..(4 * 12) {
        w.clock.advance(Duration::from_secs(300));
        w.run().await.unwrap();
    }
    // WHEN the prefix changes and collection goes on for six more hours
    w.settings.output_prefix = "q/".into();
    let mut late_beyond = 0;
    for _ in 0..(6 * 12) {
        w.clock.advance(Duration::from_secs(300));
        late_beyond += w.run().await.unwrap().late_beyond_overlap;
    }
    // THEN nothing was written again, and the hours under the new prefix are reconciled
    assert_eq!(late_beyond, 0);
    w.assert_no_duplicates();
    let state = w.store.state().unwrap();
    assert_eq!(state.archive_prefix.as_deref(), Some("q/"));
    assert!(state.reconciled_until.unwrap() >= start + SignedDuration::from_hours(6));
}

#[tokio::test]
async fn activities_indexed_after_the_first_reconciliation_are_found_by_the_second_a_day_later() {
    // GIVEN collection every 15 minutes, and an activity indexed 5 hours late: after its hour's
    // first reconciliation (about 2 h after the hour)
    let w = World::new("2026-01-01T00:00:00Z", 5000);
    let start = w.clock.now();
    let steps = 30 * 4;
    for i in 0..steps {
        w.feed.add(&format!("a{i:03}"), start + minutes(15 * i), true);
    }
    w.feed.add("very_late", start + minutes(65), false);
    let mut found_at = None;
    for step in 0..steps {
        w.clock.advance(Duration::from_secs(900));
        if step == 20 {
            w.feed.reveal_all();
        }
        let report = w.run().await.unwrap();
        if report.late_beyond_overlap > 0 {
            assert_eq!((report.late_beyond_overlap, found_at), (1, None));
            found_at = Some(w.clock.now());
        }
    }
    // THEN the second pass, a day after the hour left the overlap, delivered it once
    let found_at = found_at.expect("the second pass never found it");
    let hour_end = start + SignedDuration::from_hours(2);
    let pass = SignedDuration::try_from(ReconcilePass::Second.after()).unwrap();
    assert!(found_at >= hour_end + pass && found_at <= hour_end + pass + minutes(45), "{found_at}");
    w.assert_no_duplicates();
    w.assert_no_gaps(w.store.state().unwrap().watermark.unwrap());
    let state = w.store.state().unwrap();
    assert!(state.rechecked_until.is_some_and(|r| r >= hour_end), "{state:?}");
}
