//! Telemetry of a run: its metrics and its one log line, emitted together by one typed event
//! ([`RunFinished`]), so the two never disagree on a figure.
//!
//! The metric names are a public contract: template.yaml's alarms and the README's table name
//! them. CloudWatch bills a custom metric for every hour in which it is put, so a run puts only
//! what an alarm or the dashboard reads, and a count only when it is not zero: every run puts
//! `EventsProcessed` (0 included, so the no-events alarm tells "nothing new" from "not running")
//! and every live run `LagSeconds` (the lag alarm's "not running"); `ApiThrottled`, `ApiErrors`,
//! `LateArrivals`, `LateBeyondOverlap`, `ComplianceLoggingDisabled` and `CanaryMissing` only when
//! they count something, their alarms treating missing data as zero. Every other figure of the run
//! (requests, objects and bytes written, duplicates dropped, the rate limit left) is in its log
//! line and its manifest only.

pub mod cloudwatch;

use std::future::Future;

use serde::Serialize;

use crate::sync::RunReport;

pub const EVENTS_PROCESSED: &str = "EventsProcessed";
pub const LAG_SECONDS: &str = "LagSeconds";
pub const API_THROTTLED: &str = "ApiThrottled";
pub const API_ERRORS: &str = "ApiErrors";
pub const LATE_ARRIVALS: &str = "LateArrivals";
pub const COMPLIANCE_LOGGING_DISABLED: &str = "ComplianceLoggingDisabled";
pub const CANARY_MISSING: &str = "CanaryMissing";
pub const LATE_BEYOND_OVERLAP: &str = "LateBeyondOverlap";
/// The metrics' one dimension: the function, so several deployments can share a namespace.
pub const DIMENSION_FUNCTION_NAME: &str = "FunctionName";
/// `ApiErrors` also carries `ErrorClass`: `Server` (5xx, 529), `Client` (4xx but 429), `Transport`.
pub const DIMENSION_ERROR_CLASS: &str = "ErrorClass";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
    /// Dimensions beside `FunctionName`.
    pub dimensions: Vec<(&'static str, &'static str)>,
}

impl Datum {
    pub fn count(name: &'static str, value: impl Into<f64>) -> Datum {
        Datum { name, value: value.into(), unit: Unit::Count, dimensions: Vec::new() }
    }
}

/// The port metrics are put through.
pub trait MetricsSink: Send + Sync {
    fn put(&self, data: &[Datum]) -> impl Future<Output = Result<(), MetricsError>> + Send;
}

/// What an operator does about metrics that cannot be put: the one text both the error's message
/// and verify's remedy give.
pub const METRICS_GRANT: &str =
    "grant cloudwatch:PutMetricData with the condition cloudwatch:namespace = METRIC_NAMESPACE";

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot put metrics to CloudWatch namespace {namespace:?}; the alarms go blind until this is fixed: {METRICS_GRANT}"
)]
pub struct MetricsError {
    pub namespace: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The metrics of one run, failed or not; `lag_seconds` only for the live stream. Counts other
/// than `EventsProcessed` only when not zero (the module's first lines say why).
pub fn run_metrics(report: &RunReport, lag_seconds: Option<f64>) -> Vec<Datum> {
    let mut data = vec![Datum::count(EVENTS_PROCESSED, report.delivered as f64)];
    if let Some(lag) = lag_seconds {
        data.push(Datum { unit: Unit::Seconds, ..Datum::count(LAG_SECONDS, lag) });
    }
    let counts = [
        (API_THROTTLED, None, report.throttled as f64),
        (API_ERRORS, Some("Server"), report.api_server_errors as f64),
        (API_ERRORS, Some("Client"), report.api_client_errors as f64),
        (API_ERRORS, Some("Transport"), report.api_transport_errors as f64),
        (LATE_ARRIVALS, None, report.late_arrivals as f64),
        (LATE_BEYOND_OVERLAP, None, report.late_beyond_overlap as f64),
        (COMPLIANCE_LOGGING_DISABLED, None, report.compliance_logging_disabled as f64),
        (
            CANARY_MISSING,
            None,
            if report.canary_checked { report.canary_missing as f64 } else { 0.0 },
        ),
    ];
    for (name, class, value) in counts {
        if value > 0.0 {
            data.push(Datum {
                dimensions: class.map(|c| (DIMENSION_ERROR_CLASS, c)).into_iter().collect(),
                ..Datum::count(name, value)
            });
        }
    }
    data
}

/// The end of one collecting run: its log line and its metrics, from the same report.
pub struct RunFinished<'a, S> {
    pub run_id: &'a str,
    pub stream: &'a str,
    pub report: &'a RunReport,
    /// The whole run summary, logged as one JSON field.
    pub summary: &'a S,
    pub duration_ms: u64,
    /// How far the live watermark is behind the run's end (the live stream only).
    pub lag_seconds: Option<f64>,
    /// Why the run failed: its `errorType` and its whole cause chain.
    pub failure: Option<(&'static str, String)>,
    /// A dry run logs its figures but puts no metric.
    pub dry_run: bool,
}

impl<S: Serialize> RunFinished<'_, S> {
    /// The metrics this run puts.
    pub fn metrics(&self) -> Vec<Datum> {
        run_metrics(self.report, self.lag_seconds)
    }

    /// Puts the metrics (unless a dry run), then logs the line, whether the put worked or not.
    pub async fn emit(&self, sink: &impl MetricsSink) -> Result<(), MetricsError> {
        let put = if self.dry_run { Ok(()) } else { sink.put(&self.metrics()).await };
        self.log();
        put
    }

    /// The run's one log line, with every figure of the summary as a field.
    fn log(&self) {
        let r = self.report;
        let fields = serde_json::to_string(self.summary).unwrap_or_default();
        match &self.failure {
            None => tracing::info!(
                run_id = %self.run_id,
                stream = %self.stream,
                delivered = r.delivered,
                duplicates_dropped = r.duplicates_dropped,
                objects_written = r.objects_written,
                pages = r.pages,
                requests = r.requests,
                stop_reason = ?r.stop_reason,
                watermark = ?r.watermark.map(|w| w.to_string()),
                duration_ms = self.duration_ms,
                summary = %fields,
                "run finished"
            ),
            Some((error_type, chain)) => tracing::error!(
                run_id = %self.run_id,
                stream = %self.stream,
                delivered = r.delivered,
                error_type = error_type,
                error = %chain,
                summary = %fields,
                "run failed"
            ),
        }
    }
}

#[cfg(test)]
pub mod memory {
    //! Records the metrics put, for tests.
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct MemoryMetrics {
        pub put: Mutex<Vec<Datum>>,
        pub fail: bool,
    }

    impl MetricsSink for MemoryMetrics {
        async fn put(&self, data: &[Datum]) -> Result<(), MetricsError> {
            if self.fail {
                return Err(MetricsError { namespace: "memory".into(), source: "injected".into() });
            }
            self.put.lock().unwrap().extend_from_slice(data);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
