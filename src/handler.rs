//! One invocation, end to end: payload → key → run → metrics → summary or error.
//!
//! [`Collector`] holds what lives across warm invocations (clients, the key cache) and is
//! generic over the ports, so the same code runs against AWS in Lambda and against fakes in
//! tests. The handler is the only place that asks the clock for "now" on behalf of a run.

use std::time::Instant;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::archive::ObjectSink;
use crate::clock::{Clock, Deadline};
use crate::config::Config;
use crate::error::RunError;
use crate::feed::http::HttpClient;
use crate::feed::{FeedError, PAGE_LIMIT};
use crate::invocation::Invocation;
use crate::secrets::{KeyCache, SecretSource};
use crate::state::StateStore;
use crate::sync::{self, Horizons, RunReport, Settings, SyncError};
use crate::telemetry::{MetricsSink, run_metrics};

pub struct Collector<Src, Snk, Sto, Met, C> {
    pub config: Config,
    pub secrets: Src,
    pub keys: KeyCache,
    pub http: HttpClient<C>,
    pub sink: Snk,
    pub store: Sto,
    pub metrics: Met,
    pub clock: C,
}

/// The invocation's result: the report and what names the run.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub status: &'static str,
    pub run_id: String,
    #[serde(flatten)]
    pub report: RunReport,
    pub duration_ms: u64,
}

impl<Src, Snk, Sto, Met, C> Collector<Src, Snk, Sto, Met, C>
where
    Src: SecretSource,
    Snk: ObjectSink,
    Sto: StateStore,
    Met: MetricsSink,
    C: Clock,
{
    /// Handles one invocation that must be done by `invocation_deadline`.
    pub async fn handle(
        &self,
        payload: &Value,
        invocation_deadline: Timestamp,
        run_id: &str,
    ) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let Invocation::Collect = Invocation::from_payload(payload)?;
        let deadline = Deadline::new(self.clock.now(), invocation_deadline);
        let key = self.keys.get(&self.secrets, self.clock.now()).await?;
        let feed = self.http.with_key(&key);
        let settings = Settings {
            horizons: Horizons {
                settle: self.config.settle,
                overlap: self.config.overlap,
                initial_lookback: self.config.initial_lookback,
            },
            organization_ids: self.config.organization_ids.clone(),
            output_prefix: self.config.output_prefix.clone(),
            run_id: run_id.to_owned(),
            page_limit: PAGE_LIMIT,
        };
        let outcome = sync::run(
            &feed,
            &self.sink,
            &self.store,
            &self.clock,
            deadline,
            &settings,
        )
        .await;
        let (report, failure) = match outcome {
            Ok(report) => (report, None),
            Err(f) => (f.report, Some(f.error)),
        };
        if matches!(
            failure,
            Some(SyncError::Feed(FeedError::Unauthorized { .. }))
        ) {
            // The key may have been rotated: read the secret again next time.
            self.keys.invalidate();
        }
        let metrics = self.metrics.put(&run_metrics(&report)).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let summary = RunSummary {
            status: "ok",
            run_id: run_id.to_owned(),
            report,
            duration_ms,
        };
        log_run(&summary, failure.as_ref());
        if let Some(error) = failure {
            if let Err(e) = metrics {
                tracing::error!(error = %crate::feed::http::error_chain(&e), "metrics not recorded");
            }
            return Err(error.into());
        }
        metrics?;
        Ok(summary)
    }
}

/// The run's one log line, with every figure of the summary as a field.
fn log_run(summary: &RunSummary, failure: Option<&SyncError>) {
    let r = &summary.report;
    let fields = serde_json::to_string(summary).unwrap_or_default();
    match failure {
        None => tracing::info!(
            run_id = %summary.run_id,
            delivered = r.delivered,
            duplicates_dropped = r.duplicates_dropped,
            objects_written = r.objects_written,
            pages = r.pages,
            requests = r.requests,
            stop_reason = ?r.stop_reason,
            watermark = ?r.watermark.map(|w| w.to_string()),
            duration_ms = summary.duration_ms,
            summary = %fields,
            "run finished"
        ),
        Some(e) => tracing::error!(
            run_id = %summary.run_id,
            delivered = r.delivered,
            error = %crate::feed::http::error_chain(e),
            summary = %fields,
            "run failed"
        ),
    }
}
