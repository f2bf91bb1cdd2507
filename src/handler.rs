//! One invocation, end to end: payload → key → run → manifest → metrics and log line → summary or
//! error.
//!
//! [`Collector`] holds what lives across warm invocations (clients, the key cache) and is generic
//! over the ports, the feed's included ([`FeedClient`]), so the same code runs against AWS and the
//! API in Lambda and against in-memory fakes in its tests. The handler is the only place that asks
//! the clock for "now" on behalf of a run. What it decides is elsewhere: a run's transitions in
//! [`crate::sync`], a backfill's parts and ledger claim in [`crate::sync::backfill`], which errors
//! need a human in [`RunError::needs_operator`].
//!
//! Invariants: a run that fails for a human reason writes no manifest; every run that had a key
//! puts its metrics, and a run without one puts zero metrics, so the alarms stay fed; a failed
//! run fails the invocation even when its manifest or metrics failed too (both are logged).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::archive::ObjectSink;
use crate::clock::{Clock, Deadline};
use crate::config::Config;
use crate::error::RunError;
use crate::feed::{FeedClient, FeedError, PAGE_LIMIT};
use crate::invocation::{Action, Invocation, InvocationError};
use crate::secrets::{ApiKey, KeyCache, SecretSource};
use crate::state::{LIVE_STREAM, StateStore, backfill_stream};
use crate::sync::backfill::{self, Claim};
use crate::sync::{self, Horizons, Mode, RunReport, Settings, SyncError};
use crate::telemetry::{MetricsSink, RunFinished, run_metrics};
use manifest::{Context, Manifest, manifest_key};

pub mod manifest;
#[cfg(test)]
mod tests;
pub mod verify;

/// Kept between the last possible answer and the invocation's deadline.
const ANSWER_SPARE: Duration = Duration::from_millis(500);

pub struct Collector<Fc, Src, Snk, Sto, Met, C> {
    pub config: Config,
    pub identity: Identity,
    pub secrets: Src,
    pub keys: KeyCache,
    /// The feed's client, built once; each run borrows it with the key it read.
    pub feed: Fc,
    pub sink: Snk,
    pub store: Sto,
    pub metrics: Met,
    pub clock: C,
}

/// The function as Lambda names it, for manifests and metrics.
#[derive(Debug, Clone)]
pub struct Identity {
    pub function_name: String,
    pub function_version: String,
}

/// The invocation's result: the report and what names the run.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub status: &'static str,
    pub run_id: String,
    pub stream: String,
    #[serde(flatten)]
    pub report: RunReport,
    pub manifest_key: Option<String>,
    pub duration_ms: u64,
}

/// What one collecting run is: live or a backfill, and where its state and objects go.
struct Plan {
    mode: Mode,
    stream: String,
    object_tag: Option<String>,
    dry_run: bool,
}

/// A backfill as asked for: the range, and whether it redelivers on purpose.
struct BackfillAsk {
    from: Timestamp,
    to: Timestamp,
    redeliver: bool,
    dry_run: bool,
}

impl<Fc, Src, Snk, Sto, Met, C> Collector<Fc, Src, Snk, Sto, Met, C>
where
    Fc: FeedClient,
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
    ) -> Result<Value, RunError> {
        let invocation = Invocation::from_payload(payload)?;
        let now = self.clock.now();
        let deadline = Deadline::new(now, invocation_deadline);
        // Every AWS and API call is bounded on its own; this bounds them all together, so a call
        // that hangs near the end gets an answer out before Lambda kills the process.
        let answer_by = Duration::try_from(invocation_deadline.duration_since(now))
            .unwrap_or_default()
            .saturating_sub(ANSWER_SPARE);
        match tokio::time::timeout(answer_by, self.act(invocation, deadline, run_id)).await {
            Ok(answer) => answer,
            Err(_) => Err(RunError::DeadlineExceeded),
        }
    }

    async fn act(
        &self,
        invocation: Invocation,
        deadline: Deadline,
        run_id: &str,
    ) -> Result<Value, RunError> {
        let dry_run = invocation.dry_run;
        let summary = match invocation.action {
            Action::Verify => {
                let report = self.verify(deadline, run_id, dry_run).await;
                return Ok(serde_json::to_value(report).unwrap_or(Value::Null));
            }
            Action::Collect => {
                let stream = LIVE_STREAM.to_owned();
                let plan = Plan { mode: Mode::Live, stream, object_tag: None, dry_run };
                self.collect(&plan, deadline, run_id).await?
            }
            Action::Backfill { from, to, redeliver } => {
                let ask = BackfillAsk { from, to, redeliver, dry_run };
                self.backfill(&ask, deadline, run_id).await?
            }
        };
        Ok(serde_json::to_value(summary).unwrap_or(Value::Null))
    }

    /// Collects a backfill's parts at once, paced together by the shared feed client; one
    /// summary for them all. The first failure fails the invocation (the other parts' work is
    /// committed and resumes).
    async fn backfill(
        &self,
        ask: &BackfillAsk,
        deadline: Deadline,
        run_id: &str,
    ) -> Result<RunSummary, RunError> {
        let plans = self.backfill_plans(ask, run_id).await?;
        let runs = plans.iter().enumerate().map(|(i, plan)| {
            let part_run = format!("{run_id}-p{i}");
            async move { self.collect(plan, deadline, &part_run).await }
        });
        let mut parts = futures_util::future::join_all(runs).await.into_iter();
        let Some(first) = parts.next() else {
            return Err(InvocationError::EmptyBackfill.into());
        };
        let stream = backfill_stream(ask.from, ask.to, ask.redeliver);
        let mut merged = RunSummary { run_id: run_id.to_owned(), stream, ..first? };
        for part in parts {
            let part = part?;
            merged.report.merge(part.report);
            merged.manifest_key = merged.manifest_key.take().or(part.manifest_key);
            merged.duration_ms = merged.duration_ms.max(part.duration_ms);
        }
        Ok(merged)
    }

    /// A backfill ends where the live collection began (unless it redelivers on purpose) and
    /// before the settle line, in the parts of [`backfill::parts`].
    async fn backfill_plans(&self, ask: &BackfillAsk, run_id: &str) -> Result<Vec<Plan>, RunError> {
        let stream = backfill_stream(ask.from, ask.to, ask.redeliver);
        let settle_line = self.clock.now() - sync::plan::signed(self.config.settle);
        let mut end = ask.to.min(settle_line);
        let object_tag = if ask.redeliver {
            Some(backfill::redelivery_tag(&stream))
        } else {
            end = end.min(self.claim_backfill(ask, run_id).await?);
            None
        };
        if end < ask.to {
            tracing::info!(from = %ask.from, asked_to = %ask.to, to = %end, "backfill range clamped");
        }
        let plans = backfill::parts(ask.from, ask.to, end, &stream).into_iter().map(|part| Plan {
            mode: part.mode,
            stream: part.stream,
            object_tag: object_tag.clone(),
            dry_run: ask.dry_run,
        });
        Ok(plans.collect())
    }

    /// Claims the range in the live stream's ledger of backfills ([`backfill::claim`]) and
    /// commits the claim before the first run; returns the live stream's origin.
    async fn claim_backfill(&self, ask: &BackfillAsk, run_id: &str) -> Result<Timestamp, RunError> {
        let live = self.store.load(LIVE_STREAM).await.map_err(SyncError::from)?;
        let Some((live, origin)) = live.and_then(|v| v.state.origin.map(|o| (v, o))) else {
            return Err(InvocationError::BackfillBeforeLive.into());
        };
        let range = (ask.from, ask.to);
        if backfill::claim(&live.state.backfills, range, origin)? == Claim::Record && !ask.dry_run {
            let mut state = live.state;
            state.backfills.push(range);
            state.updated_at = Some(self.clock.now());
            state.updated_by = Some(run_id.to_owned());
            let committed = self.store.commit(LIVE_STREAM, &state, Some(live.version));
            committed.await.map_err(SyncError::from)?;
        }
        Ok(origin)
    }

    /// One run of `plan`: key, run, manifest, then its event (metrics and log line).
    async fn collect(
        &self,
        plan: &Plan,
        deadline: Deadline,
        run_id: &str,
    ) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let started_at = self.clock.now();
        let key = self.run_key(plan, started_at).await?;
        let (report, failure) = self.run(&key, plan, deadline, run_id).await;
        let finished_at = self.clock.now();

        let mut after_effects = Ok(());
        let mut manifest_key = None;
        if !plan.dry_run && !failure.as_ref().is_some_and(RunError::needs_operator) {
            let times = (started_at, finished_at);
            match self.write_manifest(plan, run_id, &report, times, failure.as_ref()).await {
                Ok(key) => manifest_key = Some(key),
                Err(e) => after_effects = Err(e),
            }
        }
        let summary = RunSummary {
            status: "ok",
            run_id: run_id.to_owned(),
            stream: plan.stream.clone(),
            report,
            manifest_key,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let lag = (plan.mode == Mode::Live)
            .then(|| summary.report.watermark.map(|w| finished_at.duration_since(w).as_secs_f64()))
            .flatten();
        let event = RunFinished {
            run_id,
            stream: &plan.stream,
            report: &summary.report,
            summary: &summary,
            duration_ms: summary.duration_ms,
            lag_seconds: lag,
            failure: failure.as_ref().map(|e| (e.error_type(), e.chain())),
            dry_run: plan.dry_run,
        };
        if let Err(e) = event.emit(&self.metrics).await {
            after_effects = after_effects.and(Err(RunError::Metrics(e)));
        }
        if let Some(error) = failure {
            if let Err(e) = after_effects {
                tracing::error!(error = %e.chain(), "after the failed run, its manifest or metrics were not recorded either");
            }
            return Err(error);
        }
        after_effects.map(|()| summary)
    }

    /// The run's key. A run without one still counts: its zero metrics keep the alarms fed.
    async fn run_key(&self, plan: &Plan, now: Timestamp) -> Result<ApiKey, RunError> {
        let error = match self.keys.get(&self.secrets, now).await {
            Ok(key) => return Ok(key),
            Err(e) => RunError::from(e),
        };
        if !plan.dry_run
            && let Err(m) = self.metrics.put(&run_metrics(&RunReport::default(), None)).await
        {
            tracing::error!(error = %m, "the zero metrics of a run without a key were not put either");
        }
        Err(error)
    }

    /// Runs the sync core for `plan` with `key`: the report, and why it failed if it did.
    async fn run(
        &self,
        key: &ApiKey,
        plan: &Plan,
        deadline: Deadline,
        run_id: &str,
    ) -> (RunReport, Option<RunError>) {
        let settings = Settings {
            horizons: Horizons {
                settle: self.config.settle,
                overlap: self.config.overlap,
                initial_lookback: self.config.initial_lookback,
            },
            mode: plan.mode,
            stream: plan.stream.clone(),
            organization_ids: self.config.organization_ids.clone(),
            output_prefix: self.config.output_prefix.clone(),
            run_id: run_id.to_owned(),
            page_limit: PAGE_LIMIT,
            dry_run: plan.dry_run,
            object_tag: plan.object_tag.clone(),
        };
        let feed = self.feed.with_key(key);
        match sync::run(&feed, &self.sink, &self.store, &self.clock, deadline, &settings).await {
            Ok(report) => (report, None),
            Err(failure) => {
                if matches!(failure.error, SyncError::Feed(FeedError::Unauthorized { .. })) {
                    // The key may have been rotated: read the secret again next time.
                    self.keys.invalidate();
                }
                (failure.report, Some(failure.error.into()))
            }
        }
    }

    /// Writes the run's manifest under the `_` area of the prefix; returns its key.
    async fn write_manifest(
        &self,
        plan: &Plan,
        run_id: &str,
        report: &RunReport,
        (started_at, finished_at): (Timestamp, Timestamp),
        failure: Option<&RunError>,
    ) -> Result<String, RunError> {
        let context = Context {
            run_id,
            function_name: &self.identity.function_name,
            function_version: &self.identity.function_version,
            stream: &plan.stream,
            endpoint: self.config.api_base_url.as_str(),
            organization_ids: &self.config.organization_ids,
            started_at,
            finished_at,
            error_type: failure.map(RunError::error_type),
        };
        let key = manifest_key(&self.config.output_prefix, &plan.stream, started_at, run_id);
        let body = serde_json::to_vec_pretty(&Manifest::new(&context, report))
            .map_err(RunError::ManifestEncode)?;
        self.sink.put_marker(&key, body, "application/json").await.map_err(RunError::Manifest)?;
        Ok(key)
    }
}
