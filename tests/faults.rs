//! One test per fault class of the reliability issue, each driving the built function through the
//! Lambda Runtime API against the simulator (API faults) and moto behind the fault proxy (AWS
//! faults), and checking the outcome rules:
//!
//! - transient faults are retried within the deadline: the run succeeds or stops resumably;
//! - permanent faults fail the invocation with a stable `errorType` and a readable message;
//! - a page the client cannot parse is never skipped: the run fails without advancing, and the
//!   record's raw text and the request-id are logged;
//! - in every case nothing is lost or delivered twice (counted line by line over every activity
//!   object), the state item stays valid, and the next healthy run catches up fully;
//! - no log line ever holds the key (checked on every invocation by `support::invoke`).
//!
//! Cases of one class run concurrently, each on its own stack, so waits (back-off, a dead
//! writer's 25 s lease) overlap.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use compliance_sim::{Fault, GenerateSpec, RecordField};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::fault_proxy::{AwsService, FaultAction, FaultRule};
use testkit::lambda::Outcome;

use crate::support::*;

/// Runs `cases` concurrently on the current runtime; panics like the first case that panicked.
async fn concurrently<F>(cases: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, case) in cases.into_iter().enumerate() {
        set.spawn(async move { (i, case.await) });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

type Case = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn case(f: impl Future<Output = ()> + Send + 'static) -> Case {
    Box::pin(f)
}

/// The queries the simulator received, as `(status, query)`.
fn api_calls(stack: &Stack) -> Vec<(u16, String)> {
    stack.sim.requests().into_iter().map(|r| (r.status, r.query)).collect()
}

// ---- API: transient faults ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_faults_are_retried_and_the_run_succeeds() {
    let faults: Vec<(&str, Fault)> = vec![
        (
            "429 with retry-after",
            Fault::Status {
                status: 429,
                error_type: "rate_limit_error".into(),
                retry_after: Some(1),
                should_retry: None,
            },
        ),
        ("429 without retry-after", Fault::status(429)),
        ("500", Fault::status(500)),
        ("502", Fault::status(502)),
        ("503", Fault::status(503)),
        ("504", Fault::status(504)),
        ("529", Fault::status(529)),
        ("reset mid-body", Fault::ConnectionReset),
        ("slow (1.5 s)", Fault::Delay(Duration::from_millis(1500))),
    ];
    let cases = faults
        .into_iter()
        .map(|(name, fault)| {
            case(async move {
                // GIVEN an hour of history and one transient fault on the first request
                let mut stack = Stack::new(Options::default()).await;
                stack.generate(300, 60, 2);
                stack.sim.push_faults([fault.clone()]);
                // WHEN a run collects
                let summary = stack.collect().await;
                // THEN it retried the same request and succeeded
                assert_eq!(summary["stop_reason"], "caught_up", "{name}: {summary}");
                assert!(summary["requests"].as_u64().unwrap() >= 2, "{name}: {summary}");
                let calls = api_calls(&stack);
                assert_eq!(calls[0].1, calls[1].1, "{name}: the retry repeats the request");
                if name.starts_with("429") {
                    assert_eq!(summary["throttled"], 1, "{name}: {summary}");
                }
                // AND everything served is delivered once
                let audit = stack.assert_exactly_once(watermark(&summary)).await;
                assert!(audit.served >= 300);
                report(&format!("API {name}"), "retried; run ok (caught_up)", &audit);
            })
        })
        .collect();
    concurrently(cases).await;
}

// ---- API: permanent faults and pages the client cannot read ----

/// Checks a run that failed on the API: its type, that it advanced nothing past what it could
/// read, and that the next healthy run catches up with everything exactly once.
async fn fails_then_recovers(
    name: &str,
    options: Options,
    slots: Vec<Option<Fault>>,
    error_type: &str,
    logged: &[&str],
) {
    // GIVEN a healthy first run, then new activities and the fault
    let mut stack = Stack::new(options).await;
    stack.generate(200, 90, 30);
    let first = stack.collect().await;
    stack.generate(150, 25, 1);
    let before = stack.state().await.unwrap();
    let objects_before = stack.delivered().await.len();
    stack.sim.push_schedule(slots);
    // WHEN the next run meets it
    let failed = stack.invoke(json!({}), LONG).await;
    // THEN the invocation fails with a stable type and a message that says what happened
    let (t, message) = error_of(&failed);
    assert_eq!(t, error_type, "{name}: {message}\n{}", failed.logs.join("\n"));
    assert!(message.len() > 20, "{name}: {message}");
    for text in logged {
        assert!(
            failed.logs.iter().any(|l| l.contains(text)),
            "{name}: {text:?} not logged:\n{}",
            failed.logs.join("\n")
        );
    }
    // AND nothing was delivered or advanced from the refused page
    let after = stack.state().await.unwrap();
    assert_eq!(after.state.watermark, before.state.watermark, "{name}");
    assert_eq!(after.state.window, before.state.window, "{name}");
    assert!(after.state.pending.is_none(), "{name}");
    assert_eq!(stack.delivered().await.len(), objects_before, "{name}");
    // AND the next healthy run catches up exactly once
    let last = stack.catch_up(3).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    assert!(watermark(&last) > watermark(&first));
    report(&format!("API {name}"), &format!("run fails {error_type}; next run ok"), &audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_api_faults_fail_the_run_with_a_stable_type_and_change_nothing() {
    let cases = vec![
        case(fails_then_recovers(
            "500 with x-should-retry: false",
            Options::default(),
            vec![Some(Fault::Status {
                status: 500,
                error_type: "api_error".into(),
                retry_after: None,
                should_retry: Some(false),
            })],
            "ApiUnavailable",
            &["500"],
        )),
        case(fails_then_recovers(
            "malformed JSON",
            Options::default(),
            vec![Some(Fault::MalformedBody)],
            "ApiResponseInvalid",
            &["req_", "unreadable page"],
        )),
        case(fails_then_recovers(
            "record without id",
            Options::default(),
            vec![Some(Fault::MissingField { field: RecordField::Id })],
            "ApiResponseInvalid",
            // the raw record is logged: its created_at and type are there, its id is not
            &["req_", "raw: {", "missing field `id`"],
        )),
        case(fails_then_recovers(
            "record without created_at",
            Options::default(),
            vec![Some(Fault::MissingField { field: RecordField::CreatedAt })],
            "ApiResponseInvalid",
            &["req_", "raw: {\"actor\"", "missing field `created_at`"],
        )),
        case(fails_then_recovers(
            "non-UTF-8 bytes in a body",
            Options::default(),
            vec![Some(Fault::InvalidUtf8)],
            "ApiResponseInvalid",
            &["req_", "unreadable page"],
        )),
        case(fails_then_recovers(
            // A 400 for the cursor: the collector first takes it for a server that caps pages
            // at 1000 and asks again (the second 400 is final).
            "400 invalid cursor",
            Options::default(),
            vec![Some(Fault::InvalidCursor), Some(Fault::InvalidCursor)],
            "ApiRequestRejected",
            &["invalid cursor"],
        )),
    ];
    concurrently(cases).await;
}

#[tokio::test]
async fn a_key_revoked_mid_run_fails_with_api_key_rejected_keeps_the_pages_before_and_rotation_recovers()
 {
    // GIVEN a backlog of three pages (the simulator serves 1000 at a time)
    let mut stack = Stack::new(Options::small_pages()).await;
    stack.generate(2500, 120, 2);
    // AND the key is revoked on the 4th request (400 for limit 5000, then two pages)
    stack.sim.push_schedule([None, None, None, Some(Fault::RevokeKey)]);
    // WHEN a run collects
    let failed = stack.invoke(json!({}), LONG).await;
    // THEN it fails with ApiKeyRejected, having kept the two pages it stored
    let (t, message) = error_of(&failed);
    assert_eq!(t, "ApiKeyRejected", "{message}");
    assert!(message.contains("401"), "{message}");
    let state = stack.state().await.unwrap();
    assert!(state.state.window.as_ref().is_some_and(|w| w.cursor.is_some()), "{state:?}");
    assert!(state.state.pending.is_none());
    assert_eq!(stack.delivered().await.len(), 2000);
    // AND while the key stays revoked, runs keep failing the same way and change nothing
    let again = stack.invoke(json!({}), LONG).await;
    assert_eq!(error_of(&again).0, "ApiKeyRejected");
    assert_eq!(stack.state().await.unwrap().version, state.version);
    // WHEN the operator stores a new key in the secret (the same warm process re-reads it)
    stack
        .clients
        .secretsmanager
        .put_secret_value()
        .secret_id(&stack.secret_id)
        .secret_string(ROTATED_KEY)
        .send()
        .await
        .unwrap();
    // THEN the next run resumes from the stored cursor and catches up exactly once
    let last = stack.catch_up(3).await;
    assert!(!stack.function.all_logs().is_empty());
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    assert!(audit.served >= 2500);
    report("API 401 after some pages (key revoked mid-run)", "ApiKeyRejected; pages before kept; ok after rotation", &audit);
}

// ---- API: odd pages and cursors ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_pages_with_more_and_stuck_cursors_neither_lose_nor_duplicate() {
    let cases = vec![
        ("empty page with has_more: true", vec![Some(Fault::EmptyPageWithMore)]),
        (
            "empty pages with has_more, after a cursor",
            vec![None, None, Some(Fault::EmptyPageWithMore), Some(Fault::EmptyPageWithMore)],
        ),
        ("a cursor that does not move", vec![None, None, Some(Fault::StuckCursor)]),
        (
            "a cursor stuck three times in a row",
            vec![Some(Fault::StuckCursor), Some(Fault::StuckCursor), Some(Fault::StuckCursor)],
        ),
    ]
    .into_iter()
    .map(|(name, slots)| {
        case(async move {
            // GIVEN a two-page backlog and the odd pages
            let mut stack = Stack::new(Options::small_pages()).await;
            stack.generate(1800, 120, 2);
            stack.sim.push_schedule(slots);
            // WHEN a run collects
            let summary = stack.collect().await;
            // THEN it got everything, once
            assert_eq!(summary["stop_reason"], "caught_up", "{name}: {summary}");
            let audit = stack.assert_exactly_once(watermark(&summary)).await;
            assert!(audit.served >= 1800);
            report(
                &format!("API {name}"),
                &format!(
                    "run ok (caught_up); {} duplicates dropped",
                    summary["duplicates_dropped"]
                ),
                &audit,
            );
        })
    })
    .collect();
    concurrently(cases).await;
}

#[tokio::test]
async fn a_cursor_stuck_for_good_makes_the_run_stop_at_its_deadline_and_resume() {
    // GIVEN a page whose cursor never moves, for many requests in a row
    let mut stack = Stack::new(Options::small_pages()).await;
    stack.generate(1500, 120, 2);
    stack.sim.push_schedule(
        std::iter::once(None).chain(std::iter::repeat_n(Some(Fault::StuckCursor), 60)),
    );
    // WHEN a run with 6 s collects
    let started = Instant::now();
    let stuck = stack.invoke(json!({}), Duration::from_secs(6)).await;
    // THEN it keeps re-reading the same page until its deadline, then stops resumably
    let kind = outcome_kind(&stuck);
    assert!(kind == "ok:deadline" || kind == "error:ApiUnavailable", "{kind}");
    assert!(started.elapsed() < Duration::from_secs(6));
    stack.state().await;
    // AND once the API behaves, the next runs catch up exactly once
    stack.sim.clear_faults();
    let last = stack.catch_up(3).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report("API cursor stuck for good (60 pages)", &format!("{kind}: loops re-reading one page until the deadline; next run ok"), &audit);
}

#[tokio::test]
async fn a_response_slower_than_the_clients_timeout_fails_resumably() {
    // GIVEN a run with 6 s (it stops starting work at 4 s) and a response that takes 20 s
    let mut stack = Stack::new(Options::default()).await;
    stack.generate(200, 60, 2);
    stack.sim.push_faults([Fault::Delay(Duration::from_secs(20))]);
    // WHEN it collects
    let started = Instant::now();
    let slow = stack.invoke(json!({}), Duration::from_secs(6)).await;
    // THEN the request times out before the deadline, with no time left to retry: the run
    // ends by itself (not killed by Lambda) and leaves nothing half done
    let kind = outcome_kind(&slow);
    assert!(kind == "error:ApiUnavailable" || kind == "ok:deadline", "{kind}: {:?}", slow.outcome);
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(stack.state().await.is_none_or(|s| s.state.pending.is_none()));
    // AND the next run catches up
    let last = stack.catch_up(2).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report("API response slower than the client's timeout", &format!("{kind}; next run ok"), &audit);
}

// ---- API: late indexing ----

#[tokio::test]
async fn activities_indexed_late_within_the_overlap_are_delivered_once_and_counted() {
    // GIVEN an overlap of 60 s, a first run, and activities of the last 50 s not yet indexed
    let mut stack = Stack::new(Options::default().with_env("OVERLAP_SECONDS", "60")).await;
    stack.generate(300, 30, 1);
    let now = Timestamp::now();
    let late = stack.sim.generate(&GenerateSpec {
        count: 40,
        from: now - SignedDuration::from_secs(50),
        to: now - SignedDuration::from_secs(3),
        hidden: true,
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let first = stack.collect().await;
    // WHEN they are indexed and the next run collects
    stack.sim.reveal_all();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = stack.collect().await;
    // THEN it delivers them, counts them as late arrivals, and duplicates nothing
    assert_eq!(second["late_arrivals"].as_u64(), Some(late.len() as u64), "{second}");
    assert!(second["duplicates_dropped"].as_u64().unwrap() > 0, "{second}");
    let audit = stack.assert_exactly_once(watermark(&second)).await;
    assert!(watermark(&second) > watermark(&first));
    report("API activities indexed late, within OVERLAP_SECONDS", "delivered once; late_arrivals counted", &audit);
}

#[tokio::test]
#[ignore = "bug: activities indexed later than OVERLAP_SECONDS are dropped without a trace (no log line, no metric); see the fault-suite report"]
async fn activities_indexed_later_than_the_overlap_are_counted_and_reported() {
    // GIVEN an overlap of 5 s, and activities created 40 s ago that are not indexed yet
    let mut stack = Stack::new(Options::default().with_env("OVERLAP_SECONDS", "5")).await;
    stack.generate(100, 30, 1);
    let now = Timestamp::now();
    let too_late = stack.sim.generate(&GenerateSpec {
        count: 7,
        from: now - SignedDuration::from_secs(45),
        to: now - SignedDuration::from_secs(35),
        hidden: true,
    });
    stack.collect().await;
    // WHEN they are indexed 40 s late, well past the overlap, and the next runs collect
    stack.sim.reveal_all();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = stack.invoke(json!({}), LONG).await;
    // THEN they are not guaranteed (the contract covers up to OVERLAP_SECONDS)...
    let excused: HashSet<String> = too_late.iter().cloned().collect();
    let summary = next.outcome.response().cloned().unwrap_or(Value::Null);
    let audit = stack.audit(watermark(&summary), &excused).await;
    audit.assert_clean();
    let delivered: HashSet<String> = stack.delivered().await.into_iter().collect();
    let missed = too_late.iter().filter(|id| !delivered.contains(*id)).count();
    report("API activities indexed later than OVERLAP_SECONDS", &format!("{missed} of {} never delivered; no trace", too_late.len()), &audit);
    // ...but every one missed is counted and reported, in the logs and the summary
    assert_eq!(missed, too_late.len());
    let logs = next.logs.join("\n");
    assert!(
        logs.contains("later than") || logs.contains("beyond the overlap"),
        "missed late activities are not reported in the logs:\n{logs}"
    );
    assert!(
        summary.get("late_beyond_overlap").is_some_and(|n| n.as_u64() >= Some(1)),
        "missed late activities are not counted in the summary: {summary}"
    );
}
