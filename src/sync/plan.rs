//! Which window a run collects, from the state and the clock alone.
//!
//! A new window ends `SETTLE_SECONDS` before now (activities become queryable within a minute, so
//! nothing newer is asked for) and starts `OVERLAP_SECONDS` before the watermark, re-reading the
//! stretch where late-indexed activities may have appeared since; the very first window starts
//! `INITIAL_LOOKBACK_HOURS` back. Bounds are whole seconds. A window left unfinished by an
//! earlier run is resumed as it was, cursor and all.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::state::{SyncState, Window};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    pub settle: Duration,
    pub overlap: Duration,
    pub initial_lookback: Duration,
}

/// What a stream collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The scheduled collection: from the watermark (less the overlap) to the settle line.
    Live,
    /// A fixed past range, collected once, resumably.
    Backfill { from: Timestamp, to: Timestamp },
}

/// The window to collect now, or `None` when there is nothing (left) to collect: a backfill that
/// is done, or a zero overlap at the settle line.
pub fn plan(state: &SyncState, now: Timestamp, h: &Horizons, mode: &Mode) -> Option<Window> {
    if let Some(window) = &state.window {
        return Some(window.clone());
    }
    if let Mode::Backfill { from, to } = *mode {
        // A range whose end was the settle line when it began may have grown since: go on from
        // the watermark (less the overlap, whose ids the memory holds), never from the start.
        let start = match state.watermark {
            Some(w) if w >= to => return None,
            Some(w) => w.checked_sub(signed(h.overlap)).ok()?.max(from).max(remembered(state)),
            None => from,
        };
        return (start < to).then_some(Window { from: start, to, cursor: None, position: None });
    }
    let to = floor_second(now.checked_sub(signed(h.settle)).ok()?);
    let from = match state.watermark {
        Some(w) => w.checked_sub(signed(h.overlap)).ok()?.max(remembered(state)),
        None => now.checked_sub(signed(h.initial_lookback)).ok()?,
    };
    let from = floor_second(from);
    // At the settle line already (runs less than a second apart), the overlap is still re-read:
    // late-indexed activities may have appeared in it since. The watermark never moves back.
    let to = state.watermark.map_or(to, |w| to.max(w));
    (from < to).then_some(Window { from, to, cursor: None, position: None })
}

/// The earliest a window after the watermark may start: where the dedupe memory is complete from
/// (a window re-reading further back would deliver again what it has forgotten).
fn remembered(state: &SyncState) -> Timestamp {
    state.seen_from.unwrap_or(Timestamp::MIN)
}

/// Where a live window ends now: the settle line, in whole seconds.
pub fn settle_line(now: Timestamp, h: &Horizons) -> Timestamp {
    floor_second(now.checked_sub(signed(h.settle)).unwrap_or(now))
}

pub fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

pub fn floor_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Horizons = Horizons {
        settle: Duration::from_secs(120),
        overlap: Duration::from_secs(900),
        initial_lookback: Duration::from_secs(168 * 3600),
    };

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_window_looks_back_and_stops_short_of_now() {
        let w =
            plan(&SyncState::default(), ts("2026-01-08T00:02:00.700Z"), &H, &Mode::Live).unwrap();
        assert_eq!((w.from, w.to), (ts("2026-01-01T00:02:00Z"), ts("2026-01-08T00:00:00Z")));
        assert_eq!(w.cursor, None);
    }

    #[test]
    fn later_windows_reread_the_overlap() {
        let state = SyncState { watermark: Some(ts("2026-01-08T00:00:00Z")), ..Default::default() };
        let w = plan(&state, ts("2026-01-08T00:07:00Z"), &H, &Mode::Live).unwrap();
        assert_eq!((w.from, w.to), (ts("2026-01-07T23:45:00Z"), ts("2026-01-08T00:05:00Z")));
    }

    #[test]
    fn at_the_settle_line_the_overlap_is_still_reread() {
        let state = SyncState { watermark: Some(ts("2026-01-08T00:05:00Z")), ..Default::default() };
        let w = plan(&state, ts("2026-01-08T00:07:00.5Z"), &H, &Mode::Live).unwrap();
        assert_eq!((w.from, w.to), (ts("2026-01-07T23:50:00Z"), ts("2026-01-08T00:05:00Z")));
        let no_overlap = Horizons { overlap: Duration::ZERO, ..H };
        assert_eq!(plan(&state, ts("2026-01-08T00:07:00Z"), &no_overlap, &Mode::Live), None);
    }

    #[test]
    fn an_unfinished_window_is_resumed_as_it_was() {
        let window = Window {
            from: ts("2026-01-01T00:00:00Z"),
            to: ts("2026-01-02T00:00:00Z"),
            cursor: Some("cur_x".into()),
            position: Some(ts("2026-01-01T05:00:00Z")),
        };
        let state = SyncState { window: Some(window.clone()), ..Default::default() };
        assert_eq!(plan(&state, ts("2026-02-01T00:00:00Z"), &H, &Mode::Live), Some(window));
    }
}

#[cfg(test)]
mod backfill_tests {
    use super::*;

    #[test]
    fn a_backfill_plans_its_range_once() {
        let h = Horizons {
            settle: Duration::ZERO,
            overlap: Duration::ZERO,
            initial_lookback: Duration::ZERO,
        };
        let (from, to): (Timestamp, Timestamp) =
            ("2026-01-01T00:00:00Z".parse().unwrap(), "2026-01-02T00:00:00Z".parse().unwrap());
        let mode = Mode::Backfill { from, to };
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let w = plan(&SyncState::default(), now, &h, &mode).unwrap();
        assert_eq!((w.from, w.to), (from, to));
        let done = SyncState { watermark: Some(to), ..Default::default() };
        assert_eq!(plan(&done, now, &h, &mode), None);
        // the end moved on since (it was the settle line): resume from the watermark
        let grown = Mode::Backfill { from, to: "2026-01-03T00:00:00Z".parse().unwrap() };
        assert_eq!(plan(&done, now, &h, &grown).unwrap().from, to);
    }
}
