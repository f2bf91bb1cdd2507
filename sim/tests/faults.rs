//! The scripted fault queue: one fault per authenticated feed request, FIFO.

use std::time::{Duration, Instant};

use compliance_sim::{DEFAULT_API_KEY, Fault};

use crate::support::*;

#[tokio::test]
async fn faults_apply_one_per_request_in_order_then_normal_service_resumes() {
    // GIVEN data and a queue of four faults
    let f = fixture().await;
    f.sim.generate(&april_spec(5, false));
    f.sim.push_faults([
        Fault::status(503),
        Fault::Status {
            status: 429,
            error_type: "rate_limit_error".into(),
            retry_after: Some(2),
            should_retry: None,
        },
        Fault::Status {
            status: 500,
            error_type: "api_error".into(),
            retry_after: None,
            should_retry: Some(false),
        },
        Fault::MalformedBody,
    ]);
    // WHEN five requests are made
    let mut responses = Vec::new();
    for _ in 0..5 {
        responses.push(feed(&f.server, APRIL).await);
    }
    // THEN the first four get the faults, in order, and the fifth is normal
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 429, 500, 200, 200]);
    assert_eq!(responses[0].error_type(), "api_error");
    assert_eq!(responses[1].error_type(), "rate_limit_error");
    assert_eq!(responses[1].header("retry-after"), Some("2"));
    assert_eq!(responses[2].header("x-should-retry"), Some("false"));
    assert!(serde_json::from_slice::<serde_json::Value>(&responses[3].body).is_err());
    assert_eq!(responses[4].ids().len(), 5);
    // AND each fault response still has a request id and rate-limit headers
    for r in &responses[..4] {
        assert!(r.header("request-id").is_some());
        assert!(r.header("anthropic-ratelimit-requests-remaining").is_some());
    }
    assert_eq!(f.sim.pending_faults(), 0);
}

#[tokio::test]
async fn a_delay_fault_slows_one_request_then_serves_it() {
    let f = fixture().await;
    f.sim
        .push_faults([Fault::Delay(Duration::from_millis(300))]);
    let started = Instant::now();
    let delayed = feed(&f.server, "").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed.status, 200);
    let started = Instant::now();
    feed(&f.server, "").await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn unauthenticated_requests_do_not_take_a_fault() {
    // GIVEN one queued fault
    let f = fixture().await;
    f.sim.push_faults([Fault::status(503)]);
    // WHEN an unauthenticated request comes first
    let refused = feed_with(&f.server, "", &[("anthropic-version", "2023-06-01")]).await;
    // THEN it is a 401 and the fault waits for the next authenticated request
    assert_eq!(refused.status, 401);
    assert_eq!(f.sim.pending_faults(), 1);
    let faulted = feed_with(
        &f.server,
        "",
        &[
            ("x-api-key", DEFAULT_API_KEY),
            ("anthropic-version", "2023-06-01"),
        ],
    )
    .await;
    assert_eq!(faulted.status, 503);
}
