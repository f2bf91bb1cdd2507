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
    assert_eq!(datum(&metrics, LAG_SECONDS), Some(30.0));
}

#[test]
fn a_quiet_run_puts_only_what_tells_silence_from_zero() {
    // GIVEN a live run that delivered nothing and met no error, throttle or late activity, and
    // whose canary found everything
    let report = RunReport { requests: 1, canary_checked: true, ..RunReport::default() };
    // THEN it puts EventsProcessed 0 and its lag, and nothing else: each other series would be
    // billed for the hour it is put in
    let names: Vec<_> =
        run_metrics(&report, Some(42.0)).iter().map(|d| (d.name, d.value)).collect();
    assert_eq!(names, [(EVENTS_PROCESSED, 0.0), (LAG_SECONDS, 42.0)]);
    // and a backfill run (no lag) puts EventsProcessed alone
    assert_eq!(run_metrics(&report, None).len(), 1);
}

#[test]
fn every_count_is_put_when_it_counts_something() {
    // GIVEN a run that met one of everything
    let report = RunReport {
        delivered: 3,
        throttled: 1,
        api_server_errors: 2,
        api_client_errors: 1,
        api_transport_errors: 4,
        late_arrivals: 5,
        late_beyond_overlap: 6,
        compliance_logging_disabled: 1,
        canary_checked: true,
        canary_missing: 2,
        ..RunReport::default()
    };
    // THEN each is put with its value, the errors by class
    let data = run_metrics(&report, None);
    let by: Vec<_> =
        data.iter().map(|d| (d.name, d.dimensions.first().map(|(_, v)| *v), d.value)).collect();
    assert_eq!(
        by,
        [
            (EVENTS_PROCESSED, None, 3.0),
            (API_THROTTLED, None, 1.0),
            (API_ERRORS, Some("Server"), 2.0),
            (API_ERRORS, Some("Client"), 1.0),
            (API_ERRORS, Some("Transport"), 4.0),
            (LATE_ARRIVALS, None, 5.0),
            (LATE_BEYOND_OVERLAP, None, 6.0),
            (COMPLIANCE_LOGGING_DISABLED, None, 1.0),
            (CANARY_MISSING, None, 2.0),
        ]
    );
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
