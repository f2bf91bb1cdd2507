//! Batches → objects: activities grouped by event hour, each group gzip-compressed NDJSON.
//!
//! Pure: no I/O but into memory. Each line is the activity's raw JSON as served, then LF; the
//! object ends with a newline. The reverse, [`decode_activities`], reads an object back (used to
//! recover the ids of a batch whose commit was lost, and by tests).

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::ops::Range;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use flate2::write::DeflateEncoder;
use flate2::{Compression, CrcWriter};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::key::object_key;
use crate::feed::Activity;

/// The gzip level: see BENCHMARKS.md for the cost trade-off behind it.
pub const GZIP_LEVEL: u32 = 6;

/// How many bytes of NDJSON are handed to the compressor at a time.
const FEED_BYTES: usize = 64 * 1024;

/// The gzip member header flate2's `GzEncoder` writes at levels 2 to 8 (RFC 1952): magic, deflate,
/// no flags, no modification time, no extra flags, unknown OS. The objects stay byte for byte
/// what `GzEncoder` would make.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// One object ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedObject {
    pub key: String,
    /// The gzip member; shared, so a retried write does not copy it.
    pub body: Bytes,
    pub activities: usize,
    pub first_id: String,
    pub last_id: String,
    /// Uncompressed NDJSON bytes.
    pub raw_bytes: usize,
    /// SHA-256 of `body`: S3 checks the upload against it and keeps it with the object, and the
    /// run's manifest lists it, so a reader can verify an object end to end.
    pub sha256: [u8; 32],
}

/// Encodes activities into objects with one compressor for all of them, reset between objects: a
/// new compressor allocates and zeroes about 300 KB of tables, which for a drain of a million
/// activities (about 370 objects) is mostly page faults (`make bench`).
pub struct Encoder {
    deflate: DeflateEncoder<Vec<u8>>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { deflate: DeflateEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL)) }
    }
}

impl Encoder {
    /// Encodes `activities` (in feed order) into one object per event hour.
    pub fn encode_batch(
        &mut self,
        prefix: &str,
        tag: Option<&str>,
        activities: &[&Activity],
    ) -> io::Result<Vec<EncodedObject>> {
        hour_groups(activities)
            .map(|group| self.encode_object(prefix, tag, &activities[group]))
            .collect()
    }

    /// Encodes one non-empty group of activities of the same hour as one gzip member: the header,
    /// the deflate stream, then the CRC-32 and length of the NDJSON (RFC 1952).
    fn encode_object(
        &mut self,
        prefix: &str,
        tag: Option<&str>,
        group: &[&Activity],
    ) -> io::Result<EncodedObject> {
        let (first, last) = match (group.first(), group.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty object")),
        };
        let raw_bytes: usize = group.iter().map(|a| a.raw.len() + 1).sum();
        let mut out = Vec::with_capacity(raw_bytes / 6 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        // `reset` ends the previous stream (its output already taken) and starts a new one here.
        self.deflate.reset(out)?;
        // The compressor is fed in large slices: each `write` runs it and prepares its output
        // buffer once, so a few hundred bytes at a time would cost about 10% more CPU
        // (BENCHMARKS.md). The CRC is taken over the same slices on their way in.
        let mut lines = BufWriter::with_capacity(FEED_BYTES, CrcWriter::new(&mut self.deflate));
        for a in group {
            lines.write_all(&a.raw)?;
            lines.write_all(b"\n")?;
        }
        let mut checked = lines.into_inner().map_err(|e| e.into_error())?;
        checked.get_mut().try_finish()?;
        let (crc, length) = (checked.crc().sum(), checked.crc().amount());
        let mut body = self.deflate.reset(Vec::new())?;
        body.extend_from_slice(&crc.to_le_bytes());
        body.extend_from_slice(&length.to_le_bytes());
        let sha256 = Sha256::digest(&body).into();
        Ok(EncodedObject {
            key: object_key(prefix, first.created_at, group.iter().map(|a| a.id.as_str()), tag),
            body: body.into(),
            activities: group.len(),
            first_id: first.id.clone(),
            last_id: last.id.clone(),
            raw_bytes,
            sha256,
        })
    }
}

/// Encodes `activities` (in feed order) into one object per event hour, with a compressor of its
/// own.
pub fn encode_batch(
    prefix: &str,
    tag: Option<&str>,
    activities: &[&Activity],
) -> io::Result<Vec<EncodedObject>> {
    Encoder::default().encode_batch(prefix, tag, activities)
}

/// Cuts activities (in feed order) into consecutive runs of at most `max_objects` objects each,
/// as [`Encoder::encode_batch`] would group them (one object per event hour). A page of a sparse
/// backfill can span thousands of hours: each run is written under its own write intent, whose
/// keys must fit in the state item and whose writes must fit in the write window.
pub fn split_by_objects(activities: &[&Activity], max_objects: usize) -> Vec<Range<usize>> {
    let groups: Vec<Range<usize>> = hour_groups(activities).collect();
    groups
        .chunks(max_objects.max(1))
        .filter_map(|run| Some(run.first()?.start..run.last()?.end))
        .collect()
}

/// The consecutive runs of activities of one event hour: one object each.
fn hour_groups(activities: &[&Activity]) -> impl Iterator<Item = Range<usize>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let hour = hour_of(activities.get(start)?.created_at);
        let len = activities[start..].iter().take_while(|a| hour_of(a.created_at) == hour).count();
        start += len;
        Some(start - len..start)
    })
}

/// The UTC hour an activity belongs to, as hours since the epoch.
fn hour_of(t: Timestamp) -> i64 {
    t.as_second().div_euclid(3600)
}

/// Reads an activity object back into `(id, created_at)` per line, a line at a time: an object of
/// a few MB is never held decompressed.
pub fn decode_activities(body: &[u8]) -> io::Result<Vec<(String, Timestamp)>> {
    let mut out = Vec::new();
    read_activities(body, |id, created_at, _| out.push((id, created_at)))?;
    Ok(out)
}

/// Reads an activity object back a line at a time, handing `each` every activity's id,
/// `created_at` and line as written.
pub fn read_activities(
    body: &[u8],
    mut each: impl FnMut(String, Timestamp, &str),
) -> io::Result<()> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: String,
        created_at: Timestamp,
    }
    let mut lines = BufReader::with_capacity(FEED_BYTES, MultiGzDecoder::new(body));
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let text = line.trim_end_matches('\n');
        if text.is_empty() {
            continue;
        }
        let head = serde_json::from_str::<Head>(text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        each(head.id, head.created_at, text);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn activity(id: &str, created_at: &str) -> Activity {
        Activity {
            id: id.into(),
            created_at: created_at.parse().unwrap(),
            raw: format!(r#"{{"id":"{id}","created_at":"{created_at}","x":"é"}}"#).into(),
        }
    }

    #[test]
    fn a_batch_is_split_where_it_would_exceed_the_objects_allowed() {
        // GIVEN activities over five hours, the third hour holding two
        let a = [
            activity("a1", "2026-01-01T01:00:00Z"),
            activity("a2", "2026-01-01T02:00:00Z"),
            activity("a3", "2026-01-01T03:00:00Z"),
            activity("a4", "2026-01-01T03:59:59Z"),
            activity("a5", "2026-01-01T04:00:00Z"),
            activity("a6", "2026-01-01T05:00:00Z"),
        ];
        let refs: Vec<&Activity> = a.iter().collect();
        // WHEN split into runs of at most two objects
        let runs = split_by_objects(&refs, 2);
        // THEN each run is whole hours, and encodes into no more than two objects
        assert_eq!(runs, [0..2, 2..5, 5..6]);
        for run in runs {
            assert!(encode_batch("p/", None, &refs[run]).unwrap().len() <= 2);
        }
        assert_eq!(split_by_objects(&refs, 100), vec![Range { start: 0, end: 6 }]);
        assert!(split_by_objects(&[], 2).is_empty());
    }

    #[test]
    fn one_object_per_event_hour_with_lines_as_served() {
        // GIVEN three activities over two hours
        let a = [
            activity("a1", "2026-01-01T09:59:59.999Z"),
            activity("a2", "2026-01-01T10:00:00Z"),
            activity("a3", "2026-01-01T10:30:00.123456Z"),
        ];
        let refs: Vec<&Activity> = a.iter().collect();
        // WHEN encoded
        let objects = encode_batch("p/", None, &refs).unwrap();
        // THEN two objects, each gzip NDJSON of the raw records with a trailing newline
        assert_eq!(objects.len(), 2);
        assert!(objects[0].key.starts_with("p/year=2026/month=01/day=01/hour=09/"));
        assert!(objects[1].key.starts_with("p/year=2026/month=01/day=01/hour=10/"));
        let mut text = String::new();
        MultiGzDecoder::new(&objects[1].body[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text.as_bytes(), [&a[1].raw[..], b"\n", &a[2].raw, b"\n"].concat());
        assert_eq!((objects[1].first_id.as_str(), objects[1].last_id.as_str()), ("a2", "a3"));
        assert_eq!(objects[1].activities, 2);
        let ids = decode_activities(&objects[1].body).unwrap();
        assert_eq!(
            ids,
            vec![("a2".to_string(), a[1].created_at), ("a3".to_string(), a[2].created_at)]
        );
    }

    #[test]
    fn one_compressor_makes_what_a_new_gz_encoder_makes_object_after_object() {
        // GIVEN activities over three hours, enough text for many feeds of the compressor
        let a: Vec<Activity> = (0..3000)
            .map(|i| {
                let mut a = activity(&format!("activity_{i}"), "2026-01-01T09:00:00Z");
                a.created_at += jiff::SignedDuration::from_secs(i * 3);
                a.raw = format!(
                    r#"{{"id":"activity_{i}","n":{},"pad":"{}"}}"#,
                    i * 7919,
                    "x".repeat(i as usize % 300)
                )
                .into();
                a
            })
            .collect();
        let refs: Vec<&Activity> = a.iter().collect();
        // WHEN encoded by one encoder, twice over (so its compressor is reset many times)
        let mut encoder = Encoder::default();
        let first = encoder.encode_batch("p/", None, &refs).unwrap();
        let again = encoder.encode_batch("p/", None, &refs).unwrap();
        // THEN each object is byte for byte flate2's GzEncoder output for its NDJSON
        assert_eq!(first.len(), 3);
        assert_eq!(first, again);
        let mut at = 0;
        for object in &first {
            let group = &a[at..at + object.activities];
            at += object.activities;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL));
            for x in group {
                gz.write_all(&x.raw).unwrap();
                gz.write_all(b"\n").unwrap();
            }
            assert_eq!(object.body, gz.finish().unwrap(), "{}", object.key);
        }
        assert_eq!(at, a.len());
    }

    #[test]
    fn an_empty_batch_makes_no_object() {
        assert!(encode_batch("p/", None, &[]).unwrap().is_empty());
    }
}
