//! What one detector invocation did: its figures, its log line and its metrics, from one place.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::telemetry::Datum;

pub const ALERTS_PUBLISHED: &str = "AlertsPublished";
pub const DETECTOR_ERRORS: &str = "DetectorErrors";
pub const RULES_INVALID: &str = "RulesInvalid";
pub const DIMENSION_LEVEL: &str = "Level";

/// The figures of one invocation (a batch or a hunt).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DetectorReport {
    pub objects_evaluated: u64,
    pub activities_evaluated: u64,
    /// Every match, published or not: the lines of the findings objects.
    pub matches: u64,
    pub findings_objects_written: u64,
    /// Alerts published, by rule level.
    pub alerts_published: BTreeMap<&'static str, u64>,
    /// Matches on activities older than `ALERT_MAX_AGE_HOURS`: findings only.
    pub alerts_too_old: u64,
    /// Matches whose alert an earlier delivery published already.
    pub alerts_already_published: u64,
    /// Notifications of objects that are not activity objects (manifests, findings, another
    /// bucket), or of objects gone since.
    pub objects_skipped: u64,
    pub errors: u64,
    pub rules_invalid: u64,
}

impl DetectorReport {
    pub fn merge(&mut self, other: &DetectorReport) {
        self.objects_evaluated += other.objects_evaluated;
        self.activities_evaluated += other.activities_evaluated;
        self.matches += other.matches;
        self.findings_objects_written += other.findings_objects_written;
        for (level, n) in &other.alerts_published {
            *self.alerts_published.entry(level).or_default() += n;
        }
        self.alerts_too_old += other.alerts_too_old;
        self.alerts_already_published += other.alerts_already_published;
        self.objects_skipped += other.objects_skipped;
        self.errors += other.errors;
        self.rules_invalid = self.rules_invalid.max(other.rules_invalid);
    }

    /// The invocation's metrics, each only when it counts something: CloudWatch bills a custom
    /// metric for every hour it is put in, and the alarms on `DetectorErrors` and `RulesInvalid`
    /// treat missing data as zero. `AlertsPublished` once per level that published.
    pub fn metrics(&self) -> Vec<Datum> {
        let mut data: Vec<Datum> =
            [(DETECTOR_ERRORS, self.errors), (RULES_INVALID, self.rules_invalid)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| Datum::count(name, n as f64))
                .collect();
        for (level, n) in &self.alerts_published {
            data.push(Datum {
                dimensions: vec![(DIMENSION_LEVEL, *level)],
                ..Datum::count(ALERTS_PUBLISHED, *n as f64)
            });
        }
        data
    }

    pub fn published(&self) -> u64 {
        self.alerts_published.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_each_level_that_published() {
        // GIVEN two high alerts and one low, and an error
        let mut report = DetectorReport { errors: 1, ..DetectorReport::default() };
        report.merge(&DetectorReport {
            alerts_published: [("high", 2), ("low", 1)].into_iter().collect(),
            ..DetectorReport::default()
        });
        // THEN one datum per level plus the error count; a zero health figure is not sent
        let data = report.metrics();
        let by: Vec<_> = data.iter().map(|d| (d.name, d.value, d.dimensions.clone())).collect();
        assert_eq!(
            by,
            [
                (DETECTOR_ERRORS, 1.0, vec![]),
                (ALERTS_PUBLISHED, 2.0, vec![(DIMENSION_LEVEL, "high")]),
                (ALERTS_PUBLISHED, 1.0, vec![(DIMENSION_LEVEL, "low")]),
            ]
        );
        assert_eq!(report.published(), 3);
    }

    #[test]
    fn a_quiet_healthy_invocation_sends_no_metric() {
        // GIVEN nothing published, no error, every rule loaded
        let report = DetectorReport::default();
        // THEN nothing is billed: the alarms read silence as healthy
        assert!(report.metrics().is_empty());
    }
}
