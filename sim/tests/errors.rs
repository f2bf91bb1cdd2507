//! Refusals: every 400, 401, 403 and 404, with the documented body and headers.

use compliance_sim::{ApiKey, DEFAULT_API_KEY, SimConfig};

use crate::support::*;

fn assert_error_shape(response: &Response, status: u16, error_type: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], error_type);
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let request_id = response.header("request-id").expect("request-id header");
    assert_eq!(body["request_id"], request_id);
    assert!(request_id.starts_with("req_") && request_id.len() == 28);
}

#[tokio::test]
async fn every_invalid_query_is_a_400_naming_the_problem() {
    // GIVEN a simulator and a valid cursor
    let f = fixture().await;
    f.sim.generate(&april_spec(3, false));
    let cursor = feed(&f.server, "limit=1").await.json()["last_id"].as_str().unwrap().to_owned();
    let cases: Vec<(String, &str)> = vec![
        ("limit=0".into(), "limit"),
        ("limit=5001".into(), "limit"),
        ("limit=abc".into(), "limit"),
        ("limit=".into(), "limit"),
        ("limit=10&limit=20".into(), "more than once"),
        (format!("after_id={cursor}&before_id={cursor}"), "cannot be combined"),
        ("after_id=activity_01XyDMpzjS89pFZXqSFUBDr6".into(), "invalid cursor"),
        ("before_id=cur_forged".into(), "invalid cursor"),
        (format!("after_id={}x", &cursor[..cursor.len() - 1]), "invalid cursor"),
        ("created_at.gte=yesterday".into(), "created_at.gte"),
        ("created_at.gt=2026-04-01".into(), "created_at.gt"),
        ("created_at.lte=2026-04-01T00:00:00+02:00".into(), "created_at.lte"),
        ("created_at.lt=2026-04-01T00:00:00".into(), "created_at.lt"),
        ("order=newest".into(), "order"),
        ("activity_types[]=a&exclude_activity_types[]=b".into(), "cannot be combined"),
        ("actor_ids[]=apikey_123".into(), "actor_ids[]"),
        ("user_ids[]=someone".into(), "user_ids[]"),
        ("organization_ids[]=acme".into(), "organization_ids[]"),
        ("organization_ids=org_123".into(), "unknown query parameter: organization_ids"),
        ("activity_types=claude_chat_viewed".into(), "unknown query parameter: activity_types"),
        ("page=2".into(), "unknown query parameter: page"),
        ("limit=%zz".into(), "percent-encoded"),
    ];
    for (query, mentions) in cases {
        // WHEN requesting with the bad query
        let response = feed(&f.server, &query).await;
        // THEN it is a 400 invalid_request_error whose message names the problem
        assert_error_shape(&response, 400, "invalid_request_error");
        assert!(
            response.error_message().contains(mentions),
            "{query}: {}",
            response.error_message()
        );
    }
}

#[tokio::test]
async fn a_limit_above_the_configured_cap_is_a_400() {
    let f = fixture_with(SimConfig { max_page_size: 1000, ..SimConfig::default() }).await;
    assert_eq!(feed(&f.server, "limit=1000").await.status, 200);
    assert_error_shape(&feed(&f.server, "limit=1001").await, 400, "invalid_request_error");
}

#[tokio::test]
async fn a_missing_or_wrong_anthropic_version_is_a_400() {
    let f = fixture().await;
    let missing = feed_with(&f.server, "", &[("x-api-key", DEFAULT_API_KEY)]).await;
    assert_error_shape(&missing, 400, "invalid_request_error");
    assert!(missing.error_message().contains("anthropic-version"));
    let wrong = feed_with(
        &f.server,
        "",
        &[("x-api-key", DEFAULT_API_KEY), ("anthropic-version", "2024-01-01")],
    )
    .await;
    assert_error_shape(&wrong, 400, "invalid_request_error");
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_a_401_without_quota_or_feed_record() {
    // GIVEN a limit of 2 requests a minute
    let f = fixture_with(SimConfig { rate_limit_per_minute: 2, ..SimConfig::default() }).await;
    // WHEN sending without a key and with an unknown key, several times
    for _ in 0..3 {
        let missing = feed_with(&f.server, "", &[("anthropic-version", "2023-06-01")]).await;
        assert_error_shape(&missing, 401, "authentication_error");
        let unknown = feed_with(
            &f.server,
            "",
            &[("x-api-key", "sk-ant-api01-nope"), ("anthropic-version", "2023-06-01")],
        )
        .await;
        assert_error_shape(&unknown, 401, "authentication_error");
        // THEN no rate-limit headers are sent
        assert_eq!(unknown.header("anthropic-ratelimit-requests-remaining"), None);
    }
    // AND nothing was recorded in the feed, and no quota was used
    assert!(f.sim.activities().is_empty());
    assert_eq!(
        feed(&f.server, "").await.header("anthropic-ratelimit-requests-remaining"),
        Some("1")
    );
    // AND the requests were logged without a key id
    let logged = f.sim.requests();
    assert_eq!(logged.iter().filter(|r| r.status == 401 && r.api_key_id.is_none()).count(), 6);
}

#[tokio::test]
async fn a_key_without_the_scope_is_a_403_that_uses_quota() {
    // GIVEN a key without read:compliance_activities
    let f = fixture_with(SimConfig {
        keys: vec![
            ApiKey::with_scope(DEFAULT_API_KEY),
            ApiKey::without_scope("sk-ant-admin01-noscope"),
        ],
        ..SimConfig::default()
    })
    .await;
    // WHEN it reads the feed
    let response = feed_with(
        &f.server,
        "",
        &[("x-api-key", "sk-ant-admin01-noscope"), ("anthropic-version", "2023-06-01")],
    )
    .await;
    // THEN 403 permission_error with the documented message, rate-limit headers, quota used
    assert_error_shape(&response, 403, "permission_error");
    assert_eq!(response.error_message(), "Missing required scopes: read:compliance_activities");
    assert_eq!(response.header("anthropic-ratelimit-requests-remaining"), Some("599"));
    // AND the request is recorded in the feed with status 403
    let record = f.sim.activities().pop().unwrap();
    assert_eq!(record.activity_type, "compliance_api_accessed");
    assert!(record.raw.contains("\"status_code\":403"));
}

#[tokio::test]
async fn other_paths_are_404_not_found() {
    let f = fixture().await;
    for target in ["/v1/compliance/organizations", "/v1/compliance/activities/x", "/"] {
        let response =
            send(&f.server.base_url, "GET", target, &[("x-api-key", DEFAULT_API_KEY)], None).await;
        assert_error_shape(&response, 404, "not_found_error");
    }
}

#[tokio::test]
async fn request_ids_are_unique_across_responses() {
    let f = fixture().await;
    let mut seen = std::collections::HashSet::new();
    for query in ["", "limit=0", "order=up", ""] {
        let response = feed(&f.server, query).await;
        assert!(seen.insert(response.header("request-id").unwrap().to_owned()));
    }
}
