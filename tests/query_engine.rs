//! A real query engine reads the archive as written: DuckDB (from .venv) over the objects the
//! function wrote to moto, with Hive partitions from the paths, returns exactly the delivered
//! activities and their fields.

use std::collections::BTreeMap;
use std::process::Command;

use compliance_sim::GenerateSpec;
use serde_json::Value;

use crate::support::{Options, Stack, ago};

#[tokio::test]
async fn duckdb_reads_exactly_the_delivered_activities_with_hive_partitions() {
    // GIVEN thirty hours of activities collected by the function
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec {
        count: 1500,
        from: ago(30 * 60),
        to: ago(5),
        hidden: false,
    });
    stack.collect().await;
    // WHEN the archive is copied as it is (keys as paths) and queried with DuckDB
    let (dir, _) = stack.copy_archive().await;
    let root = testkit::workspace_root();
    let out = Command::new(testkit::moto::venv_python())
        .arg(root.join("tools/query_archive.py"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    // THEN it sees every delivered activity once, each in the partition of its event hour
    let delivered = stack.delivered().await;
    assert_eq!(result["rows"].as_u64(), Some(delivered.len() as u64));
    assert_eq!(result["distinct_ids"].as_u64(), Some(delivered.len() as u64));
    assert_eq!(result["mismatched_partitions"], 0);
    assert!(result["by_hour"].as_object().unwrap().len() >= 30);
    // AND the fields it reads are the served ones
    let served: BTreeMap<String, Value> = stack
        .sim
        .activities()
        .into_iter()
        .map(|a| (a.id, serde_json::from_str(&a.raw).unwrap()))
        .collect();
    let sample = result["sample"].as_object().unwrap();
    assert_eq!(sample.len(), 50);
    for (id, row) in sample {
        let original = &served[id];
        assert_eq!(row["type"], original["type"], "{id}");
        assert_eq!(row["created_at"], original["created_at"], "{id}");
        assert_eq!(row["organization_id"], original["organization_id"], "{id}");
        assert_eq!(row["actor_type"], original["actor"]["type"], "{id}");
    }
}

#[tokio::test]
async fn two_other_decoders_read_back_byte_for_byte_what_the_api_served() {
    // GIVEN activities of every shape the simulator serves, collected by the function (libdeflate)
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 800, from: ago(6 * 60), to: ago(5), hidden: false });
    stack.collect().await;
    let served: BTreeMap<String, String> =
        stack.sim.activities().into_iter().map(|a| (a.id, a.raw)).collect();
    let (dir, files) = stack.copy_archive().await;
    assert!(!files.is_empty());

    // WHEN each object is decoded by flate2 (zlib-rs) and by DuckDB's own gzip reader
    let out = Command::new(testkit::moto::venv_python())
        .arg(testkit::workspace_root().join("tools/query_archive.py"))
        .arg("--lines")
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let by_duckdb: BTreeMap<String, Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();

    // THEN each object is the served records, byte for byte, one per line, each ending in LF
    let mut seen = 0;
    for file in &files {
        let mut text = Vec::new();
        let gz = std::fs::read(file).unwrap();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        assert_eq!(text.last(), Some(&b'\n'), "{}", file.display());
        let lines: Vec<&str> =
            std::str::from_utf8(&text).unwrap().trim_end_matches('\n').split('\n').collect();
        for line in &lines {
            assert_eq!(*line, served[&crate::support::id_of(line)], "{}", file.display());
        }
        // AND DuckDB reads the very same lines
        assert_eq!(by_duckdb[&file.display().to_string()], lines, "{}", file.display());
        seen += lines.len();
    }
    // AND nothing delivered was missed: every object was read
    assert_eq!(seen, stack.delivered().await.len());
    assert!(seen >= 700, "{seen} of 800 delivered");
    std::fs::remove_dir_all(&dir).unwrap();
}
