//! A fault-injecting reverse proxy for the AWS emulator, on 127.0.0.1.
//!
//! Point a function's `AWS_ENDPOINT_URL` at [`FaultProxy::endpoint`] instead of moto's: every
//! request is forwarded to moto unchanged, except those matching a scripted [`FaultRule`] (or
//! drawn by the seeded [`RandomFaults`] mode), which get what the rule says instead:
//!
//! - [`FaultAction::Fail`]: an error answer in the service's own protocol, without forwarding
//!   (S3 REST-XML `<Error><Code>SlowDown</Code>…`, DynamoDB JSON 1.0 and Secrets Manager
//!   JSON 1.1 `{"__type":…,"message":…}`, CloudWatch Smithy RPC v2 CBOR with the
//!   `x-amzn-query-error` header, the way `tools/aws_emulator.py` answers errors), so the SDK
//!   classifies it exactly as it would the real service's (`SlowDown` and throttling retried,
//!   `ConditionalCheckFailedException` not);
//! - [`FaultAction::Delay`]: wait, then forward. The forward runs in its own task, so a request
//!   whose client gave up (a timeout) still lands late, as a slow S3 write can;
//! - [`FaultAction::Drop`]: forward, then close the connection without an answer: the request
//!   took effect but the client never hears so (its SDK retries, or reports an I/O error);
//! - [`FaultAction::DelayAnswer`]: forward, then hold the answer: the request took effect and
//!   the client waits (long enough to be killed in between, for crash tests).
//!
//! Requests are told apart by service, from the SigV4 credential scope of the `Authorization`
//! header (`…/us-east-1/s3/aws4_request`) or the Smithy RPC v2 path
//! (`/service/GraniteServiceVersion20100801/operation/PutMetricData`), and by operation, from
//! `X-Amz-Target` (DynamoDB, Secrets Manager), the method and path (S3, path-style: a `PUT` on an
//! object key is `PutObject`) or the RPC path (CloudWatch). Every request is counted per
//! (service, operation), so tests can see the SDK's own retries. The AWS SDKs retry transient
//! errors themselves (standard mode: 3 attempts), so a rule's `times` decides whether a fault is
//! absorbed by those retries or reaches the code under test.
//!
//! Built on hyper directly (not axum) because dropping a connection without an answer needs a
//! service that may fail.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::Error;

/// The AWS services the collector uses, as the proxy tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AwsService {
    S3,
    DynamoDb,
    SecretsManager,
    CloudWatch,
    /// A request the proxy could not attribute (unsigned, or another service).
    Unknown,
}

impl AwsService {
    /// From a SigV4 signing name (`s3`, `dynamodb`, `secretsmanager`, `monitoring`).
    fn from_signing_name(name: &str) -> AwsService {
        match name {
            "s3" => AwsService::S3,
            "dynamodb" => AwsService::DynamoDb,
            "secretsmanager" => AwsService::SecretsManager,
            "monitoring" => AwsService::CloudWatch,
            _ => AwsService::Unknown,
        }
    }
}

impl fmt::Display for AwsService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AwsService::S3 => "s3",
            AwsService::DynamoDb => "dynamodb",
            AwsService::SecretsManager => "secretsmanager",
            AwsService::CloudWatch => "cloudwatch",
            AwsService::Unknown => "unknown",
        })
    }
}

/// What the proxy does to a request a rule hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer `status` with error `code` in the service's protocol; the request never reaches
    /// moto.
    Fail { status: u16, code: String },
    /// Wait this long, then forward (in a task of its own: it lands even if the client left).
    Delay(Duration),
    /// Forward, then close the connection without answering.
    Drop,
    /// Forward, then hold the answer this long before sending it.
    DelayAnswer(Duration),
}

impl FaultAction {
    pub fn fail(status: u16, code: &str) -> FaultAction {
        FaultAction::Fail { status, code: code.to_owned() }
    }

    /// S3's 503 `SlowDown`.
    pub fn s3_slow_down() -> FaultAction {
        FaultAction::fail(503, "SlowDown")
    }

    /// S3's 500 `InternalError`.
    pub fn s3_internal_error() -> FaultAction {
        FaultAction::fail(500, "InternalError")
    }

    /// DynamoDB's 400 `ProvisionedThroughputExceededException` (throttling).
    pub fn dynamodb_throttled() -> FaultAction {
        FaultAction::fail(400, "ProvisionedThroughputExceededException")
    }

    /// DynamoDB's 400 `ConditionalCheckFailedException` (as if another writer had won).
    pub fn dynamodb_conditional_check_failed() -> FaultAction {
        FaultAction::fail(400, "ConditionalCheckFailedException")
    }

    /// Secrets Manager's (and CloudWatch's) 500 `InternalServiceError`.
    pub fn internal_service_error() -> FaultAction {
        FaultAction::fail(500, "InternalServiceError")
    }

    /// Secrets Manager's 400 `AccessDeniedException`.
    pub fn access_denied() -> FaultAction {
        FaultAction::fail(400, "AccessDeniedException")
    }
}

/// A scripted fault: hits the matching requests after the first `after`, `times` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub service: AwsService,
    /// `None` matches every operation of the service.
    pub operation: Option<String>,
    pub action: FaultAction,
    /// How many matching requests it hits (default 1).
    pub times: u32,
    /// How many matching requests it lets through first (default 0).
    pub after: u32,
}

impl FaultRule {
    /// A rule hitting the next request to `operation` of `service` once.
    pub fn new(service: AwsService, operation: &str, action: FaultAction) -> FaultRule {
        FaultRule { service, operation: Some(operation.to_owned()), action, times: 1, after: 0 }
    }

    /// A rule hitting the next request to any operation of `service` once.
    pub fn any_operation(service: AwsService, action: FaultAction) -> FaultRule {
        FaultRule { service, operation: None, action, times: 1, after: 0 }
    }

    pub fn times(mut self, times: u32) -> FaultRule {
        self.times = times;
        self
    }

    pub fn after(mut self, after: u32) -> FaultRule {
        self.after = after;
        self
    }

    fn matches(&self, service: AwsService, operation: &str) -> bool {
        self.service == service && self.operation.as_deref().is_none_or(|o| o == operation)
    }
}

/// The seeded random mode: each request to one of the collector's operations meets a fault
/// with probability `rate`, drawn from a menu that fits the operation (S3 `SlowDown`,
/// `InternalError`, a dropped or late answer to a write; DynamoDB throttling, 500s, a dropped
/// answer to a commit, rarely a conditional-check failure; Secrets Manager and CloudWatch 500s).
/// The draws follow the order requests arrive in, so one seed replays the same faults for the
/// same sequence of requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomFaults {
    pub seed: u64,
    /// Probability in `[0, 1]` that a request meets a fault.
    pub rate: f64,
}

/// One fault the proxy injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub service: AwsService,
    pub operation: String,
    pub action: FaultAction,
    /// Whether the random mode drew it (else a scripted rule hit it).
    pub random: bool,
}

struct ActiveRule {
    rule: FaultRule,
    matched: u32,
    hits: u32,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<ActiveRule>>,
    random: Mutex<Option<(RandomFaults, fastrand::Rng)>>,
    counts: Mutex<BTreeMap<(AwsService, String), u32>>,
    injected: Mutex<Vec<Injected>>,
    arrivals: Notify,
    request_ids: AtomicU64,
}

/// A running proxy; stops accepting connections when dropped.
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `Moto::shared().endpoint()`) on a free loopback port,
    /// served on the current tokio runtime.
    pub async fn start(upstream: &str) -> Result<FaultProxy, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("binding the fault proxy", e))?;
        let address: SocketAddr =
            listener.local_addr().map_err(|e| Error::io("reading the fault proxy's address", e))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Io {
                context: "building the fault proxy's client".to_owned(),
                source: std::io::Error::other(e),
            })?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            rules: Mutex::new(Vec::new()),
            random: Mutex::new(None),
            counts: Mutex::new(BTreeMap::new()),
            injected: Mutex::new(Vec::new()),
            arrivals: Notify::new(),
            request_ids: AtomicU64::new(0),
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { shared.handle(request).await }
                    });
                    // An error here is a dropped connection: on purpose (Drop) or the client's.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy { endpoint: format!("http://{address}"), shared, task })
    }

    /// `http://127.0.0.1:PORT`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Adds a rule after those already set. The first rule whose turn it is hits a request;
    /// every matching rule counts the request towards its `after`.
    pub fn push(&self, rule: FaultRule) {
        lock(&self.shared.rules).push(ActiveRule { rule, matched: 0, hits: 0 });
    }

    /// Removes every rule and turns the random mode off: everything is forwarded again.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
        *lock(&self.shared.random) = None;
    }

    /// Turns the seeded random mode on (`Some`) or off. Scripted rules take precedence.
    pub fn set_random(&self, random: Option<RandomFaults>) {
        *lock(&self.shared.random) = random.map(|r| (r, fastrand::Rng::with_seed(r.seed)));
    }

    /// How many times each scripted rule has hit, in the order they were pushed.
    pub fn rule_hits(&self) -> Vec<u32> {
        lock(&self.shared.rules).iter().map(|r| r.hits).collect()
    }

    /// Requests seen for `operation` of `service` (injected or forwarded, retries included).
    pub fn count(&self, service: AwsService, operation: &str) -> u32 {
        lock(&self.shared.counts).get(&(service, operation.to_owned())).copied().unwrap_or(0)
    }

    /// Requests seen, by service and operation.
    pub fn counts(&self) -> BTreeMap<(AwsService, String), u32> {
        lock(&self.shared.counts).clone()
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<Injected> {
        lock(&self.shared.injected).clone()
    }

    /// Waits until at least `n` requests for `operation` of `service` have arrived (whatever
    /// happens to them); false if `timeout` passes first.
    pub async fn wait_for(
        &self,
        service: AwsService,
        operation: &str,
        n: u32,
        timeout: Duration,
    ) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.arrivals.notified();
                if self.count(service, operation) >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy decided for one request.
enum Plan {
    Forward,
    Act(FaultAction),
}

impl Shared {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Err(std::io::Error::other(e)),
        };
        let (service, operation) = identify(&parts.method, &parts.uri, &parts.headers, &body);
        let plan = self.plan(service, &operation);
        self.arrivals.notify_waiters();
        let forward = Forward {
            method: parts.method,
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            headers: parts.headers,
            body,
        };
        match plan {
            Plan::Forward => Ok(self.forward(forward).await),
            Plan::Act(FaultAction::Fail { status, code }) => {
                let request_id =
                    format!("faultproxy-{}", self.request_ids.fetch_add(1, Ordering::Relaxed));
                Ok(error_response(service, status, &code, &request_id))
            }
            Plan::Act(FaultAction::Delay(wait)) => {
                let (tx, rx) = oneshot::channel();
                let shared = Arc::clone(&self);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(shared.forward(forward).await);
                });
                rx.await.map_err(|_| std::io::Error::other("the delayed forward was lost"))
            }
            Plan::Act(FaultAction::Drop) => {
                let _ = self.forward(forward).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "fault proxy: answer dropped",
                ))
            }
            Plan::Act(FaultAction::DelayAnswer(wait)) => {
                let response = self.forward(forward).await;
                tokio::time::sleep(wait).await;
                Ok(response)
            }
        }
    }

    /// Counts the request and decides its fate: the first scripted rule whose turn it is, else
    /// the random mode, else forward.
    fn plan(&self, service: AwsService, operation: &str) -> Plan {
        *lock(&self.counts).entry((service, operation.to_owned())).or_default() += 1;
        let mut chosen = None;
        for active in lock(&self.rules).iter_mut() {
            if !active.rule.matches(service, operation) {
                continue;
            }
            active.matched += 1;
            if chosen.is_none()
                && active.matched > active.rule.after
                && active.hits < active.rule.times
            {
                active.hits += 1;
                chosen = Some(active.rule.action.clone());
            }
        }
        let random = chosen.is_none();
        let chosen = chosen.or_else(|| {
            let mut random = lock(&self.random);
            let (config, rng) = random.as_mut()?;
            random_action(service, operation, config.rate, rng)
        });
        match chosen {
            Some(action) => {
                lock(&self.injected).push(Injected {
                    service,
                    operation: operation.to_owned(),
                    action: action.clone(),
                    random,
                });
                Plan::Act(action)
            }
            None => Plan::Forward,
        }
    }

    async fn forward(&self, request: Forward) -> Response<Full<Bytes>> {
        let url = format!("{}{}", self.upstream, request.path_and_query);
        let mut headers = request.headers;
        for name in HOP_BY_HOP.iter().chain(&["host", "content-length", "expect"]) {
            headers.remove(*name);
        }
        let sent = self
            .client
            .request(request.method, url)
            .headers(headers)
            .body(request.body)
            .send()
            .await;
        let upstream = match sent {
            Ok(r) => r,
            Err(e) => {
                return plain(
                    StatusCode::BAD_GATEWAY,
                    format!("fault proxy: upstream failed: {e}"),
                );
            }
        };
        let status = upstream.status();
        let mut headers = upstream.headers().clone();
        for name in HOP_BY_HOP.iter().chain(&["content-length"]) {
            headers.remove(*name);
        }
        let body = match upstream.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return plain(
                    StatusCode::BAD_GATEWAY,
                    format!("fault proxy: upstream body failed: {e}"),
                );
            }
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

struct Forward {
    method: hyper::Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// The service and operation of a request (`"?"` when the operation cannot be told).
pub fn identify(
    method: &hyper::Method,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (AwsService, String) {
    let path = uri.path();
    // Smithy RPC v2 CBOR: /service/<Service>/operation/<Operation>
    if let Some(rest) = path.strip_prefix("/service/")
        && let Some((smithy_service, operation)) = rest.split_once("/operation/")
    {
        let service = match smithy_service {
            "GraniteServiceVersion20100801" => AwsService::CloudWatch,
            _ => AwsService::Unknown,
        };
        return (service, operation.trim_end_matches('/').to_owned());
    }
    let service = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signing_name)
        .map_or(AwsService::Unknown, AwsService::from_signing_name);
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op.to_owned());
    let operation = match service {
        AwsService::S3 => s3_operation(method, uri, headers),
        AwsService::CloudWatch => form_action(body).or(target),
        _ => target.or_else(|| form_action(body)),
    };
    (service, operation.unwrap_or_else(|| "?".to_owned()))
}

/// The service of a SigV4 `Authorization` header: `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
fn signing_name(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3)
}

/// A path-style S3 request's operation, from its method, path and query.
fn s3_operation(method: &hyper::Method, uri: &hyper::Uri, headers: &HeaderMap) -> Option<String> {
    let path = uri.path().trim_start_matches('/');
    let query = uri.query().unwrap_or("");
    let has =
        |name: &str| query.split('&').any(|p| p == name || p.starts_with(&format!("{name}=")));
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) if !key.is_empty() => (bucket, Some(key)),
        _ => (path, None),
    };
    let op = match (method.as_str(), bucket.is_empty(), key.is_some()) {
        ("GET", true, _) => "ListBuckets",
        ("PUT", false, true) if headers.contains_key("x-amz-copy-source") => "CopyObject",
        ("PUT", false, true) if has("partNumber") => "UploadPart",
        ("PUT", false, true) => "PutObject",
        ("GET", false, true) => "GetObject",
        ("HEAD", false, true) => "HeadObject",
        ("DELETE", false, true) => "DeleteObject",
        ("PUT", false, false) => "CreateBucket",
        ("GET", false, false) if has("list-type") => "ListObjectsV2",
        ("GET", false, false) => "ListObjects",
        ("HEAD", false, false) => "HeadBucket",
        ("DELETE", false, false) => "DeleteBucket",
        ("POST", false, false) if has("delete") => "DeleteObjects",
        _ => return None,
    };
    Some(op.to_owned())
}

/// `Action=...` of an AWS query-protocol form body.
fn form_action(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|p| p.strip_prefix("Action=")).map(str::to_owned)
}

/// The error answer of `service` for `code`, in its protocol.
fn error_response(
    service: AwsService,
    status: u16,
    code: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let message = format!("{code} injected by the testkit fault proxy");
    let (content_type, body, extra): (&str, Vec<u8>, Vec<(&str, String)>) = match service {
        AwsService::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
            )
            .into_bytes(),
            vec![("x-amz-request-id", request_id.to_owned())],
        ),
        AwsService::DynamoDb => (
            "application/x-amz-json-1.0",
            serde_json::json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "message": message,
            })
            .to_string()
            .into_bytes(),
            vec![("x-amzn-requestid", request_id.to_owned())],
        ),
        AwsService::CloudWatch => {
            let fault = if status >= 500 { "Receiver" } else { "Sender" };
            let mut body = Vec::new();
            cbor_header(&mut body, 5, 2);
            for text in ["__type", code, "message", &message] {
                cbor_header(&mut body, 3, text.len());
                body.extend_from_slice(text.as_bytes());
            }
            (
                "application/cbor",
                body,
                vec![
                    ("smithy-protocol", "rpc-v2-cbor".to_owned()),
                    ("x-amzn-query-error", format!("{code};{fault}")),
                    ("x-amzn-requestid", request_id.to_owned()),
                ],
            )
        }
        AwsService::SecretsManager | AwsService::Unknown => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message})
                .to_string()
                .into_bytes(),
            vec![("x-amzn-requestid", request_id.to_owned())],
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
        {
            headers.insert(name, value);
        }
    }
    response
}

/// A CBOR item head: `major` type with argument `len`.
fn cbor_header(out: &mut Vec<u8>, major: u8, len: usize) {
    let major = major << 5;
    match len {
        0..24 => out.push(major | len as u8),
        24..256 => out.extend_from_slice(&[major | 24, len as u8]),
        256..65536 => {
            out.push(major | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

/// The random mode's draw for one request: `None` (forward) or a fault fitting the operation.
fn random_action(
    service: AwsService,
    operation: &str,
    rate: f64,
    rng: &mut fastrand::Rng,
) -> Option<FaultAction> {
    let menu: &[fn(&mut fastrand::Rng) -> FaultAction] = match (service, operation) {
        (AwsService::S3, "PutObject") => &[
            |_| FaultAction::s3_slow_down(),
            |_| FaultAction::s3_internal_error(),
            |_| FaultAction::Drop,
            |rng| FaultAction::DelayAnswer(Duration::from_millis(rng.u64(100..800))),
            |rng| FaultAction::Delay(Duration::from_millis(rng.u64(100..800))),
        ],
        (AwsService::S3, "GetObject") => {
            &[|_| FaultAction::s3_slow_down(), |_| FaultAction::s3_internal_error()]
        }
        (AwsService::DynamoDb, "PutItem" | "TransactWriteItems") => &[
            |_| FaultAction::dynamodb_throttled(),
            |_| FaultAction::dynamodb_throttled(),
            |_| FaultAction::fail(500, "InternalServerError"),
            |_| FaultAction::Drop,
            |rng| {
                // Rarely: as if another writer had won the race.
                if rng.u8(..4) == 0 {
                    FaultAction::dynamodb_conditional_check_failed()
                } else {
                    FaultAction::dynamodb_throttled()
                }
            },
        ],
        (AwsService::DynamoDb, "GetItem") => &[
            |_| FaultAction::dynamodb_throttled(),
            |_| FaultAction::fail(500, "InternalServerError"),
        ],
        (AwsService::SecretsManager, "GetSecretValue") => {
            &[|_| FaultAction::internal_service_error()]
        }
        (AwsService::CloudWatch, "PutMetricData") => &[|_| FaultAction::internal_service_error()],
        _ => return None,
    };
    if rng.f64() >= rate {
        return None;
    }
    let pick = menu[rng.usize(..menu.len())];
    Some(pick(rng))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> (AwsService, String) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        identify(&method.parse().unwrap(), &uri.parse().unwrap(), &map, b"")
    }

    fn auth(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        )
    }

    #[test]
    fn requests_are_told_apart_by_service_and_operation() {
        let s3 = auth("s3");
        let cases = [
            (
                request("PUT", "/b/a/k.json.gz?x-id=PutObject", &[("authorization", &s3)]),
                (AwsService::S3, "PutObject"),
            ),
            (
                request("GET", "/b/a/k.json.gz", &[("authorization", &s3)]),
                (AwsService::S3, "GetObject"),
            ),
            (
                request("GET", "/b?list-type=2&prefix=a", &[("authorization", &s3)]),
                (AwsService::S3, "ListObjectsV2"),
            ),
            (request("PUT", "/b", &[("authorization", &s3)]), (AwsService::S3, "CreateBucket")),
            (
                request(
                    "POST",
                    "/",
                    &[
                        ("authorization", &auth("dynamodb")),
                        ("x-amz-target", "DynamoDB_20120810.PutItem"),
                    ],
                ),
                (AwsService::DynamoDb, "PutItem"),
            ),
            (
                request(
                    "POST",
                    "/",
                    &[
                        ("authorization", &auth("secretsmanager")),
                        ("x-amz-target", "secretsmanager.GetSecretValue"),
                    ],
                ),
                (AwsService::SecretsManager, "GetSecretValue"),
            ),
            (
                request(
                    "POST",
                    "/service/GraniteServiceVersion20100801/operation/PutMetricData",
                    &[("authorization", &auth("monitoring"))],
                ),
                (AwsService::CloudWatch, "PutMetricData"),
            ),
            (request("GET", "/", &[]), (AwsService::Unknown, "?")),
        ];
        for (got, (service, operation)) in cases {
            assert_eq!(got, (service, operation.to_owned()));
        }
    }

    #[test]
    fn cbor_heads_follow_rfc_8949() {
        let mut out = Vec::new();
        cbor_header(&mut out, 5, 2);
        cbor_header(&mut out, 3, 23);
        cbor_header(&mut out, 3, 24);
        cbor_header(&mut out, 3, 300);
        assert_eq!(out, [0xa2, 0x77, 0x78, 24, 0x79, 0x01, 0x2c]);
    }

    #[test]
    fn the_random_mode_is_reproducible_by_seed() {
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..200)
                .map(|_| random_action(AwsService::S3, "PutObject", 0.3, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        let faults = draw(5).into_iter().flatten().count();
        assert!((30..90).contains(&faults), "{faults}");
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(random_action(AwsService::S3, "ListObjectsV2", 1.0, &mut rng), None);
    }
}
