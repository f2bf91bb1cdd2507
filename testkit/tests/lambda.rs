//! The Runtime API emulator driving `echo-lambda`, a real `lambda_runtime` 1.5 function.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use testkit::lambda::{LambdaFunction, Outcome, Report, RuntimeApi};

const TIMEOUT: Duration = Duration::from_secs(10);

fn echo(env: Vec<(String, String)>) -> LambdaFunction {
    LambdaFunction::start(env!("CARGO_BIN_EXE_echo-lambda").into(), env).unwrap()
}

fn body(outcome: &Outcome) -> &Value {
    outcome.response().unwrap_or_else(|| panic!("expected a response, got {outcome:?}"))
}

#[tokio::test]
async fn a_first_invoke_cold_starts_and_returns_the_response() {
    // GIVEN a function never invoked
    let mut function = echo(Vec::new());
    // WHEN it is invoked
    let before_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let invocation = function.invoke(json!({"hello": "world"}), TIMEOUT).await.unwrap();
    // THEN it cold-starts, answers with the payload, sees Lambda's context, and its logs are captured
    assert!(invocation.cold_start);
    let body = body(&invocation.outcome);
    assert_eq!(body["payload"], json!({"hello": "world"}));
    assert_eq!(body["request_id"], json!(invocation.request_id));
    assert_eq!(body["function_name"], json!("anthropic-compliance-collector-test"));
    let deadline = body["deadline_ms"].as_u64().unwrap();
    assert!(deadline >= before_ms + 9_000 && deadline <= before_ms + 11_000, "{deadline}");
    assert!(invocation.logs.iter().any(|l| l.contains("cold start")), "{:?}", invocation.logs);
    assert!(
        invocation.logs.iter().any(|l| l.contains(&invocation.request_id)),
        "{:?}",
        invocation.logs
    );
}

#[tokio::test]
async fn a_warm_process_is_reused() {
    // GIVEN a function invoked once
    let mut function = echo(Vec::new());
    let first = function.invoke(json!({"n": 1}), TIMEOUT).await.unwrap();
    // WHEN it is invoked again
    let second = function.invoke(json!({"n": 2}), TIMEOUT).await.unwrap();
    // THEN the same process answers, without a cold start, and logs only this invocation
    assert!(!second.cold_start);
    assert_eq!(body(&first.outcome)["pid"], body(&second.outcome)["pid"]);
    assert_eq!(body(&second.outcome)["invocation"], json!(2));
    assert!(!second.logs.iter().any(|l| l.contains("cold start")), "{:?}", second.logs);
    assert_eq!(function.all_logs().iter().filter(|l| l.contains("invocation ")).count(), 2);
}

#[tokio::test]
async fn a_function_error_is_reported_with_its_type_and_the_process_stays_warm() {
    // GIVEN a warm function
    let mut function = echo(Vec::new());
    function.invoke(json!({}), TIMEOUT).await.unwrap();
    // WHEN an invocation fails
    let failed = function.invoke(json!({"fail": true}), TIMEOUT).await.unwrap();
    // THEN the outcome carries the function's errorType and errorMessage
    assert_eq!(
        failed.outcome,
        Outcome::Error {
            error_type: "EchoFailure".to_owned(),
            error_message: "failing as asked by the payload".to_owned(),
        }
    );
    // AND the next invocation reuses the process
    let next = function.invoke(json!({}), TIMEOUT).await.unwrap();
    assert!(!next.cold_start);
    assert!(body(&next.outcome).is_object());
}

#[tokio::test]
async fn a_timeout_kills_the_process_and_the_next_invoke_cold_starts() {
    // GIVEN a warm function
    let mut function = echo(Vec::new());
    let first = function.invoke(json!({}), TIMEOUT).await.unwrap();
    // WHEN an invocation outlives its timeout
    let slow =
        function.invoke(json!({"sleep_ms": 30_000}), Duration::from_millis(500)).await.unwrap();
    // THEN it times out promptly and the process is gone
    assert_eq!(slow.outcome, Outcome::Timeout);
    assert!(slow.duration < Duration::from_secs(5), "{:?}", slow.duration);
    assert!(!function.is_warm());
    // AND the next invocation starts a new process
    let next = function.invoke(json!({}), TIMEOUT).await.unwrap();
    assert!(next.cold_start);
    assert_ne!(body(&first.outcome)["pid"], body(&next.outcome)["pid"]);
    assert_eq!(body(&next.outcome)["invocation"], json!(1));
}

#[tokio::test]
async fn a_process_exit_mid_invocation_is_a_crash() {
    // GIVEN a function
    let mut function = echo(Vec::new());
    // WHEN the process exits while handling the event
    let crashed = function.invoke(json!({"exit": 3}), TIMEOUT).await.unwrap();
    // THEN the outcome is a crash with its exit status, and its last words are in the logs
    assert_eq!(crashed.outcome, Outcome::Crashed { status: Some(3) });
    assert!(crashed.logs.iter().any(|l| l.contains("exiting with 3")), "{:?}", crashed.logs);
    // AND the next invocation cold-starts
    let next = function.invoke(json!({}), TIMEOUT).await.unwrap();
    assert!(next.cold_start);
}

#[tokio::test]
async fn a_kill_between_invocations_forces_a_cold_start() {
    // GIVEN a warm function
    let mut function = echo(Vec::new());
    function.invoke(json!({}), TIMEOUT).await.unwrap();
    assert!(function.is_warm());
    // WHEN its process is killed
    function.kill().await;
    // THEN the next invocation starts a new process and succeeds
    let next = function.invoke(json!({}), TIMEOUT).await.unwrap();
    assert!(next.cold_start);
    assert_eq!(body(&next.outcome)["invocation"], json!(1));
}

#[tokio::test]
async fn the_function_name_can_be_overridden() {
    // GIVEN a function started with its own name
    let mut function =
        echo(vec![("AWS_LAMBDA_FUNCTION_NAME".to_owned(), "collector-prod".to_owned())]);
    // WHEN it is invoked
    let invocation = function.invoke(json!({}), TIMEOUT).await.unwrap();
    // THEN the runtime sees that name
    assert_eq!(body(&invocation.outcome)["function_name"], json!("collector-prod"));
}

#[tokio::test]
async fn a_missing_binary_is_an_error_at_start() {
    // GIVEN no such binary
    // WHEN a function is started from it
    let error = LambdaFunction::start("/nonexistent/bootstrap".into(), Vec::new()).unwrap_err();
    // THEN the error names it
    assert!(error.to_string().contains("/nonexistent/bootstrap"), "{error}");
}

/// One HTTP/1.1 exchange on a fresh connection: (status, raw head, body).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn next_delivers_the_event_with_the_lambda_headers() {
    // GIVEN a Runtime API with one queued event
    let api = RuntimeApi::start("fn").unwrap();
    let deadline = SystemTime::now() + Duration::from_secs(30);
    let request_id = api.enqueue(json!({"k": "v"}), deadline);
    // WHEN the runtime polls for the next invocation
    let (status, head, body) =
        http(api.address(), "GET", "/2018-06-01/runtime/invocation/next", "", "").await;
    // THEN it gets the event and the headers lambda_runtime reads
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"k": "v"}));
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    assert!(head.contains(&format!("lambda-runtime-aws-request-id: {request_id}")), "{head}");
    assert!(head.contains(&format!("lambda-runtime-deadline-ms: {deadline_ms}")), "{head}");
    assert!(
        head.contains(
            "lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:fn"
        ),
        "{head}"
    );
    assert!(head.contains("lambda-runtime-trace-id: root=1-"), "{head}");
}

#[tokio::test]
async fn a_response_for_an_unknown_request_id_is_refused() {
    // GIVEN a Runtime API with no invocation in flight
    let mut api = RuntimeApi::start("fn").unwrap();
    // WHEN a response is posted for a made-up request id
    let (status, _, body) =
        http(api.address(), "POST", "/2018-06-01/runtime/invocation/nope/response", "", "{}").await;
    // THEN it is refused, and nothing is reported
    assert_eq!(status, 400);
    assert!(body.contains("InvalidRequestID"), "{body}");
    let nothing = tokio::time::timeout(Duration::from_millis(100), api.next_report()).await;
    assert!(nothing.is_err());
}

#[tokio::test]
async fn an_init_error_is_reported_with_its_diagnostic() {
    // GIVEN a Runtime API
    let mut api = RuntimeApi::start("fn").unwrap();
    // WHEN the runtime reports an initialisation error
    let (status, _, _) = http(
        api.address(),
        "POST",
        "/2018-06-01/runtime/init/error",
        "Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n",
        r#"{"errorType":"ConfigInvalid","errorMessage":"STATE_TABLE is required"}"#,
    )
    .await;
    // THEN it is accepted and reported with the body's errorType
    assert_eq!(status, 202);
    assert_eq!(
        api.next_report().await,
        Some(Report::InitError {
            error_type: "ConfigInvalid".to_owned(),
            error_message: "STATE_TABLE is required".to_owned(),
        })
    );
}

#[test]
fn binary_path_finds_a_binary_of_the_running_profile() {
    // GIVEN the echo-lambda binary cargo built for these tests
    // WHEN testkit looks it up by name
    let found = testkit::binary_path("echo-lambda");
    // THEN it is the same file
    assert_eq!(found, std::path::PathBuf::from(env!("CARGO_BIN_EXE_echo-lambda")));
}
