//! A backfill's plan, as pure functions of the range asked for: the parts it is collected in at
//! once, the tag of a redelivery's objects, and the claim on the live stream's ledger that keeps
//! two backfills from delivering the same range.
//!
//! Invariants: the parts follow the range asked for, not the clamped one, so the same invocation
//! finds the same state items and resumes every part; the parts cover `[from, to)` without gap or
//! overlap and none collects past `end` (a part wholly after it is empty); a range is refused if what it collects (before the live
//! stream's origin) overlaps what another claimed range collects; the same range again resumes.

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::plan::Mode;
use crate::invocation::InvocationError;

/// How many time windows a long backfill is collected in at once. While one window waits for its
/// page (the API's latency, a few hundred ms) or for S3 and DynamoDB, the others fetch and
/// compress theirs: with 300 ms of latency a window turns a page about every half second, so six
/// keep the API's whole budget (600 requests a minute) busy. Few enough that the pages they hold
/// at once stay small in memory (`make bench`: the backfill's peak RSS).
pub const BACKFILL_PARTS: i32 = 6;
/// A backfill shorter than this is one window.
pub const PARTS_FROM: SignedDuration = SignedDuration::from_hours(6);

/// One part of a backfill: the window it collects and the state item it resumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub mode: Mode,
    pub stream: String,
}

/// The parts of the backfill of `[from, to)` kept in `stream`, none collecting past `end` (the
/// settle line, and for a backfill the live stream's origin).
pub fn parts(from: Timestamp, to: Timestamp, end: Timestamp, stream: &str) -> Vec<Part> {
    let count = if to.duration_since(from) >= PARTS_FROM { BACKFILL_PARTS } else { 1 };
    let span = to.duration_since(from) / count;
    (0..count)
        .map(|i| {
            let part_from = from + span * i;
            let part_to = if i + 1 == count { to } else { from + span * (i + 1) };
            Part {
                mode: Mode::Backfill { from: part_from, to: part_to.min(end).max(part_from) },
                stream: if count == 1 {
                    stream.to_owned()
                } else {
                    format!("{stream}#part{i}of{count}")
                },
            }
        })
        .collect()
}

/// The tag that starts the names of a redelivery's objects, so they never meet the originals.
pub fn redelivery_tag(stream: &str) -> String {
    let digest = Sha256::digest(stream.as_bytes());
    format!("redelivery-{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3])
}

/// What the ledger needs for a backfill to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The range is claimed already (a resumption), or collects nothing before the origin.
    Unchanged,
    /// The range is to be added to the ledger, and committed, before its first run.
    Record,
}

/// Claims `range` against the live stream's `ledger`; `origin` is where the live collection began.
pub fn claim(
    ledger: &[(Timestamp, Timestamp)],
    range: (Timestamp, Timestamp),
    origin: Timestamp,
) -> Result<Claim, InvocationError> {
    let collected = |(from, to): (Timestamp, Timestamp)| (from, to.min(origin));
    let (from, to) = collected(range);
    if ledger.contains(&range) || from >= to {
        return Ok(Claim::Unchanged);
    }
    let overlapping = ledger.iter().copied().find(|&other| {
        let (other_from, other_to) = collected(other);
        other_from < to && from < other_to
    });
    match overlapping {
        Some(other) => Err(InvocationError::BackfillOverlaps { asked: range, other }),
        None => Ok(Claim::Record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn range(from: &str, to: &str) -> (Timestamp, Timestamp) {
        (ts(from), ts(to))
    }

    #[test]
    fn a_short_backfill_is_one_part_in_the_stream_itself() {
        // GIVEN a five-hour range, clamped at 04:00
        let (from, to) = range("2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z");
        // WHEN it is split
        let parts = parts(from, to, ts("2026-01-01T04:00:00Z"), "backfill#a#b");
        // THEN it is one part, named by the stream, collecting up to the clamp
        assert_eq!(
            parts,
            [Part {
                mode: Mode::Backfill { from, to: ts("2026-01-01T04:00:00Z") },
                stream: "backfill#a#b".into()
            }]
        );
    }

    #[test]
    fn a_long_backfill_is_six_adjoining_parts_that_never_pass_the_end() {
        // GIVEN a twelve-hour range whose last three hours are past the end
        let (from, to) = range("2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z");
        let end = ts("2026-01-01T09:00:00Z");
        // WHEN it is split
        let parts = parts(from, to, end, "s");
        // THEN six parts of two hours, each its own stream; the parts past the end are empty
        assert_eq!(parts.len(), 6);
        let windows: Vec<_> = parts
            .iter()
            .map(|p| match p.mode {
                Mode::Backfill { from, to } => (from, to),
                Mode::Live => panic!("a backfill part is live"),
            })
            .collect();
        for (i, (part_from, part_to)) in windows.iter().enumerate() {
            assert_eq!(*part_from, from + SignedDuration::from_hours(2 * i as i64));
            assert!(part_to >= part_from && *part_to <= end.max(*part_from));
            assert_eq!(parts[i].stream, format!("s#part{i}of6"));
        }
        assert_eq!(windows[4], (ts("2026-01-01T08:00:00Z"), end));
        assert_eq!(windows[5], (ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:00:00Z")));
    }

    #[test]
    fn a_redelivery_tag_is_a_function_of_the_stream() {
        assert_eq!(redelivery_tag("s"), redelivery_tag("s"));
        assert_ne!(redelivery_tag("s"), redelivery_tag("t"));
        assert!(redelivery_tag("s").starts_with("redelivery-") && redelivery_tag("s").len() == 19);
    }

    #[test]
    fn a_new_range_is_recorded_and_the_same_range_again_resumes() {
        // GIVEN a ledger holding one range, and the live stream's origin after both
        let held = range("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        let origin = ts("2026-02-01T00:00:00Z");
        let other = range("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z");
        // WHEN each is claimed
        // THEN the held one resumes, the other is recorded
        assert_eq!(claim(&[held], held, origin).unwrap(), Claim::Unchanged);
        assert_eq!(claim(&[held], other, origin).unwrap(), Claim::Record);
    }

    #[test]
    fn a_range_overlapping_another_where_they_collect_is_refused() {
        // GIVEN a claimed range, and one that overlaps it
        let held = range("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        let asked = range("2026-01-01T12:00:00Z", "2026-01-03T00:00:00Z");
        // WHEN it is claimed
        let refused = claim(&[held], asked, ts("2026-02-01T00:00:00Z"));
        // THEN it is refused, naming both
        assert!(matches!(
            refused,
            Err(InvocationError::BackfillOverlaps { asked: a, other }) if a == asked && other == held
        ));
    }

    #[test]
    fn ranges_that_overlap_only_after_the_origin_do_not_collide() {
        // GIVEN the live collection began at 06:00, a claimed range 05:00 to 10:00, and one asked
        // for from 06:00: where it would overlap, the live stream collects, not the backfills
        let origin = ts("2026-01-01T06:00:00Z");
        let held = range("2026-01-01T05:00:00Z", "2026-01-01T10:00:00Z");
        let asked = range("2026-01-01T06:00:00Z", "2026-01-01T09:00:00Z");
        // WHEN it is claimed
        // THEN it collects nothing, so nothing changes
        assert_eq!(claim(&[held], asked, origin).unwrap(), Claim::Unchanged);
    }
}
