//! The CPU floor: gzip-compressing exactly the NDJSON the collector wrote, object by object, with
//! every codec on offer — libdeflate (the collector's) at each of its levels, flate2 over zlib-rs,
//! miniz_oxide (the collector's codec before libdeflate) and C zlib (Python's `zlib` module, in
//! its own process) — timed on the compressing thread's own CPU clock, so nothing else the bench
//! does counts.
//!
//! The bytes are read back from the activity objects of a run and decompressed. Levels 10 to 12
//! are libdeflate's slow near-optimal parser (tens of times level 6): they are timed over one
//! object in [`SAMPLE_EVERY`] and scaled by the bytes, which the level table says.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anthropic_compliance_collector::archive::{Encoder, decode_activities};
use anthropic_compliance_collector::feed::Activity;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::Error;
use crate::procfs::thread_cpu;

/// libdeflate's level range.
pub const LEVELS: std::ops::RangeInclusive<u32> = 0..=12;
/// Levels from here on are timed over a sample of the objects.
pub const FIRST_SAMPLED_LEVEL: u32 = 10;
/// The sampled levels compress one object in this many.
pub const SAMPLE_EVERY: usize = 8;
/// The level the other codecs are compared at: everyone's default.
pub const COMPARE_LEVEL: u32 = 6;

/// One libdeflate level over the whole data set (scaled from a sample for the slow levels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelFigure {
    pub level: u32,
    pub cpu: Duration,
    pub compressed_bytes: u64,
    /// Measured over one object in [`SAMPLE_EVERY`] and scaled by the bytes.
    pub sampled: bool,
}

/// Another codec at [`COMPARE_LEVEL`] over the whole data set.
#[derive(Debug, Clone, PartialEq)]
pub struct CodecFigure {
    pub name: String,
    pub cpu: Duration,
    pub compressed_bytes: u64,
}

/// The data set of a run and what each codec and level does with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    pub objects: usize,
    pub activities: u64,
    /// Uncompressed NDJSON bytes.
    pub raw_bytes: u64,
    /// The objects' sizes as the collector wrote them.
    pub stored_bytes: u64,
    /// libdeflate, each object compressed whole, at every level.
    pub levels: Vec<LevelFigure>,
    /// flate2 (zlib-rs), miniz_oxide and C zlib at [`COMPARE_LEVEL`].
    pub codecs: Vec<CodecFigure>,
    /// The collector's own `archive::Encoder` over the same activities, one encoder for all the
    /// objects as in a run (keys, layout of the lines, gzip framing and SHA-256 included).
    pub collector_encoder: Duration,
}

impl Floor {
    pub fn level(&self, level: u32) -> Option<&LevelFigure> {
        self.levels.iter().find(|l| l.level == level)
    }

    pub fn codec(&self, prefix: &str) -> Option<&CodecFigure> {
        self.codecs.iter().find(|c| c.name.starts_with(prefix))
    }
}

/// Whether `key` (under `prefix`) is an activity object: no segment starting with `_` or `.`.
pub fn is_activity_key(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|rest| {
        rest.ends_with(".json.gz")
            && !rest.split('/').any(|s| s.starts_with('_') || s.starts_with('.'))
    })
}

/// Per object: libdeflate's `(CPU, bytes)` per level (`None` where not sampled), flate2's and
/// miniz_oxide's `(CPU, bytes)`, and the collector's encoder's CPU.
struct ObjectRuns {
    raw_len: u64,
    lines: u64,
    levels: Vec<Option<(Duration, u64)>>,
    flate2: (Duration, u64),
    miniz: (Duration, u64),
    collector: Duration,
    ndjson: Vec<u8>,
}

/// Reads back every activity object of `bucket` under `prefix` and compresses each with every
/// codec; `python` runs C zlib (tools/zlib_floor.py).
pub async fn measure(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    python: &str,
) -> Result<Floor, Error> {
    let objects = testkit::aws::list_objects(s3, bucket, prefix).await?;
    let mut zlib = CZlib::start(python, COMPARE_LEVEL)?;
    let levels: Vec<u32> = LEVELS.collect();
    let mut totals: Vec<(Duration, u64)> = vec![(Duration::ZERO, 0); levels.len()];
    let (mut sampled_raw, mut flate2, mut miniz) = (0u64, (Duration::ZERO, 0), (Duration::ZERO, 0));
    let mut floor = Floor {
        objects: 0,
        activities: 0,
        raw_bytes: 0,
        stored_bytes: 0,
        levels: Vec::new(),
        codecs: Vec::new(),
        collector_encoder: Duration::ZERO,
    };
    let mut encoder = Encoder::default();
    for (i, object) in objects.iter().filter(|o| is_activity_key(prefix, &o.key)).enumerate() {
        let gzipped = testkit::aws::get_object_bytes(s3, bucket, &object.key).await?;
        let levels = levels.clone();
        let sample = i % SAMPLE_EVERY == 0;
        let (runs, returned) = tokio::task::spawn_blocking(move || {
            let runs = compress_object(&gzipped, &levels, sample, &mut encoder);
            (runs, encoder)
        })
        .await?;
        encoder = returned;
        let runs = runs?;
        zlib.send(&runs.ndjson)?;
        if sample {
            sampled_raw += runs.raw_len;
        }
        for (total, run) in totals.iter_mut().zip(&runs.levels) {
            if let Some((cpu, bytes)) = run {
                total.0 += *cpu;
                total.1 += bytes;
            }
        }
        flate2 = (flate2.0 + runs.flate2.0, flate2.1 + runs.flate2.1);
        miniz = (miniz.0 + runs.miniz.0, miniz.1 + runs.miniz.1);
        floor.collector_encoder += runs.collector;
        floor.objects += 1;
        floor.activities += runs.lines;
        floor.raw_bytes += runs.raw_len;
        floor.stored_bytes += u64::try_from(object.size).unwrap_or(0);
    }
    let scale = floor.raw_bytes as f64 / sampled_raw.max(1) as f64;
    floor.levels = levels
        .iter()
        .zip(totals)
        .map(|(&level, (cpu, bytes))| {
            let sampled = level >= FIRST_SAMPLED_LEVEL;
            let factor = if sampled { scale } else { 1.0 };
            LevelFigure {
                level,
                cpu: cpu.mul_f64(factor),
                compressed_bytes: (bytes as f64 * factor) as u64,
                sampled,
            }
        })
        .collect();
    let c = zlib.finish()?;
    floor.codecs = vec![
        CodecFigure {
            name: format!("flate2 {} (zlib-rs backend)", COMPARE_LEVEL),
            cpu: flate2.0,
            compressed_bytes: flate2.1,
        },
        CodecFigure {
            name: format!("miniz_oxide {COMPARE_LEVEL} (the collector's codec before libdeflate)"),
            cpu: miniz.0,
            compressed_bytes: miniz.1,
        },
        CodecFigure {
            name: format!("C zlib {} {COMPARE_LEVEL} (Python's zlib module)", c.version),
            cpu: Duration::from_secs_f64(c.cpu_seconds),
            compressed_bytes: c.compressed_bytes,
        },
    ];
    Ok(floor)
}

/// Decompresses one object, then times compressing its NDJSON with each codec and level, and
/// with the collector's encoder.
fn compress_object(
    gzipped: &[u8],
    levels: &[u32],
    sample: bool,
    encoder: &mut Encoder,
) -> std::io::Result<ObjectRuns> {
    let mut ndjson = Vec::with_capacity(gzipped.len() * 8);
    MultiGzDecoder::new(gzipped).read_to_end(&mut ndjson)?;
    let lines = ndjson.iter().filter(|b| **b == b'\n').count() as u64;
    let mut runs = Vec::with_capacity(levels.len());
    for &level in levels {
        if level >= FIRST_SAMPLED_LEVEL && !sample {
            runs.push(None);
            continue;
        }
        let mut one = Encoder::with_level(level)?;
        let start = thread_cpu();
        let body = one.gzip(&ndjson)?;
        runs.push(Some((thread_cpu().saturating_sub(start), body.len() as u64)));
    }
    let start = thread_cpu();
    let mut gz =
        GzEncoder::new(Vec::with_capacity(ndjson.len() / 6), Compression::new(COMPARE_LEVEL));
    gz.write_all(&ndjson)?;
    let body = gz.finish()?;
    let flate2 = (thread_cpu().saturating_sub(start), body.len() as u64);
    let start = thread_cpu();
    let raw = miniz_oxide::deflate::compress_to_vec(&ndjson, COMPARE_LEVEL as u8);
    // A raw deflate stream; the gzip member around it adds 18 bytes.
    let miniz = (thread_cpu().saturating_sub(start), raw.len() as u64 + 18);
    let activities = activities(gzipped, &ndjson)?;
    let refs: Vec<&Activity> = activities.iter().collect();
    let start = thread_cpu();
    encoder.encode_batch("bench/", None, &refs)?;
    let collector = thread_cpu().saturating_sub(start);
    Ok(ObjectRuns {
        raw_len: ndjson.len() as u64,
        lines,
        levels: runs,
        flate2,
        miniz,
        collector,
        ndjson,
    })
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

/// C zlib through Python's `zlib` module: tools/zlib_floor.py reads length-prefixed objects on
/// its stdin and times each `compress` on its thread's CPU clock.
struct CZlib {
    child: Child,
}

/// What tools/zlib_floor.py prints at the end.
#[derive(serde::Deserialize)]
struct CZlibResult {
    cpu_seconds: f64,
    compressed_bytes: u64,
    version: String,
}

impl CZlib {
    fn start(python: &str, level: u32) -> Result<CZlib, Error> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/zlib_floor.py");
        let child = Command::new(python)
            .arg(script)
            .arg(level.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {python} {script}: {e}"))?;
        Ok(CZlib { child })
    }

    fn send(&mut self, ndjson: &[u8]) -> Result<(), Error> {
        let stdin = self.child.stdin.as_mut().ok_or("zlib_floor.py: no stdin")?;
        stdin.write_all(&u32::try_from(ndjson.len())?.to_le_bytes())?;
        stdin.write_all(ndjson)?;
        Ok(())
    }

    fn finish(mut self) -> Result<CZlibResult, Error> {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("zlib_floor.py failed: {}", out.status).into());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
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
    fn every_codec_and_level_is_timed_and_sized() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
        for i in 0..2000 {
            writeln!(
                gz,
                r#"{{"id":"activity_{i}","created_at":"2026-11-26T08:00:00Z","type":"claude_chat_viewed"}}"#
            )
            .unwrap();
        }
        let body = gz.finish().unwrap();
        let levels: Vec<u32> = LEVELS.collect();
        let runs = compress_object(&body, &levels, false, &mut Encoder::default()).unwrap();
        assert_eq!(runs.lines, 2000);
        assert_eq!(runs.levels.len(), 13);
        let measured: Vec<_> = runs.levels.iter().flatten().collect();
        assert_eq!(measured.len(), FIRST_SAMPLED_LEVEL as usize, "10 to 12 only when sampled");
        // level 0 stores; every other level compresses
        assert!(measured[0].1 > runs.raw_len);
        assert!(measured[1..].iter().all(|(_, bytes)| *bytes > 0 && *bytes < runs.raw_len));
        assert!(runs.flate2.1 < runs.raw_len && runs.miniz.1 < runs.raw_len);
        assert!(runs.collector > Duration::ZERO);
        let sampled = compress_object(&body, &levels, true, &mut Encoder::default()).unwrap();
        assert!(sampled.levels.iter().all(Option::is_some));
    }
}
