//! The `/_sim/` control endpoints used by out-of-process harnesses.

use crate::support::*;

async fn post(f: &Fixture, path: &str, body: &str) -> Response {
    send(&f.server.base_url, "POST", path, &[("content-type", "application/json")], Some(body))
        .await
}

async fn get(f: &Fixture, path: &str) -> Response {
    send(&f.server.base_url, "GET", path, &[], None).await
}

#[tokio::test]
async fn generate_reveal_and_activities_work_over_http() {
    // GIVEN a served simulator
    let f = fixture().await;
    // WHEN generating 5 visible and 3 hidden activities over HTTP
    let visible = post(
        &f,
        "/_sim/generate",
        r#"{"count":5,"from":"2026-04-01T00:00:00Z","to":"2026-04-02T00:00:00Z"}"#,
    )
    .await;
    let hidden = post(
        &f,
        "/_sim/generate",
        r#"{"count":3,"from":"2026-04-01T00:00:00Z","to":"2026-04-02T00:00:00Z","hidden":true}"#,
    )
    .await;
    // THEN their ids come back and the listing shows visibility
    assert_eq!(visible.json()["ids"].as_array().unwrap().len(), 5);
    assert_eq!(hidden.json()["ids"].as_array().unwrap().len(), 3);
    let listing = get(&f, "/_sim/activities").await.json();
    let rows = listing.as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows.iter().filter(|r| r["visible"] == false).count(), 3);
    for key in ["id", "created_at", "visible", "organization_id", "type"] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
    // AND reveal makes them visible
    assert_eq!(post(&f, "/_sim/reveal", "").await.json()["revealed"], 3);
    assert_eq!(post(&f, "/_sim/reveal", "").await.json()["revealed"], 0);
}

#[tokio::test]
async fn control_calls_are_not_api_requests() {
    let f = fixture().await;
    get(&f, "/_sim/activities").await;
    feed(&f.server, "").await;
    let log = get(&f, "/_sim/requests").await.json();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["path"], "/v1/compliance/activities");
    assert_eq!(log[0]["status"], 200);
    assert!(log[0]["request_id"].as_str().unwrap().starts_with("req_"));
    assert!(log[0]["api_key_id"].as_str().unwrap().starts_with("apikey_"));
}

#[tokio::test]
async fn faults_can_be_queued_over_http() {
    // GIVEN the documented fault list
    let f = fixture().await;
    let queued = post(&f, "/_sim/faults", r#"[{"status":503},{"status":429,"retry_after":1},{"status":500,"should_retry":false},{"delay_ms":10},{"malformed":true}]"#).await;
    assert_eq!(queued.json()["queued"], 5);
    // WHEN five requests are made
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(feed(&f.server, "").await.status);
    }
    // THEN they meet the faults in order
    assert_eq!(statuses, [503, 429, 500, 200, 200]);
}

#[tokio::test]
async fn invalid_control_bodies_are_400() {
    let f = fixture().await;
    assert_eq!(post(&f, "/_sim/faults", r#"[{"status":503,"delay_ms":1}]"#).await.status, 400);
    assert_eq!(post(&f, "/_sim/generate", r#"{"count":1}"#).await.status, 400);
    assert_eq!(
        post(&f, "/_sim/insert", r#"{"created_at":"2026-04-01T00:00:00Z"}"#).await.status,
        400
    );
}

#[tokio::test]
async fn insert_adds_a_hand_written_activity() {
    let f = fixture().await;
    let raw = r#"{"id":"activity_hand","created_at":"2026-04-01T00:00:00Z","type":"x"}"#;
    let inserted = post(&f, "/_sim/insert?hidden=true", raw).await;
    assert_eq!(inserted.json()["id"], "activity_hand");
    let listing = get(&f, "/_sim/activities").await.json();
    assert_eq!(listing[0]["visible"], false);
}
