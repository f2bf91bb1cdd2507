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
