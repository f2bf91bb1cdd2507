//! The public contracts agree with the code: the README's configuration table, template.yaml's
//! environment and parameters, and the metric names its alarms use.

use std::collections::BTreeMap;

use anthropic_compliance_collector::config::VARIABLES;
use anthropic_compliance_collector::detector::config::DETECTOR_VARIABLES;
use anthropic_compliance_collector::detector::report;
use anthropic_compliance_collector::telemetry;
use yaml_rust2::{Yaml, YamlLoader};

fn read(file: &str) -> String {
    std::fs::read_to_string(testkit::workspace_root().join(file)).unwrap()
}

fn template() -> Yaml {
    YamlLoader::load_from_str(&read("template.yaml")).unwrap().remove(0)
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The rows `| `NAME` | required | default | meaning |` of a README table: (name, required, default).
fn table_rows(section: &str) -> Vec<(String, String, String)> {
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').into(), cells[2].into(), cells[3].trim_matches('`').into())
        })
        .collect()
}

/// A function's environment in the template, by variable name.
fn function_env<'t>(t: &'t Yaml, function: &str) -> BTreeMap<String, &'t Yaml> {
    let env = t["Resources"][function]["Properties"]["Environment"]["Variables"].as_hash().unwrap();
    env.iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v)).collect()
}

#[test]
fn readme_configuration_table_matches_the_code() {
    // The rows of the table under "## Configuration": | `NAME` | required | default | meaning |
    let readme = read("README.md");
    let section = readme.split("## Configuration").nth(1).unwrap().split("\n## ").next().unwrap();
    let rows = table_rows(section);
    let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    let code: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
    assert_eq!(names, code, "the README lists the contract's variables in order");
    for (v, (name, required, default)) in VARIABLES.iter().zip(&rows) {
        match v.default {
            None => assert_eq!((required.as_str(), default.as_str()), ("yes", ""), "{name}"),
            Some("") => {
                assert_eq!((required.as_str(), default.as_str()), ("no", "(empty)"), "{name}")
            }
            Some(d) => assert_eq!((required.as_str(), default.as_str()), ("no", d), "{name}"),
        }
    }
}

#[test]
fn template_sets_every_variable_with_the_codes_defaults_and_ranges() {
    let t = template();
    let parameters = t["Parameters"].as_hash().unwrap();
    let env = function_env(&t, "CollectorFunction");
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    let mut code: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
    code.sort_unstable();
    assert_eq!(names, code, "the function's environment is exactly the contract");
    for v in VARIABLES.iter().filter(|v| v.default.is_some()) {
        // `NAME: !Ref Parameter` (the tag is dropped by the loader: the value is the parameter name)
        let parameter =
            env[v.name].as_str().unwrap_or_else(|| panic!("{} is not a plain !Ref", v.name));
        let p = &parameters[&Yaml::String(parameter.into())];
        assert_eq!(scalar(&p["Default"]).as_deref(), v.default, "{} ← {parameter} default", v.name);
        if let Some((min, max)) = v.range {
            assert_eq!(scalar(&p["MinValue"]), Some(min.to_string()), "{parameter} MinValue");
            assert_eq!(scalar(&p["MaxValue"]), Some(max.to_string()), "{parameter} MaxValue");
        }
    }
}

#[test]
fn the_detectors_table_and_environment_match_its_code() {
    // GIVEN the README's table under "### Configuration of the detector"
    let readme = read("README.md");
    let section = readme
        .split("### Configuration of the detector")
        .nth(1)
        .unwrap()
        .split("\n#")
        .next()
        .unwrap();
    let rows = table_rows(section);
    // THEN it lists the code's variables in order, with their defaults
    let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    let code: Vec<&str> = DETECTOR_VARIABLES.iter().map(|v| v.name).collect();
    assert_eq!(names, code);
    for (v, (name, required, default)) in DETECTOR_VARIABLES.iter().zip(&rows) {
        match (v.name, v.default) {
            // Derived from OUTPUT_PREFIX in the code.
            ("CUSTOM_RULES_PREFIX", None) => {
                assert_eq!((required.as_str(), default.as_str()), ("no", "<OUTPUT_PREFIX>_rules/"))
            }
            (_, None) => assert_eq!((required.as_str(), default.as_str()), ("yes", ""), "{name}"),
            (_, Some(d)) => assert_eq!((required.as_str(), default.as_str()), ("no", d), "{name}"),
        }
    }
    // AND the template sets exactly these on the detector, from parameters with the same
    // defaults and ranges
    let t = template();
    let parameters = t["Parameters"].as_hash().unwrap();
    let env = function_env(&t, "DetectorFunction");
    let mut sorted = code.clone();
    sorted.sort_unstable();
    assert_eq!(env.keys().map(String::as_str).collect::<Vec<_>>(), sorted);
    assert_eq!(env["CUSTOM_RULES_PREFIX"].as_str(), Some("${OutputPrefix}_rules/"));
    for v in DETECTOR_VARIABLES.iter().filter(|v| v.default.is_some()) {
        let parameter = env[v.name].as_str().unwrap();
        let p = &parameters[&Yaml::String(parameter.into())];
        assert_eq!(scalar(&p["Default"]).as_deref(), v.default, "{} ← {parameter}", v.name);
        if let Some((min, max)) = v.range {
            assert_eq!(scalar(&p["MinValue"]), Some(min.to_string()), "{parameter} MinValue");
            assert_eq!(scalar(&p["MaxValue"]), Some(max.to_string()), "{parameter} MaxValue");
        }
    }
}

#[test]
fn every_alarm_watches_a_metric_the_code_emits() {
    let emitted = [
        telemetry::EVENTS_PROCESSED,
        telemetry::LAG_SECONDS,
        telemetry::API_THROTTLED,
        telemetry::API_ERRORS,
        telemetry::LATE_ARRIVALS,
        telemetry::COMPLIANCE_LOGGING_DISABLED,
        telemetry::CANARY_MISSING,
        telemetry::LATE_BEYOND_OVERLAP,
        report::DETECTOR_ERRORS,
        report::RULES_INVALID,
        report::ALERTS_PUBLISHED,
    ];
    let t = template();
    let mut custom = 0;
    for (_, resource) in t["Resources"].as_hash().unwrap() {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let p = &resource["Properties"];
        // AWS's own metrics (Lambda errors, the dead-letter queue's depth) are not the code's.
        if p["Namespace"].as_str().is_some_and(|n| n.starts_with("AWS/")) {
            continue;
        }
        let metric = p["MetricName"].as_str().unwrap();
        assert!(emitted.contains(&metric), "alarm on {metric}, which the code never emits");
        // Only EventsProcessed and LagSeconds are put by every run; every other metric only when
        // it counts something, so its silence must read as zero.
        let always = [telemetry::EVENTS_PROCESSED, telemetry::LAG_SECONDS].contains(&metric);
        if !always {
            assert_eq!(
                p["TreatMissingData"].as_str(),
                Some("notBreaching"),
                "{metric} is put only when not zero: missing data is zero"
            );
        }
        let dims = p["Dimensions"].as_vec().unwrap();
        assert_eq!(dims[0]["Name"].as_str(), Some(telemetry::DIMENSION_FUNCTION_NAME));
        custom += 1;
    }
    assert!(custom >= 4, "no events, lag, tamper and canary alarms ({custom})");
    // The dashboard's metric widgets draw only metrics the code puts.
    // `!Sub |` (the tag is dropped by the loader: the value is the body)
    let body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
        .as_str()
        .expect("the dashboard body is one !Sub string");
    for quoted in body.split("\"${MetricNamespace}\", \"").skip(1) {
        let metric = quoted.split('"').next().unwrap();
        assert!(
            emitted.contains(&metric),
            "the dashboard draws {metric}, which the code never puts"
        );
    }
}

#[test]
fn the_deploy_guides_parameter_table_lists_every_template_parameter_with_its_default() {
    // GIVEN the table under "## Parameters" in docs/deploy.md: | `Name` | default | meaning |
    let guide = read("docs/deploy.md");
    let section = guide.split("\n## Parameters").nth(1).unwrap().split("\n## ").next().unwrap();
    let rows = table_rows(section);
    // THEN it lists exactly the template's parameters, each with the template's default
    let t = template();
    let parameters = t["Parameters"].as_hash().unwrap();
    let mut listed: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    listed.sort_unstable();
    let mut declared: Vec<&str> = parameters.keys().map(|k| k.as_str().unwrap()).collect();
    declared.sort_unstable();
    assert_eq!(listed, declared, "docs/deploy.md's parameter table and template.yaml's Parameters");
    // (table_rows reads a three-column table as name, default with its backticks, meaning)
    for (name, default, _) in &rows {
        let default = default.trim_matches('`');
        let p = &parameters[&Yaml::String(name.clone())];
        let expected = scalar(&p["Default"]).unwrap_or_default();
        let expected = if expected.is_empty() { "(empty)".to_owned() } else { expected };
        assert_eq!(default, expected, "{name}'s default in docs/deploy.md");
    }
}
