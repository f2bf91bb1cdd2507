//! The decision over one page, as a pure function of the page, the dedupe memory and the previous
//! watermark: which activities to write, how many are duplicates, how many arrived late, and which
//! of the earlier runs' own API calls (the canary) the page holds.
//!
//! Invariants: an activity is written only if the memory does not hold its id and it is the first
//! of its id in the page; every activity is either to be written or a duplicate; the page's order
//! is kept (objects are written in it); each id is hashed once.

use std::collections::HashSet;

use jiff::Timestamp;

use super::signals::canary_request_id;
use crate::feed::{Activity, Page};
use crate::state::seen::id_hash;

/// The activities of a page to write, with their id hashes.
#[derive(Debug, Default)]
pub struct Fresh<'a> {
    pub activities: Vec<&'a Activity>,
    pub hashes: Vec<u64>,
}

impl Fresh<'_> {
    pub fn is_empty(&self) -> bool {
        self.activities.is_empty()
    }

    pub fn len(&self) -> usize {
        self.activities.len()
    }
}

/// What to do with one page.
#[derive(Debug)]
pub struct PageDecision<'a> {
    /// New to the memory, in the page's order: to be written.
    pub fresh: Fresh<'a>,
    /// Already delivered (the memory holds them) or repeated within the page.
    pub duplicates: u64,
    /// Fresh activities created before the previous watermark: found thanks to the overlap.
    pub late: u64,
    /// The request ids among `canaries_wanted` that the page's activities record.
    pub canaries_found: Vec<String>,
}

/// Decides `page` against the memory (`seen` says whether it holds an id hash).
pub fn decide<'a>(
    page: &'a Page,
    seen: impl Fn(u64) -> bool,
    previous_watermark: Option<Timestamp>,
    canaries_wanted: &HashSet<String>,
) -> PageDecision<'a> {
    let n = page.activities.len();
    let mut in_page = HashSet::with_capacity(n);
    let mut decision = PageDecision {
        fresh: Fresh { activities: Vec::with_capacity(n), hashes: Vec::with_capacity(n) },
        duplicates: 0,
        late: 0,
        canaries_found: Vec::new(),
    };
    for a in &page.activities {
        // The canary is looked for among all activities, duplicates too.
        if !canaries_wanted.is_empty()
            && let Some(id) = canary_request_id(&a.raw)
            && canaries_wanted.contains(id.as_str())
        {
            decision.canaries_found.push(id);
        }
        let h = id_hash(&a.id);
        if !seen(h) && in_page.insert(h) {
            if previous_watermark.is_some_and(|w| a.created_at < w) {
                decision.late += 1;
            }
            decision.fresh.activities.push(a);
            decision.fresh.hashes.push(h);
        } else {
            decision.duplicates += 1;
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn activity(id: &str, at: &str, kind: &str, extra: &str) -> Activity {
        let raw = format!(r#"{{"id":"{id}","created_at":"{at}","type":"{kind}"{extra}}}"#);
        Activity { id: id.into(), created_at: ts(at), raw: raw.into() }
    }

    fn page(activities: Vec<Activity>) -> Page {
        Page { activities, has_more: false, last_id: None }
    }

    fn ids<'a>(fresh: &'a Fresh<'_>) -> Vec<&'a str> {
        fresh.activities.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn what_the_memory_holds_and_repeats_within_the_page_are_duplicates() {
        // GIVEN a page serving b twice, and a memory that holds a
        let p = page(vec![
            activity("a", "2026-01-01T00:00:01Z", "x", ""),
            activity("b", "2026-01-01T00:00:02Z", "x", ""),
            activity("b", "2026-01-01T00:00:02Z", "x", ""),
            activity("c", "2026-01-01T00:00:03Z", "x", ""),
        ]);
        let held = id_hash("a");
        // WHEN the page is decided
        let d = decide(&p, |h| h == held, None, &HashSet::new());
        // THEN b and c are written once each, in the page's order, and the rest are duplicates
        assert_eq!(ids(&d.fresh), ["b", "c"]);
        assert_eq!(d.fresh.hashes, [id_hash("b"), id_hash("c")]);
        assert_eq!((d.duplicates, d.late), (2, 0));
    }

    #[test]
    fn fresh_activities_older_than_the_previous_watermark_are_late() {
        // GIVEN a previous watermark at 00:00:02, and activities on both sides of it
        let p = page(vec![
            activity("old", "2026-01-01T00:00:01Z", "x", ""),
            activity("dup_old", "2026-01-01T00:00:01Z", "x", ""),
            activity("at", "2026-01-01T00:00:02Z", "x", ""),
        ]);
        let held = id_hash("dup_old");
        // WHEN decided
        let d = decide(&p, |h| h == held, Some(ts("2026-01-01T00:00:02Z")), &HashSet::new());
        // THEN only the fresh one before the watermark is late (a duplicate is not counted)
        assert_eq!(ids(&d.fresh), ["old", "at"]);
        assert_eq!(d.late, 1);
    }

    #[test]
    fn the_canary_is_found_among_all_activities_duplicates_included() {
        // GIVEN two of this collector's earlier calls wanted, one recorded by an activity already
        // delivered, the other not in the page, and an unwanted call
        let own = |id: &str, req: &str| {
            activity(
                id,
                "2026-01-01T00:00:01Z",
                "compliance_api_accessed",
                &format!(r#","request_id":"{req}""#),
            )
        };
        let p = page(vec![own("c1", "req_wanted"), own("c2", "req_other")]);
        let wanted: HashSet<String> = ["req_wanted".into(), "req_absent".into()].into();
        let held = id_hash("c1");
        // WHEN decided
        let d = decide(&p, |h| h == held, None, &wanted);
        // THEN the wanted call it records is found, although its activity is a duplicate
        assert_eq!(d.canaries_found, ["req_wanted"]);
        assert_eq!((ids(&d.fresh), d.duplicates), (vec!["c2"], 1));
    }
}
