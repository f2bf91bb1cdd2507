//! Every authenticated request is itself recorded in the feed as `compliance_api_accessed`.

use compliance_sim::{DEFAULT_API_KEY, Simulator};

use crate::support::*;

#[tokio::test]
async fn each_authenticated_request_appends_one_compliance_api_accessed_record() {
    // GIVEN an empty simulator
    let f = fixture().await;
    // WHEN three authenticated requests are made (200, 400, 200)
    let first = feed(&f.server, "limit=5").await;
    let refused = feed(&f.server, "limit=0").await;
    let third = feed(&f.server, "order=asc&activity_types[]=compliance_api_accessed").await;
    // THEN the third request sees the records of the first two, not its own
    assert_eq!(third.ids().len(), 2);
    let records = third.json()["data"].as_array().unwrap().clone();
    for (record, response, status) in [(&records[0], &first, 200), (&records[1], &refused, 400)] {
        // AND each record has the documented shape and this request's details
        assert_eq!(record["type"], "compliance_api_accessed");
        assert!(record["organization_id"].is_null() && record["organization_uuid"].is_null());
        assert_eq!(record["actor"]["type"], "api_actor");
        assert_eq!(record["actor"]["api_key_id"], Simulator::api_key_id(DEFAULT_API_KEY));
        assert_eq!(record["actor"]["ip_address"], "127.0.0.1");
        assert_eq!(record["actor"]["user_agent"], USER_AGENT);
        assert_eq!(record["request_id"], response.header("request-id").unwrap());
        assert_eq!(record["request_method"], "GET");
        assert!(record["request_body"].is_null());
        assert_eq!(record["status_code"], status);
        assert_eq!(record["created_at"], "2026-05-01T00:00:00.000000Z");
    }
    let url = records[0]["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/v1/compliance/activities?limit=5", f.server.base_url));
    // AND the simulator now holds three such records
    assert_eq!(f.sim.activities().len(), 3);
}

#[tokio::test]
async fn a_429_is_recorded_with_its_status() {
    let f =
        fixture_with(compliance_sim::SimConfig { rate_limit_per_minute: 1, ..Default::default() })
            .await;
    feed(&f.server, "").await;
    feed(&f.server, "").await;
    let statuses: Vec<bool> =
        f.sim.activities().iter().map(|a| a.raw.contains("\"status_code\":429")).collect();
    assert_eq!(statuses.iter().filter(|s| **s).count(), 1);
}

#[tokio::test]
async fn requests_records_the_raw_query_status_and_key() {
    // GIVEN requests with encoded characters in the query
    let f = fixture().await;
    let query =
        "created_at.gte=2026-04-01T00:00:00%2B00:00&activity_types%5B%5D=claude_chat_viewed";
    let response = feed(&f.server, query).await;
    // WHEN reading the request log
    let log = f.sim.requests();
    // THEN the query is kept as sent, not decoded
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/v1/compliance/activities");
    assert_eq!(log[0].query, query);
    assert_eq!(log[0].status, 200);
    assert_eq!(log[0].request_id, response.header("request-id").unwrap());
    assert_eq!(log[0].api_key_id, Some(Simulator::api_key_id(DEFAULT_API_KEY)));
}
