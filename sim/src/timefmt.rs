//! RFC 3339 UTC timestamps with a chosen number of fractional digits, as the feed writes them.
//!
//! The real feed mixes whole seconds, milliseconds and microseconds, always with `Z`.
//! Invariant: [`truncate`] then [`format_utc`] with the same digits round-trips exactly, so
//! the instant stored for a record is the instant its text says.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::Offset;

/// `at` cut down to `digits` fractional digits (0..=9), towards the past.
pub(crate) fn truncate(at: Timestamp, digits: u32) -> Timestamp {
    let unit = 10i128.pow(9 - digits.min(9));
    let nanos = at.as_nanosecond().div_euclid(unit) * unit;
    Timestamp::from_nanosecond(nanos).unwrap_or(at)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{digits}]Z`; sub-`digits` precision is cut off.
pub(crate) fn format_utc(at: Timestamp, digits: u32) -> String {
    let dt = Offset::UTC.to_datetime(at);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let digits = digits.min(9);
    if digits > 0 {
        let fraction = dt.subsec_nanosecond() / 10i32.pow(9 - digits);
        let _ = write!(text, ".{fraction:0width$}", width = digits as usize);
    }
    text.push('Z');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_each_precision() {
        let at: Timestamp = "2026-06-08T17:12:09.812446789Z".parse().unwrap();
        assert_eq!(format_utc(at, 0), "2026-06-08T17:12:09Z");
        assert_eq!(format_utc(at, 3), "2026-06-08T17:12:09.812Z");
        assert_eq!(format_utc(at, 6), "2026-06-08T17:12:09.812446Z");
    }

    #[test]
    fn leading_zeros_of_the_fraction_are_kept() {
        let at: Timestamp = "2026-06-08T17:12:09.004Z".parse().unwrap();
        assert_eq!(format_utc(at, 3), "2026-06-08T17:12:09.004Z");
        assert_eq!(format_utc(at, 6), "2026-06-08T17:12:09.004000Z");
    }

    #[test]
    fn truncated_instants_round_trip_through_their_text() {
        let at: Timestamp = "1969-12-31T23:59:59.999999999Z".parse().unwrap();
        for digits in [0, 3, 6] {
            let cut = truncate(at, digits);
            let text = format_utc(cut, digits);
            assert_eq!(text.parse::<Timestamp>().unwrap(), cut);
        }
    }
}
