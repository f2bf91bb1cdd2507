//! The built Lambda binary, driven through the Lambda Runtime API protocol, against the compliance
//! simulator and moto: what a user deploys, as a user's invocations see it.

use std::collections::HashSet;
use std::time::Duration;

use compliance_sim::GenerateSpec;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testkit::aws;
use testkit::fault_proxy::{AwsService, FaultAction, FaultRule};
use testkit::lambda::Outcome;

use crate::support::*;

#[tokio::test]
async fn runs_deliver_every_activity_exactly_once_as_new_and_late_ones_arrive() {
    // GIVEN six hours of history, and some activities indexed late
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 3000, from: ago(360), to: ago(10), hidden: false });
    stack.sim.generate(&GenerateSpec { count: 25, from: ago(9), to: ago(2), hidden: true });

    // WHEN the first (cold) run collects
    let first = stack.collect().await;
    assert_eq!(first["status"], "ok");
    assert_eq!(first["stop_reason"], "caught_up");
    assert!(first["delivered"].as_u64().unwrap() >= 3000, "{first}");
    let after_first = stack.assert_exactly_once(watermark(&first)).await.delivered_lines;

    // AND new activities arrive while the late ones get indexed
    stack.sim.reveal_all();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = Timestamp::now();
    stack.sim.generate(&GenerateSpec {
        count: 400,
        from: watermark(&first),
        to: now - SignedDuration::from_millis(1050),
        hidden: false,
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = stack.collect().await;
    // THEN the second (warm) run delivers the new ones and the late ones, once
    assert_eq!(second["late_arrivals"].as_u64().unwrap(), 25, "{second}");
    assert!(second["duplicates_dropped"].as_u64().unwrap() > 0, "the overlap re-reads: {second}");
    let after_second = stack.assert_exactly_once(watermark(&second)).await.delivered_lines;
    assert!(after_second >= after_first + 425);

    // AND a third run finds only the collector's own calls
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = stack.collect().await;
    let total = stack.assert_exactly_once(watermark(&third)).await.delivered_lines;
    assert_eq!(
        total as u64,
        [&first, &second, &third].iter().map(|s| s["delivered"].as_u64().unwrap()).sum::<u64>()
    );

    // AND the state item and the metric tell the same story
    let item = stack.state_item().await.unwrap();
    assert!(item["watermark"].contains(&third["watermark"].as_str().unwrap().to_string()));
    assert!(item["delivered_total"].contains(&total.to_string()), "{item:?}");
    assert!(!item.contains_key("pending_keys"));
    let dims = [("FunctionName", stack.function.function_name())];
    let sum =
        aws::metric_sum(&stack.clients.cloudwatch, &stack.namespace, "EventsProcessed", &dims)
            .await
            .unwrap();
    assert_eq!(sum, Some(total as f64));
    let points = stack.metric_points("EventsProcessed").await;
    assert_eq!(points.len(), 3, "one datapoint per run: {points:?}");
}

#[tokio::test]
async fn the_api_key_never_appears_in_any_log_line() {
    // GIVEN the most verbose logging, a run that succeeds and one that is refused
    let mut stack =
        Stack::new(Options { env: vec![("RUST_LOG", "trace".into())], ..Options::default() }).await;
    stack.sim.generate(&GenerateSpec { count: 50, from: ago(60), to: ago(5), hidden: false });
    stack.collect().await;
    // WHEN we read every line the process wrote
    let logs = stack.function.all_logs();
    assert!(logs.len() > 10, "trace logging should say a lot");
    // THEN neither the key nor any long piece of it is there
    for line in &logs {
        assert!(!line.contains(KEY) && !line.contains(&KEY[10..30]), "key leaked: {line}");
    }
    assert!(logs.iter().any(|l| l.contains("req_")), "request ids are logged");
}

#[tokio::test]
async fn a_rejected_key_or_missing_scope_fails_with_a_stable_type_and_changes_nothing() {
    for (secret, error_type) in
        [("sk-ant-api01-revoked", "ApiKeyRejected"), (WITHOUT_SCOPE_KEY, "ApiScopeMissing")]
    {
        let mut stack =
            Stack::new(Options { secret: Some(secret.into()), ..Options::default() }).await;
        stack.sim.generate(&GenerateSpec { count: 20, from: ago(60), to: ago(5), hidden: false });
        let invocation = stack.invoke(json!({}), LONG).await;
        match &invocation.outcome {
            Outcome::Error { error_type: t, error_message } => {
                assert_eq!(t, error_type, "{error_message}");
                assert!(!error_message.contains(secret));
            }
            other => panic!("expected {error_type}, got {other:?}"),
        }
        assert!(stack.delivered().await.is_empty());
        assert_eq!(stack.state_item().await, None);
    }
}

#[tokio::test]
async fn missing_secret_missing_bucket_and_placeholder_fail_and_change_nothing() {
    let cases: [(Options, &str); 3] = [
        (Options { secret: None, ..Options::default() }, "SecretNotFound"),
        (Options { create_bucket: false, ..Options::default() }, "BucketNotFound"),
        (
            Options {
                secret: Some("REPLACE_ME_WITH_YOUR_ANTHROPIC_COMPLIANCE_API_KEY".into()),
                ..Options::default()
            },
            "SecretPlaceholder",
        ),
    ];
    for (options, expected) in cases {
        let mut stack = Stack::new(options).await;
        stack.sim.generate(&GenerateSpec { count: 20, from: ago(60), to: ago(5), hidden: false });
        let invocation = stack.invoke(json!({}), LONG).await;
        assert!(
            matches!(&invocation.outcome, Outcome::Error { error_type, .. } if error_type == expected),
            "expected {expected}: {:?}",
            invocation.outcome
        );
        assert_eq!(
            stack.state_item().await,
            None,
            "{expected}: the state item must not be touched"
        );
        // AND the run still counts: zero events processed, so the alarm sees a failing run
        let points = stack.metric_points("EventsProcessed").await;
        assert_eq!(points, [0.0], "{expected}: one zero datapoint");
    }
}

#[tokio::test]
async fn a_bucket_that_refuses_writes_fails_the_run_before_anything_is_committed() {
    // GIVEN a bucket whose policy refuses the function's writes
    let mut stack = Stack::new(Options::default()).await;
    stack.sim.generate(&GenerateSpec { count: 20, from: ago(60), to: ago(5), hidden: false });
    let denied = FaultAction::fail(403, "AccessDenied");
    stack.proxy.push(FaultRule::new(AwsService::S3, "PutObject", denied).times(1000));
    // WHEN a run collects
    let invocation = stack.invoke(json!({}), LONG).await;
    // THEN it fails as BucketAccessDenied, and no state item was written (no intent, no lease)
    let (error_type, message) = error_of(&invocation);
    assert_eq!(error_type, "BucketAccessDenied", "{message}");
    assert_eq!(stack.state_item().await, None);
    assert!(stack.delivered().await.is_empty());
    stack.proxy.clear();
}

#[tokio::test]
async fn bad_configuration_names_every_bad_variable_before_any_io() {
    let mut stack = Stack::new(Options {
        env: vec![
            ("STATE_TABLE", String::new()),
            ("SETTLE_SECONDS", "two minutes".into()),
            ("API_BASE_URL", "http://api.example.com".into()),
        ],
        ..Options::default()
    })
    .await;
    let invocation = stack.invoke(json!({}), LONG).await;
    let Outcome::Error { error_type, error_message } = &invocation.outcome else {
        panic!("{:?}", invocation.outcome)
    };
    assert_eq!(error_type, "ConfigurationInvalid");
    for name in ["STATE_TABLE", "SETTLE_SECONDS", "API_BASE_URL"] {
        assert!(error_message.contains(name), "{name} not named in: {error_message}");
    }
    assert!(stack.sim.requests().is_empty(), "no request before the configuration is valid");
}

#[tokio::test]
async fn every_invocation_shape_in_events_is_accepted_and_a_wrong_one_is_named() {
    let mut stack = Stack::new(Options::default()).await;
    let dir = testkit::workspace_root().join("events");
    // events/detector-*.json are the detector's (tests/detector_e2e.rs invokes them).
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("detector-"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "events/ holds the documented payloads");
    stack.collect().await; // a backfill needs the live collection to have begun
    for file in files {
        let payload: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let invocation = stack.invoke(payload, LONG).await;
        assert!(
            invocation.outcome.response().is_some(),
            "{}: {:?}",
            file.display(),
            invocation.outcome
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let invocation = stack.invoke(json!({"action": "erase"}), LONG).await;
    assert!(
        matches!(invocation.outcome, Outcome::Error { ref error_type, .. } if error_type == "InvocationInvalid")
    );
}

#[tokio::test]
async fn processes_killed_at_arbitrary_points_lose_and_duplicate_nothing() {
    // GIVEN a backlog of twelve pages, served slowly enough for a run to be killed mid-way
    let mut options = Options::small_pages();
    options.sim.latency = Duration::from_millis(150);
    let mut stack = Stack::new(options).await;
    stack.sim.generate(&GenerateSpec { count: 12_000, from: ago(300), to: ago(60), hidden: false });
    let invoke_timeout = Duration::from_secs(8);
    let mut rng = fastrand::Rng::with_seed(7);
    let (mut kills, mut attempts) = (0, 0);
    while kills < 5 {
        attempts += 1;
        assert!(attempts <= 10, "only {kills} of {attempts} runs could be killed mid-way");
        // warm a process so its pid is known, then kill it at an arbitrary moment of the next
        // run: a random time after its first or second API request, which lands in a response's
        // latency, in the page's write intent, object writes or commit, or in the next request.
        // Measured from the run's own progress, not from its start, so that a faster collector
        // is still caught mid-way; each run leaves more than two pages to the next.
        let warm = stack.function.invoke(json!({"action": "erase"}), invoke_timeout).await.unwrap();
        assert!(matches!(warm.outcome, Outcome::Error { .. }));
        let pid = stack.function.pid().unwrap();
        let requests_before = stack.sim.requests().len();
        let after_requests = rng.usize(1..=2);
        let delay = Duration::from_millis(rng.u64(0..400));
        let sim = stack.sim.clone();
        let killer = tokio::spawn(async move {
            while sim.requests().len() < requests_before + after_requests {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(delay).await;
            let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        let run = stack.function.invoke(json!({}), invoke_timeout).await.unwrap();
        killer.abort();
        match &run.outcome {
            Outcome::Crashed { .. } => kills += 1,
            Outcome::Response(report) if report["stop_reason"] == "lease_held" => {
                // the kill fell between a page's write intent and its commit, and this run came
                // at once, within the dead writer's lease: it did nothing. Wait the lease out.
                assert_eq!(stack.sim.requests().len(), requests_before, "{report}");
                let pending = stack.state().await.and_then(|v| v.state.pending);
                let lease_until = pending.expect("a lease is held by a pending batch").lease_until;
                let wait = lease_until.duration_since(Timestamp::now());
                tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("a run with pages left was neither killed nor held off: {other:?}"),
        }
        // new activities keep arriving between crashes, within the overlap's reach
        stack.sim.generate(&GenerateSpec { count: 30, from: ago(12), to: ago(2), hidden: false });
        // no pause: a run right after a crash must cope with the dead writer's lease itself
    }
    // WHEN healthy runs follow (with time enough to wait out a dead writer's lease)
    let mut last = Value::Null;
    for _ in 0..10 {
        last = stack.collect().await;
        if matches!(last["stop_reason"].as_str(), Some("caught_up" | "nothing_new")) {
            break;
        }
    }
    // THEN everything is delivered exactly once
    assert!(matches!(last["stop_reason"].as_str(), Some("caught_up" | "nothing_new")), "{last}");
    let delivered = stack.assert_exactly_once(watermark(&last)).await.delivered_lines;
    assert!(delivered >= 12_000);
    let unique: HashSet<String> = stack.delivered().await.into_iter().collect();
    assert_eq!(unique.len(), delivered);
}
