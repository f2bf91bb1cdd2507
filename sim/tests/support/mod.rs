//! Test support: a minimal HTTP/1.1 client over a raw `TcpStream` and simulator fixtures.
//!
//! A raw client sends the request target byte for byte (no URL normalisation), so tests
//! control exactly what the simulator receives.

#![allow(dead_code)]

use compliance_sim::{DEFAULT_API_KEY, GenerateSpec, ManualClock, SimConfig, SimServer, Simulator};
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const USER_AGENT: &str = "sim-tests/1.0";

/// The data of most tests lies in April 2026; the simulator's clock stands at May 1st, so
/// `compliance_api_accessed` records land after it.
pub fn april(day: i8, hms: &str) -> Timestamp {
    format!("2026-04-{day:02}T{hms}Z").parse().expect("valid test timestamp")
}

pub fn may_first() -> Timestamp {
    "2026-05-01T00:00:00Z".parse().expect("valid test timestamp")
}

/// Bounds that select the April data and leave out the access records.
pub const APRIL: &str = "created_at.gte=2026-04-01T00:00:00Z&created_at.lt=2026-05-01T00:00:00Z";

pub struct Fixture {
    pub sim: Simulator,
    pub clock: ManualClock,
    pub server: SimServer,
}

pub async fn fixture() -> Fixture {
    fixture_with(SimConfig::default()).await
}

/// A served simulator with a manual clock at May 1st.
pub async fn fixture_with(config: SimConfig) -> Fixture {
    let clock = ManualClock::new(may_first());
    let sim = Simulator::new(SimConfig { clock: clock.clock(), ..config });
    let server = sim.spawn().await.expect("simulator serves");
    Fixture { sim, clock, server }
}

pub fn april_spec(count: usize, hidden: bool) -> GenerateSpec {
    GenerateSpec { count, from: april(1, "00:00:00"), to: april(8, "00:00:00"), hidden }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The ids of the records of a feed page.
    pub fn ids(&self) -> Vec<String> {
        self.json()["data"]
            .as_array()
            .expect("data array")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    }

    pub fn error_type(&self) -> String {
        self.json()["error"]["type"].as_str().unwrap_or("").to_owned()
    }

    pub fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or("").to_owned()
    }
}

/// Sends one request and reads the whole response (`Connection: close`).
pub async fn send(
    base_url: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let address = base_url.strip_prefix("http://").expect("http base url");
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    if let Some(body) = body {
        request.push_str(body);
    }
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("reads");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked =
        headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    Response { status, headers, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = std::str::from_utf8(&rest[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A feed request with the default key, the right version and a user agent.
pub async fn feed(server: &SimServer, query: &str) -> Response {
    feed_with(server, query, &[("x-api-key", DEFAULT_API_KEY), ("anthropic-version", "2023-06-01")])
        .await
}

/// A feed request with exactly these headers (plus host and user agent).
pub async fn feed_with(server: &SimServer, query: &str, headers: &[(&str, &str)]) -> Response {
    let target = if query.is_empty() {
        "/v1/compliance/activities".to_owned()
    } else {
        format!("/v1/compliance/activities?{query}")
    };
    let mut all = vec![("user-agent", USER_AGENT)];
    all.extend_from_slice(headers);
    send(&server.base_url, "GET", &target, &all, None).await
}

/// Follows `after_id` from the first page until `has_more` is false; returns every id in
/// the order served and the number of pages.
pub async fn page_through(server: &SimServer, query: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&after_id={c}"),
            None => query.to_owned(),
        };
        let page = feed(server, &q).await;
        assert_eq!(page.status, 200, "{}", page.text());
        pages += 1;
        ids.extend(page.ids());
        let json = page.json();
        if !json["has_more"].as_bool().expect("has_more") {
            return (ids, pages);
        }
        cursor = Some(json["last_id"].as_str().expect("last_id").to_owned());
    }
}

/// Ids of the visible activities created before May, oldest first.
pub fn visible_april_ids(sim: &Simulator) -> Vec<String> {
    sim.activities()
        .into_iter()
        .filter(|a| a.visible && a.created_at < may_first())
        .map(|a| a.id)
        .collect()
}
