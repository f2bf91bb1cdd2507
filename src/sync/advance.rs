//! The window's advance after a page is written, as pure transitions of the state: the cursor and
//! position move past the page, the dedupe memory is pruned to what a later page can serve again,
//! and a finished window becomes the watermark. And where a window is read again from when the API
//! refuses its cursor.
//!
//! Invariants: [`advance`] is called only once the page's new activities are written (write, then
//! advance; the caller commits); the memory keeps the page's own ids, those after it, and those in
//! the overlap before the window's end; `seen_from` (where the memory is complete) only moves
//! forward.

use jiff::{SignedDuration, Timestamp};

use super::plan::floor_second;
use crate::feed::Page;
use crate::state::{SyncState, Window};

/// Whether the window has more pages after the one just advanced over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// The state holds the window, moved past the page.
    More,
    /// The window is done: the watermark is its end, and no window is in progress.
    Done,
}

/// Where the overlap that the next window re-reads begins: the memory keeps every id from here.
pub fn next_overlap_start(window: &Window, overlap: SignedDuration) -> Timestamp {
    window.to.checked_sub(overlap).unwrap_or(window.from)
}

/// Moves `window` (and the state) past `page`, whose new activities are written.
pub fn advance(
    state: &mut SyncState,
    window: &mut Window,
    page: &Page,
    next_overlap_start: Timestamp,
) -> Advanced {
    if let Some(last) = &page.last_id {
        window.cursor = Some(last.clone());
    }
    // The memory keeps this page's ids too, not only those after it: a page served again
    // (a cursor that did not really move) is then dropped, not delivered twice.
    let page_start = page.activities.first().map(|a| a.created_at);
    if let Some(last) = page.activities.last() {
        window.position = Some(last.created_at);
    }
    if !page.has_more {
        state.watermark = Some(window.to);
        state.window = None;
        forget_before(state, next_overlap_start);
        return Advanced::Done;
    }
    let keep_from = page_start.or(window.position).unwrap_or(window.from);
    forget_before(state, keep_from.min(next_overlap_start));
    state.window = Some(window.clone());
    Advanced::More
}

/// The window to read again when the API no longer takes its cursor (expired, or from before a
/// change on its side): from the start of the second of its position, without a cursor. The memory
/// holds every id from that second on, so the re-read loses nothing and repeats nothing.
pub fn reread_from_position(window: &Window) -> Window {
    let from = window.position.map_or(window.from, floor_second).max(window.from);
    Window { from, cursor: None, ..window.clone() }
}

/// Prunes the dedupe memory to the ids created from `cutoff`'s second on, and records from when it
/// is complete.
fn forget_before(state: &mut SyncState, cutoff: Timestamp) {
    state.seen.prune_before(cutoff);
    let cutoff = floor_second(cutoff);
    state.seen_from = Some(state.seen_from.map_or(cutoff, |from| from.max(cutoff)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Activity;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn activity(id: &str, at: &str) -> Activity {
        Activity { id: id.into(), created_at: ts(at), raw: format!(r#"{{"id":"{id}"}}"#).into() }
    }

    fn window() -> Window {
        Window {
            from: ts("2026-01-01T00:00:00Z"),
            to: ts("2026-01-01T01:00:00Z"),
            cursor: None,
            position: None,
        }
    }

    /// A memory holding one id a second, from 23:59:00 to 00:59:59.
    fn remembering() -> SyncState {
        let mut state = SyncState::default();
        let start = ts("2025-12-31T23:59:00Z");
        for s in 0..3660 {
            state.seen.insert(s as u64, start + SignedDuration::from_secs(s));
        }
        state
    }

    #[test]
    fn a_page_with_more_moves_the_cursor_and_keeps_the_memory_from_the_page_on() {
        // GIVEN a window's page from 00:30:00.5 to 00:40:00 with more to come, overlap 15 minutes
        let mut state = remembering();
        let mut w = window();
        let page = Page {
            activities: vec![
                activity("a", "2026-01-01T00:30:00.5Z"),
                activity("b", "2026-01-01T00:40:00Z"),
            ],
            has_more: true,
            last_id: Some("cursor_b".into()),
        };
        let overlap_start = next_overlap_start(&w, SignedDuration::from_mins(15));
        // WHEN the window advances over it
        let advanced = advance(&mut state, &mut w, &page, overlap_start);
        // THEN the cursor and position are the page's last, the state holds that window, and the
        // memory keeps every id from the page's first second on
        assert_eq!(advanced, Advanced::More);
        assert_eq!(
            (w.cursor.as_deref(), w.position),
            (Some("cursor_b"), Some(ts("2026-01-01T00:40:00Z")))
        );
        assert_eq!(state.window.as_ref(), Some(&w));
        assert_eq!(state.watermark, None);
        assert_eq!(state.seen.len(), 3660 - 31 * 60);
        assert_eq!(state.seen_from, Some(ts("2026-01-01T00:30:00Z")));
    }

    #[test]
    fn the_last_page_makes_the_window_the_watermark_and_keeps_only_the_overlap() {
        // GIVEN the last page of a window ending at 01:00, overlap 15 minutes
        let mut state = remembering();
        let mut w = window();
        let page = Page {
            activities: vec![activity("z", "2026-01-01T00:50:00Z")],
            has_more: false,
            last_id: Some("cursor_z".into()),
        };
        // WHEN the window advances over it
        let overlap_start = next_overlap_start(&w, SignedDuration::from_mins(15));
        let advanced = advance(&mut state, &mut w, &page, overlap_start);
        // THEN the watermark is the window's end, no window is left, and the memory holds the
        // overlap's ids only
        assert_eq!(advanced, Advanced::Done);
        assert_eq!((state.watermark, state.window.as_ref()), (Some(w.to), None));
        assert_eq!(state.seen.len(), 15 * 60);
        assert!(state.seen.contains(3659) && !state.seen.contains(0));
        assert_eq!(state.seen_from, Some(ts("2026-01-01T00:45:00Z")));
    }

    #[test]
    fn an_empty_page_with_more_keeps_the_memory_from_the_position() {
        // GIVEN a window at position 00:20:00.7 and an empty page that says there is more
        let mut state = remembering();
        state.seen_from = Some(ts("2026-01-01T00:25:00Z"));
        let mut w = Window { position: Some(ts("2026-01-01T00:20:00.7Z")), ..window() };
        let page = Page { activities: vec![], has_more: true, last_id: None };
        // WHEN the window advances over it
        advance(&mut state, &mut w, &page, ts("2026-01-01T00:45:00Z"));
        // THEN the cursor stays, the memory is kept from the position's second, and seen_from
        // does not move back
        assert_eq!((w.cursor, w.position), (None, Some(ts("2026-01-01T00:20:00.7Z"))));
        assert_eq!(state.seen.len(), 3660 - 21 * 60);
        assert_eq!(state.seen_from, Some(ts("2026-01-01T00:25:00Z")));
    }

    #[test]
    fn a_refused_cursor_is_replaced_by_the_second_of_its_position() {
        // GIVEN a window with a cursor at position 00:20:00.7
        let w = Window {
            cursor: Some("expired".into()),
            position: Some(ts("2026-01-01T00:20:00.7Z")),
            ..window()
        };
        // WHEN it is read again
        let again = reread_from_position(&w);
        // THEN it starts at that second, without a cursor, and ends where it did
        assert_eq!((again.from, again.to), (ts("2026-01-01T00:20:00Z"), w.to));
        assert_eq!((again.cursor, again.position), (None, w.position));
        // AND a window without a position starts at its start
        let fresh = Window { cursor: Some("c".into()), ..window() };
        assert_eq!(reread_from_position(&fresh).from, fresh.from);
    }
}
