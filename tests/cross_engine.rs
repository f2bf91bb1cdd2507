//! Two Sigma engines over one archive: the detector (`anthropic-compliance-detector evaluate`, rsigma)
//! and pySigma's DuckDB backend (tools/sigma_duckdb.py, DuckDB reading the gzip NDJSON under its
//! Hive partitions) must find the same activities for every shipped rule.
//!
//! The archive is written by the real collector from the simulator: every activity of every rule's
//! own test cases (the matches and the near misses), re-timed into the collection window with each
//! case more than an hour from the next so cases never share a correlation window, over generated
//! background traffic. Detection rules compare their matched ids; correlations compare their fired
//! windows, which the Python side computes with the window model of the contract
//! (tools/sigma_engine.py), since the backend's correlation SQL has no timespan. A rule that only
//! feeds a correlation raises no alert, so the detector runs a second time with those rules alone
//! as custom rules, where they alert.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::support::{LONG, Options, Stack, ago};
use testkit::lambda::Outcome;

/// Cases are placed this far apart (plus their own length): longer than any correlation's timespan.
const GAP: SignedDuration = SignedDuration::from_mins(61);

fn detections_dir() -> PathBuf {
    testkit::workspace_root().join("detections")
}

/// Every case of every rule: its activities, in file order.
fn all_cases() -> Vec<Vec<Value>> {
    let mut paths = Vec::new();
    for pack in std::fs::read_dir(detections_dir()).unwrap() {
        let pack = pack.unwrap().path();
        if !pack.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(pack).unwrap() {
            let path = file.unwrap().path();
            if path.to_string_lossy().ends_with(".tests.ndjson") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim().is_empty())
        {
            let case: Value = serde_json::from_str(line).unwrap();
            cases.push(case["activities"].as_array().unwrap().clone());
        }
    }
    cases
}

fn created_at(activity: &Value) -> Timestamp {
    activity["created_at"].as_str().unwrap().parse().unwrap()
}

/// Seeds every case, the last ending before `end`, each starting `GAP` after the previous ended;
/// the time of the first.
fn seed_cases(stack: &Stack, cases: &[Vec<Value>], end: Timestamp) -> Timestamp {
    let lengths: Vec<SignedDuration> = cases
        .iter()
        .map(|c| {
            let times: Vec<Timestamp> = c.iter().map(created_at).collect();
            times.iter().max().unwrap().duration_since(*times.iter().min().unwrap())
        })
        .collect();
    let total = lengths.iter().fold(SignedDuration::ZERO, |t, l| t + *l + GAP);
    let start = Timestamp::from_second((end - total).as_second()).unwrap();
    let mut slot = start;
    for (case, length) in cases.iter().zip(&lengths) {
        let first = case.iter().map(created_at).min().unwrap();
        for activity in case {
            let mut moved = activity.clone();
            let at = slot + created_at(activity).duration_since(first);
            moved["created_at"] = Value::String(at.to_string());
            stack.sim.insert_raw(&moved.to_string(), false).unwrap();
        }
        slot = slot + *length + GAP;
    }
    start
}

/// Runs the function until it has caught up. A run that fails is retried: on a loaded machine (the
/// whole suite beside it) a run over this much history can outlive its write lease, which the
/// collector reports and the next run recovers; that is the collector's contract, not this test's.
async fn collect_all(stack: &mut Stack) {
    for _ in 0..60 {
        let invocation = stack.invoke(serde_json::json!({}), LONG).await;
        if let Outcome::Response(summary) = &invocation.outcome
            && (summary["stop_reason"] == "caught_up" || summary["stop_reason"] == "nothing_new")
        {
            return;
        }
    }
    panic!("not caught up after 60 runs");
}

/// The detector's alerts over `files`: `(rule id, activity ids)` per alert.
fn detector_alerts(args: &[&str], files: &[PathBuf]) -> Vec<(String, BTreeSet<String>)> {
    let out = Command::new(env!("CARGO_BIN_EXE_anthropic-compliance-detector"))
        .arg("evaluate")
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "evaluate: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let alert: Value = serde_json::from_str(line).unwrap();
            let ids = alert["activity_ids"].as_array().unwrap();
            (
                alert["rule"]["id"].as_str().unwrap().to_owned(),
                ids.iter().map(|i| i.as_str().unwrap().to_owned()).collect(),
            )
        })
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn duckdb_sql_of_every_rule_finds_what_the_detector_alerted_on() {
    // GIVEN every rule's test activities and a week of background traffic, collected by the
    // function into the archive
    let cases = all_cases();
    let mut stack = Stack::new(Options::default().with_env("INITIAL_LOOKBACK_HOURS", "720")).await;
    let first = seed_cases(&stack, &cases, ago(10));
    stack.generate_between(3000, first, ago(10));
    collect_all(&mut stack).await;
    let (dir, files) = stack.copy_archive().await;
    assert!(!files.is_empty());

    // WHEN pySigma's DuckDB SQL of every rule runs over the archive
    let root = testkit::workspace_root();
    let out = Command::new(testkit::moto::sigma_venv_python())
        .arg(root.join("tools/sigma_duckdb.py"))
        .arg("--rules")
        .arg(detections_dir())
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "sigma_duckdb.py: {}", String::from_utf8_lossy(&out.stderr));
    let duck: Value = serde_json::from_slice(&out.stdout).unwrap();
    let delivered = stack.delivered().await;
    assert_eq!(duck["activities"].as_u64(), Some(delivered.len() as u64));

    // AND the detector evaluates the same objects: the packs as shipped, then the rules that only
    // feed a correlation alone (as custom rules, so that they alert)
    let rules = duck["rules"].as_object().unwrap();
    let silent = dir.join("_feeders");
    std::fs::create_dir_all(&silent).unwrap();
    for rule in rules.values().filter(|r| r["alerts"] == false && r["correlation"] == false) {
        let file = rule["file"].as_str().unwrap();
        let name = Path::new(file).file_name().unwrap();
        std::fs::copy(detections_dir().join(file), silent.join(name)).unwrap();
    }
    let mut alerts = detector_alerts(&[], &files);
    alerts
        .extend(detector_alerts(&["--packs", "none", "--rules", silent.to_str().unwrap()], &files));
    std::fs::remove_dir_all(&dir).unwrap();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut windows: BTreeMap<String, BTreeSet<BTreeSet<String>>> = BTreeMap::new();
    for (rule, ids) in alerts {
        found.entry(rule.clone()).or_default().extend(ids.iter().cloned());
        windows.entry(rule).or_default().insert(ids);
    }

    // THEN for every rule the two engines found exactly the same activities
    let mut disagreements = Vec::new();
    let mut matched = 0;
    for (id, rule) in rules {
        let file = rule["file"].as_str().unwrap();
        let (theirs, ours) = if rule["correlation"] == true {
            let theirs: BTreeSet<BTreeSet<String>> =
                duck["windows"][id].as_array().unwrap().iter().map(strings).collect();
            (format!("{theirs:?}"), format!("{:?}", windows.get(id).cloned().unwrap_or_default()))
        } else {
            let theirs = strings(&rule["ids"]);
            (format!("{theirs:?}"), format!("{:?}", found.get(id).cloned().unwrap_or_default()))
        };
        if !strings(&rule["ids"]).is_empty() {
            matched += 1;
        }
        if theirs != ours {
            disagreements.push(format!("{file}:\n  duckdb:   {theirs}\n  detector: {ours}"));
        }
        found.remove(id);
        windows.remove(id);
    }
    assert!(
        disagreements.is_empty(),
        "{} rule(s) disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // AND the detector alerted on no rule the DuckDB side does not know
    assert!(found.is_empty(), "alerts of unknown rules: {found:?}");
    // AND the comparison is not vacuous: most rules matched something
    eprintln!(
        "CROSS-ENGINE | {} rules compared | {matched} matched | {} activities",
        rules.len(),
        delivered.len()
    );
    assert!(matched * 10 >= rules.len() * 9, "only {matched} of {} rules matched", rules.len());
}
