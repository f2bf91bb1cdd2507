//! The fetch of one page, the same for a window and for reconciliation: the deadline checked
//! first, the requests counted, the stops that resume (deadline, rate limit) told apart from the
//! failures, a refused cursor handed back to the caller, and a stuck cursor refused.
//!
//! Invariant: a page is handed on only if its cursor moved; a page that would have the run read
//! the same records again and again fails the run without advancing (a protocol fault, never
//! skipped over).

use jiff::Timestamp;

use super::StopReason;
use super::run::{Run, SyncError};
use crate::archive::ObjectSink;
use crate::clock::Clock;
use crate::feed::{ActivityFeed, FeedError, Page, PageError, PageQuery};
use crate::state::StateStore;

/// A page fetched, or why there is none.
pub(super) enum Fetched {
    Page(Page),
    /// The run stops here, resumably (deadline, rate limit).
    Stop(StopReason),
    /// The API refused the cursor (400): the caller may read again without it.
    CursorRefused(FeedError),
}

impl<F, S, St, C> Run<'_, F, S, St, C>
where
    F: ActivityFeed,
    S: ObjectSink,
    St: StateStore,
    C: Clock,
{
    /// Fetches one page unless the deadline has come, counting its requests, and refuses a page
    /// whose cursor is stuck (see [`is_stuck`]); `previous_last` is the previous page's last
    /// activity in the same read.
    pub(super) async fn fetch_page(
        &mut self,
        query: &PageQuery,
        previous_last: Option<(Timestamp, &str)>,
    ) -> Result<Fetched, SyncError> {
        if self.deadline.reached(self.clock.now()) {
            return Ok(Fetched::Stop(StopReason::Deadline));
        }
        let (fetched, stats) = self.feed.fetch(query, self.deadline).await;
        self.report.add(stats);
        let page = match fetched {
            Ok(page) => page,
            Err(FeedError::DeadlineReached) => return Ok(Fetched::Stop(StopReason::Deadline)),
            Err(FeedError::RateLimited { .. }) => {
                return Ok(Fetched::Stop(StopReason::RateLimited));
            }
            Err(e @ FeedError::Rejected { status: 400, .. }) if query.after.is_some() => {
                return Ok(Fetched::CursorRefused(e));
            }
            Err(e) => return Err(e.into()),
        };
        self.report.pages += 1;
        if is_stuck(query, &page, previous_last) {
            let request_id = self.report.last_request_id.clone();
            tracing::error!(
                request_id = request_id.as_deref().unwrap_or("-"),
                cursor = query.after.as_deref().unwrap_or("-"),
                "the API returned the cursor it was asked after: stopping without advancing"
            );
            let source = PageError::StuckCursor;
            return Err(SyncError::Feed(FeedError::InvalidPage { request_id, source }));
        }
        Ok(Fetched::Page(page))
    }
}

/// A page that says there is more but hands back the cursor it was asked after, or whose last
/// activity is the previous page's or older, would have the run read the same records again and
/// again: a protocol fault, never skipped over. The run stops without advancing.
fn is_stuck(query: &PageQuery, page: &Page, previous_last: Option<(Timestamp, &str)>) -> bool {
    // Ids of one instant are in the API's order, which it does not define: only an earlier time,
    // or the very same last activity, says the cursor did not move.
    let last = page.activities.last().map(|a| (a.created_at, a.id.as_str()));
    let went_back = matches!((last, previous_last), (Some(l), Some(p)) if l.0 < p.0 || l == p);
    page.has_more && (went_back || (page.last_id.is_some() && page.last_id == query.after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Activity;

    fn query(after: Option<&str>) -> PageQuery {
        PageQuery {
            from: "2026-01-01T00:00:00Z".parse().unwrap(),
            to: "2026-01-01T01:00:00Z".parse().unwrap(),
            after: after.map(str::to_owned),
            organization_ids: Vec::new(),
            limit: 10,
        }
    }

    fn page(last: (&str, &str), has_more: bool, cursor: &str) -> Page {
        let (id, at) = last;
        let activity =
            Activity { id: id.into(), created_at: at.parse().unwrap(), raw: "{}".into() };
        Page { activities: vec![activity], has_more, last_id: Some(cursor.into()) }
    }

    #[test]
    fn a_page_that_hands_back_the_cursor_it_was_asked_after_is_stuck() {
        let p = page(("a", "2026-01-01T00:00:01Z"), true, "c1");
        assert!(is_stuck(&query(Some("c1")), &p, None));
        assert!(!is_stuck(&query(Some("c0")), &p, None));
        // The last page may repeat its cursor: nothing more is asked after it.
        assert!(!is_stuck(
            &query(Some("c1")),
            &page(("a", "2026-01-01T00:00:01Z"), false, "c1"),
            None
        ));
    }

    #[test]
    fn a_page_that_ends_where_the_previous_did_or_before_is_stuck() {
        let at: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let same = page(("a", "2026-01-01T00:00:05Z"), true, "c2");
        let earlier = page(("b", "2026-01-01T00:00:04Z"), true, "c3");
        let other_of_same_instant = page(("z", "2026-01-01T00:00:05Z"), true, "c4");
        assert!(is_stuck(&query(Some("c1")), &same, Some((at, "a"))));
        assert!(is_stuck(&query(Some("c1")), &earlier, Some((at, "a"))));
        // Ids of one instant come in the API's order: another id at the same time moved on.
        assert!(!is_stuck(&query(Some("c1")), &other_of_same_instant, Some((at, "a"))));
    }
}
