//! Findings: every alert of one source object, published or not, as one gzip NDJSON object under
//! `<OUTPUT_PREFIX>_findings/year=YYYY/month=MM/day=DD/hour=HH/`.
//!
//! The key is a function of the source object's key only (its hour partition and name, plus a
//! hash of the whole key), so a redelivered object aims at the same key and the conditional write
//! (`If-None-Match: *`) makes the second write a no-op. A source key without an hour partition
//! (a hand-placed object) is filed under the hour of its earliest match.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use jiff::Timestamp;

use super::alert::{Alert, digest};
use crate::archive::key::partition;

/// The segment findings live under (after `OUTPUT_PREFIX`).
pub const FINDINGS_SEGMENT: &str = "_findings/";

/// Could not encode the findings.
#[derive(Debug, thiserror::Error)]
pub enum FindingsError {
    #[error("serialising alert {alert_id}")]
    Json {
        alert_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("compressing findings")]
    Gzip(#[source] std::io::Error),
}

/// Gzip NDJSON of the alerts, one per line, LF, trailing newline.
pub fn encode(alerts: &[Alert]) -> Result<Vec<u8>, FindingsError> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for alert in alerts {
        let line = alert
            .to_json()
            .map_err(|source| FindingsError::Json { alert_id: alert.alert_id.clone(), source })?;
        gz.write_all(line.as_bytes()).map_err(FindingsError::Gzip)?;
        gz.write_all(b"\n").map_err(FindingsError::Gzip)?;
    }
    gz.finish().map_err(FindingsError::Gzip)
}

/// The findings key of the source object `source_key` (under `prefix`).
pub fn findings_key(prefix: &str, source_key: &str, earliest: Timestamp) -> String {
    let base = format!("{prefix}{FINDINGS_SEGMENT}");
    let relative = source_key.strip_prefix(prefix).unwrap_or(source_key);
    let hour = hour_partition(relative)
        .map_or_else(|| partition(&base, earliest), |p| format!("{base}{p}"));
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let stem = name.strip_suffix(".json.gz").unwrap_or(name);
    let hash = &digest(&[source_key.as_bytes()])[..16];
    format!("{hour}{stem}_{hash}.json.gz")
}

/// `year=YYYY/month=MM/day=DD/hour=HH/` when the key starts with it.
fn hour_partition(relative: &str) -> Option<&str> {
    let mut end = 0;
    for (name, digits) in [("year=", 4), ("month=", 2), ("day=", 2), ("hour=", 2)] {
        let rest = relative.get(end..)?;
        let value = rest.strip_prefix(name)?.get(..digits + 1)?;
        let (number, slash) = value.split_at(digits);
        if slash != "/" || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        end += name.len() + digits + 1;
    }
    relative.get(..end)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::detect::alert::{AlertRule, detection_alert_id};

    fn alert(id: &str) -> Alert {
        Alert {
            alert_id: detection_alert_id("r", id),
            rule: AlertRule {
                id: "r".to_owned(),
                title: "t".to_owned(),
                level: "low",
                pack: "p".to_owned(),
                tags: Vec::new(),
            },
            activity_ids: vec![id.to_owned()],
            activities: Vec::new(),
            group: None,
            count: 1,
            first_seen: "2026-01-01T00:00:00Z".to_owned(),
            last_seen: "2026-01-01T00:00:00Z".to_owned(),
            object_keys: Vec::new(),
            last_seen_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn findings_are_gzip_ndjson_of_the_alerts() {
        // GIVEN two alerts WHEN encoded and unzipped
        let mut text = String::new();
        flate2::read::GzDecoder::new(&encode(&[alert("a"), alert("b")]).unwrap()[..])
            .read_to_string(&mut text)
            .unwrap();
        // THEN two JSON lines with a trailing newline
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["activity_ids"][0], "b");
    }

    #[test]
    fn the_key_follows_the_source_objects_hour_and_name() {
        // GIVEN an archive object key WHEN its findings key is derived
        let source = "anthropic/activity/year=2026/month=03/day=07/hour=09/20260307T094105Z_0123456789abcdef.json.gz";
        let key = findings_key("anthropic/activity/", source, Timestamp::UNIX_EPOCH);
        // THEN it is in the same hour under _findings/, named after the source, and stable
        assert!(
            key.starts_with("anthropic/activity/_findings/year=2026/month=03/day=07/hour=09/20260307T094105Z_0123456789abcdef_"),
            "{key}"
        );
        assert!(key.ends_with(".json.gz"));
        assert_eq!(key, findings_key("anthropic/activity/", source, Timestamp::MAX));
        assert_ne!(
            key,
            findings_key(
                "anthropic/activity/",
                &source.replace("hour=09", "hour=10"),
                Timestamp::UNIX_EPOCH
            )
        );
    }

    #[test]
    fn a_key_without_partition_is_filed_under_its_earliest_match() {
        // GIVEN a hand-placed object WHEN its findings key is derived
        let t: Timestamp = "2026-05-01T13:30:00Z".parse().unwrap();
        let key = findings_key("p/", "p/manual/upload.json.gz", t);
        // THEN it uses the earliest match's hour
        assert!(key.starts_with("p/_findings/year=2026/month=05/day=01/hour=13/upload_"), "{key}");
    }
}
