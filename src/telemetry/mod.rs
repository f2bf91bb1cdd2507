//! Telemetry of a run: the metrics it emits (every run, zero included) and its one log line.
//!
//! The metric names are a public contract: template.yaml's alarms and the README's table name
//! them. `EventsProcessed` is the count of activities a run delivered; a run that delivers nothing
//! still emits 0, so "no data" and "not running" are told apart by the alarm's missing-data rule.

pub mod cloudwatch;

use std::future::Future;

use crate::sync::RunReport;

pub const EVENTS_PROCESSED: &str = "EventsProcessed";
/// The metrics' one dimension: the function, so several deployments can share a namespace.
pub const DIMENSION_FUNCTION_NAME: &str = "FunctionName";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
}

/// The port metrics are put through.
pub trait MetricsSink: Send + Sync {
    fn put(&self, data: &[Datum]) -> impl Future<Output = Result<(), MetricsError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot put metrics to CloudWatch namespace {namespace:?}; the alarms go blind until this is fixed"
)]
pub struct MetricsError {
    pub namespace: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The metrics of one run, failed or not.
pub fn run_metrics(report: &RunReport) -> Vec<Datum> {
    vec![Datum {
        name: EVENTS_PROCESSED,
        value: report.delivered as f64,
        unit: Unit::Count,
    }]
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
                return Err(MetricsError {
                    namespace: "memory".into(),
                    source: "injected".into(),
                });
            }
            self.put.lock().unwrap().extend_from_slice(data);
            Ok(())
        }
    }
}
