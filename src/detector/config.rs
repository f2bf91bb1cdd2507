//! The detector's configuration contract (design.md, "Detections (contract)"): Lambda environment
//! → one validated [`DetectorConfig`], every problem collected before any I/O, like the
//! collector's [`crate::config`] (whose parser it shares).

use std::time::Duration;

use crate::config::{ConfigError, Variable, number, text};
use crate::detect::packs::PackSelection;

/// `ALERT_MAX_AGE_HOURS`: 0 publishes nothing (findings only), at most a year.
const MAX_AGE_RANGE: (u64, u64) = (0, 8_760);

/// Every variable of the detector's contract, in the README's order.
pub const DETECTOR_VARIABLES: &[Variable] = &[
    text("OUTPUT_BUCKET", None),
    text("OUTPUT_PREFIX", Some("anthropic/activity/")),
    text("STATE_TABLE", None),
    text("ALERT_TOPIC_ARN", None),
    text("DETECTION_PACKS", Some("all")),
    // Default: `<OUTPUT_PREFIX>_rules/`, derived below.
    text("CUSTOM_RULES_PREFIX", None),
    number("ALERT_MAX_AGE_HOURS", "24", MAX_AGE_RANGE),
    text("METRIC_NAMESPACE", Some("AnthropicCompliance")),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorConfig {
    pub output_bucket: String,
    pub output_prefix: String,
    pub state_table: String,
    pub alert_topic_arn: String,
    pub packs: PackSelection,
    pub custom_rules_prefix: String,
    pub alert_max_age: Duration,
    pub metric_namespace: String,
}

impl DetectorConfig {
    pub fn from_env() -> Result<DetectorConfig, ConfigError> {
        DetectorConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<DetectorConfig, ConfigError> {
        let mut p = crate::config::Parser::new(lookup, DETECTOR_VARIABLES);
        let output_bucket = p.bucket("OUTPUT_BUCKET");
        let output_prefix = p.prefix("OUTPUT_PREFIX");
        let state_table = p.required("STATE_TABLE");
        let alert_topic_arn = p.required("ALERT_TOPIC_ARN");
        if !alert_topic_arn.is_empty() && !alert_topic_arn.starts_with("arn:") {
            p.problem(
                "ALERT_TOPIC_ARN",
                format!("must be an SNS topic ARN, got {alert_topic_arn:?}"),
            );
        }
        let packs = match PackSelection::parse(&p.raw("DETECTION_PACKS").unwrap_or_default()) {
            Ok(packs) => packs,
            Err(e) => {
                p.problem("DETECTION_PACKS", e.to_string());
                PackSelection::All
            }
        };
        let mut custom_rules_prefix =
            p.raw("CUSTOM_RULES_PREFIX").unwrap_or_else(|| format!("{output_prefix}_rules/"));
        if !custom_rules_prefix.ends_with('/') {
            custom_rules_prefix.push('/');
        }
        if custom_rules_prefix.starts_with('/') {
            p.problem(
                "CUSTOM_RULES_PREFIX",
                "must not start with '/' (S3 keys have no leading slash)",
            );
        }
        let max_age_hours = p.number("ALERT_MAX_AGE_HOURS", MAX_AGE_RANGE);
        let metric_namespace = p.namespace("METRIC_NAMESPACE");
        if !p.problems.is_empty() {
            return Err(ConfigError { problems: p.problems });
        }
        Ok(DetectorConfig {
            output_bucket,
            output_prefix,
            state_table,
            alert_topic_arn,
            packs,
            custom_rules_prefix,
            alert_max_age: Duration::from_secs(3600 * max_age_hours),
            metric_namespace,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<DetectorConfig, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        DetectorConfig::from_lookup(|name| vars.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("OUTPUT_BUCKET", "archive"),
        ("STATE_TABLE", "state"),
        ("ALERT_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:alerts"),
    ];

    #[test]
    fn defaults_follow_the_contract() {
        // GIVEN only the required variables WHEN parsed THEN the design's defaults hold
        let c = config(&REQUIRED).unwrap();
        assert_eq!(c.output_prefix, "anthropic/activity/");
        assert_eq!(c.custom_rules_prefix, "anthropic/activity/_rules/");
        assert_eq!(c.packs, PackSelection::All);
        assert_eq!(c.alert_max_age, Duration::from_secs(24 * 3600));
        assert_eq!(c.metric_namespace, "AnthropicCompliance");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        // GIVEN no topic, a pack typo and a bad age
        let c = config(&[
            ("OUTPUT_BUCKET", "archive"),
            ("STATE_TABLE", "state"),
            ("DETECTION_PACKS", "identity,postrue"),
            ("ALERT_MAX_AGE_HOURS", "soon"),
        ]);
        // THEN all three are named
        let named: Vec<_> = c.unwrap_err().problems.iter().map(|p| p.variable).collect();
        assert_eq!(named, ["ALERT_TOPIC_ARN", "DETECTION_PACKS", "ALERT_MAX_AGE_HOURS"]);
    }

    #[test]
    fn the_rules_prefix_follows_the_output_prefix() {
        // GIVEN another output prefix and no rules prefix THEN the rules live under it
        let mut vars = REQUIRED.to_vec();
        vars.push(("OUTPUT_PREFIX", "audit/claude"));
        assert_eq!(config(&vars).unwrap().custom_rules_prefix, "audit/claude/_rules/");
    }
}
