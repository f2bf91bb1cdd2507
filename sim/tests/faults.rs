//! The scripted fault queue: one slot per authenticated feed request, FIFO; every fault kind
//! over real HTTP.

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
    f.sim.push_faults([Fault::Delay(Duration::from_millis(300))]);
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
        &[("x-api-key", DEFAULT_API_KEY), ("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(faulted.status, 503);
}

/// A page request of the April data, oldest first, `limit` at a time.
fn april_asc(limit: usize) -> String {
    format!("order=asc&limit={limit}&{APRIL}")
}

#[tokio::test]
async fn clean_slots_in_a_schedule_let_their_requests_through() {
    // GIVEN a schedule: clean, 503, clean
    let f = fixture().await;
    f.sim.push_schedule([None, Some(Fault::status(503)), None]);
    assert_eq!(f.sim.pending_faults(), 3);
    // WHEN three requests are made
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(feed(&f.server, "").await.status);
    }
    // THEN only the second meets a fault
    assert_eq!(statuses, [200, 503, 200]);
    assert_eq!(f.sim.pending_faults(), 0);
}

#[tokio::test]
async fn clear_faults_drops_what_is_queued() {
    let f = fixture().await;
    f.sim.push_faults([Fault::status(503), Fault::status(502)]);
    assert_eq!(f.sim.clear_faults(), [Some(Fault::status(503)), Some(Fault::status(502))]);
    assert_eq!(feed(&f.server, "").await.status, 200);
}

#[tokio::test]
async fn a_connection_reset_sends_the_head_and_part_of_the_body_then_drops() {
    // GIVEN a page of 20 records and a reset queued
    let f = fixture().await;
    f.sim.generate(&april_spec(20, false));
    let whole = feed(&f.server, &april_asc(20)).await.body;
    f.sim.push_faults([Fault::ConnectionReset]);
    // WHEN the same page is asked for over a raw connection
    let raw = raw_exchange(&f.server, &april_asc(20)).await;
    // THEN the status line and headers arrive, announcing the whole body, and then only its
    // first half before the connection ends
    let (head, body) = split_head(&raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("request-id: req_"), "{head}");
    let announced: usize = header_value(&head, "content-length").parse().unwrap();
    assert_eq!(announced, whole.len());
    assert!(!body.is_empty() && body.len() < whole.len(), "{}", body.len());
    assert_eq!(body, &whole[..body.len()]);
    // AND the next request is served whole
    assert_eq!(feed(&f.server, &april_asc(20)).await.body, whole);
}

#[tokio::test]
async fn a_missing_field_fault_strips_it_from_the_middle_record_only() {
    for (field, fault_field) in [
        ("id", compliance_sim::RecordField::Id),
        ("created_at", compliance_sim::RecordField::CreatedAt),
    ] {
        // GIVEN a page of 5 records
        let f = fixture().await;
        f.sim.generate(&april_spec(5, false));
        let normal = feed(&f.server, &april_asc(5)).await.json();
        f.sim.push_faults([Fault::MissingField { field: fault_field }]);
        // WHEN it is served with the fault
        let damaged = feed(&f.server, &april_asc(5)).await;
        assert_eq!(damaged.status, 200);
        let damaged = damaged.json();
        // THEN record 2 lacks the field and keeps every other one; the rest are untouched
        let records = damaged["data"].as_array().unwrap();
        let originals = normal["data"].as_array().unwrap();
        assert_eq!(records.len(), 5);
        assert!(records[2].get(field).is_none(), "{field}: {}", records[2]);
        let mut expected = originals[2].clone();
        expected.as_object_mut().unwrap().remove(field);
        assert_eq!(records[2], expected);
        for i in [0, 1, 3, 4] {
            assert_eq!(records[i], originals[i]);
        }
        assert_eq!(damaged["last_id"], normal["last_id"]);
        assert_eq!(damaged["has_more"], normal["has_more"]);
    }
}

#[tokio::test]
async fn an_empty_page_with_more_moves_its_cursor_without_skipping_anything() {
    // GIVEN 6 records paged 3 at a time
    let f = fixture().await;
    f.sim.generate(&april_spec(6, false));
    let first = feed(&f.server, &april_asc(3)).await.json();
    let cursor = first["last_id"].as_str().unwrap().to_owned();
    // WHEN the first page and the page after the cursor are both served empty with more
    f.sim.push_faults([Fault::EmptyPageWithMore, Fault::EmptyPageWithMore]);
    let empty_first = feed(&f.server, &april_asc(3)).await.json();
    let after = format!("{}&after_id={cursor}", april_asc(3));
    let empty_next = feed(&f.server, &after).await.json();
    // THEN both are empty, say there is more, and carry cursors
    for page in [&empty_first, &empty_next] {
        assert_eq!(page["data"].as_array().unwrap().len(), 0);
        assert_eq!(page["has_more"], true);
        assert!(page["last_id"].as_str().is_some());
    }
    // AND their cursors move (so a client can tell them from a stuck cursor), yet following
    // them reads the same records as the requests would have
    assert_ne!(empty_next["last_id"], cursor.as_str());
    let next = format!("{}&after_id={}", april_asc(3), empty_next["last_id"].as_str().unwrap());
    assert_eq!(
        feed(&f.server, &next).await.json()["data"],
        feed(&f.server, &after).await.json()["data"]
    );
    let from_start =
        format!("{}&after_id={}", april_asc(3), empty_first["last_id"].as_str().unwrap());
    assert_eq!(feed(&f.server, &from_start).await.json()["data"], first["data"]);
}

#[tokio::test]
async fn a_stuck_cursor_serves_the_page_but_does_not_advance() {
    // GIVEN 9 records paged 3 at a time, and the cursor after the first page
    let f = fixture().await;
    f.sim.generate(&april_spec(9, false));
    let first = feed(&f.server, &april_asc(3)).await.json();
    let cursor = first["last_id"].as_str().unwrap().to_owned();
    let after = format!("{}&after_id={cursor}", april_asc(3));
    let second = feed(&f.server, &after).await.json();
    // WHEN the second page is served with a stuck cursor
    f.sim.push_faults([Fault::StuckCursor]);
    let stuck = feed(&f.server, &after).await.json();
    // THEN its records are the second page's, but its last_id is the request's own after_id
    assert_eq!(stuck["data"], second["data"]);
    assert_eq!(stuck["has_more"], true);
    assert_eq!(stuck["last_id"], cursor.as_str());
    // AND without a cursor, a stuck first page points back at the start of the range
    f.sim.push_faults([Fault::StuckCursor]);
    let stuck_first = feed(&f.server, &april_asc(3)).await.json();
    assert_eq!(stuck_first["data"], first["data"]);
    let again = format!("{}&after_id={}", april_asc(3), stuck_first["last_id"].as_str().unwrap());
    assert_eq!(feed(&f.server, &again).await.json()["data"], first["data"]);
}

#[tokio::test]
async fn an_invalid_cursor_fault_is_the_apis_400_for_an_expired_cursor() {
    let f = fixture().await;
    f.sim.generate(&april_spec(3, false));
    f.sim.push_faults([Fault::InvalidCursor]);
    let refused = feed(&f.server, &april_asc(3)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_type(), "invalid_request_error");
    assert_eq!(refused.error_message(), "after_id: invalid cursor");
    assert!(refused.header("request-id").is_some());
    // the same 400 the simulator gives a cursor it never issued
    let forged = feed(&f.server, &format!("{}&after_id=cur_AAAA", april_asc(3))).await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.error_message(), refused.error_message());
}

#[tokio::test]
async fn an_invalid_utf8_fault_damages_exactly_one_byte_of_a_record() {
    // GIVEN a page of 4 records
    let f = fixture().await;
    f.sim.generate(&april_spec(4, false));
    let whole = feed(&f.server, &april_asc(4)).await.body;
    f.sim.push_faults([Fault::InvalidUtf8]);
    // WHEN served with the fault
    let damaged = feed(&f.server, &april_asc(4)).await;
    // THEN the body is the page with one byte, inside the first record, turned into 0xFF
    assert_eq!(damaged.status, 200);
    assert_eq!(damaged.body.len(), whole.len());
    let differing: Vec<usize> = (0..whole.len()).filter(|&i| whole[i] != damaged.body[i]).collect();
    assert_eq!(differing.len(), 1);
    assert_eq!(damaged.body[differing[0]], 0xFF);
    assert!(std::str::from_utf8(&damaged.body).is_err());
    assert!(serde_json::from_slice::<serde_json::Value>(&damaged.body).is_err());
}

#[tokio::test]
async fn a_revoked_key_gets_401_from_then_on_and_other_keys_do_not() {
    // GIVEN two keys, and a schedule that revokes whichever key makes the second request
    const OTHER: &str = "sk-ant-api01-other-key";
    let f = fixture_with(compliance_sim::SimConfig {
        keys: vec![
            compliance_sim::ApiKey::with_scope(DEFAULT_API_KEY),
            compliance_sim::ApiKey::with_scope(OTHER),
        ],
        ..compliance_sim::SimConfig::default()
    })
    .await;
    f.sim.push_schedule([None, Some(Fault::RevokeKey)]);
    let with = |key: &'static str| {
        let server = &f.server;
        async move {
            feed_with(server, "", &[("x-api-key", key), ("anthropic-version", "2023-06-01")]).await
        }
    };
    // WHEN the default key makes three requests
    let statuses = [
        with(DEFAULT_API_KEY).await.status,
        with(DEFAULT_API_KEY).await.status,
        with(DEFAULT_API_KEY).await.status,
    ];
    // THEN the first succeeds and every one from the revoking request on is refused
    assert_eq!(statuses, [200, 401, 401]);
    let refused = with(DEFAULT_API_KEY).await;
    assert_eq!(refused.error_type(), "authentication_error");
    // AND another key still works, until it is revoked through the library API
    assert_eq!(with(OTHER).await.status, 200);
    f.sim.revoke_key(OTHER);
    assert_eq!(with(OTHER).await.status, 401);
}

#[tokio::test]
async fn random_schedules_revocation_and_clearing_work_over_http() {
    let f = fixture().await;
    // a random schedule of 12 slots, then an explicit one with clean slots
    let queued = post(&f, "/_sim/faults/random", r#"{"seed":7,"len":12}"#).await;
    assert_eq!(queued.json()["queued"], 12);
    assert_eq!(f.sim.pending_faults(), 12);
    let queued = post(&f, "/_sim/faults", r#"[null,{"stuck_cursor":true},null]"#).await;
    assert_eq!(queued.json()["queued"], 15);
    let cleared = post(&f, "/_sim/faults/clear", "").await;
    assert_eq!(cleared.json()["cleared"], 15);
    let refused = post(&f, "/_sim/faults", r#"[{"missing_field":"type"}]"#).await;
    assert_eq!(refused.status, 400);
    // revoking over HTTP
    let body = format!(r#"{{"key":"{DEFAULT_API_KEY}"}}"#);
    assert_eq!(post(&f, "/_sim/revoke", &body).await.status, 200);
    assert_eq!(feed(&f.server, "").await.status, 401);
}

async fn post(f: &Fixture, path: &str, body: &str) -> Response {
    send(&f.server.base_url, "POST", path, &[("content-type", "application/json")], Some(body))
        .await
}

/// Sends a feed request with the default key over a raw connection and returns every byte
/// received until the server closed it (or reset it).
async fn raw_exchange(server: &compliance_sim::SimServer, query: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base_url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /v1/compliance/activities?{query} HTTP/1.1\r\nhost: {address}\r\nx-api-key: {DEFAULT_API_KEY}\r\nanthropic-version: 2023-06-01\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return raw,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server neither finished nor dropped the connection"),
        }
    }
}

fn split_head(raw: &[u8]) -> (String, &[u8]) {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (String::from_utf8(raw[..split].to_vec()).unwrap(), &raw[split + 4..])
}

fn header_value(head: &str, name: &str) -> String {
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap()
}
