//! Object keys: Hive-style partitions by event hour, and a name fixed by the object's content.
//!
//! `{prefix}year=YYYY/month=MM/day=DD/hour=HH/{first created_at}_{ids hash}.json.gz`, UTC. The
//! name is a function of exactly which activities the object holds (the first one's second, then
//! 16 hex digits of SHA-256 over the ids in order), so writing the same batch twice aims at the
//! same key, and S3's `If-None-Match: *` turns the second write into a no-op instead of a copy.
//!
//! The keys of what is not activity data (the probe, verify's markers) are here too, all under a
//! segment starting with `_`, which Athena and the SIEMs skip.

use std::fmt::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};

/// Where the collector keeps a probe key: under a `_` segment, which query engines skip.
pub const PROBE_KEY: &str = "_collector/probe";

/// The probe key under `prefix`.
pub fn probe_key(prefix: &str) -> String {
    format!("{prefix}{PROBE_KEY}")
}

/// The marker `{"action": "verify"}` writes and reads back under `prefix`.
pub fn verify_marker_key(prefix: &str, run_id: &str) -> String {
    format!("{prefix}_collector/verify/{}.json", safe_name(run_id))
}

/// `name` with every character but ASCII letters, digits and `-` replaced by `_`: a run id (a
/// Lambda request id, or anything a test passes) as one safe key segment.
pub fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// The partition an activity belongs to: its `created_at` hour in UTC.
pub fn partition(prefix: &str, created_at: Timestamp) -> String {
    let t = created_at.to_zoned_datetime(TimeZone::UTC);
    format!(
        "{prefix}year={:04}/month={:02}/day={:02}/hour={:02}/",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}

/// The key of an object holding `ids` (in order), whose first activity was created at `first`;
/// `tag` starts the name of objects that must not meet the originals (a redelivery).
pub fn object_key<'a>(
    prefix: &str,
    first: Timestamp,
    ids: impl IntoIterator<Item = &'a str>,
    tag: Option<&str>,
) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let mut key = partition(prefix, first);
    if let Some(tag) = tag {
        key.push_str(tag);
        key.push('_');
    }
    let _ = write!(key, "{}_", first.to_zoned_datetime(TimeZone::UTC).strftime("%Y%m%dT%H%M%SZ"));
    for byte in &digest[..8] {
        let _ = write!(key, "{byte:02x}");
    }
    key.push_str(".json.gz");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hive_partitioned_by_event_hour() {
        let t: Timestamp = "2026-03-07T09:41:05.123Z".parse().unwrap();
        let key = object_key("anthropic/activity/", t, ["activity_a", "activity_b"], None);
        assert!(
            key.starts_with(
                "anthropic/activity/year=2026/month=03/day=07/hour=09/20260307T094105Z_"
            ),
            "{key}"
        );
        assert!(key.ends_with(".json.gz"));
        assert_eq!(
            key.len(),
            "anthropic/activity/year=2026/month=03/day=07/hour=09/20260307T094105Z_".len() + 16 + 8
        );
    }

    #[test]
    fn the_same_ids_give_the_same_key_and_others_do_not() {
        let t: Timestamp = "2026-03-07T09:41:05Z".parse().unwrap();
        let a = object_key("p/", t, ["x", "y"], None);
        assert_eq!(a, object_key("p/", t, ["x", "y"], None));
        assert!(
            object_key("p/", t, ["x", "y"], Some("redelivery-1a2b"))
                .contains("/redelivery-1a2b_2026")
        );
        assert_ne!(a, object_key("p/", t, ["x", "y", "z"], None));
        assert_ne!(a, object_key("p/", t, ["xy"], None));
    }
}
