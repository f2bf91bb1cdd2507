//! One invocation, end to end: payload → key → run → manifest → metrics → summary or error.
//!
//! [`Collector`] holds what lives across warm invocations (clients, the key cache) and is
//! generic over the ports, so the same code runs against AWS in Lambda and against fakes in
//! tests. The handler is the only place that asks the clock for "now" on behalf of a run.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::archive::ObjectSink;
use crate::archive::manifest::{Context, Manifest, manifest_key};
use crate::clock::{Clock, Deadline};
use crate::config::Config;
use crate::error::RunError;
use crate::feed::http::{HttpClient, error_chain};
use crate::feed::{FeedError, PAGE_LIMIT};
use crate::invocation::{Action, Invocation, InvocationError};
use crate::secrets::{KeyCache, SecretSource};
use crate::state::{LIVE_STREAM, StateStore, Versioned, backfill_stream};
use crate::sync::{self, Horizons, Mode, RunReport, Settings, StopReason, SyncError};
use crate::telemetry::{MetricsSink, run_metrics};

pub mod verify;

/// Kept between the last possible answer and the invocation's deadline.
const ANSWER_SPARE: Duration = Duration::from_millis(500);

/// How many time windows a long backfill is collected in at once. While one window waits for its
/// page (the API's latency, a few hundred ms) or for S3 and DynamoDB, the others fetch and
/// compress theirs: with 300 ms of latency a window turns a page about every half second, so six
/// keep the API's whole budget (600 requests a minute) busy. Few enough that the pages they hold
/// at once stay small in memory (`make bench`: the backfill's peak RSS).
pub const BACKFILL_PARTS: i32 = 6;
/// A backfill shorter than this is one window.
pub const PARTS_FROM: jiff::SignedDuration = jiff::SignedDuration::from_hours(6);

pub struct Collector<Src, Snk, Sto, Met, C> {
    pub config: Config,
    pub identity: Identity,
    pub secrets: Src,
    pub keys: KeyCache,
    pub http: HttpClient<C>,
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
        let summary = match invocation.action {
            Action::Verify => {
                let report = self.verify(deadline, run_id, invocation.dry_run).await;
                return Ok(serde_json::to_value(report).unwrap_or(Value::Null));
            }
            Action::Collect => {
                let plan = Plan {
                    mode: Mode::Live,
                    stream: LIVE_STREAM.to_owned(),
                    object_tag: None,
                    dry_run: invocation.dry_run,
                };
                self.collect(&plan, deadline, run_id).await?
            }
            Action::Backfill { from, to, redeliver } => {
                let plans =
                    self.backfill_plans(from, to, redeliver, invocation.dry_run, run_id).await?;
                // The parts run at once, paced together by the shared HTTP client.
                let runs = plans.iter().enumerate().map(|(i, plan)| {
                    let part_run = format!("{run_id}-p{i}");
                    async move { self.collect(plan, deadline, &part_run).await }
                });
                let outcomes = futures_util::future::join_all(runs).await;
                merge(run_id, backfill_stream(from, to, redeliver), outcomes)?
            }
        };
        Ok(serde_json::to_value(summary).unwrap_or(Value::Null))
    }

    /// A backfill ends where the live collection began (unless it redelivers on purpose) and
    /// before the settle line. A range of [`PARTS_FROM`] or more is split into [`BACKFILL_PARTS`]
    /// time windows collected at once, each with its own state item named by the range asked for
    /// and its part, so the same invocation resumes every part.
    async fn backfill_plans(
        &self,
        from: Timestamp,
        to: Timestamp,
        redeliver: bool,
        dry_run: bool,
        run_id: &str,
    ) -> Result<Vec<Plan>, RunError> {
        let stream = backfill_stream(from, to, redeliver);
        let settle_line = self.clock.now() - sync::plan::signed(self.config.settle);
        let mut end = to.min(settle_line);
        let mut object_tag = None;
        if redeliver {
            let digest = Sha256::digest(stream.as_bytes());
            object_tag = Some(format!(
                "redelivery-{:02x}{:02x}{:02x}{:02x}",
                digest[0], digest[1], digest[2], digest[3]
            ));
        } else {
            let live = self.store.load(LIVE_STREAM).await.map_err(SyncError::from)?;
            let Some((live, origin)) = live.and_then(|v| v.state.origin.map(|o| (v, o))) else {
                return Err(InvocationError::BackfillBeforeLive.into());
            };
            end = end.min(origin);
            self.claim_backfill(live, (from, to), origin, dry_run, run_id).await?;
        }
        if end < to {
            tracing::info!(from = %from, asked_to = %to, to = %end, "backfill range clamped");
        }
        // Parts follow the range asked for, not the clamped one, so they never change.
        let parts = if to.duration_since(from) >= PARTS_FROM { BACKFILL_PARTS } else { 1 };
        let span = to.duration_since(from) / parts;
        let plans = (0..parts)
            .map(|i| {
                let part_from = from + span * i;
                let part_to = if i + 1 == parts { to } else { from + span * (i + 1) };
                Plan {
                    mode: Mode::Backfill { from: part_from, to: part_to.min(end).max(part_from) },
                    stream: if parts == 1 {
                        stream.clone()
                    } else {
                        format!("{stream}#part{i}of{parts}")
                    },
                    object_tag: object_tag.clone(),
                    dry_run,
                }
            })
            .collect();
        Ok(plans)
    }

    /// Records `range` in the live stream's ledger of backfills before its first run, and
    /// refuses a range that overlaps another backfill's where either collects (before `origin`):
    /// two backfills would deliver their common part twice. The same range again resumes it.
    async fn claim_backfill(
        &self,
        live: Versioned,
        range: (Timestamp, Timestamp),
        origin: Timestamp,
        dry_run: bool,
        run_id: &str,
    ) -> Result<(), RunError> {
        let collected = |(from, to): (Timestamp, Timestamp)| (from, to.min(origin));
        let (from, to) = collected(range);
        if live.state.backfills.contains(&range) || from >= to {
            return Ok(());
        }
        let overlapping = live.state.backfills.iter().copied().find(|&other| {
            let (other_from, other_to) = collected(other);
            other_from < to && from < other_to
        });
        if let Some(other) = overlapping {
            return Err(InvocationError::BackfillOverlaps { asked: range, other }.into());
        }
        if dry_run {
            return Ok(());
        }
        let mut state = live.state;
        state.backfills.push(range);
        state.updated_at = Some(self.clock.now());
        state.updated_by = Some(run_id.to_owned());
        self.store
            .commit(LIVE_STREAM, &state, Some(live.version))
            .await
            .map_err(SyncError::from)?;
        Ok(())
    }

    async fn collect(
        &self,
        plan: &Plan,
        deadline: Deadline,
        run_id: &str,
    ) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let started_at = self.clock.now();
        let key = match self.keys.get(&self.secrets, started_at).await {
            Ok(key) => key,
            Err(e) => {
                // A run without a key still counts: its zero metrics keep the alarms fed.
                let failure = RunError::from(e);
                if !plan.dry_run
                    && let Err(m) =
                        self.metrics.put(&run_metrics(&RunReport::default(), None)).await
                {
                    tracing::error!(error = %m, "the zero metrics of a run without a key were not put either");
                }
                return Err(failure);
            }
        };
        let feed = self.http.with_key(&key);
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
        let outcome =
            sync::run(&feed, &self.sink, &self.store, &self.clock, deadline, &settings).await;
        let (report, failure) = match outcome {
            Ok(report) => (report, None),
            Err(f) => (f.report, Some(f.error)),
        };
        if matches!(failure, Some(SyncError::Feed(FeedError::Unauthorized { .. }))) {
            // The key may have been rotated: read the secret again next time.
            self.keys.invalidate();
        }
        let failure = failure.map(RunError::from);

        let mut manifest_written = None;
        let mut after_effects = Ok(());
        let finished_at = self.clock.now();
        if !plan.dry_run && !human_error(failure.as_ref()) {
            let context = Context {
                run_id,
                function_name: &self.identity.function_name,
                function_version: &self.identity.function_version,
                stream: &plan.stream,
                endpoint: self.config.api_base_url.as_str(),
                organization_ids: &self.config.organization_ids,
                started_at,
                finished_at,
                error_type: failure.as_ref().map(RunError::error_type),
            };
            let key = manifest_key(&self.config.output_prefix, &plan.stream, started_at, run_id);
            let body =
                serde_json::to_vec_pretty(&Manifest::new(&context, &report)).unwrap_or_default();
            match self.sink.put_marker(&key, body, "application/json").await {
                Ok(_) => manifest_written = Some(key),
                Err(e) => after_effects = Err(RunError::Manifest(e)),
            }
        }
        if !plan.dry_run {
            let lag = (plan.mode == Mode::Live)
                .then(|| report.watermark.map(|w| finished_at.duration_since(w).as_secs_f64()))
                .flatten();
            if let Err(e) = self.metrics.put(&run_metrics(&report, lag)).await {
                after_effects = after_effects.and(Err(RunError::Metrics(e)));
            }
        }

        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let summary = RunSummary {
            status: "ok",
            run_id: run_id.to_owned(),
            stream: plan.stream.clone(),
            report,
            manifest_key: manifest_written,
            duration_ms,
        };
        log_run(&summary, failure.as_ref());
        if let Some(error) = failure {
            if let Err(e) = after_effects {
                tracing::error!(error = %e.chain(), "after the failed run, its manifest or metrics were not recorded either");
            }
            return Err(error);
        }
        after_effects?;
        Ok(summary)
    }
}

/// One summary for the parts of a backfill: the figures added up, the window spanning them all,
/// `caught_up` only when every part is. The first failure fails the invocation (the other parts'
/// work is committed and resumes).
fn merge(
    run_id: &str,
    stream: String,
    outcomes: Vec<Result<RunSummary, RunError>>,
) -> Result<RunSummary, RunError> {
    let mut merged: Option<RunSummary> = None;
    for outcome in outcomes {
        let part = outcome?;
        let Some(m) = merged.as_mut() else {
            merged = Some(RunSummary { run_id: run_id.to_owned(), stream: stream.clone(), ..part });
            continue;
        };
        let (r, p) = (&mut m.report, part.report);
        r.delivered += p.delivered;
        r.duplicates_dropped += p.duplicates_dropped;
        r.late_arrivals += p.late_arrivals;
        r.objects_written += p.objects_written;
        r.objects_already_present += p.objects_already_present;
        r.bytes_written += p.bytes_written;
        r.pages += p.pages;
        r.requests += p.requests;
        r.throttled += p.throttled;
        r.recovered_objects += p.recovered_objects;
        r.api_server_errors += p.api_server_errors;
        r.api_client_errors += p.api_client_errors;
        r.api_transport_errors += p.api_transport_errors;
        r.window_from = match (r.window_from, p.window_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        r.window_to = r.window_to.max(p.window_to);
        r.watermark = r.watermark.max(p.watermark);
        r.stop_reason = match (r.stop_reason, p.stop_reason) {
            (Some(StopReason::NothingNew), other) | (other, Some(StopReason::NothingNew)) => other,
            (Some(StopReason::CaughtUp), other) | (other, Some(StopReason::CaughtUp)) => other,
            (first, _) => first,
        };
        m.manifest_key = m.manifest_key.take().or(part.manifest_key);
        m.duration_ms = m.duration_ms.max(part.duration_ms);
    }
    merged.ok_or_else(|| RunError::Invocation(InvocationError::EmptyBackfill))
}

/// A run that failed for a human reason (key, scope, bucket) wrote nothing and leaves no object
/// behind, not even a manifest; its metrics (zero) are still put.
fn human_error(failure: Option<&RunError>) -> bool {
    failure.is_some_and(|e| {
        matches!(
            e.error_type(),
            "ApiKeyRejected" | "ApiScopeMissing" | "BucketNotFound" | "BucketAccessDenied"
        )
    })
}

/// The run's one log line, with every figure of the summary as a field.
fn log_run(summary: &RunSummary, failure: Option<&RunError>) {
    let r = &summary.report;
    let fields = serde_json::to_string(summary).unwrap_or_default();
    match failure {
        None => tracing::info!(
            run_id = %summary.run_id,
            stream = %summary.stream,
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
            stream = %summary.stream,
            delivered = r.delivered,
            error_type = e.error_type(),
            error = %error_chain(e),
            summary = %fields,
            "run failed"
        ),
    }
}
