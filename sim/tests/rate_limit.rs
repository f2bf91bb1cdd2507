//! The sliding-window rate limit and its headers.

use compliance_sim::SimConfig;
use jiff::{SignedDuration, Timestamp};

use crate::support::*;

#[tokio::test]
async fn every_authenticated_response_carries_the_rate_limit_headers() {
    // GIVEN the default limit of 600
    let f = fixture().await;
    // WHEN two requests are made, one of them invalid
    let ok = feed(&f.server, "").await;
    let bad = feed(&f.server, "limit=0").await;
    // THEN both carry limit, remaining (counting down) and reset (RFC 3339, a minute on)
    assert_eq!(ok.header("anthropic-ratelimit-requests-limit"), Some("600"));
    assert_eq!(ok.header("anthropic-ratelimit-requests-remaining"), Some("599"));
    assert_eq!(bad.header("anthropic-ratelimit-requests-remaining"), Some("598"));
    let reset: Timestamp =
        bad.header("anthropic-ratelimit-requests-reset").unwrap().parse().unwrap();
    assert_eq!(reset, may_first() + SignedDuration::from_secs(60));
    assert!(bad.header("anthropic-ratelimit-requests-reset").unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_request_over_the_limit_gets_429_with_retry_after_until_the_window_moves() {
    // GIVEN a limit of 3 a minute, used up over 20 seconds
    let f = fixture_with(SimConfig { rate_limit_per_minute: 3, ..SimConfig::default() }).await;
    for _ in 0..3 {
        assert_eq!(feed(&f.server, "").await.status, 200);
        f.clock.advance(SignedDuration::from_secs(10));
    }
    // WHEN a fourth request comes at +30 s
    let limited = feed(&f.server, "").await;
    // THEN 429 rate_limit_error, retry-after until the first request leaves the window
    assert_eq!(limited.status, 429);
    assert_eq!(limited.error_type(), "rate_limit_error");
    assert_eq!(limited.header("retry-after"), Some("30"));
    assert_eq!(limited.header("anthropic-ratelimit-requests-remaining"), Some("0"));
    assert!(limited.header("request-id").is_some());
    // AND once the window has moved, requests are admitted again
    f.clock.advance(SignedDuration::from_secs(30));
    let again = feed(&f.server, "").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("anthropic-ratelimit-requests-remaining"), Some("0"));
}

#[tokio::test]
async fn retry_after_is_at_least_one_second() {
    let f = fixture_with(SimConfig { rate_limit_per_minute: 1, ..SimConfig::default() }).await;
    feed(&f.server, "").await;
    f.clock.advance(SignedDuration::from_millis(59_900));
    let limited = feed(&f.server, "").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
}
