//! The HTTP feed client against the compliance simulator over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use anthropic_compliance_collector::clock::{Clock, Deadline, SystemClock};
use anthropic_compliance_collector::feed::budget::BodyBudget;
use anthropic_compliance_collector::feed::http::{FAILED_ATTEMPTS_FOR_UNAVAILABLE, HttpClient};
use anthropic_compliance_collector::feed::retry::Backoff;
use anthropic_compliance_collector::feed::{
    ActivityFeed, BodySize, FeedError, Page, PageQuery, RequestStats,
};
use anthropic_compliance_collector::secrets::parse_secret;
use compliance_sim::{ApiKey, Fault, GenerateSpec, SimConfig, Simulator};
use jiff::{SignedDuration, Timestamp};

/// The page and the stats together, as a `Result`, for terse assertions.
trait Both {
    fn both(self) -> Result<(Page, RequestStats), FeedError>;
}

impl Both for (Result<Page, FeedError>, RequestStats) {
    fn both(self) -> Result<(Page, RequestStats), FeedError> {
        let (result, stats) = self;
        result.map(|page| (page, stats))
    }
}

const KEY: &str = "sk-ant-api01-feed-test-key";
const FAST: Backoff =
    Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200) };

async fn simulator() -> (Simulator, compliance_sim::SimServer) {
    simulator_with(SimConfig::default()).await
}

/// A simulator that sends every page chunked, without a `content-length`.
async fn chunked_simulator() -> (Simulator, compliance_sim::SimServer) {
    simulator_with(SimConfig { chunked: true, ..SimConfig::default() }).await
}

async fn simulator_with(config: SimConfig) -> (Simulator, compliance_sim::SimServer) {
    let sim = Simulator::new(SimConfig {
        keys: vec![
            ApiKey { key: KEY.into(), has_scope: true },
            ApiKey { key: "sk-ant-api01-no-scope".into(), has_scope: false },
        ],
        ..config
    });
    let server = sim.spawn().await.expect("simulator starts");
    (sim, server)
}

fn client(server: &compliance_sim::SimServer) -> HttpClient<SystemClock> {
    HttpClient::new(&server.base_url.parse().unwrap(), 600, SystemClock, FAST).unwrap()
}

fn deadline(secs: i64) -> Deadline {
    let now = SystemClock.now();
    Deadline::new(now, now + SignedDuration::from_secs(secs))
}

fn query(from: Timestamp, to: Timestamp, limit: u32) -> PageQuery {
    PageQuery { from, to, after: None, organization_ids: vec![], limit }
}

fn hours_ago(h: i64) -> Timestamp {
    SystemClock.now() - SignedDuration::from_hours(h)
}

#[tokio::test]
async fn pages_oldest_first_through_every_record_once_with_opaque_cursors() {
    // GIVEN 230 activities over the last two hours
    let (sim, server) = simulator().await;
    let ids = sim.generate(&GenerateSpec {
        count: 230,
        from: hours_ago(2),
        to: hours_ago(1),
        hidden: false,
    });
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let feed = http.with_key(&key);
    // WHEN paged 100 at a time
    let mut q = query(hours_ago(3), hours_ago(0), 100);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (page, stats) = feed.fetch(&q, deadline(30)).await.both().unwrap();
        pages += 1;
        assert!(stats.request_id.as_deref().is_some_and(|r| r.starts_with("req_")));
        assert!(stats.rate_limit_remaining.is_some());
        let cursor = page.last_id.clone();
        assert!(cursor.as_deref().is_none_or(|c| !ids.iter().any(|id| c.contains(id.as_str()))));
        seen.extend(page.activities.into_iter().map(|a| (a.created_at, a.id)));
        if !page.has_more {
            break;
        }
        q.after = cursor;
    }
    // THEN every record came once, oldest first, in three pages
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    let mut got: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn sends_the_documented_headers_and_literal_brackets() {
    let (sim, server) = simulator().await;
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let mut q = query(hours_ago(1), hours_ago(0), 5000);
    q.organization_ids = vec!["org_a".into(), "org_b".into()];
    http.with_key(&key).fetch(&q, deadline(30)).await.both().unwrap();
    let request = sim.requests().pop().unwrap();
    // THEN the query carries literal [] and Z-form bounds; the simulator enforced the headers
    assert!(
        request.query.contains("organization_ids[]=org_a&organization_ids[]=org_b"),
        "{}",
        request.query
    );
    assert!(request.query.contains("limit=5000&order=asc&created_at.gte="));
    assert!(request.query.split('&').any(|p| p.starts_with("created_at.lt=") && p.ends_with('Z')));
    assert_eq!(request.status, 200);
}

#[tokio::test]
async fn a_bad_key_is_not_retried_and_is_typed() {
    let (sim, server) = simulator().await;
    let http = client(&server);
    let wrong = parse_secret("sk-ant-api01-wrong").unwrap();
    let e = http
        .with_key(&wrong)
        .fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(30))
        .await
        .both()
        .unwrap_err();
    assert!(
        matches!(e, FeedError::Unauthorized { ref error_type, .. } if error_type == "authentication_error"),
        "{e}"
    );
    assert_eq!(sim.requests().len(), 1);
    let no_scope = parse_secret("sk-ant-api01-no-scope").unwrap();
    let e = http
        .with_key(&no_scope)
        .fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(30))
        .await
        .both()
        .unwrap_err();
    assert!(
        matches!(e, FeedError::Forbidden { ref error_type, .. } if error_type == "permission_error"),
        "{e}"
    );
    assert!(!e.to_string().contains("sk-ant"), "no key in errors: {e}");
}

#[tokio::test]
async fn transient_errors_are_retried_and_retry_after_is_honoured() {
    let (sim, server) = simulator().await;
    sim.push_faults([
        Fault::Status {
            status: 503,
            error_type: "overloaded_error".into(),
            retry_after: None,
            should_retry: None,
        },
        Fault::Status {
            status: 529,
            error_type: "overloaded_error".into(),
            retry_after: None,
            should_retry: None,
        },
        Fault::Status {
            status: 429,
            error_type: "rate_limit_error".into(),
            retry_after: Some(1),
            should_retry: None,
        },
    ]);
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let started = std::time::Instant::now();
    let (_, stats) = http
        .with_key(&key)
        .fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(30))
        .await
        .both()
        .unwrap();
    assert_eq!((stats.requests, stats.throttled), (4, 1));
    assert!(started.elapsed() >= Duration::from_secs(1), "retry-after: 1 was not waited out");
}

fn overloaded() -> Fault {
    Fault::Status {
        status: 503,
        error_type: "overloaded_error".into(),
        retry_after: None,
        should_retry: None,
    }
}

#[tokio::test]
async fn one_transient_error_in_a_runs_last_seconds_is_a_resumable_stop_not_a_failure() {
    // GIVEN one 503, and a back-off (5 to 10 s) that no longer fits the time left
    let (sim, server) = simulator().await;
    sim.push_faults([overloaded()]);
    let slow = Backoff { initial: Duration::from_secs(10), max: Duration::from_secs(60) };
    let http = HttpClient::new(&server.base_url.parse().unwrap(), 600, SystemClock, slow).unwrap();
    let key = parse_secret(KEY).unwrap();
    // WHEN a fetch meets it with 4 s to go
    let (result, stats) =
        http.with_key(&key).fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(6)).await;
    // THEN the run stops for the deadline (it resumes next time), the error counted
    assert!(matches!(result, Err(FeedError::DeadlineReached)), "{result:?}");
    assert_eq!((stats.requests, stats.server_errors), (1, 1));
}

#[tokio::test]
async fn an_api_failing_until_the_deadline_fails_the_run() {
    // GIVEN an API that answers 503 to everything
    let (sim, server) = simulator().await;
    sim.push_faults(std::iter::repeat_n(overloaded(), 200));
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    // WHEN a fetch retries it until no retry fits the time left
    let (result, stats) =
        http.with_key(&key).fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(4)).await;
    // THEN the run fails as unavailable, with the last failure
    match result {
        Err(FeedError::Unavailable { attempts, last }) => {
            let last = last.to_string();
            assert!(attempts >= FAILED_ATTEMPTS_FOR_UNAVAILABLE, "{attempts}");
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(stats.server_errors >= FAILED_ATTEMPTS_FOR_UNAVAILABLE);
}

#[tokio::test]
async fn a_500_marked_should_not_retry_is_not_retried() {
    let (sim, server) = simulator().await;
    sim.push_faults([Fault::Status {
        status: 500,
        error_type: "api_error".into(),
        retry_after: None,
        should_retry: Some(false),
    }]);
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let e = http
        .with_key(&key)
        .fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(30))
        .await
        .both()
        .unwrap_err();
    assert!(matches!(e, FeedError::Unavailable { attempts: 1, .. }), "{e}");
}

#[tokio::test]
async fn a_wait_longer_than_the_deadline_stops_instead_of_sleeping() {
    let (sim, server) = simulator().await;
    sim.push_faults([Fault::Status {
        status: 429,
        error_type: "rate_limit_error".into(),
        retry_after: Some(60),
        should_retry: None,
    }]);
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let started = std::time::Instant::now();
    let e = http
        .with_key(&key)
        .fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(10))
        .await
        .both()
        .unwrap_err();
    assert!(
        matches!(e, FeedError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60)),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreadable_page_fails_with_its_request_id() {
    let (sim, server) = simulator().await;
    sim.push_faults([Fault::MalformedBody]);
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let e = http
        .with_key(&key)
        .fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(30))
        .await
        .both()
        .unwrap_err();
    assert!(matches!(e, FeedError::InvalidPage { request_id: Some(_), .. }), "{e}");
}

#[tokio::test]
async fn a_response_cut_by_the_deadline_is_a_resumable_stop_not_a_failure() {
    let (sim, server) = simulator().await;
    sim.push_faults([Fault::Delay(Duration::from_secs(8))]);
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    // A 6 s budget keeps a 2 s margin: the request is cut at 4 s, by the run's own stop line,
    // so the run stops resumably rather than calling the API unavailable.
    let started = std::time::Instant::now();
    let result =
        http.with_key(&key).fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(6)).await.both();
    assert!(matches!(result, Err(FeedError::DeadlineReached)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn a_server_capped_at_1000_per_page_is_asked_again_with_1000() {
    // GIVEN an older server that refuses limit > 1000
    let sim = Simulator::new(SimConfig {
        keys: vec![ApiKey { key: KEY.into(), has_scope: true }],
        max_page_size: 1000,
        ..SimConfig::default()
    });
    let server = sim.spawn().await.unwrap();
    sim.generate(&GenerateSpec {
        count: 1500,
        from: hours_ago(2),
        to: hours_ago(1),
        hidden: false,
    });
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    // WHEN the collector asks for its usual 5000
    let (page, stats) = http
        .with_key(&key)
        .fetch(&query(hours_ago(3), hours_ago(0), 5000), deadline(30))
        .await
        .both()
        .unwrap();
    // THEN one refused request, then pages of 1000 from then on
    assert_eq!((stats.requests, page.activities.len(), page.has_more), (2, 1000, true));
    let (_, stats) = http
        .with_key(&key)
        .fetch(&query(hours_ago(3), hours_ago(0), 5000), deadline(30))
        .await
        .both()
        .unwrap();
    assert_eq!(stats.requests, 1);
}

#[tokio::test]
async fn a_low_shared_budget_holds_requests_until_its_reset() {
    // GIVEN an organization whose other tools leave little of a 10-a-minute budget
    let sim = Simulator::new(SimConfig {
        keys: vec![ApiKey { key: KEY.into(), has_scope: true }],
        rate_limit_per_minute: 10,
        ..SimConfig::default()
    });
    let server = sim.spawn().await.unwrap();
    let http = client(&server);
    let key = parse_secret(KEY).unwrap();
    let q = query(hours_ago(1), hours_ago(0), 10);
    // WHEN the collector has used 9 of them (remaining 1: a tenth of 10)
    for _ in 0..9 {
        http.with_key(&key).fetch(&q, deadline(30)).await.both().unwrap();
    }
    // THEN the next fetch waits for the reset rather than spending the last request
    let (result, stats) = http.with_key(&key).fetch(&q, deadline(5)).await;
    assert!(matches!(result, Err(FeedError::DeadlineReached)), "{result:?}");
    assert_eq!((stats.requests, sim.requests().len()), (0, 9));
}

/// A server on 127.0.0.1 that answers every request with `response` (then closes), and counts
/// the requests; its base URL.
async fn fixed_answer(response: String) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU32::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (response, counted) = (response.clone(), counted.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (base_url, requests)
}

/// One fetch of the last hour, with the test key, from the server at `base_url`.
async fn fetch_once(base_url: &str) -> Result<Page, FeedError> {
    let http = HttpClient::new(&base_url.parse().unwrap(), 600, SystemClock, FAST).unwrap();
    let key = parse_secret(KEY).unwrap();
    http.with_key(&key).fetch(&query(hours_ago(1), hours_ago(0), 10), deadline(10)).await.0
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_key_goes_nowhere_else() {
    // GIVEN an address that redirects every request to another server (here the simulator)
    let (sim, server) = simulator().await;
    let target = format!("{}/v1/compliance/activities", server.base_url);
    let (base_url, requests) = fixed_answer(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;
    // WHEN the collector fetches from it
    let result = fetch_once(&base_url).await;
    // THEN the fetch fails, naming the target, and the key never reached the other server
    match result {
        Err(FeedError::Unavailable { last, .. }) => {
            let last = last.to_string();
            assert!(last.contains(&target), "{last}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "asked once: a 3xx is not retried");
    assert!(sim.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn an_absurd_retry_after_is_capped_not_a_crash() {
    // GIVEN a server that answers 429 with a retry-after too large for any duration
    let (base_url, requests) = fixed_answer(
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1e30\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
    )
    .await;
    // WHEN the collector fetches
    let result = fetch_once(&base_url).await;
    // THEN it stops as rate-limited, the wait capped at an hour, without waiting or panicking
    match result {
        Err(FeedError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

/// The `limit` of every page request the simulator answered, in order.
fn limits_requested(sim: &Simulator) -> Vec<u32> {
    sim.requests()
        .iter()
        .filter_map(|r| r.query.split('&').find_map(|p| p.strip_prefix("limit=")))
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Pages through every activity of `sim`, 200 at a time, with a body budget a third of their
/// bytes: the ids seen, in order, and the pages refused or cut for their size.
async fn page_through_a_third_of_the_bytes(
    sim: &Simulator,
    server: &compliance_sim::SimServer,
) -> (Vec<String>, u32) {
    let total: usize = sim.activities().iter().map(|a| a.raw.len()).sum();
    let budget = BodyBudget::from_bytes(total as u64 / 3);
    let http = client(server).with_body_budget(budget);
    let key = parse_secret(KEY).unwrap();
    let feed = http.with_key(&key);
    let mut q = query(hours_ago(3), hours_ago(0), 200);
    let mut seen = Vec::new();
    let mut refused = 0;
    loop {
        let (page, stats) = feed.fetch(&q, deadline(30)).await.both().unwrap();
        refused += stats.pages_refused_too_large;
        seen.extend(page.activities.into_iter().map(|a| a.id));
        if !page.has_more {
            break;
        }
        q.after = page.last_id.clone();
    }
    (seen, refused)
}

#[tokio::test]
async fn a_body_over_the_budget_is_refused_by_its_length_and_asked_again_with_half_the_limit() {
    // GIVEN 200 activities and a body budget a third of their bytes
    let (sim, server) = simulator().await;
    let ids = sim.generate(&GenerateSpec {
        count: 200,
        from: hours_ago(2),
        to: hours_ago(1),
        hidden: false,
    });
    // WHEN paged asking for 200 at a time
    let (seen, refused) = page_through_a_third_of_the_bytes(&sim, &server).await;
    // THEN 200 and 100 were refused, each refusal halved the limit, which never grew back (the
    // simulator records each call as an activity, so the window grows as it is read)
    let limits = limits_requested(&sim);
    assert_eq!(&limits[..3], &[200, 100, 50], "{limits:?}");
    assert!(limits.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] / 2), "{limits:?}");
    let halvings = limits.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(refused as usize, halvings, "{limits:?}");
    // AND every generated activity came exactly once
    for id in &ids {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "{id}");
    }
}

#[tokio::test]
async fn an_activity_alone_over_the_budget_fails_the_fetch_naming_its_id() {
    // GIVEN one activity of 64 KiB and a budget of 16 KiB
    let (sim, server) = simulator().await;
    let at = hours_ago(2);
    let raw = format!(
        r#"{{"id":"activity_big01","created_at":"{at}","organization_id":null,"organization_uuid":null,"actor":{{"type":"system_actor","service":"x"}},"type":"claude_file_uploaded","padding":"{}"}}"#,
        "x".repeat(64 << 10)
    );
    sim.insert_raw(&raw, false).unwrap();
    let http = client(&server).with_body_budget(BodyBudget::from_bytes(16 << 10));
    let key = parse_secret(KEY).unwrap();
    // WHEN fetched at any limit
    let (result, stats) =
        http.with_key(&key).fetch(&query(hours_ago(3), hours_ago(0), 4), deadline(30)).await;
    // THEN 4, 2 and 1 were refused, and the fetch fails naming the activity
    assert_eq!(limits_requested(&sim), [4, 2, 1]);
    assert_eq!(stats.pages_refused_too_large, 3);
    match result {
        Err(FeedError::RecordTooLarge { id, after, budget, size, .. }) => {
            assert_eq!(id.as_deref(), Some("activity_big01"));
            assert_eq!((after, budget), (None, 16 << 10));
            assert!(size.bytes() > 64 << 10, "{size}");
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn the_chunked_simulator_sends_pages_without_a_length() {
    // GIVEN a simulator that streams its pages, with activities to serve
    let (sim, server) = chunked_simulator().await;
    sim.generate(&GenerateSpec { count: 50, from: hours_ago(2), to: hours_ago(1), hidden: false });
    // WHEN a page is asked for directly
    let response = reqwest::Client::new()
        .get(format!("{}?limit=50", server.feed_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", compliance_sim::API_VERSION)
        .send()
        .await
        .unwrap();
    // THEN it comes chunked with no content-length, and whole
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-length").is_none());
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let page: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn a_chunked_body_over_the_budget_is_cut_while_streaming_and_asked_again_with_half_the_limit()
{
    // GIVEN a simulator that streams its pages, 200 activities and a budget a third of their bytes
    let (sim, server) = chunked_simulator().await;
    let ids = sim.generate(&GenerateSpec {
        count: 200,
        from: hours_ago(2),
        to: hours_ago(1),
        hidden: false,
    });
    // WHEN paged asking for 200 at a time
    let (seen, refused) = page_through_a_third_of_the_bytes(&sim, &server).await;
    // THEN the bodies of 200 and 100 were cut as they streamed (nothing announced their size),
    // each cut halved the limit, and every activity came exactly once
    let limits = limits_requested(&sim);
    assert_eq!(&limits[..3], &[200, 100, 50], "{limits:?}");
    let halvings = limits.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(refused as usize, halvings, "{limits:?}");
    for id in &ids {
        assert_eq!(seen.iter().filter(|s| *s == id).count(), 1, "{id}");
    }
}

#[tokio::test]
async fn a_chunked_activity_alone_over_the_budget_is_cut_while_streaming_and_named() {
    // GIVEN a simulator that streams its pages and makes every activity 64 KiB, budget 16 KiB
    let large = compliance_sim::LargeRecords { every: 1, bytes: 64 << 10 };
    let (sim, server) = simulator_with(SimConfig {
        chunked: true,
        large_records: Some(large),
        ..SimConfig::default()
    })
    .await;
    let ids = sim.generate(&GenerateSpec {
        count: 3,
        from: hours_ago(2),
        to: hours_ago(1),
        hidden: false,
    });
    // (the simulator keeps its activities in feed order)
    let first = sim.activities().first().map(|a| a.id.clone());
    let http = client(&server).with_body_budget(BodyBudget::from_bytes(16 << 10));
    let key = parse_secret(KEY).unwrap();
    // WHEN fetched at a limit of 2
    let (result, stats) =
        http.with_key(&key).fetch(&query(hours_ago(3), hours_ago(0), 2), deadline(30)).await;
    // THEN 2 and 1 were cut while streaming, and the fetch fails naming the first activity
    assert_eq!(ids.len(), 3);
    assert_eq!(limits_requested(&sim), [2, 1]);
    assert_eq!(stats.pages_refused_too_large, 2);
    match result {
        Err(FeedError::RecordTooLarge { id, budget, size, .. }) => {
            assert_eq!(id, first);
            assert_eq!(budget, 16 << 10);
            assert!(matches!(size, BodySize::CutAfter(n) if n > 16 << 10), "{size}");
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
}
