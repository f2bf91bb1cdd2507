//! The run's event: one log line and the metrics, with the same figures.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::memory::MemoryMetrics;
use super::*;

/// Captures the log lines written while it is the default subscriber of this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    (out, tracing::subscriber::set_default(subscriber))
}

fn report() -> RunReport {
    RunReport { delivered: 7, requests: 3, pages: 2, objects_written: 1, ..RunReport::default() }
}

fn event<'a>(report: &'a RunReport, dry_run: bool) -> RunFinished<'a, RunReport> {
    RunFinished {
        run_id: "run-1",
        stream: "live",
        report,
        summary: report,
        duration_ms: 12,
        lag_seconds: Some(30.0),
        failure: None,
        dry_run,
    }
}

fn datum(metrics: &MemoryMetrics, name: &str) -> Option<f64> {
    metrics.put.lock().unwrap().iter().find(|d| d.name == name).map(|d| d.value)
}

#[tokio::test(flavor = "current_thread")]
async fn a_finished_run_logs_its_line_and_puts_its_metrics_with_the_same_figures() {
    // GIVEN a run that delivered 7 activities in 3 requests
    let (log, _guard) = capture();
    let metrics = MemoryMetrics::default();
    let report = report();
    // WHEN its event is emitted
    event(&report, false).emit(&metrics).await.unwrap();
    // THEN the log line says so, and the metrics carry the same figures
    let text = log.text();
    assert!(text.contains("run finished"), "{text}");
    assert!(text.contains("delivered=7") && text.contains("requests=3"), "{text}");
    assert_eq!(datum(&metrics, EVENTS_PROCESSED), Some(7.0));
    assert_eq!(datum(&metrics, API_REQUESTS), Some(3.0));
    assert_eq!(datum(&metrics, LAG_SECONDS), Some(30.0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_run_logs_its_error_type_and_still_puts_its_metrics() {
    // GIVEN a run that failed after delivering 7
    let (log, _guard) = capture();
    let metrics = MemoryMetrics::default();
    let report = report();
    let failed = RunFinished {
        failure: Some(("ApiUnavailable", "the API is unavailable: reset".into())),
        ..event(&report, false)
    };
    // WHEN its event is emitted
    failed.emit(&metrics).await.unwrap();
    // THEN the line is an error naming the type and the chain, and the metrics are put
    let text = log.text();
    assert!(
        text.contains("run failed") && text.contains("error_type=\"ApiUnavailable\""),
        "{text}"
    );
    assert!(text.contains("the API is unavailable: reset"), "{text}");
    assert_eq!(datum(&metrics, EVENTS_PROCESSED), Some(7.0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_dry_run_logs_but_puts_no_metric_and_a_failed_put_is_reported_after_the_line() {
    // GIVEN a dry run, and a metrics sink that fails
    let (log, _guard) = capture();
    let report = report();
    let metrics = MemoryMetrics::default();
    // WHEN the dry run's event is emitted
    event(&report, true).emit(&metrics).await.unwrap();
    // THEN nothing is put
    assert!(metrics.put.lock().unwrap().is_empty());
    // WHEN a real run's put fails
    let failing = MemoryMetrics { fail: true, ..MemoryMetrics::default() };
    let put = event(&report, false).emit(&failing).await;
    // THEN the error comes back, and both lines were logged anyway
    assert!(put.is_err());
    assert_eq!(log.text().matches("run finished").count(), 2);
}
