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
//! writer's 25 s lease) overlap. Each case prints one `RELIABILITY | class | outcome | figures`
//! line (see them with `--nocapture`): the source of the README's reliability table.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use compliance_sim::{Fault, GenerateSpec, RecordField};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::fault_proxy::{AwsService, FaultAction, FaultProxy, FaultRule};
use testkit::lambda::LambdaFunction;

use crate::support::*;

/// Runs the named `cases` concurrently on the current runtime and returns their outputs in order.
/// A case that fails panics again with its name, so the failure names the case, not only the
/// test. `FAULT_CASE=<text>` runs only the cases whose name holds the text, so one runs alone:
/// `FAULT_CASE="state load throttled" cargo test --test tests faults::dynamodb`.
async fn concurrently<F>(cases: Vec<(String, F)>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let only = std::env::var("FAULT_CASE").ok();
    let mut set = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for (i, (name, case)) in cases.into_iter().enumerate() {
        if only.as_ref().is_some_and(|only| !name.contains(only.as_str())) {
            continue;
        }
        let task = set.spawn(async move { (i, case.await) });
        names.insert(task.id(), name);
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => {
                let name = names.get(&e.id()).cloned().unwrap_or_default();
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                panic!("fault case {name:?} failed: {message}");
            }
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

type Case = (String, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);

/// One named case of a test that runs several.
fn case(name: impl Into<String>, f: impl Future<Output = ()> + Send + 'static) -> Case {
    (name.into(), Box::pin(f))
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
            case(name, async move {
                // GIVEN an hour of history and one transient fault on the first request
                let mut stack = Stack::new(Options::default()).await;
                stack.generate(300, 60, 2);
                stack.sim.push_faults([fault.clone()]);
                // WHEN a run collects
                let summary = stack.collect().await;
                // THEN it retried the same request (or, slow, waited for it) and succeeded
                assert_eq!(summary["stop_reason"], "caught_up", "{name}: {summary}");
                if !matches!(fault, Fault::Delay(_)) {
                    assert!(summary["requests"].as_u64().unwrap() >= 2, "{name}: {summary}");
                    let calls = api_calls(&stack);
                    assert_eq!(calls[0].1, calls[1].1, "{name}: the retry repeats the request");
                }
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
    damaged: Option<RecordField>,
) {
    // GIVEN a healthy first run, then new activities and the fault
    let mut stack = Stack::new(options).await;
    stack.generate(200, 90, 30);
    let first = stack.collect().await;
    // (created up to five minutes before the watermark: indexed late, well within the overlap)
    let w1 = watermark(&first);
    stack.generate_between(
        150,
        w1 - SignedDuration::from_mins(5),
        w1 + SignedDuration::from_millis(500),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = stack.state().await.unwrap();
    let objects_before = stack.delivered().await.len();
    stack.sim.push_schedule(slots);
    // WHEN the next run meets it
    let failed = stack.invoke(json!({}), LONG).await;
    // THEN the invocation fails with a stable type and a message that says what happened
    let (t, message) = error_of(&failed);
    assert_eq!(t, error_type, "{name}: {message}\n{}", failed.logs.join("\n"));
    assert!(message.len() > 20, "{name}: {message}");
    // AND one log line holds the failed request's request-id and what it is about: for a
    // damaged record, the start of its raw text (as the simulator served it: re-serialised
    // without the field; the error quotes a record's first 200 bytes, not the whole of it)
    let request_id = stack.sim.requests().last().unwrap().request_id.clone();
    let damaged: Vec<String> = match damaged {
        Some(field) => stack
            .sim
            .activities()
            .iter()
            .map(|a| {
                let mut object: serde_json::Map<String, Value> =
                    serde_json::from_str(&a.raw).unwrap();
                object.remove(field.as_str());
                serde_json::to_string(&object).unwrap()
            })
            .collect(),
        None => vec![String::new()],
    };
    assert!(
        failed.logs.iter().any(|l| l.contains(&request_id)
            && logged.iter().all(|text| l.contains(text))
            && damaged.iter().any(|raw| l.contains(&raw[..raw.floor_char_boundary(150)]))),
        "{name}: no log line holds {request_id}, {logged:?} and the damaged record:\n{}",
        failed.logs.join("\n")
    );
    // AND nothing was delivered or advanced from the refused page
    let after = stack.state().await.unwrap();
    assert_eq!(after.state.watermark, before.state.watermark, "{name}");
    assert_eq!(after.state.window, before.state.window, "{name}");
    assert!(after.state.pending.is_none(), "{name}");
    assert_eq!(stack.delivered().await.len(), objects_before, "{name}");
    // AND the next healthy run catches up exactly once
    let last = stack.catch_up(3).await;
    let audit = stack.audit(watermark(&last), &HashSet::new()).await;
    report(&format!("API {name}"), &format!("run fails {error_type}; next run ok"), &audit);
    assert!(audit.is_clean(), "{name}: {audit}\nlast run: {last}");
    assert!(watermark(&last) > watermark(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_api_faults_fail_the_run_with_a_stable_type_and_change_nothing() {
    let cases = vec![
        case(
            "500 with x-should-retry: false",
            fails_then_recovers(
                "500 with x-should-retry: false",
                Options::default(),
                vec![Some(Fault::Status {
                    status: 500,
                    error_type: "api_error".into(),
                    retry_after: None,
                    should_retry: Some(false),
                })],
                "ApiUnavailable",
                &[],
                None,
            ),
        ),
        case(
            "malformed JSON",
            fails_then_recovers(
                "malformed JSON",
                Options::default(),
                vec![Some(Fault::MalformedBody)],
                "ApiResponseInvalid",
                &[],
                None,
            ),
        ),
        case(
            "record without id",
            fails_then_recovers(
                "record without id",
                Options::default(),
                vec![Some(Fault::MissingField { field: RecordField::Id })],
                "ApiResponseInvalid",
                &[],
                Some(RecordField::Id),
            ),
        ),
        case(
            "record without created_at",
            fails_then_recovers(
                "record without created_at",
                Options::default(),
                vec![Some(Fault::MissingField { field: RecordField::CreatedAt })],
                "ApiResponseInvalid",
                &[],
                Some(RecordField::CreatedAt),
            ),
        ),
        case(
            "non-UTF-8 bytes in a body",
            fails_then_recovers(
                "non-UTF-8 bytes in a body",
                Options::default(),
                vec![Some(Fault::InvalidUtf8)],
                "ApiResponseInvalid",
                &[],
                None,
            ),
        ),
        case(
            "400 invalid request (first page, no cursor)",
            fails_then_recovers(
                // A 400 for a first page (no cursor): the collector first takes it for a server that
                // caps pages at 1000 and asks again (the second 400 is final).
                "400 invalid request (first page, no cursor)",
                Options::default(),
                vec![Some(Fault::InvalidCursor), Some(Fault::InvalidCursor)],
                "ApiRequestRejected",
                &["invalid cursor"],
                None,
            ),
        ),
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
    update_secret(&stack, ROTATED_KEY).await;
    // THEN the next run resumes from the stored cursor and catches up exactly once
    let last = stack.catch_up(3).await;
    assert!(!stack.function.all_logs().is_empty());
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    assert!(audit.served >= 2500);
    report(
        "API 401 after some pages (key revoked mid-run)",
        "ApiKeyRejected; pages before kept; ok after rotation",
        &audit,
    );
}

// ---- API: odd pages and cursors ----

/// A two-page backlog collected through `slots`: everything must come once.
async fn odd_pages(name: &'static str, slots: Vec<Option<Fault>>) {
    // GIVEN a two-page backlog and the odd pages
    let mut stack = Stack::new(Options::small_pages()).await;
    stack.generate(1800, 120, 2);
    stack.sim.push_schedule(slots);
    // WHEN a run collects
    let summary = stack.collect().await;
    // THEN it got everything, once
    assert_eq!(summary["stop_reason"], "caught_up", "{name}: {summary}");
    let audit = stack.audit(watermark(&summary), &HashSet::new()).await;
    report(
        &format!("API {name}"),
        &format!("run ok (caught_up); {} duplicates dropped", summary["duplicates_dropped"]),
        &audit,
    );
    assert!(audit.is_clean(), "{name}: {audit}\n{summary}");
    assert!(audit.served >= 1800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_pages_with_more_are_followed_and_lose_nothing() {
    concurrently(vec![
        case(
            "empty page with has_more: true",
            odd_pages("empty page with has_more: true", vec![Some(Fault::EmptyPageWithMore)]),
        ),
        case(
            "empty pages with has_more, after a cursor",
            odd_pages(
                "empty pages with has_more, after a cursor",
                vec![None, None, Some(Fault::EmptyPageWithMore), Some(Fault::EmptyPageWithMore)],
            ),
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_cursor_that_does_not_move_duplicates_nothing() {
    // GIVEN a two-page backlog, and page 2 served with the cursor of page 1 (after the 400 for
    // limit 5000 and page 1)
    let mut stack = Stack::new(Options::small_pages()).await;
    stack.generate(1800, 120, 2);
    stack.sim.push_schedule([None, None, Some(Fault::StuckCursor)]);
    // WHEN a run collects
    let run = stack.invoke(json!({}), LONG).await;
    // THEN it follows the page again and drops what it delivered, or refuses the page (a stuck
    // cursor is not the API's contract) without advancing past it
    let kind = outcome_kind(&run);
    assert!(["ok:caught_up", "error:ApiResponseInvalid"].contains(&kind.as_str()), "{kind}");
    // AND nothing is delivered twice, and the next runs catch up
    let last = stack.catch_up(3).await;
    let audit = stack.audit(watermark(&last), &HashSet::new()).await;
    report("API a cursor that does not move", &format!("{kind}; next run ok"), &audit);
    assert!(audit.is_clean(), "{audit}");
    assert!(audit.served >= 1800);
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
    assert!(
        ["ok:deadline", "error:ApiUnavailable", "error:ApiResponseInvalid"]
            .contains(&kind.as_str()),
        "{kind}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    stack.state().await;
    // AND once the API behaves, the next runs catch up exactly once
    stack.sim.clear_faults();
    let last = stack.catch_up(3).await;
    let audit = stack.audit(watermark(&last), &HashSet::new()).await;
    report("API cursor stuck for good (60 pages)", &format!("{kind}; next run ok"), &audit);
    audit.assert_clean();
}

#[tokio::test]
async fn a_response_slower_than_the_time_left_stops_the_run_resumably() {
    // GIVEN a run with 8 s (it stops starting work at 6 s) and a response that takes 30 s
    let mut stack = Stack::new(Options::default()).await;
    stack.generate(200, 60, 2);
    stack.sim.push_faults([Fault::Delay(Duration::from_secs(30))]);
    // WHEN it collects
    let started = Instant::now();
    let slow = stack.invoke(json!({}), Duration::from_secs(8)).await;
    // THEN the request times out before the deadline, with no time left to retry: the run
    // ends by itself (not killed by Lambda) and leaves nothing half done
    let kind = outcome_kind(&slow);
    assert!(kind == "error:ApiUnavailable" || kind == "ok:deadline", "{kind}: {:?}", slow.outcome);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(stack.state().await.is_none_or(|s| s.state.pending.is_none()));
    // AND the next run catches up
    let last = stack.catch_up(2).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report(
        "API response slower than the client's timeout",
        &format!("{kind}; next run ok"),
        &audit,
    );
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
    let audit = stack.assert_exactly_once(watermark(&second)).await;
    assert!(watermark(&second) > watermark(&first));
    report(
        "API activities indexed late, within OVERLAP_SECONDS",
        "delivered once; late_arrivals counted",
        &audit,
    );
}

#[tokio::test]
async fn activities_indexed_later_than_the_overlap_are_counted_and_reported() {
    // GIVEN an overlap of 5 s and a five-page backlog of the last ten hours, whose last page is
    // slower than the first run has time for (kept clear of an hour's first minute: the
    // collector reconciles whole hours)
    let mut now = Timestamp::now();
    if now.as_second().rem_euclid(3600) < 60 {
        tokio::time::sleep(Duration::from_secs(61)).await;
        now = Timestamp::now();
    }
    let this_hour =
        Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(3600)).unwrap();
    let hour = this_hour - SignedDuration::from_hours(2);
    let mut stack = Stack::new(Options::small_pages().with_env("OVERLAP_SECONDS", "5")).await;
    stack.generate_between(
        4000,
        now - SignedDuration::from_hours(10),
        this_hour - SignedDuration::from_hours(1),
    );
    stack.generate_between(
        500,
        this_hour - SignedDuration::from_hours(1),
        now - SignedDuration::from_mins(1),
    );
    // AND activities of two hours ago that are not indexed yet
    let too_late = stack.sim.generate(&GenerateSpec {
        count: 7,
        from: hour + SignedDuration::from_mins(5),
        to: hour + SignedDuration::from_mins(55),
        hidden: true,
    });
    // (the 400 for limit 5000, four pages, then the fifth held past the run's stop line)
    stack.sim.push_schedule([
        None,
        None,
        None,
        None,
        None,
        Some(Fault::Delay(Duration::from_secs(30))),
    ]);
    let first = stack.invoke(json!({}), Duration::from_secs(20)).await;
    let kind = outcome_kind(&first);
    assert!(["ok:deadline", "error:ApiUnavailable"].contains(&kind.as_str()), "{kind}");
    // WHEN they are indexed, long after the window's cursor went past them, and a run finishes
    stack.sim.reveal_all();
    let next = stack.invoke(json!({}), LONG).await;
    let summary = next.outcome.response().cloned().unwrap_or_else(|| panic!("{:?}", next.outcome));
    // THEN none is dropped without a trace: each is counted in the summary and the metric, and
    // logged (and here, even delivered, once)
    let audit = stack.audit(watermark(&summary), &HashSet::new()).await;
    let delivered = too_late.iter().filter(|id| audit.delivered_ids.contains(*id)).count();
    report(
        "API activities indexed later than OVERLAP_SECONDS (behind the cursor)",
        &format!(
            "{} counted (late_beyond_overlap, LateBeyondOverlap), logged; {delivered} of {} delivered by the hourly reconciliation",
            summary["late_beyond_overlap"],
            too_late.len()
        ),
        &audit,
    );
    audit.assert_clean();
    assert_eq!(summary["late_beyond_overlap"].as_u64(), Some(too_late.len() as u64), "{summary}");
    assert!(
        next.logs.iter().any(|l| l.contains("later than the overlap")),
        "missed late activities are not reported in the logs:\n{}",
        next.logs.join("\n")
    );
    let dims = [("FunctionName", stack.function.function_name())];
    let metric = testkit::aws::metric_sum(
        &stack.clients.cloudwatch,
        &stack.namespace,
        "LateBeyondOverlap",
        &dims,
    )
    .await
    .unwrap();
    assert_eq!(metric, Some(too_late.len() as f64));
}

#[tokio::test]
async fn activities_indexed_after_their_hours_first_reconciliation_are_found_a_day_later() {
    // GIVEN an overlap of 5 s, and activities of 26 hours ago that are not indexed yet
    let now = Timestamp::now();
    let this_hour =
        Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(3600)).unwrap();
    let hour = this_hour - SignedDuration::from_hours(26);
    let mut stack = Stack::new(Options::default().with_env("OVERLAP_SECONDS", "5")).await;
    stack.generate_between(300, hour - SignedDuration::from_hours(1), now);
    let too_late = stack.sim.generate(&GenerateSpec {
        count: 7,
        from: hour + SignedDuration::from_mins(5),
        to: hour + SignedDuration::from_mins(55),
        hidden: true,
    });
    // AND a collector whose first pass went over that hour long ago (while they were hidden),
    // and whose second pass, a day after the hour, is due now
    stack.collect().await;
    stack.edit_state(|s| s.rechecked_until = Some(hour)).await;
    // WHEN they are indexed and the next run comes
    stack.sim.reveal_all();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = stack.invoke(json!({}), LONG).await;
    let summary = next.outcome.response().cloned().unwrap_or_else(|| panic!("{:?}", next.outcome));
    // THEN the second pass delivers each of them, once, and counts and logs them
    let audit = stack.audit(watermark(&summary), &HashSet::new()).await;
    report(
        "API activities indexed after their hour's first reconciliation (a day late)",
        &format!(
            "{} counted (late_beyond_overlap), logged, delivered by the second reconciliation pass",
            summary["late_beyond_overlap"]
        ),
        &audit,
    );
    audit.assert_clean();
    assert_eq!(summary["late_beyond_overlap"].as_u64(), Some(too_late.len() as u64), "{summary}");
    assert!(
        next.logs.iter().any(|l| l.contains("later than the overlap") && l.contains("second")),
        "{}",
        next.logs.join("\n")
    );
    let state = stack.state().await.unwrap().state;
    assert!(state.rechecked_until.is_some_and(|r| r > hour), "{state:?}");
}

#[tokio::test]
async fn a_stored_cursor_the_api_no_longer_takes_is_replaced_by_its_position() {
    // GIVEN a backlog of three pages and a run that stopped after two (its key revoked), leaving
    // a cursor in the state
    let mut stack = Stack::new(Options::small_pages()).await;
    stack.generate(2500, 120, 2);
    stack.sim.push_schedule([None, None, None, Some(Fault::RevokeKey)]);
    let failed = stack.invoke(json!({}), LONG).await;
    assert_eq!(error_of(&failed).0, "ApiKeyRejected");
    update_secret(&stack, ROTATED_KEY).await;
    // AND the API no longer takes that cursor (expired, or issued before a change on its side)
    stack
        .edit_state(|s| {
            let window = s.window.as_mut().expect("a window in progress");
            window.cursor = Some("cur_ZXhwaXJlZC1jdXJzb3ItZnJvbS1hbm90aGVyLWVyYQ".into());
        })
        .await;
    // WHEN the next run resumes
    let next = stack.invoke(json!({}), LONG).await;
    let summary = next.outcome.response().cloned().unwrap_or_else(|| panic!("{:?}", next.outcome));
    // THEN it reads the window again from the cursor's position: nothing lost, nothing twice
    assert_eq!(summary["cursor_restarts"].as_u64(), Some(1), "{summary}");
    assert!(next.logs.iter().any(|l| l.contains("refused the cursor")));
    let last = stack.catch_up(3).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    assert!(audit.served >= 2500);
    report(
        "API 400 for a stored cursor it no longer takes",
        "window read again from the cursor's position; run ok",
        &audit,
    );
}

// ---- AWS: S3 ----

/// A rule's `times` for "on every attempt": more than any retry policy makes.
const EVERY: u32 = 1000;

/// A stack with an hour of history (two objects a batch: the activities span two hours of
/// partitions) and a first healthy run, so faults meet a run with a state to keep.
async fn warmed_stack(options: Options) -> (Stack, Value) {
    let mut stack = Stack::new(options).await;
    stack.generate(200, 100, 40);
    let first = stack.collect().await;
    let w1 = watermark(&first);
    stack.generate_between(
        300,
        w1 - SignedDuration::from_mins(10),
        w1 + SignedDuration::from_millis(500),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    (stack, first)
}

/// After a faulted run: the state is valid, and healthy runs (waiting out a dead writer's lease
/// if need be) catch up exactly once. Reports the figures.
async fn recovers(stack: &mut Stack, class: &str, outcome: &str) -> Value {
    stack.state().await;
    stack.proxy.clear();
    let last = stack.catch_up(3).await;
    let audit = stack.audit(watermark(&last), &HashSet::new()).await;
    report(class, outcome, &audit);
    assert!(audit.is_clean(), "{class}: {audit}\nlast run: {last}");
    assert!(stack.state().await.unwrap().state.pending.is_none());
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_and_timeouts_on_put_object_are_retried_or_fail_resumably() {
    let cases = vec![
        case("two 503 SlowDown answers to the first put: the SDK's retries absorb them", async {
            // GIVEN two 503 SlowDown answers to the first put: the SDK's retries absorb them
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_slow_down()).times(2),
            );
            let summary = stack.collect().await;
            assert_eq!(summary["stop_reason"], "caught_up");
            assert_eq!(stack.proxy.rule_hits(), [2]);
            recovers(
                &mut stack,
                "S3 PutObject 503 SlowDown x2",
                "absorbed by the SDK's retries; run ok",
            )
            .await;
        }),
        case("puts that fail with 500 InternalError on every attempt", async {
            // GIVEN puts that fail with 500 InternalError on every attempt
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_internal_error())
                    .times(EVERY),
            );
            // WHEN a run writes its batch
            let failed = stack.invoke(json!({}), LONG).await;
            // THEN it fails with ArchiveUnavailable, its write intent left for the next run
            let (t, message) = error_of(&failed);
            assert_eq!(t, "ArchiveUnavailable", "{message}");
            assert!(message.contains("InternalError") || message.contains("S3"), "{message}");
            assert!(stack.state().await.unwrap().state.pending.is_some());
            // AND the next run waits out the lease, finds nothing was written, and catches up
            let next = recovers(
                &mut stack,
                "S3 PutObject 500 InternalError on every attempt",
                "ArchiveUnavailable; next run ok",
            )
            .await;
            assert_eq!(next["recovered_objects"], 0, "{next}");
        }),
        case("puts that S3 takes 12 s to answer, on every attempt, past the put timeout", async {
            // GIVEN puts that S3 takes 12 s to answer, on every attempt: past the collector's
            // put timeout, and they land all the same
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(
                    AwsService::S3,
                    "PutObject",
                    FaultAction::Delay(Duration::from_secs(12)),
                )
                .times(EVERY),
            );
            let started = Instant::now();
            let failed = stack.invoke(json!({}), LONG).await;
            let (t, message) = error_of(&failed);
            assert_eq!(t, "ArchiveUnavailable", "{message}");
            // (bounded: the batch's put and the manifest's, 10 s each at most)
            assert!(started.elapsed() < Duration::from_secs(30), "the put timeout bounds the wait");
            // WHEN the next run starts before the late write has landed
            // THEN it waits out the lease, finds the late object and counts it delivered
            let next = recovers(
                &mut stack,
                "S3 PutObject timeout (answers after 12 s; the writes land late)",
                "ArchiveUnavailable; next run recovers the late object",
            )
            .await;
            assert!(next["recovered_objects"].as_u64() >= Some(1), "{next}");
        }),
    ];
    concurrently(cases).await;
}

// ---- AWS: DynamoDB ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttling_and_conditional_check_failures_lose_and_duplicate_nothing() {
    let cases = vec![
        case("the write intent throttled twice: the SDK's retries absorb it", async {
            // GIVEN the write intent throttled twice: the SDK's retries absorb it
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::dynamodb_throttled())
                    .times(2),
            );
            assert_eq!(stack.collect().await["stop_reason"], "caught_up");
            recovers(
                &mut stack,
                "DynamoDB PutItem throttled x2",
                "absorbed by the SDK's retries; run ok",
            )
            .await;
        }),
        case("the state load throttled on every attempt", async {
            // GIVEN the state load throttled on every attempt
            let (mut stack, _) = warmed_stack(Options::default()).await;
            let before = stack.state().await.unwrap();
            stack.proxy.push(
                FaultRule::new(AwsService::DynamoDb, "GetItem", FaultAction::dynamodb_throttled())
                    .times(EVERY),
            );
            let failed = stack.invoke(json!({}), LONG).await;
            assert_eq!(error_of(&failed).0, "StateUnavailable");
            assert_eq!(stack.state().await.unwrap(), before, "nothing changed");
            recovers(
                &mut stack,
                "DynamoDB GetItem throttled on every attempt (state load)",
                "StateUnavailable, nothing changed; next run ok",
            )
            .await;
        }),
        case("the write intent throttled on every attempt", async {
            // GIVEN the write intent throttled on every attempt
            let (mut stack, _) = warmed_stack(Options::default()).await;
            let before = stack.state().await.unwrap();
            let objects = stack.delivered().await.len();
            stack.proxy.push(
                FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::dynamodb_throttled())
                    .times(EVERY),
            );
            let failed = stack.invoke(json!({}), LONG).await;
            assert_eq!(error_of(&failed).0, "StateUnavailable");
            // THEN no object was written before the intent was committed
            assert_eq!(stack.state().await.unwrap(), before);
            assert_eq!(stack.delivered().await.len(), objects);
            recovers(
                &mut stack,
                "DynamoDB PutItem throttled on every attempt (write intent)",
                "StateUnavailable, nothing written; next run ok",
            )
            .await;
        }),
        case("the commit after the writes throttled on every attempt", async {
            // GIVEN the commit after the writes throttled on every attempt
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::dynamodb_throttled())
                    .after(1)
                    .times(EVERY),
            );
            let failed = stack.invoke(json!({}), LONG).await;
            assert_eq!(error_of(&failed).0, "StateUnavailable");
            // THEN the objects are written and the intent says so
            assert!(stack.state().await.unwrap().state.pending.is_some());
            let next = recovers(
                &mut stack,
                "DynamoDB PutItem throttled on every attempt (commit after the writes)",
                "StateUnavailable; next run recovers the written objects",
            )
            .await;
            assert!(next["recovered_objects"].as_u64() >= Some(1), "{next}");
        }),
        case(
            "a conditional-check failure on the write intent (as if another run had won)",
            async {
                // GIVEN a conditional-check failure on the write intent (as if another run had won)
                let (mut stack, _) = warmed_stack(Options::default()).await;
                let objects = stack.delivered().await.len();
                stack.proxy.push(FaultRule::new(
                    AwsService::DynamoDb,
                    "PutItem",
                    FaultAction::dynamodb_conditional_check_failed(),
                ));
                let failed = stack.invoke(json!({}), LONG).await;
                let (t, message) = error_of(&failed);
                assert_eq!(t, "ConcurrentRun", "{message}");
                assert_eq!(stack.delivered().await.len(), objects, "it stopped before writing");
                recovers(
                    &mut stack,
                    "DynamoDB ConditionalCheckFailed (write intent)",
                    "ConcurrentRun, nothing written; next run ok",
                )
                .await;
            },
        ),
        case("a conditional-check failure on the commit after the writes", async {
            // GIVEN a conditional-check failure on the commit after the writes
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(
                    AwsService::DynamoDb,
                    "PutItem",
                    FaultAction::dynamodb_conditional_check_failed(),
                )
                .after(1),
            );
            let failed = stack.invoke(json!({}), LONG).await;
            assert_eq!(error_of(&failed).0, "ConcurrentRun");
            recovers(
                &mut stack,
                "DynamoDB ConditionalCheckFailed (commit after the writes)",
                "ConcurrentRun; next run recovers the written objects",
            )
            .await;
        }),
        case("a commit that lands but whose answer is lost: the SDK sends it again", async {
            // GIVEN a commit that lands but whose answer is lost: the SDK sends it again
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::Drop));
            let run = stack.invoke(json!({}), LONG).await;
            let kind = outcome_kind(&run);
            // THEN the resent commit meets its own first copy's version, and the store tells it
            // from another run's commit (the stored item is this run's, stamped by it): the run
            // goes on and succeeds
            assert_eq!(kind, "ok:caught_up", "the resent commit was taken for another run's");
            recovers(
                &mut stack,
                "DynamoDB PutItem answer lost (the commit landed)",
                &format!("{kind}; next run ok"),
            )
            .await;
        }),
    ];
    concurrently(cases).await;
}

// ---- AWS: Secrets Manager and CloudWatch ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_errors_fail_before_any_request_and_change_nothing() {
    let cases = [
        (
            "500 InternalServiceError",
            FaultAction::internal_service_error(),
            EVERY,
            "SecretUnavailable",
        ),
        ("400 AccessDeniedException", FaultAction::access_denied(), 1, "SecretAccessDenied"),
    ]
    .into_iter()
    .map(|(name, action, times, expected)| {
        case(format!("Secrets Manager {name}"), async move {
            let (mut stack, _) = warmed_stack(Options::default()).await;
            // a fresh sandbox: a warm one would use its cached key
            stack.function = stack.another_function();
            let before = stack.state().await.unwrap();
            let calls = stack.sim.requests().len();
            stack.proxy.push(
                FaultRule::new(AwsService::SecretsManager, "GetSecretValue", action.clone())
                    .times(times),
            );
            let failed = stack.invoke(json!({}), LONG).await;
            let (t, message) = error_of(&failed);
            assert_eq!(t, expected, "{message}");
            assert!(message.contains(&stack.secret_id), "names the secret: {message}");
            assert_eq!(stack.sim.requests().len(), calls, "no API request without a key");
            assert_eq!(stack.state().await.unwrap(), before);
            recovers(
                &mut stack,
                &format!(
                    "Secrets Manager GetSecretValue {name}{}",
                    if times == EVERY { " on every attempt" } else { " once" }
                ),
                &format!("{expected}, nothing changed; next run ok"),
            )
            .await;
        })
    })
    .collect();
    concurrently(cases).await;
}

#[tokio::test]
async fn a_cloudwatch_failure_loses_and_duplicates_nothing_and_is_visible_in_the_logs() {
    // GIVEN PutMetricData failing on every attempt
    let (mut stack, first) = warmed_stack(Options::default()).await;
    stack.proxy.push(
        FaultRule::new(
            AwsService::CloudWatch,
            "PutMetricData",
            FaultAction::internal_service_error(),
        )
        .times(EVERY),
    );
    // WHEN a run collects
    let failed = stack.invoke(json!({}), LONG).await;
    // THEN the invocation fails with MetricsUnavailable, the data delivered and committed
    let (t, message) = error_of(&failed);
    assert_eq!(t, "MetricsUnavailable", "{message}");
    let state = stack.state().await.unwrap();
    assert!(state.state.watermark > Some(watermark(&first)));
    assert!(state.state.pending.is_none());
    // AND the failure is in the logs, naming the namespace
    assert!(
        failed.logs.iter().any(|l| l.contains("metric") && l.contains(&stack.namespace)),
        "the metric failure is not in the logs:\n{}",
        failed.logs.join("\n")
    );
    // AND the next run neither re-delivers nor misses anything
    let next = recovers(
        &mut stack,
        "CloudWatch PutMetricData 500 on every attempt",
        "MetricsUnavailable, data delivered and committed, logged; next run ok",
    )
    .await;
    assert_eq!(next["recovered_objects"], 0);
}

// ---- The process: kills at chosen points, deadlines, concurrent runs, warm reuse ----

/// Runs a scheduled invocation of `function` and kills its process (`kill -9`) as soon as
/// `ready` says the moment has come; returns how the invocation ended.
async fn kill_during_run(
    function: &mut LambdaFunction,
    ready: impl Future<Output = bool>,
) -> String {
    // warm a sandbox so its pid is known
    let warm = invoke(function, json!({"action": "nonsense"}), LONG).await;
    assert_eq!(error_of(&warm).0, "InvocationInvalid");
    let pid = function.pid().unwrap();
    let run = invoke(function, json!({}), LONG);
    let kill = async {
        assert!(ready.await, "the moment to kill never came");
        let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()));
    };
    let (invocation, ()) = tokio::join!(run, kill);
    outcome_kind(&invocation)
}

/// Waits for `n` more requests to `operation` than there are now, then (if `settle`) a moment
/// more, for a forwarded one to land.
fn arrived<'a>(
    proxy: &'a FaultProxy,
    service: AwsService,
    operation: &'a str,
    n: u32,
    settle: bool,
) -> impl Future<Output = bool> + 'a {
    let base = proxy.count(service, operation);
    async move {
        let ok = proxy.wait_for(service, operation, base + n, LONG).await;
        if settle {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        ok
    }
}

/// Waits until the bucket holds more than `n` activity objects.
async fn objects_exceed(clients: &testkit::aws::Clients, bucket: &str, n: usize) -> bool {
    for _ in 0..200 {
        let objects = testkit::aws::list_objects(&clients.s3, bucket, PREFIX).await.unwrap();
        if objects.iter().filter(|o| !o.key.split('/').any(|s| s.starts_with('_'))).count() > n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn activity_objects(stack: &Stack) -> usize {
    let objects =
        testkit::aws::list_objects(&stack.clients.s3, &stack.bucket, PREFIX).await.unwrap();
    objects.iter().filter(|o| !o.key.split('/').any(|s| s.starts_with('_'))).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_killed_before_and_after_a_write_or_a_commit_lose_and_duplicate_nothing() {
    // A held request (never forwarded, or never answered) for longer than any test.
    const HOLD: Duration = Duration::from_secs(300);
    let cases = vec![
        case(
            "a run killed once its write intent is committed, before any object is written",
            async {
                // GIVEN a run killed once its write intent is committed, before any object is written
                let (mut stack, _) = warmed_stack(Options::default()).await;
                let objects = activity_objects(&stack).await;
                stack.proxy.push(FaultRule::new(
                    AwsService::DynamoDb,
                    "PutItem",
                    FaultAction::DelayAnswer(HOLD),
                ));
                let ready = arrived(&stack.proxy, AwsService::DynamoDb, "PutItem", 1, true);
                assert_eq!(kill_during_run(&mut stack.function, ready).await, "crashed");
                // THEN the intent is there, no object is, and the next run copes
                assert!(stack.state().await.unwrap().state.pending.is_some());
                assert_eq!(activity_objects(&stack).await, objects);
                recovers(
                    &mut stack,
                    "killed before an S3 write (intent committed)",
                    "crashed; next run waits out the lease, ok",
                )
                .await;
            },
        ),
        case(
            "a run killed while its first object is being written (the write never lands)",
            async {
                // GIVEN a run killed while its first object is being written (the write never lands)
                let (mut stack, _) = warmed_stack(Options::default()).await;
                stack.proxy.push(FaultRule::new(
                    AwsService::S3,
                    "PutObject",
                    FaultAction::Delay(HOLD),
                ));
                let ready = arrived(&stack.proxy, AwsService::S3, "PutObject", 1, false);
                assert_eq!(kill_during_run(&mut stack.function, ready).await, "crashed");
                recovers(
                    &mut stack,
                    "killed during an S3 write (it never lands)",
                    "crashed; next run ok",
                )
                .await;
            },
        ),
        case("a run killed right after its first object is written, before its commit", async {
            // GIVEN a run killed right after its first object is written, before its commit
            let (mut stack, _) = warmed_stack(Options::default()).await;
            let objects = activity_objects(&stack).await;
            stack.proxy.push(FaultRule::new(
                AwsService::S3,
                "PutObject",
                FaultAction::DelayAnswer(HOLD),
            ));
            let ready = objects_exceed(&stack.clients, &stack.bucket, objects);
            assert_eq!(kill_during_run(&mut stack.function, ready).await, "crashed");
            // THEN the next run finds the object through the intent and delivers nothing twice
            let next = recovers(
                &mut stack,
                "killed after an S3 write, before the commit",
                "crashed; next run recovers the object",
            )
            .await;
            assert!(next["recovered_objects"].as_u64() >= Some(1), "{next}");
        }),
        case("a run killed while the commit after its writes is in flight (never lands)", async {
            // GIVEN a run killed while the commit after its writes is in flight (never lands)
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::Delay(HOLD)).after(1),
            );
            let ready = arrived(&stack.proxy, AwsService::DynamoDb, "PutItem", 2, false);
            assert_eq!(kill_during_run(&mut stack.function, ready).await, "crashed");
            let next = recovers(
                &mut stack,
                "killed before a state commit (objects written)",
                "crashed; next run recovers the objects",
            )
            .await;
            assert!(next["recovered_objects"].as_u64() >= Some(1), "{next}");
        }),
        case("a run killed right after the commit after its writes landed", async {
            // GIVEN a run killed right after the commit after its writes landed
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::DynamoDb, "PutItem", FaultAction::DelayAnswer(HOLD))
                    .after(1),
            );
            let ready = arrived(&stack.proxy, AwsService::DynamoDb, "PutItem", 2, true);
            assert_eq!(kill_during_run(&mut stack.function, ready).await, "crashed");
            assert!(stack.state().await.unwrap().state.pending.is_none());
            recovers(
                &mut stack,
                "killed after a state commit",
                "crashed; next run ok, nothing to recover",
            )
            .await;
        }),
    ];
    concurrently(cases).await;
}

#[tokio::test]
async fn a_deadline_reached_mid_backfill_stops_resumably_and_the_next_runs_resume() {
    // GIVEN a backlog of nine pages served a little slowly (0.6 s a page: every request started
    // with the second the collector insists on completes)
    let mut options = Options::small_pages();
    options.sim.latency = Duration::from_millis(600);
    let mut stack = Stack::new(options).await;
    stack.generate(8800, 300, 2);
    // WHEN runs get 6 s each (they stop starting work at 4 s)
    let mut stops = Vec::new();
    let mut resumable = 0;
    for _ in 0..10 {
        let run = stack.invoke(json!({}), Duration::from_secs(6)).await;
        let kind = outcome_kind(&run);
        // THEN each stops at its deadline with a committed cursor (or, its window done, before
        // the next one's first page), until one catches up
        // (under a heavy load the cleanup after the stop may not fit: the run is then cut at
        // its deadline, DeadlineExceeded, which is as resumable)
        assert!(
            kind.starts_with("ok:") || kind == "error:DeadlineExceeded",
            "{kind}: {:?}\n{}",
            run.outcome,
            run.logs.join("\n")
        );
        let state = stack.state().await.unwrap();
        assert!(state.state.pending.is_none());
        if kind == "ok:deadline" && state.state.window.as_ref().is_some_and(|w| w.cursor.is_some())
        {
            resumable += 1;
        }
        stops.push(kind.clone());
        if kind == "ok:caught_up" {
            break;
        }
    }
    assert!(resumable >= 1, "{stops:?}");
    assert_eq!(stops.last().map(String::as_str), Some("ok:caught_up"), "{stops:?}");
    // AND everything came exactly once
    let last = stack.catch_up(2).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report(
        "Lambda deadline reached mid-backfill (6 s per run, 9 pages)",
        &format!("{} runs stop at the deadline (ok, resumable), then caught_up", stops.len() - 1),
        &audit,
    );
}

#[tokio::test]
async fn a_slow_but_healthy_api_near_the_deadline_stops_the_run_rather_than_failing_it() {
    // GIVEN an API that takes 2 s a page, and a backlog of several pages
    let mut options = Options::small_pages();
    options.sim.latency = Duration::from_secs(2);
    let mut stack = Stack::new(options).await;
    stack.generate(4500, 300, 2);
    // WHEN a run with 8 s collects (it stops starting work at 6 s: its third request starts
    // with about 1.5 s left, the minimum being 1 s)
    let run = stack.invoke(json!({}), Duration::from_secs(8)).await;
    // THEN it stops at its deadline, resumably: nothing is wrong with the API
    let kind = outcome_kind(&run);
    let last = stack.catch_up(4).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report("API healthy but slow (2 s a page) near the deadline", &kind, &audit);
    assert_eq!(kind, "ok:deadline", "{:?}", run.outcome);
}

#[tokio::test]
async fn two_invocations_at_once_lose_and_duplicate_nothing() {
    // GIVEN two sandboxes of the function and a multi-page backlog served a little slowly
    let mut options = Options::small_pages();
    options.sim.latency = Duration::from_millis(150);
    let mut stack = Stack::new(options).await;
    let mut other = stack.another_function();
    stack.generate(2500, 240, 2);
    let mut outcomes = Vec::new();
    for round in 0..4 {
        // WHEN both are invoked at the same moment
        let (a, b) = tokio::join!(
            invoke(&mut stack.function, json!({}), LONG),
            invoke(&mut other, json!({}), LONG)
        );
        // THEN each succeeds, finds the other's lease, or loses the race cleanly
        for run in [&a, &b] {
            let kind = outcome_kind(run);
            assert!(
                kind.starts_with("ok:") || kind == "error:ConcurrentRun",
                "round {round}: {kind}: {:?}",
                run.outcome
            );
            outcomes.push(kind);
        }
        stack.state().await;
        // AND new activities keep arriving
        stack.generate(150, 10, 0);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let last = stack.catch_up(3).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    outcomes.sort();
    outcomes.dedup();
    report("two invocations at once (4 rounds)", &outcomes.join(", "), &audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_process_reused_after_a_failed_invocation_catches_up() {
    let cases = vec![
        case("a warm process whose last invocation failed on the API", async {
            // GIVEN a warm process whose last invocation failed on the API
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.sim.push_faults([Fault::Status {
                status: 500,
                error_type: "api_error".into(),
                retry_after: None,
                should_retry: Some(false),
            }]);
            let failed = stack.invoke(json!({}), LONG).await;
            assert_eq!(error_of(&failed).0, "ApiUnavailable");
            // WHEN it is invoked again
            let next = stack.invoke(json!({}), LONG).await;
            // THEN the same process serves it and catches up
            assert!(!next.cold_start);
            assert_eq!(outcome_kind(&next), "ok:caught_up", "{:?}", next.outcome);
            recovers(
                &mut stack,
                "warm process reused after a failed invocation (API 500)",
                "same process; ok",
            )
            .await;
        }),
        case("a warm process whose last invocation failed mid-batch (its intent is left)", async {
            // GIVEN a warm process whose last invocation failed mid-batch (its intent is left)
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(AwsService::S3, "PutObject", FaultAction::s3_internal_error())
                    .times(EVERY),
            );
            let failed = stack.invoke(json!({}), LONG).await;
            assert_eq!(error_of(&failed).0, "ArchiveUnavailable");
            // WHEN S3 recovers and it is invoked again
            stack.proxy.clear();
            let next = stack.invoke(json!({}), LONG).await;
            // THEN the same process waits out its own dead batch's lease and catches up
            assert!(!next.cold_start);
            assert_eq!(outcome_kind(&next), "ok:caught_up", "{:?}", next.outcome);
            recovers(
                &mut stack,
                "warm process reused after a failed invocation (S3 500 mid-batch)",
                "same process; waits out the lease; ok",
            )
            .await;
        }),
    ];
    concurrently(cases).await;
}

// ---- Bad input: configuration, secrets, payloads, huge activities ----

/// What a refused invocation must leave as it was: the state item, the objects, the API.
struct Untouched {
    state: Option<anthropic_compliance_collector::state::Versioned>,
    lines: usize,
    api_calls: usize,
}

async fn snapshot(stack: &Stack) -> Untouched {
    Untouched {
        state: stack.state().await,
        lines: stack.delivered().await.len(),
        api_calls: stack.sim.requests().len(),
    }
}

async fn assert_untouched(stack: &Stack, before: &Untouched, what: &str) {
    assert_eq!(stack.state().await, before.state, "{what}: the state item changed");
    assert_eq!(stack.delivered().await.len(), before.lines, "{what}: objects changed");
    assert_eq!(stack.sim.requests().len(), before.api_calls, "{what}: the API was called");
}

#[tokio::test]
async fn every_invalid_configuration_value_is_named_before_any_io_and_changes_nothing() {
    // GIVEN a deployment that has delivered once
    let (mut stack, _) = warmed_stack(Options::default()).await;
    let before = snapshot(&stack).await;
    let cases: &[(&str, Option<&str>)] = &[
        ("API_KEY_SECRET_ID", None),
        ("API_KEY_SECRET_ID", Some("   ")),
        ("STATE_TABLE", None),
        ("OUTPUT_BUCKET", None),
        ("OUTPUT_BUCKET", Some("s3://my-bucket/activity")),
        ("OUTPUT_PREFIX", Some("/anthropic/")),
        ("OUTPUT_PREFIX", Some("_hidden/activity/")),
        ("ORGANIZATION_IDS", Some("org_good, acme corp")),
        ("METRIC_NAMESPACE", Some("AWS/Lambda")),
        ("API_BASE_URL", Some("http://api.example.com")),
        ("API_BASE_URL", Some("ftp://127.0.0.1/")),
        ("API_BASE_URL", Some("not a url")),
        ("SETTLE_SECONDS", Some("two minutes")),
        ("SETTLE_SECONDS", Some("86401")),
        ("OVERLAP_SECONDS", Some("-1")),
        ("INITIAL_LOOKBACK_HOURS", Some("0")),
        ("MAX_REQUESTS_PER_MINUTE", Some("601")),
        ("MAX_REQUESTS_PER_MINUTE", Some("0")),
    ];
    for (variable, value) in cases {
        // WHEN a function starts with one bad value
        let mut function = stack.function_with(&[(variable, *value)]);
        let refused = invoke(&mut function, json!({}), LONG).await;
        // THEN the invocation fails with ConfigurationInvalid naming that variable
        let (t, message) = error_of(&refused);
        assert_eq!(t, "ConfigurationInvalid", "{variable}={value:?}: {message}");
        assert!(message.contains(variable), "{variable}={value:?}: {message}");
        // AND nothing was read, written or asked
        assert_untouched(&stack, &before, &format!("{variable}={value:?}")).await;
    }
    // AND the healthy configuration still works
    let last = stack.catch_up(2).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report(
        &format!("invalid configuration ({} values, all 11 variables)", cases.len()),
        "ConfigurationInvalid naming the variable; nothing read or written",
        &audit,
    );
}

#[tokio::test]
async fn bad_secrets_fail_clearly_without_a_request_or_a_trace_of_their_value() {
    // GIVEN a deployment that has delivered once
    let (mut stack, _) = warmed_stack(Options::default()).await;
    let before = snapshot(&stack).await;
    let hidden = "sk-ant-api01-stored-under-the-wrong-field-31337";
    let cases = [
        ("   ", "SecretInvalid"),
        (r#"{"api_key": ""}"#, "SecretInvalid"),
        (&*format!(r#"{{"apikey": "{hidden}"}}"#), "SecretInvalid"),
        (&*format!(r#"{{"key": {{"api_key": "{hidden}"}}}}"#), "SecretInvalid"),
        ("REPLACE_ME_WITH_YOUR_ANTHROPIC_COMPLIANCE_API_KEY", "SecretPlaceholder"),
        (
            r#"{"api_key": "REPLACE_ME_WITH_YOUR_ANTHROPIC_COMPLIANCE_API_KEY"}"#,
            "SecretPlaceholder",
        ),
        (&*format!("{hidden} trailing words"), "SecretInvalid"),
    ];
    for (secret, expected) in cases {
        // WHEN the secret holds a bad value and a fresh sandbox reads it
        update_secret(&stack, secret).await;
        let mut function = stack.another_function();
        let refused = invoke(&mut function, json!({}), LONG).await;
        // THEN it fails with a clear type, and neither its message nor a log line holds the value
        let (t, message) = error_of(&refused);
        assert_eq!(t, expected, "{secret:?}: {message}");
        for line in refused.logs.iter().chain([&message]) {
            assert!(!line.contains(hidden), "the secret's value leaked: {line}");
        }
        assert_untouched(&stack, &before, secret).await;
    }
    // AND with the key stored again, the next run catches up
    update_secret(&stack, KEY).await;
    stack.function = stack.another_function();
    let last = stack.catch_up(2).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report(
        &format!(
            "bad secrets ({} values: empty, JSON without api_key, placeholder, ...)",
            cases.len()
        ),
        "SecretInvalid / SecretPlaceholder; no request; value never logged",
        &audit,
    );
}

#[tokio::test]
async fn invocation_payloads_of_the_wrong_shape_are_refused_and_change_nothing() {
    let (mut stack, _) = warmed_stack(Options::default()).await;
    let before = snapshot(&stack).await;
    let payloads = [
        json!([1, 2]),
        json!("collect"),
        json!(42),
        json!(true),
        json!({"action": 3}),
        json!({"action": "erase"}),
        json!({"action": "backfill"}),
        json!({"action": "backfill", "from": "yesterday", "to": "2026-01-01T00:00:00Z"}),
        json!({"action": "backfill", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        json!({"dry_run": "yes"}),
        json!({"dryRun": true}),
    ];
    for payload in &payloads {
        let refused = stack.invoke(payload.clone(), LONG).await;
        let (t, message) = error_of(&refused);
        assert_eq!(t, "InvocationInvalid", "{payload}: {message}");
        assert_untouched(&stack, &before, &payload.to_string()).await;
    }
    // the same warm process goes on collecting
    let last = stack.catch_up(2).await;
    let audit = stack.assert_exactly_once(watermark(&last)).await;
    report(
        &format!("invocation payloads of the wrong shape ({})", payloads.len()),
        "InvocationInvalid; nothing read or written",
        &audit,
    );
}

#[tokio::test]
async fn activities_of_several_megabytes_are_delivered_byte_for_byte() {
    // GIVEN ordinary activities and two of about 4 MB (one with a multi-byte UTF-8 text)
    let mut stack = Stack::new(Options::default()).await;
    stack.generate(200, 60, 2);
    let at = (Timestamp::now() - SignedDuration::from_mins(30)).to_string();
    let big_ascii = format!(
        r#"{{"id":"activity_huge_ascii_000000000001","created_at":"{at}","organization_id":null,"organization_uuid":null,"actor":{{"type":"api_actor","api_key_id":"apikey_x","ip_address":"10.0.0.1","user_agent":"x"}},"type":"claude_file_uploaded","content":"{}"}}"#,
        "A".repeat(4 * 1024 * 1024)
    );
    let big_utf8 = format!(
        r#"{{"id":"activity_huge_utf8_0000000000002","created_at":"{at}","organization_id":null,"organization_uuid":null,"actor":{{"type":"system_actor","service":"x"}},"type":"claude_chat_created","title":"{}"}}"#,
        "日本語のタイトル ".repeat(170_000)
    );
    for raw in [&big_ascii, &big_utf8] {
        stack.sim.insert_raw(raw, false).unwrap();
    }
    // WHEN a run collects
    let summary = stack.collect().await;
    // THEN both are delivered once, byte for byte
    assert_eq!(summary["stop_reason"], "caught_up");
    let audit = stack.assert_exactly_once(watermark(&summary)).await;
    let lines = stack.lines().await;
    for raw in [&big_ascii, &big_utf8] {
        assert_eq!(lines.iter().filter(|(_, l)| l == raw).count(), 1);
    }
    report(
        "activities of several MB (4 MB ASCII, 4 MB multi-byte UTF-8)",
        "delivered byte for byte",
        &audit,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_aws_call_near_the_deadline_does_not_get_the_run_killed() {
    let cases = [
        (AwsService::S3, "PutObject", 0),
        (AwsService::DynamoDb, "PutItem", 0),
        (AwsService::CloudWatch, "PutMetricData", 0),
    ]
    .into_iter()
    .map(|(service, operation, after)| {
        let name = format!("{service} {operation} slower than the time left");
        let case = Box::pin(async move {
            // GIVEN a run with 8 s (it stops starting work at 6 s) and one AWS call that takes 30 s
            let (mut stack, _) = warmed_stack(Options::default()).await;
            stack.proxy.push(
                FaultRule::new(service, operation, FaultAction::Delay(Duration::from_secs(30)))
                    .after(after)
                    .times(EVERY),
            );
            // WHEN it collects
            let run = stack.invoke(json!({}), Duration::from_secs(8)).await;
            // THEN it gives up on the call in time and answers (a failure or a stop), rather
            // than being killed by Lambda at its deadline with nothing reported
            let kind = outcome_kind(&run);
            recovers(
                &mut stack,
                &format!("AWS {service} {operation} slower than the time left"),
                &kind,
            )
            .await;
            (format!("{service} {operation}"), kind)
        });
        (name, case)
    })
    .collect();
    let killed: Vec<_> =
        concurrently(cases).await.into_iter().filter(|(_, kind)| kind == "timeout").collect();
    assert!(killed.is_empty(), "killed by Lambda at the deadline: {killed:?}");
}
