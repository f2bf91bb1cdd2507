//! A local Lambda: the Runtime API protocol served on 127.0.0.1, driving a real function binary.
//!
//! [`RuntimeApi`] speaks the protocol the `lambda_runtime` crate uses (paths under `/2018-06-01/runtime`:
//! `invocation/next` long-poll with the `Lambda-Runtime-*` headers, `invocation/{id}/response`,
//! `invocation/{id}/error`, `init/error`). [`LambdaFunction`] plays the Lambda service around it:
//! it spawns the binary lazily on the first invoke (a cold start) with the environment Lambda sets,
//! reuses the warm process afterwards, and on a timeout kills the process, as Lambda does, so the
//! next invoke cold-starts again. Every line the process writes to stdout or stderr is captured.
//!
//! Each process (sandbox) gets its own Runtime API listener: a long-poll left behind by a killed
//! process can never swallow the event meant for its successor.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Error;

/// `AWS_LAMBDA_FUNCTION_NAME` unless the caller's env sets it.
pub const DEFAULT_FUNCTION_NAME: &str = "anthropic-compliance-collector-test";
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` unless the caller's env sets it.
pub const DEFAULT_MEMORY_MB: &str = "128";
/// Lambda refuses synchronous responses larger than this.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Set to `1` to copy the function's output to the test's stderr as it arrives.
pub const ECHO_LOGS_ENV: &str = "TESTKIT_ECHO_LOGS";

const ACCOUNT_ID: &str = "123456789012";
const API_PREFIX: &str = "/2018-06-01/runtime";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function posted a response (its JSON body).
    Response(Value),
    /// The function posted an invocation error, or its initialisation failed (`/init/error`).
    Error { error_type: String, error_message: String },
    /// No answer before the timeout: the process was killed.
    Timeout,
    /// The process exited before answering (`status` is `None` when a signal ended it).
    Crashed { status: Option<i32> },
}

impl Outcome {
    /// The response body, if the invocation succeeded.
    pub fn response(&self) -> Option<&Value> {
        match self {
            Outcome::Response(body) => Some(body),
            _ => None,
        }
    }
}

/// One invocation as the caller of Lambda sees it, plus what the process logged meanwhile.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// The stdout and stderr lines the process wrote during this invocation (including its
    /// initialisation, on a cold start).
    pub logs: Vec<String>,
    /// Whether a new process was started for this invocation.
    pub cold_start: bool,
    pub duration: Duration,
}

/// A function binary run the way Lambda runs it.
#[derive(Debug)]
pub struct LambdaFunction {
    binary: PathBuf,
    env: Vec<(String, String)>,
    function_name: String,
    /// Bound ahead of the next cold start.
    next_api: Option<RuntimeApi>,
    sandbox: Option<Sandbox>,
    sandboxes_started: u64,
    logs: Arc<Mutex<Vec<String>>>,
    echo_logs: bool,
}

#[derive(Debug)]
struct Sandbox {
    api: RuntimeApi,
    child: Child,
    log_readers: Vec<JoinHandle<()>>,
}

impl LambdaFunction {
    /// Prepares `binary` to be invoked with `env` (added to the variables Lambda sets; it may
    /// override `AWS_LAMBDA_FUNCTION_NAME`, the memory size, region and credentials, not
    /// `AWS_LAMBDA_RUNTIME_API`). Binds the Runtime API listener now; the process starts on the first
    /// [`invoke`](Self::invoke).
    ///
    /// Must be called within a tokio runtime (the listener is served on it).
    pub fn start(binary: PathBuf, env: Vec<(String, String)>) -> Result<LambdaFunction, Error> {
        if !binary.is_file() {
            return Err(Error::Spawn {
                program: binary,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such binary (was it built? see testkit::binary_path)",
                ),
            });
        }
        let function_name = env
            .iter()
            .rev()
            .find(|(k, _)| k == "AWS_LAMBDA_FUNCTION_NAME")
            .map_or(DEFAULT_FUNCTION_NAME, |(_, v)| v.as_str())
            .to_owned();
        let api = RuntimeApi::start(&function_name)?;
        Ok(LambdaFunction {
            binary,
            env,
            function_name,
            next_api: Some(api),
            sandbox: None,
            sandboxes_started: 0,
            logs: Arc::new(Mutex::new(Vec::new())),
            echo_logs: std::env::var(ECHO_LOGS_ENV).is_ok_and(|v| v == "1"),
        })
    }

    /// Invokes the function synchronously with `payload`, giving it `timeout` (its deadline).
    ///
    /// Errors only for the harness's own failures (the process cannot be spawned, ...): whatever the
    /// function does is an [`Outcome`].
    pub async fn invoke(&mut self, payload: Value, timeout: Duration) -> Result<Invocation, Error> {
        let started = Instant::now();
        let log_start = lock(&self.logs).len();
        let cold_start = self.ensure_sandbox()?;
        let Some(sandbox) = self.sandbox.as_mut() else {
            return Err(Error::Harness("no sandbox after a cold start"));
        };

        let deadline = SystemTime::now() + timeout;
        let request_id = sandbox.api.enqueue(payload, deadline);
        let (outcome, keep_warm) = tokio::select! {
            biased;
            (outcome, fatal) = wait_for_report(&mut sandbox.api, &request_id) => (outcome, !fatal),
            status = sandbox.child.wait() => {
                // A report may have raced the exit: it wins.
                let outcome = match sandbox.api.take_report_for(&request_id) {
                    Some((outcome, _)) => outcome,
                    None => Outcome::Crashed { status: status.ok().and_then(|s| s.code()) },
                };
                (outcome, false)
            }
            () = tokio::time::sleep(timeout) => (Outcome::Timeout, false),
        };

        if keep_warm {
            settle_logs(&self.logs).await;
        } else {
            self.discard_sandbox().await;
        }
        let logs = lock(&self.logs)[log_start..].to_vec();
        Ok(Invocation { request_id, outcome, logs, cold_start, duration: started.elapsed() })
    }

    /// Kills the process between invocations (a crash, or Lambda recycling the sandbox): the next
    /// invoke is a cold start.
    pub async fn kill(&mut self) {
        self.discard_sandbox().await;
    }

    /// Every line every process of this function has written so far.
    pub fn all_logs(&self) -> Vec<String> {
        lock(&self.logs).clone()
    }

    /// Whether a warm process is waiting for the next invoke.
    pub fn is_warm(&mut self) -> bool {
        match self.sandbox.as_mut() {
            Some(sandbox) => matches!(sandbox.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id of the warm process, if any.
    pub fn pid(&self) -> Option<u32> {
        self.sandbox.as_ref().and_then(|s| s.child.id())
    }

    /// The function name the process sees.
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// Starts a process unless a live one is waiting; returns whether it did (a cold start).
    fn ensure_sandbox(&mut self) -> Result<bool, Error> {
        if let Some(sandbox) = self.sandbox.as_mut() {
            if matches!(sandbox.child.try_wait(), Ok(None)) {
                return Ok(false);
            }
            // It died between invocations: Lambda would start a new one.
            self.sandbox = None;
        }
        let api = match self.next_api.take() {
            Some(api) => api,
            None => RuntimeApi::start(&self.function_name)?,
        };
        self.sandboxes_started += 1;
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .envs(lambda_env(&self.binary, &self.function_name, self.sandboxes_started))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", api.runtime_api_value())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|source| Error::Spawn { program: self.binary.clone(), source })?;
        let mut log_readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            log_readers.push(tokio::spawn(capture_lines(
                stdout,
                self.logs.clone(),
                self.echo_logs,
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            log_readers.push(tokio::spawn(capture_lines(
                stderr,
                self.logs.clone(),
                self.echo_logs,
            )));
        }
        self.sandbox = Some(Sandbox { api, child, log_readers });
        Ok(true)
    }

    /// Kills the process (if alive) and collects the rest of its output.
    async fn discard_sandbox(&mut self) {
        let Some(mut sandbox) = self.sandbox.take() else {
            return;
        };
        let _ = sandbox.child.start_kill();
        let _ = sandbox.child.wait().await;
        for reader in sandbox.log_readers {
            // The pipes close with the process; the bound only guards against a stray grandchild.
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }
}

/// The environment Lambda gives a `provided.al2023` function (before the caller's additions).
fn lambda_env(binary: &Path, function_name: &str, sandbox: u64) -> Vec<(String, String)> {
    let task_root = binary.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_MEMORY_MB.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", format!("testkit/[$LATEST]{:032x}", u128::from(sandbox))),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", crate::aws::REGION.to_owned()),
        ("AWS_DEFAULT_REGION", crate::aws::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", crate::aws::ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", crate::aws::SECRET_ACCESS_KEY.to_owned()),
        ("LAMBDA_TASK_ROOT", task_root.clone()),
        ("LAMBDA_RUNTIME_DIR", task_root),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Debugging aids and coverage instrumentation pass through.
    for key in ["RUST_BACKTRACE", "LLVM_PROFILE_FILE"] {
        if let Ok(value) = std::env::var(key) {
            env.push((key.to_owned(), value));
        }
    }
    env
}

/// Waits for the report on `request_id` (stale reports are skipped); `true` when the sandbox must
/// go (an init error). Never returns if the API is gone, which cannot happen while we hold it.
async fn wait_for_report(api: &mut RuntimeApi, request_id: &str) -> (Outcome, bool) {
    loop {
        match api.reports.recv().await {
            Some(report) => {
                if let Some(result) = report.outcome_for(request_id) {
                    return result;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Gives the log readers a moment to catch up with what the process wrote before it answered.
async fn settle_logs(logs: &Mutex<Vec<String>>) {
    let mut seen = lock(logs).len();
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = lock(logs).len();
        if now == seen {
            return;
        }
        seen = now;
    }
}

async fn capture_lines(stream: impl AsyncRead + Unpin, logs: Arc<Mutex<Vec<String>>>, echo: bool) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                if echo {
                    // Straight to stderr, past libtest's capture: the point is to watch it live.
                    let _ = writeln!(std::io::stderr().lock(), "[lambda] {line}");
                }
                lock(&logs).push(line);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- the Runtime API server ----

/// An event waiting for the function's `invocation/next`.
#[derive(Debug, Clone)]
pub struct NextEvent {
    pub request_id: String,
    pub payload: Value,
    pub deadline: SystemTime,
}

/// What the function posted back.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Response { request_id: String, body: Value },
    Error { request_id: String, error_type: String, error_message: String },
    InitError { error_type: String, error_message: String },
}

impl Report {
    /// The outcome this report gives the invocation `request_id`, and whether the sandbox must go.
    fn outcome_for(self, request_id: &str) -> Option<(Outcome, bool)> {
        match self {
            Report::Response { request_id: id, body } if id == request_id => {
                Some((Outcome::Response(body), false))
            }
            Report::Error { request_id: id, error_type, error_message } if id == request_id => {
                Some((Outcome::Error { error_type, error_message }, false))
            }
            Report::InitError { error_type, error_message } => {
                Some((Outcome::Error { error_type, error_message }, true))
            }
            _ => None,
        }
    }
}

/// The Lambda Runtime API for one function process, on `127.0.0.1:<free port>`.
#[derive(Debug)]
pub struct RuntimeApi {
    address: SocketAddr,
    events: mpsc::UnboundedSender<NextEvent>,
    reports: mpsc::UnboundedReceiver<Report>,
    function_arn: String,
    server: JoinHandle<()>,
}

#[derive(Debug)]
struct ApiState {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<NextEvent>>,
    reports: mpsc::UnboundedSender<Report>,
    function_arn: String,
    /// Delivered by `next` and not yet answered.
    in_flight: Mutex<HashSet<String>>,
}

impl RuntimeApi {
    /// Binds a listener on a free loopback port and serves the API on the current tokio runtime.
    pub fn start(function_name: &str) -> Result<RuntimeApi, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Harness(
                "testkit::lambda needs a tokio runtime (use #[tokio::test])",
            ));
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("binding the Runtime API listener", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configuring the Runtime API listener", e))?;
        let address =
            listener.local_addr().map_err(|e| Error::io("reading the Runtime API address", e))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::io("registering the Runtime API listener", e))?;

        let function_arn =
            format!("arn:aws:lambda:{}:{ACCOUNT_ID}:function:{function_name}", crate::aws::REGION);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            events: tokio::sync::Mutex::new(events_rx),
            reports: reports_tx,
            function_arn: function_arn.clone(),
            in_flight: Mutex::new(HashSet::new()),
        });
        let router = Router::new()
            .route(&format!("{API_PREFIX}/invocation/next"), get(next))
            .route(&format!("{API_PREFIX}/invocation/{{request_id}}/response"), post(response))
            .route(&format!("{API_PREFIX}/invocation/{{request_id}}/error"), post(invocation_error))
            .route(&format!("{API_PREFIX}/init/error"), post(init_error))
            // Lambda's own limit is enforced (and reported) by the handler, not by axum's 2 MB.
            .layer(DefaultBodyLimit::disable())
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(RuntimeApi { address, events: events_tx, reports: reports_rx, function_arn, server })
    }

    /// Where the API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (`127.0.0.1:PORT`, no scheme, as Lambda sets it).
    pub fn runtime_api_value(&self) -> String {
        self.address.to_string()
    }

    /// The function ARN sent as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn function_arn(&self) -> &str {
        &self.function_arn
    }

    /// Queues an event for the function's next `invocation/next`; returns its request id.
    pub fn enqueue(&self, payload: Value, deadline: SystemTime) -> String {
        let request_id = new_request_id();
        // The receiver lives in the server state, which we own: sending cannot fail while we exist.
        let _ = self.events.send(NextEvent { request_id: request_id.clone(), payload, deadline });
        request_id
    }

    /// The next report the function posts (responses, errors, init errors), in arrival order.
    pub async fn next_report(&mut self) -> Option<Report> {
        self.reports.recv().await
    }

    /// A report on `request_id` already received, if any (others are dropped).
    fn take_report_for(&mut self, request_id: &str) -> Option<(Outcome, bool)> {
        while let Ok(report) = self.reports.try_recv() {
            if let Some(result) = report.outcome_for(request_id) {
                return Some(result);
            }
        }
        None
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    // One poller at a time, as in Lambda; the lock is held across the long poll.
    let event = state.events.lock().await.recv().await;
    let Some(event) = event else {
        return runtime_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "the sandbox is shutting down",
        );
    };
    lock(&state.in_flight).insert(event.request_id.clone());
    let deadline_ms =
        event.deadline.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let body = serde_json::to_vec(&event.payload).unwrap_or_else(|_| b"null".to_vec());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    insert(&mut headers, "lambda-runtime-aws-request-id", &event.request_id);
    insert(&mut headers, "lambda-runtime-deadline-ms", &deadline_ms.to_string());
    insert(&mut headers, "lambda-runtime-invoked-function-arn", &state.function_arn);
    insert(&mut headers, "lambda-runtime-trace-id", &new_trace_id());
    (StatusCode::OK, headers, body).into_response()
}

async fn response(
    State(state): State<Arc<ApiState>>,
    UrlPath(request_id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if !lock(&state.in_flight).remove(&request_id) {
        return invalid_request_id(&request_id);
    }
    if body.len() > MAX_RESPONSE_BYTES {
        let _ = state.reports.send(Report::Error {
            request_id,
            error_type: "Function.ResponseSizeTooLarge".to_owned(),
            error_message: format!(
                "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                body.len()
            ),
        });
        return runtime_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "response payload too large",
        );
    }
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let _ = state.reports.send(Report::Response { request_id, body });
    accepted()
}

async fn invocation_error(
    State(state): State<Arc<ApiState>>,
    UrlPath(request_id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !lock(&state.in_flight).remove(&request_id) {
        return invalid_request_id(&request_id);
    }
    let (error_type, error_message) = diagnostic(&headers, &body);
    let _ = state.reports.send(Report::Error { request_id, error_type, error_message });
    accepted()
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, error_message) = diagnostic(&headers, &body);
    let _ = state.reports.send(Report::InitError { error_type, error_message });
    accepted()
}

/// `{errorType, errorMessage}` from the body, the type falling back to the
/// `Lambda-Runtime-Function-Error-Type` header.
fn diagnostic(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled")
        .to_owned();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            let error_type =
                map.get("errorType").and_then(Value::as_str).map_or(header_type, str::to_owned);
            let error_message =
                map.get("errorMessage").and_then(Value::as_str).unwrap_or_default().to_owned();
            (error_type, error_message)
        }
        _ => (header_type, String::from_utf8_lossy(body).into_owned()),
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn invalid_request_id(request_id: &str) -> Response {
    runtime_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("Invalid request ID: {request_id}"),
    )
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (status, axum::Json(json!({"errorType": error_type, "errorMessage": message}))).into_response()
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// A fresh 128-bit value (time, process, counter), not cryptographic: ids only need to differ.
fn fresh_bits() -> u128 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mixed = nanos ^ (u128::from(std::process::id()) << 64) ^ (count << 96) ^ count;
    // A cheap 128-bit mix so consecutive ids do not look alike.
    mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
}

/// A UUID-shaped request id, like Lambda's.
fn new_request_id() -> String {
    let b = fresh_bits();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (b >> 96) as u32,
        (b >> 80) as u16,
        (b >> 68) as u16 & 0xfff,
        (b >> 56) as u16 & 0xfff,
        b as u64 & 0xffff_ffff_ffff
    )
}

/// An X-Ray trace header value.
fn new_trace_id() -> String {
    let b = fresh_bits();
    let epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    format!(
        "Root=1-{epoch:08x}-{:024x};Parent={:016x};Sampled=0",
        b >> 32 & ((1u128 << 96) - 1),
        b as u64
    )
}
