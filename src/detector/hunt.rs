//! A hunt: the rules over a past range of the archive, findings only (design.md: `{"action":
//! "hunt", "from", "to"}`). How a team tries a new pack on last month before it pages anyone.
//!
//! Whole hours: every activity object of each hour partition that overlaps `[from, to)` is
//! evaluated, oldest hour first, with correlation windows held in memory across the hunt (the
//! live windows in the state table are not touched). Findings go beside the live ones, their key
//! tagged with the hunt's range, so a hunt run twice writes nothing new and never masks a live
//! finding. Nothing is published. A hunt that meets its deadline says where to resume.

use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::{Value, json};

use crate::archive::ObjectSink;
use crate::archive::inflate::Inflater;
use crate::archive::key::partition;
use crate::clock::{Clock, Deadline};
use crate::detect::alert::digest;
use crate::detect::rules::RuleSet;
use crate::detect::session::Session;
use crate::telemetry::MetricsSink;

use super::Detector;
use super::error::DetectorError;
use super::ledger::Ledger;
use super::object::read_error;
use super::publish::Publisher;
use super::report::DetectorReport;

/// An hour is not started with less time than this left.
const HOUR_BUDGET: SignedDuration = SignedDuration::from_secs(20);

impl<R, L, P, M, C> Detector<R, L, P, M, C>
where
    R: ObjectSink,
    L: Ledger,
    P: Publisher,
    M: MetricsSink,
    C: Clock,
{
    pub(crate) async fn hunt(
        &self,
        rules: &RuleSet,
        from: Timestamp,
        to: Timestamp,
        deadline: &Deadline,
        report: &mut DetectorReport,
    ) -> Result<Value, DetectorError> {
        let tag = format!(
            "hunt-{}",
            &digest(&[from.to_string().as_bytes(), to.to_string().as_bytes()])[..12]
        );
        let mut session = Session::new(rules);
        let mut inflater = Inflater::new();
        let mut hour = from
            .round(
                jiff::TimestampRound::new().smallest(jiff::Unit::Hour).mode(jiff::RoundMode::Trunc),
            )
            .unwrap_or(from);
        while hour < to {
            let left =
                SignedDuration::try_from(deadline.remaining(self.clock.now())).unwrap_or_default();
            if left < HOUR_BUDGET {
                return Ok(self.hunt_answer("partial", from, to, Some(hour), &tag, report));
            }
            let prefix = partition(&self.config.output_prefix, hour);
            for key in self.archive.list(&prefix).await? {
                if !key.ends_with(".json.gz") {
                    continue;
                }
                let Some(body) = self.archive.get(&key).await? else { continue };
                let before = session.activities;
                let lines =
                    inflater.lines(&key, &body).map_err(|source| read_error(&key, source))?;
                let alerts = session.evaluate(&key, lines)?;
                report.objects_evaluated += 1;
                report.activities_evaluated += session.activities - before;
                report.matches += alerts.len() as u64;
                if !alerts.is_empty() {
                    report.findings_objects_written +=
                        u64::from(self.record(&key, &alerts, Some(&tag)).await?);
                }
            }
            hour = hour.checked_add(1.hour()).unwrap_or(Timestamp::MAX);
        }
        Ok(self.hunt_answer("complete", from, to, None, &tag, report))
    }

    fn hunt_answer(
        &self,
        status: &str,
        from: Timestamp,
        to: Timestamp,
        resume_from: Option<Timestamp>,
        tag: &str,
        report: &DetectorReport,
    ) -> Value {
        let mut answer = json!({
            "status": status,
            "from": from.to_string(),
            "to": to.to_string(),
            "findings_tag": tag,
            "objects_evaluated": report.objects_evaluated,
            "activities_evaluated": report.activities_evaluated,
            "matches": report.matches,
            "findings_objects_written": report.findings_objects_written,
        });
        if let Some(resume) = resume_from {
            answer["resume_from"] = Value::from(resume.to_string());
        }
        answer
    }
}
