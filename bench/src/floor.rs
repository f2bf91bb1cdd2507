//! The CPU floor: gzip-compressing exactly the NDJSON the collector wrote, object by object, with
//! the same library (flate2, same backend and features in this workspace build) at a given level.
//!
//! The bytes are read back from the activity objects of a run and decompressed; only the
//! compression is timed, on the thread's own CPU clock, so nothing else the bench does counts.

use std::io::{Read, Write};
use std::time::Duration;

use anthropic_compliance_collector::archive::{Encoder, decode_activities};
use anthropic_compliance_collector::feed::Activity;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::Error;
use crate::procfs::thread_cpu;

/// One gzip level over the whole data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelFigure {
    pub level: u32,
    pub cpu: Duration,
    pub compressed_bytes: u64,
}

/// The data set of a run and what each level does with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    pub objects: usize,
    pub activities: u64,
    /// Uncompressed NDJSON bytes.
    pub raw_bytes: u64,
    /// The objects' sizes as the collector wrote them.
    pub stored_bytes: u64,
    pub levels: Vec<LevelFigure>,
    /// At the collector's level, a line at a time: two `write_all` calls a line (the line, then
    /// `\n`) straight into a new `GzEncoder` per object.
    pub per_line: Duration,
    /// The collector's own `archive::Encoder` over the same activities, one encoder for all the
    /// objects as in a run (keys, gzip framing and CRC included).
    pub collector_encoder: Duration,
}

impl Floor {
    pub fn level(&self, level: u32) -> Option<&LevelFigure> {
        self.levels.iter().find(|l| l.level == level)
    }
}

/// Whether `key` (under `prefix`) is an activity object: no segment starting with `_` or `.`.
pub fn is_activity_key(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|rest| {
        rest.ends_with(".json.gz")
            && !rest.split('/').any(|s| s.starts_with('_') || s.starts_with('.'))
    })
}

/// Reads back every activity object of `bucket` under `prefix` and compresses each at every level.
pub async fn measure(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    levels: &[u32],
    collector_level: u32,
) -> Result<Floor, Error> {
    let objects = testkit::aws::list_objects(s3, bucket, prefix).await?;
    let mut floor = Floor {
        objects: 0,
        activities: 0,
        raw_bytes: 0,
        stored_bytes: 0,
        levels: levels
            .iter()
            .map(|&level| LevelFigure { level, cpu: Duration::ZERO, compressed_bytes: 0 })
            .collect(),
        per_line: Duration::ZERO,
        collector_encoder: Duration::ZERO,
    };
    let mut encoder = Encoder::default();
    for object in objects.iter().filter(|o| is_activity_key(prefix, &o.key)) {
        let gzipped = testkit::aws::get_object_bytes(s3, bucket, &object.key).await?;
        let levels = levels.to_vec();
        let (runs, returned) = tokio::task::spawn_blocking(move || {
            let runs = compress_levels(&gzipped, &levels, collector_level, &mut encoder);
            (runs, encoder)
        })
        .await?;
        encoder = returned;
        let (raw_len, lines, per_level, per_line) = runs?;
        floor.per_line += per_line.0;
        floor.collector_encoder += per_line.1;
        floor.objects += 1;
        floor.activities += lines;
        floor.raw_bytes += raw_len;
        floor.stored_bytes += u64::try_from(object.size).unwrap_or(0);
        for (total, (cpu, bytes)) in floor.levels.iter_mut().zip(per_level) {
            total.cpu += cpu;
            total.compressed_bytes += bytes;
        }
    }
    Ok(floor)
}

/// Raw bytes, lines, `(CPU, compressed bytes)` per level, and the CPU at the collector's level a
/// line at a time and by the collector's encoder.
type LevelRuns = (u64, u64, Vec<(Duration, u64)>, (Duration, Duration));

/// Decompresses one object, then times compressing its NDJSON at each level, a line at a time, and
/// with the collector's encoder.
fn compress_levels(
    gzipped: &[u8],
    levels: &[u32],
    collector_level: u32,
    encoder: &mut Encoder,
) -> std::io::Result<LevelRuns> {
    let mut ndjson = Vec::with_capacity(gzipped.len() * 8);
    MultiGzDecoder::new(gzipped).read_to_end(&mut ndjson)?;
    let lines = ndjson.iter().filter(|b| **b == b'\n').count() as u64;
    let capacity = ndjson.len() / 6 + 64;
    let mut out = Vec::with_capacity(levels.len());
    for &level in levels {
        let start = thread_cpu();
        let mut gz = GzEncoder::new(Vec::with_capacity(capacity), Compression::new(level));
        gz.write_all(&ndjson)?;
        let body = gz.finish()?;
        out.push((thread_cpu().saturating_sub(start), body.len() as u64));
    }
    let level = Compression::new(collector_level);
    let start = thread_cpu();
    let mut gz = GzEncoder::new(Vec::with_capacity(capacity), level);
    write_lines(&mut gz, &ndjson)?;
    gz.finish()?;
    let direct = thread_cpu().saturating_sub(start);
    let activities = activities(gzipped, &ndjson)?;
    let refs: Vec<&Activity> = activities.iter().collect();
    let start = thread_cpu();
    encoder.encode_batch("bench/", None, &refs)?;
    let collector = thread_cpu().saturating_sub(start);
    Ok((ndjson.len() as u64, lines, out, (direct, collector)))
}

/// The activities of an object, as the feed would hand them to the encoder: ids and times by the
/// collector's own reader, each with its line.
fn activities(gzipped: &[u8], ndjson: &[u8]) -> std::io::Result<Vec<Activity>> {
    let lines = ndjson.split(|b| *b == b'\n').filter(|line| !line.is_empty());
    Ok(decode_activities(gzipped)?
        .into_iter()
        .zip(lines)
        .map(|((id, created_at), line)| Activity {
            id,
            created_at,
            raw: bytes::Bytes::copy_from_slice(line),
        })
        .collect())
}

/// Writes each line and its `\n` in two calls.
fn write_lines(out: &mut impl Write, ndjson: &[u8]) -> std::io::Result<()> {
    for line in ndjson.split_inclusive(|b| *b == b'\n') {
        let (text, newline) = line.split_at(line.len() - usize::from(line.ends_with(b"\n")));
        out.write_all(text)?;
        out.write_all(newline)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_activity_objects_count() {
        let p = "anthropic/activity/";
        assert!(is_activity_key(
            p,
            "anthropic/activity/year=2026/month=11/day=26/hour=08/a_1.json.gz"
        ));
        assert!(!is_activity_key(p, "anthropic/activity/_manifests/live/year=2026/x.json"));
        assert!(!is_activity_key(p, "anthropic/activity/_collector/verify/probe.json.gz"));
        assert!(!is_activity_key(p, "other/year=2026/a.json.gz"));
    }

    #[test]
    fn levels_are_timed_and_sized() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
        for i in 0..2000 {
            writeln!(
                gz,
                r#"{{"id":"activity_{i}","created_at":"2026-11-26T08:00:00Z","type":"claude_chat_viewed"}}"#
            )
            .unwrap();
        }
        let body = gz.finish().unwrap();
        let (raw, lines, levels, (direct, collector)) =
            compress_levels(&body, &[1, 9], 6, &mut Encoder::default()).unwrap();
        assert_eq!(lines, 2000);
        assert!(raw > 0 && levels.len() == 2);
        assert!(levels.iter().all(|(_, bytes)| *bytes > 0 && *bytes < raw));
        assert!(direct > Duration::ZERO && collector > Duration::ZERO);
    }
}
