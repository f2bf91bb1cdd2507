//! Batches → objects: activities grouped by event hour (a busy hour cut at a size cap), each
//! group gzip-compressed NDJSON.
//!
//! Pure: no I/O but into memory. Each line is the activity's raw JSON as served, then LF; the
//! object ends with a newline. The reverse, [`decode_activities`], reads an object back (used to
//! recover the ids of a batch whose commit was lost, and by tests).

use std::io::{self, BufRead, BufReader};
use std::ops::Range;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use jiff::Timestamp;
use libdeflater::{CompressionLvl, Compressor};
use sha2::{Digest, Sha256};

use super::key::object_key;
use crate::feed::Activity;

/// The gzip level, on libdeflate's scale (0 to 12). Not the cheapest by money: BENCHMARKS.md
/// ("gzip level") prices every level, and 8 comes out a few percent cheaper in storage and
/// transfer (well under a cent a month at 3 million activities) for nearly twice the gzip CPU,
/// which on a small function is run time and would take a drain over C zlib's own CPU.
pub const GZIP_LEVEL: u32 = 6;

/// How many bytes of NDJSON are read back from the decompressor at a time.
const FEED_BYTES: usize = 64 * 1024;

/// The most NDJSON one object holds before the hour's next activities start another object (an
/// activity larger than this is an object alone). It bounds what an object costs in memory while
/// it is encoded (the NDJSON, then the compressed body), and the detector's memory to read it
/// back, whatever the hour's volume; every object stays a single gzip member, which readers that
/// stop at the first member (Python's `zlib.decompress(wbits=31)`) read whole.
pub const MAX_OBJECT_RAW_BYTES: usize = 1 << 20;

/// Scratch buffers larger than this after an object are given back rather than kept for the next
/// one: a rare page of large records must not pin its size for the rest of the process.
const KEEP_SCRATCH_BYTES: usize = 8 * 1024 * 1024;

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

/// Encodes activities into objects with libdeflate, one compressor for all of them: libdeflate
/// compresses a whole buffer at once (it is not a streaming compressor), so the object's NDJSON is
/// laid out contiguously first, in a scratch buffer kept from object to object, and compressed
/// straight into the object's body (no second copy). The result is one standard gzip member (RFC 1952, CRC-32 and
/// length included), read by gunzip, flate2, DuckDB, Athena and every SIEM.
pub struct Encoder {
    compressor: Compressor,
    ndjson: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        // GZIP_LEVEL is a valid level (the tests build it); libdeflate's default is the same 6.
        Encoder::with_level(GZIP_LEVEL).unwrap_or_else(|_| Encoder::at(CompressionLvl::default()))
    }
}

impl Encoder {
    /// An encoder at another level, 0 to 12 (the benchmark's level table).
    pub fn with_level(level: u32) -> io::Result<Self> {
        let level = i32::try_from(level)
            .ok()
            .and_then(|l| CompressionLvl::new(l).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "gzip level is 0 to 12"))?;
        Ok(Encoder::at(level))
    }

    fn at(level: CompressionLvl) -> Self {
        Encoder { compressor: Compressor::new(level), ndjson: Vec::new() }
    }

    /// Encodes `activities` (in feed order) into one object per event hour, or several for an
    /// hour of more than [`MAX_OBJECT_RAW_BYTES`].
    pub fn encode_batch(
        &mut self,
        prefix: &str,
        tag: Option<&str>,
        activities: &[&Activity],
    ) -> io::Result<Vec<EncodedObject>> {
        groups_of(activities, MAX_OBJECT_RAW_BYTES)
            .map(|group| self.encode_object(prefix, tag, &activities[group]))
            .collect()
    }

    /// Compresses one buffer of NDJSON into one gzip member, written straight into the body it
    /// returns: the body is allocated at libdeflate's bound, then cut to the member's length.
    pub fn gzip(&mut self, ndjson: &[u8]) -> io::Result<Vec<u8>> {
        let mut body = vec![0; self.compressor.gzip_compress_bound(ndjson.len())];
        let n = self
            .compressor
            .gzip_compress(ndjson, &mut body)
            .map_err(|e| io::Error::other(format!("libdeflate: {e}")))?;
        body.truncate(n);
        body.shrink_to_fit();
        Ok(body)
    }

    /// Encodes one non-empty group of activities of the same hour as one gzip member.
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
        let mut ndjson = std::mem::take(&mut self.ndjson);
        ndjson.clear();
        ndjson.reserve(group.iter().map(|a| a.raw.len() + 1).sum());
        for a in group {
            ndjson.extend_from_slice(&a.raw);
            ndjson.push(b'\n');
        }
        let body = self.gzip(&ndjson);
        let raw_bytes = ndjson.len();
        if ndjson.capacity() <= KEEP_SCRATCH_BYTES {
            self.ndjson = ndjson;
        }
        let body = body?;
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
/// as [`Encoder::encode_batch`] would group them (one object per event hour, cut at the size cap). A page of a sparse
/// backfill can span thousands of hours: each run is written under its own write intent, whose
/// keys must fit in the state item and whose writes must fit in the write window.
pub fn split_by_objects(activities: &[&Activity], max_objects: usize) -> Vec<Range<usize>> {
    let groups: Vec<Range<usize>> = groups_of(activities, MAX_OBJECT_RAW_BYTES).collect();
    groups
        .chunks(max_objects.max(1))
        .filter_map(|run| Some(run.first()?.start..run.last()?.end))
        .collect()
}

/// The consecutive runs of activities of one event hour whose NDJSON (a line and its newline
/// each) stays within `max_raw` bytes: one object each. A run always holds at least one activity,
/// so one larger than `max_raw` is a run alone.
fn groups_of(activities: &[&Activity], max_raw: usize) -> impl Iterator<Item = Range<usize>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let hour = hour_of(activities.get(start)?.created_at);
        let mut raw = 0;
        let len = activities[start..]
            .iter()
            .enumerate()
            .take_while(|(i, a)| {
                raw += a.raw.len() + 1;
                hour_of(a.created_at) == hour && (*i == 0 || raw <= max_raw)
            })
            .count();
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
    fn one_encoder_makes_standard_gzip_object_after_object() {
        // GIVEN activities over three hours, enough text for large objects
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
        // WHEN encoded by one encoder, twice over (so its buffers are reused)
        let mut encoder = Encoder::default();
        let first = encoder.encode_batch("p/", None, &refs).unwrap();
        let again = encoder.encode_batch("p/", None, &refs).unwrap();
        // THEN each object is one gzip member that another implementation (flate2 over zlib-rs)
        // decodes to exactly its activities' NDJSON, and the same input gives the same bytes
        assert_eq!(first.len(), 3);
        assert_eq!(first, again);
        let mut at = 0;
        for object in &first {
            let group = &a[at..at + object.activities];
            at += object.activities;
            let expected: Vec<u8> =
                group.iter().flat_map(|x| [&x.raw[..], b"\n"].concat()).collect();
            assert_eq!(object.raw_bytes, expected.len());
            assert_eq!(object.body[..3], [0x1f, 0x8b, 8], "a gzip member: {}", object.key);
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&object.body[..]).read_to_end(&mut text).unwrap();
            assert_eq!(text, expected, "{}", object.key);
            assert!(object.body.len() * 4 < expected.len(), "compressed: {}", object.key);
        }
        assert_eq!(at, a.len());
    }

    #[test]
    fn a_busy_hour_is_cut_into_objects_of_at_most_the_cap_each_a_single_gzip_member() {
        // GIVEN one hour of 3.5 MiB of NDJSON, then one activity in the next hour
        let pad = "z".repeat(1000);
        let mut a: Vec<Activity> = (0..3600)
            .map(|i| Activity {
                raw: format!(r#"{{"id":"b{i}","n":{i},"pad":"{pad}"}}"#).into(),
                ..activity(&format!("b{i}"), "2026-01-01T09:00:00Z")
            })
            .collect();
        a.push(activity("next", "2026-01-01T10:00:00Z"));
        let refs: Vec<&Activity> = a.iter().collect();
        // WHEN encoded
        let objects = encode_batch("p/", None, &refs).unwrap();
        // THEN the hour is four objects of at most the cap each, in feed order and with keys of
        // their own, then one for the next hour; each is one gzip member holding its lines only
        assert_eq!(objects.len(), 5);
        let mut keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        keys.dedup();
        assert_eq!(keys.len(), 5);
        let mut at = 0;
        for object in &objects {
            assert!(object.raw_bytes <= MAX_OBJECT_RAW_BYTES, "{}", object.raw_bytes);
            let group = &a[at..at + object.activities];
            assert_eq!(object.first_id, group[0].id);
            at += object.activities;
            let mut one_member = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(&object.body[..]);
            decoder.read_to_end(&mut one_member).unwrap();
            let expected: Vec<u8> =
                group.iter().flat_map(|x| [&x.raw[..], b"\n"].concat()).collect();
            assert_eq!(one_member, expected);
        }
        assert_eq!(at, a.len());
        assert!(objects[..3].iter().all(|o| o.raw_bytes > MAX_OBJECT_RAW_BYTES - 1100));
        assert!(objects[4].key.contains("hour=10/"));
        // AND split_by_objects groups the same way
        assert_eq!(split_by_objects(&refs, 2).len(), 3);
    }

    #[test]
    fn an_activity_larger_than_the_cap_is_an_object_alone() {
        // GIVEN a small activity, one of twice the cap, then another small one, in one hour
        let big = Activity {
            raw: format!(r#"{{"id":"big","pad":"{}"}}"#, "y".repeat(2 * MAX_OBJECT_RAW_BYTES))
                .into(),
            ..activity("big", "2026-01-01T09:00:01Z")
        };
        let a =
            [activity("s1", "2026-01-01T09:00:00Z"), big, activity("s2", "2026-01-01T09:00:02Z")];
        let refs: Vec<&Activity> = a.iter().collect();
        // WHEN encoded
        let objects = encode_batch("p/", None, &refs).unwrap();
        // THEN three objects: the large one alone, the others on either side
        let ids: Vec<(&str, usize)> =
            objects.iter().map(|o| (o.first_id.as_str(), o.activities)).collect();
        assert_eq!(ids, [("s1", 1), ("big", 1), ("s2", 1)]);
    }

    #[test]
    fn a_large_object_does_not_pin_its_buffers() {
        // GIVEN one object of 10 MB of NDJSON, more than the scratch buffers keep
        let big = Activity {
            raw: format!(r#"{{"id":"big","pad":"{}"}}"#, "y".repeat(10 << 20)).into(),
            ..activity("big", "2026-01-01T09:00:00Z")
        };
        let mut encoder = Encoder::default();
        // WHEN encoded
        let objects = encoder.encode_batch("p/", None, &[&big]).unwrap();
        // THEN it round-trips, and the encoder keeps no buffer of that size
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&objects[0].body[..]).read_to_end(&mut text).unwrap();
        assert_eq!(text.len(), big.raw.len() + 1);
        assert!(encoder.ndjson.capacity() <= KEEP_SCRATCH_BYTES);
        assert!(objects[0].body.len() * 4 < big.raw.len(), "the body is cut to the member");
    }

    #[test]
    fn every_libdeflate_level_is_accepted_and_no_other() {
        for level in 0..=12 {
            assert!(Encoder::with_level(level).is_ok(), "level {level}");
        }
        assert!(Encoder::with_level(13).is_err());
        assert!(Encoder::with_level(GZIP_LEVEL).is_ok());
    }

    #[test]
    fn an_empty_batch_makes_no_object() {
        assert!(encode_batch("p/", None, &[]).unwrap().is_empty());
    }
}
