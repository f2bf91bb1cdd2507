//! The detector function (binary `anthropic-compliance-detector`): the shell around the pure
//! detection core of [`crate::detect`], on the same ports as the collector (the archive, the
//! state table, metrics, the clock) plus its own two ([`ledger::Ledger`] for alert records and
//! correlation windows, [`publish::Publisher`] for the alert topic).
//!
//! One file a job: [`config`] (its environment), [`event`] (what it is invoked with),
//! [`rules_cache`] (shipped and custom rules), [`object`] (one object: evaluate, correlate,
//! record, publish), [`hunt`] (a past range, findings only), [`report`] (figures, log line,
//! metrics), [`error`], and the adapters [`sns`] and [`dynamodb`].

pub mod cli;
pub mod config;
pub mod dynamodb;
pub mod error;
pub mod event;
pub mod hunt;
pub mod ledger;
pub mod object;
pub mod publish;
pub mod report;
pub mod rules_cache;
pub mod sns;
#[cfg(test)]
mod tests;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::archive::ObjectSink;
use crate::clock::{Clock, Deadline};
use crate::error::error_chain;
use crate::telemetry::MetricsSink;

use config::DetectorConfig;
use error::DetectorError;
use event::{DetectorInvocation, Message};
use ledger::Ledger;
use publish::Publisher;
use report::DetectorReport;
use rules_cache::RulesCache;

/// An object is not started with less time than this left (it is retried instead).
const OBJECT_BUDGET: SignedDuration = SignedDuration::from_secs(15);
/// A claim holds this long past the invocation's deadline.
const LEASE_SPARE: SignedDuration = SignedDuration::from_secs(30);

pub struct Detector<R, L, P, M, C> {
    pub config: DetectorConfig,
    pub archive: R,
    pub ledger: L,
    pub publisher: P,
    pub metrics: M,
    pub clock: C,
    pub rules: RulesCache,
}

impl<R, L, P, M, C> Detector<R, L, P, M, C>
where
    R: ObjectSink,
    L: Ledger,
    P: Publisher,
    M: MetricsSink,
    C: Clock,
{
    /// Handles one invocation due by `deadline`: an SQS batch (answered with the messages to
    /// retry) or a hunt (answered with its summary).
    pub async fn handle(
        &self,
        payload: &Value,
        deadline: Timestamp,
    ) -> Result<Value, DetectorError> {
        let invocation = DetectorInvocation::from_payload(payload)?;
        let now = self.clock.now();
        let deadline = Deadline::new(now, deadline);
        let (loaded, rules_unreadable) = self
            .rules
            .get(&self.archive, &self.config.packs, &self.config.custom_rules_prefix, now)
            .await;
        let mut report = DetectorReport {
            rules_invalid: loaded.invalid.len() as u64,
            errors: u64::from(rules_unreadable),
            ..DetectorReport::default()
        };
        let answer = match invocation {
            DetectorInvocation::Batch(messages) => {
                let lease_until = deadline.hard + LEASE_SPARE;
                let failed =
                    self.batch(&loaded.rules, &messages, &deadline, lease_until, &mut report).await;
                match failed {
                    Ok(failed) => Ok(json!({
                        "batchItemFailures": failed
                            .iter()
                            .map(|id| json!({ "itemIdentifier": id }))
                            .collect::<Vec<_>>()
                    })),
                    Err(e) => Err(e),
                }
            }
            DetectorInvocation::Hunt { from, to } => {
                let hunted = self.hunt(&loaded.rules, from, to, &deadline, &mut report).await;
                report.errors += u64::from(hunted.is_err());
                hunted
            }
        };
        self.emit(&report).await;
        answer
    }

    /// Every message of the batch; the ids of those to retry. A message whose body is no S3
    /// notification fails too, so it reaches the dead-letter queue and its alarm.
    async fn batch(
        &self,
        rules: &crate::detect::rules::RuleSet,
        messages: &[Message],
        deadline: &Deadline,
        lease_until: Timestamp,
        report: &mut DetectorReport,
    ) -> Result<Vec<String>, DetectorError> {
        let mut failed = Vec::new();
        for message in messages {
            let outcome = match &message.objects {
                Err(e) => Err(DetectorError::Body(e.clone())),
                Ok(objects) => self.message(rules, objects, deadline, lease_until, report).await,
            };
            if let Err(e) = outcome {
                report.errors += 1;
                if message.message_id.is_empty() {
                    // Invoked by hand with an S3 event: the invocation itself fails.
                    return Err(e);
                }
                tracing::error!(message_id = message.message_id, error_type = e.error_type(), error = %error_chain(&e), "message failed; it will be retried");
                failed.push(message.message_id.clone());
            }
        }
        Ok(failed)
    }

    async fn message(
        &self,
        rules: &crate::detect::rules::RuleSet,
        objects: &[event::ObjectRef],
        deadline: &Deadline,
        lease_until: Timestamp,
        report: &mut DetectorReport,
    ) -> Result<(), DetectorError> {
        for object in objects {
            if !self.is_activity_object(&object.bucket, &object.key) {
                tracing::debug!(
                    bucket = object.bucket,
                    key = object.key,
                    "not an activity object; ignored"
                );
                report.objects_skipped += 1;
                continue;
            }
            let left = deadline.remaining(self.clock.now());
            if SignedDuration::try_from(left).unwrap_or_default() < OBJECT_BUDGET {
                return Err(DetectorError::DeadlineExceeded { what: object.key.clone() });
            }
            let done = self.detect_object(rules, &object.key, lease_until).await?;
            report.merge(&done);
        }
        Ok(())
    }

    /// Activity objects only: the configured bucket, under `<prefix>year=`, gzip NDJSON.
    fn is_activity_object(&self, bucket: &str, key: &str) -> bool {
        bucket == self.config.output_bucket
            && key
                .strip_prefix(&self.config.output_prefix)
                .is_some_and(|rest| rest.starts_with("year=") && rest.ends_with(".json.gz"))
    }

    /// The invocation's log line and metrics. A metrics failure is logged, never fatal: the
    /// alerts are out and the findings written, and a retry would change neither.
    async fn emit(&self, report: &DetectorReport) {
        tracing::info!(
            objects = report.objects_evaluated,
            activities = report.activities_evaluated,
            matches = report.matches,
            published = report.published(),
            too_old = report.alerts_too_old,
            already_published = report.alerts_already_published,
            skipped = report.objects_skipped,
            errors = report.errors,
            rules_invalid = report.rules_invalid,
            "detector invocation done"
        );
        if let Err(e) = self.metrics.put(&report.metrics()).await {
            tracing::error!(error = %error_chain(&e), "cannot put the detector's metrics");
        }
    }
}
