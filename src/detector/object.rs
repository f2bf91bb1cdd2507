//! One activity object through the detector: read back, evaluated, its correlations advanced in
//! the state table, its matches written as findings, its fresh alerts published once.
//!
//! The order is what makes the guarantees (design.md, "Detections (contract)"):
//! 1. correlation groups are committed first, each with the windows this object fired, so a
//!    redelivery finds them again ([`GroupState::fired_by`]) instead of losing them;
//! 2. the findings object (deterministic key, written only if absent) holds every match before
//!    any is published: a publish that fails loses no match;
//! 3. each fresh alert is claimed, published, then marked, so it is published once unless the
//!    function dies between publish and mark.

use jiff::{SignedDuration, Timestamp};

use crate::archive::inflate::Inflater;
use crate::archive::{ObjectSink, PutOutcome};
use crate::clock::Clock;
use crate::detect::alert::Alert;
use crate::detect::correlation::{GroupState, advance, group_hash};
use crate::detect::evaluate::{Evaluation, Pending};
use crate::detect::findings::{self, findings_key};
use crate::detect::rules::RuleSet;
use crate::telemetry::MetricsSink;

use super::Detector;
use super::error::DetectorError;
use super::ledger::{Claim, Ledger, group_key};
use super::publish::{AlertMessage, Publisher};
use super::report::DetectorReport;

/// A group's commit is retried this often when a concurrent delivery commits it first.
const COMMIT_ATTEMPTS: u32 = 5;
/// Alert records outlive any redelivery: SQS keeps a message 4 days by default, 14 at most.
pub const ALERT_RECORD_DAYS: i64 = 15;
/// A correlation group's item outlives its window by this much.
pub const GROUP_RECORD_DAYS: i64 = 8;

impl<R, L, P, M, C> Detector<R, L, P, M, C>
where
    R: ObjectSink,
    L: Ledger,
    P: Publisher,
    M: MetricsSink,
    C: Clock,
{
    /// Detects over the object `key`; `lease_until` bounds how long its claims hold.
    pub async fn detect_object(
        &self,
        rules: &RuleSet,
        key: &str,
        lease_until: Timestamp,
    ) -> Result<DetectorReport, DetectorError> {
        let mut report = DetectorReport::default();
        let Some(body) = self.archive.get(key).await? else {
            tracing::warn!(key, "the object announced is gone; nothing to evaluate");
            report.objects_skipped += 1;
            return Ok(report);
        };
        let mut evaluation = Evaluation::default();
        {
            let mut inflater = Inflater::new();
            let lines = inflater.lines(key, &body).map_err(|source| read_error(key, source))?;
            rules.evaluate_object(key, lines, &mut evaluation)?;
        }
        drop(body);
        report.objects_evaluated = 1;
        report.activities_evaluated = evaluation.activities;
        let mut alerts = std::mem::take(&mut evaluation.alerts);
        for ((index, group), pending) in &evaluation.pending {
            alerts.extend(self.correlate(rules, *index, group, pending, key).await?);
        }
        report.matches = alerts.len() as u64;
        if alerts.is_empty() {
            return Ok(report);
        }
        report.findings_objects_written = u64::from(self.record(key, &alerts, None).await?);
        for alert in &alerts {
            self.publish_once(alert, lease_until, &mut report).await?;
        }
        Ok(report)
    }

    /// Advances one correlation group with this object's entries; the alerts of the windows this
    /// object fired, now or in an earlier delivery.
    async fn correlate(
        &self,
        rules: &RuleSet,
        index: usize,
        group: &str,
        pending: &Pending,
        object_key: &str,
    ) -> Result<Vec<Alert>, DetectorError> {
        let correlation = &rules.correlations()[index];
        let item = group_key(&correlation.meta.id, &group_hash(group));
        for _ in 0..COMMIT_ATTEMPTS {
            let loaded = self.ledger.load_group(&item).await?;
            let (state, version) = match loaded {
                Some(v) => (v.state, Some(v.version)),
                None => (GroupState::default(), None),
            };
            let (next, _) = advance(correlation, &state, &pending.entries);
            if next != state {
                let newest = next.newest().unwrap_or_default();
                let expires_at = Timestamp::from_second(newest)
                    .unwrap_or(Timestamp::UNIX_EPOCH)
                    .max(self.clock.now())
                    + SignedDuration::from_secs(correlation.timespan_seconds)
                    + SignedDuration::from_hours(24 * GROUP_RECORD_DAYS);
                match self.ledger.commit_group(&item, &next, version, expires_at).await {
                    Ok(_) => {}
                    Err(super::ledger::LedgerError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(next
                .fired_by(object_key)
                .map(|fired| rules.correlation_alert(index, pending, fired))
                .collect());
        }
        Err(DetectorError::Contended { key: item, attempts: COMMIT_ATTEMPTS })
    }

    /// Writes the findings object of `source_key` (if absent); whether it was created.
    pub(crate) async fn record(
        &self,
        source_key: &str,
        alerts: &[Alert],
        tag: Option<&str>,
    ) -> Result<bool, DetectorError> {
        let earliest = alerts.iter().map(|a| a.last_seen_at).min().unwrap_or(Timestamp::UNIX_EPOCH);
        let mut key = findings_key(&self.config.output_prefix, source_key, earliest);
        if let Some(tag) = tag {
            key = format!("{}_{tag}.json.gz", key.trim_end_matches(".json.gz"));
        }
        let body = findings::encode(alerts)?;
        let outcome = self.archive.put_marker(&key, body, "application/gzip").await?;
        tracing::info!(
            key,
            matches = alerts.len(),
            created = outcome == PutOutcome::Created,
            "findings recorded"
        );
        Ok(outcome == PutOutcome::Created)
    }

    /// Publishes `alert` unless it is too old or published before.
    async fn publish_once(
        &self,
        alert: &Alert,
        lease_until: Timestamp,
        report: &mut DetectorReport,
    ) -> Result<(), DetectorError> {
        let now = self.clock.now();
        let max_age =
            SignedDuration::try_from(self.config.alert_max_age).unwrap_or(SignedDuration::MAX);
        if now.duration_since(alert.last_seen_at) > max_age {
            report.alerts_too_old += 1;
            return Ok(());
        }
        let expires_at = now + SignedDuration::from_hours(24 * ALERT_RECORD_DAYS);
        match self.ledger.claim(&alert.alert_id, now, lease_until, expires_at).await? {
            Claim::Published => {
                report.alerts_already_published += 1;
                Ok(())
            }
            Claim::Held => Err(DetectorError::AlertHeld { alert_id: alert.alert_id.clone() }),
            Claim::Claimed => {
                let message = AlertMessage::of(alert).map_err(|source| {
                    DetectorError::Serialize { alert_id: alert.alert_id.clone(), source }
                })?;
                let message_id = self.publisher.publish(&message).await?;
                self.ledger.mark_published(&alert.alert_id, &message_id, expires_at).await?;
                tracing::info!(
                    alert_id = alert.alert_id,
                    rule = alert.rule.id,
                    level = alert.rule.level,
                    message_id,
                    "alert published"
                );
                *report.alerts_published.entry(alert.rule.level).or_default() += 1;
                Ok(())
            }
        }
    }
}

/// An object that could not be decompressed, as the evaluation reports it.
pub fn read_error(key: &str, source: std::io::Error) -> crate::detect::evaluate::EvaluateError {
    crate::detect::evaluate::EvaluateError::Read { object_key: key.to_owned(), source }
}
