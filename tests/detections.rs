//! The shipped detection packs, judged by their own test cases (`detections/<pack>/<rule>.tests.ndjson`).
//!
//! Every line of a rule's test file is a case `{"case", "expect", "activities"}`. For a detection
//! rule, `expect` is the number of the case's activities the rule matches (whether it alerts on
//! its own or only feeds a correlation); for a correlation, the number of alerts it raises. The
//! case runs through the detector's own engine with every shipped rule loaded, the way the
//! function loads them, and a correlation's case twice: as one object, and as one object per
//! activity, so a window that spans objects is counted across them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anthropic_compliance_collector::detect::packs::{self, DESIGN_PACKS, PackSelection};
use anthropic_compliance_collector::detect::rules::{RuleMeta, RuleSet};
use anthropic_compliance_collector::detect::session::Session;
use serde_json::Value;

fn detections_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("detections")
}

fn shipped_rules() -> RuleSet {
    let files = packs::shipped(&PackSelection::All);
    let (rules, errors) = RuleSet::load(packs::sources(&files));
    assert!(errors.is_empty(), "shipped rules that do not load: {errors:#?}");
    rules
}

struct Case {
    file: String,
    name: String,
    expect: u64,
    activities: Vec<Value>,
}

fn cases_of(meta: &RuleMeta) -> Vec<Case> {
    let stem = meta.file.strip_suffix(".yml").unwrap_or(&meta.file);
    let path = detections_dir().join(format!("{stem}.tests.ndjson"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: rule without test cases ({e})", meta.file));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let case: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON: {e}", path.display(), n + 1));
            Case {
                file: format!("{stem}.tests.ndjson:{}", n + 1),
                name: case["case"].as_str().unwrap_or_default().to_owned(),
                expect: case["expect"].as_u64().expect("expect is a count"),
                activities: case["activities"].as_array().expect("activities is an array").clone(),
            }
        })
        .collect()
}

fn ndjson(activities: &[Value]) -> String {
    activities.iter().map(|a| format!("{a}\n")).collect()
}

/// The correlation alerts of `id` when the activities arrive in the given objects.
fn correlation_alerts(rules: &RuleSet, id: &str, objects: &[Vec<Value>]) -> u64 {
    let mut session = Session::new(rules);
    let mut count = 0;
    for (n, object) in objects.iter().enumerate() {
        let alerts = session.evaluate(&format!("case/object-{n}.json"), ndjson(object).as_bytes());
        count += alerts.expect("case evaluates").iter().filter(|a| a.rule.id == id).count() as u64;
    }
    count
}

#[test]
fn every_rule_meets_its_own_cases() {
    // GIVEN every shipped rule and its cases
    let rules = shipped_rules();
    let correlations: BTreeSet<&str> =
        rules.correlations().iter().map(|c| c.meta.id.as_str()).collect();
    let mut failures = Vec::new();
    let mut ran = 0;
    for meta in rules.metas() {
        let cases = cases_of(meta);
        // THEN each rule has a case that must match and a near miss that must not
        assert!(cases.iter().any(|c| c.expect > 0), "{}: no case that must match", meta.file);
        assert!(cases.iter().any(|c| c.expect == 0), "{}: no near-miss case", meta.file);
        for case in cases {
            ran += 1;
            let mut got = Vec::new();
            if correlations.contains(meta.id.as_str()) {
                got.push(correlation_alerts(
                    &rules,
                    &meta.id,
                    std::slice::from_ref(&case.activities),
                ));
                let one_each: Vec<_> = case.activities.iter().map(|a| vec![a.clone()]).collect();
                got.push(correlation_alerts(&rules, &meta.id, &one_each));
            } else {
                let matched = case
                    .activities
                    .iter()
                    .filter(|a| rules.matching_rule_ids(a).contains(&meta.id))
                    .count();
                got.push(matched as u64);
            }
            if got.iter().any(|g| *g != case.expect) {
                failures.push(format!(
                    "{} ({}): expected {}, got {got:?}",
                    case.file, case.name, case.expect
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_packs_are_the_designs_with_enough_rules() {
    // GIVEN the shipped rules
    let rules = shipped_rules();
    let packs: BTreeSet<&str> = rules.metas().map(|m| m.pack.as_str()).collect();
    // THEN every pack of the design ships rules, and at least 45 rules in all
    assert_eq!(packs, DESIGN_PACKS.into_iter().collect::<BTreeSet<_>>());
    assert!(rules.len() >= 45, "{} rules", rules.len());
    // AND every rule says what it is: a level Sigma knows and ATT&CK tags
    for meta in rules.metas() {
        assert!(
            ["informational", "low", "medium", "high", "critical"].contains(&meta.level),
            "{}: level {}",
            meta.file,
            meta.level
        );
        assert!(meta.tags.iter().any(|t| t.starts_with("attack.")), "{}: no ATT&CK tag", meta.file);
    }
}

#[test]
fn a_case_file_belongs_to_a_rule() {
    // GIVEN every test file under detections/ THEN a rule of the same name sits beside it
    for pack in DESIGN_PACKS {
        for entry in std::fs::read_dir(detections_dir().join(pack)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".tests.ndjson") {
                assert!(
                    path.with_file_name(format!("{stem}.yml")).exists(),
                    "{pack}/{name}: no rule"
                );
            }
        }
    }
}

#[test]
fn only_the_correlation_feeders_named_here_stay_silent() {
    // GIVEN the shipped rules THEN the rules that raise no alert of their own are exactly the
    // per-email, per-user and content-access feeders (a single failed SSO sign-in and a single
    // Anthropic access alert on their own: managed packs alert on both)
    let rules = shipped_rules();
    let mut silent: Vec<&str> =
        rules.silent().map(|m| m.file.rsplit('/').next().unwrap_or_default()).collect();
    silent.sort();
    assert_eq!(
        silent,
        ["content_access_failed.yml", "key_created_by_user.yml", "sso_login_failed_for_email.yml"]
    );
}

#[test]
fn the_type_prefilter_never_hides_a_match_and_skips_the_rest() {
    // GIVEN every shipped rule, and every activity of every case file
    let rules = shipped_rules();
    // THEN every shipped rule names the activity types it is about (so the detector can skip
    // the others without building them)
    let types = rules.types().unwrap_or_else(|| {
        panic!("rules that may match any type turn the prefilter off: {:?}", rules.unbound_rules())
    });
    let mut activities = Vec::new();
    for meta in rules.metas() {
        activities.extend(cases_of(meta).into_iter().flat_map(|c| c.activities));
    }
    // AND no activity that some rule matches is skipped, whatever the case of its type
    let mut matched = 0;
    for a in &activities {
        let line = a.to_string();
        if !rules.matching_rule_ids(a).is_empty() {
            matched += 1;
            assert!(rules.may_match(line.as_bytes()), "skipped a match: {line}");
            let shouted = line.replacen(
                &format!("\"type\":{}", a["type"]),
                &format!("\"type\":{}", a["type"].to_string().to_uppercase()),
                1,
            );
            assert!(rules.may_match(shouted.as_bytes()), "skipped a match: {shouted}");
        }
    }
    assert!(matched > 45, "{matched} matching activities");
    // AND a type no rule is about is skipped, while a line without a type is evaluated
    assert!(!types.contains("chat_created"));
    assert!(
        !rules
            .may_match(br#"{"id":"a","created_at":"2026-01-01T00:00:00Z","type":"chat_created"}"#)
    );
    assert!(rules.may_match(br#"{"id":"a","created_at":"2026-01-01T00:00:00Z"}"#));
}
