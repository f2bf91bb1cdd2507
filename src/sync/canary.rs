//! The canary: every call the collector makes is recorded by the API as a
//! `compliance_api_accessed` activity. A run looks for the calls of earlier runs in the pages it
//! reads; a call the watermark has passed without it appearing is missing (`CanaryMissing`):
//! end-to-end evidence that the feed is incomplete.
//!
//! Invariants: only a live, unfiltered run checks (a filter or a backfill cannot see every call);
//! a call is due only once the watermark is [`CANARY_GRACE`] past it (the feed indexes within a
//! minute); a call found is forgotten with the page that found it, so a run that finishes the
//! window later does not look for it again; at most [`CANARY_KEEP`] calls are remembered.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

/// A call is due when the watermark is this far past it.
pub const CANARY_GRACE: SignedDuration = SignedDuration::from_secs(60);
/// At most this many calls are remembered for later runs.
pub const CANARY_KEEP: usize = 32;

/// One run's check of the earlier runs' calls.
#[derive(Debug, Default)]
pub struct Canary {
    on: bool,
    /// The request ids the run looks for, and those it found.
    wanted: HashSet<String>,
    found: HashSet<String>,
}

impl Canary {
    /// A check of the calls `remembered` by the state, when `on`; otherwise one that wants none.
    pub fn new(on: bool, remembered: &[(String, Timestamp)]) -> Canary {
        let wanted =
            if on { remembered.iter().map(|(id, _)| id.clone()).collect() } else { HashSet::new() };
        Canary { on, wanted, found: HashSet::new() }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn wanted(&self) -> &HashSet<String> {
        &self.wanted
    }

    pub fn found(&mut self, ids: impl IntoIterator<Item = String>) {
        self.found.extend(ids);
    }

    /// Forgets the remembered calls found so far; returns whether any was (a check happened).
    pub fn drop_found(&self, remembered: &mut Vec<(String, Timestamp)>) -> bool {
        if self.found.is_empty() {
            return false;
        }
        let before = remembered.len();
        remembered.retain(|(id, _)| !self.found.contains(id));
        remembered.len() < before
    }

    /// At a window's end: takes the remembered calls the watermark has passed out as missing, and
    /// remembers this run's `calls` for the next run, the newest [`CANARY_KEEP`] in all. Those
    /// found are gone already ([`Canary::drop_found`], page by page).
    pub fn settle(
        remembered: &mut Vec<(String, Timestamp)>,
        watermark: Option<Timestamp>,
        calls: Vec<(String, Timestamp)>,
    ) -> Vec<(String, Timestamp)> {
        let covered = watermark.map(|w| w - CANARY_GRACE);
        let (missing, mut kept): (Vec<_>, Vec<_>) =
            remembered.drain(..).partition(|(_, at)| covered.is_some_and(|c| *at < c));
        kept.extend(calls);
        let excess = kept.len().saturating_sub(CANARY_KEEP);
        kept.drain(..excess);
        *remembered = kept;
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn call(id: &str, at: &str) -> (String, Timestamp) {
        (id.to_owned(), ts(at))
    }

    #[test]
    fn a_run_that_does_not_check_wants_no_call() {
        // GIVEN remembered calls, and a run that is not live and unfiltered
        let remembered = [call("req_1", "2026-01-01T00:00:00Z")];
        // WHEN its check is made
        let canary = Canary::new(false, &remembered);
        // THEN it looks for nothing
        assert!(!canary.is_on() && canary.wanted().is_empty());
        assert!(Canary::new(true, &remembered).wanted().contains("req_1"));
    }

    #[test]
    fn calls_found_are_forgotten_and_count_as_a_check() {
        // GIVEN two remembered calls, one of them found
        let mut remembered =
            vec![call("req_1", "2026-01-01T00:00:00Z"), call("req_2", "2026-01-01T00:00:01Z")];
        let mut canary = Canary::new(true, &remembered);
        assert!(!canary.drop_found(&mut remembered), "nothing found yet");
        canary.found(["req_2".to_owned()]);
        // WHEN the found ones are dropped
        // THEN only the other is remembered, and a check happened; again, none is dropped
        assert!(canary.drop_found(&mut remembered));
        assert_eq!(remembered, [call("req_1", "2026-01-01T00:00:00Z")]);
        assert!(!canary.drop_found(&mut remembered));
    }

    #[test]
    fn a_call_the_watermark_passed_by_the_grace_is_missing_the_others_wait() {
        // GIVEN calls at 00:00:00 and 00:00:30, and a watermark at 00:01:15
        let mut remembered =
            vec![call("req_old", "2026-01-01T00:00:00Z"), call("req_new", "2026-01-01T00:00:30Z")];
        // WHEN the window settles with this run's own call
        let missing = Canary::settle(
            &mut remembered,
            Some(ts("2026-01-01T00:01:15Z")),
            vec![call("req_mine", "2026-01-01T00:05:00Z")],
        );
        // THEN the first is missing (a minute before the watermark), the second still awaited,
        // and this run's call is remembered for the next
        assert_eq!(missing, [call("req_old", "2026-01-01T00:00:00Z")]);
        assert_eq!(
            remembered,
            [call("req_new", "2026-01-01T00:00:30Z"), call("req_mine", "2026-01-01T00:05:00Z")]
        );
    }

    #[test]
    fn only_the_newest_calls_are_remembered() {
        // GIVEN no watermark yet and more calls than are kept
        let mut remembered = Vec::new();
        let calls: Vec<_> = (0..CANARY_KEEP + 5)
            .map(|i| {
                (
                    format!("req_{i}"),
                    ts("2026-01-01T00:00:00Z") + SignedDuration::from_secs(i as i64),
                )
            })
            .collect();
        // WHEN they are settled
        let missing = Canary::settle(&mut remembered, None, calls.clone());
        // THEN none is missing and the newest are kept
        assert!(missing.is_empty());
        assert_eq!(remembered, calls[5..]);
    }
}
